package triagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
)

var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

func newTicket(src triage.Source, ext string, at time.Time) *triage.Ticket {
	return &triage.Ticket{Source: src, ExternalID: ext, Body: "hello", ReceivedAt: at,
		Classification: triage.Classification{Flags: []triage.Flag{triage.FlagVIP}}}
}

func mustCreate(t *testing.T, s *Tickets, tk *triage.Ticket, c triage.Customer) triage.Ticket {
	t.Helper()
	got, err := s.Create(context.Background(), tk, c)
	if err != nil {
		t.Fatalf("Create(%s %q): %v", tk.Source, tk.ExternalID, err)
	}
	return got
}

func TestCreateAssignsIDsAndDedupes(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(t0)
	s := NewTickets(clock)
	cust := triage.Customer{Email: "ann@example.com"}

	tk := newTicket(triage.SourceEmail, "m1", time.Time{})
	first := mustCreate(t, s, tk, cust)
	if first.ID != "T1" || tk.ID != "T1" {
		t.Fatalf("first ID = %q, *t.ID = %q; want T1", first.ID, tk.ID)
	}
	if !first.ReceivedAt.Equal(t0) || first.State != triage.StateReceived || first.CustomerID != "C1" {
		t.Errorf("defaults: ReceivedAt %v State %q CustomerID %q; want %v received C1",
			first.ReceivedAt, first.State, first.CustomerID, t0)
	}

	tests := []struct {
		name    string
		src     triage.Source
		ext     string
		dup     bool
		wantID  string
		wantLen int
	}{
		{"same source and external ID", triage.SourceEmail, "m1", true, "T1", 1},
		{"other source, same external ID", triage.SourceWebhook, "m1", false, "T2", 2},
		{"no external ID", triage.SourceEmail, "", false, "T3", 3},
		{"no external ID again", triage.SourceEmail, "", false, "T4", 4},
		{"second duplicate", triage.SourceWebhook, "m1", true, "T2", 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(time.Minute)
			got, err := s.Create(ctx, newTicket(tc.src, tc.ext, time.Time{}), cust)
			if tc.dup != errors.Is(err, triage.ErrDuplicate) {
				t.Fatalf("err = %v; duplicate want %v", err, tc.dup)
			}
			if !tc.dup && err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.wantID {
				t.Errorf("ID = %q, want %q", got.ID, tc.wantID)
			}
			if n := len(s.All()); n != tc.wantLen {
				t.Errorf("stored %d tickets, want %d", n, tc.wantLen)
			}
			if n := len(s.Audit(got.ID)); n != 1 {
				t.Errorf("audit of %s has %d events, want 1 (a duplicate records nothing)", got.ID, n)
			}
		})
	}
}

func TestCreateRecordsReceived(t *testing.T) {
	s := NewTickets(NewClock(t0))
	got := mustCreate(t, s, newTicket(triage.SourceSlack, "x", t0.Add(-time.Hour)), triage.Customer{})
	want := []triage.AuditEvent{{TicketID: got.ID, At: t0, Actor: triage.ActorSystem, Action: ActionReceived, To: triage.StateReceived}}
	if ev := s.Audit(got.ID); !reflect.DeepEqual(ev, want) {
		t.Errorf("audit = %+v, want %+v", ev, want)
	}
	if s.Audit("T99") != nil {
		t.Error("audit of an unknown ticket is not nil")
	}
}

func TestCustomerMerge(t *testing.T) {
	tests := []struct {
		name   string
		in     []triage.Customer
		wantID []string // customer ID of each ticket
		want   []triage.Customer
	}{
		{
			name:   "email case and spaces",
			in:     []triage.Customer{{Email: "Ann@Example.com"}, {Email: " ann@example.COM "}},
			wantID: []string{"C1", "C1"},
			want:   []triage.Customer{{ID: "C1", Email: "Ann@Example.com", FirstSeen: t0}},
		},
		{
			name:   "slack ID joins the email customer",
			in:     []triage.Customer{{Email: "ann@example.com", Name: "Ann"}, {SlackUserID: "U1", Email: "ann@example.com", Tags: []string{"vip"}}, {SlackUserID: "U1"}},
			wantID: []string{"C1", "C1", "C1"},
			want:   []triage.Customer{{ID: "C1", Name: "Ann", Email: "ann@example.com", SlackUserID: "U1", Tags: []string{"vip"}, FirstSeen: t0}},
		},
		{
			name:   "handle with and without @",
			in:     []triage.Customer{{Handle: "@Ann"}, {Handle: "ann", VIP: true}},
			wantID: []string{"C1", "C1"},
			want:   []triage.Customer{{ID: "C1", Handle: "@Ann", VIP: true, FirstSeen: t0}},
		},
		{
			name:   "a key owned by another customer stays there",
			in:     []triage.Customer{{Email: "a@x.com"}, {SlackUserID: "U2"}, {Email: "a@x.com", SlackUserID: "U2"}},
			wantID: []string{"C1", "C2", "C1"},
			want:   []triage.Customer{{ID: "C1", Email: "a@x.com", FirstSeen: t0}, {ID: "C2", SlackUserID: "U2", FirstSeen: t0}},
		},
		{
			name:   "no identity is a new customer each time",
			in:     []triage.Customer{{Name: "Anon"}, {Name: "Anon"}},
			wantID: []string{"C1", "C2"},
			want:   []triage.Customer{{ID: "C1", Name: "Anon", FirstSeen: t0}, {ID: "C2", Name: "Anon", FirstSeen: t0}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewTickets(NewClock(t0))
			for i, c := range tc.in {
				got := mustCreate(t, s, newTicket(triage.SourceManual, "", t0), c)
				if got.CustomerID != tc.wantID[i] {
					t.Errorf("ticket %d customer = %q, want %q", i, got.CustomerID, tc.wantID[i])
				}
			}
			if got := s.Customers(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("customers = %+v\nwant        %+v", got, tc.want)
			}
		})
	}
}

func TestGetUnknown(t *testing.T) {
	s := NewTickets(NewClock(t0))
	if _, err := s.Get(context.Background(), "T1"); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("Get unknown: err = %v, want ErrNotFound", err)
	}
	_, err := s.Update(context.Background(), "T1", func(*triage.Ticket) (triage.AuditEvent, error) {
		t.Error("fn called for an unknown ticket")
		return triage.AuditEvent{}, nil
	})
	if !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("Update unknown: err = %v, want ErrNotFound", err)
	}
}

func TestUpdate(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		fn      func(*triage.Ticket) (triage.AuditEvent, error)
		wantErr error // nil: success; errAny: any error
		wantEv  triage.AuditEvent
	}{
		{
			name: "fills the event",
			fn: func(t *triage.Ticket) (triage.AuditEvent, error) {
				t.State = triage.StateTriaged
				return triage.AuditEvent{Actor: "U1", Action: "poked"}, nil
			},
			wantEv: triage.AuditEvent{TicketID: "T1", At: t0.Add(time.Hour), Actor: "U1", Action: "poked",
				From: triage.StateReceived, To: triage.StateTriaged},
		},
		{
			name: "keeps given fields",
			fn: func(t *triage.Ticket) (triage.AuditEvent, error) {
				t.Brief = "b"
				return triage.AuditEvent{At: t0, Actor: "U1", Action: "briefed", From: "x", To: "y", Detail: "d"}, nil
			},
			wantEv: triage.AuditEvent{TicketID: "T1", At: t0, Actor: "U1", Action: "briefed", From: "x", To: "y", Detail: "d"},
		},
		{
			name: "fn fails",
			fn: func(t *triage.Ticket) (triage.AuditEvent, error) {
				t.State = triage.StateClosed
				return triage.AuditEvent{Actor: "U1", Action: "closed"}, errBoom
			},
			wantErr: errBoom,
		},
		{
			name: "indexed field changed",
			fn: func(t *triage.Ticket) (triage.AuditEvent, error) {
				t.CustomerID = "C9"
				return triage.AuditEvent{Actor: "U1", Action: "moved"}, nil
			},
			wantErr: errAny,
		},
		{
			name: "no actor",
			fn: func(t *triage.Ticket) (triage.AuditEvent, error) {
				t.Brief = "b"
				return triage.AuditEvent{Action: "briefed"}, nil
			},
			wantErr: errAny,
		},
		{
			name: "no action",
			fn: func(t *triage.Ticket) (triage.AuditEvent, error) {
				t.Brief = "b"
				return triage.AuditEvent{Actor: "U1"}, nil
			},
			wantErr: errAny,
		},
		{
			name: "event for another ticket",
			fn: func(t *triage.Ticket) (triage.AuditEvent, error) {
				t.Brief = "b"
				return triage.AuditEvent{TicketID: "T2", Actor: "U1", Action: "briefed"}, nil
			},
			wantErr: errAny,
		},
		{
			name: "fn mutates a slice then fails",
			fn: func(t *triage.Ticket) (triage.AuditEvent, error) {
				t.Classification.Flags[0] = triage.FlagLegal
				return triage.AuditEvent{}, errBoom
			},
			wantErr: errBoom,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clock := NewClock(t0)
			s := NewTickets(clock)
			before := mustCreate(t, s, newTicket(triage.SourceEmail, "m1", t0), triage.Customer{})
			clock.Advance(time.Hour)
			got, err := s.Update(ctx, before.ID, tc.fn)
			stored, gerr := s.Get(ctx, before.ID)
			if gerr != nil {
				t.Fatal(gerr)
			}
			audit := s.Audit(before.ID)
			if tc.wantErr != nil {
				if err == nil || (tc.wantErr != errAny && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if !reflect.DeepEqual(stored, before) {
					t.Errorf("failed update changed the ticket:\n got %+v\nwant %+v", stored, before)
				}
				if len(audit) != 1 {
					t.Errorf("failed update recorded an event: %+v", audit)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, stored) {
				t.Errorf("returned %+v, stored %+v", got, stored)
			}
			if len(audit) != 2 || !reflect.DeepEqual(audit[1], tc.wantEv) {
				t.Errorf("audit = %+v, want second event %+v", audit, tc.wantEv)
			}
		})
	}
}

// errAny marks a table case that expects some error, whichever.
var errAny = errors.New("any error")

func TestNoSharedMemory(t *testing.T) {
	ctx := context.Background()
	s := NewTickets(NewClock(t0))
	tk := newTicket(triage.SourceEmail, "m1", t0)
	created := mustCreate(t, s, tk, triage.Customer{Email: "a@x.com", Tags: []string{"gold"}})
	tk.Classification.Flags[0] = triage.FlagLegal
	created.Classification.Flags[0] = triage.FlagSafety
	got, err := s.Get(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Classification.Flags[0] != triage.FlagVIP {
		t.Fatalf("stored flags changed through a caller's copy: %v", got.Classification.Flags)
	}
	got.Classification.Flags[0] = triage.FlagLegal
	s.Customers()[0].Tags[0] = "changed"
	again, _ := s.Get(ctx, created.ID)
	if again.Classification.Flags[0] != triage.FlagVIP {
		t.Errorf("stored flags changed through Get's copy: %v", again.Classification.Flags)
	}
	if tag := s.Customers()[0].Tags[0]; tag != "gold" {
		t.Errorf("customer tags changed through Customers' copy: %q", tag)
	}
	updated, err := s.Update(ctx, created.ID, func(t *triage.Ticket) (triage.AuditEvent, error) {
		t.Triggers = append(t.Triggers, triage.Trigger{Rule: "vip"})
		return triage.AuditEvent{Actor: "U1", Action: "tagged"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	updated.Triggers[0].Rule = "legal"
	updated.Classification.Flags[0] = triage.FlagLegal
	again, _ = s.Get(ctx, created.ID)
	if again.Triggers[0].Rule != "vip" || again.Classification.Flags[0] != triage.FlagVIP {
		t.Errorf("stored ticket changed through Update's result: %+v %v", again.Triggers, again.Classification.Flags)
	}
}

// TestCloneTicketCoversEveryField fills every slice reachable in a Ticket
// and checks that the clone shares none, so a field added to Ticket later
// cannot silently alias the store's copy.
func TestCloneTicketCoversEveryField(t *testing.T) {
	var tk triage.Ticket
	fill(reflect.ValueOf(&tk).Elem())
	c := cloneTicket(tk)
	if !reflect.DeepEqual(c, tk) {
		t.Fatalf("clone differs:\n got %+v\nwant %+v", c, tk)
	}
	for _, path := range sharedSlices(reflect.ValueOf(tk), reflect.ValueOf(c), "Ticket") {
		t.Errorf("%s shares memory with the original", path)
	}
}

// fill gives every slice one element, recursively, and fails on kinds
// cloneTicket does not know how to copy.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.String:
		v.SetString("x")
	case reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func:
		panic(fmt.Sprintf("Ticket has a %s field (%s): teach cloneTicket to copy it", v.Kind(), v.Type()))
	}
}

func sharedSlices(a, b reflect.Value, path string) []string {
	var out []string
	switch a.Kind() {
	case reflect.Struct:
		if a.Type() == reflect.TypeFor[time.Time]() {
			return nil
		}
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				out = append(out, sharedSlices(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name)...)
			}
		}
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			out = append(out, path)
		}
		for i := range min(a.Len(), b.Len()) {
			out = append(out, sharedSlices(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return out
}

func TestCustomerTicketsAndWindow(t *testing.T) {
	ctx := context.Background()
	s := NewTickets(NewClock(t0))
	ann := triage.Customer{Email: "ann@example.com"}
	bob := triage.Customer{Email: "bob@example.com"}
	// Created out of time order, with two at the same instant.
	for _, c := range []struct {
		cust triage.Customer
		at   time.Duration
	}{
		{ann, 2 * time.Hour}, {bob, time.Hour}, {ann, 0}, {ann, 3 * time.Hour}, {ann, 2 * time.Hour},
	} {
		mustCreate(t, s, newTicket(triage.SourceEmail, "", t0.Add(c.at)), c.cust)
	}
	ids := func(ts []triage.Ticket) []string {
		var out []string
		for _, tk := range ts {
			out = append(out, tk.ID)
		}
		return out
	}

	custTests := []struct {
		cust  string
		since time.Time
		want  []string
	}{
		{"C1", time.Time{}, []string{"T4", "T5", "T1", "T3"}},
		{"C1", t0.Add(2 * time.Hour), []string{"T4", "T5", "T1"}},
		{"C1", t0.Add(4 * time.Hour), nil},
		{"C2", t0, []string{"T2"}},
		{"C9", time.Time{}, nil},
	}
	for _, tc := range custTests {
		got, err := s.CustomerTickets(ctx, tc.cust, tc.since)
		if err != nil {
			t.Fatal(err)
		}
		if g := ids(got); !slices.Equal(g, tc.want) {
			t.Errorf("CustomerTickets(%s, %v) = %v, want %v", tc.cust, tc.since, g, tc.want)
		}
	}

	winTests := []struct {
		from, to time.Duration
		want     []string
	}{
		{0, 4 * time.Hour, []string{"T3", "T2", "T1", "T5", "T4"}},
		{time.Hour, 3 * time.Hour, []string{"T2", "T1", "T5"}},
		{3 * time.Hour, 3 * time.Hour, nil},
	}
	for _, tc := range winTests {
		var got []triage.Ticket
		err := s.Window(ctx, t0.Add(tc.from), t0.Add(tc.to), func(tk triage.Ticket) error {
			// Calling back into the store must not deadlock.
			if _, err := s.Get(ctx, tk.ID); err != nil {
				return err
			}
			got = append(got, tk)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if g := ids(got); !slices.Equal(g, tc.want) {
			t.Errorf("Window(+%v, +%v) = %v, want %v", tc.from, tc.to, g, tc.want)
		}
	}

	stop := errors.New("stop")
	calls := 0
	err := s.Window(ctx, t0, t0.Add(4*time.Hour), func(triage.Ticket) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("Window with failing fn: err %v after %d calls, want stop after 1", err, calls)
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := NewTickets(NewClock(t0))
	if _, err := s.Create(ctx, newTicket(triage.SourceEmail, "m", t0), triage.Customer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Create: err = %v, want context.Canceled", err)
	}
	if len(s.All()) != 0 {
		t.Error("Create with a cancelled context stored a ticket")
	}
	if _, err := s.Get(ctx, "T1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get: err = %v, want context.Canceled", err)
	}
	if _, err := s.CustomerTickets(ctx, "C1", t0); !errors.Is(err, context.Canceled) {
		t.Errorf("CustomerTickets: err = %v, want context.Canceled", err)
	}
	if err := s.Window(ctx, t0, t0, func(triage.Ticket) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Window: err = %v, want context.Canceled", err)
	}
}

func TestConcurrentCreateAndUpdate(t *testing.T) {
	ctx := context.Background()
	s := NewTickets(NewClock(t0))
	const n = 40
	var wg sync.WaitGroup
	dups := make(chan string, 2*n)
	for i := range 2 * n {
		wg.Go(func() {
			// Every message is delivered twice.
			tk, err := s.Create(ctx, newTicket(triage.SourceWebhook, fmt.Sprint(i/2), t0), triage.Customer{Email: "a@x.com"})
			if errors.Is(err, triage.ErrDuplicate) {
				dups <- tk.ID
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			_, err = s.Update(ctx, tk.ID, func(t *triage.Ticket) (triage.AuditEvent, error) {
				t.Escalations++
				return triage.AuditEvent{Actor: "U1", Action: "bumped"}, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(dups)
	if len(dups) != n {
		t.Errorf("%d duplicates, want %d", len(dups), n)
	}
	all := s.All()
	if len(all) != n {
		t.Fatalf("stored %d tickets, want %d", len(all), n)
	}
	for i, tk := range all {
		if want := fmt.Sprintf("T%d", i+1); tk.ID != want || tk.Escalations != 1 {
			t.Errorf("ticket %d: ID %q Escalations %d, want %s and 1", i, tk.ID, tk.Escalations, want)
		}
	}
	if cs := s.Customers(); len(cs) != 1 {
		t.Errorf("%d customers, want 1", len(cs))
	}
}

func TestClock(t *testing.T) {
	c := NewClock(t0)
	if got := c.Advance(90 * time.Minute); !got.Equal(t0.Add(90 * time.Minute)) {
		t.Errorf("Advance returned %v", got)
	}
	c.Set(t0.Add(-time.Hour))
	if got := c.Now(); !got.Equal(t0.Add(-time.Hour)) {
		t.Errorf("after Set, Now = %v", got)
	}
}

func TestClassifierAndDrafter(t *testing.T) {
	ctx := context.Background()
	errDown := errors.New("down")
	want := triage.Classification{Type: triage.TypeRefund, Flags: []triage.Flag{triage.FlagVIP}}
	c := &Classifier{Result: want}
	got, err := c.Classify(ctx, triage.ClassifyRequest{Text: "a"})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Classify = %+v, %v; want %+v", got, err, want)
	}
	got.Flags[0] = triage.FlagLegal
	if again, _ := c.Classify(ctx, triage.ClassifyRequest{Text: "b"}); again.Flags[0] != triage.FlagVIP {
		t.Errorf("a caller's change leaked into the next answer: %v", again.Flags)
	}
	c.Err = errDown
	if _, err := c.Classify(ctx, triage.ClassifyRequest{Text: "c"}); err != errDown {
		t.Errorf("with Err set: err = %v", err)
	}
	c.Func = func(context.Context, triage.ClassifyRequest) (triage.Classification, error) {
		return triage.Classification{Type: triage.TypeBilling}, nil
	}
	if got, err := c.Classify(ctx, triage.ClassifyRequest{Text: "d"}); err != nil || got.Type != triage.TypeBilling {
		t.Errorf("with Func set: %+v, %v", got, err)
	}
	var texts []string
	for _, r := range c.Requests() {
		texts = append(texts, r.Text)
	}
	if c.Calls() != 4 || !slices.Equal(texts, []string{"a", "b", "c", "d"}) {
		t.Errorf("Calls = %d, texts %v", c.Calls(), texts)
	}

	d := &Drafter{Result: triage.Draft{Brief: "b", Reply: "r"}}
	if got, err := d.Draft(ctx, triage.DraftRequest{Policy: "p1"}); err != nil || got != d.Result {
		t.Errorf("Draft = %+v, %v", got, err)
	}
	d.Err = errDown
	if _, err := d.Draft(ctx, triage.DraftRequest{Policy: "p2"}); err != errDown {
		t.Errorf("with Err set: err = %v", err)
	}
	d.Func = func(context.Context, triage.DraftRequest) (triage.Draft, error) { return triage.Draft{Reply: "f"}, nil }
	if got, _ := d.Draft(ctx, triage.DraftRequest{Policy: "p3"}); got.Reply != "f" {
		t.Errorf("with Func set: %+v", got)
	}
	if d.Calls() != 3 || d.Requests()[2].Policy != "p3" {
		t.Errorf("Calls = %d, requests %+v", d.Calls(), d.Requests())
	}
}

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	clock := NewClock(t0)
	s := NewTickets(clock)
	tk := mustCreate(t, s, newTicket(triage.SourceEmail, "m1", t0), triage.Customer{})
	other := mustCreate(t, s, newTicket(triage.SourceEmail, "m2", t0), triage.Customer{})

	// Posts with nowhere to go, or no kind, are refused whole.
	err := s.Enqueue(ctx, triage.Post{Kind: triage.PostThread, TicketID: tk.ID, Channel: "C1"},
		triage.Post{Kind: triage.PostThread, TicketID: other.ID})
	if !errors.Is(err, ErrNoChannel) {
		t.Errorf("Enqueue for an unrouted ticket: err = %v, want ErrNoChannel", err)
	}
	if err := s.Enqueue(ctx, triage.Post{Channel: "C1"}); err == nil {
		t.Error("Enqueue of a post without kind succeeded")
	}
	if err := s.Enqueue(ctx, triage.Post{Kind: triage.PostThread, TicketID: "T99"}); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("Enqueue for an unknown ticket: err = %v, want ErrNotFound", err)
	}
	_, err = s.Update(ctx, other.ID, func(t *triage.Ticket) (triage.AuditEvent, error) {
		t.Brief = "b"
		return triage.AuditEvent{Actor: "U1", Action: "noted", Posts: []triage.Post{{Kind: triage.PostCardUpdate}}}, nil
	})
	if !errors.Is(err, ErrNoChannel) {
		t.Errorf("Update posting about an unrouted ticket: err = %v, want ErrNoChannel", err)
	}
	if got, _ := s.Get(ctx, other.ID); got.Brief != "" || len(s.Audit(other.ID)) != 1 {
		t.Error("a refused post let its change through")
	}
	if len(s.Posts()) != 0 {
		t.Fatalf("refused posts queued: %+v", s.Posts())
	}

	clock.Advance(time.Minute)
	route := func(t *triage.Ticket) (triage.AuditEvent, error) {
		t.Route = triage.Route{Channel: "C0QUEUE"}
		return triage.AuditEvent{Actor: triage.ActorSystem, Action: "triaged", Posts: []triage.Post{
			{Kind: triage.PostCard, TicketID: t.ID, Channel: "C0QUEUE", Mentions: []string{"U1"}},
			{Kind: triage.PostThread},
			{Kind: triage.PostEscalation, TicketID: t.ID, Channel: "C0ESC", CreatedAt: t0},
		}}, nil
	}
	if _, err := s.Update(ctx, tk.ID, route); err != nil {
		t.Fatal(err)
	}
	// A failed change enqueues nothing.
	_, err = s.Update(ctx, tk.ID, func(t *triage.Ticket) (triage.AuditEvent, error) {
		return triage.AuditEvent{Actor: "U1", Action: "x", Posts: []triage.Post{{Kind: triage.PostThread}}}, errors.New("no")
	})
	if err == nil {
		t.Fatal("failing fn succeeded")
	}
	for _, ev := range s.Audit(tk.ID) {
		if ev.Posts != nil {
			t.Errorf("audit event %s kept its posts", ev.Action)
		}
	}
	var got []string
	for _, p := range s.Posts() {
		got = append(got, fmt.Sprintf("%s %s %s %s %s", p.ID, p.Kind, p.TicketID, p.Channel, p.CreatedAt.Format("15:04")))
	}
	want := []string{"P1 card T1 C0QUEUE 09:01", "P2 thread T1 C0QUEUE 09:01", "P3 escalation T1 C0ESC 09:00"}
	if !slices.Equal(got, want) {
		t.Fatalf("posts %q, want %q", got, want)
	}
	if chans, _ := s.Channels(ctx); !slices.Equal(chans, []string{"C0ESC", "C0QUEUE"}) {
		t.Errorf("channels %q", chans)
	}

	pending, err := s.Pending(ctx, "C0QUEUE", 1)
	if err != nil || len(pending) != 1 || pending[0].ID != "P1" || !slices.Equal(pending[0].Mentions, []string{"U1"}) {
		t.Fatalf("Pending(C0QUEUE, 1) = %+v, %v", pending, err)
	}
	card := pending[0]
	if err := s.Retry(ctx, card); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Pending(ctx, "C0QUEUE", 10); len(p) != 2 || p[0].ID != "P1" || p[0].Attempts != 1 {
		t.Errorf("after Retry: %+v", p)
	}
	if err := s.Done(ctx, card, triage.SlackRef{Channel: "C0QUEUE"}); err == nil {
		t.Error("Done of a card without its ts succeeded")
	}
	ref := triage.SlackRef{Channel: "C0QUEUE", TS: "1700000000.000100"}
	// The pending record decides what the post is, not the caller's copy.
	card.Kind = triage.PostThread
	if err := s.Done(ctx, card, ref); err != nil {
		t.Fatal(err)
	}
	stored, _ := s.Get(ctx, tk.ID)
	audit := s.Audit(tk.ID)
	if stored.Slack != ref || audit[len(audit)-1].Action != ActionCardPosted {
		t.Errorf("card Done recorded %+v with audit %+v, want %+v and card_posted", stored.Slack, audit, ref)
	}
	thread, _ := s.Pending(ctx, "C0QUEUE", 10)
	if len(thread) != 1 || thread[0].ID != "P2" {
		t.Fatalf("after Done: %+v", thread)
	}
	if err := s.Done(ctx, thread[0], triage.SlackRef{}); err != nil {
		t.Fatal(err)
	}
	if stored, _ := s.Get(ctx, tk.ID); stored.Slack != ref || len(s.Audit(tk.ID)) != len(audit) {
		t.Errorf("a thread post's Done changed the ticket: %+v", stored.Slack)
	}
	if err := s.Done(ctx, card, ref); err != nil {
		t.Errorf("Done twice: %v, want nil", err)
	}
	if err := s.Retry(ctx, triage.Post{ID: "P99"}); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("Retry unknown: err = %v, want ErrNotFound", err)
	}
	if chans, _ := s.Channels(ctx); !slices.Equal(chans, []string{"C0ESC"}) {
		t.Errorf("channels after draining C0QUEUE: %q", chans)
	}
}

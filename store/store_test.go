package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// fixedClock is a settable clock for deterministic audit times.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

func openTest(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "casebot.db")
	db, err := Open(path, Options{Clock: &fixedClock{t: t0}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, path
}

func newTicket(src triage.Source, ext string, at time.Time) *triage.Ticket {
	return &triage.Ticket{Source: src, ExternalID: ext, Body: "where is my order?", ReceivedAt: at}
}

func mustCreate(t testing.TB, db *DB, tk *triage.Ticket, c triage.Customer) triage.Ticket {
	t.Helper()
	got, err := db.Create(context.Background(), tk, c)
	if err != nil {
		t.Fatalf("Create(%s %q): %v", tk.Source, tk.ExternalID, err)
	}
	return got
}

func TestOpenCreatesFileWithMode0600(t *testing.T) {
	_, path := openTest(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %v, want 0600", got)
	}
}

func TestOpenLockedFile(t *testing.T) {
	db, path := openTest(t)
	// bbolt's flock belongs to the open file description, so a second Open
	// in the same process contends exactly like another process would.
	_, err := Open(path, Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open error = %v, want ErrLocked", err)
	}
	for _, want := range []string{path, "in use by another casebot process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, Options{LockTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = again.Close()
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	db, path := openTest(t)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte("7"))
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 7") {
		t.Fatalf("Open of a schema 7 file: error = %v, want one naming version 7", err)
	}
}

func TestCreateGetUpdate(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	in := newTicket(triage.SourceWebhook, "w-1", t0.Add(-time.Minute))
	created := mustCreate(t, db, in, triage.Customer{Email: "ana@example.com", Name: "Ana"})

	if created.ID != "CB-000001" || created.CustomerID != "CU-000001" || created.State != triage.StateReceived {
		t.Errorf("created = %s/%s/%s, want CB-000001/CU-000001/received", created.ID, created.CustomerID, created.State)
	}
	if in.ID != created.ID || in.CustomerID != created.CustomerID {
		t.Errorf("caller's ticket not updated: %s/%s", in.ID, in.CustomerID)
	}
	got, err := db.Get(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Body != in.Body || !got.ReceivedAt.Equal(in.ReceivedAt) || got.ExternalID != "w-1" {
		t.Errorf("Get = %+v", got)
	}

	updated, err := db.Update(ctx, created.ID, func(tk *triage.Ticket) (triage.AuditEvent, error) {
		tk.Classification.Type = triage.TypeDelivery
		return triage.AuditEvent{Actor: triage.ActorSystem, Action: "triaged"}, tk.Transition(triage.StateTriaged)
	})
	if err != nil {
		t.Fatal(err)
	}
	if updated.State != triage.StateTriaged {
		t.Errorf("Update returned state %s", updated.State)
	}
	got, _ = db.Get(ctx, created.ID)
	if got.State != triage.StateTriaged || got.Classification.Type != triage.TypeDelivery {
		t.Errorf("after Update Get = %s/%s", got.State, got.Classification.Type)
	}

	events, err := db.Audit(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []triage.AuditEvent{
		{TicketID: "CB-000001", At: t0, Actor: triage.ActorSystem, Action: ActionReceived, From: "", To: triage.StateReceived},
		{TicketID: "CB-000001", At: t0, Actor: triage.ActorSystem, Action: "triaged", From: triage.StateReceived, To: triage.StateTriaged},
	}
	if len(events) != len(want) {
		t.Fatalf("audit = %+v, want %d events", events, len(want))
	}
	for i := range want {
		if events[i].At.Equal(want[i].At) {
			events[i].At = want[i].At
		}
		if !reflect.DeepEqual(events[i], want[i]) {
			t.Errorf("audit[%d] = %+v, want %+v", i, events[i], want[i])
		}
	}
}

func TestCreateDefaults(t *testing.T) {
	db, _ := openTest(t)
	got := mustCreate(t, db, &triage.Ticket{Source: triage.SourceManual, Body: "phoned in"}, triage.Customer{})
	if !got.ReceivedAt.Equal(t0) {
		t.Errorf("ReceivedAt = %v, want the clock's %v", got.ReceivedAt, t0)
	}
	c, err := db.Customer(context.Background(), got.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	if !c.FirstSeen.Equal(t0) {
		t.Errorf("customer FirstSeen = %v, want %v", c.FirstSeen, t0)
	}
}

func TestGetMissing(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	if _, err := db.Get(ctx, "CB-000404"); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("Get error = %v, want ErrNotFound", err)
	}
	if _, err := db.Customer(ctx, "CU-000404"); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("Customer error = %v, want ErrNotFound", err)
	}
	if _, err := db.Audit(ctx, "CB-000404"); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("Audit error = %v, want ErrNotFound", err)
	}
	_, err := db.Update(ctx, "CB-000404", func(*triage.Ticket) (triage.AuditEvent, error) {
		return triage.AuditEvent{Actor: "U1", Action: "x"}, nil
	})
	if !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("Update error = %v, want ErrNotFound", err)
	}
}

func TestCreateDuplicates(t *testing.T) {
	tests := []struct {
		name       string
		first      *triage.Ticket
		second     *triage.Ticket
		wantDup    bool
		wantTotal  int
		wantSecond string
	}{
		{"same source and external ID", newTicket(triage.SourceSlack, "C1/1700.1", t0), newTicket(triage.SourceSlack, "C1/1700.1", t0.Add(time.Second)), true, 1, "CB-000001"},
		{"same external ID, other source", newTicket(triage.SourceSlack, "42", t0), newTicket(triage.SourceWebhook, "42", t0), false, 2, "CB-000002"},
		{"no external ID", newTicket(triage.SourceManual, "", t0), newTicket(triage.SourceManual, "", t0), false, 2, "CB-000002"},
		{"external ID differs in case", newTicket(triage.SourceEmail, "<a@x>", t0), newTicket(triage.SourceEmail, "<A@x>", t0), false, 2, "CB-000002"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			ctx := context.Background()
			cust := triage.Customer{Email: "bo@example.com"}
			mustCreate(t, db, tt.first, cust)
			second := *tt.second
			got, err := db.Create(ctx, &second, cust)
			if tt.wantDup {
				if !errors.Is(err, triage.ErrDuplicate) {
					t.Fatalf("second Create error = %v, want ErrDuplicate", err)
				}
				if !strings.Contains(err.Error(), tt.wantSecond) {
					t.Errorf("duplicate error %q does not name %s", err, tt.wantSecond)
				}
				if second.ID != "" {
					t.Errorf("duplicate Create changed the caller's ticket: ID %q", second.ID)
				}
				if !got.ReceivedAt.Equal(tt.first.ReceivedAt) {
					t.Errorf("duplicate returned ReceivedAt %v, want the existing ticket's %v", got.ReceivedAt, tt.first.ReceivedAt)
				}
			} else if err != nil {
				t.Fatalf("second Create: %v", err)
			}
			if got.ID != tt.wantSecond {
				t.Errorf("second Create returned %s, want %s", got.ID, tt.wantSecond)
			}
			n, err := db.Count(ctx)
			if err != nil || n != tt.wantTotal {
				t.Errorf("Count = %d, %v; want %d", n, err, tt.wantTotal)
			}
			events, err := db.Audit(ctx, "CB-000001")
			if err != nil || len(events) != 1 {
				t.Errorf("audit of the first ticket = %v, %v; want one event", events, err)
			}
		})
	}
}

func TestIdentityMerge(t *testing.T) {
	type step struct {
		customer triage.Customer
		want     string // customer ID the ticket is filed under
	}
	tests := []struct {
		name  string
		steps []step
		// check is the customer to inspect after all steps, and its expected
		// identity fields.
		check triage.Customer
	}{
		{
			name: "email is case-insensitive",
			steps: []step{
				{triage.Customer{Email: "Ana@Example.com"}, "CU-000001"},
				{triage.Customer{Email: " ana@example.COM "}, "CU-000001"},
				{triage.Customer{Email: "other@example.com"}, "CU-000002"},
			},
			check: triage.Customer{ID: "CU-000001", Email: "Ana@Example.com"},
		},
		{
			name: "email then Slack ID, both keys on one inbound",
			steps: []step{
				{triage.Customer{Email: "ana@example.com"}, "CU-000001"},
				{triage.Customer{Email: "ana@example.com", SlackUserID: "U123"}, "CU-000001"},
				{triage.Customer{SlackUserID: "U123"}, "CU-000001"},
				{triage.Customer{Handle: "@Ana_Shop", SlackUserID: "U123"}, "CU-000001"},
				{triage.Customer{Handle: "ana_shop"}, "CU-000001"},
			},
			check: triage.Customer{ID: "CU-000001", Email: "ana@example.com", SlackUserID: "U123", Handle: "@Ana_Shop"},
		},
		{
			name: "keys on two customers resolve to the first and stay put",
			steps: []step{
				{triage.Customer{Email: "ana@example.com"}, "CU-000001"},
				{triage.Customer{SlackUserID: "U999"}, "CU-000002"},
				{triage.Customer{Email: "ana@example.com", SlackUserID: "U999"}, "CU-000001"},
				{triage.Customer{SlackUserID: "U999"}, "CU-000002"},
			},
			check: triage.Customer{ID: "CU-000001", Email: "ana@example.com"},
		},
		{
			name: "no identity is a new customer each time",
			steps: []step{
				{triage.Customer{Name: "walk-in"}, "CU-000001"},
				{triage.Customer{Name: "walk-in"}, "CU-000002"},
			},
			check: triage.Customer{ID: "CU-000002"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			for i, s := range tt.steps {
				got := mustCreate(t, db, newTicket(triage.SourceWebhook, fmt.Sprint(i), t0), s.customer)
				if got.CustomerID != s.want {
					t.Errorf("step %d (%+v): customer %s, want %s", i, s.customer, got.CustomerID, s.want)
				}
			}
			c, err := db.Customer(context.Background(), tt.check.ID)
			if err != nil {
				t.Fatal(err)
			}
			if c.Email != tt.check.Email || c.SlackUserID != tt.check.SlackUserID || c.Handle != tt.check.Handle {
				t.Errorf("customer %s = email %q slack %q handle %q, want %q %q %q", c.ID,
					c.Email, c.SlackUserID, c.Handle, tt.check.Email, tt.check.SlackUserID, tt.check.Handle)
			}
		})
	}
}

func TestCustomerDetailsMerge(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	mustCreate(t, db, newTicket(triage.SourceEmail, "1", t0), triage.Customer{
		Email: "vip@example.com", Tags: []string{"wholesale"}, FirstSeen: t0.AddDate(-1, 0, 0)})
	mustCreate(t, db, newTicket(triage.SourceWebhook, "2", t0), triage.Customer{
		Email: "vip@example.com", Name: "Vi P", VIP: true, Tags: []string{"wholesale", "gold"},
		Lifetime: triage.Money{Minor: 120000, Currency: "USD"}})
	mustCreate(t, db, newTicket(triage.SourceWebhook, "3", t0), triage.Customer{Email: "vip@example.com", Name: "Someone Else"})

	c, err := db.Customer(ctx, "CU-000001")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Vi P" || !c.VIP || !slices.Equal(c.Tags, []string{"wholesale", "gold"}) ||
		c.Lifetime.Minor != 120000 || !c.FirstSeen.Equal(t0.AddDate(-1, 0, 0)) {
		t.Errorf("merged customer = %+v", c)
	}
}

func TestUpdateWritesNothingOnFailure(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		fn      func(*triage.Ticket) (triage.AuditEvent, error)
		wantErr error
		wantMsg string
	}{
		{"fn fails", func(tk *triage.Ticket) (triage.AuditEvent, error) {
			tk.State = triage.StateEscalated
			tk.Draft = "changed"
			return triage.AuditEvent{Actor: "U1", Action: "escalated"}, errBoom
		}, errBoom, "boom"},
		{"event without actor", func(tk *triage.Ticket) (triage.AuditEvent, error) {
			tk.State = triage.StateEscalated
			return triage.AuditEvent{Action: "escalated"}, nil
		}, nil, "no actor"},
		{"event without action", func(tk *triage.Ticket) (triage.AuditEvent, error) {
			tk.State = triage.StateEscalated
			return triage.AuditEvent{Actor: "U1"}, nil
		}, nil, "no action"},
		{"event for another ticket", func(tk *triage.Ticket) (triage.AuditEvent, error) {
			tk.State = triage.StateEscalated
			return triage.AuditEvent{TicketID: "CB-000002", Actor: "U1", Action: "escalated"}, nil
		}, nil, "names ticket CB-000002"},
		{"indexed field changed", func(tk *triage.Ticket) (triage.AuditEvent, error) {
			tk.ReceivedAt = tk.ReceivedAt.Add(time.Hour)
			tk.CustomerID = "CU-000009"
			return triage.AuditEvent{Actor: "U1", Action: "edited"}, nil
		}, nil, "[customer_id received_at]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			ctx := context.Background()
			created := mustCreate(t, db, newTicket(triage.SourceSlack, "m1", t0), triage.Customer{SlackUserID: "U7"})
			_, err := db.Update(ctx, created.ID, tt.fn)
			if err == nil {
				t.Fatal("Update succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Update error = %v, want it to wrap %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Update error = %q, want it to mention %q", err, tt.wantMsg)
			}
			got, err := db.Get(ctx, created.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != triage.StateReceived || got.Draft != "" || !got.ReceivedAt.Equal(t0) || got.CustomerID != created.CustomerID {
				t.Errorf("ticket changed by a failed Update: %+v", got)
			}
			events, err := db.Audit(ctx, created.ID)
			if err != nil || len(events) != 1 {
				t.Errorf("audit after failed Update = %+v, %v; want only the received event", events, err)
			}
		})
	}
}

func TestEveryUpdateIsAudited(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	created := mustCreate(t, db, newTicket(triage.SourceSlack, "m1", t0), triage.Customer{SlackUserID: "U7"})
	path := []triage.State{triage.StateTriaged, triage.StateAwaitingReview, triage.StateEscalated, triage.StateResolved}
	for i, next := range path {
		at := t0.Add(time.Duration(i+1) * time.Minute)
		_, err := db.Update(ctx, created.ID, func(tk *triage.Ticket) (triage.AuditEvent, error) {
			return triage.AuditEvent{Actor: "U42", Action: string(next), At: at}, tk.Transition(next)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	events, err := db.Audit(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(path)+1 {
		t.Fatalf("got %d audit events, want %d", len(events), len(path)+1)
	}
	prev := triage.StateReceived
	for i, next := range path {
		ev := events[i+1]
		if ev.From != prev || ev.To != next || ev.Actor != "U42" || !ev.At.Equal(t0.Add(time.Duration(i+1)*time.Minute)) {
			t.Errorf("event %d = %+v, want %s→%s by U42", i+1, ev, prev, next)
		}
		prev = next
	}
}

// createOverDays stores one ticket every 6 hours for the given days, starting
// at t0, all from one customer, and returns them in order.
func createOverDays(t *testing.T, db *DB, days int) []triage.Ticket {
	t.Helper()
	var out []triage.Ticket
	for i := range days * 4 {
		at := t0.Add(time.Duration(i) * 6 * time.Hour)
		out = append(out, mustCreate(t, db, newTicket(triage.SourceWebhook, fmt.Sprint(i), at), triage.Customer{Email: "w@example.com"}))
	}
	return out
}

func TestWindowReadsOnlyTheWindow(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	all := createOverDays(t, db, 10)
	from, to := t0.AddDate(0, 0, 3), t0.AddDate(0, 0, 6)

	// Records outside the window are made unreadable: the query must still
	// succeed, which it can only do if it never touches them.
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, tk := range all {
			if tk.ReceivedAt.Before(from) || !tk.ReceivedAt.Before(to) {
				if err := tx.Bucket(bucketTickets).Put([]byte(tk.ID), []byte("garbage")); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var got []string
	err = db.Window(ctx, from, to, func(tk triage.Ticket) error {
		got = append(got, tk.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("Window: %v", err)
	}
	var want []string
	for _, tk := range all {
		if !tk.ReceivedAt.Before(from) && tk.ReceivedAt.Before(to) {
			want = append(want, tk.ID)
		}
	}
	if len(want) != 12 || !slices.Equal(got, want) {
		t.Errorf("Window = %v, want %v (12 tickets, oldest first)", got, want)
	}
}

func TestWindowCases(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	createOverDays(t, db, 10)
	errStop := errors.New("stop")
	tests := []struct {
		name     string
		from, to time.Time
		stopAt   int
		want     int
		wantErr  error
	}{
		{"everything", time.Time{}, t0.AddDate(1, 0, 0), -1, 40, nil},
		{"empty range", t0.AddDate(0, 0, 5), t0.AddDate(0, 0, 5), -1, 0, nil},
		{"reversed range", t0.AddDate(0, 0, 6), t0.AddDate(0, 0, 3), -1, 0, nil},
		{"before any ticket", t0.AddDate(0, 0, -9), t0, -1, 0, nil},
		{"start is inclusive, end exclusive", t0, t0.Add(6 * time.Hour), -1, 1, nil},
		{"fn error stops the walk", time.Time{}, t0.AddDate(1, 0, 0), 3, 3, errStop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			var last time.Time
			err := db.Window(ctx, tt.from, tt.to, func(tk triage.Ticket) error {
				if tk.ReceivedAt.Before(last) {
					t.Errorf("%s out of order", tk.ID)
				}
				last = tk.ReceivedAt
				if n == tt.stopAt {
					return errStop
				}
				n++
				return nil
			})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Window error = %v, want %v", err, tt.wantErr)
			}
			if n != tt.want {
				t.Errorf("Window visited %d tickets, want %d", n, tt.want)
			}
		})
	}
}

func TestWindowSpansBatchesAndAllowsCallbacks(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	total := windowBatchSize*2 + 7
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		for i := range total {
			tk := triage.Ticket{ID: fmt.Sprintf(ticketIDFormat, i+1), ReceivedAt: t0.Add(time.Duration(i) * time.Second)}
			if err := putTicket(b, tk); err != nil {
				return err
			}
			if err := b.byTime.Put(byTimeKey(tk.ReceivedAt, tk.ID), []byte(tk.ID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	err = db.Window(ctx, t0, t0.Add(time.Hour), func(tk triage.Ticket) error {
		seen++
		if want := fmt.Sprintf(ticketIDFormat, seen); tk.ID != want {
			return fmt.Errorf("ticket %d is %s, want %s", seen, tk.ID, want)
		}
		// A write from inside the callback must not deadlock with the read.
		if seen%windowBatchSize == 1 {
			_, err := db.Update(ctx, tk.ID, func(tk *triage.Ticket) (triage.AuditEvent, error) {
				tk.Reviewed = true
				return triage.AuditEvent{Actor: "U1", Action: "reviewed"}, nil
			})
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != total {
		t.Errorf("Window visited %d tickets, want %d", seen, total)
	}
}

func TestCustomerTickets(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	ana := triage.Customer{Email: "ana@example.com"}
	bo := triage.Customer{Email: "bo@example.com"}
	for i := range 5 {
		mustCreate(t, db, newTicket(triage.SourceEmail, fmt.Sprint("a", i), t0.AddDate(0, 0, i*10)), ana)
		mustCreate(t, db, newTicket(triage.SourceEmail, fmt.Sprint("b", i), t0.AddDate(0, 0, i*10)), bo)
	}
	tests := []struct {
		name     string
		customer string
		since    time.Time
		want     []time.Time
	}{
		{"all, newest first", "CU-000001", time.Time{}, []time.Time{t0.AddDate(0, 0, 40), t0.AddDate(0, 0, 30), t0.AddDate(0, 0, 20), t0.AddDate(0, 0, 10), t0}},
		{"since is inclusive", "CU-000002", t0.AddDate(0, 0, 30), []time.Time{t0.AddDate(0, 0, 40), t0.AddDate(0, 0, 30)}},
		{"nothing since", "CU-000001", t0.AddDate(1, 0, 0), nil},
		{"unknown customer", "CU-000003", time.Time{}, nil},
		{"prefix of a real customer ID", "CU-00000", time.Time{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.CustomerTickets(ctx, tt.customer, tt.since)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d tickets, want %d", len(got), len(tt.want))
			}
			for i, tk := range got {
				if tk.CustomerID != tt.customer || !tk.ReceivedAt.Equal(tt.want[i]) {
					t.Errorf("ticket %d = %s of %s at %v, want %v", i, tk.ID, tk.CustomerID, tk.ReceivedAt, tt.want[i])
				}
			}
		})
	}
}

func TestReopenPersists(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	first := mustCreate(t, db, newTicket(triage.SourceSlack, "m1", t0), triage.Customer{SlackUserID: "U1"})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Get(ctx, first.ID)
	if err != nil || got.ExternalID != "m1" {
		t.Fatalf("after reopen Get = %+v, %v", got, err)
	}
	if _, err := db.Create(ctx, newTicket(triage.SourceSlack, "m1", t0), triage.Customer{}); !errors.Is(err, triage.ErrDuplicate) {
		t.Errorf("re-delivery after reopen: error = %v, want ErrDuplicate", err)
	}
	second := mustCreate(t, db, newTicket(triage.SourceSlack, "m2", t0), triage.Customer{SlackUserID: "U1"})
	if second.ID != "CB-000002" || second.CustomerID != first.CustomerID {
		t.Errorf("second ticket after reopen = %s of %s, want CB-000002 of %s", second.ID, second.CustomerID, first.CustomerID)
	}
	if n, err := db.Count(ctx); err != nil || n != 2 {
		t.Errorf("Count = %d, %v; want 2", n, err)
	}
}

func TestConcurrentCreates(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	const workers, each = 8, 10
	ids := make(chan string, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				tk := newTicket(triage.SourceWebhook, fmt.Sprintf("w%d-%d", w, i), t0)
				got, err := db.Create(ctx, tk, triage.Customer{Email: fmt.Sprintf("c%d@example.com", i)})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- got.ID
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("ID %s assigned twice", id)
		}
		seen[id] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct IDs, want %d", len(seen), workers*each)
	}
	if n, err := db.Count(ctx); err != nil || n != workers*each {
		t.Errorf("Count = %d, %v; want %d", n, err, workers*each)
	}
	// Same email from 8 workers at once: still one customer per email.
	for i := range each {
		got, err := db.CustomerTickets(ctx, fmt.Sprintf(customerIDFormat, i+1), time.Time{})
		if err != nil || len(got) != workers {
			t.Errorf("customer %d has %d tickets (%v), want %d", i+1, len(got), err, workers)
		}
	}
}

func TestCorruptRecords(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		corrupt bool
		wantMsg string
	}{
		{"not JSON", "\x00\xffgarbage", true, "envelope"},
		{"truncated", `{"v":1,"data":{"id":"CB-000001","bo`, true, "envelope"},
		{"no version", `{"data":{"id":"CB-000001"}}`, true, "no version"},
		{"no data", `{"v":1}`, true, "no data"},
		{"null data", `{"v":1,"data":null}`, true, "no data"},
		{"wrong field type", `{"v":1,"data":{"id":"CB-000001","received_at":42}}`, true, "data"},
		{"future version", `{"v":2,"data":{"id":"CB-000001"}}`, false, "record version 2 is newer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			ctx := context.Background()
			created := mustCreate(t, db, newTicket(triage.SourceSlack, "m1", t0), triage.Customer{SlackUserID: "U1"})
			err := db.bolt.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketTickets).Put([]byte(created.ID), []byte(tt.raw))
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.Get(ctx, created.ID)
			if err == nil {
				t.Fatal("Get of a corrupt record succeeded")
			}
			if errors.Is(err, ErrCorrupt) != tt.corrupt {
				t.Errorf("Get error = %v; wraps ErrCorrupt = %v, want %v", err, !tt.corrupt, tt.corrupt)
			}
			for _, want := range []string{created.ID, tt.wantMsg} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Get error %q does not mention %q", err, want)
				}
			}
			if err := db.Window(ctx, t0, t0.Add(time.Hour), func(triage.Ticket) error { return nil }); err == nil {
				t.Error("Window over a corrupt record succeeded")
			}
			if _, err := db.Create(ctx, newTicket(triage.SourceSlack, "m1", t0), triage.Customer{}); err == nil || errors.Is(err, triage.ErrDuplicate) {
				t.Errorf("duplicate of a corrupt ticket: error = %v, want a decode error", err)
			}
		})
	}
}

func TestOlderAndNewerRecordsDecode(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want triage.Ticket
	}{
		{"written with fewer fields", `{"v":1,"data":{"id":"CB-000007","body":"hi","state":"received"}}`,
			triage.Ticket{ID: "CB-000007", Body: "hi", State: triage.StateReceived}},
		{"with a field this version does not know", `{"v":1,"data":{"id":"CB-000007","state":"triaged","sla_breach_at":"2030-01-01T00:00:00Z"},"written_by":"casebot 9"}`,
			triage.Ticket{ID: "CB-000007", State: triage.StateTriaged}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got triage.Ticket
			if err := decodeRecord([]byte(tt.raw), &got); err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.want.ID || got.Body != tt.want.Body || got.State != tt.want.State ||
				!got.ReceivedAt.IsZero() || got.Classification.Flags != nil || got.DraftRevision != 0 {
				t.Errorf("decoded %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestContextCancelled(t *testing.T) {
	db, _ := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Create(ctx, newTicket(triage.SourceSlack, "m1", t0), triage.Customer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Create error = %v, want context.Canceled", err)
	}
	if n, _ := db.Count(context.Background()); n != 0 {
		t.Errorf("Count = %d after a cancelled Create", n)
	}
	if err := db.Window(ctx, t0, t0.Add(time.Hour), func(triage.Ticket) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Window error = %v, want context.Canceled", err)
	}
}

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Unix(0, 0),
		t0,
		t0.Add(time.Nanosecond),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := timeKey(times[i-1]), timeKey(times[i])
		if string(a[:]) > string(b[:]) {
			t.Errorf("timeKey(%v) sorts after timeKey(%v)", times[i-1], times[i])
		}
	}
}

func TestGroupCommit(t *testing.T) {
	long := strings.Repeat("x", 40_000) // over bbolt's key size limit
	tests := []struct {
		name     string
		exts     []string
		wantErr  []bool
		wantDup  []bool
		wantIDs  []string
		wantSeen int
	}{
		{"all succeed", []string{"a", "b", "c"}, []bool{false, false, false}, []bool{false, false, false},
			[]string{"CB-000001", "CB-000002", "CB-000003"}, 3},
		{"a failing member leaves its neighbours stored", []string{"a", long, "c"}, []bool{false, true, false}, []bool{false, false, false},
			[]string{"CB-000001", "", "CB-000002"}, 2},
		{"duplicate inside one group", []string{"a", "a"}, []bool{false, false}, []bool{false, true},
			[]string{"CB-000001", "CB-000001"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			ctx := context.Background()
			var reqs []*createReq
			for _, ext := range tt.exts {
				reqs = append(reqs, &createReq{ticket: *newTicket(triage.SourceWebhook, ext, t0),
					customer: triage.Customer{Email: "g@example.com"}, now: t0, done: make(chan struct{})})
			}
			db.commitGroup(reqs)
			for i, r := range reqs {
				select {
				case <-r.done:
				default:
					t.Fatalf("request %d not answered", i)
				}
				if (r.err != nil) != tt.wantErr[i] || r.dup != tt.wantDup[i] {
					t.Errorf("request %d: err %v dup %v, want error %v dup %v", i, r.err, r.dup, tt.wantErr[i], tt.wantDup[i])
				}
				if r.err == nil && r.stored.ID != tt.wantIDs[i] {
					t.Errorf("request %d stored as %s, want %s", i, r.stored.ID, tt.wantIDs[i])
				}
			}
			if n, err := db.Count(ctx); err != nil || n != tt.wantSeen {
				t.Errorf("Count = %d, %v; want %d", n, err, tt.wantSeen)
			}
			for i := range tt.wantSeen {
				events, err := db.Audit(ctx, fmt.Sprintf(ticketIDFormat, i+1))
				if err != nil || len(events) != 1 {
					t.Errorf("audit of ticket %d = %v, %v; want one event", i+1, events, err)
				}
			}
		})
	}
}

func TestCreateErrorClipsExternalID(t *testing.T) {
	db, _ := openTest(t)
	_, err := db.Create(context.Background(), newTicket(triage.SourceWebhook, strings.Repeat("x", 40_000), t0), triage.Customer{})
	if err == nil {
		t.Fatal("Create with a 40 kB external ID succeeded")
	}
	if len(err.Error()) > 300 {
		t.Errorf("error is %d bytes long", len(err.Error()))
	}
	if n, _ := db.Count(context.Background()); n != 0 {
		t.Errorf("Count = %d after a failed Create", n)
	}
}

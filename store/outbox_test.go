package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// routed creates a ticket and routes it to channel, as triage's Classify
// would, without posts.
func routed(t *testing.T, db *DB, ext, channel string) triage.Ticket {
	t.Helper()
	tk := mustCreate(t, db, newTicket(triage.SourceWebhook, ext, t0), triage.Customer{Email: ext + "@example.com"})
	got, err := db.Update(context.Background(), tk.ID, func(tk *triage.Ticket) (triage.AuditEvent, error) {
		tk.Route.Channel = channel
		tk.State = triage.StateAwaitingReview
		return triage.AuditEvent{Actor: triage.ActorSystem, Action: "triaged"}, nil
	})
	if err != nil {
		t.Fatalf("route %s to %q: %v", tk.ID, channel, err)
	}
	return got
}

// announce updates a ticket without changing its state, attaching posts.
func announce(ctx context.Context, db *DB, id string, posts ...triage.Post) error {
	_, err := db.Update(ctx, id, func(*triage.Ticket) (triage.AuditEvent, error) {
		return triage.AuditEvent{Actor: "U1", Action: "noted", Posts: posts}, nil
	})
	return err
}

// pending returns every pending post of channel.
func pending(t *testing.T, db *DB, channel string) []triage.Post {
	t.Helper()
	ps, err := db.Pending(context.Background(), channel, 1<<20)
	if err != nil {
		t.Fatalf("Pending(%q): %v", channel, err)
	}
	return ps
}

func channels(t *testing.T, db *DB) []string {
	t.Helper()
	chs, err := db.Channels(context.Background())
	if err != nil {
		t.Fatalf("Channels: %v", err)
	}
	return chs
}

func details(ps []triage.Post) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Detail
	}
	return out
}

// checkIDsAscend fails unless the posts' IDs, read as numbers and as
// strings, strictly increase.
func checkIDsAscend(t *testing.T, ps []triage.Post) {
	t.Helper()
	var prev uint64
	for i, p := range ps {
		n, err := strconv.ParseUint(p.ID, 10, 64)
		if err != nil {
			t.Fatalf("post %d: ID %q is not a sequence: %v", i, p.ID, err)
		}
		if i > 0 && (n <= prev || p.ID <= ps[i-1].ID) {
			t.Errorf("post %d: ID %s does not follow %s", i, p.ID, ps[i-1].ID)
		}
		prev = n
	}
}

func TestUpdateEnqueuesPostsWithDefaults(t *testing.T) {
	at := t0.Add(5 * time.Minute)
	given := t0.Add(time.Hour)
	tests := []struct {
		name  string
		route string // the ticket's Route.Channel after fn
		evAt  time.Time
		post  triage.Post
		want  triage.Post // ID and TicketID are checked separately
	}{
		{
			name:  "empty channel takes the route",
			route: "C-QUEUE",
			evAt:  at,
			post:  triage.Post{Kind: triage.PostCard},
			want:  triage.Post{Kind: triage.PostCard, Channel: "C-QUEUE", CreatedAt: at},
		},
		{
			name:  "explicit channel is kept",
			route: "C-QUEUE",
			evAt:  at,
			post:  triage.Post{Kind: triage.PostEscalation, Channel: "C-ESC", Mentions: []string{"U9"}},
			want:  triage.Post{Kind: triage.PostEscalation, Channel: "C-ESC", Mentions: []string{"U9"}, CreatedAt: at},
		},
		{
			name:  "given CreatedAt is kept",
			route: "C-QUEUE",
			evAt:  at,
			post:  triage.Post{Kind: triage.PostThread, CreatedAt: given, Detail: "d"},
			want:  triage.Post{Kind: triage.PostThread, Channel: "C-QUEUE", CreatedAt: given, Detail: "d"},
		},
		{
			name:  "zero event time means the clock's now",
			route: "C-QUEUE",
			post:  triage.Post{Kind: triage.PostThread},
			want:  triage.Post{Kind: triage.PostThread, Channel: "C-QUEUE", CreatedAt: t0},
		},
		{
			name:  "an unrouted ticket can still post to an explicit channel",
			route: "",
			evAt:  at,
			post:  triage.Post{Kind: triage.PostEscalation, Channel: "C-ESC"},
			want:  triage.Post{Kind: triage.PostEscalation, Channel: "C-ESC", CreatedAt: at},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openTest(t)
			ctx := context.Background()
			tk := mustCreate(t, db, newTicket(triage.SourceWebhook, "w", t0), triage.Customer{})
			_, err := db.Update(ctx, tk.ID, func(tk *triage.Ticket) (triage.AuditEvent, error) {
				tk.Route.Channel = tc.route
				return triage.AuditEvent{At: tc.evAt, Actor: "U1", Action: "noted", Posts: []triage.Post{tc.post}}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			ps := pending(t, db, tc.want.Channel)
			if len(ps) != 1 {
				t.Fatalf("pending in %q = %+v, want one post", tc.want.Channel, ps)
			}
			got := ps[0]
			if got.TicketID != tk.ID {
				t.Errorf("TicketID = %q, want %q", got.TicketID, tk.ID)
			}
			if got.ID == "" {
				t.Error("post has no ID")
			}
			if !got.CreatedAt.Equal(tc.want.CreatedAt) {
				t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, tc.want.CreatedAt)
			}
			got.ID, got.TicketID, got.CreatedAt, tc.want.CreatedAt = "", "", time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("post = %+v, want %+v", got, tc.want)
			}
			if chs := channels(t, db); !reflect.DeepEqual(chs, []string{tc.want.Channel}) {
				t.Errorf("Channels = %q, want [%q]", chs, tc.want.Channel)
			}
		})
	}
}

func TestUpdateKeepsPostOrderWithinChannel(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	tk := routed(t, db, "w", "C-QUEUE")
	err := announce(ctx, db, tk.ID,
		triage.Post{Kind: triage.PostCardUpdate, Detail: "1"},
		triage.Post{Kind: triage.PostThread, Detail: "2"},
		triage.Post{Kind: triage.PostEscalation, Channel: "C-ESC", Detail: "esc"},
		triage.Post{Kind: triage.PostThread, Detail: "3"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := announce(ctx, db, tk.ID, triage.Post{Kind: triage.PostCardUpdate, Detail: "4"}); err != nil {
		t.Fatal(err)
	}
	queue := pending(t, db, "C-QUEUE")
	if got, want := details(queue), []string{"1", "2", "3", "4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("C-QUEUE = %q, want %q", got, want)
	}
	checkIDsAscend(t, queue)
	if got := details(pending(t, db, "C-ESC")); !reflect.DeepEqual(got, []string{"esc"}) {
		t.Errorf("C-ESC = %q, want [esc]", got)
	}
	if chs := channels(t, db); !reflect.DeepEqual(chs, []string{"C-ESC", "C-QUEUE"}) {
		t.Errorf("Channels = %q", chs)
	}
	first, err := db.Pending(ctx, "C-QUEUE", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := details(first); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Errorf("Pending(2) = %q, want the two oldest", got)
	}
}

// A failed Update must leave no post behind: the posts announce a change that
// did not happen.
func TestFailedUpdateEnqueuesNothing(t *testing.T) {
	posts := []triage.Post{{Kind: triage.PostCardUpdate}, {Kind: triage.PostThread, Channel: "C-OTHER"}}
	boom := errors.New("boom")
	tests := []struct {
		name    string
		route   string
		fn      func(*triage.Ticket) (triage.AuditEvent, error)
		wantErr error
	}{
		{
			name:  "fn fails",
			route: "C-QUEUE",
			fn: func(tk *triage.Ticket) (triage.AuditEvent, error) {
				tk.State = triage.StateEscalated
				return triage.AuditEvent{Actor: "U1", Action: "escalated", Posts: posts}, boom
			},
			wantErr: boom,
		},
		{
			name:  "event invalid",
			route: "C-QUEUE",
			fn: func(*triage.Ticket) (triage.AuditEvent, error) {
				return triage.AuditEvent{Action: "noted", Posts: posts}, nil
			},
		},
		{
			name:  "post without a channel on an unrouted ticket",
			route: "",
			fn: func(tk *triage.Ticket) (triage.AuditEvent, error) {
				tk.Draft = "changed"
				return triage.AuditEvent{Actor: "U1", Action: "noted", Posts: posts}, nil
			},
			wantErr: ErrNoChannel,
		},
		{
			name:  "route removed by the change",
			route: "C-QUEUE",
			fn: func(tk *triage.Ticket) (triage.AuditEvent, error) {
				tk.Route = triage.Route{}
				return triage.AuditEvent{Actor: "U1", Action: "rerouted", Posts: posts}, nil
			},
			wantErr: ErrNoChannel,
		},
		{
			name:  "post without a kind",
			route: "C-QUEUE",
			fn: func(*triage.Ticket) (triage.AuditEvent, error) {
				return triage.AuditEvent{Actor: "U1", Action: "noted", Posts: append(posts[:1:1], triage.Post{})}, nil
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openTest(t)
			ctx := context.Background()
			tk := mustCreate(t, db, newTicket(triage.SourceWebhook, "w", t0), triage.Customer{})
			if tc.route != "" {
				tk = routed(t, db, "r", tc.route)
			}
			before, err := db.Audit(ctx, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.Update(ctx, tk.ID, tc.fn)
			if err == nil {
				t.Fatal("Update succeeded")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Update error = %v, want %v", err, tc.wantErr)
			}
			if chs := channels(t, db); len(chs) != 0 {
				t.Errorf("Channels after a failed Update = %q, want none", chs)
			}
			got, err := db.Get(ctx, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tk) {
				t.Errorf("ticket changed by a failed Update:\n got %+v\nwant %+v", got, tk)
			}
			after, err := db.Audit(ctx, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Errorf("audit grew from %d to %d events", len(before), len(after))
			}
		})
	}
}

// Interleaved changes to tickets routed to three channels, plus direct
// Enqueues: every channel must hold exactly its posts, in write order.
func TestOutboxOrderAcrossChannels(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	chans := []string{"C-A", "C-B", "C-C"}
	// Two tickets per channel, so a channel's posts come from several
	// tickets.
	var tickets []triage.Ticket
	for i := range 6 {
		tickets = append(tickets, routed(t, db, fmt.Sprint("w", i), chans[i%3]))
	}
	want := map[string][]string{}
	for step := range 60 {
		detail := fmt.Sprint("step ", step)
		if step%7 == 3 {
			ch := chans[(step/7)%3]
			if err := db.Enqueue(ctx, triage.Post{Kind: triage.PostThread, Channel: ch, Detail: detail}); err != nil {
				t.Fatal(err)
			}
			want[ch] = append(want[ch], detail)
			continue
		}
		tk := tickets[(step*5)%len(tickets)]
		if err := announce(ctx, db, tk.ID, triage.Post{Kind: triage.PostCardUpdate, Detail: detail}); err != nil {
			t.Fatal(err)
		}
		want[tk.Route.Channel] = append(want[tk.Route.Channel], detail)
	}
	if chs := channels(t, db); !reflect.DeepEqual(chs, chans) {
		t.Errorf("Channels = %q, want %q", chs, chans)
	}
	for _, ch := range chans {
		ps := pending(t, db, ch)
		if got := details(ps); !reflect.DeepEqual(got, want[ch]) {
			t.Errorf("%s = %q\nwant %q", ch, got, want[ch])
		}
		checkIDsAscend(t, ps)
		for _, p := range ps {
			if p.Channel != ch {
				t.Errorf("post %s in %s says channel %q", p.ID, ch, p.Channel)
			}
		}
	}
}

func TestEnqueue(t *testing.T) {
	tests := []struct {
		name    string
		posts   func(routedID, unroutedID string) []triage.Post
		wantErr error // nil with wantOK false: any error
		wantOK  bool
		want    map[string][]string // channel → details
	}{
		{
			name: "explicit channel, no ticket",
			posts: func(string, string) []triage.Post {
				return []triage.Post{{Kind: triage.PostThread, Channel: "C-OPS", Detail: "pattern"}}
			},
			wantOK: true,
			want:   map[string][]string{"C-OPS": {"pattern"}},
		},
		{
			name: "ticket's route fills the channel",
			posts: func(r, _ string) []triage.Post {
				return []triage.Post{{Kind: triage.PostThread, TicketID: r, Detail: "follow-up"}}
			},
			wantOK: true,
			want:   map[string][]string{"C-QUEUE": {"follow-up"}},
		},
		{
			name: "no ticket and no channel",
			posts: func(string, string) []triage.Post {
				return []triage.Post{{Kind: triage.PostThread}}
			},
			wantErr: ErrNoChannel,
		},
		{
			name: "unrouted ticket and no channel",
			posts: func(_, u string) []triage.Post {
				return []triage.Post{{Kind: triage.PostThread, TicketID: u}}
			},
			wantErr: ErrNoChannel,
		},
		{
			name: "unknown ticket and no channel",
			posts: func(string, string) []triage.Post {
				return []triage.Post{{Kind: triage.PostThread, TicketID: "CB-999999"}}
			},
			wantErr: triage.ErrNotFound,
		},
		{
			name: "one bad post fails the batch",
			posts: func(r, _ string) []triage.Post {
				return []triage.Post{{Kind: triage.PostThread, TicketID: r}, {Kind: triage.PostThread}}
			},
			wantErr: ErrNoChannel,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openTest(t)
			ctx := context.Background()
			r := routed(t, db, "r", "C-QUEUE")
			u := mustCreate(t, db, newTicket(triage.SourceWebhook, "u", t0), triage.Customer{})
			err := db.Enqueue(ctx, tc.posts(r.ID, u.ID)...)
			switch {
			case tc.wantOK && err != nil:
				t.Fatalf("Enqueue: %v", err)
			case !tc.wantOK && err == nil:
				t.Fatal("Enqueue succeeded")
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("Enqueue error = %v, want %v", err, tc.wantErr)
			}
			got := map[string][]string{}
			for _, ch := range channels(t, db) {
				got[ch] = details(pending(t, db, ch))
			}
			if tc.want == nil {
				tc.want = map[string][]string{}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("outbox = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPendingArguments(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	if ps, err := db.Pending(ctx, "C-NONE", 10); err != nil || len(ps) != 0 {
		t.Errorf("Pending of an unknown channel = %v, %v; want none, nil", ps, err)
	}
	for _, n := range []int{0, -1} {
		if _, err := db.Pending(ctx, "C-NONE", n); err == nil {
			t.Errorf("Pending(n=%d) succeeded", n)
		}
	}
}

func TestDoneIsIdempotent(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	tk := routed(t, db, "w", "C-QUEUE")
	if err := announce(ctx, db, tk.ID,
		triage.Post{Kind: triage.PostThread, Detail: "a"},
		triage.Post{Kind: triage.PostThread, Detail: "b"}); err != nil {
		t.Fatal(err)
	}
	ps := pending(t, db, "C-QUEUE")
	auditBefore, err := db.Audit(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := db.Done(ctx, ps[0], triage.SlackRef{Channel: "C-QUEUE", TS: "1.1"}); err != nil {
			t.Fatalf("Done: %v", err)
		}
	}
	if got := details(pending(t, db, "C-QUEUE")); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("after Done of a: pending = %q, want [b]", got)
	}
	if err := db.Done(ctx, ps[1], triage.SlackRef{}); err != nil {
		t.Fatal(err)
	}
	if chs := channels(t, db); len(chs) != 0 {
		t.Errorf("Channels after draining = %q, want none", chs)
	}
	// A post in a channel that never had one is no more pending than one
	// already delivered.
	if err := db.Done(ctx, triage.Post{ID: ps[0].ID, Channel: "C-NEVER"}, triage.SlackRef{}); err != nil {
		t.Errorf("Done in an unknown channel: %v", err)
	}
	got, err := db.Get(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Slack != (triage.SlackRef{}) {
		t.Errorf("thread posts set the card reference: %+v", got.Slack)
	}
	auditAfter, err := db.Audit(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(auditAfter) != len(auditBefore) {
		t.Errorf("delivering thread posts added %d audit events", len(auditAfter)-len(auditBefore))
	}

	for _, bad := range []triage.Post{
		{ID: ps[0].ID},
		{ID: "", Channel: "C-QUEUE"},
		{ID: "P1", Channel: "C-QUEUE"},
	} {
		if err := db.Done(ctx, bad, triage.SlackRef{}); err == nil {
			t.Errorf("Done(%+v) succeeded", bad)
		}
		if err := db.Retry(ctx, bad); err == nil {
			t.Errorf("Retry(%+v) succeeded", bad)
		}
	}
}

func TestCardDoneRecordsSlackRef(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	tk := mustCreate(t, db, newTicket(triage.SourceWebhook, "w", t0), triage.Customer{})
	tk, err := db.Update(ctx, tk.ID, func(tk *triage.Ticket) (triage.AuditEvent, error) {
		tk.Route.Channel = "C-URGENT"
		tk.State = triage.StateEscalated
		return triage.AuditEvent{Actor: triage.ActorSystem, Action: "triaged",
			Posts: []triage.Post{{Kind: triage.PostCard}, {Kind: triage.PostEscalation, Channel: "C-ESC"}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ps := pending(t, db, "C-URGENT")
	if len(ps) != 1 || ps[0].Kind != triage.PostCard {
		t.Fatalf("C-URGENT = %+v, want the card", ps)
	}
	card := ps[0]

	for _, ref := range []triage.SlackRef{{Channel: "C-URGENT"}, {TS: "1.2"}} {
		if err := db.Done(ctx, card, ref); err == nil {
			t.Errorf("Done of a card with reference %+v succeeded", ref)
		}
	}
	if got := pending(t, db, "C-URGENT"); len(got) != 1 {
		t.Fatalf("a refused Done removed the card: %+v", got)
	}

	ref := triage.SlackRef{Channel: "C-URGENT", TS: "1700000000.000100"}
	// The caller's copy says thread; the stored record's kind decides.
	relabelled := card
	relabelled.Kind = triage.PostThread
	for range 2 {
		if err := db.Done(ctx, relabelled, ref); err != nil {
			t.Fatalf("Done: %v", err)
		}
	}
	got, err := db.Get(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Slack != ref {
		t.Errorf("ticket Slack = %+v, want %+v", got.Slack, ref)
	}
	if got.State != triage.StateEscalated {
		t.Errorf("state = %s, want it unchanged", got.State)
	}
	events, err := db.Audit(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	var posted []triage.AuditEvent
	for _, ev := range events {
		if ev.Action == ActionCardPosted {
			posted = append(posted, ev)
		}
	}
	if len(posted) != 1 {
		t.Fatalf("card_posted events = %+v, want exactly one", posted)
	}
	ev := posted[0]
	if ev.Actor != triage.ActorSystem || ev.From != triage.StateEscalated || ev.To != triage.StateEscalated ||
		ev.TicketID != tk.ID || !ev.At.Equal(t0) {
		t.Errorf("card_posted event = %+v", ev)
	}
	if got := details(pending(t, db, "C-ESC")); len(got) != 1 {
		t.Errorf("escalation post lost: C-ESC = %q", got)
	}
}

// A card whose ticket was erased before delivery must not block its channel.
func TestCardDoneForErasedTicket(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	tk := routed(t, db, "w", "C-QUEUE")
	if err := announce(ctx, db, tk.ID, triage.Post{Kind: triage.PostCard}); err != nil {
		t.Fatal(err)
	}
	card := pending(t, db, "C-QUEUE")[0]
	err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketTickets).Delete([]byte(tk.ID)) })
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Done(ctx, card, triage.SlackRef{Channel: "C-QUEUE", TS: "1.1"}); err != nil {
		t.Fatalf("Done: %v", err)
	}
	if got := pending(t, db, "C-QUEUE"); len(got) != 0 {
		t.Errorf("card of an erased ticket still pending: %+v", got)
	}
}

func TestRetryCountsAttempts(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	if err := db.Enqueue(ctx,
		triage.Post{Kind: triage.PostThread, Channel: "C-OPS", Detail: "a"},
		triage.Post{Kind: triage.PostThread, Channel: "C-OPS", Detail: "b"}); err != nil {
		t.Fatal(err)
	}
	head := pending(t, db, "C-OPS")[0]
	for range 3 {
		if err := db.Retry(ctx, head); err != nil {
			t.Fatalf("Retry: %v", err)
		}
	}
	ps := pending(t, db, "C-OPS")
	if got := details(ps); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("after Retry: %q, want the post still first", got)
	}
	if ps[0].Attempts != 3 || ps[1].Attempts != 0 {
		t.Errorf("attempts = %d, %d; want 3, 0", ps[0].Attempts, ps[1].Attempts)
	}
	if err := db.Done(ctx, head, triage.SlackRef{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Retry(ctx, head); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("Retry after Done: error = %v, want ErrNotFound", err)
	}
}

func TestOutboxSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "casebot.db")
	ctx := context.Background()
	db, err := Open(path, Options{Clock: &fixedClock{t: t0}})
	if err != nil {
		t.Fatal(err)
	}
	tk := routed(t, db, "w", "C-QUEUE")
	if err := announce(ctx, db, tk.ID,
		triage.Post{Kind: triage.PostCard, Detail: "card"},
		triage.Post{Kind: triage.PostThread, Detail: "thread", Mentions: []string{"U2"}}); err != nil {
		t.Fatal(err)
	}
	before := pending(t, db, "C-QUEUE")
	if err := db.Retry(ctx, before[0]); err != nil {
		t.Fatal(err)
	}
	before[0].Attempts++
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(path, Options{Clock: &fixedClock{t: t0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	after := pending(t, db, "C-QUEUE")
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("after reopen:\n got %+v\nwant %+v", after, before)
	}
	if err := db.Done(ctx, after[0], triage.SlackRef{Channel: "C-QUEUE", TS: "9.9"}); err != nil {
		t.Fatal(err)
	}
	if err := announce(ctx, db, tk.ID, triage.Post{Kind: triage.PostThread, Detail: "later"}); err != nil {
		t.Fatal(err)
	}
	ps := pending(t, db, "C-QUEUE")
	if got := details(ps); !reflect.DeepEqual(got, []string{"thread", "later"}) {
		t.Errorf("after reopen and Done: %q", got)
	}
	// The sequence carries on across the restart: no ID is handed out twice.
	checkIDsAscend(t, append(before[:1:1], ps...))
}

func TestConcurrentUpdatesEnqueue(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	const workers, updates = 8, 25
	chans := []string{"C-A", "C-B", "C-C"}
	tickets := make([]triage.Ticket, workers)
	for i := range tickets {
		tickets[i] = routed(t, db, fmt.Sprint("w", i), chans[i%len(chans)])
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for _, tk := range tickets {
		wg.Go(func() {
			for u := range updates {
				err := announce(ctx, db, tk.ID,
					triage.Post{Kind: triage.PostCardUpdate, Detail: fmt.Sprintf("%s %03d a", tk.ID, u)},
					triage.Post{Kind: triage.PostThread, Detail: fmt.Sprintf("%s %03d b", tk.ID, u)})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, ch := range channels(t, db) {
		ps := pending(t, db, ch)
		total += len(ps)
		checkIDsAscend(t, ps)
		// Each ticket's posts appear in the order its updates committed,
		// with no gap and no duplicate.
		last := map[string]string{}
		for _, p := range ps {
			if p.Channel != ch {
				t.Errorf("post %s of %s in %s says %q", p.ID, p.TicketID, ch, p.Channel)
			}
			if prev := last[p.TicketID]; p.Detail <= prev {
				t.Errorf("%s: %q after %q", ch, p.Detail, prev)
			}
			last[p.TicketID] = p.Detail
		}
	}
	if want := workers * updates * 2; total != want {
		t.Errorf("pending posts = %d, want %d", total, want)
	}
}

// BenchmarkEnqueueDrain enqueues 1000 posts over 5 channels in one
// transaction, then drains them as the bot would: Pending a page per channel
// and one Done (one commit, one fsync) per delivered post.
func BenchmarkEnqueueDrain(b *testing.B) {
	db, _ := openTest(b)
	ctx := context.Background()
	const posts, page = 1000, 50
	chans := []string{"C-1", "C-2", "C-3", "C-4", "C-5"}
	batch := make([]triage.Post, posts)
	for i := range batch {
		batch[i] = triage.Post{Kind: triage.PostThread, Channel: chans[i%len(chans)], Detail: "resolved: refund issued"}
	}
	var delivered int64
	for b.Loop() {
		if err := db.Enqueue(ctx, batch...); err != nil {
			b.Fatal(err)
		}
		for {
			chs, err := db.Channels(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if len(chs) == 0 {
				break
			}
			for _, ch := range chs {
				ps, err := db.Pending(ctx, ch, page)
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range ps {
					if err := db.Done(ctx, p, triage.SlackRef{}); err != nil {
						b.Fatal(err)
					}
					delivered++
				}
			}
		}
	}
	if delivered != int64(b.N)*posts {
		b.Fatalf("delivered %d posts, want %d", delivered, int64(b.N)*posts)
	}
	b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "posts/s")
}

// TestCardDoneEmptyRefDrops: a card Slack will never take is removed with an
// empty reference, audited, and no longer blocks its channel.
func TestCardDoneEmptyRefDrops(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	tk := mustCreate(t, db, newTicket(triage.SourceWebhook, "w", t0), triage.Customer{})
	if _, err := db.Update(ctx, tk.ID, func(tk *triage.Ticket) (triage.AuditEvent, error) {
		tk.Route.Channel = "C-Q"
		return triage.AuditEvent{Actor: triage.ActorSystem, Action: "triaged",
			Posts: []triage.Post{{Kind: triage.PostCard}, {Kind: triage.PostThread}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	ps := pending(t, db, "C-Q")
	if err := db.Done(ctx, ps[0], triage.SlackRef{}); err != nil {
		t.Fatal(err)
	}
	if got := pending(t, db, "C-Q"); len(got) != 1 || got[0].Kind != triage.PostThread {
		t.Fatalf("after the drop C-Q = %+v, want only the thread post", got)
	}
	audit, err := db.Audit(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := audit[len(audit)-1]; last.Action != ActionCardDropped {
		t.Errorf("last audit action %q, want %q", last.Action, ActionCardDropped)
	}
	if got, err := db.Get(ctx, tk.ID); err != nil || got.Slack != (triage.SlackRef{}) {
		t.Errorf("ticket Slack ref %+v, %v; want none", got.Slack, err)
	}
}

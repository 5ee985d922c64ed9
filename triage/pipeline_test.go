package triage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// waitFor polls cond; the pipeline works in the background.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func startPipeline(t *testing.T, f *fixture, opts triage.PipelineOptions) *triage.Pipeline {
	t.Helper()
	p := triage.NewPipeline(f.tr, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func TestPipelineClassifiesThenDrafts(t *testing.T) {
	f := newFixture(t, &triagetest.Classifier{Result: calm})
	f.tr.Drafter = &triagetest.Drafter{Result: triage.Draft{Brief: "b", Reply: "r"}}
	var kicks atomic.Int32
	p := startPipeline(t, f, triage.PipelineOptions{Kick: func() { kicks.Add(1) }})
	tk, err := f.tr.Intake(context.Background(), f.inbound("m1", "where is my parcel?", ann))
	if err != nil {
		t.Fatal(err)
	}
	p.Classify(tk.ID)
	waitFor(t, "draft", func() bool { return f.get(t, tk.ID).Draft == "r" })
	got := f.get(t, tk.ID)
	if got.State != triage.StateAwaitingReview || got.Brief != "b" {
		t.Errorf("state %s brief %q", got.State, got.Brief)
	}
	if kicks.Load() < 2 {
		t.Errorf("%d kicks, want one for the card and one for the draft", kicks.Load())
	}
	// A second delivery of the same ID does not classify twice.
	p.Classify(tk.ID)
	waitFor(t, "queue drained", func() bool { return len(f.store.Audit(tk.ID)) >= 3 })
	time.Sleep(20 * time.Millisecond)
	var triaged int
	for _, ev := range f.store.Audit(tk.ID) {
		if ev.Action == "triaged" {
			triaged++
		}
	}
	if triaged != 1 {
		t.Errorf("%d triaged events, want 1", triaged)
	}
}

// TestPipelineDraftAttempts: DraftAttempts N asks the model N times before
// the template draft; a model that answers within N attempts keeps its
// draft.
func TestPipelineDraftAttempts(t *testing.T) {
	tests := []struct {
		attempts int
		failures int  // model failures before it answers
		calls    int  // model calls wanted
		template bool // the template draft is used
	}{
		{attempts: 1, failures: 99, calls: 1, template: true},
		{attempts: 2, failures: 99, calls: 2, template: true},
		{attempts: 3, failures: 99, calls: 3, template: true},
		{attempts: 3, failures: 2, calls: 3, template: false},
		{attempts: 3, failures: 0, calls: 1, template: false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d attempts, %d failures", tc.attempts, tc.failures), func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			var calls atomic.Int32
			drafter := &triagetest.Drafter{Func: func(context.Context, triage.DraftRequest) (triage.Draft, error) {
				if int(calls.Add(1)) <= tc.failures {
					return triage.Draft{}, errors.New("model down")
				}
				return triage.Draft{Brief: "b", Reply: "model draft"}, nil
			}}
			f.tr.Drafter = drafter
			startPipeline(t, f, triage.PipelineOptions{DraftAttempts: tc.attempts, RetryDelay: time.Millisecond})
			tk := f.process(t, f.inbound("m1", "where is my parcel?", ann))
			waitFor(t, "a draft", func() bool { return f.get(t, tk.ID).Draft != "" })
			if n := len(drafter.Requests()); n != tc.calls {
				t.Errorf("model asked %d times, want %d", n, tc.calls)
			}
			got := f.get(t, tk.ID)
			if (got.Draft != "model draft") != tc.template {
				t.Errorf("draft %q, template wanted: %v", got.Draft, tc.template)
			}
			wantBy := triage.DraftByModel
			if tc.template {
				wantBy = triage.DraftByTemplate
			}
			if got.DraftBy != wantBy || got.DraftVersion != 1 {
				t.Errorf("draft by %q version %d, want by %q version 1", got.DraftBy, got.DraftVersion, wantBy)
			}
		})
	}
}

func TestPipelineResume(t *testing.T) {
	f := newFixture(t, &triagetest.Classifier{Result: calm})
	f.tr.Drafter = &triagetest.Drafter{Result: triage.Draft{Brief: "b", Reply: "r"}}
	ctx := context.Background()
	received, err := f.tr.Intake(ctx, f.inbound("m1", "where is my parcel?", ann))
	if err != nil {
		t.Fatal(err)
	}
	undrafted, err := f.tr.Process(ctx, f.inbound("m2", "refund please", triage.Customer{Email: "bo@example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	p := startPipeline(t, f, triage.PipelineOptions{})
	c, d, err := p.Resume(ctx, t0.Add(-time.Hour))
	if err != nil || c != 1 || d != 1 {
		t.Fatalf("Resume = %d, %d, %v; want 1, 1", c, d, err)
	}
	waitFor(t, "both drafted", func() bool {
		return f.get(t, received.ID).Draft == "r" && f.get(t, undrafted.ID).Draft == "r"
	})
}

// TestPipelineRedraftsReopened: a ticket reopened after an Edit-send gets a
// fresh draft for the customer's new message, queued through the
// Reopened hook while running and by Resume after a restart.
func TestPipelineRedraftsReopened(t *testing.T) {
	ctx := context.Background()
	res := triage.Resolution{RootCause: "carrier_delay", Method: "information"}
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart %v", restart), func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			var calls atomic.Int32
			f.tr.Drafter = &triagetest.Drafter{Func: func(context.Context, triage.DraftRequest) (triage.Draft, error) {
				return triage.Draft{Brief: "b", Reply: fmt.Sprintf("draft %d", calls.Add(1))}, nil
			}}
			tk := f.process(t, f.inbound("m1", "where is my parcel?", ann))
			if _, err := f.tr.WriteDraft(ctx, tk.ID, ann, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := f.tr.Approve(ctx, tk.ID, agent, f.version(tk.ID), "edited by a person"); err != nil {
				t.Fatal(err)
			}
			if _, err := f.tr.Resolve(ctx, tk.ID, agent, res, 0); err != nil {
				t.Fatal(err)
			}
			var p *triage.Pipeline
			if !restart {
				p = startPipeline(t, f, triage.PipelineOptions{})
			}
			if _, err := f.tr.Reopen(ctx, tk.ID, agent, "customer called"); err != nil {
				t.Fatal(err)
			}
			if restart {
				p = startPipeline(t, f, triage.PipelineOptions{})
				if _, d, err := p.Resume(ctx, t0.Add(-time.Hour)); err != nil || d != 1 {
					t.Fatalf("Resume queued %d drafts, err %v; want the reopened ticket's", d, err)
				}
			}
			waitFor(t, "the fresh draft", func() bool { return f.get(t, tk.ID).Draft == "draft 2" })
			got := f.get(t, tk.ID)
			if got.Sent != "edited by a person" || got.DraftBy != triage.DraftByModel || got.WantsDraft() {
				t.Errorf("sent %q, draft by %q, still wants a draft %v", got.Sent, got.DraftBy, got.WantsDraft())
			}
		})
	}
}

// driveRetries fires the retries a failing store causes, checking each
// delay and that Health reports the failure while it lasts, then waits for
// the kick of the write that lands.
func driveRetries(t *testing.T, f *fixture, p *triage.Pipeline, timers *triagetest.Timers, kicks <-chan struct{},
	delays []time.Duration, waiting func(triage.PipelineHealth) (int, time.Time)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a backstop for a hang only
	defer cancel()
	failedAt := f.clock.Now()
	for i, want := range delays {
		tm, err := timers.Next(ctx)
		if err != nil {
			t.Fatalf("retry %d never scheduled: %v", i+1, err)
		}
		if tm.Delay != want {
			t.Errorf("retry %d after %s, want %s", i+1, tm.Delay, want)
		}
		h := p.Health()
		if n, since := waiting(h); h.OK() || n != 1 || !since.Equal(failedAt) {
			t.Errorf("retry %d: health %+v, want one ticket failing since %s", i+1, h, failedAt)
		}
		f.clock.Advance(tm.Delay)
		tm.Fire()
	}
	select {
	case <-kicks:
	case <-ctx.Done():
		t.Fatal("the write never landed")
	}
	if h := p.Health(); !h.OK() {
		t.Errorf("health %+v after the write landed, want ok", h)
	}
}

// backoff is the wait before each retry of a failed write: 1s doubling up
// to the 1 min cap.
var backoff = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
	16 * time.Second, 32 * time.Second, time.Minute, time.Minute, time.Minute}

// TestPipelineRetriesFailedClassifyWrite: a classification whose store write
// fails is retried with back-off until it lands, and the ticket ends with
// exactly one card; it never waits for a restart.
func TestPipelineRetriesFailedClassifyWrite(t *testing.T) {
	for _, failures := range []int{0, 1, 3, len(backoff)} {
		t.Run(fmt.Sprintf("%d failures", failures), func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			f.tr.Store = triagetest.NewFailingTickets(f.store, failures)
			timers := triagetest.NewTimers()
			kicks := make(chan struct{}, 4)
			p := startPipeline(t, f, triage.PipelineOptions{After: timers.After, Kick: func() { kicks <- struct{}{} }})
			tk, err := f.tr.Intake(context.Background(), f.inbound("m1", "where is my parcel?", ann))
			if err != nil {
				t.Fatal(err)
			}
			p.Classify(tk.ID)
			driveRetries(t, f, p, timers, kicks, backoff[:failures], func(h triage.PipelineHealth) (int, time.Time) {
				return h.ClassifyWaiting, h.ClassifyFailingSince
			})
			if got := f.get(t, tk.ID); got.State != triage.StateAwaitingReview {
				t.Errorf("state %s, want %s", got.State, triage.StateAwaitingReview)
			}
			var cards int
			for _, post := range f.store.Posts() {
				if post.TicketID == tk.ID && post.Kind == triage.PostCard {
					cards++
				}
			}
			if cards != 1 {
				t.Errorf("%d cards, want 1", cards)
			}
		})
	}
}

// TestPipelineRetriesFailedDraftWrite: the template draft's store write is
// retried with the same back-off until it lands, and a ticket whose load
// fails is retried rather than dropped; Health reports both meanwhile.
func TestPipelineRetriesFailedDraftWrite(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		failGet  bool
	}{
		{name: "template write fails once", failures: 1},
		{name: "template write fails past the cap", failures: len(backoff)},
		{name: "ticket load fails", failures: 2, failGet: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.process(t, f.inbound("m1", "where is my parcel?", ann))
			store := triagetest.NewFailingTickets(f.store, tc.failures)
			f.tr.Store = store
			if tc.failGet {
				f.tr.Store = &failingGets{Tickets: f.store, failures: tc.failures}
			}
			f.tr.Drafter = &triagetest.Drafter{Err: errors.New("model down")}
			timers := triagetest.NewTimers()
			kicks := make(chan struct{}, 4)
			p := startPipeline(t, f, triage.PipelineOptions{DraftAttempts: 1, After: timers.After,
				Kick: func() { kicks <- struct{}{} }})
			p.Draft(tk.ID)
			driveRetries(t, f, p, timers, kicks, backoff[:tc.failures], func(h triage.PipelineHealth) (int, time.Time) {
				return h.DraftWaiting, h.DraftFailingSince
			})
			if got := f.get(t, tk.ID); got.Draft == "" {
				t.Error("no draft after the write landed")
			}
		})
	}
}

// failingGets is a store whose Get fails the first failures times.
type failingGets struct {
	triage.Tickets
	mu       sync.Mutex
	failures int
}

func (s *failingGets) Get(ctx context.Context, id string) (triage.Ticket, error) {
	s.mu.Lock()
	fail := s.failures > 0
	s.failures--
	s.mu.Unlock()
	if fail {
		return triage.Ticket{}, fmt.Errorf("get ticket %s: %w", id, triagetest.ErrWriteFailed)
	}
	return s.Tickets.Get(ctx, id)
}

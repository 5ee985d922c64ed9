package prompts

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/casebot/casebot/prompts/ollamafake"
	"github.com/casebot/casebot/triage"
)

// waitFor polls cond until it holds; the test binary's own timeout bounds
// it, so no wall-clock threshold is asserted.
func waitFor(cond func() bool) {
	for !cond() {
		time.Sleep(time.Millisecond)
	}
}

func draftReq(i int) triage.DraftRequest {
	return triage.DraftRequest{Ticket: triage.Ticket{ID: fmt.Sprintf("T-%03d", i), Body: "where is my parcel?"}}
}

// startDrafts submits n drafts in the background; wait returns their errors.
func startDrafts(ctx context.Context, d triage.Drafter, n int) (wait func() []error) {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = d.Draft(ctx, draftReq(i)) })
	}
	return func() []error { wg.Wait(); return errs }
}

// With Parallel=1 and 200 drafts queued, a classification submitted later
// starts before every draft not yet started, and even the running draft
// yields its slot to it (and is then resumed first).
func TestQueueClassificationFirst(t *testing.T) {
	fake, c := newFake(t, Options{Parallel: 1})
	fake.OnChat(func(req api.ChatRequest) ollamafake.Reply {
		if isDraft(req) {
			return ollamafake.Reply{Content: validDraft, Latency: time.Hour}
		}
		return ollamafake.Reply{Content: validAnswer}
	})
	q := NewQueue(c)
	defer q.Close()

	wait := startDrafts(context.Background(), q.Drafter(), 200)
	// The first draft must be on the model (its request arrived), not just
	// taken by a worker, or the classification would overtake it before it
	// is sent and there would be nothing to preempt.
	waitFor(func() bool {
		s := q.Stats()
		return s.Running == 1 && s.QueuedDraft == 199 && fake.Count("/api/chat") == 1
	})
	got, err := q.Classifier().Classify(context.Background(), classifyReq)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != triage.TypeProductDefect {
		t.Errorf("classification %+v", got)
	}
	waitFor(func() bool { return fake.Count("/api/chat") == 3 })

	reqs := fake.Requests()
	if !isDraft(*reqs[0].Chat) || isDraft(*reqs[1].Chat) || !isDraft(*reqs[2].Chat) {
		t.Fatalf("request order: draft, classification, draft expected; got drafts %v %v %v",
			isDraft(*reqs[0].Chat), isDraft(*reqs[1].Chat), isDraft(*reqs[2].Chat))
	}
	if reqs[0].Chat.Messages[1].Content != reqs[2].Chat.Messages[1].Content {
		t.Error("the preempted draft was not the first to resume")
	}
	if s := q.Stats(); s.Preempted != 1 || s.QueuedDraft != 199 || s.Running != 1 {
		t.Errorf("stats %+v, want 1 preemption, 199 queued drafts, 1 running", s)
	}

	q.Close()
	for i, err := range wait() {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("draft %d: err = %v, want ErrClosed", i, err)
		}
	}
}

// No more than Parallel requests are in flight, and every job completes.
func TestQueueBoundsInFlight(t *testing.T) {
	for _, parallel := range []int{1, 3} {
		t.Run(fmt.Sprint(parallel), func(t *testing.T) {
			fake, c := newFake(t, Options{Parallel: parallel})
			var inFlight, peak atomic.Int32
			release := make(chan struct{})
			fake.OnChat(func(req api.ChatRequest) ollamafake.Reply {
				n := inFlight.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				<-release
				inFlight.Add(-1)
				if isDraft(req) {
					return ollamafake.Reply{Content: validDraft}
				}
				return ollamafake.Reply{Content: validAnswer}
			})
			q := NewQueue(c)
			defer q.Close()
			waitDrafts := startDrafts(context.Background(), q.Drafter(), 10)
			waitFor(func() bool { return int(inFlight.Load()) == parallel })
			close(release)
			for i, err := range waitDrafts() {
				if err != nil {
					t.Fatalf("draft %d: %v", i, err)
				}
			}
			if p := int(peak.Load()); p != parallel {
				t.Errorf("peak in flight %d, want %d", p, parallel)
			}
			if n := fake.Count("/api/chat"); n != 10 {
				t.Errorf("%d requests, want 10", n)
			}
		})
	}
}

// A caller that gives up while its job is queued withdraws it: the model is
// never asked.
func TestQueueWithdrawOnCancel(t *testing.T) {
	fake, c := newFake(t, Options{Parallel: 1})
	fake.OnChat(func(api.ChatRequest) ollamafake.Reply {
		return ollamafake.Reply{Content: validDraft, Latency: time.Hour}
	})
	q := NewQueue(c)
	defer q.Close()
	waitBlocker := startDrafts(context.Background(), q.Drafter(), 1)
	waitFor(func() bool { return fake.Count("/api/chat") == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	waitQueued := startDrafts(ctx, q.Drafter(), 1)
	waitFor(func() bool { return q.Stats().QueuedDraft == 1 })
	cancel()
	if err := waitQueued()[0]; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if s := q.Stats(); s.QueuedDraft != 0 {
		t.Errorf("stats %+v: cancelled job still queued", s)
	}
	q.Close()
	if err := waitBlocker()[0]; !errors.Is(err, ErrClosed) {
		t.Errorf("running draft: err = %v, want ErrClosed", err)
	}
	if n := fake.Count("/api/chat"); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// Close cancels queued and running jobs of both kinds, returns after the
// workers, and later submissions fail at once.
func TestQueueClose(t *testing.T) {
	fake, c := newFake(t, Options{Parallel: 2})
	fake.OnChat(func(api.ChatRequest) ollamafake.Reply {
		return ollamafake.Reply{Content: validAnswer, Latency: time.Hour}
	})
	q := NewQueue(c)
	waitDrafts := startDrafts(context.Background(), q.Drafter(), 5)
	classifyErrs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := q.Classifier().Classify(context.Background(), classifyReq)
			classifyErrs <- err
		}()
	}
	waitFor(func() bool {
		s := q.Stats()
		return s.Running+s.QueuedClassify+s.QueuedDraft == 8 && s.Running == 2
	})
	q.Close()
	for i, err := range waitDrafts() {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("draft %d: err = %v, want ErrClosed", i, err)
		}
	}
	for range 3 {
		if err := <-classifyErrs; !errors.Is(err, ErrClosed) {
			t.Errorf("classification: err = %v, want ErrClosed", err)
		}
	}
	if _, err := q.Classifier().Classify(context.Background(), classifyReq); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
	q.Close() // idempotent
}

// Retries through the queue behave as direct ones: the same sentinel after
// the same number of requests.
func TestQueueRetries(t *testing.T) {
	fake, c := newFake(t, Options{Parallel: 1, Retries: 2})
	fake.OnChat(ollamafake.Sequence(ollamafake.Reply{Content: "not json"}))
	q := NewQueue(c)
	defer q.Close()
	_, err := q.Classifier().Classify(context.Background(), classifyReq)
	if !errors.Is(err, ErrInvalidAnswer) {
		t.Fatalf("err = %v, want ErrInvalidAnswer", err)
	}
	if n := fake.Count("/api/chat"); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

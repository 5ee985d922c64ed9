package prompts

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/casebot/casebot/triage"
)

// jobKind is a job's priority class: every queued classification runs before
// any queued draft.
type jobKind int

const (
	kindClassify jobKind = iota
	kindDraft
)

// errPreempted is the cause with which a running draft is cancelled to free
// its slot for a waiting classification; the draft goes back to the head of
// the draft queue and the interruption is not counted as a retry.
var errPreempted = errors.New("draft preempted by a classification")

// job is one attempt waiting for, or holding, a slot.
type job struct {
	kind    jobKind
	ctx     context.Context
	attempt func(context.Context) error
	done    chan error // buffered: the worker never waits for the caller

	// Guarded by Queue.mu.
	cancel    context.CancelCauseFunc // set while running
	preempted bool
}

// Queue is the job queue in front of the model (SPEC section 3.2): at most
// Options.Parallel attempts in flight, classifications always before drafts.
// When a classification is waiting and every slot holds a draft, the newest
// draft is cancelled and requeued, so an urgent ticket waits for at most one
// classification time however many drafts are queued. Retries and their
// back-off happen in the caller's goroutine, outside the queue, so a job
// that is backing off holds no slot.
type Queue struct {
	client   *Client
	parallel int
	stop     context.Context
	halt     context.CancelCauseFunc
	wg       sync.WaitGroup

	mu        sync.Mutex
	wake      *sync.Cond
	classify  []*job
	draft     []*job
	running   []*job
	closed    bool
	preempted int
}

// QueueStats is a snapshot of a Queue, for health metrics.
type QueueStats struct {
	// QueuedClassify and QueuedDraft are jobs waiting for a slot.
	QueuedClassify, QueuedDraft int
	// Running is the number of attempts in flight.
	Running int
	// Preempted counts drafts interrupted for a classification so far.
	Preempted int
}

// NewQueue starts Options.Parallel workers calling c. Close stops them.
func NewQueue(c *Client) *Queue {
	stop, halt := context.WithCancelCause(context.Background())
	q := &Queue{client: c, parallel: c.opts.Parallel, stop: stop, halt: halt}
	q.wake = sync.NewCond(&q.mu)
	q.wg.Add(q.parallel)
	for range q.parallel {
		go q.work()
	}
	return q
}

// Classifier returns a triage.Classifier whose calls wait in the queue at
// classification priority. Errors are those of Client.Classify, plus
// ErrClosed.
func (q *Queue) Classifier() triage.Classifier { return queuedClassifier{q} }

// Drafter returns a triage.Drafter whose calls wait in the queue behind every
// classification. Errors are those of Client.Draft, plus ErrClosed.
func (q *Queue) Drafter() triage.Drafter { return queuedDrafter{q} }

type queuedClassifier struct{ q *Queue }

func (c queuedClassifier) Classify(ctx context.Context, req triage.ClassifyRequest) (triage.Classification, error) {
	return c.q.client.classify(ctx, req, c.q.run)
}

type queuedDrafter struct{ q *Queue }

func (d queuedDrafter) Draft(ctx context.Context, req triage.DraftRequest) (triage.Draft, error) {
	return d.q.client.draft(ctx, req, d.q.run)
}

// Stats returns the queue's current lengths and counters.
func (q *Queue) Stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QueueStats{QueuedClassify: len(q.classify), QueuedDraft: len(q.draft), Running: len(q.running), Preempted: q.preempted}
}

// Close fails every queued job with ErrClosed, cancels the running ones and
// waits for the workers to return. It is safe to call more than once.
func (q *Queue) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		q.halt(ErrClosed)
		for _, j := range slices.Concat(q.classify, q.draft) {
			j.done <- ErrClosed
		}
		q.classify, q.draft = nil, nil
		q.wake.Broadcast()
	}
	q.mu.Unlock()
	q.wg.Wait()
}

// run queues one attempt and waits for its result or for ctx.
func (q *Queue) run(ctx context.Context, kind jobKind, attempt func(context.Context) error) error {
	j := &job{kind: kind, ctx: ctx, attempt: attempt, done: make(chan error, 1)}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if kind == kindClassify {
		q.classify = append(q.classify, j)
		q.preemptLocked()
	} else {
		q.draft = append(q.draft, j)
	}
	q.wake.Signal()
	q.mu.Unlock()

	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		// A queued job is withdrawn; a running one sees the same ctx and
		// ends on its own, its result unread.
		q.mu.Lock()
		q.classify = slices.DeleteFunc(q.classify, func(o *job) bool { return o == j })
		q.draft = slices.DeleteFunc(q.draft, func(o *job) bool { return o == j })
		q.mu.Unlock()
		return context.Cause(ctx)
	}
}

// preemptLocked cancels running drafts, newest first, until every queued
// classification has a slot that is idle or being freed.
func (q *Queue) preemptLocked() {
	short := len(q.classify) - (q.parallel - len(q.running))
	for _, r := range q.running {
		if r.preempted {
			short--
		}
	}
	for i := len(q.running) - 1; i >= 0 && short > 0; i-- {
		r := q.running[i]
		if r.kind == kindDraft && !r.preempted {
			r.preempted = true
			r.cancel(errPreempted)
			q.preempted++
			short--
		}
	}
}

func (q *Queue) work() {
	defer q.wg.Done()
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for !q.closed && len(q.classify)+len(q.draft) == 0 {
			q.wake.Wait()
		}
		if q.closed {
			return
		}
		var j *job
		if len(q.classify) > 0 {
			j, q.classify = q.classify[0], q.classify[1:]
		} else {
			j, q.draft = q.draft[0], q.draft[1:]
		}
		ctx, cancel := context.WithCancelCause(j.ctx)
		j.cancel = cancel
		q.running = append(q.running, j)
		q.mu.Unlock()

		stopOnClose := context.AfterFunc(q.stop, func() { cancel(context.Cause(q.stop)) })
		err := j.attempt(ctx)
		stopOnClose()
		cancel(nil)

		q.mu.Lock()
		q.running = slices.DeleteFunc(q.running, func(o *job) bool { return o == j })
		if err != nil && j.preempted && j.ctx.Err() == nil {
			j.preempted = false
			if q.closed {
				j.done <- ErrClosed
				continue
			}
			q.draft = slices.Insert(q.draft, 0, j)
			continue
		}
		j.done <- err
	}
}

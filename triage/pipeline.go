package triage

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// PipelineOptions configures a Pipeline.
type PipelineOptions struct {
	// Classifiers and Drafters are the numbers of workers; defaults 4 and 1.
	// The model's own queue bounds what reaches it; these bound our side.
	Classifiers, Drafters int
	// DraftAttempts is how many times the model is asked for a draft
	// before the template draft is used; default 4. A draft the model
	// queue preempted for a classification is requeued inside that queue
	// and never fails here, so it does not count.
	DraftAttempts int
	// RetryDelay is the first wait before retrying a draft, doubled each
	// time; default 30s.
	RetryDelay time.Duration
	// WriteRetryDelay is the first wait before retrying a ticket whose
	// store work failed (a full disk, say): its classification, or its
	// template draft. It doubles up to WriteRetryMax, and the ticket is
	// retried until the write lands: an acknowledged ticket must not wait
	// for a restart to get its card. Defaults 1s and 1 min.
	WriteRetryDelay, WriteRetryMax time.Duration
	// After runs f once d has passed; default time.AfterFunc. Tests pass
	// a fake so that retries run without waiting on the wall clock.
	After func(d time.Duration, f func())
	// Policy returns the policy excerpt for a ticket's brief; nil for none.
	Policy func(Ticket) string
	// Kick is called after a change that enqueued posts; nil for none.
	Kick func()
	// Logger receives operational logs; nil discards.
	Logger *slog.Logger
}

// Pipeline classifies stored tickets and writes their drafts in the
// background, for every source: a source stores the ticket, acknowledges,
// and hands the ID here. Classification always goes before drafting, and a
// draft that fails is retried later, then written from the template, so no
// ticket waits on the model to be routed or to get a draft.
type Pipeline struct {
	tr   *Triager
	opts PipelineOptions
	log  *slog.Logger

	classify, draft *idQueue

	mu sync.Mutex
	// classifyFailing and draftFailing hold, per ticket waiting for a
	// retry of failed store work, when that work first failed.
	classifyFailing, draftFailing map[string]time.Time
}

// PipelineHealth says which store writes of the pipeline are failing, for
// /healthz: tickets waiting on them are acknowledged but have no card or
// no draft yet.
type PipelineHealth struct {
	// ClassifyFailingSince is when the oldest classification waiting for
	// a retry first failed; zero when none waits.
	ClassifyFailingSince time.Time
	// ClassifyWaiting counts the tickets waiting to retry classification.
	ClassifyWaiting int
	// DraftFailingSince and DraftWaiting are the same for drafts whose
	// store work failed.
	DraftFailingSince time.Time
	DraftWaiting      int
}

// OK reports whether no store write of the pipeline is failing.
func (h PipelineHealth) OK() bool { return h.ClassifyWaiting == 0 && h.DraftWaiting == 0 }

// NewPipeline builds a pipeline around tr; Run starts it. It sets
// tr.Classified and tr.Reopened, so a ticket classified by any path (a
// Slack worker, the pipeline itself) or reopened gets its draft queued
// here.
func NewPipeline(tr *Triager, opts PipelineOptions) *Pipeline {
	if opts.Classifiers <= 0 {
		opts.Classifiers = 4
	}
	if opts.Drafters <= 0 {
		opts.Drafters = 1
	}
	if opts.DraftAttempts <= 0 {
		opts.DraftAttempts = 4
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = 30 * time.Second
	}
	if opts.WriteRetryDelay <= 0 {
		opts.WriteRetryDelay = time.Second
	}
	if opts.WriteRetryMax <= 0 {
		opts.WriteRetryMax = time.Minute
	}
	if opts.After == nil {
		opts.After = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{tr: tr, opts: opts, log: log, classify: newIDQueue(), draft: newIDQueue(),
		classifyFailing: map[string]time.Time{}, draftFailing: map[string]time.Time{}}
	tr.Classified = func(t Ticket) { p.Draft(t.ID) }
	tr.Reopened = func(t Ticket) { p.Draft(t.ID) }
	return p
}

// Classify queues a stored ticket for classification; its draft follows.
func (p *Pipeline) Classify(id string) { p.classify.push(job{id: id}) }

// Draft queues a classified ticket for its brief and draft.
func (p *Pipeline) Draft(id string) { p.draft.push(job{id: id}) }

// Resume queues the work a stop interrupted: tickets received since since
// that are still unclassified, and open ones waiting for a draft
// (WantsDraft), a reopened one included.
func (p *Pipeline) Resume(ctx context.Context, since time.Time) (classify, draft int, err error) {
	err = p.tr.Store.Window(ctx, since, p.tr.Clock.Now().Add(time.Second), func(t Ticket) error {
		switch {
		case t.State == StateReceived:
			p.Classify(t.ID)
			classify++
		case t.Draft == "" && t.WantsDraft():
			p.Draft(t.ID)
			draft++
		}
		return nil
	})
	return classify, draft, err
}

// Run works the queues until ctx ends, then waits for the workers.
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range p.opts.Classifiers {
		wg.Go(func() { p.work(ctx, p.classify, p.runClassify) })
	}
	for range p.opts.Drafters {
		wg.Go(func() { p.work(ctx, p.draft, p.runDraft) })
	}
	<-ctx.Done()
	p.classify.close()
	p.draft.close()
	wg.Wait()
	return nil
}

func (p *Pipeline) work(ctx context.Context, q *idQueue, fn func(context.Context, job)) {
	for {
		j, ok := q.pop()
		if !ok {
			return
		}
		fn(ctx, j)
	}
}

func (p *Pipeline) runClassify(ctx context.Context, j job) {
	_, err := p.tr.Classify(ctx, j.id, Customer{})
	switch {
	case err == nil:
		p.landed(p.classifyFailing, j.id)
		p.kick()
	case errors.Is(err, ErrInvalidTransition):
		// Classified by another delivery meanwhile.
		p.landed(p.classifyFailing, j.id)
	case errors.Is(err, ErrNotFound):
		p.landed(p.classifyFailing, j.id)
		p.log.Warn("classify: ticket gone", "ticket", j.id)
	case ctx.Err() != nil:
		// Stopping: Resume at the next start picks the ticket up.
	default:
		p.retryWrite(p.classify, p.classifyFailing, j, "classify", err)
	}
}

// retryWrite schedules j again after failed store work, with a back-off of
// its own so that a model attempt is not spent on a full disk, and records
// the failure for Health until the work lands.
func (p *Pipeline) retryWrite(q *idQueue, failing map[string]time.Time, j job, what string, err error) {
	p.mu.Lock()
	if _, ok := failing[j.id]; !ok {
		failing[j.id] = p.tr.Clock.Now()
	}
	p.mu.Unlock()
	delay := p.opts.WriteRetryDelay
	for range j.writes {
		if delay >= p.opts.WriteRetryMax {
			break
		}
		delay *= 2
	}
	delay = min(delay, p.opts.WriteRetryMax)
	j.writes++
	p.log.Error(what+" failed, will retry", "ticket", j.id, "attempt", j.writes, "in", delay, "err", err)
	p.opts.After(delay, func() { q.push(j) })
}

// landed forgets a ticket's failed store work once it is done or moot.
func (p *Pipeline) landed(failing map[string]time.Time, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(failing, id)
}

// Health reports the store writes failing now and how many tickets wait
// on them.
func (p *Pipeline) Health() PipelineHealth {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := PipelineHealth{ClassifyWaiting: len(p.classifyFailing), DraftWaiting: len(p.draftFailing)}
	h.ClassifyFailingSince = oldest(p.classifyFailing)
	h.DraftFailingSince = oldest(p.draftFailing)
	return h
}

func oldest(failing map[string]time.Time) time.Time {
	var first time.Time
	for _, at := range failing {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first
}

func (p *Pipeline) runDraft(ctx context.Context, j job) {
	t, err := p.tr.Store.Get(ctx, j.id)
	switch {
	case errors.Is(err, ErrNotFound):
		p.landed(p.draftFailing, j.id)
		p.log.Warn("draft: ticket gone", "ticket", j.id)
		return
	case err != nil && ctx.Err() == nil:
		p.retryWrite(p.draft, p.draftFailing, j, "draft: load ticket", err)
		return
	case err != nil:
		return
	}
	if t.Draft != "" || !t.WantsDraft() {
		p.landed(p.draftFailing, j.id)
		return
	}
	policy := ""
	if p.opts.Policy != nil {
		policy = p.opts.Policy(t)
	}
	drafter := p.tr.Drafter
	if j.attempt >= p.opts.DraftAttempts {
		// The model has failed this ticket DraftAttempts times: agents get
		// the template draft rather than nothing.
		drafter = TemplateDrafter{}
	}
	if drafter == nil {
		return
	}
	_, err = p.tr.writeDraft(ctx, j.id, Customer{}, policy, drafter)
	switch {
	case err == nil:
		p.landed(p.draftFailing, j.id)
		p.kick()
		return
	case errors.Is(err, ErrStaleDraft):
		// A person replied, or the ticket was reopened, while the draft
		// was written; a reopen queued its own draft.
		p.landed(p.draftFailing, j.id)
		p.log.Info("draft no longer wanted", "ticket", j.id, "err", err)
		return
	case ctx.Err() != nil:
		return
	}
	if j.attempt >= p.opts.DraftAttempts {
		// The template cannot fail: the store did.
		p.retryWrite(p.draft, p.draftFailing, j, "template draft", err)
		return
	}
	j.attempt++
	if j.attempt == p.opts.DraftAttempts {
		// The last failure of the model: the template follows at once, as
		// waiting would not make it work better.
		p.log.Warn("draft failed, using the template", "ticket", j.id, "attempts", j.attempt, "err", err)
		p.draft.push(j)
		return
	}
	delay := p.opts.RetryDelay << (j.attempt - 1)
	p.log.Warn("draft failed, will retry", "ticket", j.id, "attempt", j.attempt, "in", delay, "err", err)
	p.opts.After(delay, func() { p.draft.push(j) })
}

func (p *Pipeline) kick() {
	if p.opts.Kick != nil {
		p.opts.Kick()
	}
}

// job is one ticket waiting in a queue, with the attempts made so far:
// attempt counts the model's failures, writes the store's.
type job struct {
	id      string
	attempt int
	writes  int
}

// idQueue is an unbounded FIFO: sources must never block on it, and a
// ticket ID is small.
type idQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []job
	closed bool
}

func newIDQueue() *idQueue {
	q := &idQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *idQueue) push(j job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.items = append(q.items, j)
	q.cond.Signal()
}

func (q *idQueue) pop() (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return job{}, false
	}
	j := q.items[0]
	q.items = q.items[1:]
	return j, true
}

func (q *idQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

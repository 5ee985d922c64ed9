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
}

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
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{tr: tr, opts: opts, log: log, classify: newIDQueue(), draft: newIDQueue()}
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
	case errors.Is(err, ErrInvalidTransition):
		return // classified by another delivery meanwhile
	case err != nil:
		p.log.Error("classify", "ticket", j.id, "err", err)
		return
	}
	p.kick()
}

func (p *Pipeline) runDraft(ctx context.Context, j job) {
	t, err := p.tr.Store.Get(ctx, j.id)
	if err != nil {
		p.log.Error("draft: load ticket", "ticket", j.id, "err", err)
		return
	}
	if t.Draft != "" || !t.WantsDraft() {
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
		p.kick()
		return
	case errors.Is(err, ErrStaleDraft):
		// A person replied, or the ticket was reopened, while the draft
		// was written; a reopen queued its own draft.
		p.log.Info("draft no longer wanted", "ticket", j.id, "err", err)
		return
	case ctx.Err() != nil:
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
	// The template's own retries (a store error) wait as long as the last
	// model retry did, no longer.
	delay := p.opts.RetryDelay << (min(j.attempt, p.opts.DraftAttempts) - 1)
	p.log.Warn("draft failed, will retry", "ticket", j.id, "attempt", j.attempt, "in", delay, "err", err)
	time.AfterFunc(delay, func() { p.draft.push(j) })
}

func (p *Pipeline) kick() {
	if p.opts.Kick != nil {
		p.opts.Kick()
	}
}

// job is one ticket waiting in a queue, with the attempts made so far.
type job struct {
	id      string
	attempt int
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

package intake

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/casebot/casebot/triage"
)

// drainer delivers the replies of one outbound channel of the outbox; it is
// what Outbound and Mailer share, each giving only how to send a reply and
// which of its failures are for good. Replies to one ticket go out in
// order; a reply backing off holds back only its own ticket's later
// replies, and when it fails for good those are reported with it.
type drainer struct {
	outbox  triage.Outbox
	channel string
	// name starts every log line, e.g. "smtp".
	name string
	log  *slog.Logger
	// onFailed is the sender's OnFailed; nil ignores.
	onFailed func(post triage.Post, err error)
	// onDelivered is the sender's OnDelivered; nil ignores. clock stamps it.
	onDelivered func(post triage.Post, at time.Time)
	clock       triage.Clock

	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
	poll        time.Duration

	// errDelivery and errRefused are the sender's sentinels for a failed
	// attempt and for a reply that is never attempted.
	errDelivery error
	errRefused  error
	// prepare, when set, may settle a customer reply before it is sent:
	// handled reports that it did (sending nothing), left whether the reply
	// left the outbox.
	prepare func(ctx context.Context, p triage.Post) (handled, left bool)
	// send makes one attempt at a reply.
	send func(ctx context.Context, p triage.Post) error
	// classify tells of a failed attempt whether retrying cannot help, and
	// how long the receiver asked to be left alone (0 when it did not say).
	classify func(err error) (permanent bool, retryAfter time.Duration)
	// logSent and logNotDone are the log lines for a reply sent, and for
	// one sent but still in the outbox.
	logSent    string
	logNotDone string

	kick chan struct{}

	// nextAt and parked are touched only by Run's goroutine (and drain in
	// tests); mu guards them so a second Run cannot race.
	mu     sync.Mutex
	nextAt map[string]time.Time // post ID → earliest next attempt
	parked map[string]bool      // post IDs reported through OnFailed
}

// init puts the Default constants in place of zero settings and makes the
// state Run needs.
func (d *drainer) init(log *slog.Logger) {
	if d.maxAttempts <= 0 {
		d.maxAttempts = DefaultMaxAttempts
	}
	if d.baseDelay <= 0 {
		d.baseDelay = DefaultBaseDelay
	}
	if d.maxDelay <= 0 {
		d.maxDelay = DefaultMaxDelay
	}
	if d.poll <= 0 {
		d.poll = DefaultPoll
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if d.clock == nil {
		d.clock = triage.SystemClock{}
	}
	d.log = log
	d.kick = make(chan struct{}, 1)
	d.nextAt = map[string]time.Time{}
	d.parked = map[string]bool{}
}

// Kick wakes Run to look at the outbox now, e.g. after an approval. It
// never blocks.
func (d *drainer) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run drains the outbox until ctx ends, then returns ctx's error. It sends
// at once on start, on Kick, when a retry falls due, and every Poll.
func (d *drainer) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.kick:
		case <-timer.C:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		timer.Reset(d.drain(ctx))
	}
}

// drain sends every due reply once and returns how long to sleep: none
// after a reply was delivered or given up, else until the earliest retry,
// at most Poll.
func (d *drainer) drain(ctx context.Context) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	posts, err := d.pending(ctx)
	if err != nil {
		d.log.LogAttrs(ctx, slog.LevelError, d.name+": reading the outbox", slog.Any("err", err))
		return d.baseDelay
	}
	wait := d.poll
	held := map[string]bool{}   // tickets with an earlier reply still to be delivered
	failed := map[string]bool{} // tickets with an earlier reply that failed for good
	for _, p := range posts {
		if ctx.Err() != nil {
			return 0
		}
		switch {
		case d.parked[p.ID]:
			failed[p.TicketID] = true
			continue
		case failed[p.TicketID]:
			// Sending it would put it before the reply it follows; report it
			// too rather than leave it waiting unseen.
			d.park(ctx, p, fmt.Errorf("%w: an earlier reply to this ticket was not delivered", d.errRefused))
			wait = 0
			continue
		case held[p.TicketID]:
			continue
		}
		if w := time.Until(d.nextAt[p.ID]); w > 0 {
			held[p.TicketID] = true
			wait = min(wait, w)
			continue
		}
		// A reply delivered or given up makes room: more may be waiting
		// beyond this batch, so look again at once.
		if d.attempt(ctx, p) {
			wait = 0
			continue
		}
		if d.parked[p.ID] {
			failed[p.TicketID] = true
			wait = 0
			continue
		}
		held[p.TicketID] = true
		if w := time.Until(d.nextAt[p.ID]); w > 0 {
			wait = min(wait, w)
		}
	}
	return wait
}

// pending reads the channel's posts, oldest first, far enough to include
// one that is due now if there is any: parked replies (which stay in the
// outbox) and replies waiting out a back-off cannot crowd out new ones.
func (d *drainer) pending(ctx context.Context) ([]triage.Post, error) {
	const batch = 64
	for n := batch; ; n *= 2 {
		posts, err := d.outbox.Pending(ctx, d.channel, n)
		if err != nil {
			return nil, fmt.Errorf("pending %s: %w", d.channel, err)
		}
		due := 0
		for _, p := range posts {
			if !d.parked[p.ID] && p.Attempts < d.maxAttempts && !time.Now().Before(d.nextAt[p.ID]) {
				due++
			}
		}
		if due > 0 || len(posts) < n {
			return posts, nil
		}
	}
}

// attempt makes one attempt at p and records the outcome in the outbox. It
// reports whether p left the outbox.
func (d *drainer) attempt(ctx context.Context, p triage.Post) bool {
	log := d.log.With(slog.String("post", p.ID), slog.String("ticket", p.TicketID))
	switch {
	case p.Attempts >= d.maxAttempts:
		// Failed for good in an earlier run: report it once more, as that
		// run's report may have been lost with it, and leave it be.
		d.park(ctx, p, fmt.Errorf("%w after %d attempts", d.errDelivery, p.Attempts))
		return false
	case p.Kind != triage.PostCustomerReply:
		d.park(ctx, p, fmt.Errorf("%w: post kind %q is not a customer reply", d.errRefused, p.Kind))
		return false
	}
	if d.prepare != nil {
		if handled, left := d.prepare(ctx, p); handled {
			return left
		}
	}
	err := d.send(ctx, p)
	if err == nil {
		delete(d.nextAt, p.ID)
		if d.onDelivered != nil {
			d.onDelivered(p, d.clock.Now())
		}
		if err := d.outbox.Done(ctx, p, triage.SlackRef{}); err != nil {
			// Sent but still in the outbox: it is sent again later, and
			// each sender marks a repeat so the receiver can drop it.
			log.LogAttrs(ctx, slog.LevelError, d.name+": "+d.logNotDone, slog.Any("err", err))
			return false
		}
		log.LogAttrs(ctx, slog.LevelInfo, d.name+": "+d.logSent, slog.Int("attempt", p.Attempts+1))
		return true
	}
	if ctx.Err() != nil {
		// Shutting down is not the receiver's failure.
		return false
	}
	permanent, retryAfter := d.classify(err)
	if permanent {
		d.park(ctx, p, err)
		return false
	}
	if rerr := d.outbox.Retry(ctx, p); rerr != nil {
		log.LogAttrs(ctx, slog.LevelError, d.name+": recording a failed attempt", slog.Any("err", rerr))
	}
	p.Attempts++
	log.LogAttrs(ctx, slog.LevelWarn, d.name+": attempt failed", slog.Int("attempt", p.Attempts), slog.Any("err", err))
	if p.Attempts >= d.maxAttempts {
		d.park(ctx, p, fmt.Errorf("after %d attempts: %w", p.Attempts, err))
		return false
	}
	d.nextAt[p.ID] = time.Now().Add(d.backoff(p.Attempts, retryAfter))
	return false
}

// park stops attempting p in this run and reports it; p stays in the outbox
// so the reply is never silently dropped.
func (d *drainer) park(ctx context.Context, p triage.Post, err error) {
	d.parked[p.ID] = true
	delete(d.nextAt, p.ID)
	d.log.LogAttrs(ctx, slog.LevelError, d.name+": reply not delivered; kept in the outbox",
		slog.String("post", p.ID), slog.String("ticket", p.TicketID), slog.Any("err", err))
	if d.onFailed != nil {
		d.onFailed(p, err)
	}
}

// backoff is the delay after the n-th failed attempt: the package's
// jittered exponential back-off from baseDelay, which a receiver's hint
// raises, still within maxDelay.
func (d *drainer) backoff(n int, hint time.Duration) time.Duration {
	return min(max(backoff(d.baseDelay, d.maxDelay, n), hint), d.maxDelay)
}

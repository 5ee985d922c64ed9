package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/casebot/casebot/triage"
)

// Defaults of OutboundOptions.
const (
	DefaultMaxAttempts = 8
	DefaultBaseDelay   = 2 * time.Second
	DefaultMaxDelay    = 5 * time.Minute
	DefaultTimeout     = 10 * time.Second
	// DefaultPoll is how often Run looks at the outbox without a Kick, so
	// replies left by a previous run go out after a restart.
	DefaultPoll = time.Minute
)

// ErrDelivery wraps every failed delivery attempt; ErrRefused a post that is
// never attempted (no http/https URL, not a customer reply).
var (
	ErrDelivery = errors.New("outbound webhook delivery failed")
	ErrRefused  = errors.New("outbound webhook reply refused")
)

// OutboundOptions configures NewOutbound.
type OutboundOptions struct {
	// Outbox holds the replies; Outbound drains its channel
	// triage.OutboundChannel(triage.SourceWebhook). Required.
	Outbox triage.Outbox
	// Ticket returns a stored ticket, for its external ID (Tickets.Get).
	// Required.
	Ticket func(ctx context.Context, id string) (triage.Ticket, error)
	// Secret signs each request as described in the package doc. Required.
	Secret []byte
	// OnFailed is told of a reply that failed MaxAttempts times or was
	// refused; it stays in the outbox and is not attempted again by this
	// Outbound. Called from Run's goroutine; nil ignores.
	OnFailed func(post triage.Post, err error)
	// Client sends the requests; a client with Timeout and no redirects
	// when nil. Redirects are never followed: a POST must not become a GET
	// or go somewhere the sender did not name.
	Client *http.Client
	// Clock stamps sent_at and the signature; the system clock when nil.
	Clock triage.Clock
	// MaxAttempts, BaseDelay, MaxDelay, Timeout and Poll default to the
	// Default constants when zero. The delay before attempt n+1 is
	// BaseDelay·2^(n-1), at most MaxDelay, with up to half of it jittered
	// away so that retries to one receiver spread out.
	MaxAttempts int
	BaseDelay   time.Duration
	MaxDelay    time.Duration
	Timeout     time.Duration
	Poll        time.Duration
	// Logger receives a line per delivery, failure and skipped reply;
	// discarded when nil. Reply text is never logged.
	Logger *slog.Logger
}

// Outbound POSTs approved replies of webhook tickets to their reply URL.
// Replies to one ticket go out in order; a receiver that fails holds back
// only its own ticket's later replies, and when it fails for good those are
// reported through OnFailed with it.
type Outbound struct {
	opts    OutboundOptions
	channel string
	log     *slog.Logger
	kick    chan struct{}

	// nextAt and parked are touched only by Run's goroutine (and drain in
	// tests); mu guards them so a second Run cannot race.
	mu     sync.Mutex
	nextAt map[string]time.Time // post ID → earliest next attempt
	parked map[string]bool      // post IDs reported through OnFailed
}

// OutboundReply is the JSON body POSTed to a reply URL.
type OutboundReply struct {
	TicketID   string    `json:"ticket_id"`
	ExternalID string    `json:"external_id"`
	Text       string    `json:"text"`
	SentAt     time.Time `json:"sent_at"`
}

// NewOutbound returns a sender; call Run to start it. It panics when
// Outbox, Ticket or Secret is missing, which are wiring mistakes.
func NewOutbound(opts OutboundOptions) *Outbound {
	switch {
	case opts.Outbox == nil:
		panic("intake: NewOutbound with a nil Outbox")
	case opts.Ticket == nil:
		panic("intake: NewOutbound with a nil Ticket")
	case len(opts.Secret) == 0:
		panic("intake: NewOutbound with an empty Secret")
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = DefaultBaseDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Clock == nil {
		opts.Clock = triage.SystemClock{}
	}
	if opts.Client == nil {
		opts.Client = &http.Client{
			Timeout:       opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Outbound{
		opts: opts, channel: triage.OutboundChannel(triage.SourceWebhook), log: log,
		kick: make(chan struct{}, 1), nextAt: map[string]time.Time{}, parked: map[string]bool{},
	}
}

// Kick wakes Run to look at the outbox now, e.g. after an approval. It
// never blocks.
func (o *Outbound) Kick() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Run drains the outbox until ctx ends, then returns ctx's error. It sends
// at once on start, on Kick, when a retry falls due, and every Poll.
func (o *Outbound) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-o.kick:
		case <-timer.C:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := o.drain(ctx)
		timer.Reset(wait)
	}
}

// drain sends every due reply once and returns how long to sleep: none
// after a reply was delivered or given up, else until the earliest retry,
// at most Poll.
func (o *Outbound) drain(ctx context.Context) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	posts, err := o.pending(ctx)
	if err != nil {
		o.log.LogAttrs(ctx, slog.LevelError, "outbound webhook: reading the outbox", slog.Any("err", err))
		return o.opts.BaseDelay
	}
	wait := o.opts.Poll
	held := map[string]bool{}   // tickets with an earlier reply still to be delivered
	failed := map[string]bool{} // tickets with an earlier reply that failed for good
	for _, p := range posts {
		if ctx.Err() != nil {
			return 0
		}
		switch {
		case o.parked[p.ID]:
			failed[p.TicketID] = true
			continue
		case failed[p.TicketID]:
			// Sending it would put it before the reply it follows; report it
			// too rather than leave it waiting unseen.
			o.park(ctx, p, fmt.Errorf("%w: an earlier reply to this ticket was not delivered", ErrRefused))
			wait = 0
			continue
		case held[p.TicketID]:
			continue
		}
		if d := time.Until(o.nextAt[p.ID]); d > 0 {
			held[p.TicketID] = true
			wait = min(wait, d)
			continue
		}
		// A reply delivered or given up makes room: more may be waiting
		// beyond this batch, so look again at once.
		if o.deliver(ctx, p) {
			wait = 0
			continue
		}
		if o.parked[p.ID] {
			failed[p.TicketID] = true
			wait = 0
		} else {
			held[p.TicketID] = true
			if d := time.Until(o.nextAt[p.ID]); d > 0 {
				wait = min(wait, d)
			}
		}
	}
	return wait
}

// pending reads the channel's posts, oldest first, far enough to include
// one that is due now if there is any: parked replies (which stay in the
// outbox) and replies waiting out a back-off cannot crowd out new ones.
func (o *Outbound) pending(ctx context.Context) ([]triage.Post, error) {
	const batch = 64
	for n := batch; ; n *= 2 {
		posts, err := o.opts.Outbox.Pending(ctx, o.channel, n)
		if err != nil {
			return nil, fmt.Errorf("pending %s: %w", o.channel, err)
		}
		due := 0
		for _, p := range posts {
			if !o.parked[p.ID] && p.Attempts < o.opts.MaxAttempts && !time.Now().Before(o.nextAt[p.ID]) {
				due++
			}
		}
		if due > 0 || len(posts) < n {
			return posts, nil
		}
	}
}

// deliver makes one attempt at p and records the outcome in the outbox. It
// reports whether p left the outbox.
func (o *Outbound) deliver(ctx context.Context, p triage.Post) bool {
	log := o.log.With(slog.String("post", p.ID), slog.String("ticket", p.TicketID))
	if p.Attempts >= o.opts.MaxAttempts {
		// Failed for good in an earlier run: report it once more, as that
		// run's report may have been lost with it, and leave it be.
		o.park(ctx, p, fmt.Errorf("%w after %d attempts", ErrDelivery, p.Attempts))
		return false
	}
	if p.Kind != triage.PostCustomerReply {
		o.park(ctx, p, fmt.Errorf("%w: post kind %q is not a customer reply", ErrRefused, p.Kind))
		return false
	}
	if p.ThreadTS == "" {
		// No reply_url: Approve recorded the decision and the card shows
		// the text to copy; nothing is to be sent.
		if err := o.opts.Outbox.Done(ctx, p, triage.SlackRef{}); err != nil {
			log.LogAttrs(ctx, slog.LevelError, "outbound webhook: completing a reply without reply URL", slog.Any("err", err))
			return false
		}
		log.LogAttrs(ctx, slog.LevelInfo, "outbound webhook: ticket has no reply URL; reply is shown on the card to copy")
		return true
	}
	if err := checkReplyURL(p.ThreadTS); err != nil {
		o.park(ctx, p, fmt.Errorf("%w: %w", ErrRefused, err))
		return false
	}
	err := o.send(ctx, p)
	if err == nil {
		delete(o.nextAt, p.ID)
		if err := o.opts.Outbox.Done(ctx, p, triage.SlackRef{}); err != nil {
			// Sent but still in the outbox: it will be sent again, and
			// the receiver can drop it by its X-Casebot-Delivery.
			log.LogAttrs(ctx, slog.LevelError, "outbound webhook: delivered but not marked done", slog.Any("err", err))
			return false
		}
		log.LogAttrs(ctx, slog.LevelInfo, "outbound webhook: reply delivered", slog.Int("attempt", p.Attempts+1))
		return true
	}
	if ctx.Err() != nil {
		// Shutting down is not the receiver's failure.
		return false
	}
	if rerr := o.opts.Outbox.Retry(ctx, p); rerr != nil {
		log.LogAttrs(ctx, slog.LevelError, "outbound webhook: recording a failed attempt", slog.Any("err", rerr))
	}
	p.Attempts++
	log.LogAttrs(ctx, slog.LevelWarn, "outbound webhook: attempt failed", slog.Int("attempt", p.Attempts), slog.Any("err", err))
	if p.Attempts >= o.opts.MaxAttempts {
		o.park(ctx, p, fmt.Errorf("after %d attempts: %w", p.Attempts, err))
		return false
	}
	o.nextAt[p.ID] = time.Now().Add(o.backoff(p.Attempts, retryAfterHint(err)))
	return false
}

// park stops attempting p in this run and reports it; p stays in the outbox
// so the reply is never silently dropped.
func (o *Outbound) park(ctx context.Context, p triage.Post, err error) {
	o.parked[p.ID] = true
	delete(o.nextAt, p.ID)
	o.log.LogAttrs(ctx, slog.LevelError, "outbound webhook: reply not delivered; kept in the outbox",
		slog.String("post", p.ID), slog.String("ticket", p.TicketID), slog.Any("err", err))
	if o.opts.OnFailed != nil {
		o.opts.OnFailed(p, err)
	}
}

// backoff is the delay after the n-th failed attempt: exponential from
// BaseDelay, capped at MaxDelay, the upper half jittered; a receiver's
// Retry-After raises it, still within MaxDelay.
func (o *Outbound) backoff(n int, hint time.Duration) time.Duration {
	d := min(o.opts.BaseDelay, o.opts.MaxDelay)
	for i := 1; i < n && d < o.opts.MaxDelay; i++ {
		d = min(d, o.opts.MaxDelay/2) * 2 // no overflow on the way to the cap
	}
	d = d/2 + rand.N(d/2+1)
	return min(max(d, hint), o.opts.MaxDelay)
}

// statusError is a non-2xx answer.
type statusError struct {
	code       int
	retryAfter time.Duration
}

func (e *statusError) Error() string { return "receiver answered " + strconv.Itoa(e.code) }

func retryAfterHint(err error) time.Duration {
	if se, ok := errors.AsType[*statusError](err); ok {
		return se.retryAfter
	}
	return 0
}

// send POSTs p once. Neither the reply text nor the receiver's answer goes
// into the error: both may end up on a card or in a log.
func (o *Outbound) send(ctx context.Context, p triage.Post) error {
	t, err := o.opts.Ticket(ctx, p.TicketID)
	if err != nil {
		return fmt.Errorf("%w: ticket %s: %w", ErrDelivery, p.TicketID, err)
	}
	now := o.opts.Clock.Now()
	body, err := json.Marshal(OutboundReply{TicketID: p.TicketID, ExternalID: t.ExternalID, Text: p.Text, SentAt: now.UTC()})
	if err != nil {
		return fmt.Errorf("%w: encoding the reply: %w", ErrDelivery, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.ThreadTS, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: building the request failed", ErrDelivery)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "casebot")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(o.opts.Secret, now.Unix(), body))
	req.Header.Set(HeaderDelivery, p.ID)
	resp, err := o.opts.Client.Do(req)
	if err != nil {
		// The URL can hold the receiver's secret (hook URLs often do), so
		// the error keeps only the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	defer resp.Body.Close()
	// Read a little so the connection can be reused; the content is the
	// receiver's business.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		se := &statusError{code: resp.StatusCode}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.retryAfter = time.Duration(min(s, 24*60*60)) * time.Second
		}
		return fmt.Errorf("%w: %w", ErrDelivery, se)
	}
	return nil
}

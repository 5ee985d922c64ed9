package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
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
	// OnDelivered is told of every reply sent, with the time, so its
	// delivery can be recorded (triage.Triager.ReplyDelivered); a reply
	// sent again after a failure to mark it done is told again. Called from
	// Run's goroutine; nil ignores.
	OnDelivered func(post triage.Post, at time.Time)
	// Client sends the requests; when nil, a client with Timeout, no
	// redirects, no proxy and a dial check that connects only to public
	// addresses or those ReplyURLAllow permits. Redirects are never
	// followed: a POST must not become a GET or go somewhere the sender did
	// not name. There is no proxy because the dial check must see the
	// receiver's address, not a proxy's. A Client given here is used as it
	// is, with its own checks.
	Client *http.Client
	// ReplyURLAllow lists the internal hosts reply URLs may target
	// (http.reply_url_allow); nil allows only public addresses. Checked
	// before each reply and, with the default Client, on every connection.
	ReplyURLAllow *ReplyURLAllow
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
	drainer
	opts OutboundOptions
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
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Clock == nil {
		opts.Clock = triage.SystemClock{}
	}
	if opts.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		tr.DialContext = replyDialContext(opts.ReplyURLAllow, &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second})
		opts.Client = &http.Client{
			Transport:     tr,
			Timeout:       opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	o := &Outbound{opts: opts}
	o.drainer = drainer{
		outbox: opts.Outbox, channel: triage.OutboundChannel(triage.SourceWebhook), name: "outbound webhook",
		onFailed: opts.OnFailed, onDelivered: opts.OnDelivered, clock: opts.Clock, maxAttempts: opts.MaxAttempts, baseDelay: opts.BaseDelay, maxDelay: opts.MaxDelay, poll: opts.Poll,
		errDelivery: ErrDelivery, errRefused: ErrRefused,
		prepare: o.prepare, send: o.send,
		// Every failed POST may pass later, the receiver can say when, but
		// one to an internal address never will.
		classify: func(err error) (bool, time.Duration) { return errors.Is(err, ErrRefused), retryAfterHint(err) },
		// A repeat carries the same X-Casebot-Delivery.
		logSent: "reply delivered", logNotDone: "delivered but not marked done",
	}
	o.drainer.init(opts.Logger)
	return o
}

// prepare settles the replies that are not POSTed: one without reply URL is
// done at once, one whose URL is not http(s) or targets an internal address
// ReplyURLAllow does not permit is refused (stored before intake checked
// it, or before the allow-list changed).
func (o *Outbound) prepare(ctx context.Context, p triage.Post) (handled, left bool) {
	if p.ThreadTS == "" {
		// No reply_url: Approve recorded the decision and the card shows
		// the text to copy; nothing is to be sent.
		log := o.log.With(slog.String("post", p.ID), slog.String("ticket", p.TicketID))
		if err := o.opts.Outbox.Done(ctx, p, triage.SlackRef{}); err != nil {
			log.LogAttrs(ctx, slog.LevelError, "outbound webhook: completing a reply without reply URL", slog.Any("err", err))
			return true, false
		}
		log.LogAttrs(ctx, slog.LevelInfo, "outbound webhook: ticket has no reply URL; reply is shown on the card to copy")
		return true, true
	}
	err := checkReplyURL(p.ThreadTS)
	if err == nil {
		err = checkReplyTarget(p.ThreadTS, o.opts.ReplyURLAllow)
	}
	if err != nil {
		o.park(ctx, p, fmt.Errorf("%w: %w", ErrRefused, err))
		return true, false
	}
	return false, false
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
		if errors.Is(err, ErrInternalAddress) {
			return fmt.Errorf("%w: %w", ErrRefused, err)
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

package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/triage"
)

// MetadataEventType is the event_type of the metadata casebot attaches to
// every message it posts; its payload names the outbox post and the ticket,
// so a restarted poster can tell whether a post already reached Slack.
const MetadataEventType = "casebot_post"

// Poster defaults.
const (
	defaultPerChannelInterval = time.Second
	defaultMaxAttempts        = 8
	defaultBackoff            = time.Second
	defaultPollInterval       = 3 * time.Second
	// maxBackoff caps the exponential back-off after failed attempts.
	maxBackoff = time.Minute
	// callTimeout bounds one Slack call, so a hung connection ends as an
	// error of unknown outcome instead of stalling its channel.
	callTimeout = 30 * time.Second
	// historyLimit is how many recent messages are searched for a post that
	// may already be in Slack. Posts are drained in order and the one in
	// doubt is always the oldest pending one, so it is among the channel's
	// latest messages unless people wrote this many since.
	historyLimit = 50
	// threadPage and threadPages bound the search of a thread for a reply
	// that may already be in Slack: a ticket's thread is far shorter.
	threadPage  = 200
	threadPages = 10
	// pendingBatch is how many posts a channel reads from the outbox at once.
	pendingBatch = 16
)

// TicketSource reads the ticket a post is about. It is the read half of
// triage.Tickets, which satisfies it.
type TicketSource interface {
	Get(ctx context.Context, id string) (triage.Ticket, error)
}

// PosterOptions configures a Poster; zero values take the defaults.
type PosterOptions struct {
	// Clock gives the time of a decision whose post has none; default the
	// system clock. Pacing always uses real time: Slack's limits do.
	Clock triage.Clock
	// Location is the time zone times are shown in; nil means UTC.
	Location *time.Location
	// Logger receives failures and dropped posts; default slog.Default().
	Logger *slog.Logger
	// PerChannelInterval is the least time between two writes (post or
	// update) to one channel; default 1s, Slack's "about one message per
	// second per channel".
	PerChannelInterval time.Duration
	// MaxAttempts is how many failed attempts a post with a permanent error
	// (invalid_blocks, channel_not_found, not_in_channel …) gets before it
	// is dropped (see OnDropped); default 8. Other errors are retried until
	// they stop.
	MaxAttempts int
	// EscalationChannel is where an escalation post with no channel goes.
	EscalationChannel string
	// Backoff is the wait after a first failed attempt, doubled after each
	// further one up to a minute; default 1s.
	Backoff time.Duration
	// PollInterval is how often the outbox is looked at without a Kick, as
	// a safety net; default 3s.
	PollInterval time.Duration
	// OnDropped, when set, is told of every post the poster gives up on,
	// with why: a permanent Slack error after MaxAttempts attempts, a ticket
	// that no longer exists (err wraps triage.ErrNotFound), a kind it cannot
	// render or no channel to post to. The post is marked done right after,
	// so a dropped card or customer reply is never posted; the hook is how
	// people get to know. It runs on the channel's drainer: it should
	// enqueue its notice and return. A notice about a post whose ticket is
	// gone must not be a post about that ticket, which would be dropped in
	// turn.
	OnDropped func(p triage.Post, err error)
	// OnDelivered, when set, is told of every customer reply Slack took
	// (or that was found already posted), with the time, so the reply's
	// delivery can be recorded (triage.Triager.ReplyDelivered). It runs on
	// the channel's drainer before the post is marked done, so after a
	// stop in between it may be told twice.
	OnDelivered func(p triage.Post, at time.Time)
	// Alerts, when set, records a pattern alert as sent once Slack has its
	// post (or it is dropped), before the post leaves the outbox, so that
	// a stop between the Scheduler's enqueue and its own mark cannot have
	// the alert raised again (see Scheduler.checkPatterns). casebot run
	// passes the store.
	Alerts triage.Alerts
}

// PosterStats counts what a Poster did since it was made.
type PosterStats struct {
	// Posted counts messages posted and cards updated.
	Posted int64
	// Recovered counts posts found already in Slack (posted before a crash
	// or an error of unknown outcome) and marked done without posting again.
	Recovered int64
	// RateLimited counts HTTP 429 answers.
	RateLimited int64
	// Failed counts failed attempts other than rate limits.
	Failed int64
	// Dropped counts posts given up after MaxAttempts permanent failures,
	// or whose ticket no longer exists.
	Dropped int64
}

// Poster drains the outbox to Slack (SPEC section 5, invariant 6): each
// Slack channel in order (outbound channels, triage.OutboundPrefix, are left
// to their senders), in its own goroutine so that a slow or rate-limited
// channel never holds up another, paced at PerChannelInterval and honouring
// Retry-After. Each post is rendered from the ticket as it is when posted.
//
// A message is posted exactly once across restarts: it carries metadata
// naming its outbox post, and before posting the oldest pending post of a
// channel after start, or after an error that leaves unknown whether Slack
// took the message (a timeout, a 5xx), the poster looks for it (a card or
// escalation in the channel's recent history, a thread reply or customer
// reply in its thread) and, when found, marks it done instead of posting it
// again.
type Poster struct {
	api       *slack.Client
	outbox    triage.Outbox
	tickets   TicketSource
	customers CustomerLookup
	opts      PosterOptions
	log       *slog.Logger
	kick      chan struct{}

	mu sync.Mutex
	// workers are the running channel drainers, by channel.
	workers map[string]*worker
	// clean holds the channels whose last outcome is known in this process:
	// their oldest pending post is certainly not in Slack yet.
	clean map[string]bool

	posted, recovered, rateLimited, failed, dropped atomic.Int64
}

// worker is one channel's drainer.
type worker struct {
	channel string
	// woken is set by a Kick or poll that found the channel pending; the
	// worker reads the outbox again before exiting when it is set. Guarded
	// by Poster.mu.
	woken bool
	// next is the earliest time of the channel's next write.
	next time.Time
	// delivered holds the posts of the current batch that are in Slack (or
	// dropped) and were marked done, with where they landed. One read back
	// from the outbox is marked done again, never posted again.
	delivered map[string]redelivery
}

// redelivery is a delivered post and how often the outbox handed it back.
type redelivery struct {
	ref   triage.SlackRef
	times int
}

// NewPoster returns a Poster that posts with api, reading posts from outbox,
// tickets from tickets and customers from customers.
func NewPoster(api *slack.Client, outbox triage.Outbox, tickets TicketSource, customers CustomerLookup, opts PosterOptions) *Poster {
	if opts.Clock == nil {
		opts.Clock = triage.SystemClock{}
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PerChannelInterval <= 0 {
		opts.PerChannelInterval = defaultPerChannelInterval
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = defaultMaxAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = defaultBackoff
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = defaultPollInterval
	}
	return &Poster{
		api: api, outbox: outbox, tickets: tickets, customers: customers, opts: opts,
		log:     opts.Logger.With("component", "poster"),
		kick:    make(chan struct{}, 1),
		workers: map[string]*worker{},
		clean:   map[string]bool{},
	}
}

// Kick tells the poster that posts were enqueued. It never blocks.
func (p *Poster) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Stats returns the poster's counters.
func (p *Poster) Stats() PosterStats {
	return PosterStats{
		Posted: p.posted.Load(), Recovered: p.recovered.Load(), RateLimited: p.rateLimited.Load(),
		Failed: p.failed.Load(), Dropped: p.dropped.Load(),
	}
}

// Run drains the outbox until ctx ends, then waits for the channel
// goroutines to stop and returns nil. A post interrupted by the stop stays
// in the outbox. Run must not be called twice at once.
func (p *Poster) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	poll := time.NewTicker(p.opts.PollInterval)
	defer poll.Stop()
	for {
		p.startWorkers(ctx, &wg)
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		case <-poll.C:
		}
	}
}

// startWorkers starts a drainer for each channel with pending posts and
// wakes those already running.
func (p *Poster) startWorkers(ctx context.Context, wg *sync.WaitGroup) {
	channels, err := p.outbox.Channels(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("list outbox channels", "err", err)
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range channels {
		if strings.HasPrefix(ch, triage.OutboundPrefix) {
			// Replies leaving by email or webhook have their own senders.
			continue
		}
		if w, ok := p.workers[ch]; ok {
			w.woken = true
			continue
		}
		w := &worker{channel: ch, delivered: map[string]redelivery{}}
		p.workers[ch] = w
		wg.Go(func() { p.drain(ctx, w) })
	}
}

// drain posts a channel's pending posts in order until there are none or
// ctx ends.
func (p *Poster) drain(ctx context.Context, w *worker) {
	defer func() {
		p.mu.Lock()
		// A successor may already drain the channel once w removed itself.
		if p.workers[w.channel] == w {
			delete(p.workers, w.channel)
		}
		p.mu.Unlock()
	}()
	for ctx.Err() == nil {
		p.mu.Lock()
		w.woken = false
		p.mu.Unlock()
		posts, err := p.outbox.Pending(ctx, w.channel, pendingBatch)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("read outbox", "channel", w.channel, "err", err)
				sleep(ctx, p.opts.Backoff)
			}
			continue
		}
		if len(posts) == 0 {
			p.mu.Lock()
			woken := w.woken
			if !woken {
				delete(p.workers, w.channel)
			}
			p.mu.Unlock()
			if !woken {
				return
			}
			continue
		}
		// Posts are drained in order, so a delivered post the outbox kept
		// is in this batch; older entries are gone for good.
		for id := range w.delivered {
			if !slices.ContainsFunc(posts, func(q triage.Post) bool { return q.ID == id }) {
				delete(w.delivered, id)
			}
		}
		for _, post := range posts {
			if !p.deliver(ctx, w, post) {
				break
			}
		}
	}
}

// deliver takes one post to Slack and out of the outbox. It reports false
// when the post is still pending (it failed and was backed off, or ctx
// ended), so that the channel reads the outbox again before going on.
func (p *Poster) deliver(ctx context.Context, w *worker, post triage.Post) bool {
	if d, ok := w.delivered[post.ID]; ok {
		d.times++
		w.delivered[post.ID] = d
		p.log.Warn("outbox kept a delivered post; marking it done again", "channel", w.channel, "post", post.ID,
			"ticket", post.TicketID, "times", d.times)
		if !sleep(ctx, p.backoff(d.times)) {
			return false
		}
		return p.finish(ctx, post, d.ref)
	}
	for {
		ref, err := p.send(ctx, w, post)
		var limited *slack.RateLimitedError
		switch {
		case err == nil:
			w.delivered[post.ID] = redelivery{ref: ref}
			if post.Kind == triage.PostCustomerReply && p.opts.OnDelivered != nil {
				p.opts.OnDelivered(post, p.opts.Clock.Now())
			}
			return p.finish(ctx, post, ref)
		case ctx.Err() != nil:
			return false
		case errors.As(err, &limited):
			p.rateLimited.Add(1)
			wait := max(limited.RetryAfter, p.opts.PerChannelInterval)
			w.next = time.Now().Add(wait)
			p.log.Debug("rate limited", "channel", w.channel, "post", post.ID, "retry_after", limited.RetryAfter)
			if !sleep(ctx, wait) {
				return false
			}
			continue
		case errors.Is(err, errDrop):
			p.drop(ctx, post, err)
			w.delivered[post.ID] = redelivery{}
			return p.finish(ctx, post, triage.SlackRef{})
		}
		p.failed.Add(1)
		switch {
		case unknownOutcome(err):
			p.setClean(w.channel, false)
		case !errors.Is(err, errLocal):
			// Slack refused the call: it certainly does not have the post.
			p.setClean(w.channel, true)
		}
		attempts := post.Attempts + 1
		if permanent(err) && attempts >= p.opts.MaxAttempts {
			p.drop(ctx, post, err)
			w.delivered[post.ID] = redelivery{}
			return p.finish(ctx, post, triage.SlackRef{})
		}
		p.log.Warn("post failed, will retry", "channel", w.channel, "post", post.ID, "kind", post.Kind,
			"ticket", post.TicketID, "attempts", attempts, "err", err)
		if err := p.outbox.Retry(ctx, post); err != nil && ctx.Err() == nil {
			p.log.Warn("record failed attempt", "post", post.ID, "err", err)
		}
		sleep(ctx, p.backoff(attempts))
		return false
	}
}

// drop logs a post that will never be posted and tells OnDropped. The
// ticket's audit trail already holds the change the post announced; what
// is lost is that Slack (or the customer) never heard of it.
func (p *Poster) drop(ctx context.Context, post triage.Post, err error) {
	p.dropped.Add(1)
	p.log.ErrorContext(ctx, "dropping post", "channel", post.Channel, "post", post.ID, "kind", post.Kind,
		"ticket", post.TicketID, "action", post.Action, "attempts", post.Attempts+1, "err", err)
	if p.opts.OnDropped != nil {
		p.opts.OnDropped(post, err)
	}
}

// finish marks a delivered post done, retrying until the outbox takes it:
// posting it again would duplicate it. A pattern alert is recorded sent
// first (PosterOptions.Alerts). It reports false when ctx ended first; the
// post is then found in Slack after a restart.
func (p *Poster) finish(ctx context.Context, post triage.Post, ref triage.SlackRef) bool {
	if key := alertKeyOf(post); key != "" && p.opts.Alerts != nil {
		ok := p.persist(ctx, post, "mark alert sent", func() error {
			return p.opts.Alerts.MarkAlertSent(ctx, key, p.opts.Clock.Now())
		})
		if !ok {
			return false
		}
	}
	return p.persist(ctx, post, "mark post done", func() error {
		if err := p.outbox.Done(ctx, post, ref); !errors.Is(err, triage.ErrNotFound) {
			return err
		}
		return nil
	})
}

// persist retries a store write about a delivered post until it succeeds,
// reporting false when ctx ended first.
func (p *Poster) persist(ctx context.Context, post triage.Post, what string, write func() error) bool {
	for attempt := 1; ; attempt++ {
		err := write()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.log.Warn(what, "post", post.ID, "ticket", post.TicketID, "attempt", attempt, "err", err)
		if !sleep(ctx, p.backoff(attempt)) {
			return false
		}
	}
}

// backoff is the wait after the given number of failed attempts: Backoff
// doubled per attempt, capped, with ±20% jitter so that channels failing
// together do not retry together.
func (p *Poster) backoff(attempts int) time.Duration {
	d := p.opts.Backoff
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (p *Poster) isClean(channel string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clean[channel]
}

func (p *Poster) setClean(channel string, clean bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clean[channel] = clean
}

// errDrop marks a post that can never be delivered (its ticket is gone, its
// kind unknown); it is dropped at once.
var errDrop = errors.New("undeliverable post")

// errLocal marks a failure before any Slack call (reading the store), which
// leaves no doubt about what Slack has.
var errLocal = errors.New("local failure")

// send renders and sends one post, returning where it landed.
func (p *Poster) send(ctx context.Context, w *worker, post triage.Post) (triage.SlackRef, error) {
	t, err := p.tickets.Get(ctx, post.TicketID)
	switch {
	case errors.Is(err, triage.ErrNotFound):
		return triage.SlackRef{}, fmt.Errorf("ticket %s: %w: %w", post.TicketID, errDrop, err)
	case err != nil:
		return triage.SlackRef{}, fmt.Errorf("read ticket %s: %w: %w", post.TicketID, errLocal, err)
	}
	switch post.Kind {
	case triage.PostCard:
		return p.sendCard(ctx, w, post, t)
	case triage.PostCardUpdate:
		return p.updateCard(ctx, w, post, t)
	case triage.PostThread:
		if t.Slack.TS == "" {
			return p.unposted(post, t)
		}
		msg := ThreadMessage(post, t, p.opts.Location)
		return p.post(ctx, w, post, t, t.Slack.Channel, t.Slack.TS, msg)
	case triage.PostEscalation:
		channel := firstOf(post.Channel, p.opts.EscalationChannel)
		return p.post(ctx, w, post, t, channel, "", EscalationMessage(post, t, p.opts.Location))
	case triage.PostCustomerReply:
		return p.post(ctx, w, post, t, post.Channel, post.ThreadTS, CustomerReplyMessage(post))
	}
	return triage.SlackRef{}, fmt.Errorf("post %s of kind %q: %w", post.ID, post.Kind, errDrop)
}

// unposted handles an update or thread post of a card that was never
// posted. Such posts queue behind their card, so this means the card was
// dropped or the state is corrupt: there is nowhere to post, and waiting
// would block the channel.
func (p *Poster) unposted(post triage.Post, t triage.Ticket) (triage.SlackRef, error) {
	p.log.Error("card not posted, skipping post about it", "post", post.ID, "kind", post.Kind, "ticket", t.ID,
		"channel", post.Channel)
	return triage.SlackRef{}, nil
}

func (p *Poster) sendCard(ctx context.Context, w *worker, post triage.Post, t triage.Ticket) (triage.SlackRef, error) {
	if t.Slack.TS != "" {
		// Already posted and recorded: a ticket has exactly one card.
		p.recovered.Add(1)
		return t.Slack, nil
	}
	cust, err := p.customers.Customer(ctx, t.CustomerID)
	if err != nil && !errors.Is(err, triage.ErrNotFound) {
		return triage.SlackRef{}, fmt.Errorf("read customer %s: %w: %w", t.CustomerID, errLocal, err)
	}
	msg := CardMessage(t, CardOptions{Customer: cust, Location: p.opts.Location})
	return p.post(ctx, w, post, t, firstOf(post.Channel, t.Route.Channel), "", msg)
}

func (p *Poster) updateCard(ctx context.Context, w *worker, post triage.Post, t triage.Ticket) (triage.SlackRef, error) {
	if t.Slack.TS == "" {
		return p.unposted(post, t)
	}
	cust, err := p.customers.Customer(ctx, t.CustomerID)
	if err != nil && !errors.Is(err, triage.ErrNotFound) {
		return triage.SlackRef{}, fmt.Errorf("read customer %s: %w: %w", t.CustomerID, errLocal, err)
	}
	opts := CardOptions{Customer: cust, Location: p.opts.Location}
	// A system change (a draft arriving) is not a person's decision and
	// must not hide the last one from the card.
	if post.Action != "" && post.Actor != triage.ActorSystem {
		at := post.CreatedAt
		if at.IsZero() {
			at = p.opts.Clock.Now()
		}
		opts.Last = Decision{Actor: post.Actor, Action: post.Action, At: at}
	}
	msg := CardMessage(t, opts)
	if err := p.pace(ctx, w); err != nil {
		return triage.SlackRef{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, _, _, err = p.api.UpdateMessageContext(cctx, t.Slack.Channel, t.Slack.TS,
		slack.MsgOptionText(msg.Text, false), slack.MsgOptionBlocks(msg.Blocks...),
		slack.MsgOptionParse(false), slack.MsgOptionLinkNames(false))
	if err != nil {
		return triage.SlackRef{}, fmt.Errorf("update card of ticket %s in %s: %w", t.ID, t.Slack.Channel, err)
	}
	p.posted.Add(1)
	p.setClean(w.channel, true)
	return t.Slack, nil
}

// post sends a new message (in a thread when threadTS is set) with metadata
// naming the post, unless the channel's last outcome is unknown and the
// message is found already there.
func (p *Poster) post(ctx context.Context, w *worker, post triage.Post, t triage.Ticket, channel, threadTS string, msg Message) (triage.SlackRef, error) {
	if channel == "" {
		return triage.SlackRef{}, fmt.Errorf("post %s of ticket %s: no channel: %w", post.ID, t.ID, errDrop)
	}
	if !p.isClean(w.channel) {
		ref, found, err := p.findPosted(ctx, channel, threadTS, post.ID)
		if err != nil {
			return triage.SlackRef{}, err
		}
		if found {
			p.recovered.Add(1)
			p.setClean(w.channel, true)
			return ref, nil
		}
	}
	opts := []slack.MsgOption{
		slack.MsgOptionText(msg.Text, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataEventType,
			EventPayload: map[string]any{"post_id": post.ID, "ticket_id": t.ID}}),
		slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl(),
		slack.MsgOptionParse(false), slack.MsgOptionLinkNames(false),
	}
	if len(msg.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(msg.Blocks...))
	}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	if err := p.pace(ctx, w); err != nil {
		return triage.SlackRef{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	gotChannel, ts, err := p.api.PostMessageContext(cctx, channel, opts...)
	if err != nil {
		return triage.SlackRef{}, fmt.Errorf("post %s %s of ticket %s to %s: %w", post.Kind, post.ID, t.ID, channel, err)
	}
	p.posted.Add(1)
	p.setClean(w.channel, true)
	return triage.SlackRef{Channel: firstOf(gotChannel, channel), TS: ts}, nil
}

// findPosted looks for the bot's message carrying post ID id: in thread
// threadTS when it is set (thread replies are not in conversations.history),
// else among the channel's latest messages. A Slack refusal to answer
// (missing scope, not in channel) is logged and reported as not found: the
// check is a guard against duplicates and must not stop posting.
func (p *Poster) findPosted(ctx context.Context, channel, threadTS, id string) (triage.SlackRef, bool, error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var ts string
	var err error
	where := "history of " + channel
	if threadTS == "" {
		ts, err = p.findInHistory(cctx, channel, id)
	} else {
		where = "thread " + threadTS + " in " + channel
		ts, err = p.findInThread(cctx, channel, threadTS, id)
	}
	var refused slack.SlackErrorResponse
	switch {
	case errors.As(err, &refused) && !unknownOutcome(err):
		p.log.Warn("cannot read Slack to avoid a duplicate; posting", "where", where, "post", id, "err", err)
		return triage.SlackRef{}, false, nil
	case err != nil:
		return triage.SlackRef{}, false, fmt.Errorf("read %s: %w", where, err)
	case ts == "":
		return triage.SlackRef{}, false, nil
	}
	return triage.SlackRef{Channel: channel, TS: ts}, true, nil
}

// findInHistory returns the ts of the message carrying post ID id among
// the channel's latest historyLimit messages, or "".
func (p *Poster) findInHistory(ctx context.Context, channel, id string) (string, error) {
	res, err := p.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
		ChannelID: channel, Limit: historyLimit, IncludeAllMetadata: true,
	})
	if err != nil {
		return "", err
	}
	return carrying(res.Messages, id), nil
}

// findInThread returns the ts of the message carrying post ID id in a
// thread, or "". Slack answers a thread oldest first, so the whole thread
// is read, up to threadPages pages.
func (p *Poster) findInThread(ctx context.Context, channel, threadTS, id string) (string, error) {
	params := &slack.GetConversationRepliesParameters{ChannelID: channel, Timestamp: threadTS,
		Limit: threadPage, IncludeAllMetadata: true}
	for range threadPages {
		msgs, more, cursor, err := p.api.GetConversationRepliesContext(ctx, params)
		if err != nil {
			return "", err
		}
		if ts := carrying(msgs, id); ts != "" || !more {
			return ts, nil
		}
		params.Cursor = cursor
	}
	p.log.Warn("thread too long to search for a duplicate; posting", "channel", channel, "thread", threadTS, "post", id)
	return "", nil
}

// carrying returns the ts of the message whose casebot metadata names post
// ID id, or "".
func carrying(msgs []slack.Message, id string) string {
	for _, m := range msgs {
		if m.Metadata.EventType == MetadataEventType && m.Metadata.EventPayload["post_id"] == id {
			return m.Timestamp
		}
	}
	return ""
}

// pace waits until the channel may be written to again and books the next
// slot. Slots are spaced from the start of each write, so the channel's rate
// does not fall with Slack's latency.
func (p *Poster) pace(ctx context.Context, w *worker) error {
	if d := time.Until(w.next); d > 0 && !sleep(ctx, d) {
		return ctx.Err()
	}
	w.next = time.Now().Add(p.opts.PerChannelInterval)
	return nil
}

// permanentErrors are Slack errors that retrying the same post cannot fix
// (short of someone inviting the bot or restoring the channel, which the
// attempts before a drop leave time for).
var permanentErrors = []string{
	"invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long", "no_text",
	"channel_not_found", "not_in_channel", "is_archived", "thread_not_found", "message_not_found",
	"cant_update_message", "edit_window_closed", "restricted_action", "too_many_attachments",
	"invalid_metadata_format", "invalid_metadata_schema", "metadata_too_large", "invalid_arguments",
}

// permanent reports whether err is a Slack refusal that retrying cannot fix.
func permanent(err error) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se) && slices.Contains(permanentErrors, se.Err)
}

// slackServerErrors are Slack error codes that leave unknown whether the
// call took effect.
var slackServerErrors = []string{"internal_error", "fatal_error", "request_timeout", "service_unavailable"}

// unknownOutcome reports whether Slack may have taken a call that failed: a
// transport error, a timeout or a 5xx, as opposed to an answer refusing it.
func unknownOutcome(err error) bool {
	if errors.Is(err, errLocal) {
		return false
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return slices.Contains(slackServerErrors, se.Err)
	}
	var limited *slack.RateLimitedError
	if errors.As(err, &limited) {
		return false
	}
	var status slack.StatusCodeError
	if errors.As(err, &status) {
		return status.Code >= http.StatusInternalServerError || status.Code == http.StatusRequestTimeout
	}
	return true
}

// sleep waits d or until ctx ends, reporting whether the whole wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/casebot/casebot/triage"
)

// Kicker wakes the outbox drainer after an action has enqueued posts, so
// that cards update at once instead of at the drainer's next poll.
type Kicker interface{ Kick() }

// CustomerLookup finds a stored customer by ID; the bbolt store implements
// it.
type CustomerLookup interface {
	Customer(ctx context.Context, id string) (triage.Customer, error)
}

// Timing of the Socket Mode loop. Slack's ack deadline is 3 s; the budgets
// leave room for the network.
const (
	// commitBudget bounds the store commit of an intake message, which
	// happens before its ack (SPEC invariant 1). Past it the envelope is
	// left unacked and Slack delivers it again.
	commitBudget = 2 * time.Second
	// viewAckBudget is how long a view_submission handler may take before
	// the modal is acknowledged (closed) without its answer.
	viewAckBudget = 2500 * time.Millisecond
	// jobTimeout bounds one piece of work after its ack.
	jobTimeout = 30 * time.Second
	// seenEvents is how many Events API event IDs are remembered to drop
	// Slack's redeliveries.
	seenEvents = 10000
	// defaultWorkers is the worker pool size when AppConfig.Workers is 0.
	defaultWorkers = 8
)

// AppConfig is what the Slack app needs.
type AppConfig struct {
	// API is the Web API client with the bot token; for Socket Mode it also
	// needs slack.OptionAppLevelToken.
	API *slack.Client
	// Socket is the Socket Mode client; nil builds one from API.
	Socket *socketmode.Client
	// Triager owns the tickets and the agent actions.
	Triager *triage.Triager
	// Classify hands a stored, still received ticket on for classification
	// and drafting (triage.Pipeline.Classify). It must not block: the app
	// calls it from its Socket Mode handlers, right after the commit.
	// Classification never runs on the app's own workers, so a slow model
	// is bounded by the pipeline's classifier, not by a job deadline.
	// Required.
	Classify func(ticketID string)
	// Customers resolves a ticket's customer, to tell whether a thread reply
	// comes from the ticket's author and to name customers on cards.
	Customers CustomerLookup
	// Kicker is woken after every action that enqueued posts; nil for none.
	Kicker Kicker
	// IntakeChannels are the channel IDs whose top-level messages become
	// tickets.
	IntakeChannels []string
	// FollowUpAfter is the delay between resolution and the follow-up.
	FollowUpAfter time.Duration
	// Location is the time zone times are shown in; nil means UTC.
	Location *time.Location
	// Logger receives operational logs (never customer text); nil discards.
	Logger *slog.Logger
	// Workers is the size of the worker pool; 0 means 8.
	Workers int
	// Clock tells the time for metrics windows and App Home; nil means the
	// Triager's clock.
	Clock triage.Clock
	// BotUserID and BotID are casebot's own bot user and bot; when either is
	// empty, Run asks auth.test. Posts by them in intake channels are
	// casebot's own and never tickets.
	BotUserID, BotID string
	// IgnoreBots are bot (B…) or app (A…) IDs whose posts in intake
	// channels are not tickets (config slack.ignore_bots). Other apps' posts
	// are: Shopify Flow, Zapier and email forwarders post as apps.
	IgnoreBots []string
}

// App is casebot's Slack app: the Socket Mode loop and everything people do
// in Slack (intake messages, buttons, modals, /casebot, the shortcut and App
// Home). It never posts cards: actions enqueue posts in the store and the
// Kicker's drainer posts them. What it posts itself are answers to one
// person: ephemeral messages, modals, response_url answers and App Home.
type App struct {
	api       *slack.Client
	socket    *socketmode.Client
	tr        *triage.Triager
	classify  func(ticketID string)
	customers CustomerLookup
	kicker    Kicker
	intake    map[string]bool
	followUp  time.Duration
	loc       *time.Location
	log       *slog.Logger
	workers   int
	clock     triage.Clock
	botUserID string
	botID     string
	ignore    map[string]bool
	seen      *eventSet

	// Set by Run before any goroutine reads them.
	runCtx  context.Context
	jobs    chan func(context.Context)
	commits sync.WaitGroup
	// commitSlots bounds the intake commits in flight.
	commitSlots chan struct{}
}

// New checks cfg and builds an App; Run starts it.
func New(cfg AppConfig) (*App, error) {
	var missing []string
	if cfg.API == nil {
		missing = append(missing, "API")
	}
	if cfg.Triager == nil {
		missing = append(missing, "Triager")
	}
	if cfg.Classify == nil {
		missing = append(missing, "Classify")
	}
	if cfg.Customers == nil {
		missing = append(missing, "Customers")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("bot: app config lacks %s", strings.Join(missing, ", "))
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("bot: app config: %d workers", cfg.Workers)
	}
	a := &App{
		api: cfg.API, socket: cfg.Socket, tr: cfg.Triager, classify: cfg.Classify, customers: cfg.Customers,
		kicker: cfg.Kicker, intake: map[string]bool{}, followUp: cfg.FollowUpAfter, loc: cfg.Location, log: cfg.Logger,
		workers: cfg.Workers, clock: cfg.Clock, botUserID: cfg.BotUserID, botID: cfg.BotID, ignore: map[string]bool{},
		seen: newEventSet(seenEvents),
	}
	for _, ch := range cfg.IntakeChannels {
		a.intake[ch] = true
	}
	for _, id := range cfg.IgnoreBots {
		a.ignore[id] = true
	}
	if a.socket == nil {
		a.socket = socketmode.New(cfg.API)
	}
	if a.loc == nil {
		a.loc = time.UTC
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.workers == 0 {
		a.workers = defaultWorkers
	}
	if a.clock == nil {
		a.clock = cfg.Triager.Clock
	}
	if a.clock == nil {
		a.clock = triage.SystemClock{}
	}
	return a, nil
}

// Run connects over Socket Mode and serves until ctx is cancelled, then
// finishes the work already acknowledged and returns nil. It returns an
// error when the app cannot start or Slack refuses the tokens. slack-go's
// client reconnects by itself when Slack asks it to or the connection dies;
// Run only logs those events. Run may be called once.
func (a *App) Run(ctx context.Context) error {
	if a.botUserID == "" || a.botID == "" {
		who, err := a.api.AuthTestContext(ctx)
		if ctx.Err() != nil {
			return nil // stopped while starting: nothing was taken on
		}
		if err != nil {
			return fmt.Errorf("bot: auth.test: %w", err)
		}
		if who.UserID == "" || who.BotID == "" {
			// Without them casebot's own posts would become tickets.
			return errors.New("bot: auth.test named no bot user or bot ID; is SLACK_BOT_TOKEN a bot token?")
		}
		a.botUserID, a.botID = who.UserID, who.BotID
	}
	a.runCtx = ctx
	a.jobs = make(chan func(context.Context), a.workers*16)
	a.commitSlots = make(chan struct{}, a.workers*8)
	// Work outlives ctx: an acknowledged envelope is finished, each piece
	// bounded by jobTimeout.
	work := context.WithoutCancel(ctx)
	var workers sync.WaitGroup
	for range a.workers {
		workers.Go(func() {
			for job := range a.jobs {
				a.runJob(work, job)
			}
		})
	}

	sockCtx, stopSocket := context.WithCancel(ctx)
	defer stopSocket()
	sockDone := make(chan error, 1)
	go func() { sockDone <- a.socket.RunContext(sockCtx) }()

	var runErr error
	socketStopped := false
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-sockDone:
			socketStopped = true
			if ctx.Err() == nil {
				runErr = fmt.Errorf("bot: socket mode: %w", err)
			}
			break loop
		case ev := <-a.socket.Events:
			a.dispatch(work, ev)
		}
	}
	stopSocket()
	if !socketStopped {
		<-sockDone
	}
	a.commits.Wait()
	close(a.jobs)
	workers.Wait()
	return runErr
}

// runJob runs one piece of work with its own deadline. A panic is logged
// and the worker lives on: one bad payload must not stop the bot.
func (a *App) runJob(ctx context.Context, job func(context.Context)) {
	ctx, cancel := context.WithTimeout(ctx, jobTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("bot: handler panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	job(ctx)
}

// enqueue hands work to the pool, waiting while the pool's queue is full.
func (a *App) enqueue(job func(context.Context)) { a.jobs <- job }

// dispatch acknowledges one Socket Mode event and hands its work on. Acks
// come first, except for intake messages (acked after the commit) and view
// submissions (acked with the modal's answer); both are bounded well within
// Slack's deadline.
func (a *App) dispatch(work context.Context, ev socketmode.Event) {
	switch ev.Type {
	case socketmode.EventTypeEventsAPI:
		a.onEventsAPI(work, ev)
	case socketmode.EventTypeInteractive:
		cb, ok := ev.Data.(slack.InteractionCallback)
		if !ok {
			a.ack(ev.Request, nil)
			return
		}
		if cb.Type == slack.InteractionTypeViewSubmission {
			a.onViewSubmission(ev.Request, cb)
			return
		}
		a.ack(ev.Request, nil)
		a.enqueue(func(ctx context.Context) { a.interact(ctx, cb) })
	case socketmode.EventTypeSlashCommand:
		a.ack(ev.Request, nil)
		if cmd, ok := ev.Data.(slack.SlashCommand); ok {
			a.enqueue(func(ctx context.Context) { a.command(ctx, cmd) })
		}
	case socketmode.EventTypeErrorBadMessage:
		// Acked all the same, or Slack would redeliver what cannot be read.
		bad, _ := ev.Data.(*socketmode.ErrorBadMessage)
		var env struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if bad != nil {
			a.log.Warn("bot: unreadable socket mode message", "err", bad.Cause)
			if json.Unmarshal(bad.Message, &env) == nil && env.EnvelopeID != "" {
				a.ack(&socketmode.Request{EnvelopeID: env.EnvelopeID}, nil)
			}
		}
	case socketmode.EventTypeConnecting, socketmode.EventTypeConnected, socketmode.EventTypeHello:
		a.log.Debug("bot: socket mode", "event", ev.Type)
	case socketmode.EventTypeConnectionError, socketmode.EventTypeIncomingError,
		socketmode.EventTypeErrorWriteFailed, socketmode.EventTypeDisconnect:
		a.log.Warn("bot: socket mode trouble; slack-go reconnects", "event", ev.Type, "detail", socketDetail(ev))
	case socketmode.EventTypeInvalidAuth:
		a.log.Error("bot: socket mode: Slack refused the app-level token")
	default:
		if ev.Request != nil && ev.Request.EnvelopeID != "" {
			a.ack(ev.Request, nil)
		}
	}
}

// socketDetail describes a connection event's error for the log.
func socketDetail(ev socketmode.Event) string {
	var err error
	switch d := ev.Data.(type) {
	case *slack.ConnectionErrorEvent:
		err = d.ErrorObj
	case *socketmode.ErrorWriteFailed:
		err = d.Cause
	case error:
		err = d
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// ack acknowledges an envelope, with payload when it is not nil.
func (a *App) ack(req *socketmode.Request, payload any) {
	if req == nil || req.EnvelopeID == "" {
		return
	}
	if err := a.socket.AckCtx(a.runCtx, req.EnvelopeID, payload); err != nil {
		a.log.Warn("bot: ack failed", "envelope", req.EnvelopeID, "err", err)
	}
}

func (a *App) kick() {
	if a.kicker != nil {
		a.kicker.Kick()
	}
}

// onEventsAPI handles an Events API envelope: drops a redelivered event,
// turns intake channel messages into tickets and publishes App Home.
func (a *App) onEventsAPI(work context.Context, ev socketmode.Event) {
	outer, ok := ev.Data.(slackevents.EventsAPIEvent)
	if !ok {
		a.ack(ev.Request, nil)
		return
	}
	eventID := ""
	if cb, isCallback := outer.Data.(*slackevents.EventsAPICallbackEvent); isCallback {
		eventID = cb.EventID
	}
	if eventID != "" && !a.seen.Add(eventID) {
		a.ack(ev.Request, nil)
		return
	}
	switch inner := outer.InnerEvent.Data.(type) {
	case *slackevents.MessageEvent:
		if a.isIntake(inner) {
			a.intakeMessage(work, ev.Request, eventID, *inner)
			return
		}
	case *slackevents.AppHomeOpenedEvent:
		a.ack(ev.Request, nil)
		if inner.Tab == "home" && inner.User != "" {
			user := inner.User
			a.enqueue(func(ctx context.Context) { a.publishHome(ctx, user) })
		}
		return
	}
	a.ack(ev.Request, nil)
}

// isIntake reports whether a message event is a new message in an intake
// channel, by a person or by an app (SPEC section 2: Shopify Flow, Zapier and
// email forwarders post as apps): not casebot's own, not an ignored app's,
// not an edit, deletion, join or other notice.
func (a *App) isIntake(m *slackevents.MessageEvent) bool {
	if !a.intake[m.Channel] {
		return false
	}
	switch m.SubType {
	case "", slack.MsgSubTypeFileShare, slack.MsgSubTypeBotMessage:
	default:
		return false
	}
	if m.User == "" && m.BotID == "" {
		return false
	}
	if m.User == a.botUserID || m.BotID == a.botID {
		return false
	}
	return !a.ignore[m.BotID] && !a.ignore[appID(m)]
}

// appID is the ID of the app that posted m; empty for a person's message.
func appID(m *slackevents.MessageEvent) string {
	if m.BotID == "" || m.Message == nil || m.Message.BotProfile == nil {
		return ""
	}
	return m.Message.BotProfile.AppID
}

// appName is the name an app's post shows, for the ticket's customer: the
// post's username, the bot's profile name, or else the bot ID.
func appName(m slackevents.MessageEvent) string {
	if m.Username != "" {
		return m.Username
	}
	if m.Message != nil && m.Message.BotProfile != nil && m.Message.BotProfile.Name != "" {
		return m.Message.BotProfile.Name
	}
	return m.BotID
}

// intakeMessage stores an intake message, then acknowledges it (SPEC
// invariant 1: a ticket is committed before its source is acknowledged),
// then hands it to Classify. The commit runs apart from the worker pool so
// that busy workers never delay an ack. A failed commit is not acked: the
// event is forgotten and Slack's redelivery tries again.
func (a *App) intakeMessage(work context.Context, req *socketmode.Request, eventID string, m slackevents.MessageEvent) {
	a.commitSlots <- struct{}{}
	a.commits.Add(1)
	go func() {
		defer a.commits.Done()
		defer func() { <-a.commitSlots }()
		ctx, cancel := context.WithTimeout(work, commitBudget)
		next, err := a.commitMessage(ctx, m)
		cancel()
		if err != nil {
			a.seen.Forget(eventID)
			a.log.Error("bot: intake message not stored; Slack will redeliver it",
				"channel", m.Channel, "ts", m.TimeStamp, "err", err)
			return
		}
		a.ack(req, nil)
		if next != nil {
			next()
		}
	}()
}

// commitMessage stores a message and returns what follows the ack, if
// anything: handing a new ticket to Classify, or waking the poster. A
// top-level message is a new ticket. A thread reply is looked up by
// creating a ticket keyed on its thread: the store answers ErrDuplicate
// with the thread's ticket, to which a reply from the ticket's author is
// appended; other people's replies are ignored. A reply in a thread that is
// no ticket (its parent came before casebot) becomes a ticket of its own.
//
// An app's post is a ticket whose customer is named after the app and has
// no identity to merge on: an integration posts for many customers, who
// must not become one (nor count as one customer's repeat complaints). Its
// reply goes to the post's thread. Such a ticket has no Slack author, so no
// thread reply under it is appended.
func (a *App) commitMessage(ctx context.Context, m slackevents.MessageEvent) (func(), error) {
	ref := m.Channel + "/" + m.TimeStamp
	reply := m.ThreadTimeStamp != "" && m.ThreadTimeStamp != m.TimeStamp
	if reply {
		ref = m.Channel + "/" + m.ThreadTimeStamp
	}
	customer := triage.Customer{SlackUserID: m.User}
	if m.BotID != "" {
		customer = triage.Customer{Name: appName(m)}
	}
	in := triage.Inbound{
		Source: triage.SourceSlack, Channel: "slack", ExternalID: ref, ReplyTo: ref,
		Customer: customer, Body: slackUnescape(m.Text), ReceivedAt: slackTime(m.TimeStamp),
	}
	if m.Message != nil {
		for _, f := range m.Message.Files {
			in.Attachments = append(in.Attachments, f.Name)
		}
	}
	t, err := a.tr.Intake(ctx, in)
	switch {
	case err == nil:
		return a.classifyLater(t.ID), nil
	case !errors.Is(err, triage.ErrDuplicate):
		return nil, fmt.Errorf("store message %s: %w", ref, err)
	case !reply:
		// A redelivery. Classify only what an earlier run stored but never
		// classified; a second Classify of the same ticket is refused by
		// the triager, so one card is posted whatever the timing.
		if t.State == triage.StateReceived {
			return a.classifyLater(t.ID), nil
		}
		return nil, nil
	}
	cust, err := a.customers.Customer(ctx, t.CustomerID)
	if err != nil {
		return nil, fmt.Errorf("customer of ticket %s: %w", t.ID, err)
	}
	if m.BotID != "" || !t.IsSlackAuthor(cust, m.User) {
		return nil, nil
	}
	entry := triage.Entry{At: slackTime(m.TimeStamp), Author: m.User, Body: in.Body}
	if slices.ContainsFunc(t.Entries, func(e triage.Entry) bool {
		return e.At.Equal(entry.At) && e.Author == entry.Author && e.Body == entry.Body
	}) {
		return nil, nil
	}
	if _, err := a.tr.AppendEntry(ctx, t.ID, entry); err != nil {
		return nil, fmt.Errorf("append reply %s to ticket %s: %w", m.TimeStamp, t.ID, err)
	}
	return a.kick, nil
}

// classifyLater returns the hand-off of a stored ticket to Classify.
func (a *App) classifyLater(id string) func() { return func() { a.classify(id) } }

// slackTime reads a Slack ts ("1700000000.000100"); zero when it is not one,
// so that the store's clock is used instead.
func slackTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s <= 0 {
		return time.Time{}
	}
	var micro int64
	if frac != "" {
		frac = (frac + "000000")[:6]
		if micro, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}
		}
	}
	return time.Unix(s, micro*1000).UTC()
}

// eventSet remembers the most recent event IDs, forgetting the oldest once
// full. Slack redelivers an event within minutes, so a bounded memory is
// enough; the store's dedupe on external ID covers the rest.
type eventSet struct {
	mu    sync.Mutex
	ring  []string
	next  int
	index map[string]int
}

func newEventSet(size int) *eventSet {
	return &eventSet{ring: make([]string, size), index: make(map[string]int, size)}
}

// Add records id and reports whether it was new.
func (s *eventSet) Add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.index[id]; seen {
		return false
	}
	if old := s.ring[s.next]; old != "" && s.index[old] == s.next {
		delete(s.index, old)
	}
	s.ring[s.next] = id
	s.index[id] = s.next
	s.next = (s.next + 1) % len(s.ring)
	return true
}

// Forget drops id, so that its next delivery is handled.
func (s *eventSet) Forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.index, id)
}

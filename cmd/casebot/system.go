package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/casebot/casebot/bot"
	"github.com/casebot/casebot/intake"
	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// resumeWindow is how far back start-up looks for tickets a stop left
// unclassified or without a draft.
const resumeWindow = 7 * 24 * time.Hour

// System is one running casebot: the store, triage with its model, the Slack
// app and poster, and the HTTP intake. `casebot run` and the demo build one;
// the end-to-end tests reuse it against the Slack stand-in.
type System struct {
	// Config and Secrets are the loaded configuration and environment.
	Config  Config
	Secrets Secrets
	// DBPath is the bbolt file.
	DBPath string
	// SlackAPIURL points slack-go elsewhere than Slack (the stand-in);
	// empty means Slack.
	SlackAPIURL string
	// HTTPAddr is where /healthz and /v1/tickets listen; empty means none.
	HTTPAddr string
	// Classifier is --classifier: "", keyword or ollama.
	Classifier string
	// KeepModelWhenDown keeps an Ollama that does not answer at start
	// attached, for the bot that runs until it does.
	KeepModelWhenDown bool
	// Clock is the time the domain sees; nil means the wall clock.
	Clock triage.Clock
	// Poster tunes the poster (the demo runs it faster than Slack's pace
	// against a stand-in without rate limits).
	Poster bot.PosterOptions
	// Drafts tunes the pipeline's draft retries (the demo cannot wait
	// minutes for a model that is down).
	Drafts triage.PipelineOptions
	// MailTLS configures TLS to the IMAP and SMTP servers (e.g. a private
	// CA); nil uses the host's roots.
	MailTLS *tls.Config
	// Logger receives operational logs; Stderr model warnings.
	Logger *slog.Logger
	Stderr io.Writer

	DB       *store.DB
	Triager  *triage.Triager
	Pipeline *triage.Pipeline
	App      *bot.App
	Posts    *bot.Poster
	Outbound *intake.Outbound
	// Sched runs the follow-ups, pattern alerts and the Monday thread;
	// Ratings signs and serves the one-click rating links (nil without
	// http.public_url and CASEBOT_RATING_SECRET).
	Sched   *bot.Scheduler
	Ratings *intake.RatingLinker

	api      *slack.Client
	listener net.Listener
	closers  []func()
	kickers  []func()
	email    emailParts
	metrics  *promMetrics

	// replyAllow is http.reply_url_allow, for the webhook and Outbound.
	replyAllow *intake.ReplyURLAllow
}

// Open builds every part; nothing runs until Run.
func (s *System) Open(ctx context.Context) error {
	if s.Clock == nil {
		s.Clock = triage.SystemClock{}
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Stderr == nil {
		s.Stderr = io.Discard
	}
	db, err := store.Open(s.DBPath, store.Options{Clock: s.Clock})
	if err != nil {
		return err
	}
	s.DB = db
	s.closers = append(s.closers, func() { db.Close() })

	tr, err := triage.NewTriager(s.Config.Config, db, s.Clock)
	if err != nil {
		s.Close()
		return fmt.Errorf("config: %w", err)
	}
	tr.Drafter = triage.TemplateDrafter{}
	// Replies go back by Slack; to a webhook's reply URL only with the
	// secret that signs them (Outbound exists only then); by email only
	// with an SMTP server to send them. A source without its sender gets
	// no queued reply, so no card calls a reply sent that nothing sends.
	tr.Senders = map[triage.Source]bool{triage.SourceSlack: true,
		triage.SourceWebhook: s.Secrets.WebhookSecret != "", triage.SourceEmail: s.Config.Email.SMTPAddr != ""}
	if s.Config.Acknowledgement.Enabled {
		tr.Acknowledgement = s.Config.Acknowledgement.Template
	}
	s.metrics = newPromMetrics(s)
	tr.Store = s.metrics.countCreates(db)
	s.Triager = tr
	stopModel, err := attachModel(ctx, tr, s.Config, s.Classifier, s.KeepModelWhenDown, s.Stderr)
	if err != nil {
		s.Close()
		return err
	}
	s.closers = append(s.closers, stopModel)

	opts := []slack.Option{slack.OptionAppLevelToken(s.Secrets.SlackAppToken)}
	if s.SlackAPIURL != "" {
		opts = append(opts, slack.OptionAPIURL(s.SlackAPIURL))
	}
	s.api = slack.New(s.Secrets.SlackBotToken, opts...)
	loc := s.Config.Location()

	posterOpts := s.Poster
	posterOpts.Clock, posterOpts.Location, posterOpts.Logger = s.Clock, loc, s.Logger
	posterOpts.EscalationChannel = s.Config.Slack.EscalationChannel
	posterOpts.OnDropped = s.postDropped
	posterOpts.OnDelivered = s.replyDelivered
	posterOpts.Alerts = db
	s.Posts = bot.NewPoster(s.api, db, db, db, posterOpts)
	pipeOpts := s.Drafts
	pipeOpts.Kick, pipeOpts.Logger = s.kick, s.Logger
	// Accepted SOP updates reach the brief from the next draft on.
	pipeOpts.Policy = bot.PolicyExcerpts(db, bot.DefaultPolicyChars, s.Logger)
	s.Pipeline = triage.NewPipeline(tr, pipeOpts)
	s.metrics.observeClassified(tr, s.Clock)

	// With follow-ups off a resolution schedules none, so no ticket waits
	// in the due index (or outlives retention) for a follow-up never sent.
	followUpAfter := s.Config.FollowUp.After
	if !s.Config.FollowUp.Enabled {
		followUpAfter = 0
	}
	app, err := bot.New(bot.AppConfig{
		API: s.api, Socket: socketmode.New(s.api), Triager: tr, Customers: db, Kicker: kicker(s.kick),
		Classify:       s.Pipeline.Classify,
		IntakeChannels: s.Config.Slack.IntakeChannels, FollowUpAfter: followUpAfter,
		Location: loc, Logger: s.Logger, Clock: s.Clock, IgnoreBots: s.Config.Slack.IgnoreBots,
	})
	if err != nil {
		s.Close()
		return fmt.Errorf("slack app: %w", err)
	}
	s.App = app

	if s.replyAllow, err = intake.ParseReplyURLAllow(s.Config.HTTP.ReplyURLAllow); err != nil {
		s.Close()
		return fmt.Errorf("config: http.reply_url_allow: %w", err)
	}
	if s.Secrets.WebhookSecret != "" {
		s.Outbound = intake.NewOutbound(intake.OutboundOptions{
			Outbox: db, Ticket: db.Get, Secret: []byte(s.Secrets.WebhookSecret),
			OnFailed: s.replyFailed, OnDelivered: s.replyDelivered, Clock: s.Clock, Logger: s.Logger,
			ReplyURLAllow: s.replyAllow,
		})
	}
	if err := s.openScheduler(loc); err != nil {
		s.Close()
		return err
	}
	if err := s.openEmail(); err != nil {
		s.Close()
		return err
	}
	if s.HTTPAddr != "" {
		l, err := net.Listen("tcp", s.HTTPAddr)
		if err != nil {
			s.Close()
			return fmt.Errorf("http listen %s: %w", s.HTTPAddr, err)
		}
		s.listener = l
		s.closers = append(s.closers, func() { l.Close() })
	}
	s.kickers = append(s.kickers, s.Posts.Kick)
	if s.Outbound != nil {
		s.kickers = append(s.kickers, s.Outbound.Kick)
	}
	if s.email.mailer != nil {
		s.kickers = append(s.kickers, s.email.mailer.Kick)
	}
	return nil
}

// openScheduler builds the learning loop's jobs. A System clock that is a
// clockwork clock (the demo's simulated time) drives them too.
func (s *System) openScheduler(loc *time.Location) error {
	var links func(string, int) string
	if s.Secrets.RatingSecret != "" && s.Config.HTTP.PublicURL != "" {
		s.Ratings = &intake.RatingLinker{Secret: []byte(s.Secrets.RatingSecret), BaseURL: s.Config.HTTP.PublicURL, Clock: s.Clock}
		links = s.Ratings.Link
	}
	clk, _ := s.Clock.(clockwork.Clock)
	sched, err := bot.NewScheduler(bot.SchedulerConfig{API: s.api, Store: s.DB, Kicker: kicker(s.kick), Clock: clk,
		Location: loc, OpsChannel: s.Config.Slack.OpsChannel, FollowUpEnabled: s.Config.FollowUp.Enabled,
		FollowUpTemplate: s.Config.FollowUp.Template, RatingLinks: links, Logger: s.Logger, Senders: s.Triager.Senders,
		ThreadInterval: s.Poster.PerChannelInterval})
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	s.Sched = sched
	// gocron runs a goroutine from the start; Close stops it whatever
	// happens between Open and Run.
	s.closers = append(s.closers, func() { sched.Shutdown() })
	return nil
}

// kicker adapts a function to bot.Kicker.
type kicker func()

func (k kicker) Kick() { k() }

// kick wakes everything that drains the outbox.
func (s *System) kick() {
	for _, k := range s.kickers {
		k()
	}
}

// replyDelivered records that a reply a person approved reached the
// customer, which is what the first response time measures; the automatic
// acknowledgement, follow-ups and alerts are no response (triage.IsReply).
// A ticket deleted meanwhile has nothing left to record.
func (s *System) replyDelivered(p triage.Post, at time.Time) {
	if !triage.IsReply(p) {
		return
	}
	if _, err := s.Triager.ReplyDelivered(context.Background(), p.TicketID, at); err != nil && !errors.Is(err, triage.ErrNotFound) {
		s.Logger.Error("record reply delivery", "ticket", p.TicketID, "post", p.ID, "err", err)
	}
}

// replyFailed surfaces a reply that keeps failing on the ticket's card
// thread: it is never dropped silently.
func (s *System) replyFailed(p triage.Post, err error) {
	s.Logger.Error("reply not delivered", "ticket", p.TicketID, "post", p.ID, "err", err)
	notice := triage.Post{Kind: triage.PostThread, TicketID: p.TicketID, Action: "reply_failed",
		Actor: triage.ActorSystem, Detail: "the reply could not be delivered to the customer; it will not be retried automatically",
		CreatedAt: s.Clock.Now()}
	if err := s.DB.Enqueue(context.Background(), notice); err != nil {
		s.Logger.Error("surface failed reply", "ticket", p.TicketID, "err", err)
	}
	s.kick()
}

// postDropped surfaces a Slack post the poster gave up on. A customer reply
// gets a notice in its card's thread; a card, a notice in the escalation
// channel, so the ticket is not invisible. A failed notice is only logged:
// announcing it would go to the same broken place.
func (s *System) postDropped(p triage.Post, err error) {
	switch {
	case p.Kind == triage.PostCustomerReply:
		s.replyFailed(p, err)
	case p.Kind == triage.PostCard && p.Channel != s.Config.Slack.EscalationChannel:
		s.Logger.Error("card not posted", "ticket", p.TicketID, "channel", p.Channel, "err", err)
		notice := triage.Post{Kind: triage.PostEscalation, TicketID: p.TicketID, Channel: s.Config.Slack.EscalationChannel,
			Action: "card_dropped", Actor: triage.ActorSystem,
			Detail: "Slack refused this ticket's card in its routed channel; invite the bot there or fix the route", CreatedAt: s.Clock.Now()}
		if err := s.DB.Enqueue(context.Background(), notice); err != nil {
			s.Logger.Error("surface dropped card", "ticket", p.TicketID, "err", err)
		}
		s.kick()
	default:
		s.Logger.Error("post dropped", "ticket", p.TicketID, "kind", p.Kind, "err", err)
	}
}

// Addr is the HTTP listener's address, once open.
func (s *System) Addr() string {
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Handler serves /healthz, /metrics and, with a webhook secret, /v1/tickets.
func (s *System) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	if s.Ratings != nil {
		// GET (and so HEAD) only shows the confirmation page; its form's
		// POST records. Other methods reach the handler for its 405.
		mux.Handle(intake.RatingPath, s.Ratings.Handler(intake.RecordRating(s.Triager.Rate), s.Logger))
	}
	mux.Handle("GET /metrics", s.metrics.handler(s.Logger))
	if s.Secrets.WebhookSecret != "" {
		mux.Handle("/v1/tickets", intake.NewWebhook(intake.WebhookOptions{
			Secret: []byte(s.Secrets.WebhookSecret), Intake: s.Triager.Intake, Enqueue: s.Pipeline.Classify,
			Clock: s.Clock, Logger: s.Logger, ReplyURLAllow: s.replyAllow,
		}))
	} else {
		mux.HandleFunc("/v1/tickets", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "webhook intake is off: set CASEBOT_WEBHOOK_SECRET", http.StatusNotFound)
		})
	}
	return mux
}

// healthz answers 200 {"status":"ok"}, or 503 with "unhealthy" when the
// store cannot be read, or "degraded" with a reason while the pipeline's
// store writes fail: acknowledged tickets then wait for a card or a draft,
// which an operator must hear about. It never shows a raw error.
func (s *System) healthz(w http.ResponseWriter, r *http.Request) {
	status := map[string]any{"status": "ok"}
	code := http.StatusOK
	if h := s.Pipeline.Health(); !h.OK() {
		status["status"], status["reason"] = "degraded", healthReason(h)
		code = http.StatusServiceUnavailable
	}
	if _, err := s.DB.Count(r.Context()); err != nil {
		status["status"], status["store"] = "unhealthy", "unreadable"
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(status)
}

// healthReason says which pipeline writes fail, since when and how many
// tickets wait on them.
func healthReason(h triage.PipelineHealth) string {
	var parts []string
	add := func(what string, since time.Time, n int) {
		if n == 0 {
			return
		}
		tickets := "tickets"
		if n == 1 {
			tickets = "ticket"
		}
		parts = append(parts, fmt.Sprintf("%s writes failing since %s, %d %s waiting",
			what, since.UTC().Format(time.RFC3339), n, tickets))
	}
	add("classification", h.ClassifyFailingSince, h.ClassifyWaiting)
	add("draft", h.DraftFailingSince, h.DraftWaiting)
	return strings.Join(parts, "; ")
}

// Run starts every part and returns when ctx ends (after the parts stop) or
// when a part fails.
func (s *System) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c, d, err := s.Pipeline.Resume(ctx, s.Clock.Now().Add(-resumeWindow)); err != nil {
		return fmt.Errorf("resume interrupted work: %w", err)
	} else if c+d > 0 {
		s.Logger.Info("resuming interrupted work", "classify", c, "draft", d)
	}
	if err := s.Sched.Start(ctx); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	defer s.Sched.Shutdown()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	start := func(name string, fn func(context.Context) error) {
		wg.Go(func() {
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", name, err)
				}
				mu.Unlock()
				cancel()
			}
		})
	}
	start("pipeline", s.Pipeline.Run)
	start("poster", s.Posts.Run)
	start("slack", s.App.Run)
	if s.Outbound != nil {
		start("outbound", s.Outbound.Run)
	}
	if s.email.mailbox != nil {
		start("imap", s.email.mailbox.Run)
	}
	if s.email.mailer != nil {
		start("smtp", s.email.mailer.Run)
	}
	if days := s.Config.Store.RetentionDays; days > 0 {
		start("retention", func(ctx context.Context) error {
			return retentionLoop(ctx, s.DB, days, s.Clock, s.Logger)
		})
	}
	if s.listener != nil {
		srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		start("http", func(ctx context.Context) error {
			served := make(chan error, 1)
			go func() { served <- srv.Serve(s.listener) }()
			select {
			case err := <-served:
				return err // Serve stops on its own only when it fails
			case <-ctx.Done():
			}
			// Requests in progress finish before Run returns and the store
			// closes; past the grace period they are cut.
			shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
			defer done()
			if err := srv.Shutdown(shutdown); err != nil {
				srv.Close()
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	wg.Wait()
	return firstErr
}

// Close releases what Open took, in reverse order.
func (s *System) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

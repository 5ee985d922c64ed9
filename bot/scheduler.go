package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"
	"github.com/slack-go/slack"

	"github.com/casebot/casebot/triage"
)

// Scheduler defaults.
const (
	// DefaultNoAnswerAfter is how long a follow-up waits for its rating
	// before the ticket is closed without one.
	DefaultNoAnswerAfter = 7 * 24 * time.Hour
	// DefaultFollowUpPoll is how often pending follow-ups are looked for.
	DefaultFollowUpPoll = time.Minute
	// DefaultAlertEvery is how often pattern alerts are looked for.
	DefaultAlertEvery = 15 * time.Minute
	// DefaultThreadInterval spaces the Monday thread's posts, Slack's
	// "about one message per second per channel".
	DefaultThreadInterval = time.Second
	// WeeklyCron is when the Monday pattern thread is posted, in the
	// scheduler's Location: Mondays at 09:00.
	WeeklyCron = "0 9 * * 1"
)

// SchedulerStore is what the scheduled jobs read and write: tickets, the
// outbox their posts go through, which pattern alerts were sent, and the
// pending follow-ups. The bbolt store implements it.
type SchedulerStore interface {
	triage.Tickets
	triage.Outbox
	triage.Alerts
	DueFollowUps
}

// DueFollowUps is the store's index of pending follow-ups, by due time
// rather than by receipt, so a ticket resolved long after it arrived is
// found as surely as any other.
type DueFollowUps interface {
	// DueFollowUps returns the resolved tickets whose follow-up is due
	// before before, and every followed-up ticket sent before before that
	// still waits for its rating.
	DueFollowUps(ctx context.Context, before time.Time) ([]triage.Ticket, error)
}

// SchedulerConfig is what the Scheduler needs.
type SchedulerConfig struct {
	// API posts the Monday thread and uploads its chart. Required.
	API *slack.Client
	// Store holds tickets, outbox and alerts. Required.
	Store SchedulerStore
	// Kicker is woken after a job enqueued posts; nil for none.
	Kicker Kicker
	// Clock drives the jobs and stamps what they record; nil means the wall
	// clock. Tests pass a clockwork.FakeClock, which is also a
	// triage.Clock and so can drive the Triager and store as well.
	Clock clockwork.Clock
	// Location is the time zone of the Monday thread: its 09:00, its weeks
	// and days. nil means UTC.
	Location *time.Location
	// OpsChannel receives pattern alerts and the Monday thread. Required.
	OpsChannel string

	// FollowUpEnabled sends the follow-ups; when false, resolved tickets
	// get none (the no-answer close still applies to those already sent).
	FollowUpEnabled bool
	// FollowUpTemplate is the operator's check-in text (config
	// follow_up.template); required when FollowUpEnabled.
	FollowUpTemplate string
	// Senders lists the sources whose follow-ups can be sent (the
	// Triager's Senders); nil means every source with a sender in code.
	Senders map[triage.Source]bool
	// RatingLinks returns the signed one-click link rating a ticket, for
	// email and webhook follow-ups (intake.RatingLinker.Link); nil sends
	// those follow-ups without links.
	RatingLinks func(ticketID string, rating int) string
	// NoAnswerAfter closes a followed-up ticket left unrated this long;
	// DefaultNoAnswerAfter when zero.
	NoAnswerAfter time.Duration
	// FollowUpPoll is how often tickets are scanned for follow-ups that are
	// due or newly scheduled; DefaultFollowUpPoll when zero.
	FollowUpPoll time.Duration
	// AlertEvery is how often pattern alerts are looked for;
	// DefaultAlertEvery when zero.
	AlertEvery time.Duration
	// ThreadInterval spaces the Monday thread's posts (real time, as
	// Slack's limits are); DefaultThreadInterval when zero.
	ThreadInterval time.Duration
	// Logger receives operational logs (never customer text); nil discards.
	Logger *slog.Logger
}

// SchedulerStats counts what a Scheduler did since it was made; the times
// are the scheduler clock's.
type SchedulerStats struct {
	FollowUpsSent int64
	// ClosedNoAnswer counts tickets closed for want of a rating.
	ClosedNoAnswer int64
	AlertsSent     int64
	WeeklyThreads  int64
	// LastFollowUpScan and LastAlertScan are when the latest scan for
	// follow-ups and for pattern alerts finished; zero before the first.
	LastFollowUpScan time.Time
	LastAlertScan    time.Time
}

// Scheduler runs the learning loop's timed jobs on gocron (SPEC section 6):
//
//   - Follow-ups. Due follow-ups live in the store (FollowUpDue set at
//     resolution, FollowUpSentAt once sent), so nothing is lost to a
//     restart: Start reads the store's index of pending follow-ups, sends
//     those already due at once and schedules a gocron one-time job at the
//     due time of each that falls due before the next scan. The App does not
//     tell the scheduler about new resolutions; a scan every FollowUpPoll
//     finds them and schedules their jobs, and sends any whose job was
//     missed. Sending marks the ticket followed_up and enqueues the
//     check-in in one store transaction, so a follow-up is sent once
//     whatever runs it, and survives Slack outages in the outbox. A
//     followed-up ticket without a rating after NoAnswerAfter is closed the
//     same way.
//   - Pattern alerts, looked for at Start and every AlertEvery, posted once
//     per alert key to OpsChannel through the outbox.
//   - The Monday pattern thread at 09:00 in Location, posted directly.
type Scheduler struct {
	cfg   SchedulerConfig
	store SchedulerStore
	clock clockwork.Clock
	loc   *time.Location
	log   *slog.Logger
	cron  gocron.Scheduler

	mu sync.Mutex
	// scheduled holds the one-time jobs waiting, by key ("follow_up:ID",
	// "close:ID"), with their due time.
	scheduled map[string]time.Time
	// ctx is the context of Start, which jobs run under.
	ctx context.Context
	// lastFollowUpScan and lastAlertScan are guarded by mu.
	lastFollowUpScan, lastAlertScan time.Time

	followUps, closed, alerts, weekly atomic.Int64
}

// NewScheduler checks cfg and builds a Scheduler; Start starts it.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	var missing []string
	if cfg.API == nil {
		missing = append(missing, "API")
	}
	if cfg.Store == nil {
		missing = append(missing, "Store")
	}
	if cfg.OpsChannel == "" {
		missing = append(missing, "OpsChannel")
	}
	if cfg.FollowUpEnabled && cfg.FollowUpTemplate == "" {
		missing = append(missing, "FollowUpTemplate")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("bot: scheduler config lacks %v", missing)
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NoAnswerAfter <= 0 {
		cfg.NoAnswerAfter = DefaultNoAnswerAfter
	}
	if cfg.FollowUpPoll <= 0 {
		cfg.FollowUpPoll = DefaultFollowUpPoll
	}
	if cfg.AlertEvery <= 0 {
		cfg.AlertEvery = DefaultAlertEvery
	}
	if cfg.ThreadInterval <= 0 {
		cfg.ThreadInterval = DefaultThreadInterval
	}
	cron, err := gocron.NewScheduler(gocron.WithClock(cfg.Clock), gocron.WithLocation(cfg.Location),
		gocron.WithLogger(gocronLogger{cfg.Logger}))
	if err != nil {
		return nil, fmt.Errorf("bot: scheduler: %w", err)
	}
	return &Scheduler{
		cfg: cfg, store: cfg.Store, clock: cfg.Clock, loc: cfg.Location,
		log: cfg.Logger.With("component", "scheduler"), cron: cron, scheduled: map[string]time.Time{},
	}, nil
}

// Start reschedules every pending follow-up (sending at once those that
// fell due while casebot was down), posts any pattern alert due, and starts
// the recurring jobs. Jobs run under ctx. It returns an error when the store
// cannot be read or a job cannot be registered; the scheduler then runs
// nothing and Shutdown need not be called.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	if err := s.scanFollowUps(ctx); err != nil {
		_ = s.cron.Shutdown()
		return fmt.Errorf("bot: scheduler start: %w", err)
	}
	if err := s.checkPatterns(ctx); err != nil {
		// Alerts are looked for again shortly; a store hiccup must not keep
		// the follow-ups from running.
		s.log.Error("pattern alerts at start", "err", err)
	}
	jobs := []struct {
		name string
		def  gocron.JobDefinition
		run  func(context.Context) error
	}{
		{"follow_up_scan", gocron.DurationJob(s.cfg.FollowUpPoll), s.scanFollowUps},
		{"pattern_alerts", gocron.DurationJob(s.cfg.AlertEvery), s.checkPatterns},
		{"weekly_thread", gocron.CronJob(WeeklyCron, false), s.postWeekly},
	}
	for _, j := range jobs {
		if _, err := s.cron.NewJob(j.def, gocron.NewTask(s.task(j.name, j.run)),
			gocron.WithName(j.name), gocron.WithContext(ctx),
			gocron.WithSingletonMode(gocron.LimitModeReschedule)); err != nil {
			_ = s.cron.Shutdown()
			return fmt.Errorf("bot: scheduler job %s: %w", j.name, err)
		}
	}
	s.cron.Start()
	return nil
}

// Shutdown stops the jobs, waiting for running ones to finish.
func (s *Scheduler) Shutdown() error {
	if err := s.cron.Shutdown(); err != nil {
		return fmt.Errorf("bot: scheduler shutdown: %w", err)
	}
	return nil
}

// Stats returns the scheduler's counters.
func (s *Scheduler) Stats() SchedulerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SchedulerStats{
		FollowUpsSent: s.followUps.Load(), ClosedNoAnswer: s.closed.Load(), AlertsSent: s.alerts.Load(),
		WeeklyThreads: s.weekly.Load(), LastFollowUpScan: s.lastFollowUpScan, LastAlertScan: s.lastAlertScan,
	}
}

// task wraps a job: its errors are logged, as gocron has nowhere to send
// them that a person reads.
func (s *Scheduler) task(name string, run func(context.Context) error) func(context.Context) {
	return func(ctx context.Context) {
		if err := run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("scheduled job failed", "job", name, "err", err)
		}
	}
}

func (s *Scheduler) kick() {
	if s.cfg.Kicker != nil {
		s.cfg.Kicker.Kick()
	}
}

// window reads the tickets received in [now − d, now], oldest first.
func (s *Scheduler) window(ctx context.Context, now time.Time, d time.Duration) ([]triage.Ticket, error) {
	var out []triage.Ticket
	// The window's end is exclusive; include tickets received this instant.
	err := s.store.Window(ctx, now.Add(-d), now.Add(time.Nanosecond), func(t triage.Ticket) error {
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tickets of the last %s: %w", d, err)
	}
	return out, nil
}

// schedule runs fn once at due under key, unless a job for key at due is
// already waiting. A due time already past runs fn now instead.
func (s *Scheduler) schedule(key string, due time.Time, fn func(context.Context) error) error {
	s.mu.Lock()
	if at, ok := s.scheduled[key]; ok && at.Equal(due) {
		s.mu.Unlock()
		return nil
	}
	s.scheduled[key] = due
	ctx := s.ctx
	s.mu.Unlock()
	done := func() {
		s.mu.Lock()
		if at, ok := s.scheduled[key]; ok && at.Equal(due) {
			delete(s.scheduled, key)
		}
		s.mu.Unlock()
	}
	task := s.task(key, func(ctx context.Context) error {
		defer done()
		return fn(ctx)
	})
	_, err := s.cron.NewJob(gocron.OneTimeJob(gocron.OneTimeJobStartDateTime(due)), gocron.NewTask(task),
		gocron.WithName(key), gocron.WithContext(ctx))
	if errors.Is(err, gocron.ErrOneTimeJobStartDateTimePast) {
		task(ctx)
		return nil
	}
	if err != nil {
		done()
		return fmt.Errorf("schedule %s at %s: %w", key, due.Format(time.RFC3339), err)
	}
	return nil
}

// gocronLogger passes gocron's logs to slog at debug level, errors as
// errors.
type gocronLogger struct{ log *slog.Logger }

func (l gocronLogger) Debug(msg string, args ...any) { l.log.Debug(msg, args...) }
func (l gocronLogger) Info(msg string, args ...any)  { l.log.Debug(msg, args...) }
func (l gocronLogger) Warn(msg string, args ...any)  { l.log.Warn(msg, args...) }
func (l gocronLogger) Error(msg string, args ...any) { l.log.Error(msg, args...) }

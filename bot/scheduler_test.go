package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// schedT0 is a Wednesday morning, far from the Monday thread.
var schedT0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

const (
	opsChannel   = "C0OPS"
	queueChannel = "C0QUEUE"
	followUpText = "We recently resolved your request. How did we do?"
)

// memAlerts is an in-memory triage.Alerts that counts its marks.
type memAlerts struct {
	mu    sync.Mutex
	sent  map[string]time.Time
	marks int
}

func (a *memAlerts) AlertSent(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.sent[key]
	return ok, nil
}

func (a *memAlerts) MarkAlertSent(ctx context.Context, key string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.marks++
	if _, ok := a.sent[key]; !ok {
		a.sent[key] = at
	}
	return nil
}

// memSOPs is an in-memory triage.SOPs with the bbolt store's versioning.
type memSOPs struct {
	clock triage.Clock
	mu    sync.Mutex
	ups   []triage.SOPUpdate
}

func (s *memSOPs) ProposeSOP(_ context.Context, u triage.SOPUpdate) (triage.SOPUpdate, error) {
	if err := u.Validate(); err != nil {
		return triage.SOPUpdate{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u.ID = fmt.Sprintf("SOP-%06d", len(s.ups)+1)
	if u.At.IsZero() {
		u.At = s.clock.Now()
	}
	u.State, u.Version = triage.SOPProposed, 0
	s.ups = append(s.ups, u)
	return u, nil
}

func (s *memSOPs) decide(id, by string, to triage.SOPState) (triage.SOPUpdate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, u := range s.ups {
		if u.ID != id {
			continue
		}
		switch u.State {
		case to:
			return u, nil
		case triage.SOPProposed:
		default:
			return triage.SOPUpdate{}, fmt.Errorf("SOP %s: %w", id, triage.ErrSOPDecided)
		}
		if to == triage.SOPAccepted {
			for _, o := range s.ups {
				if o.RootCause == u.RootCause && o.State == triage.SOPAccepted {
					u.Version = max(u.Version, o.Version)
				}
			}
			u.Version++
		}
		u.State, u.DecidedBy, u.DecidedAt = to, by, s.clock.Now()
		s.ups[i] = u
		return u, nil
	}
	return triage.SOPUpdate{}, fmt.Errorf("SOP %s: %w", id, triage.ErrNotFound)
}

func (s *memSOPs) AcceptSOP(_ context.Context, id, by string) (triage.SOPUpdate, error) {
	return s.decide(id, by, triage.SOPAccepted)
}

func (s *memSOPs) RejectSOP(_ context.Context, id, by string) (triage.SOPUpdate, error) {
	return s.decide(id, by, triage.SOPRejected)
}

func (s *memSOPs) SOPs(context.Context) ([]triage.SOPUpdate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]triage.SOPUpdate(nil), s.ups...), nil
}

// schedStore is the scheduler's store: tickets and outbox in memory, with
// alerts.
type schedStore struct {
	*triagetest.Tickets
	*memAlerts
}

func newSchedStore(clock triage.Clock) *schedStore {
	return &schedStore{Tickets: triagetest.NewTickets(clock), memAlerts: &memAlerts{sent: map[string]time.Time{}}}
}

// schedHarness drives Schedulers on a fake clock against one store and the
// Slack stand-in; the triager and store read the same clock.
type schedHarness struct {
	t     *testing.T
	clock *clockwork.FakeClock
	store *schedStore
	tr    *triage.Triager
	fake  *slackfake.Fake
	api   *slack.Client
	kicks atomic.Int64
}

func (h *schedHarness) Kick() { h.kicks.Add(1) }

func newSchedHarness(t *testing.T, start time.Time) *schedHarness {
	t.Helper()
	h := &schedHarness{t: t, clock: clockwork.NewFakeClockAt(start)}
	h.store = newSchedStore(h.clock)
	tr, err := triage.NewTriager(triage.DefaultConfig(), h.store, h.clock)
	if err != nil {
		t.Fatal(err)
	}
	h.tr = tr
	h.fake = slackfake.New(slackfake.Options{PostRate: -1})
	t.Cleanup(h.fake.Close)
	h.api = slack.New(h.fake.BotToken(), slack.OptionAPIURL(h.fake.APIURL()))
	return h
}

// config is the scheduler config the tests start from.
func (h *schedHarness) config() SchedulerConfig {
	return SchedulerConfig{
		API: h.api, Store: h.store, Kicker: h, Clock: h.clock, OpsChannel: opsChannel,
		FollowUpEnabled: true, FollowUpTemplate: followUpText, ThreadInterval: time.Millisecond,
	}
}

// start builds and starts a scheduler; it is shut down when the test ends
// unless stopped before.
func (h *schedHarness) start(cfg SchedulerConfig) *Scheduler {
	h.t.Helper()
	s, err := NewScheduler(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	if err := s.Start(ctx); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = s.Shutdown() })
	return s
}

// waitFor polls cond; the deadline only stops a hung test.
func (h *schedHarness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// advance moves the fake clock and waits for s's follow-up scan at the new
// time, which every advance of a minute or more sets off.
func (h *schedHarness) advance(s *Scheduler, d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	now := h.clock.Now()
	h.waitFor("follow-up scan at "+now.Format(time.RFC3339), func() bool {
		return !s.Stats().LastFollowUpScan.Before(now)
	})
}

// ticket stores a ticket from src that an agent answered, routed and
// posted to the queue.
func (h *schedHarness) ticket(src triage.Source, replyTo string, customer triage.Customer) string {
	h.t.Helper()
	ctx := context.Background()
	t, err := h.store.Create(ctx, &triage.Ticket{Source: src, ExternalID: fmt.Sprintf("ext-%d", time.Now().UnixNano()),
		Body: "Where is my parcel?", ReplyTo: replyTo}, customer)
	if err != nil {
		h.t.Fatal(err)
	}
	_, err = h.store.Update(ctx, t.ID, func(x *triage.Ticket) (triage.AuditEvent, error) {
		x.State, x.Assignee, x.Reviewed = triage.StateReplied, "U0AGENT01", true
		x.Route = triage.Route{Channel: queueChannel}
		x.Slack = triage.SlackRef{Channel: queueChannel, TS: "1772618400.000100"}
		x.Classification.Type = triage.TypeDelivery
		return triage.AuditEvent{Actor: "test", Action: "fixture"}, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return t.ID
}

// resolved stores a Slack ticket and resolves it now, due for its
// follow-up in 48 h.
func (h *schedHarness) resolved(src triage.Source, replyTo string) string {
	h.t.Helper()
	id := h.ticket(src, replyTo, triage.Customer{Email: "jane@example.com", SlackUserID: "U0CUST001"})
	if _, err := h.tr.Resolve(context.Background(), id, "U0AGENT01",
		triage.Resolution{RootCause: "carrier_delay", Method: "information"}, 48*time.Hour); err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *schedHarness) get(id string) triage.Ticket {
	h.t.Helper()
	t, err := h.store.Get(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return t
}

// posts returns the pending posts of a ticket with the given action.
func (h *schedHarness) posts(id, action string) []triage.Post {
	var out []triage.Post
	for _, p := range h.store.Posts() {
		if p.TicketID == id && p.Action == action {
			out = append(out, p)
		}
	}
	return out
}

// auditCount counts a ticket's audit events with the given action.
func (h *schedHarness) auditCount(id, action string) int {
	n := 0
	for _, ev := range h.store.Audit(id) {
		if ev.Action == action {
			n++
		}
	}
	return n
}

// customerPosts are the follow-ups to the customer queued for a ticket.
func (h *schedHarness) customerPosts(id string) []triage.Post {
	var out []triage.Post
	for _, p := range h.posts(id, ActionFollowUp) {
		if p.Kind == triage.PostCustomerReply {
			out = append(out, p)
		}
	}
	return out
}

func TestNewSchedulerRejectsIncompleteConfig(t *testing.T) {
	h := newSchedHarness(t, schedT0)
	cases := []struct {
		name string
		edit func(*SchedulerConfig)
		want string
	}{
		{"no api", func(c *SchedulerConfig) { c.API = nil }, "API"},
		{"no store", func(c *SchedulerConfig) { c.Store = nil }, "Store"},
		{"no ops channel", func(c *SchedulerConfig) { c.OpsChannel = "" }, "OpsChannel"},
		{"no template", func(c *SchedulerConfig) { c.FollowUpTemplate = "" }, "FollowUpTemplate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := h.config()
			tc.edit(&cfg)
			_, err := NewScheduler(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
	cfg := h.config()
	cfg.FollowUpEnabled, cfg.FollowUpTemplate = false, ""
	if _, err := NewScheduler(cfg); err != nil {
		t.Errorf("follow-ups off need no template: %v", err)
	}
}

func TestFollowUpAt48HoursNotBefore(t *testing.T) {
	h := newSchedHarness(t, schedT0)
	id := h.resolved(triage.SourceSlack, "C0INTAKE/1772618000.000100")
	s := h.start(h.config())
	if n := len(h.customerPosts(id)); n != 0 {
		t.Fatalf("%d follow-ups at resolution", n)
	}
	h.advance(s, 47*time.Hour+59*time.Minute)
	if n := len(h.customerPosts(id)); n != 0 || h.get(id).State != triage.StateResolved {
		t.Fatalf("47h59m after resolution: %d follow-ups, state %s", n, h.get(id).State)
	}
	kicks := h.kicks.Load()
	h.advance(s, 2*time.Minute)
	posts := h.customerPosts(id)
	if len(posts) != 1 {
		t.Fatalf("48h01m after resolution: %d follow-ups, want 1", len(posts))
	}
	p := posts[0]
	if p.Channel != "C0INTAKE" || p.ThreadTS != "1772618000.000100" || p.Text != followUpText {
		t.Errorf("follow-up post %+v", p)
	}
	tk := h.get(id)
	due := schedT0.Add(48 * time.Hour)
	if tk.State != triage.StateFollowedUp || tk.FollowUpSentAt.Before(due) || tk.FollowUpSentAt.After(h.clock.Now()) {
		t.Errorf("ticket state %s, sent at %s, want followed_up between %s and %s", tk.State, tk.FollowUpSentAt, due, h.clock.Now())
	}
	if n := h.auditCount(id, AuditFollowedUp); n != 1 {
		t.Errorf("%d followed_up events, want 1", n)
	}
	thread := h.posts(id, AuditFollowedUp)
	if len(thread) != 2 || thread[0].Kind != triage.PostCardUpdate || thread[1].Kind != triage.PostThread ||
		thread[1].Channel != queueChannel {
		t.Errorf("card posts %+v", thread)
	}
	if h.kicks.Load() == kicks {
		t.Error("the poster was not kicked")
	}
	// Later scans and the one-time job find it sent.
	h.advance(s, time.Hour)
	if n := len(h.customerPosts(id)); n != 1 || s.Stats().FollowUpsSent != 1 {
		t.Errorf("an hour later: %d follow-ups, %d sent", n, s.Stats().FollowUpsSent)
	}
}

func TestFollowUpRestartInBetweenSendsOnce(t *testing.T) {
	h := newSchedHarness(t, schedT0)
	id := h.resolved(triage.SourceSlack, "C0INTAKE/1772618000.000100")
	first := h.start(h.config())
	h.advance(first, 24*time.Hour)
	if err := first.Shutdown(); err != nil {
		t.Fatal(err)
	}
	second := h.start(h.config())
	h.advance(second, 23*time.Hour+59*time.Minute)
	if n := len(h.customerPosts(id)); n != 0 {
		t.Fatalf("%d follow-ups before due", n)
	}
	h.advance(second, 2*time.Minute)
	if n := len(h.customerPosts(id)); n != 1 {
		t.Fatalf("%d follow-ups after the restart, want 1", n)
	}
	if n := h.auditCount(id, AuditFollowedUp); n != 1 {
		t.Errorf("%d followed_up events, want 1", n)
	}
	if first.Stats().FollowUpsSent != 0 || second.Stats().FollowUpsSent != 1 {
		t.Errorf("sent by first %d, second %d", first.Stats().FollowUpsSent, second.Stats().FollowUpsSent)
	}
}

func TestFollowUpDueDuringDowntimeGoesOutAtStart(t *testing.T) {
	h := newSchedHarness(t, schedT0)
	id := h.resolved(triage.SourceSlack, "C0INTAKE/1772618000.000100")
	first := h.start(h.config())
	if err := first.Shutdown(); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(72 * time.Hour)
	second := h.start(h.config())
	// Start itself sends what fell due while casebot was down.
	if n := len(h.customerPosts(id)); n != 1 {
		t.Fatalf("%d follow-ups right after start, want 1", n)
	}
	if got := h.get(id).FollowUpSentAt; !got.Equal(schedT0.Add(72 * time.Hour)) {
		t.Errorf("sent at %s, want the start", got)
	}
	h.advance(second, time.Hour)
	if n := len(h.customerPosts(id)); n != 1 {
		t.Errorf("%d follow-ups an hour later, want 1", n)
	}
}

func TestFollowUpUnansweredClosesAfterSevenDays(t *testing.T) {
	h := newSchedHarness(t, schedT0)
	id := h.resolved(triage.SourceSlack, "C0INTAKE/1772618000.000100")
	rated := h.resolved(triage.SourceSlack, "C0INTAKE/1772618001.000100")
	s := h.start(h.config())
	h.advance(s, 48*time.Hour)
	if st := h.get(id).State; st != triage.StateFollowedUp {
		t.Fatalf("state %s after 48h", st)
	}
	if _, err := h.tr.Rate(context.Background(), rated, 4); err != nil {
		t.Fatal(err)
	}
	h.advance(s, 7*24*time.Hour-time.Minute)
	if st := h.get(id).State; st != triage.StateFollowedUp {
		t.Fatalf("state %s a minute before 7 days", st)
	}
	// A restart does not lose the close either.
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	s = h.start(h.config())
	h.advance(s, 2*time.Minute)
	tk := h.get(id)
	if tk.State != triage.StateClosed || tk.Rating != 0 {
		t.Errorf("state %s rating %d, want closed unrated", tk.State, tk.Rating)
	}
	if n := h.auditCount(id, AuditClosedNoAnswer); n != 1 {
		t.Errorf("%d closed_no_answer events, want 1", n)
	}
	if p := h.posts(id, AuditClosedNoAnswer); len(p) != 2 || !strings.Contains(p[1].Detail, "7 days") {
		t.Errorf("close posts %+v", p)
	}
	if tk := h.get(rated); tk.State != triage.StateClosed || h.auditCount(rated, AuditClosedNoAnswer) != 0 {
		t.Errorf("a rated ticket was closed for want of a rating: %s", tk.State)
	}
}

func TestFollowUpBySource(t *testing.T) {
	links := func(id string, n int) string {
		return fmt.Sprintf("https://support.example.com/v1/rate?t=%s&r=%d", id, n)
	}
	cases := []struct {
		name     string
		src      triage.Source
		replyTo  string
		links    func(string, int) string
		disabled bool
		// channel is where the check-in goes; empty for none.
		channel, thread string
		text            []string
		note            string
	}{
		{name: "slack", src: triage.SourceSlack, replyTo: "C0INTAKE/1772618000.000100", channel: "C0INTAKE",
			thread: "1772618000.000100", text: []string{followUpText}, note: "Slack thread"},
		{name: "email with links", src: triage.SourceEmail, replyTo: "<m1@example.com>", links: links,
			channel: "out:email", thread: "<m1@example.com>", note: "rating links sent by email",
			text: []string{followUpText, "1 (poor): https://support.example.com/v1/rate?t=T1&r=1",
				"5 (excellent): https://support.example.com/v1/rate?t=T1&r=5"}},
		{name: "webhook with links", src: triage.SourceWebhook, replyTo: "https://shop.example.com/hook", links: links,
			channel: "out:webhook", thread: "https://shop.example.com/hook", note: "through the webhook",
			text: []string{"3: https://support.example.com/v1/rate?t=T1&r=3"}},
		{name: "email without links", src: triage.SourceEmail, replyTo: "<m1@example.com>", channel: "out:email",
			thread: "<m1@example.com>", text: []string{followUpText}, note: "no rating links"},
		{name: "manual", src: triage.SourceManual, note: "check in with them yourself"},
		{name: "slack without a thread", src: triage.SourceSlack, replyTo: "C0INTAKE", note: "check in with them yourself"},
		{name: "disabled", src: triage.SourceSlack, replyTo: "C0INTAKE/1772618000.000100", disabled: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newSchedHarness(t, schedT0)
			id := h.resolved(tc.src, tc.replyTo)
			cfg := h.config()
			cfg.RatingLinks, cfg.FollowUpEnabled = tc.links, !tc.disabled
			h.clock.Advance(49 * time.Hour)
			h.start(cfg)
			posts := h.customerPosts(id)
			if tc.disabled {
				if len(posts) != 0 || h.get(id).State != triage.StateResolved {
					t.Errorf("follow-ups off: %d posts, state %s", len(posts), h.get(id).State)
				}
				return
			}
			if h.get(id).State != triage.StateFollowedUp {
				t.Errorf("state %s", h.get(id).State)
			}
			switch {
			case tc.channel == "" && len(posts) != 0:
				t.Errorf("check-in with no way back: %+v", posts)
			case tc.channel != "" && len(posts) != 1:
				t.Fatalf("%d check-ins", len(posts))
			case tc.channel != "":
				p := posts[0]
				if p.Channel != tc.channel || p.ThreadTS != tc.thread {
					t.Errorf("check-in to %s/%s, want %s/%s", p.Channel, p.ThreadTS, tc.channel, tc.thread)
				}
				for _, want := range tc.text {
					if !strings.Contains(p.Text, want) {
						t.Errorf("check-in lacks %q:\n%s", want, p.Text)
					}
				}
			}
			notes := h.posts(id, AuditFollowedUp)
			if len(notes) != 2 || !strings.Contains(notes[1].Detail, tc.note) {
				t.Errorf("thread note %+v, want one saying %q", notes, tc.note)
			}
		})
	}
}

func TestFollowUpNotSentAfterReopen(t *testing.T) {
	h := newSchedHarness(t, schedT0)
	id := h.resolved(triage.SourceSlack, "C0INTAKE/1772618000.000100")
	s := h.start(h.config())
	h.advance(s, time.Hour)
	if _, err := h.tr.Reopen(context.Background(), id, "U0AGENT01", "customer called"); err != nil {
		t.Fatal(err)
	}
	h.advance(s, 48*time.Hour)
	if n := len(h.customerPosts(id)); n != 0 {
		t.Errorf("%d follow-ups for a reopened ticket", n)
	}
}

// alertTickets stores n tickets with a root cause guess, received a day
// apart ending now.
func (h *schedHarness) alertTickets(rootCause string, n int) []string {
	h.t.Helper()
	var ids []string
	for i := range n {
		t, err := h.store.Create(context.Background(), &triage.Ticket{Source: triage.SourceWebhook,
			ExternalID: fmt.Sprintf("%s-%d-%d", rootCause, i, time.Now().UnixNano()), Body: "late",
			ReceivedAt: h.clock.Now().Add(-time.Duration(n-1-i) * 24 * time.Hour)}, triage.Customer{Handle: "jane"})
		if err != nil {
			h.t.Fatal(err)
		}
		h.change(t.ID, func(x *triage.Ticket) {
			x.State, x.Classification.RootCauseGuess = triage.StateAwaitingReview, rootCause
			x.Route.Channel = queueChannel
			if i == 0 {
				x.Slack = triage.SlackRef{Channel: "C0URGENT", TS: "1772618400.000100"}
			}
		})
		ids = append(ids, t.ID)
	}
	return ids
}

func (h *schedHarness) change(id string, fn func(*triage.Ticket)) {
	h.t.Helper()
	if _, err := h.store.Update(context.Background(), id, func(x *triage.Ticket) (triage.AuditEvent, error) {
		fn(x)
		return triage.AuditEvent{Actor: "test", Action: "fixture"}, nil
	}); err != nil {
		h.t.Fatal(err)
	}
}

// alertPosts are the pattern alerts queued for the ops channel.
func (h *schedHarness) alertPosts() []triage.Post {
	var out []triage.Post
	for _, p := range h.store.Posts() {
		if p.Action == ActionPatternAlert {
			out = append(out, p)
		}
	}
	return out
}

// advanceAlerts moves the clock and waits for the alert scan at the new
// time.
//
// gocron skips a run while it still counts the previous one as running
// (singleton mode), which it may for a moment after the scan's results are
// visible; if no scan comes, time moves on by another d, as it would.
func (h *schedHarness) advanceAlerts(s *Scheduler, d time.Duration) {
	h.t.Helper()
	for range 20 {
		h.clock.Advance(d)
		now := h.clock.Now()
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if !s.Stats().LastAlertScan.Before(now) {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	h.t.Fatalf("no alert scan after 20 advances of %s", d)
}

func TestPatternAlertOncePerKey(t *testing.T) {
	h := newSchedHarness(t, schedT0)
	two := h.alertTickets("carrier_delay", 2)
	h.alertTickets("website_bug", 2)
	s := h.start(h.config())
	if n := len(h.alertPosts()); n != 0 {
		t.Fatalf("%d alerts for two tickets", n)
	}
	// The third ticket makes a pattern; the next scan alerts.
	third := h.alertTickets("carrier_delay", 1)
	h.advanceAlerts(s, 15*time.Minute)
	alerts := h.alertPosts()
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(alerts))
	}
	var d alertDetail
	if err := json.Unmarshal([]byte(alerts[0].Detail), &d); err != nil {
		t.Fatal(err)
	}
	first := h.get(two[0])
	wantKey := triage.AlertKey("carrier_delay", first.ReceivedAt)
	if d.Key != wantKey || d.RootCause != "carrier_delay" || len(d.Tickets) != 3 || alerts[0].Channel != opsChannel ||
		alerts[0].TicketID != third[0] || d.Tickets[0].Channel != "C0URGENT" || d.Tickets[1].Channel != queueChannel {
		t.Errorf("alert %+v detail %+v", alerts[0], d)
	}
	if sent, _ := h.store.AlertSent(context.Background(), wantKey); !sent {
		t.Error("alert not marked sent")
	}
	// A fourth ticket within the run, later scans and a restart: no more.
	h.alertTickets("carrier_delay", 1)
	h.advanceAlerts(s, 15*time.Minute)
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	s = h.start(h.config())
	h.advanceAlerts(s, 15*time.Minute)
	if n := len(h.alertPosts()); n != 1 || s.Stats().AlertsSent != 0 {
		t.Errorf("%d alerts after a fourth ticket and a restart, want 1", n)
	}
}

func TestPatternAlertEnqueuedButNotMarked(t *testing.T) {
	h := newSchedHarness(t, schedT0)
	ids := h.alertTickets("double_charge", 3)
	key := triage.AlertKey("double_charge", h.get(ids[0]).ReceivedAt)
	// A run that stopped between the enqueue and the mark left this.
	detail, _ := json.Marshal(alertDetail{Key: key, RootCause: "double_charge"})
	if err := h.store.Enqueue(context.Background(), triage.Post{Kind: triage.PostCustomerReply, TicketID: ids[2],
		Channel: opsChannel, Action: ActionPatternAlert, Actor: triage.ActorSystem, Detail: string(detail)}); err != nil {
		t.Fatal(err)
	}
	s := h.start(h.config())
	if n := len(h.alertPosts()); n != 1 || s.Stats().AlertsSent != 0 {
		t.Errorf("%d alert posts, %d sent by the new run; want the pending one only", n, s.Stats().AlertsSent)
	}
	if sent, _ := h.store.AlertSent(context.Background(), key); !sent {
		t.Error("pending alert not marked sent")
	}
}

// failingAlerts is a store whose alert record cannot be read.
type failingAlerts struct{ *schedStore }

func (failingAlerts) AlertSent(context.Context, string) (bool, error) {
	return false, errors.New("alerts bucket unreadable")
}

func TestPatternAlertSkippedWhenSentUnknown(t *testing.T) {
	h := newSchedHarness(t, schedT0)
	h.alertTickets("stock_out", 3)
	cfg := h.config()
	cfg.Store = failingAlerts{h.store}
	s := h.start(cfg)
	h.advanceAlerts(s, 15*time.Minute)
	if n := len(h.alertPosts()); n != 0 {
		t.Errorf("%d alerts posted while the alert record was unreadable", n)
	}
}

// TestPatternAlertRestartInBetween stops a run between the enqueue of an
// alert and its mark: whether the poster delivered the alert before the
// stop, or Slack took it just as the poster stopped, the next run posts
// nothing more.
func TestPatternAlertRestartInBetween(t *testing.T) {
	tests := []struct {
		name string
		// inSlack: the poster had posted the alert but neither marked it
		// sent nor done; else it had finished with it.
		inSlack bool
	}{
		{name: "delivered before the stop"},
		{name: "in Slack, not done", inSlack: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newSchedHarness(t, schedT0)
			ids := h.alertTickets("double_charge", 3)
			key := triage.AlertKey("double_charge", h.get(ids[0]).ReceivedAt)
			detail, _ := json.Marshal(alertDetail{Key: key, RootCause: "double_charge"})
			if err := h.store.Enqueue(context.Background(), triage.Post{Kind: triage.PostCustomerReply, TicketID: ids[2],
				Channel: opsChannel, Action: ActionPatternAlert, Actor: triage.ActorSystem, Detail: string(detail)}); err != nil {
				t.Fatal(err)
			}
			log, _ := captureLog()
			opts := fastPosterOpts(log)
			opts.Alerts = h.store
			drain := func() *Poster {
				p := NewPoster(h.api, h.store, h.store, h.store, opts)
				stop := startPoster(t, p)
				h.waitFor("the alert delivered", func() bool { return len(h.alertPosts()) == 0 })
				stop()
				return p
			}
			if tc.inSlack {
				_, _, err := h.api.PostMessage(opsChannel, slack.MsgOptionText("alert", false),
					slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataEventType,
						EventPayload: map[string]any{"post_id": h.alertPosts()[0].ID, "ticket_id": ids[2]}}))
				if err != nil {
					t.Fatal(err)
				}
			} else {
				drain()
				if sent, _ := h.store.AlertSent(context.Background(), key); !sent {
					t.Fatal("the poster did not mark the alert sent")
				}
			}

			s := h.start(h.config()) // Start looks for alerts at once
			if tc.inSlack {
				if p := drain(); p.Stats().Recovered != 1 || p.Stats().Posted != 0 {
					t.Errorf("poster stats %+v, want the alert found in Slack", p.Stats())
				}
			}
			if n := len(h.alertPosts()); n != 0 || s.Stats().AlertsSent != 0 {
				t.Errorf("%d alert posts pending, %d raised after the restart; want none", n, s.Stats().AlertsSent)
			}
			if n := len(h.fake.Messages(opsChannel)); n != 1 {
				t.Errorf("%d messages in the ops channel, want the alert once", n)
			}
			if sent, _ := h.store.AlertSent(context.Background(), key); !sent {
				t.Error("alert not marked sent")
			}
		})
	}
}

// TestFollowUpOfTicketResolvedLongAfterArrival resolves tickets that arrived
// months before, restarts the scheduler, and finds their follow-up and
// no-answer close done on time: pending work is found by when it falls due,
// not by when the ticket arrived.
func TestFollowUpOfTicketResolvedLongAfterArrival(t *testing.T) {
	for _, age := range []time.Duration{60 * 24 * time.Hour, 3 * 365 * 24 * time.Hour} {
		t.Run(age.String(), func(t *testing.T) {
			h := newSchedHarness(t, schedT0)
			ctx := context.Background()
			tk, err := h.store.Create(ctx, &triage.Ticket{Source: triage.SourceSlack, ExternalID: "old",
				Body: "Where is my parcel?", ReplyTo: "C0INTAKE/1772618000.000100", ReceivedAt: schedT0.Add(-age)},
				triage.Customer{SlackUserID: "U0CUST001"})
			if err != nil {
				t.Fatal(err)
			}
			id := tk.ID
			if _, err := h.store.Update(ctx, id, func(x *triage.Ticket) (triage.AuditEvent, error) {
				x.State, x.Reviewed = triage.StateReplied, true
				x.Route = triage.Route{Channel: queueChannel}
				x.Slack = triage.SlackRef{Channel: queueChannel, TS: "1772618400.000100"}
				return triage.AuditEvent{Actor: "test", Action: "fixture"}, nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := h.tr.Resolve(ctx, id, "U0AGENT01", triage.Resolution{Method: "information"}, 48*time.Hour); err != nil {
				t.Fatal(err)
			}
			first := h.start(h.config())
			h.advance(first, time.Hour)
			if err := first.Shutdown(); err != nil {
				t.Fatal(err)
			}
			s := h.start(h.config())
			h.advance(s, 47*time.Hour)
			if n := len(h.customerPosts(id)); n != 1 || h.get(id).State != triage.StateFollowedUp {
				t.Fatalf("48h after resolution: %d follow-ups, state %s; want 1, followed_up", n, h.get(id).State)
			}
			if err := s.Shutdown(); err != nil {
				t.Fatal(err)
			}
			s = h.start(h.config())
			h.advance(s, DefaultNoAnswerAfter)
			if st := h.get(id).State; st != triage.StateClosed {
				t.Errorf("7 days after the follow-up and a restart: state %s, want closed", st)
			}
		})
	}
}

package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// appT0 is when every app test starts, on both the fake's and the
// triager's clock.
var appT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const (
	intakeChannel = "C0INTAKE"
	otherChannel  = "C0GENERAL"
	customerUser  = "U0CUST001"
	otherUser     = "U0CUST002"
	agentUser     = "U0AGENT01"
	approverUser  = "U0LEAD001" // an approver in triage.DefaultConfig
	legalOwner    = "U0LEGAL01"
)

// appHarness is an App running against the Slack stand-in and an in-memory
// store.
type appHarness struct {
	t      testing.TB
	fake   *slackfake.Fake
	api    *slack.Client
	store  *triagetest.Tickets
	clock  *triagetest.Clock
	tr     *triage.Triager
	app    *App
	kicks  atomic.Int64
	cancel context.CancelFunc
	done   chan error
}

func (h *appHarness) Kick() { h.kicks.Add(1) }

// storeCustomers gives the in-memory store the Customer lookup the bbolt
// store has.
type storeCustomers struct{ s *triagetest.Tickets }

func (c storeCustomers) Customer(_ context.Context, id string) (triage.Customer, error) {
	for _, cu := range c.s.Customers() {
		if cu.ID == id {
			return cu, nil
		}
	}
	return triage.Customer{}, fmt.Errorf("customer %s: %w", id, triage.ErrNotFound)
}

type harnessOpts struct {
	model triage.Classifier
	// clock is the fake's clock; default one stopped at appT0.
	clock *slackfake.ManualClock
	// wrap wraps the store the triager uses.
	wrap func(*triagetest.Tickets) triage.Tickets
	// classify replaces the pipeline's Classify as the app's.
	classify func(ticketID string)
	// ignoreBots is AppConfig.IgnoreBots.
	ignoreBots []string
}

func newAppHarness(t testing.TB, o harnessOpts) *appHarness {
	t.Helper()
	h := &appHarness{t: t, done: make(chan error, 1)}
	if o.clock == nil {
		o.clock = slackfake.NewManualClock(appT0)
	}
	h.fake = slackfake.New(slackfake.Options{Clock: o.clock, PostRate: -1})
	t.Cleanup(h.fake.Close)
	h.api = slack.New(h.fake.BotToken(), slack.OptionAppLevelToken(h.fake.AppToken()), slack.OptionAPIURL(h.fake.APIURL()))
	h.clock = triagetest.NewClock(appT0)
	h.store = triagetest.NewTickets(h.clock)
	var store triage.Tickets = h.store
	if o.wrap != nil {
		store = o.wrap(h.store)
	}
	tr, err := triage.NewTriager(triage.DefaultConfig(), store, h.clock)
	if err != nil {
		t.Fatal(err)
	}
	tr.Model = o.model
	tr.Drafter = triage.TemplateDrafter{}
	h.tr = tr
	// Tickets are classified by a pipeline, as in casebot run. The tests
	// write drafts when they want one (drafted), so the draft the pipeline
	// would queue after each classification or reopen is switched off.
	pipe := triage.NewPipeline(tr, triage.PipelineOptions{Classifiers: 2, Kick: h.Kick})
	tr.Classified, tr.Reopened = nil, nil
	classify := pipe.Classify
	if o.classify != nil {
		classify = o.classify
	}
	h.app, err = New(AppConfig{
		API: h.api, Triager: tr, Classify: classify, Customers: storeCustomers{h.store}, Kicker: h,
		IntakeChannels: []string{intakeChannel}, FollowUpAfter: 48 * time.Hour, Workers: 4, IgnoreBots: o.ignoreBots,
	})
	if err != nil {
		t.Fatal(err)
	}
	pipeCtx, stopPipe := context.WithCancel(context.Background())
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- pipe.Run(pipeCtx) }()
	// Registered before the app's, so it runs after the app has stopped.
	t.Cleanup(func() {
		stopPipe()
		if err := <-pipeDone; err != nil {
			t.Errorf("pipeline: %v", err)
		}
	})
	h.start()
	return h
}

// start runs the app until the test ends.
func (h *appHarness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.app.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// stop cancels the app and waits for Run to return; later calls do nothing.
func (h *appHarness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Error("Run did not return after cancel")
	}
}

// waitFor polls cond until it holds; the deadline only stops a hung test.
func (h *appHarness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ack waits for the ack of an envelope and checks it came in time.
func (h *appHarness) ack(env slackfake.Envelope) slackfake.Ack {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := h.fake.WaitAck(ctx, env.ID)
	if err != nil {
		h.t.Fatalf("no ack of %s envelope %s: %v", env.Type, env.ID, err)
	}
	if a.Late || a.Unknown {
		h.t.Errorf("ack of %s = %+v", env.ID, a)
	}
	return a
}

// ticket returns the stored ticket with the given external ID.
func (h *appHarness) ticketByRef(ref string) (triage.Ticket, bool) {
	for _, t := range h.store.All() {
		if t.ExternalID == ref {
			return t, true
		}
	}
	return triage.Ticket{}, false
}

func (h *appHarness) get(id string) triage.Ticket {
	h.t.Helper()
	t, err := h.store.Get(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return t
}

// say posts a person's message and returns its ts.
func (h *appHarness) say(m slackfake.UserMessage) (slackfake.Envelope, string) {
	h.t.Helper()
	env, err := h.fake.SendMessage(m)
	if err != nil {
		h.t.Fatal(err)
	}
	var p struct {
		Event struct {
			TS string `json:"ts"`
		} `json:"event"`
	}
	if err := json.Unmarshal(env.Payload, &p); err != nil || p.Event.TS == "" {
		h.t.Fatalf("message envelope: %v %s", err, env.Payload)
	}
	return env, p.Event.TS
}

// intake posts a customer message in the intake channel and waits for its
// ticket to be triaged.
func (h *appHarness) intake(user, text string) triage.Ticket {
	h.t.Helper()
	_, ts := h.say(slackfake.UserMessage{Channel: intakeChannel, User: user, Text: text})
	ref := intakeChannel + "/" + ts
	var t triage.Ticket
	h.waitFor("ticket "+ref+" triaged", func() bool {
		var ok bool
		t, ok = h.ticketByRef(ref)
		return ok && t.State != triage.StateReceived
	})
	return t
}

// drafted writes the ticket's draft, as the drafting queue does, and marks
// it the model's: the template drafter stands in for the model, whose
// drafts count towards the draft acceptance rate.
func (h *appHarness) drafted(id string) triage.Ticket {
	h.t.Helper()
	t, err := h.tr.WriteDraft(context.Background(), id, triage.Customer{}, "")
	if err != nil {
		h.t.Fatal(err)
	}
	if t.Draft == "" {
		h.t.Fatal("the template drafter wrote no draft")
	}
	h.change(id, func(t *triage.Ticket) { t.DraftBy = triage.DraftByModel })
	t.DraftBy = triage.DraftByModel
	return t
}

// delivered records that the approved reply of ticket id left now, as the
// poster reports once Slack has it.
func (h *appHarness) delivered(id string) {
	h.t.Helper()
	if _, err := h.tr.ReplyDelivered(context.Background(), id, h.clock.Now()); err != nil {
		h.t.Fatal(err)
	}
}

// change edits a stored ticket directly, as a test fixture.
func (h *appHarness) change(id string, fn func(*triage.Ticket)) {
	h.t.Helper()
	_, err := h.store.Update(context.Background(), id, func(t *triage.Ticket) (triage.AuditEvent, error) {
		fn(t)
		return triage.AuditEvent{Actor: "test", Action: "fixture"}, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// postCard posts the ticket's card as it is now, as the poster does, and
// returns the channel and ts to click on.
func (h *appHarness) postCard(id string) (string, string) {
	h.t.Helper()
	t := h.get(id)
	msg := CardMessage(t, CardOptions{})
	channel, ts, err := h.api.PostMessage(t.Route.Channel, slack.MsgOptionText(msg.Text, false), slack.MsgOptionBlocks(msg.Blocks...))
	if err != nil {
		h.t.Fatalf("post card: %v", err)
	}
	return channel, ts
}

// click presses a card button and waits for the ack.
func (h *appHarness) click(id, action, user string) {
	h.t.Helper()
	channel, ts := h.postCard(id)
	env, err := h.fake.Click(slackfake.Click{Channel: channel, TS: ts, ActionID: action, User: user})
	if err != nil {
		h.t.Fatal(err)
	}
	if a := h.ack(env); len(a.Payload) != 0 {
		h.t.Errorf("button ack carries %s", a.Payload)
	}
}

// modal waits for the n-th modal (1-based) to open.
func (h *appHarness) modal(n int) slackfake.View {
	h.t.Helper()
	var v slackfake.View
	h.waitFor(fmt.Sprintf("modal %d", n), func() bool {
		var modals []slackfake.View
		for _, v := range h.fake.Views() {
			if v.Type == "modal" {
				modals = append(modals, v)
			}
		}
		if len(modals) < n {
			return false
		}
		v = modals[n-1]
		return true
	})
	return v
}

// submit submits a modal and returns the ack's payload.
func (h *appHarness) submit(s slackfake.Submission) json.RawMessage {
	h.t.Helper()
	env, err := h.fake.SubmitView(s)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.ack(env).Payload
}

// ephemeralsTo returns the ephemeral messages one person saw.
func (h *appHarness) ephemeralsTo(user string) []slackfake.Ephemeral {
	var out []slackfake.Ephemeral
	for _, e := range h.fake.Ephemerals() {
		if e.User == user {
			out = append(out, e)
		}
	}
	return out
}

func actions(h *appHarness, id string) []string {
	var out []string
	for _, ev := range h.store.Audit(id) {
		out = append(out, ev.Action)
	}
	return out
}

func countOf(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	api := slack.New("xoxb-test")
	tr := &triage.Triager{}
	cases := []struct {
		name string
		cfg  AppConfig
		want string
	}{
		{"nothing", AppConfig{}, "API, Triager, Classify, Customers"},
		{"no classify", AppConfig{API: api, Triager: tr, Customers: storeCustomers{}}, "Classify"},
		{"no customers", AppConfig{API: api, Triager: tr, Classify: func(string) {}}, "Customers"},
		{"negative workers", AppConfig{API: api, Triager: tr, Classify: func(string) {}, Customers: storeCustomers{},
			Workers: -1}, "workers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestIntakeMessageBecomesTicket(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	env, ts := h.say(slackfake.UserMessage{Channel: intakeChannel, User: customerUser,
		Text: "My parcel for order 1001 hasn't arrived &amp; tracking is stuck"})
	a := h.ack(env)
	if len(a.Payload) != 0 {
		t.Errorf("events ack carries %s", a.Payload)
	}
	ref := intakeChannel + "/" + ts
	var tk triage.Ticket
	h.waitFor("triaged ticket", func() bool {
		var ok bool
		tk, ok = h.ticketByRef(ref)
		return ok && tk.State != triage.StateReceived
	})
	if tk.State != triage.StateAwaitingReview && tk.State != triage.StateEscalated {
		t.Errorf("state = %s", tk.State)
	}
	if tk.Source != triage.SourceSlack || tk.Channel != "slack" || tk.ReplyTo != ref {
		t.Errorf("ticket = %+v", tk)
	}
	if want := "My parcel for order 1001 hasn't arrived & tracking is stuck"; tk.Body != want {
		t.Errorf("body = %q, want Slack's entities decoded: %q", tk.Body, want)
	}
	if !tk.ReceivedAt.Equal(slackTime(ts)) {
		t.Errorf("received at %v, want the message's ts %s", tk.ReceivedAt, ts)
	}
	cust, err := storeCustomers{h.store}.Customer(context.Background(), tk.CustomerID)
	if err != nil || cust.SlackUserID != customerUser {
		t.Errorf("customer = %+v, %v", cust, err)
	}
	h.waitFor("a kick after triage", func() bool { return h.kicks.Load() > 0 })
	if n := len(h.store.All()); n != 1 {
		t.Errorf("%d tickets, want 1", n)
	}
}

// TestIntakeIgnores checks that only people's top-level messages and file
// shares in intake channels become tickets.
func TestIntakeIgnores(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	event := func(fields map[string]any) map[string]any {
		ev := map[string]any{"type": "message", "channel": intakeChannel, "user": customerUser,
			"text": "ignored", "ts": "1772442000.000100", "event_ts": "1772442000.000100"}
		for k, v := range fields {
			if v == nil {
				delete(ev, k)
			} else {
				ev[k] = v
			}
		}
		return ev
	}
	ignored := []struct {
		name  string
		event map[string]any
	}{
		{"other channel", event(map[string]any{"channel": otherChannel})},
		{"own message", event(map[string]any{"user": h.fake.BotUserID()})},
		{"own bot message", event(map[string]any{"user": nil, "bot_id": slackfake.DefaultBotID, "subtype": "bot_message"})},
		{"edit", event(map[string]any{"subtype": "message_changed"})},
		{"app's edit", event(map[string]any{"user": nil, "bot_id": "B0ZAPIER", "subtype": "message_changed"})},
		{"app's deletion", event(map[string]any{"user": nil, "bot_id": "B0ZAPIER", "subtype": "message_deleted"})},
		{"app joins", event(map[string]any{"user": "U0ZAPBOT", "bot_id": "B0ZAPIER", "subtype": "channel_join"})},
		{"join", event(map[string]any{"subtype": "channel_join"})},
		{"no user", event(map[string]any{"user": nil})},
		// slack-go cannot parse it; it is acked all the same.
		{"unknown event type", event(map[string]any{"type": "made_up_event"})},
	}
	for _, tc := range ignored {
		env, err := h.fake.SendEvent(tc.event)
		if err != nil {
			t.Fatal(err)
		}
		h.ack(env)
	}
	// A file share is a ticket; its ack comes after the ignored ones'.
	env, err := h.fake.SendEvent(event(map[string]any{"subtype": "file_share", "ts": "1772442001.000100",
		"files": []map[string]any{{"id": "F1", "name": "receipt.pdf"}}}))
	if err != nil {
		t.Fatal(err)
	}
	h.ack(env)
	h.waitFor("file share ticket", func() bool { return len(h.store.All()) == 1 })
	tk := h.store.All()[0]
	if tk.ExternalID != intakeChannel+"/1772442001.000100" {
		t.Errorf("the ticket is %q, want the file share", tk.ExternalID)
	}
}

// appSay posts another app's message and returns its ts.
func (h *appHarness) appSay(m slackfake.AppMessage) (slackfake.Envelope, string) {
	h.t.Helper()
	env, err := h.fake.SendAppMessage(m)
	if err != nil {
		h.t.Fatal(err)
	}
	var p struct {
		Event struct {
			TS string `json:"ts"`
		} `json:"event"`
	}
	if err := json.Unmarshal(env.Payload, &p); err != nil || p.Event.TS == "" {
		h.t.Fatalf("message envelope: %v %s", err, env.Payload)
	}
	return env, p.Event.TS
}

// TestIntakeAppPosts: integrations that post as apps (Shopify Flow, Zapier,
// email forwarders) make tickets, with or without a bot user; casebot's own
// posts and the apps config ignores do not. An app posts for many
// customers, so its tickets are never merged into one customer, and nobody's
// thread reply under an app's ticket is taken for its customer's.
func TestIntakeAppPosts(t *testing.T) {
	h := newAppHarness(t, harnessOpts{ignoreBots: []string{"B0IGNORE", "A0IGNAPP"}})
	ignored := []struct {
		name string
		msg  slackfake.AppMessage
	}{
		{"casebot's own post", slackfake.AppMessage{BotID: slackfake.DefaultBotID, AppID: slackfake.DefaultAppID,
			User: h.fake.BotUserID(), Text: "Where is my order?"}},
		{"casebot's own legacy post", slackfake.AppMessage{BotID: slackfake.DefaultBotID, Text: "Where is my order?"}},
		{"ignored bot ID", slackfake.AppMessage{BotID: "B0IGNORE", Username: "Deploys", Text: "Where is my order?"}},
		{"ignored app ID", slackfake.AppMessage{BotID: "B0OTHER1", AppID: "A0IGNAPP", User: "U0OTHBOT",
			Text: "Where is my order?"}},
	}
	for _, tc := range ignored {
		tc.msg.Channel = intakeChannel
		env, _ := h.appSay(tc.msg)
		h.ack(env)
	}
	taken := []struct {
		name string
		msg  slackfake.AppMessage
		want string // the customer's name
	}{
		{"app with a bot user", slackfake.AppMessage{BotID: "B0ZAPIER", AppID: "A0ZAPIER", User: "U0ZAPBOT",
			Username: "Zapier", Text: "New contact form: my order 1001 arrived broken"}, "Zapier"},
		{"same app again", slackfake.AppMessage{BotID: "B0ZAPIER", AppID: "A0ZAPIER", User: "U0ZAPBOT",
			Username: "Zapier", Text: "New contact form: wrong size delivered"}, "Zapier"},
		{"legacy integration", slackfake.AppMessage{BotID: "B0FLOW01", Username: "Shopify Flow",
			Text: "Order 1002: customer asks for a refund"}, "Shopify Flow"},
	}
	var tickets []triage.Ticket
	for _, tc := range taken {
		tc.msg.Channel = intakeChannel
		env, ts := h.appSay(tc.msg)
		h.ack(env)
		ref := intakeChannel + "/" + ts
		var tk triage.Ticket
		h.waitFor(tc.name+" ticket", func() bool {
			var ok bool
			tk, ok = h.ticketByRef(ref)
			return ok && tk.State != triage.StateReceived
		})
		if tk.Source != triage.SourceSlack || tk.ReplyTo != ref || tk.Body != tc.msg.Text {
			t.Errorf("%s: ticket %+v", tc.name, tk)
		}
		cust, err := storeCustomers{h.store}.Customer(context.Background(), tk.CustomerID)
		if err != nil || cust.Name != tc.want || cust.SlackUserID != "" || cust.Handle != "" || cust.Email != "" {
			t.Errorf("%s: customer %+v, %v; want %q with no identity to merge on", tc.name, cust, err, tc.want)
		}
		tickets = append(tickets, tk)
	}
	if tickets[0].CustomerID == tickets[1].CustomerID {
		t.Errorf("two posts of one app share customer %s", tickets[0].CustomerID)
	}

	// Under an app's ticket neither an agent nor the app is its customer.
	_, parentTS, _ := strings.Cut(tickets[0].ExternalID, "/")
	env, _ := h.say(slackfake.UserMessage{Channel: intakeChannel, User: agentUser, ThreadTS: parentTS, Text: "on it"})
	h.ack(env)
	env, _ = h.appSay(slackfake.AppMessage{Channel: intakeChannel, BotID: "B0FLOW01", ThreadTS: parentTS, Text: "status: open"})
	h.ack(env)
	h.stop()
	if got := h.get(tickets[0].ID); len(got.Entries) != 0 {
		t.Errorf("entries %+v under an app's ticket, want none", got.Entries)
	}
	if n := len(h.store.All()); n != len(taken) {
		t.Errorf("%d tickets, want %d", n, len(taken))
	}
}

// TestRedeliveryYieldsOneTicket delivers one message three times: twice
// with the same event ID (a Slack retry) and once with a new one.
func TestRedeliveryYieldsOneTicket(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	payload := func(eventID string) map[string]any {
		return map[string]any{
			"token": "t", "team_id": slackfake.DefaultTeamID, "api_app_id": slackfake.DefaultAppID,
			"type": "event_callback", "event_id": eventID, "event_time": appT0.Unix(),
			"event": map[string]any{"type": "message", "channel": intakeChannel, "user": customerUser,
				"text": "Where is my order 1001?", "ts": "1772442000.000100", "event_ts": "1772442000.000100"},
		}
	}
	for _, id := range []string{"Ev1", "Ev1", "Ev2"} {
		env, err := h.fake.SendEnvelope(slackfake.TypeEventsAPI, payload(id), false)
		if err != nil {
			t.Fatal(err)
		}
		h.ack(env)
	}
	ref := intakeChannel + "/1772442000.000100"
	var tk triage.Ticket
	h.waitFor("triaged ticket", func() bool {
		var ok bool
		tk, ok = h.ticketByRef(ref)
		return ok && tk.State != triage.StateReceived
	})
	h.stop() // finishes every acknowledged envelope
	if n := len(h.store.All()); n != 1 {
		t.Errorf("%d tickets, want 1", n)
	}
	if got := actions(h, tk.ID); countOf(got, "triaged") != 1 {
		t.Errorf("audit = %v, want one triage (one card)", got)
	}
}

// TestRedeliveryAfterTimeout holds the store commit of a message past the
// ack deadline: the app must not ack before the commit (SPEC invariant 1),
// the fake redelivers, and there is still one ticket.
func TestRedeliveryAfterTimeout(t *testing.T) {
	clock := slackfake.NewManualClock(appT0)
	gate := &gatedTickets{release: make(chan struct{}), entered: make(chan struct{}, 8)}
	h := newAppHarness(t, harnessOpts{clock: clock, wrap: func(s *triagetest.Tickets) triage.Tickets {
		gate.Tickets = s
		return gate
	}})
	first, ts := h.say(slackfake.UserMessage{Channel: intakeChannel, User: customerUser, Text: "Where is my order?"})
	select {
	case <-gate.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the message never reached the store")
	}
	clock.Advance(3*time.Second + time.Millisecond)
	h.fake.Sweep()
	h.waitFor("redelivery", func() bool { return len(h.fake.Deliveries()) == 2 })
	h.ack(h.fake.Deliveries()[1].Envelope)
	close(gate.release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := h.fake.WaitAck(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Late {
		t.Errorf("the first delivery was acked in time although its commit was held: %+v", a)
	}
	h.waitFor("triaged ticket", func() bool {
		tk, ok := h.ticketByRef(intakeChannel + "/" + ts)
		return ok && tk.State != triage.StateReceived
	})
	h.stop()
	if n := len(h.store.All()); n != 1 {
		t.Errorf("%d tickets, want 1", n)
	}
}

// gatedTickets holds every Create until release is closed.
type gatedTickets struct {
	*triagetest.Tickets
	release chan struct{}
	entered chan struct{}
}

func (g *gatedTickets) Create(ctx context.Context, t *triage.Ticket, c triage.Customer) (triage.Ticket, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Tickets.Create(ctx, t, c)
}

func TestThreadReplies(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	tk := h.intake(customerUser, "My order 1001 hasn't arrived.")
	_, parentTS, _ := strings.Cut(tk.ExternalID, "/")

	// Someone else's reply is ignored; the author's is appended.
	h.say(slackfake.UserMessage{Channel: intakeChannel, User: otherUser, ThreadTS: parentTS, Text: "same here"})
	replyEnv, replyTS := h.say(slackfake.UserMessage{Channel: intakeChannel, User: customerUser, ThreadTS: parentTS,
		Text: "It's for my daughter's birthday on Friday"})
	h.waitFor("appended reply", func() bool { return len(h.get(tk.ID).Entries) == 1 })
	got := h.get(tk.ID).Entries[0]
	if got.Author != customerUser || got.Body != "It's for my daughter's birthday on Friday" || !got.At.Equal(slackTime(replyTS)) {
		t.Errorf("entry = %+v", got)
	}

	// The same reply delivered again under a new event ID is not appended
	// twice.
	var orig map[string]any
	if err := json.Unmarshal(replyEnv.Payload, &orig); err != nil {
		t.Fatal(err)
	}
	orig["event_id"] = "EvAgain"
	env, err := h.fake.SendEnvelope(slackfake.TypeEventsAPI, orig, false)
	if err != nil {
		t.Fatal(err)
	}
	h.ack(env)
	h.stop()
	tk = h.get(tk.ID)
	if len(tk.Entries) != 1 {
		t.Errorf("entries = %+v, want the author's reply once", tk.Entries)
	}
	if n := len(h.store.All()); n != 1 {
		t.Errorf("%d tickets, want 1", n)
	}
	if got := actions(h, tk.ID); countOf(got, "customer_wrote") != 1 {
		t.Errorf("audit = %v", got)
	}
}

// TestThreadReplyWithoutTicket: a reply in a thread whose parent is no
// ticket (posted while casebot was away) becomes a ticket keyed on the
// thread.
func TestThreadReplyWithoutTicket(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	// The bot's own post is not delivered as an event.
	_, ts, err := h.api.PostMessage(intakeChannel, slack.MsgOptionText("parent", false))
	if err != nil {
		t.Fatal(err)
	}
	h.say(slackfake.UserMessage{Channel: intakeChannel, User: customerUser, ThreadTS: ts, Text: "still no refund"})
	h.waitFor("ticket for the thread", func() bool {
		tk, ok := h.ticketByRef(intakeChannel + "/" + ts)
		return ok && tk.State != triage.StateReceived && tk.Body == "still no refund"
	})
}

// TestSocketReconnects checks slack-go's client comes back after Slack
// asks it to reconnect and after the connection drops, and the app keeps
// serving.
func TestSocketReconnects(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	h.waitFor("first connection", func() bool { return h.fake.OpenConnections() == 1 })
	h.fake.Disconnect()
	h.waitFor("second connection", func() bool { return h.fake.ConnectionsOpened() == 2 && h.fake.OpenConnections() == 1 })
	h.intake(customerUser, "Where is order 1001?")
	h.fake.Drop()
	h.waitFor("third connection", func() bool { return h.fake.ConnectionsOpened() == 3 && h.fake.OpenConnections() == 1 })
	h.intake(customerUser, "Where is order 1002?")
	if n := len(h.store.All()); n != 2 {
		t.Errorf("%d tickets, want 2", n)
	}
}

// TestClassificationLeavesTheApp holds the model's answer: the app acks
// the message and hands the ticket to the pipeline, whose classification
// runs under no deadline of the app's and outlives the app's stop.
func TestClassificationLeavesTheApp(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var deadline atomic.Bool
	model := &triagetest.Classifier{Func: func(ctx context.Context, _ triage.ClassifyRequest) (triage.Classification, error) {
		if _, ok := ctx.Deadline(); ok {
			deadline.Store(true)
		}
		once.Do(func() { close(started) })
		<-release
		return triage.Classification{Type: triage.TypeDelivery, Sentiment: triage.SentimentNeutral,
			Urgency: triage.LevelLow, FinancialRisk: triage.LevelLow, Language: "en"}, nil
	}}
	h := newAppHarness(t, harnessOpts{model: model})
	env, ts := h.say(slackfake.UserMessage{Channel: intakeChannel, User: customerUser, Text: "Where is my parcel?"})
	h.ack(env)
	<-started
	h.stop() // fails the test unless Run returns while the model still works
	close(release)
	h.waitFor("classified by the model", func() bool {
		tk, ok := h.ticketByRef(intakeChannel + "/" + ts)
		return ok && tk.State == triage.StateAwaitingReview && tk.ClassifiedBy == "model"
	})
	if deadline.Load() {
		t.Error("the classification ran under a deadline")
	}
}

// TestRedeliveryClassifiesStoredTicket delivers a message that an earlier
// run stored but never classified: the redelivery classifies it, once.
func TestRedeliveryClassifiesStoredTicket(t *testing.T) {
	var handed []string
	var mu sync.Mutex
	h := newAppHarness(t, harnessOpts{classify: func(id string) {
		mu.Lock()
		defer mu.Unlock()
		handed = append(handed, id)
	}})
	const ts = "1772442000.000100"
	ref := intakeChannel + "/" + ts
	stored, err := h.tr.Intake(context.Background(), triage.Inbound{Source: triage.SourceSlack, Channel: "slack",
		ExternalID: ref, ReplyTo: ref, Customer: triage.Customer{SlackUserID: customerUser}, Body: "Where is my order?"})
	if err != nil {
		t.Fatal(err)
	}
	for _, state := range []triage.State{triage.StateReceived, triage.StateAwaitingReview} {
		h.change(stored.ID, func(t *triage.Ticket) { t.State = state })
		env, err := h.fake.SendEvent(map[string]any{"type": "message", "channel": intakeChannel, "user": customerUser,
			"text": "Where is my order?", "ts": ts, "event_ts": ts})
		if err != nil {
			t.Fatal(err)
		}
		h.ack(env)
	}
	h.stop()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(handed, []string{stored.ID}) {
		t.Errorf("handed to Classify: %v, want %s once (while it was received)", handed, stored.ID)
	}
	if n := len(h.store.All()); n != 1 {
		t.Errorf("%d tickets, want 1", n)
	}
}

func TestRunFailsOnBadToken(t *testing.T) {
	fake := slackfake.New(slackfake.Options{})
	defer fake.Close()
	api := slack.New("xoxb-wrong", slack.OptionAPIURL(fake.APIURL()))
	store := triagetest.NewTickets(nil)
	tr, err := triage.NewTriager(triage.DefaultConfig(), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	app, err := New(AppConfig{API: api, Triager: tr, Classify: func(string) {}, Customers: storeCustomers{store}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := app.Run(ctx); err == nil || !strings.Contains(err.Error(), "invalid_auth") {
		t.Errorf("Run = %v, want invalid_auth", err)
	}
}

func TestEventSet(t *testing.T) {
	s := newEventSet(3)
	steps := []struct {
		op   string
		id   string
		want bool
	}{
		{"add", "a", true}, {"add", "a", false}, {"add", "b", true}, {"add", "c", true},
		{"add", "d", true},  // evicts a
		{"add", "a", true},  // evicts b
		{"add", "c", false}, // still there
		{"forget", "c", false},
		{"add", "c", true}, // takes the next slot, its own old one
		{"add", "d", false},
		{"add", "e", true}, // evicts d
		{"add", "d", true}, // evicts a
		{"add", "a", true},
	}
	for i, st := range steps {
		if st.op == "forget" {
			s.Forget(st.id)
			continue
		}
		if got := s.Add(st.id); got != st.want {
			t.Errorf("step %d: Add(%q) = %v, want %v", i, st.id, got, st.want)
		}
	}
}

func TestSlackTime(t *testing.T) {
	cases := []struct {
		ts   string
		want time.Time
	}{
		{"1772442000.000100", time.Unix(1772442000, 100000).UTC()},
		{"1772442000.5", time.Unix(1772442000, 500000000).UTC()},
		{"1772442000", time.Unix(1772442000, 0).UTC()},
		{"", time.Time{}},
		{"abc.123", time.Time{}},
		{"1772442000.12x", time.Time{}},
		{"-5.000000", time.Time{}},
	}
	for _, tc := range cases {
		if got := slackTime(tc.ts); !got.Equal(tc.want) {
			t.Errorf("slackTime(%q) = %v, want %v", tc.ts, got, tc.want)
		}
	}
}

func TestSocketDetail(t *testing.T) {
	err := errors.New("dial tcp: refused")
	cases := []struct {
		data any
		want string
	}{
		{&slack.ConnectionErrorEvent{ErrorObj: err}, err.Error()},
		{&slack.ConnectionErrorEvent{}, ""},
		{&socketmode.ErrorWriteFailed{Cause: err}, err.Error()},
		{err, err.Error()},
		{nil, ""},
	}
	for _, tc := range cases {
		if got := socketDetail(socketmode.Event{Data: tc.data}); got != tc.want {
			t.Errorf("socketDetail(%#v) = %q, want %q", tc.data, got, tc.want)
		}
	}
}

// appHostile is customer text that would ping or link if it were not
// escaped; Slack sends a typed "<" as "&lt;", so the last one arrives as an
// entity and is decoded into a live-looking mention at intake.
const appHostile = "I will sue you. <!channel> <@U1> <!subteam^S1> <http://evil|click> &lt;!here&gt; refund now"

// appHostileTokens must never appear in a text object or message text.
var appHostileTokens = []string{"<!channel>", "<@U1>", "<!subteam^S1>", "<http://evil", "<!here>"}

// renderedTexts returns every text casebot showed a person: message text
// and the text of every Block Kit text object (not input values, which
// Slack never parses).
func renderedTexts(t *testing.T, docs ...[]byte) []string {
	t.Helper()
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if typ, _ := v["type"].(string); typ == "mrkdwn" || typ == "plain_text" {
				if s, ok := v["text"].(string); ok {
					out = append(out, s)
				}
			}
			for k, x := range v {
				if k != "initial_value" {
					walk(x)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for _, d := range docs {
		if len(d) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(d, &v); err != nil {
			t.Fatalf("%v: %s", err, d)
		}
		walk(v)
	}
	return out
}

// checkNoHostile fails when a hostile token reaches a person.
func checkNoHostile(t *testing.T, where string, texts []string) {
	t.Helper()
	for _, s := range texts {
		for _, bad := range appHostileTokens {
			if strings.Contains(s, bad) {
				t.Errorf("%s shows %q live in %q", where, bad, s)
			}
		}
	}
}

// hasText reports whether any text contains sub.
func hasText(texts []string, sub string) bool {
	return slices.ContainsFunc(texts, func(s string) bool { return strings.Contains(s, sub) })
}

// BenchmarkIntakeThroughput pushes messages through the whole loop: Socket
// Mode delivery, commit, ack, keyword classification and routing, on the
// in-memory store. Each op is one message.
func BenchmarkIntakeThroughput(b *testing.B) {
	h := newAppHarness(b, harnessOpts{})
	b.ResetTimer()
	for i := range b.N {
		if _, err := h.fake.SendMessage(slackfake.UserMessage{Channel: intakeChannel, User: fmt.Sprintf("U%08d", i),
			Text: "My parcel for order 1001 hasn't arrived, tracking is stuck since Monday"}); err != nil {
			b.Fatal(err)
		}
	}
	h.waitFor("every ticket triaged", func() bool {
		all := h.store.All()
		return len(all) == b.N && !slices.ContainsFunc(all, func(t triage.Ticket) bool { return t.State == triage.StateReceived })
	})
	b.StopTimer()
	h.stop()
}

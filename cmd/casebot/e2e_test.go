package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casebot/casebot/bot"
	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
)

// The end-to-end tests run the whole bot (System: real bbolt store, triage,
// Slack app and poster) against the in-process Slack stand-in.

const (
	intakeChannel = "C0INTAKE"
	customerUser  = "U0CUST001"
	agentUser     = "U0AGENT01"
	approverUser  = "U0LEAD001"
)

type e2e struct {
	t      *testing.T
	fake   *slackfake.Fake
	sys    *System
	dbPath string
	// interval is the poster's pace per channel.
	interval time.Duration
	cancel   context.CancelFunc
	done     chan error
}

func newE2E(t *testing.T, fakeOpts slackfake.Options) *e2e {
	t.Helper()
	t.Setenv(EnvOllamaHost, "")
	fake := slackfake.New(fakeOpts)
	t.Cleanup(fake.Close)
	e := &e2e{t: t, fake: fake, dbPath: filepath.Join(t.TempDir(), "casebot.db"), interval: time.Millisecond}
	if fakeOpts.PostRate > 0 {
		e.interval = time.Duration(float64(time.Second) / fakeOpts.PostRate)
	}
	e.open()
	return e
}

// open builds a System on the test's store, without running it.
func (e *e2e) open() {
	e.t.Helper()
	cfg := DefaultConfig()
	cfg.Slack.IntakeChannels = []string{intakeChannel}
	e.sys = &System{Config: cfg, DBPath: e.dbPath, SlackAPIURL: e.fake.APIURL(), Classifier: classifierKeyword,
		Secrets: Secrets{SlackBotToken: e.fake.BotToken(), SlackAppToken: e.fake.AppToken()},
		Poster:  bot.PosterOptions{PerChannelInterval: e.interval, PollInterval: 20 * time.Millisecond, Backoff: 5 * time.Millisecond}}
	if err := e.sys.Open(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(e.stop)
}

func (e *e2e) start() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- e.sys.Run(ctx) }()
}

// stop ends Run and closes the store; later calls do nothing.
func (e *e2e) stop() {
	if e.cancel != nil {
		e.cancel()
		select {
		case err := <-e.done:
			if err != nil {
				e.t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			e.t.Error("Run did not stop")
		}
		e.cancel = nil
	}
	if e.sys != nil {
		e.sys.Close()
		e.sys = nil
	}
}

// waitFor waits until cond holds. It wakes on every change in Slack and
// also re-checks every few milliseconds, because many conditions read the
// store, which can change after Slack's last change (the poster records a
// card's ts once Slack answered): waking on Slack alone could miss that.
// The 30 s are a backstop for a hang, not a timing assumption.
func (e *e2e) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := e.fake.Wait(ctx, cond)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// cards returns the bot's top-level messages in channel carrying a ticket.
func (e *e2e) cards(channel string) map[string][]slackfake.Message {
	out := map[string][]slackfake.Message{}
	for _, m := range e.fake.Messages(channel) {
		if m.BotID == "" || (m.ThreadTS != "" && m.ThreadTS != m.TS) || m.Metadata == nil {
			continue
		}
		var md struct {
			EventType string `json:"event_type"`
			Payload   struct {
				TicketID string `json:"ticket_id"`
			} `json:"event_payload"`
		}
		if json.Unmarshal(m.Metadata, &md) == nil && md.Payload.TicketID != "" && strings.Contains(string(m.Blocks), "actions") {
			out[md.Payload.TicketID] = append(out[md.Payload.TicketID], m)
		}
	}
	return out
}

func (e *e2e) ticket(id string) triage.Ticket {
	e.t.Helper()
	db := e.sys.DB
	tk, err := db.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return tk
}

// onlyCard waits for the single card in channel and returns its ticket.
func (e *e2e) onlyCard(channel string) (string, slackfake.Message) {
	e.t.Helper()
	e.waitFor("a card in "+channel, func() bool { return len(e.cards(channel)) == 1 })
	for id, ms := range e.cards(channel) {
		// The poster records where the card is right after Slack took it.
		e.waitFor("the card recorded on "+id, func() bool { return e.ticket(id).Slack.TS != "" })
		return id, ms[0]
	}
	panic("unreachable")
}

// latestView is the newest modal with callback id cb.
func (e *e2e) latestView(cb string) slackfake.View {
	e.t.Helper()
	e.waitFor("a "+cb+" modal", func() bool {
		return slices.ContainsFunc(e.fake.Views(), func(v slackfake.View) bool { return v.CallbackID == cb })
	})
	vs := e.fake.Views()
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].CallbackID == cb {
			return vs[i]
		}
	}
	panic("unreachable")
}

func (e *e2e) click(channel, ts, action, user string) {
	e.t.Helper()
	if _, err := e.fake.Click(slackfake.Click{Channel: channel, TS: ts, ActionID: action, User: user}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *e2e) submit(view slackfake.View, user string, values map[string]map[string]slackfake.Input) {
	e.t.Helper()
	if _, err := e.fake.SubmitView(slackfake.Submission{ViewID: view.ID, User: user, Values: values}); err != nil {
		e.t.Fatal(err)
	}
}

func actions(t *testing.T, e *e2e, id string) []string {
	t.Helper()
	evs, err := e.sys.DB.Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}

func TestE2EApproveReplyResolve(t *testing.T) {
	e := newE2E(t, slackfake.Options{PostRate: -1})
	e.start()
	env, err := e.fake.SendMessage(slackfake.UserMessage{Channel: intakeChannel, User: customerUser,
		Text: "Hi, my parcel for order #4411 still hasn't arrived after two weeks. Where is it?"})
	if err != nil {
		t.Fatal(err)
	}
	id, card := e.onlyCard("C0QUEUE")
	e.waitFor("the draft on the card", func() bool {
		m, _ := e.fake.Message("C0QUEUE", card.TS)
		return strings.Contains(string(m.Blocks), `"approve"`)
	})

	// The acknowledgement is automatic: no first response.
	if tk := e.ticket(id); !tk.FirstResponseAt.IsZero() {
		t.Errorf("first response %v before any reply", tk.FirstResponseAt)
	}
	e.click("C0QUEUE", card.TS, bot.ActionApprove, agentUser)
	// Taken when Slack has the reply, not at the click.
	e.waitFor("the reply's delivery recorded", func() bool { return !e.ticket(id).FirstResponseAt.IsZero() })
	e.waitFor("the reply in the customer's thread", func() bool {
		draft := e.ticket(id).Draft
		for _, m := range e.fake.Messages(intakeChannel) {
			if m.BotID != "" && m.ThreadTS != "" && m.ThreadTS != m.TS && strings.Contains(m.Text, draft) {
				return true
			}
		}
		return false
	})
	acks := 0
	for _, m := range e.fake.Messages(intakeChannel) {
		if strings.Contains(m.Text, "We have received your message") {
			acks++
		}
	}
	if acks != 1 {
		t.Errorf("%d acknowledgements in the customer's thread, want 1", acks)
	}
	if tk := e.ticket(id); tk.State != triage.StateReplied || tk.Sent == "" || tk.ExternalID == "" {
		t.Fatalf("after approve: %+v", tk)
	}
	_ = env

	e.waitFor("the card updated with Resolve", func() bool {
		m, _ := e.fake.Message("C0QUEUE", card.TS)
		return strings.Contains(string(m.Blocks), `"resolve"`)
	})
	e.click("C0QUEUE", card.TS, bot.ActionResolve, agentUser)
	e.submit(e.latestView(bot.CallbackResolve), agentUser, map[string]map[string]slackfake.Input{
		"root_cause": {"root_cause": {Value: "carrier_delay"}},
		"method":     {"method": {Value: "replacement"}},
		"note":       {"note": {Value: "Resent by express."}},
	})
	e.waitFor("resolved", func() bool { return e.ticket(id).State == triage.StateResolved })
	got := actions(t, e, id)
	for _, want := range []string{"received", "triaged", "drafted", "card_posted", "approved", "reply_delivered", "resolved"} {
		if !slices.Contains(got, want) {
			t.Errorf("audit trail %v lacks %q", got, want)
		}
	}
	if tk := e.ticket(id); tk.RootCause != "carrier_delay" || tk.FollowUpDue.IsZero() {
		t.Errorf("resolution not recorded: root cause %q, follow-up due %v", tk.RootCause, tk.FollowUpDue)
	}
	if n := len(e.cards("C0QUEUE")[id]); n != 1 {
		t.Errorf("%d cards for the ticket, want 1", n)
	}
}

func TestE2EAuthorityEditEscalate(t *testing.T) {
	e := newE2E(t, slackfake.Options{PostRate: -1})
	e.start()
	if _, err := e.fake.SendMessage(slackfake.UserMessage{Channel: intakeChannel, User: customerUser,
		Text: "The blender jug cracked on day one. I want a refund of $500 for the whole set."}); err != nil {
		t.Fatal(err)
	}
	id, card := e.onlyCard("C0QUEUE")
	e.waitFor("the draft on the card", func() bool {
		m, _ := e.fake.Message("C0QUEUE", card.TS)
		return strings.Contains(string(m.Blocks), `"approve"`)
	})
	if !e.ticket(id).NeedsApproval {
		t.Fatal("a $500 refund must need approval authority")
	}

	// An agent without authority is refused privately and nothing changes.
	before := len(actions(t, e, id))
	e.click("C0QUEUE", card.TS, bot.ActionApprove, agentUser)
	e.waitFor("the ephemeral refusal", func() bool {
		return slices.ContainsFunc(e.fake.Ephemerals(), func(m slackfake.Ephemeral) bool { return m.User == agentUser })
	})
	if tk := e.ticket(id); tk.State != triage.StateAwaitingReview || len(actions(t, e, id)) != before {
		t.Fatalf("refused approve changed the ticket: state %s, audit %v", tk.State, actions(t, e, id))
	}

	// The approver edits the classification and the reply: the override is
	// recorded and the edited reply sent.
	e.click("C0QUEUE", card.TS, bot.ActionEdit, approverUser)
	e.submit(e.latestView(bot.CallbackEdit), approverUser, map[string]map[string]slackfake.Input{
		"draft": {"draft": {Value: "We're sorry about the jug. A full refund of $500 is on its way."}},
		"type":  {"type": {Value: string(triage.TypeProductDefect)}},
	})
	e.waitFor("the edit applied", func() bool { return e.ticket(id).State == triage.StateReplied })
	tk := e.ticket(id)
	if len(tk.Overrides) == 0 || tk.Overrides[0].Field != "type" || tk.Overrides[0].By != approverUser {
		t.Errorf("overrides %+v, want the type change by %s", tk.Overrides, approverUser)
	}
	// The keyword setup drafts from templates: no AI draft to measure.
	if tk.DraftSent || tk.Sent != "We're sorry about the jug. A full refund of $500 is on its way." {
		t.Errorf("sent %q, draft sent %v, want the edited reply and no AI draft counted", tk.Sent, tk.DraftSent)
	}

	// Another ticket is escalated to the brand owner: mentioned in the
	// escalation channel.
	if _, err := e.fake.SendMessage(slackfake.UserMessage{Channel: intakeChannel, User: "U0CUST002",
		Text: "Where is my order? Nobody answers my emails."}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the second card", func() bool { return len(e.cards("C0QUEUE")) == 2 })
	first := id
	for cid, ms := range e.cards("C0QUEUE") {
		if cid != first {
			id, card = cid, ms[0]
		}
	}
	e.click("C0QUEUE", card.TS, bot.ActionEscalate, agentUser)
	e.submit(e.latestView(bot.CallbackEscalate), agentUser, map[string]map[string]slackfake.Input{
		"reason": {"reason": {Value: "Customer says they will post about it"}},
		"owner":  {"owner": {Value: "U0BRAND01"}},
	})
	e.waitFor("the owner mentioned in the escalation channel", func() bool {
		for _, m := range e.fake.Messages("C0ESCALATE") {
			if strings.Contains(m.Text+string(m.Blocks), "<@U0BRAND01>") {
				return true
			}
		}
		return false
	})
	if tk := e.ticket(id); tk.State != triage.StateEscalated || tk.Escalations != 1 {
		t.Errorf("state %s escalations %d", tk.State, tk.Escalations)
	}
}

// TestE2ERestartAndRateLimits: tickets triaged while the bot was down are
// posted after it starts; a restart in the middle of posting and Slack's
// 429s end with every card posted exactly once.
func TestE2ERestartAndRateLimits(t *testing.T) {
	e := newE2E(t, slackfake.Options{PostRate: 20, Burst: 1})
	const n = 24
	var ids []string
	for i := range n {
		tk, err := e.sys.Triager.Process(context.Background(), triage.Inbound{Source: triage.SourceWebhook,
			ExternalID: "w" + string(rune('a'+i)), Customer: triage.Customer{Email: "c" + string(rune('a'+i)) + "@example.com"},
			Body: "Where is my order?"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	e.start()
	e.waitFor("a first card", func() bool { return len(e.cards("C0QUEUE")) > 0 })
	e.stop()
	e.open()
	e.start()
	// A card is in Slack a moment before the outbox records where: wait
	// for both.
	e.waitFor("every card, recorded", func() bool {
		return len(e.cards("C0QUEUE")) == n && !slices.ContainsFunc(ids, func(id string) bool { return e.ticket(id).Slack.TS == "" })
	})
	for _, id := range ids {
		if got := len(e.cards("C0QUEUE")[id]); got != 1 {
			t.Errorf("ticket %s has %d cards, want 1", id, got)
		}
		if e.ticket(id).Slack.TS == "" {
			t.Errorf("ticket %s does not know where its card is", id)
		}
	}
}

func TestE2ERedeliveredEventOneTicket(t *testing.T) {
	e := newE2E(t, slackfake.Options{PostRate: -1})
	e.start()
	msg := slackfake.UserMessage{Channel: intakeChannel, User: customerUser, Text: "Can I change my delivery address?"}
	if _, err := e.fake.SendMessage(msg); err != nil {
		t.Fatal(err)
	}
	id, _ := e.onlyCard("C0QUEUE")
	// The same Slack message delivered again (a retry) is the same ticket.
	tk := e.ticket(id)
	channel, ts, _ := strings.Cut(tk.ExternalID, "/")
	if _, err := e.sys.Triager.Process(context.Background(), triage.Inbound{Source: triage.SourceSlack,
		ExternalID: channel + "/" + ts, Body: msg.Text}); err == nil {
		t.Error("a second delivery of the message was stored again")
	}
	n, err := e.sys.DB.Count(context.Background())
	if err != nil || n != 1 {
		t.Errorf("%d tickets, %v; want 1", n, err)
	}
}

// TestE2EDroppedCardIsSurfaced: a card Slack keeps refusing (the routed
// channel does not exist) is not lost silently: the escalation channel is
// told which ticket has no card.
func TestE2EDroppedCardIsSurfaced(t *testing.T) {
	e := newE2E(t, slackfake.Options{PostRate: -1, Channels: []string{intakeChannel, "C0ESCALATE", "C0OPS"}})
	e.start()
	tk, err := e.sys.Triager.Intake(context.Background(), triage.Inbound{Source: triage.SourceWebhook, ExternalID: "w1",
		Customer: triage.Customer{Email: "a@example.com"}, Body: "Where is my order?"})
	if err != nil {
		t.Fatal(err)
	}
	e.sys.Pipeline.Classify(tk.ID)
	e.waitFor("the notice in the escalation channel", func() bool {
		for _, m := range e.fake.Messages("C0ESCALATE") {
			if strings.Contains(m.Text+string(m.Blocks), tk.ID) {
				return true
			}
		}
		return false
	})
}

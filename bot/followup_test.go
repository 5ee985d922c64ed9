package bot

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
)

func TestFollowUpMessageGolden(t *testing.T) {
	cases := []struct {
		name string
		post triage.Post
	}{
		{"slack", triage.Post{Kind: triage.PostCustomerReply, TicketID: "CB-000042", Channel: "C0INTAKE",
			ThreadTS: "1772618000.000100", Action: ActionFollowUp, Actor: triage.ActorSystem, Text: followUpText}},
		{"hostile", triage.Post{Kind: triage.PostCustomerReply, TicketID: "CB-000043", Channel: "C0INTAKE",
			Action: ActionFollowUp, Text: hostileText + "\n" + strings.Repeat("&", 5000)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The poster renders customer replies with CustomerReplyMessage.
			msg := CustomerReplyMessage(tc.post)
			if err := ValidateBlocks(msg.Blocks); err != nil {
				t.Fatalf("ValidateBlocks: %v", err)
			}
			got := marshalGolden(t, msg)
			golden(t, filepath.Join("testdata", "followup_"+tc.name+".golden.json"), got)
			texts := jsonStrings(t, got)
			checkLive(t, texts, nil, nil)
			for n := 1; n <= 5; n++ {
				if !strings.Contains(string(got), `"action_id": "rate_`+string(rune('0'+n))+`"`) {
					t.Errorf("no rate_%d button", n)
				}
			}
		})
	}
}

func TestFollowUpEmailGolden(t *testing.T) {
	h := newSchedHarness(t, schedT0)
	id := h.resolved(triage.SourceEmail, "<m1@example.com>")
	cfg := h.config()
	cfg.RatingLinks = func(id string, n int) string {
		return "https://support.example.com/v1/rate?t=" + id + "&r=" + string(rune('0'+n)) + "&exp=1773878400&sig=…"
	}
	h.clock.Advance(48 * time.Hour)
	h.start(cfg)
	posts := h.customerPosts(id)
	if len(posts) != 1 {
		t.Fatalf("%d follow-ups", len(posts))
	}
	golden(t, filepath.Join("testdata", "followup_email.golden.json"), marshalGolden(t, posts[0]))
}

func TestRatingOf(t *testing.T) {
	cases := map[string]int{"rate_1": 1, "rate_5": 5, "rate_0": 0, "rate_6": 0, "rate_": 0, "rate_12": 0,
		"approve": 0, "rate_a": 0}
	for id, want := range cases {
		got, ok := ratingOf(id)
		if got != want || ok != (want != 0) {
			t.Errorf("ratingOf(%q) = %d, %v", id, got, ok)
		}
	}
}

// ratingHarness is the Slack app with its poster and a scheduler, for the
// customer's side of a follow-up.
type ratingHarness struct {
	*appHarness
	sched *Scheduler
}

// followedUpInSlack takes a customer's Slack message through approval and
// resolution to its follow-up, which the poster posts in the customer's
// thread; it returns the ticket and where the follow-up is.
func followedUpInSlack(t *testing.T) (*ratingHarness, triage.Ticket, slackfake.Message) {
	t.Helper()
	h := newAppHarness(t, harnessOpts{})
	ctx := context.Background()
	tk := h.intake(customerUser, "My parcel never arrived")
	tk = h.drafted(tk.ID)
	if _, err := h.tr.Approve(ctx, tk.ID, agentUser, h.get(tk.ID).DraftVersion, tk.Draft); err != nil {
		t.Fatal(err)
	}
	if _, err := h.tr.Resolve(ctx, tk.ID, agentUser, triage.Resolution{RootCause: "carrier_delay"}, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	poster := NewPoster(h.api, h.store, h.store, storeCustomers{h.store}, fastPosterOpts(slog.New(slog.DiscardHandler)))
	startPoster(t, poster)
	store := &schedStore{Tickets: h.store, memAlerts: &memAlerts{sent: map[string]time.Time{}}}
	s, err := NewScheduler(SchedulerConfig{API: h.api, Store: store, Kicker: poster, OpsChannel: opsChannel,
		Clock: clockwork.NewFakeClockAt(appT0.Add(49 * time.Hour)), FollowUpEnabled: true, FollowUpTemplate: followUpText})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	if err := s.Start(sctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown() })
	var msg slackfake.Message
	h.waitFor("the follow-up in the customer's thread", func() bool {
		for _, m := range h.fake.Messages(intakeChannel) {
			if strings.Contains(string(m.Blocks), `"rate_1"`) {
				msg = m
				return true
			}
		}
		return false
	})
	// The card is drained in its own channel, apart from the follow-up.
	h.waitFor("the card posted", func() bool { return h.get(tk.ID).Slack.TS != "" })
	_, thread, _ := strings.Cut(tk.ReplyTo, "/")
	if msg.ThreadTS != thread {
		t.Errorf("follow-up in thread %q, want the customer's %q", msg.ThreadTS, thread)
	}
	return &ratingHarness{appHarness: h, sched: s}, h.get(tk.ID), msg
}

// clickRating presses a rating button and waits for the ack.
func (h *ratingHarness) clickRating(m slackfake.Message, action, user string) {
	h.t.Helper()
	env, err := h.fake.Click(slackfake.Click{Channel: m.Channel, TS: m.TS, ActionID: action, User: user})
	if err != nil {
		h.t.Fatal(err)
	}
	h.ack(env)
}

func TestLowRatingReopensAndMentionsOwner(t *testing.T) {
	h, tk, msg := followedUpInSlack(t)
	if tk.State != triage.StateFollowedUp {
		t.Fatalf("state %s", tk.State)
	}

	// Someone else in the channel cannot rate for the customer.
	h.clickRating(msg, "rate_5", otherUser)
	h.waitFor("the refusal", func() bool { return len(h.ephemeralsTo(otherUser)) == 1 })
	if !strings.Contains(h.ephemeralsTo(otherUser)[0].Text, "Only the customer") {
		t.Errorf("refusal %q", h.ephemeralsTo(otherUser)[0].Text)
	}
	if got := h.get(tk.ID); got.Rating != 0 || got.State != triage.StateFollowedUp {
		t.Fatalf("another person's click changed the ticket: rating %d state %s", got.Rating, got.State)
	}

	h.clickRating(msg, "rate_1", customerUser)
	h.waitFor("the rating", func() bool { return h.get(tk.ID).Rating == 1 })
	if st := h.get(tk.ID).State; st != triage.StateReopened {
		t.Errorf("state %s after a rating of 1, want reopened", st)
	}
	// The owner is mentioned in the card's thread, by the poster.
	card := h.get(tk.ID).Slack
	h.waitFor("the mention of the owner", func() bool {
		for _, m := range h.fake.Messages(card.Channel) {
			if m.ThreadTS == card.TS && strings.Contains(m.Text, Mention(agentUser)) && strings.Contains(m.Text, "rated 1/5") {
				return true
			}
		}
		return false
	})
	// The follow-up now shows the rating instead of its buttons.
	h.waitFor("the follow-up updated", func() bool {
		m, ok := h.fake.Message(msg.Channel, msg.TS)
		return ok && m.Updates > 0
	})
	m, _ := h.fake.Message(msg.Channel, msg.TS)
	if strings.Contains(string(m.Blocks), "rate_") || !strings.Contains(string(m.Blocks), "You rated us 1/5") {
		t.Errorf("updated follow-up %s", m.Blocks)
	}

	// A second follow-up message (a repost) cannot rate it again.
	again := FollowUpMessage(triage.Post{TicketID: tk.ID, Text: followUpText})
	_, ts, err := h.api.PostMessage(intakeChannel, slack.MsgOptionText(again.Text, false), slack.MsgOptionBlocks(again.Blocks...))
	if err != nil {
		t.Fatal(err)
	}
	h.clickRating(slackfake.Message{Channel: intakeChannel, TS: ts}, "rate_5", customerUser)
	h.waitFor("already recorded", func() bool { return len(h.ephemeralsTo(customerUser)) == 1 })
	if e := h.ephemeralsTo(customerUser)[0]; !strings.Contains(e.Text, "already recorded") {
		t.Errorf("second rating answered %q", e.Text)
	}
	if got := h.get(tk.ID); got.Rating != 1 || countOf(actions(h.appHarness, tk.ID), "rated") != 1 {
		t.Errorf("rating %d, %d rated events after a second click", got.Rating, countOf(actions(h.appHarness, tk.ID), "rated"))
	}
}

func TestHighRatingCloses(t *testing.T) {
	h, tk, msg := followedUpInSlack(t)
	h.clickRating(msg, "rate_5", customerUser)
	h.waitFor("the rating", func() bool { return h.get(tk.ID).Rating == 5 })
	if st := h.get(tk.ID).State; st != triage.StateClosed {
		t.Errorf("state %s after a rating of 5, want closed", st)
	}
	card := h.get(tk.ID).Slack
	var note slackfake.Message
	h.waitFor("the rating in the card's thread", func() bool {
		for _, m := range h.fake.Messages(card.Channel) {
			if m.ThreadTS == card.TS && strings.Contains(m.Text, "rated 5/5") {
				note = m
				return true
			}
		}
		return false
	})
	if strings.Contains(note.Text, "<@") {
		t.Errorf("a good rating mentions someone: %q", note.Text)
	}
	if n := h.sched.Stats().FollowUpsSent; n != 1 {
		t.Errorf("%d follow-ups sent, want 1", n)
	}
}

// TestApprovalThreadSaysWhereTheReplyWent: the approval's thread post says
// what Approve queued: a reply by the ticket's source, or, when it queued
// none (DetailNoReplyRoute), that the agent copies the reply from the card.
// Posts queued before the marker existed go by the source.
func TestApprovalThreadSaysWhereTheReplyWent(t *testing.T) {
	cases := []struct {
		src    triage.Source
		detail string
		want   string
	}{
		{triage.SourceEmail, "reply 182 chars", "reply sent by email"},
		{triage.SourceEmail, triage.DetailNoReplyRoute, "no way back to the customer, copy the reply from the card"},
		{triage.SourceWebhook, "reply 182 chars", "reply sent through the webhook"},
		{triage.SourceWebhook, triage.DetailNoReplyRoute, "no way back to the customer, copy the reply from the card"},
		{triage.SourceSlack, "reply 182 chars", "reply sent in the customer's thread"},
		{triage.SourceManual, "reply 182 chars", "no way back to the customer, copy the reply from the card"},
		{triage.SourceManual, triage.DetailNoReplyRoute, "no way back to the customer, copy the reply from the card"},
	}
	for _, tc := range cases {
		tk := approvedTicket()
		tk.Source = tc.src
		p := triage.Post{Kind: triage.PostThread, TicketID: tk.ID, Action: "approved", Actor: "U0AGENT01", Detail: tc.detail}
		msg := ThreadMessage(p, tk, nil)
		if want := "✅ Approved by <@U0AGENT01>: " + tc.want; !strings.HasPrefix(msg.Text, want) {
			t.Errorf("%s, detail %q: %q, want it to start %q", tc.src, tc.detail, msg.Text, want)
		}
		if strings.Contains(msg.Text, "no reply route") {
			t.Errorf("%s: the marker itself is shown: %q", tc.src, msg.Text)
		}
	}
}

// TestFollowUpWithoutWayBack: a ticket casebot cannot answer gets no
// check-in, whatever its source, and the note asks the agent to check in.
func TestFollowUpWithoutWayBack(t *testing.T) {
	cases := []struct {
		name    string
		src     triage.Source
		replyTo string
		senders map[triage.Source]bool
	}{
		{"webhook without reply URL", triage.SourceWebhook, "", nil},
		{"slack without a thread", triage.SourceSlack, "C0INTAKE", nil},
		{"imported", triage.SourceImport, "", nil},
		{"email without SMTP", triage.SourceEmail, "m1@shop.example", map[triage.Source]bool{triage.SourceSlack: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newSchedHarness(t, schedT0)
			id := h.resolved(tc.src, tc.replyTo)
			h.clock.Advance(49 * time.Hour)
			cfg := h.config()
			cfg.Senders = tc.senders
			h.start(cfg)
			if posts := h.customerPosts(id); len(posts) != 0 {
				t.Errorf("check-in with no way back: %+v", posts)
			}
			if st := h.get(id).State; st != triage.StateFollowedUp {
				t.Errorf("state %s, want followed_up", st)
			}
			notes := h.posts(id, AuditFollowedUp)
			if len(notes) != 2 || !strings.Contains(notes[1].Detail, "check in with them yourself") {
				t.Errorf("thread note %+v", notes)
			}
		})
	}
}

// TestLateRatingInSlack: the rating buttons of a follow-up closed for want
// of an answer still count once (Triager.Rate's rule): 3–5 leaves the
// ticket closed, 1–2 reopens it; a second click is already recorded.
func TestLateRatingInSlack(t *testing.T) {
	cases := []struct {
		action string
		rating int
		want   triage.State
	}{
		{"rate_4", 4, triage.StateClosed},
		{"rate_2", 2, triage.StateReopened},
	}
	for _, tc := range cases {
		t.Run(tc.action, func(t *testing.T) {
			h, tk, msg := followedUpInSlack(t)
			if _, err := h.store.Update(context.Background(), tk.ID, func(x *triage.Ticket) (triage.AuditEvent, error) {
				return triage.AuditEvent{Actor: triage.ActorSystem, Action: AuditClosedNoAnswer}, x.Transition(triage.StateClosed)
			}); err != nil {
				t.Fatal(err)
			}
			h.clickRating(msg, tc.action, customerUser)
			h.waitFor("the late rating", func() bool { return h.get(tk.ID).Rating == tc.rating })
			if st := h.get(tk.ID).State; st != tc.want {
				t.Errorf("state %s, want %s", st, tc.want)
			}
			// The first click took the buttons away; a repost offers them
			// again.
			again := FollowUpMessage(triage.Post{TicketID: tk.ID, Text: followUpText})
			_, ts, err := h.api.PostMessage(intakeChannel, slack.MsgOptionText(again.Text, false), slack.MsgOptionBlocks(again.Blocks...))
			if err != nil {
				t.Fatal(err)
			}
			h.clickRating(slackfake.Message{Channel: intakeChannel, TS: ts}, "rate_5", customerUser)
			h.waitFor("already recorded", func() bool { return len(h.ephemeralsTo(customerUser)) == 1 })
			if e := h.ephemeralsTo(customerUser)[0]; !strings.Contains(e.Text, "already recorded") {
				t.Errorf("second click answered %q", e.Text)
			}
			if got := h.get(tk.ID); got.Rating != tc.rating {
				t.Errorf("rating %d after a second click, want %d", got.Rating, tc.rating)
			}
		})
	}
}

// TestRatingBeforeFollowUp: a rating button clicked on a ticket whose
// follow-up is not recorded (resolved again since) is refused kindly.
func TestRatingBeforeFollowUp(t *testing.T) {
	h, tk, msg := followedUpInSlack(t)
	if _, err := h.store.Update(context.Background(), tk.ID, func(x *triage.Ticket) (triage.AuditEvent, error) {
		x.State, x.FollowUpSentAt = triage.StateResolved, time.Time{}
		return triage.AuditEvent{Actor: "test", Action: "fixture"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	h.clickRating(msg, "rate_5", customerUser)
	h.waitFor("the refusal", func() bool { return len(h.ephemeralsTo(customerUser)) == 1 })
	if e := h.ephemeralsTo(customerUser)[0]; !strings.Contains(e.Text, "no longer waiting") {
		t.Errorf("answered %q", e.Text)
	}
	if got := h.get(tk.ID); got.Rating != 0 || got.State != triage.StateResolved {
		t.Errorf("rating %d state %s, want unrated and resolved", got.Rating, got.State)
	}
}

// TestRatingIsTheTicketAuthors: a customer merged across two Slack users
// keeps the first on its record; the rating of a ticket counts from the
// Slack user it came from, not from the record's first identity.
func TestRatingIsTheTicketAuthors(t *testing.T) {
	h, tk, msg := followedUpInSlack(t)
	const author = "U0SECOND1"
	if _, err := h.store.Update(context.Background(), tk.ID, func(t *triage.Ticket) (triage.AuditEvent, error) {
		t.SlackAuthor = author // as Create records for a second, merged Slack identity
		return triage.AuditEvent{TicketID: t.ID, Actor: triage.ActorSystem, Action: "test", From: t.State, To: t.State}, nil
	}); err != nil {
		t.Fatal(err)
	}
	h.clickRating(msg, "rate_5", customerUser)
	h.waitFor("the refusal", func() bool { return len(h.ephemeralsTo(customerUser)) == 1 })
	if got := h.get(tk.ID); got.Rating != 0 {
		t.Fatalf("the customer record's other Slack identity rated %d", got.Rating)
	}
	h.clickRating(msg, "rate_4", author)
	h.waitFor("the author's rating", func() bool { return h.get(tk.ID).Rating == 4 })
}

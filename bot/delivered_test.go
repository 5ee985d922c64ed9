package bot

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// TestPosterTellsOfDeliveredReplies checks OnDelivered: it hears of each
// customer reply Slack took, at the clock's time, and of nothing else, so
// the first response is taken when a reply left (issue 9).
func TestPosterTellsOfDeliveredReplies(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	ctx := posterCtx(t)
	f, api := posterFake(t, slackfake.Options{PostRate: -1, Channels: []string{"C0QUEUE", "C0INTAKE"}})
	store := newMemStore()
	if _, err := f.SendMessage(slackfake.UserMessage{Channel: "C0INTAKE", User: "U0JANE", Text: "my blender arrived cracked"}); err != nil {
		t.Fatal(err)
	}
	original := f.Messages("C0INTAKE")[0].TS
	tk := refundTicket()
	store.put(tk, cardPost(tk))
	store.put(tk, auditPosts(tk.ID, "approved", "U0AGENT01", "", triage.PostThread)...)
	store.put(tk, triage.Post{Kind: triage.PostCustomerReply, TicketID: tk.ID, Channel: "C0INTAKE",
		ThreadTS: original, Action: triage.ActionReply, Actor: "U0AGENT01", Text: "Refunded.", CreatedAt: t0})
	clock := triagetest.NewClock(t0.Add(time.Hour))
	log, _ := captureLog()
	opts := fastPosterOpts(log)
	opts.Clock = clock
	var mu sync.Mutex
	type delivery struct {
		post triage.Post
		at   time.Time
	}
	var told []delivery
	opts.OnDelivered = func(p triage.Post, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, delivery{p, at})
	}
	startPoster(t, NewPoster(api, store, store, store, opts))
	pollUntil(t, ctx, "outbox empty", outboxEmpty(store))
	if n := len(f.Messages("C0INTAKE")); n != 2 {
		t.Fatalf("C0INTAKE holds %d messages, want the reply", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 1 || told[0].post.Kind != triage.PostCustomerReply || told[0].post.TicketID != tk.ID ||
		!told[0].at.Equal(clock.Now()) {
		t.Errorf("OnDelivered told of %+v, want the customer reply once at %v", told, clock.Now())
	}
}

// TestMarkSentClick: an approved reply with no way back to the customer is
// no first response until the agent marks it sent on the card; a second
// click explains and changes nothing (issue 9).
func TestMarkSentClick(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	tk := h.intake(customerUser, "My parcel for order 1001 hasn't arrived yet, can you check?")
	// No thread to answer in: the reply is sent by hand.
	h.change(tk.ID, func(t *triage.Ticket) { t.ReplyTo = "" })
	tk = h.drafted(tk.ID)
	h.click(tk.ID, ActionApprove, agentUser)
	h.waitFor("replied", func() bool { return h.get(tk.ID).State == triage.StateReplied })
	if got := h.get(tk.ID); got.ReplyQueued || !got.FirstResponseAt.IsZero() || !triage.AwaitsHandSend(got) {
		t.Fatalf("after approve: queued %v, first response %v", got.ReplyQueued, got.FirstResponseAt)
	}
	h.clock.Advance(7 * time.Minute)
	channel, ts := h.postCard(tk.ID)
	click := func() {
		t.Helper()
		env, err := h.fake.Click(slackfake.Click{Channel: channel, TS: ts, ActionID: ActionMarkSent, User: agentUser})
		if err != nil {
			t.Fatal(err)
		}
		h.ack(env)
	}
	click()
	h.waitFor("marked sent", func() bool { return !h.get(tk.ID).FirstResponseAt.IsZero() })
	if got := h.get(tk.ID); !got.FirstResponseAt.Equal(h.clock.Now()) || !got.ReplySentAt.Equal(h.clock.Now()) {
		t.Errorf("first response %v, reply sent %v, want %v", got.FirstResponseAt, got.ReplySentAt, h.clock.Now())
	}
	// The same card clicked again, before its update arrived.
	click()
	h.waitFor("the second click answered", func() bool { return len(h.ephemeralsTo(agentUser)) == 1 })
	if e := h.ephemeralsTo(agentUser); !strings.Contains(e[0].Text, "no reply waiting to be sent by hand") {
		t.Errorf("second click told %q", e[0].Text)
	}
}

package bot

import (
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

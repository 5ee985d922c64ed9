package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
)

// memStore is an in-memory outbox, ticket and customer store with the
// outbox contract of the bbolt store: posts get IDs in enqueue order, an
// empty channel is the ticket's routed channel, and Done of a card records
// where it was posted on the ticket.
type memStore struct {
	mu        sync.Mutex
	tickets   map[string]triage.Ticket
	customers map[string]triage.Customer
	posts     []triage.Post
	seq       int
}

func newMemStore() *memStore {
	return &memStore{tickets: map[string]triage.Ticket{}, customers: map[string]triage.Customer{}}
}

// put stores a ticket (replacing it) and enqueues posts about it.
func (s *memStore) put(t triage.Ticket, posts ...triage.Post) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tickets[t.ID] = t
	s.enqueue(posts)
}

// change applies fn to a stored ticket and enqueues posts about it, as a
// store update with its audit event does.
func (s *memStore) change(id string, fn func(*triage.Ticket), posts ...triage.Post) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tickets[id]
	fn(&t)
	s.tickets[id] = t
	s.enqueue(posts)
}

func (s *memStore) enqueue(posts []triage.Post) {
	for _, p := range posts {
		if p.Channel == "" {
			p.Channel = s.tickets[p.TicketID].Route.Channel
		}
		s.seq++
		p.ID = fmt.Sprintf("P%04d", s.seq)
		s.posts = append(s.posts, p)
	}
}

func (s *memStore) ticket(id string) triage.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tickets[id]
}

func (s *memStore) pending() []triage.Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.posts)
}

func (s *memStore) Enqueue(_ context.Context, posts ...triage.Post) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enqueue(posts)
	return nil
}

func (s *memStore) Channels(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.posts {
		if !slices.Contains(out, p.Channel) {
			out = append(out, p.Channel)
		}
	}
	return out, nil
}

func (s *memStore) Pending(_ context.Context, channel string, n int) ([]triage.Post, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []triage.Post
	for _, p := range s.posts {
		if p.Channel == channel && len(out) < n {
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *memStore) Done(_ context.Context, p triage.Post, ref triage.SlackRef) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.posts, func(q triage.Post) bool { return q.ID == p.ID })
	if i < 0 {
		return fmt.Errorf("done %s: %w", p.ID, triage.ErrNotFound)
	}
	if p.Kind == triage.PostCard {
		t := s.tickets[p.TicketID]
		t.Slack = ref
		s.tickets[p.TicketID] = t
	}
	s.posts = slices.Delete(s.posts, i, i+1)
	return nil
}

func (s *memStore) Retry(_ context.Context, p triage.Post) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.posts, func(q triage.Post) bool { return q.ID == p.ID })
	if i < 0 {
		return fmt.Errorf("retry %s: %w", p.ID, triage.ErrNotFound)
	}
	s.posts[i].Attempts++
	return nil
}

func (s *memStore) Get(_ context.Context, id string) (triage.Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tickets[id]
	if !ok {
		return triage.Ticket{}, fmt.Errorf("ticket %s: %w", id, triage.ErrNotFound)
	}
	return t, nil
}

func (s *memStore) Customer(_ context.Context, id string) (triage.Customer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok {
		return triage.Customer{}, fmt.Errorf("customer %s: %w", id, triage.ErrNotFound)
	}
	return c, nil
}

// flakyDone is an outbox whose Done fails as told: the process dying
// between a successful post and its Done.
type flakyDone struct {
	*memStore
	// fail is called before each Done; a non-nil error fails it.
	fail func(ctx context.Context, p triage.Post) error
}

func (f *flakyDone) Done(ctx context.Context, p triage.Post, ref triage.SlackRef) error {
	if err := f.fail(ctx, p); err != nil {
		return err
	}
	return f.memStore.Done(ctx, p, ref)
}

// posterCtx bounds a test's waits generously; they only matter when
// something is broken.
func posterCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func posterFake(t testing.TB, opts slackfake.Options) (*slackfake.Fake, *slack.Client) {
	f := slackfake.New(opts)
	t.Cleanup(f.Close)
	return f, slack.New(f.BotToken(), slack.OptionAPIURL(f.APIURL()))
}

// fastPosterOpts are poster options for tests: no pacing beyond the fake's own
// limit and short back-offs.
func fastPosterOpts(log *slog.Logger) PosterOptions {
	return PosterOptions{PerChannelInterval: time.Millisecond, Backoff: 5 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, MaxAttempts: 3, Logger: log}
}

// startPoster runs p until the test ends or the returned stop is called;
// stop waits for Run to return.
func startPoster(t testing.TB, p *Poster) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not stop after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// pollUntil polls cond until it holds or ctx ends.
func pollUntil(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// outboxEmpty reports whether no post waits for Slack; outbound posts wait
// for other senders.
func outboxEmpty(s *memStore) func() bool {
	return func() bool {
		return !slices.ContainsFunc(s.pending(), func(p triage.Post) bool {
			return !strings.HasPrefix(p.Channel, triage.OutboundPrefix)
		})
	}
}

// syncBuffer is a buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// captureLog returns a logger writing to a buffer the test can read.
func captureLog() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// cardPost is the post triage enqueues for a new ticket.
func cardPost(t triage.Ticket) triage.Post {
	return triage.Post{Kind: triage.PostCard, TicketID: t.ID, Channel: t.Route.Channel, CreatedAt: t.ReceivedAt}
}

// auditPosts is the posts triage attaches to an action's audit event.
func auditPosts(ticketID, action, actor, detail string, kinds ...triage.PostKind) []triage.Post {
	var out []triage.Post
	for _, k := range kinds {
		out = append(out, triage.Post{Kind: k, TicketID: ticketID, Action: action, Actor: actor, Detail: detail,
			CreatedAt: at.Add(time.Hour)})
	}
	return out
}

// postIDs returns the post_id metadata of each of a channel's messages, in
// order, with "" for messages without it.
func postIDs(t testing.TB, msgs []slackfake.Message) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		var meta slack.SlackMetadata
		if m.Metadata != nil {
			if err := json.Unmarshal(m.Metadata, &meta); err != nil {
				t.Fatalf("metadata of %s: %v", m.TS, err)
			}
		}
		id, _ := meta.EventPayload["post_id"].(string)
		out = append(out, id)
	}
	return out
}

// callTexts returns every string in the text and blocks of the recorded
// chat calls.
func callTexts(t *testing.T, f *slackfake.Fake) []string {
	t.Helper()
	var out []string
	for _, method := range []string{"chat.postMessage", "chat.update"} {
		for _, c := range f.Calls(method) {
			out = append(out, c.Param("text"))
			if b := c.Param("blocks"); b != "" {
				out = append(out, jsonStrings(t, []byte(b))...)
			}
		}
	}
	return out
}

func TestPosterCardUpdateThreadAndReply(t *testing.T) {
	ctx := posterCtx(t)
	f, api := posterFake(t, slackfake.Options{PostRate: -1})
	store := newMemStore()
	store.customers[jane.ID] = jane
	log, _ := captureLog()
	p := NewPoster(api, store, store, store, fastPosterOpts(log))
	startPoster(t, p)

	// The customer wrote in a Slack intake channel.
	if _, err := f.SendMessage(slackfake.UserMessage{Channel: "C0INTAKE", User: "U0JANE", Text: "my blender arrived cracked"}); err != nil {
		t.Fatal(err)
	}
	original := f.Messages("C0INTAKE")[0].TS

	tk := refundTicket()
	tk.CustomerID, tk.Source, tk.ReplyTo = jane.ID, triage.SourceSlack, "C0INTAKE/"+original
	store.put(tk, cardPost(tk))
	// An email reply of another ticket waits for the email sender.
	outbound := triage.Post{Kind: triage.PostCustomerReply, TicketID: tk.ID, Channel: triage.OutboundChannel(triage.SourceEmail),
		ThreadTS: "<msg-1@example.com>", Text: "Hello"}
	store.put(tk, outbound)
	p.Kick()
	pollUntil(t, ctx, "card posted", outboxEmpty(store))

	cards := f.Messages("C0QUEUE")
	if len(cards) != 1 {
		t.Fatalf("%d messages in C0QUEUE, want the card", len(cards))
	}
	card := cards[0]
	if got := store.ticket(tk.ID).Slack; got != (triage.SlackRef{Channel: "C0QUEUE", TS: card.TS}) {
		t.Errorf("ticket's card ref %+v, want C0QUEUE/%s", got, card.TS)
	}
	call := f.Calls("chat.postMessage")[0]
	for param, want := range map[string]string{"unfurl_links": "false", "unfurl_media": "false", "parse": "none", "link_names": "false"} {
		if got := call.Param(param); got != want {
			t.Errorf("chat.postMessage %s=%q, want %q", param, got, want)
		}
	}
	var meta slack.SlackMetadata
	if err := json.Unmarshal(card.Metadata, &meta); err != nil || meta.EventType != MetadataEventType ||
		meta.EventPayload["ticket_id"] != tk.ID || meta.EventPayload["post_id"] == "" {
		t.Errorf("card metadata %s (%v), want %s with post and ticket IDs", card.Metadata, err, MetadataEventType)
	}

	// An agent approves: the card is updated, the thread told, the customer
	// answered in their own thread.
	reply := "Hi Jane, refunded & sorry!"
	posts := auditPosts(tk.ID, "approved", "U0AGENT01", "reply 26 chars", triage.PostCardUpdate, triage.PostThread)
	posts = append(posts, triage.Post{Kind: triage.PostCustomerReply, TicketID: tk.ID, Channel: "C0INTAKE",
		ThreadTS: original, Actor: "U0AGENT01", Text: reply, CreatedAt: at.Add(time.Hour)})
	store.change(tk.ID, func(t *triage.Ticket) {
		t.State, t.Sent, t.Reviewed, t.Assignee = triage.StateReplied, reply, true, "U0AGENT01"
		t.ReplyQueued = true
	}, posts...)
	p.Kick()
	pollUntil(t, ctx, "approval posted", outboxEmpty(store))

	updated, _ := f.Message("C0QUEUE", card.TS)
	if updated.Updates != 1 {
		t.Errorf("card updated %d times, want 1", updated.Updates)
	}
	blocks := strings.Join(jsonStrings(t, updated.Blocks), "\n")
	for _, want := range []string{"✅ Approved and sent by <@U0AGENT01> · 2026-03-02 15:05 UTC", "Resolve", "*Sent reply*\n" + "Hi Jane, refunded &amp; sorry!"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("updated card lacks %q:\n%s", want, blocks)
		}
	}
	msgs := f.Messages("C0QUEUE")
	if len(msgs) != 2 || msgs[1].ThreadTS != card.TS {
		t.Fatalf("C0QUEUE has %d messages (want card and a thread reply to it): %+v", len(msgs), msgs)
	}
	if want := "✅ Approved by <@U0AGENT01>: reply sent in the customer's thread"; !strings.HasPrefix(msgs[1].Text, want) {
		t.Errorf("thread reply %q, want it to start with %q", msgs[1].Text, want)
	}
	intake := f.Messages("C0INTAKE")
	if len(intake) != 2 || intake[1].ThreadTS != original || intake[1].Text != "Hi Jane, refunded &amp; sorry!" {
		t.Errorf("customer thread %+v, want the escaped reply in thread %s", intake, original)
	}
	if s := p.Stats(); s.Posted != 4 || s.Failed != 0 || s.Dropped != 0 || s.RateLimited != 0 {
		t.Errorf("stats %+v, want 4 posted and nothing else", s)
	}
	if left := store.pending(); len(left) != 1 || left[0].Channel != outbound.Channel {
		t.Errorf("pending %+v, want only the outbound email reply", left)
	}
	for _, c := range f.Calls("") {
		if strings.HasPrefix(c.Param("channel"), triage.OutboundPrefix) {
			t.Errorf("%s to outbound channel %s", c.Method, c.Param("channel"))
		}
	}
}

func TestPosterEscalationMentions(t *testing.T) {
	ctx := posterCtx(t)
	f, api := posterFake(t, slackfake.Options{PostRate: -1})
	store := newMemStore()
	log, _ := captureLog()
	p := NewPoster(api, store, store, store, fastPosterOpts(log))
	startPoster(t, p)

	tk := refundTicket()
	store.put(tk, cardPost(tk))
	posts := auditPosts(tk.ID, "escalated", "U0AGENT01", "Chargeback threatened", triage.PostCardUpdate, triage.PostThread, triage.PostEscalation)
	posts[1].Mentions, posts[2].Mentions, posts[2].Channel = []string{"U0OWNER01"}, []string{"U0OWNER01"}, "C0ESCALATE"
	store.change(tk.ID, func(t *triage.Ticket) {
		t.State, t.Assignee, t.Reviewed = triage.StateEscalated, "U0OWNER01", true
	}, posts...)
	p.Kick()
	pollUntil(t, ctx, "escalation posted", outboxEmpty(store))

	queue := f.Messages("C0QUEUE")
	if len(queue) != 2 {
		t.Fatalf("C0QUEUE has %d messages, want card and thread reply", len(queue))
	}
	if want := "⚠️ Escalated by <@U0AGENT01> to <@U0OWNER01>"; !strings.HasPrefix(queue[1].Text, want) || queue[1].ThreadTS != queue[0].TS {
		t.Errorf("thread reply %q in thread %q, want %q… in %s", queue[1].Text, queue[1].ThreadTS, want, queue[0].TS)
	}
	esc := f.Messages("C0ESCALATE")
	if len(esc) != 1 || esc[0].ThreadTS != "" {
		t.Fatalf("C0ESCALATE has %+v, want one top-level message", esc)
	}
	if want := "🚨 <@U0OWNER01>: ticket `T-0001` in <#C0QUEUE> was escalated by <@U0AGENT01>"; !strings.HasPrefix(esc[0].Text, want) ||
		!strings.Contains(esc[0].Text, "> Chargeback threatened") {
		t.Errorf("escalation %q, want %q… with the reason", esc[0].Text, want)
	}
}

// TestPosterHostileText sends every post kind about a ticket whose customer
// and agent text is hostile, and checks that no recorded call carries a
// mention or link other than the agent and the owner.
func TestPosterHostileText(t *testing.T) {
	ctx := posterCtx(t)
	f, api := posterFake(t, slackfake.Options{PostRate: -1})
	store := newMemStore()
	log, _ := captureLog()
	p := NewPoster(api, store, store, store, fastPosterOpts(log))
	startPoster(t, p)

	if _, err := f.SendMessage(slackfake.UserMessage{Channel: "C0INTAKE", User: "U0MALLORY", Text: hostileText}); err != nil {
		t.Fatal(err)
	}
	original := f.Messages("C0INTAKE")[0].TS
	tk, _ := hostile(hostileText)
	tk.Source, tk.ReplyTo, tk.Route.Mentions = triage.SourceSlack, "C0INTAKE/"+original, []string{"U0OWNER01"}
	tk.Entries = []triage.Entry{{At: at.Add(time.Hour), Author: "<@U123>", Body: hostileText}}
	store.customers[tk.CustomerID] = triage.Customer{ID: tk.CustomerID, Name: hostileText, Email: "<mailto:x@evil.example|boss>"}
	store.put(tk, cardPost(tk))

	var posts []triage.Post
	posts = append(posts, auditPosts(tk.ID, "approved", "U0AGENT01", hostileText, triage.PostCardUpdate, triage.PostThread)...)
	posts = append(posts, triage.Post{Kind: triage.PostCustomerReply, TicketID: tk.ID, Channel: "C0INTAKE",
		ThreadTS: original, Actor: "U0AGENT01", Text: hostileText})
	esc := auditPosts(tk.ID, "escalated", "U0AGENT01", hostileText, triage.PostCardUpdate, triage.PostThread, triage.PostEscalation)
	esc[1].Mentions, esc[2].Mentions, esc[2].Channel = []string{"U0OWNER01", "<!channel>"}, []string{"U0OWNER01", "!here"}, "C0ESCALATE"
	posts = append(posts, esc...)
	posts = append(posts, auditPosts(tk.ID, "customer_wrote", triage.ActorCustomer, hostileText, triage.PostThread)...)
	posts = append(posts, auditPosts(tk.ID, "<!channel>", "<@U123>", hostileText, triage.PostThread)...)
	store.change(tk.ID, func(t *triage.Ticket) {
		t.State, t.Sent, t.Assignee = triage.StateEscalated, hostileText, "U0OWNER01"
		t.ResolutionNote, t.RootCause = hostileText, hostileText
	}, posts...)
	p.Kick()
	pollUntil(t, ctx, "hostile posts outboxEmpty", outboxEmpty(store))

	if s := p.Stats(); s.Posted != 9 || s.Dropped != 0 {
		t.Fatalf("stats %+v, want 9 posted (card, 2 updates, 4 thread, reply, escalation), none dropped", s)
	}
	texts := callTexts(t, f)
	checkLive(t, texts, []string{"U0AGENT01", "U0OWNER01", "U0LEGAL01", "U0SAFETY1", "S0REFUNDS"}, []string{tk.Route.Channel})
	all := strings.Join(texts, "\n")
	for _, bad := range []string{"<!channel>", "<!here>", "<@U123>", "<!subteam^S1>", "<http", "<mailto", "<#C0SECRET>"} {
		if strings.Contains(all, bad) {
			t.Errorf("a posted message holds %q", bad)
		}
	}
	if !strings.Contains(all, "&lt;http://evil.example|click&gt;") {
		t.Errorf("hostile link not shown escaped")
	}
}

// TestPosterRateLimitStorm posts faster than the fake allows: every 429 is
// waited out and every card lands exactly once, in order.
func TestPosterRateLimitStorm(t *testing.T) {
	ctx := posterCtx(t)
	f, api := posterFake(t, slackfake.Options{PostRate: 4, Burst: 1})
	store := newMemStore()
	channels := []string{"C0A", "C0B", "C0C"}
	var want = map[string][]string{}
	for i := range 12 {
		tk := refundTicket()
		tk.ID = fmt.Sprintf("T-%04d", i)
		tk.Route.Channel = channels[i%len(channels)]
		store.put(tk, cardPost(tk))
	}
	for _, p := range store.pending() {
		want[p.Channel] = append(want[p.Channel], p.ID)
	}
	log, _ := captureLog()
	p := NewPoster(api, store, store, store, fastPosterOpts(log))
	startPoster(t, p)
	pollUntil(t, ctx, "all cards posted", outboxEmpty(store))

	for _, ch := range channels {
		if got := postIDs(t, f.Messages(ch)); !slices.Equal(got, want[ch]) {
			t.Errorf("%s holds posts %v, want %v once each, in order", ch, got, want[ch])
		}
	}
	s := p.Stats()
	if f.RateLimited() == 0 || int64(f.RateLimited()) != s.RateLimited {
		t.Errorf("fake answered %d 429s, poster counted %d; want the same, more than 0", f.RateLimited(), s.RateLimited)
	}
	// Waiting out Retry-After leaves a token for the retry: at most one 429
	// per post. Retrying sooner would collect many.
	if s.RateLimited > 12 {
		t.Errorf("%d 429s for 12 posts: Retry-After not honoured", s.RateLimited)
	}
	if s.Posted != 12 || s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("stats %+v, want 12 posted, no failures", s)
	}
}

func TestPoster5xxRetried(t *testing.T) {
	ctx := posterCtx(t)
	f, api := posterFake(t, slackfake.Options{PostRate: -1})
	f.FailNext("chat.postMessage", http.StatusServiceUnavailable)
	f.FailNext("chat.postMessage", http.StatusBadGateway)
	store := newMemStore()
	tk := refundTicket()
	store.put(tk, cardPost(tk))
	log, _ := captureLog()
	p := NewPoster(api, store, store, store, fastPosterOpts(log))
	startPoster(t, p)
	pollUntil(t, ctx, "card posted", outboxEmpty(store))

	if got := postIDs(t, f.Messages("C0QUEUE")); len(got) != 1 {
		t.Errorf("C0QUEUE holds %v, want one card", got)
	}
	if s := p.Stats(); s.Failed != 2 || s.Posted != 1 {
		t.Errorf("stats %+v, want 2 failures then 1 post", s)
	}
	// The first post of the channel and each retry after a 5xx look for the
	// card first: the 5xx may have come after Slack took it.
	if n := len(f.Calls("conversations.history")); n != 3 {
		t.Errorf("%d history look-ups, want 3", n)
	}
}

// TestPosterThreadReplyOnce: a thread reply or customer reply whose post
// Slack stored but answered with a 5xx is found in its thread, not posted
// again.
func TestPosterThreadReplyOnce(t *testing.T) {
	tests := []struct {
		name    string
		kind    triage.PostKind
		channel string
	}{
		{"thread reply", triage.PostThread, "C0QUEUE"},
		{"customer reply", triage.PostCustomerReply, "C0INTAKE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := posterCtx(t)
			f, api := posterFake(t, slackfake.Options{PostRate: -1})
			_, cardTS, err := api.PostMessageContext(ctx, "C0QUEUE", slack.MsgOptionText("card", false))
			if err != nil {
				t.Fatal(err)
			}
			_, original, err := api.PostMessageContext(ctx, "C0INTAKE", slack.MsgOptionText("customer", false))
			if err != nil {
				t.Fatal(err)
			}
			// Earlier replies in the thread, to be read past.
			for i := range 3 {
				if _, _, err := api.PostMessageContext(ctx, tc.channel, slack.MsgOptionText(fmt.Sprint("earlier ", i), false),
					slack.MsgOptionTS(map[string]string{"C0QUEUE": cardTS, "C0INTAKE": original}[tc.channel])); err != nil {
					t.Fatal(err)
				}
			}
			store := newMemStore()
			tk := refundTicket()
			tk.Source, tk.ReplyTo, tk.Slack = triage.SourceSlack, "C0INTAKE/"+original, triage.SlackRef{Channel: "C0QUEUE", TS: cardTS}
			tk.State, tk.Sent = triage.StateReplied, "Refunded, sorry!"
			post := auditPosts(tk.ID, "approved", "U0AGENT01", "reply 16 chars", triage.PostThread)[0]
			if tc.kind == triage.PostCustomerReply {
				post = triage.Post{Kind: triage.PostCustomerReply, TicketID: tk.ID, Channel: "C0INTAKE", ThreadTS: original,
					Actor: "U0AGENT01", Text: tk.Sent}
			}
			store.put(tk, post)
			f.FailAfterNext("chat.postMessage", http.StatusGatewayTimeout)
			log, _ := captureLog()
			p := NewPoster(api, store, store, store, fastPosterOpts(log))
			startPoster(t, p)
			pollUntil(t, ctx, "reply delivered", outboxEmpty(store))

			ids := postIDs(t, f.Messages(tc.channel))
			if n := countOf(ids, "P0001"); n != 1 {
				t.Errorf("%s holds post P0001 %d times (%v), want once", tc.channel, n, ids)
			}
			if s := p.Stats(); s.Failed != 1 || s.Recovered != 1 || s.Posted != 0 {
				t.Errorf("stats %+v, want one failure, then the reply recovered from its thread", s)
			}
			// Once before the first attempt (nothing is known after start),
			// once after the 5xx.
			if n := len(f.Calls("conversations.replies")); n != 2 {
				t.Errorf("%d thread look-ups, want 2", n)
			}
		})
	}
}

// TestPosterRestart covers the process dying, or the outbox failing, between
// a successful chat.postMessage and its Done: no card is posted twice.
func TestPosterRestart(t *testing.T) {
	tests := []struct {
		name string
		// restart runs a second poster after the first stops.
		restart bool
	}{
		{name: "done fails once, same process", restart: false},
		{name: "crash after post, new process", restart: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := posterCtx(t)
			f, api := posterFake(t, slackfake.Options{PostRate: -1})
			store := newMemStore()
			for i := range 6 {
				tk := refundTicket()
				tk.ID = fmt.Sprintf("T-%04d", i)
				tk.Route.Channel = []string{"C0A", "C0B"}[i%2]
				store.put(tk, cardPost(tk))
			}
			want := map[string][]string{}
			for _, p := range store.pending() {
				want[p.Channel] = append(want[p.Channel], p.ID)
			}
			log, _ := captureLog()

			var mu sync.Mutex
			failed := map[string]bool{}
			crashed := false
			// frozen counts the channels stuck in Done after the crash.
			frozen := make(chan struct{}, len(want))
			outbox := &flakyDone{memStore: store, fail: func(ctx context.Context, p triage.Post) error {
				mu.Lock()
				// The third card of each channel is posted but not marked.
				third := p.ID == want[p.Channel][2] && !failed[p.ID]
				if third {
					failed[p.ID] = true
				}
				crashed = crashed || (third && tc.restart)
				dead := crashed
				mu.Unlock()
				if dead {
					// The process is gone: nothing is marked done any more,
					// and this channel does nothing further.
					frozen <- struct{}{}
					<-ctx.Done()
					return ctx.Err()
				}
				if third {
					return errors.New("disk full")
				}
				return nil
			}}
			first := NewPoster(api, outbox, store, store, fastPosterOpts(log))
			stop := startPoster(t, first)
			if tc.restart {
				// Stop once every channel is stuck after a post, so that no
				// request is in flight when the second poster starts.
				for range want {
					select {
					case <-frozen:
					case <-ctx.Done():
						t.Fatal("channels did not stop at the crash")
					}
				}
				stop()
				if len(store.pending()) == 0 {
					t.Fatal("the crash left nothing pending")
				}
				second := NewPoster(api, store, store, store, fastPosterOpts(log))
				startPoster(t, second)
				pollUntil(t, ctx, "second poster drains", outboxEmpty(store))
				if s := second.Stats(); s.Recovered == 0 {
					t.Errorf("second poster stats %+v, want a card recovered from history", s)
				}
			}
			pollUntil(t, ctx, "all cards posted", outboxEmpty(store))

			for ch, ids := range want {
				msgs := f.Messages(ch)
				if got := postIDs(t, msgs); !slices.Equal(got, ids) {
					t.Errorf("%s holds posts %v, want %v once each", ch, got, ids)
				}
				for i, m := range msgs {
					tk := store.ticket(fmt.Sprintf("T-%04d", slices.Index([]string{"C0A", "C0B"}, ch)+2*i))
					if tk.Slack != (triage.SlackRef{Channel: ch, TS: m.TS}) {
						t.Errorf("ticket %s card ref %+v, want %s/%s", tk.ID, tk.Slack, ch, m.TS)
					}
				}
			}
		})
	}
}

// keepingDone is an outbox whose Done reports success the first time for
// each post without removing it, as a store that loses a write would.
type keepingDone struct {
	*memStore
	mu    sync.Mutex
	calls map[string]int
}

func (k *keepingDone) Done(ctx context.Context, p triage.Post, ref triage.SlackRef) error {
	k.mu.Lock()
	k.calls[p.ID]++
	n := k.calls[p.ID]
	k.mu.Unlock()
	if n == 1 {
		return nil
	}
	return k.memStore.Done(ctx, p, ref)
}

// TestPosterNeverRepostsKeptPost checks that a post the outbox hands back
// after its Done is marked done again, not posted again.
func TestPosterNeverRepostsKeptPost(t *testing.T) {
	ctx := posterCtx(t)
	f, api := posterFake(t, slackfake.Options{PostRate: -1})
	store := newMemStore()
	for i := range 3 {
		tk := refundTicket()
		tk.ID = fmt.Sprintf("T-%d", i)
		store.put(tk, cardPost(tk))
	}
	outbox := &keepingDone{memStore: store, calls: map[string]int{}}
	log, logs := captureLog()
	p := NewPoster(api, outbox, store, store, fastPosterOpts(log))
	startPoster(t, p)
	pollUntil(t, ctx, "outbox drained", outboxEmpty(store))

	if got := postIDs(t, f.Messages("C0QUEUE")); !slices.Equal(got, []string{"P0001", "P0002", "P0003"}) {
		t.Errorf("C0QUEUE holds posts %v, want each once", got)
	}
	for id, n := range outbox.calls {
		if n != 2 {
			t.Errorf("post %s marked done %d times, want 2", id, n)
		}
	}
	if !strings.Contains(logs.String(), "outbox kept a delivered post") {
		t.Errorf("no warning logged:\n%s", logs)
	}
}

func TestPosterDropsUndeliverable(t *testing.T) {
	ctx := posterCtx(t)
	f, api := posterFake(t, slackfake.Options{PostRate: -1, Channels: []string{"C0QUEUE"}})
	store := newMemStore()
	gone := refundTicket()
	gone.ID, gone.Route.Channel = "T-GONE", "C0ARCHIVED"
	store.put(gone, cardPost(gone))
	store.put(gone, auditPosts(gone.ID, "approved", "U0AGENT01", "", triage.PostCardUpdate, triage.PostThread)...)
	ok := refundTicket()
	store.put(ok, cardPost(ok))
	store.put(ok, triage.Post{Kind: triage.PostThread, TicketID: "T-ERASED", Channel: "C0QUEUE", Action: "approved"})
	store.put(ok, triage.Post{Kind: "telegram", TicketID: ok.ID, Channel: "C0QUEUE"})
	store.put(ok, auditPosts(ok.ID, "approved", "U0AGENT01", "", triage.PostThread)...)
	log, logs := captureLog()
	opts := fastPosterOpts(log)
	type drop struct {
		ticket   string
		kind     triage.PostKind
		notFound bool
		err      string
	}
	var mu sync.Mutex
	var dropped []drop
	opts.OnDropped = func(post triage.Post, err error) {
		mu.Lock()
		defer mu.Unlock()
		dropped = append(dropped, drop{post.TicketID, post.Kind, errors.Is(err, triage.ErrNotFound), err.Error()})
	}
	p := NewPoster(api, store, store, store, opts)
	startPoster(t, p)
	pollUntil(t, ctx, "outbox outboxEmpty", outboxEmpty(store))

	if msgs := f.Messages("C0QUEUE"); len(msgs) != 2 || msgs[1].ThreadTS != msgs[0].TS {
		t.Errorf("C0QUEUE holds %+v, want the card and its thread reply", msgs)
	}
	if n := len(f.Calls("chat.postMessage")); n != 3+2 {
		t.Errorf("%d chat.postMessage calls, want 3 refused attempts and 2 posts", n)
	}
	if n := len(f.Calls("chat.update")); n != 0 {
		t.Errorf("%d chat.update calls for a card never posted", n)
	}
	if s := p.Stats(); s.Dropped != 3 || s.Failed != 3 || s.Posted != 2 {
		t.Errorf("stats %+v, want 3 dropped (card, unknown ticket, unknown kind) after 3 failures, 2 posted", s)
	}
	out := logs.String()
	for _, want := range []string{"channel_not_found", "T-ERASED", "telegram", "card not posted"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, `msg="dropping post"`) != 3 {
		t.Errorf("want 3 dropping post lines:\n%s", out)
	}
	// The hook hears of each drop with its reason; channels drain apart, so
	// in no set order between them.
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(dropped, func(a, b drop) int { return strings.Compare(a.ticket+string(a.kind), b.ticket+string(b.kind)) })
	wants := []struct {
		ticket, kind string
		notFound     bool
		reason       string
	}{
		{ok.ID, "telegram", false, "telegram"},
		{"T-ERASED", "thread", true, "T-ERASED"},
		{"T-GONE", "card", false, "channel_not_found"},
	}
	if len(dropped) != len(wants) {
		t.Fatalf("OnDropped told of %+v, want %d drops", dropped, len(wants))
	}
	for i, w := range wants {
		d := dropped[i]
		if d.ticket != w.ticket || string(d.kind) != w.kind || d.notFound != w.notFound || !strings.Contains(d.err, w.reason) {
			t.Errorf("drop %d = %+v, want %+v", i, d, w)
		}
	}
}

// TestPosterStopsWhileRateLimited checks that cancelling Run ends a
// Retry-After wait, leaving the post pending.
func TestPosterStopsWhileRateLimited(t *testing.T) {
	ctx := posterCtx(t)
	f, api := posterFake(t, slackfake.Options{PostRate: 0.01, Burst: 1})
	store := newMemStore()
	for i := range 2 {
		tk := refundTicket()
		tk.ID = fmt.Sprintf("T-%d", i)
		store.put(tk, cardPost(tk))
	}
	log, _ := captureLog()
	p := NewPoster(api, store, store, store, fastPosterOpts(log))
	stop := startPoster(t, p)
	pollUntil(t, ctx, "a 429", func() bool { return f.RateLimited() > 0 })
	stop()
	if n := len(store.pending()); n != 1 {
		t.Errorf("%d posts pending after stop, want the rate-limited one", n)
	}
}

func TestBackoff(t *testing.T) {
	p := NewPoster(nil, nil, nil, nil, PosterOptions{Backoff: time.Second})
	tests := []struct {
		attempts int
		base     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {7, time.Minute}, {60, time.Minute}}
	for _, tc := range tests {
		for range 20 {
			got := p.backoff(tc.attempts)
			if lo, hi := tc.base*8/10, tc.base*12/10; got < lo || got > hi {
				t.Errorf("backoff(%d) = %v, want within [%v, %v]", tc.attempts, got, lo, hi)
			}
		}
	}
}

func TestErrorClasses(t *testing.T) {
	tests := []struct {
		name               string
		err                error
		permanent, unknown bool
	}{
		{"refused blocks", slack.SlackErrorResponse{Err: "invalid_blocks"}, true, false},
		{"not in channel", fmt.Errorf("post: %w", slack.SlackErrorResponse{Err: "not_in_channel"}), true, false},
		{"bad token", slack.SlackErrorResponse{Err: "invalid_auth"}, false, false},
		{"slack internal error", slack.SlackErrorResponse{Err: "internal_error"}, false, true},
		{"503", slack.StatusCodeError{Code: 503}, false, true},
		{"404", slack.StatusCodeError{Code: 404}, false, false},
		{"429", &slack.RateLimitedError{RetryAfter: time.Second}, false, false},
		{"timeout", context.DeadlineExceeded, false, true},
		{"store", fmt.Errorf("read ticket: %w: %w", errLocal, errors.New("io")), false, false},
	}
	for _, tc := range tests {
		if got := permanent(tc.err); got != tc.permanent {
			t.Errorf("%s: permanent = %v, want %v", tc.name, got, tc.permanent)
		}
		if got := unknownOutcome(tc.err); got != tc.unknown {
			t.Errorf("%s: unknownOutcome = %v, want %v", tc.name, got, tc.unknown)
		}
	}
}

// BenchmarkPost1000 drains 1,000 cards across 5 channels through the Slack
// stand-in enforcing a per-channel rate, scaled from Slack's 1/s to 20/s so
// the run takes seconds; the poster paces at the same rate. It reports the
// rate achieved as a fraction of the rate allowed, the 429s and the posts
// dropped after exhausting their attempts.
func BenchmarkPost1000(b *testing.B) {
	const (
		tickets  = 1000
		channels = 5
		rate     = 20.0 // posts per second per channel, Slack's 1/s scaled
	)
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError}))
	var achieved, limited, dropped float64
	for range b.N {
		b.StopTimer()
		f, api := posterFake(b, slackfake.Options{PostRate: rate, Burst: 2})
		store := newMemStore()
		for i := range tickets {
			tk := refundTicket()
			tk.ID = fmt.Sprintf("T-%06d", i)
			tk.Route.Channel = fmt.Sprintf("C0BENCH%d", i%channels)
			store.put(tk, cardPost(tk))
		}
		p := NewPoster(api, store, store, store, PosterOptions{Logger: log,
			PerChannelInterval: time.Duration(float64(time.Second) / rate), PollInterval: time.Second})
		ctx := posterCtx(b)
		b.StartTimer()
		start := time.Now()
		stop := startPoster(b, p)
		pollUntil(b, ctx, "all cards posted", outboxEmpty(store))
		elapsed := time.Since(start)
		b.StopTimer()
		stop()
		total := 0
		for c := range channels {
			total += len(f.Messages(fmt.Sprintf("C0BENCH%d", c)))
		}
		if total != tickets {
			b.Fatalf("%d cards posted, want %d", total, tickets)
		}
		// The first post of each channel is free; the rest are paced.
		allowed := float64(tickets/channels-1) / rate
		achieved += allowed / elapsed.Seconds()
		s := p.Stats()
		limited += float64(s.RateLimited)
		dropped += float64(s.Dropped)
		f.Close()
	}
	n := float64(b.N)
	b.ReportMetric(achieved/n, "rate/allowed")
	b.ReportMetric(limited/n, "429s/op")
	b.ReportMetric(dropped/n, "exhausted/op")
}

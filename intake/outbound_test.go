package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// receiver is an httptest server that answers each request with the next
// status of its script (the last one repeating) and records what it got.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	statuses []int
	got      []receivedReply
}

type receivedReply struct {
	path   string
	header http.Header
	body   []byte
	status int
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	rc := &receiver{statuses: statuses}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		status := rc.statuses[min(len(rc.got), len(rc.statuses)-1)]
		rc.got = append(rc.got, receivedReply{path: r.URL.Path, header: r.Header.Clone(), body: body, status: status})
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []receivedReply {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receivedReply(nil), rc.got...)
}

// allowLoopback lets replies reach the httptest receivers, as
// http.reply_url_allow: [127.0.0.1/32] does for the demo.
var allowLoopback = mustAllow("127.0.0.1/32")

func mustAllow(entries ...string) *ReplyURLAllow {
	a, err := ParseReplyURLAllow(entries)
	if err != nil {
		panic(err)
	}
	return a
}

// outFixture is an Outbound over the in-memory store's outbox, with retries
// due at once so tests drive it with drain and never sleep.
type outFixture struct {
	tickets *triagetest.Tickets
	out     *Outbound

	mu     sync.Mutex
	failed []failure
}

type failure struct {
	post triage.Post
	err  error
}

func newOutFixture(t *testing.T, maxAttempts int) *outFixture {
	return newOutFixtureOn(triagetest.NewTickets(triagetest.NewClock(t0)), maxAttempts)
}

// newOutFixtureOn is newOutFixture over an existing store: a restart.
func newOutFixtureOn(tickets *triagetest.Tickets, maxAttempts int) *outFixture {
	f := &outFixture{tickets: tickets}
	f.out = NewOutbound(OutboundOptions{
		Outbox: f.tickets, Ticket: f.tickets.Get, Secret: secret, Clock: triagetest.NewClock(t0),
		MaxAttempts: maxAttempts, BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond,
		ReplyURLAllow: allowLoopback,
		OnFailed: func(p triage.Post, err error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.failed = append(f.failed, failure{p, err})
		},
	})
	return f
}

func (f *outFixture) failures() []failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]failure(nil), f.failed...)
}

// reply stores a webhook ticket with replyTo and queues an approved reply
// to it, as triage's Approve does.
func (f *outFixture) reply(t *testing.T, ext, replyTo, text string) triage.Ticket {
	t.Helper()
	ctx := context.Background()
	tk, err := f.tickets.Create(ctx, &triage.Ticket{Source: triage.SourceWebhook, ExternalID: ext, Body: "b", ReplyTo: replyTo},
		triage.Customer{Email: ext + "@example.com"})
	if errors.Is(err, triage.ErrDuplicate) {
		err = nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := f.tickets.Enqueue(ctx, triage.Post{Kind: triage.PostCustomerReply, TicketID: tk.ID,
		Channel: triage.OutboundChannel(triage.SourceWebhook), ThreadTS: tk.ReplyTo, Text: text, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestOutboundRetriesThenDelivers(t *testing.T) {
	rc := newReceiver(t, 500, 503, 200)
	f := newOutFixture(t, 5)
	tk := f.reply(t, "chat-7", rc.srv.URL+"/hooks/reply", "Sorry — a replacement ships today.")
	post := f.tickets.Posts()[0]
	for range 5 {
		f.out.drain(context.Background())
	}
	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 (two failures, one success)", len(reqs))
	}
	delivered := 0
	for _, r := range reqs {
		if r.status/100 == 2 {
			delivered++
		}
		if r.path != "/hooks/reply" || r.header.Get(HeaderDelivery) != post.ID || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("request to %s with headers %v", r.path, r.header)
		}
		ts := r.header.Get(HeaderTimestamp)
		if ts != strconv.FormatInt(t0.Unix(), 10) || !verifySignature(secret, ts, r.header.Get(HeaderSignature), r.body) {
			t.Errorf("signature %q over timestamp %q does not verify", r.header.Get(HeaderSignature), ts)
		}
		var body OutboundReply
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			t.Fatal(err)
		}
		want := OutboundReply{TicketID: tk.ID, ExternalID: "chat-7", Text: "Sorry — a replacement ships today.", SentAt: t0}
		if body != want {
			t.Errorf("body %+v, want %+v", body, want)
		}
	}
	if delivered != 1 {
		t.Errorf("delivered %d times, want exactly once", delivered)
	}
	if p := f.tickets.Posts(); len(p) != 0 {
		t.Errorf("outbox still holds %+v", p)
	}
	if fl := f.failures(); len(fl) != 0 {
		t.Errorf("OnFailed called: %+v", fl)
	}
}

func TestOutboundGivesUpButKeeps(t *testing.T) {
	rc := newReceiver(t, 500)
	f := newOutFixture(t, 3)
	f.reply(t, "chat-8", rc.srv.URL, "text")
	f.reply(t, "chat-8", rc.srv.URL, "follow-on text")
	for range 10 {
		f.out.drain(context.Background())
	}
	if n := len(rc.requests()); n != 3 {
		t.Errorf("%d requests, want MaxAttempts = 3", n)
	}
	fl := f.failures()
	if len(fl) != 2 || !errors.Is(fl[0].err, ErrDelivery) || fl[0].post.Attempts != 3 ||
		!errors.Is(fl[1].err, ErrRefused) || fl[1].post.Text != "follow-on text" {
		t.Fatalf("OnFailed calls %+v, want the first reply after 3 attempts, then the one queued behind it", fl)
	}
	pending := f.tickets.Posts()
	if len(pending) != 2 || pending[0].Attempts != 3 || pending[1].Attempts != 0 {
		t.Errorf("outbox %+v, want both replies kept, the first with 3 attempts", pending)
	}

	// A new Outbound (a restart) reports it again but sends nothing.
	before := len(rc.requests())
	f2 := newOutFixtureOn(f.tickets, 3)
	f2.out.drain(context.Background())
	f2.out.drain(context.Background())
	if len(rc.requests()) != before || len(f2.failures()) != 2 {
		t.Errorf("after restart: %d new requests, %d reports; want 0 and 2", len(rc.requests())-before, len(f2.failures()))
	}
}

func TestOutboundSkipsAndRefuses(t *testing.T) {
	rc := newReceiver(t, 200)
	tests := []struct {
		name     string
		replyTo  string
		kind     triage.PostKind
		done     bool
		refused  bool
		requests int
	}{
		{"no reply URL", "", triage.PostCustomerReply, true, false, 0},
		{"ftp", "ftp://files.example/r", triage.PostCustomerReply, false, true, 0},
		{"javascript", "javascript:alert(1)", triage.PostCustomerReply, false, true, 0},
		{"credentials", "https://u:p@hooks.example/r", triage.PostCustomerReply, false, true, 0},
		{"cloud metadata address", "http://169.254.169.254/latest/meta-data/", triage.PostCustomerReply, false, true, 0},
		{"private address", "http://10.0.0.1:8080/r", triage.PostCustomerReply, false, true, 0},
		{"localhost beside the allowed 127.0.0.1", "http://[::1]/r", triage.PostCustomerReply, false, true, 0},
		{"not a reply", rc.srv.URL, triage.PostThread, false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOutFixture(t, 3)
			before := len(rc.requests())
			tk, err := f.tickets.Create(context.Background(), &triage.Ticket{Source: triage.SourceWebhook, ExternalID: "x"}, triage.Customer{})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.tickets.Enqueue(context.Background(), triage.Post{Kind: tt.kind, TicketID: tk.ID,
				Channel: triage.OutboundChannel(triage.SourceWebhook), ThreadTS: tt.replyTo, Text: "t"}); err != nil {
				t.Fatal(err)
			}
			f.out.drain(context.Background())
			f.out.drain(context.Background())
			if n := len(rc.requests()) - before; n != tt.requests {
				t.Errorf("%d requests", n)
			}
			if pending := len(f.tickets.Posts()); (pending == 0) != tt.done {
				t.Errorf("%d posts pending, done %v", pending, tt.done)
			}
			fl := f.failures()
			if tt.refused != (len(fl) == 1) || (tt.refused && !errors.Is(fl[0].err, ErrRefused)) {
				t.Errorf("OnFailed calls %+v, want refused %v, once", fl, tt.refused)
			}
		})
	}
}

// TestOutboundPerTicketOrder: a failing receiver holds back its own
// ticket's later reply, not another ticket's.
func TestOutboundPerTicketOrder(t *testing.T) {
	bad := newReceiver(t, 500, 200)
	good := newReceiver(t, 200)
	f := newOutFixture(t, 5)
	a := f.reply(t, "a", bad.srv.URL+"/a", "first to a")
	f.reply(t, "a", bad.srv.URL+"/a", "second to a")
	f.reply(t, "b", good.srv.URL+"/b", "to b")
	f.out.drain(context.Background())
	if n := len(bad.requests()); n != 1 {
		t.Fatalf("%d requests to a's receiver after one pass, want 1 (the second reply waits)", n)
	}
	if n := len(good.requests()); n != 1 {
		t.Fatalf("%d requests to b's receiver, want 1", n)
	}
	f.out.drain(context.Background())
	var texts []string
	for _, r := range bad.requests() {
		var body OutboundReply
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		if body.TicketID != a.ID {
			t.Errorf("reply for %s sent to a's receiver", body.TicketID)
		}
		texts = append(texts, body.Text)
	}
	if len(texts) != 3 || texts[0] != "first to a" || texts[1] != "first to a" || texts[2] != "second to a" {
		t.Errorf("a's receiver got %q, want the first reply retried, then the second", texts)
	}
}

func TestOutboundDoesNotFollowRedirects(t *testing.T) {
	target := newReceiver(t, 200)
	redirect := httptest.NewServer(http.RedirectHandler(target.srv.URL, http.StatusFound))
	t.Cleanup(redirect.Close)
	f := newOutFixture(t, 1)
	f.reply(t, "r", redirect.URL, "t")
	f.out.drain(context.Background())
	if n := len(target.requests()); n != 0 {
		t.Errorf("redirect followed: %d requests at its target", n)
	}
	if fl := f.failures(); len(fl) != 1 || !errors.Is(fl[0].err, ErrDelivery) {
		t.Errorf("OnFailed calls %+v", fl)
	}
}

func TestOutboundRunAndKick(t *testing.T) {
	rc := newReceiver(t, 200)
	delivered := make(chan struct{}, 1)
	tickets := triagetest.NewTickets(nil)
	out := NewOutbound(OutboundOptions{Outbox: tickets, Ticket: tickets.Get, Secret: secret,
		Poll: time.Hour, ReplyURLAllow: allowLoopback, Client: &http.Client{Transport: notify{http.DefaultTransport, delivered}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- out.Run(ctx) }()

	tk, err := tickets.Create(ctx, &triage.Ticket{Source: triage.SourceWebhook, ExternalID: "k", ReplyTo: rc.srv.URL}, triage.Customer{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tickets.Enqueue(ctx, triage.Post{Kind: triage.PostCustomerReply, TicketID: tk.ID,
		Channel: triage.OutboundChannel(triage.SourceWebhook), ThreadTS: tk.ReplyTo, Text: "t"}); err != nil {
		t.Fatal(err)
	}
	// Poll is an hour away: only the Kick can bring the reply out.
	out.Kick()
	out.Kick() // never blocks
	<-delivered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("%d requests", n)
	}
}

// notify is a transport that signals each completed round trip.
type notify struct {
	rt http.RoundTripper
	ch chan struct{}
}

func (n notify) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := n.rt.RoundTrip(r)
	n.ch <- struct{}{}
	return resp, err
}

func TestBackoff(t *testing.T) {
	o := NewOutbound(OutboundOptions{Outbox: triagetest.NewTickets(nil), Ticket: func(context.Context, string) (triage.Ticket, error) {
		return triage.Ticket{}, nil
	}, Secret: secret, BaseDelay: time.Second, MaxDelay: time.Minute})
	for n := 1; n <= 70; n++ {
		full := time.Minute
		if n <= 6 {
			full = time.Second << (n - 1)
		}
		for range 20 {
			if d := o.backoff(n, 0); d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, full/2, full)
			}
		}
	}
	if d := o.backoff(1, 30*time.Second); d != 30*time.Second {
		t.Errorf("backoff with Retry-After 30s = %v", d)
	}
	if d := o.backoff(1, time.Hour); d != time.Minute {
		t.Errorf("backoff with Retry-After 1h = %v, want the cap", d)
	}
}

// TestOutboundBeyondOneBatch: more replies than one Pending batch all go
// out, and parked replies at the head of the outbox do not hide new ones.
func TestOutboundBeyondOneBatch(t *testing.T) {
	rc := newReceiver(t, 200)
	f := newOutFixture(t, 3)
	for i := range 70 {
		f.reply(t, "refused-"+strconv.Itoa(i), "ftp://files.example/r", "t")
	}
	for i := range 70 {
		f.reply(t, "ok-"+strconv.Itoa(i), rc.srv.URL, "t")
	}
	for range 10 {
		if f.out.drain(context.Background()) > 0 {
			break
		}
	}
	if n := len(rc.requests()); n != 70 {
		t.Errorf("%d replies delivered, want 70", n)
	}
	if n := len(f.failures()); n != 70 {
		t.Errorf("%d refusals reported, want 70", n)
	}
	if n := len(f.tickets.Posts()); n != 70 {
		t.Errorf("%d posts pending, want the 70 refused ones", n)
	}
}

package intake

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/casebot/casebot/internal/testtls"
	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

const (
	imapUser = "casebot"
	imapPass = "imap-password"
	// waitLimit only bounds a test that would otherwise hang; nothing is
	// asserted about how fast anything happens.
	waitLimit = 20 * time.Second
)

var (
	capsPoll = imap.CapSet{imap.CapIMAP4rev1: {}}
	capsIdle = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIdle: {}}
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// imapEnv is a real IMAP server (go-imap's imapserver over the in-memory
// backend) on a loopback port.
type imapEnv struct {
	addr     string
	user     *imapmemserver.User
	protocol *syncBuffer // every byte exchanged, for protocol assertions
}

type imapConfig struct {
	caps imap.CapSet
	// tls serves implicit TLS; starttls offers STARTTLS and refuses
	// LOGIN without it.
	tls, starttls *tls.Config
}

func startIMAP(t *testing.T, cfg imapConfig) *imapEnv {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(imapUser, imapPass)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	env := &imapEnv{user: user, protocol: &syncBuffer{}}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         cfg.caps,
		TLSConfig:    cfg.starttls,
		InsecureAuth: cfg.starttls == nil,
		DebugWriter:  env.protocol,
		Logger:       log.New(io.Discard, "", 0),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.tls != nil {
		ln = tls.NewListener(ln, cfg.tls)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	env.addr = ln.Addr().String()
	return env
}

// literal is an in-memory imap.LiteralReader.
type literal struct{ *bytes.Reader }

// deliver appends raw messages to INBOX, as an MTA would.
func (e *imapEnv) deliver(t *testing.T, msgs ...[]byte) {
	t.Helper()
	for _, m := range msgs {
		if _, err := e.user.Append("INBOX", literal{bytes.NewReader(m)}, &imap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// client logs a separate client in, the way a person's mail program would.
func (e *imapEnv) client(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(e.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(imapUser, imapPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// seen reports the \Seen flag of every message by UID.
func seen(c *imapclient.Client) (map[imap.UID]bool, error) {
	if err := c.Noop().Wait(); err != nil {
		return nil, err
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		return nil, err
	}
	out := map[imap.UID]bool{}
	for _, m := range msgs {
		out[m.UID] = slices.Contains(m.Flags, imap.FlagSeen)
	}
	return out, nil
}

// markUnseen clears \Seen everywhere: a person marking mail unread, or a
// crash before the flag was stored.
func markUnseen(t *testing.T, c *imapclient.Client) {
	t.Helper()
	err := c.Store(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true,
		Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
	if err != nil {
		t.Fatal(err)
	}
}

// desk is the casebot side: the in-memory store behind a real Triager.
type desk struct {
	tickets *triagetest.Tickets
	triager *triage.Triager

	mu       sync.Mutex
	intakes  []string // ExternalID of every Intake call
	enqueued []string
	// failIntake fails that many Intake calls before storing anything.
	failIntake int
	// beforeIntake runs at the start of every Intake call.
	beforeIntake func(in triage.Inbound)
}

func newDesk(t *testing.T) *desk {
	t.Helper()
	tickets := triagetest.NewTickets(triagetest.NewClock(t0))
	tr, err := triage.NewTriager(triage.DefaultConfig(), tickets, triagetest.NewClock(t0))
	if err != nil {
		t.Fatal(err)
	}
	return &desk{tickets: tickets, triager: tr}
}

var errStoreDown = errors.New("store unavailable")

func (d *desk) intake(ctx context.Context, in triage.Inbound) (triage.Ticket, error) {
	d.mu.Lock()
	hook := d.beforeIntake
	d.intakes = append(d.intakes, in.ExternalID)
	fail := d.failIntake > 0
	if fail {
		d.failIntake--
	}
	d.mu.Unlock()
	if hook != nil {
		hook(in)
	}
	if fail {
		return triage.Ticket{}, errStoreDown
	}
	return d.triager.Intake(ctx, in)
}

func (d *desk) appendEntry(ctx context.Context, id string, e triage.Entry) error {
	_, err := d.triager.AppendEntry(ctx, id, e)
	return err
}

// findThread is the lookup the wiring does in the store: the ticket whose
// first message or answered message is one of ids, nearest id first.
func (d *desk) findThread(_ context.Context, ids []string) (string, bool, error) {
	all := d.tickets.All()
	for _, id := range ids {
		for _, t := range all {
			if t.Source == triage.SourceEmail && (t.ExternalID == id || t.ReplyTo == id) {
				return t.ID, true, nil
			}
		}
	}
	return "", false, nil
}

func (d *desk) enqueue(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.enqueued = append(d.enqueued, id)
}

func (d *desk) calls() (intakes, enqueued []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.intakes), slices.Clone(d.enqueued)
}

func (d *desk) options(addr string) MailboxOptions {
	return MailboxOptions{
		Addr: addr, Username: imapUser, Password: imapPass, TLS: TLSInsecure,
		PollInterval: 10 * time.Millisecond, ReconnectDelay: time.Millisecond, ReconnectMax: 10 * time.Millisecond,
		Intake: d.intake, Append: d.appendEntry, FindThread: d.findThread,
		Ticket: d.tickets.Get, Customer: d.tickets.Customer, Enqueue: d.enqueue,
		Clock: triagetest.NewClock(t0),
	}
}

// run starts a Mailbox; the returned function stops it, as does the end
// of the test.
func run(t *testing.T, opts MailboxOptions) (stop func()) {
	t.Helper()
	m, err := NewMailbox(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds; the limit only stops a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func eml(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mail1 builds a small message; extra holds more header lines.
func mail1(from, id, subject, body string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: support@shop.example\r\nSubject: %s\r\n", from, subject)
	if id != "" {
		fmt.Fprintf(&b, "Message-ID: <%s>\r\n", id)
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Date: Mon, 03 Mar 2025 08:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n")
	return []byte(b.String())
}

func allSeen(t *testing.T, c *imapclient.Client) func() bool {
	return func() bool {
		s, err := seen(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range s {
			if !v {
				return false
			}
		}
		return len(s) > 0
	}
}

func TestMailboxTurnsNewMailIntoTickets(t *testing.T) {
	env := startIMAP(t, imapConfig{caps: capsPoll})
	d := newDesk(t)
	big := mail1("Big <big@example.com>", "big-1@example.com", "Video of the damage",
		strings.Repeat("x", 4000))
	env.deliver(t, eml(t, "email_plain.eml"), eml(t, "email_html_only.eml"), eml(t, "email_attachments.eml"),
		eml(t, "email_auto_reply.eml"), big, []byte("not a header line\r\n\r\nbody"))
	opts := d.options(env.addr)
	opts.MaxSize = 3000
	run(t, opts)

	waitFor(t, "four tickets", func() bool { return len(d.tickets.All()) == 4 })
	check := env.client(t)
	waitFor(t, "the readable messages to be marked seen", func() bool {
		s, err := seen(check)
		if err != nil {
			t.Fatal(err)
		}
		return s[1] && s[2] && s[3] && s[4] && s[5]
	})
	all := d.tickets.All()
	want := []struct {
		ext, email, subject, bodyPrefix string
		attachments                     []string
	}{
		{"CAF=plain-4501@mail.example.com", "maria.lopez@example.com", "Where is my order? — #4501", "Hello,\n\nmy order #4501", nil},
		{"html-only-7788@example.org", "tom@example.org", "Cracked jar", "Hi team,", nil},
		{"att-1@example.com", "lee@example.com", "Damaged item photos", "Photos of the damage",
			[]string{"receipt.pdf", "café box.png", "übersicht.jpg", "notes.txt", "(unnamed application/octet-stream)"}},
		{"big-1@example.com", "big@example.com", "Video of the damage", "[casebot: this email is", nil},
	}
	for i, w := range want {
		tk := all[i]
		c, err := d.tickets.Customer(context.Background(), tk.CustomerID)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Source != triage.SourceEmail || tk.Channel != "email" || tk.ExternalID != w.ext || tk.ReplyTo != w.ext ||
			c.Email != w.email || tk.Subject != w.subject || !strings.HasPrefix(tk.Body, w.bodyPrefix) ||
			!slices.Equal(tk.Attachments, w.attachments) || tk.State != triage.StateReceived {
			t.Errorf("ticket %d = %+v (customer %s), want %+v", i, tk, c.Email, w)
		}
	}
	// The Date header is 45 minutes behind casebot's clock and the test
	// server's INTERNALDATE is after it: casebot's clock decides.
	if got := all[0]; !got.ReceivedAt.Equal(t0) || !got.SenderAt.Equal(date("Mon, 03 Mar 2025 09:15:00 +0100")) {
		t.Errorf("ReceivedAt = %v, SenderAt = %v; want casebot's clock and the Date header", got.ReceivedAt, got.SenderAt)
	}
	if _, enq := d.calls(); !slices.Equal(enq, []string{all[0].ID, all[1].ID, all[2].ID, all[3].ID}) {
		t.Errorf("enqueued %v", enq)
	}
	// The unreadable message stays unseen for a person, and is not read
	// again on every pass.
	s, err := seen(check)
	if err != nil {
		t.Fatal(err)
	}
	if s[6] {
		t.Error("the unreadable message was marked seen")
	}
	if strings.Count(env.protocol.String(), "UID FETCH 6 (UID BODY.PEEK[])") > 1 {
		t.Error("the unreadable message was fetched more than once")
	}
	if strings.Contains(env.protocol.String(), "(UID BODY[") || strings.Contains(env.protocol.String(), "UID FETCH 5 (UID BODY.PEEK[])") {
		t.Error("a message was fetched without PEEK, or the oversized one was fetched whole")
	}
}

func TestMailboxThreadIsOneTicket(t *testing.T) {
	env := startIMAP(t, imapConfig{caps: capsPoll})
	d := newDesk(t)
	first := mail1("Maria <Maria@Example.com>", "a1@example.com", "Broken lamp", "My lamp arrived broken.")
	second := mail1("maria@example.com", "a2@example.com", "Re: Broken lamp",
		"Here is a photo.\r\n\r\nOn Mon, 3 Mar 2025 at 09:00, Shop <s@shop.example> wrote:\r\n> How can we help?",
		"In-Reply-To: <casebot.x1@shop.example>", "References: <a1@example.com> <casebot.x1@shop.example>")
	third := mail1("maria@example.com", "a3@example.com", "Re: Broken lamp", "Any news?",
		"In-Reply-To: <a2@example.com>", "References: <a1@example.com> <casebot.x1@shop.example> <a2@example.com>")
	// Someone else quoting the thread's Message-ID cannot add to Maria's
	// ticket.
	other := mail1("eve@example.net", "e1@example.net", "Re: Broken lamp", "Send the refund to me instead.",
		"In-Reply-To: <a1@example.com>", "References: <a1@example.com>")
	env.deliver(t, first, second, third, other)
	stop := run(t, d.options(env.addr))

	waitFor(t, "the thread and the stranger's ticket", func() bool {
		all := d.tickets.All()
		return len(all) == 2 && len(all[0].Entries) == 2
	})
	check := env.client(t)
	waitFor(t, "all marked seen", allSeen(t, check))
	all := d.tickets.All()
	lamp, eve := all[0], all[1]
	if lamp.Body != "My lamp arrived broken." || lamp.ExternalID != "a1@example.com" {
		t.Errorf("thread ticket = %+v", lamp)
	}
	wantEntries := []triage.Entry{
		{At: t0, Author: "maria@example.com", Body: "Here is a photo."},
		{At: t0, Author: "maria@example.com", Body: "Any news?"},
	}
	if !slices.EqualFunc(lamp.Entries, wantEntries, func(a, b triage.Entry) bool {
		return a.At.Equal(b.At) && a.Author == b.Author && a.Body == b.Body
	}) {
		t.Errorf("entries = %+v, want %+v", lamp.Entries, wantEntries)
	}
	if eve.ExternalID != "e1@example.net" || eve.Body != "Send the refund to me instead." {
		t.Errorf("stranger's ticket = %+v", eve)
	}

	// A restart that finds every message unseen again (a crash before the
	// flags were stored) adds nothing: new tickets are deduplicated by
	// Message-ID in the store, replies by their entry. Classified tickets
	// are not enqueued again.
	for _, tk := range all {
		if _, err := d.triager.Classify(context.Background(), tk.ID, triage.Customer{}); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	markUnseen(t, check)
	d2 := &desk{tickets: d.tickets, triager: d.triager}
	run(t, d2.options(env.addr))
	waitFor(t, "the restarted mailbox to mark all seen", allSeen(t, check))
	all = d.tickets.All()
	if len(all) != 2 || len(all[0].Entries) != 2 {
		t.Errorf("after a re-read: %d tickets, %d entries; want 2 and 2", len(all), len(all[0].Entries))
	}
	if intakes, enq := d2.calls(); !slices.Equal(intakes, []string{"a1@example.com", "e1@example.net"}) || len(enq) != 0 {
		t.Errorf("re-read intakes %v enqueued %v; want the two ticket messages, nothing enqueued", intakes, enq)
	}
}

// TestMailboxReplyReadTwiceWithStaleView: a reply read again while the
// mailbox's view of the ticket does not show it yet (a concurrent read, a
// lagging replica) is not added twice: AppendEntry refuses the duplicate
// inside its transaction, and the mailbox takes that as done and marks the
// message seen.
func TestMailboxReplyReadTwiceWithStaleView(t *testing.T) {
	env := startIMAP(t, imapConfig{caps: capsPoll})
	d := newDesk(t)
	first := mail1("maria@example.com", "a1@example.com", "Broken lamp", "My lamp arrived broken.")
	reply := mail1("maria@example.com", "a2@example.com", "Re: Broken lamp", "Here is a photo.",
		"In-Reply-To: <a1@example.com>", "References: <a1@example.com>")
	env.deliver(t, first, reply)
	stop := run(t, d.options(env.addr))
	check := env.client(t)
	waitFor(t, "the reply on the ticket", func() bool {
		all := d.tickets.All()
		return len(all) == 1 && len(all[0].Entries) == 1
	})
	waitFor(t, "all marked seen", allSeen(t, check))
	stop()

	markUnseen(t, check)
	d2 := &desk{tickets: d.tickets, triager: d.triager}
	opts := d2.options(env.addr)
	opts.Ticket = func(ctx context.Context, id string) (triage.Ticket, error) {
		tk, err := d.tickets.Get(ctx, id)
		tk.Entries = nil
		return tk, err
	}
	run(t, opts)
	waitFor(t, "the re-read marked seen", allSeen(t, check))
	all := d.tickets.All()
	if len(all) != 1 || len(all[0].Entries) != 1 {
		t.Errorf("after the re-read: %d tickets, %d entries; want 1 and 1", len(all), len(all[0].Entries))
	}
}

func TestMailboxMarksSeenOnlyAfterCommit(t *testing.T) {
	env := startIMAP(t, imapConfig{caps: capsPoll})
	d := newDesk(t)
	check := env.client(t)
	var mu sync.Mutex
	var seenDuringIntake []bool
	d.failIntake = 1
	d.beforeIntake = func(triage.Inbound) {
		s, err := seen(check)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		seenDuringIntake = append(seenDuringIntake, s[1])
		mu.Unlock()
	}
	env.deliver(t, eml(t, "email_plain.eml"))
	run(t, d.options(env.addr))

	waitFor(t, "the ticket", func() bool { return len(d.tickets.All()) == 1 })
	waitFor(t, "the message marked seen", allSeen(t, check))
	intakes, enq := d.calls()
	if !slices.Equal(intakes, []string{"CAF=plain-4501@mail.example.com", "CAF=plain-4501@mail.example.com"}) {
		t.Errorf("Intake calls %v: want the failed one and the retry", intakes)
	}
	if len(enq) != 1 {
		t.Errorf("enqueued %v, want the one ticket", enq)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seenDuringIntake, []bool{false, false}) {
		t.Errorf("\\Seen during Intake calls: %v; the flag must wait for the commit", seenDuringIntake)
	}
}

// proxy forwards connections to an address. It can cut them all, as a
// network failure or a server restart would, rewrite the server's lines,
// and it records the bytes clients send as they cross the wire.
type proxy struct {
	ln      net.Listener
	rewrite func(line string) string
	wire    syncBuffer

	mu    sync.Mutex
	conns []net.Conn
	count int
}

func newProxy(t *testing.T, target string, rewrite func(string) string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, rewrite: rewrite}
	t.Cleanup(func() { ln.Close(); p.drop() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.count++
			p.mu.Unlock()
			go func() { io.Copy(io.MultiWriter(out, &p.wire), in); out.Close() }()
			go func() {
				if p.rewrite != nil {
					p.copyLines(in, out)
				} else {
					io.Copy(in, out)
				}
				in.Close()
			}()
		}
	}()
	return p
}

// copyLines forwards the server's side line by line through rewrite.
func (p *proxy) copyLines(dst io.Writer, src io.Reader) {
	br := bufio.NewReader(src)
	for {
		line, err := br.ReadString('\n')
		if p.rewrite != nil {
			line = p.rewrite(line)
		}
		if _, werr := io.WriteString(dst, line); werr != nil || err != nil {
			return
		}
	}
}

func (p *proxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

func TestMailboxReconnectsWithoutDuplicates(t *testing.T) {
	env := startIMAP(t, imapConfig{caps: capsIdle})
	proxy := newProxy(t, env.addr, nil)
	d := newDesk(t)
	check := env.client(t)
	env.deliver(t, mail1("a@example.com", "r1@example.com", "First", "one"))
	opts := d.options(proxy.ln.Addr().String())
	// This test is about reconnecting, not IDLE: the in-process server can
	// drop a new-mail notice that races its IDLE handler (seen under load
	// in CI), and the poll is what catches such a message in production.
	opts.PollInterval = 500 * time.Millisecond
	run(t, opts)
	waitFor(t, "the first ticket", func() bool { return len(d.tickets.All()) == 1 })
	waitFor(t, "the first message seen", allSeen(t, check))

	// The connection dies and the first message is unseen again: the
	// reconnected mailbox reads it again and the store drops the repeat.
	markUnseen(t, check)
	proxy.drop()
	waitFor(t, "the re-read on a new connection", func() bool {
		intakes, _ := d.calls()
		return len(intakes) == 2 && proxy.connections() >= 2
	})
	// New mail then arrives while the new connection is in IDLE (see
	// TestMailboxIdleAndPoll for why the test waits for it).
	waitFor(t, "IDLE again", func() bool { return strings.Count(env.protocol.String(), "+ idling") >= 2 })
	env.deliver(t, mail1("b@example.com", "r2@example.com", "Second", "two"))
	waitFor(t, "the second ticket", func() bool { return len(d.tickets.All()) == 2 })
	waitFor(t, "both seen", allSeen(t, check))
	if n := len(d.tickets.All()); n != 2 {
		t.Errorf("%d tickets, want 2", n)
	}
	if intakes, _ := d.calls(); !slices.Equal(intakes, []string{"r1@example.com", "r1@example.com", "r2@example.com"}) {
		t.Errorf("Intake calls %v: want r1, r1 re-read after the reconnect, r2", intakes)
	}
	if proxy.connections() < 2 {
		t.Errorf("%d connections; the mailbox did not reconnect", proxy.connections())
	}
}

func TestMailboxIdleAndPoll(t *testing.T) {
	for _, tt := range []struct {
		name string
		caps imap.CapSet
		poll time.Duration
		idle bool
	}{
		// With IDLE and an hour between polls, only the server's
		// notification can bring the second message in.
		{"idle", capsIdle, time.Hour, true},
		{"poll", capsPoll, 10 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := startIMAP(t, imapConfig{caps: tt.caps})
			// go-imap's server always offers IDLE; a server without it is
			// simulated by taking it out of the capability lists.
			proxy := newProxy(t, env.addr, func(line string) string {
				if tt.idle || !strings.Contains(line, "CAPABILITY") {
					return line
				}
				return strings.Replace(line, " IDLE", "", 1)
			})
			d := newDesk(t)
			env.deliver(t, mail1("a@example.com", "i1@example.com", "One", "one"))
			opts := d.options(proxy.ln.Addr().String())
			opts.PollInterval = tt.poll
			run(t, opts)
			waitFor(t, "the first ticket", func() bool { return len(d.tickets.All()) == 1 })
			if tt.idle {
				// go-imap's server drops news that arrives before its IDLE
				// handler is listening (Dovecot sends it); casebot would
				// then find it at the next poll, an hour away here.
				waitFor(t, "IDLE", func() bool { return strings.Contains(env.protocol.String(), "+ idling") })
			}
			env.deliver(t, mail1("b@example.com", "i2@example.com", "Two", "two"))
			waitFor(t, "the second ticket", func() bool { return len(d.tickets.All()) == 2 })
			if got := strings.Contains(proxy.wire.String(), " IDLE\r\n"); got != tt.idle {
				t.Errorf("IDLE sent: %v, want %v", got, tt.idle)
			}
		})
	}
}

func TestMailboxTLS(t *testing.T) {
	serverTLS, clientTLS := testtls.Configs(t)
	for _, tt := range []struct {
		name string
		cfg  imapConfig
		mode TLSMode
		ok   bool
	}{
		{"implicit", imapConfig{caps: capsPoll, tls: serverTLS}, TLSImplicit, true},
		{"starttls", imapConfig{caps: capsPoll, starttls: serverTLS}, TLSStartTLS, true},
		// A server without STARTTLS never gets the password in clear.
		{"starttls refused", imapConfig{caps: capsPoll}, TLSStartTLS, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := startIMAP(t, tt.cfg)
			proxy := newProxy(t, env.addr, nil)
			d := newDesk(t)
			env.deliver(t, mail1("a@example.com", "tls1@example.com", "Over TLS", "secure"))
			opts := d.options(proxy.ln.Addr().String())
			opts.TLS, opts.TLSConfig = tt.mode, clientTLS
			run(t, opts)
			if tt.ok {
				waitFor(t, "the ticket", func() bool { return len(d.tickets.All()) == 1 })
			} else {
				waitFor(t, "two refused connections", func() bool { return proxy.connections() >= 2 })
				if len(d.tickets.All()) != 0 {
					t.Error("a ticket arrived over a connection that was to be refused")
				}
			}
			if strings.Contains(proxy.wire.String(), imapPass) || strings.Contains(proxy.wire.String(), "LOGIN") {
				t.Errorf("the login crossed the wire in clear:\n%s", proxy.wire.String())
			}
		})
	}
}

func TestNewMailboxChecksConfig(t *testing.T) {
	d := newDesk(t)
	for _, tt := range []struct {
		name string
		edit func(*MailboxOptions)
	}{
		{"no port", func(o *MailboxOptions) { o.Addr = "imap.example.com" }},
		{"empty", func(o *MailboxOptions) { o.Addr = "" }},
		{"unknown TLS mode", func(o *MailboxOptions) { o.TLS = TLSInsecure + 1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := d.options("127.0.0.1:993")
			tt.edit(&opts)
			if _, err := NewMailbox(opts); err == nil {
				t.Error("NewMailbox accepted it")
			}
		})
	}
	opts := d.options("127.0.0.1:993")
	opts.Intake = nil
	defer func() {
		if recover() == nil {
			t.Error("NewMailbox without Intake did not panic")
		}
	}()
	_, _ = NewMailbox(opts)
}

// TestMailboxReceivedAtIsTheServersNotTheSenders delivers mail whose Date
// header is far in the past: the ticket is indexed by the mail server's
// INTERNALDATE, or casebot's clock when that is unusable, and keeps the Date
// as SenderAt.
func TestMailboxReceivedAtIsTheServersNotTheSenders(t *testing.T) {
	twoYearsAgo := t0.AddDate(-2, 0, 0)
	cases := []struct {
		name     string
		date     time.Time
		internal time.Time
		want     time.Time
	}{
		{"old Date, internal date an hour ago", twoYearsAgo, t0.Add(-time.Hour), t0.Add(-time.Hour)},
		{"old Date, internal date ahead of the clock", twoYearsAgo, t0.Add(time.Hour), t0},
		{"recent Date, internal date ahead of the clock", t0.Add(-time.Minute), t0.Add(time.Hour), t0.Add(-time.Minute)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := startIMAP(t, imapConfig{caps: capsPoll})
			d := newDesk(t)
			msg := fmt.Sprintf("From: ann@example.com\r\nTo: support@shop.example\r\nSubject: Parcel\r\n"+
				"Message-ID: <old-%d@example.com>\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWhere is it?\r\n",
				i, tc.date.Format(time.RFC1123Z))
			if _, err := env.user.Append("INBOX", literal{bytes.NewReader([]byte(msg))},
				&imap.AppendOptions{Time: tc.internal}); err != nil {
				t.Fatal(err)
			}
			run(t, d.options(env.addr))
			waitFor(t, "the ticket", func() bool { return len(d.tickets.All()) == 1 })
			tk := d.tickets.All()[0]
			if !tk.ReceivedAt.Equal(tc.want) || !tk.SenderAt.Equal(tc.date) {
				t.Errorf("ReceivedAt %v, SenderAt %v; want %v, %v", tk.ReceivedAt, tk.SenderAt, tc.want, tc.date)
			}
		})
	}
}

package intake

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/casebot/casebot/internal/testtls"
	"github.com/casebot/casebot/triage"
)

const (
	smtpUser = "casebot@shop.example"
	smtpPass = "smtp-password"
)

// smtpServer is a real SMTP server (go-smtp) whose backend records every
// message and answers DATA from a script.
type smtpServer struct {
	addr string

	mu sync.Mutex
	// data holds every message body received, accepted or not.
	data [][]byte
	// accepted are the envelopes and bodies that were accepted.
	accepted []smtpMessage
	// dataErrs answers the n-th DATA; past its end every DATA is accepted.
	dataErrs []error
	// rejectRcpt is refused with 550.
	rejectRcpt string
	logins     int
}

type smtpMessage struct {
	from string
	to   []string
	data []byte
}

type smtpSession struct {
	srv  *smtpServer
	auth bool
	from string
	to   []string
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != smtpUser || pass != smtpPass {
			return errors.New("invalid credentials")
		}
		s.auth = true
		s.srv.mu.Lock()
		s.srv.logins++
		s.srv.mu.Unlock()
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.auth {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == s.srv.rejectRcpt {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	n := len(s.srv.data)
	s.srv.data = append(s.srv.data, b)
	if n < len(s.srv.dataErrs) && s.srv.dataErrs[n] != nil {
		return s.srv.dataErrs[n]
	}
	s.srv.accepted = append(s.srv.accepted, smtpMessage{from: s.from, to: slices.Clone(s.to), data: b})
	return nil
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

var errTryLater = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}

// startSMTP serves on loopback: implicit TLS when implicit is set, STARTTLS
// (and AUTH only after it) when starttls is set, plain otherwise.
func startSMTP(t *testing.T, implicit, starttls *tls.Config) *smtpServer {
	t.Helper()
	rec := &smtpServer{}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: rec}, nil
	}))
	s.Domain = "localhost"
	s.TLSConfig = starttls
	s.AllowInsecureAuth = starttls == nil
	s.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit != nil {
		ln = tls.NewListener(ln, implicit)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	rec.addr = ln.Addr().String()
	return rec
}

func (s *smtpServer) received() (data [][]byte, accepted []smtpMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.data), slices.Clone(s.accepted)
}

// mailDesk is a store with email tickets and a Mailer over its outbox.
type mailDesk struct {
	*desk
	mailer *Mailer

	mu     sync.Mutex
	failed []failure
}

func newMailDesk(t *testing.T, srv *smtpServer, edit func(*MailerOptions)) *mailDesk {
	t.Helper()
	md := &mailDesk{desk: newDesk(t)}
	opts := MailerOptions{
		Outbox: md.tickets, Addr: srv.addr, Username: smtpUser, Password: smtpPass,
		From: "Shop Support <support@shop.example>", TLS: TLSInsecure,
		Ticket: md.tickets.Get, Customer: md.tickets.Customer, Clock: md.triager.Clock,
		BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond,
		OnFailed: func(p triage.Post, err error) {
			md.mu.Lock()
			defer md.mu.Unlock()
			md.failed = append(md.failed, failure{p, err})
		},
	}
	if edit != nil {
		edit(&opts)
	}
	m, err := NewMailer(opts)
	if err != nil {
		t.Fatal(err)
	}
	md.mailer = m
	return md
}

// approved stores in as a ticket, triages it and approves reply: the
// outbox then holds the reply for the Mailer.
func (md *mailDesk) approved(t *testing.T, in triage.Inbound, reply string) triage.Ticket {
	t.Helper()
	ctx := context.Background()
	tk, err := md.triager.Intake(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if tk, err = md.triager.Classify(ctx, tk.ID, in.Customer); err != nil {
		t.Fatal(err)
	}
	tk, err = md.triager.Approve(ctx, tk.ID, "U-AGENT", tk.DraftVersion, reply)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func (md *mailDesk) pending(t *testing.T) []triage.Post {
	t.Helper()
	posts, err := md.tickets.Pending(context.Background(), triage.OutboundChannel(triage.SourceEmail), 100)
	if err != nil {
		t.Fatal(err)
	}
	return posts
}

func (md *mailDesk) failures() []failure {
	md.mu.Lock()
	defer md.mu.Unlock()
	return slices.Clone(md.failed)
}

func parsedEmail(t *testing.T, name string) Email {
	t.Helper()
	e, err := ParseEmail(bytes.NewReader(eml(t, name)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var messageIDPattern = regexp.MustCompile(`^<casebot\.[0-9a-f]{32}@shop\.example>$`)

func TestMailerSendsAThreadedReply(t *testing.T) {
	srv := startSMTP(t, nil, nil)
	md := newMailDesk(t, srv, nil)
	reply := "Hola María,\n\nyour parcel left our warehouse today; we added a €5 credit.\n\n— Shop"
	md.approved(t, parsedEmail(t, "email_plain.eml").Inbound(t0), reply)

	md.mailer.drain(context.Background())

	_, accepted := srv.received()
	if len(accepted) != 1 {
		t.Fatalf("%d messages accepted, want 1", len(accepted))
	}
	got := accepted[0]
	if got.from != "support@shop.example" || !slices.Equal(got.to, []string{"maria.lopez@example.com"}) {
		t.Errorf("envelope from %q to %v", got.from, got.to)
	}
	r, err := mail.CreateReader(bytes.NewReader(got.data))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header
	subject, _ := h.Subject()
	to, _ := h.AddressList("To")
	from, _ := h.AddressList("From")
	date, _ := h.Date()
	ct, params, _ := h.ContentType()
	for _, c := range []struct{ name, got, want string }{
		{"Subject", subject, "Re: Where is my order? — #4501"},
		{"In-Reply-To", h.Get("In-Reply-To"), "<CAF=plain-4501@mail.example.com>"},
		{"References", h.Get("References"), "<CAF=plain-4501@mail.example.com>"},
		{"To", to[0].String(), `"Maria Lopez" <maria.lopez@example.com>`},
		{"From", from[0].String(), `"Shop Support" <support@shop.example>`},
		{"Content-Type", ct + "; charset=" + params["charset"], "text/plain; charset=utf-8"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if id := h.Get("Message-Id"); !messageIDPattern.MatchString(id) {
		t.Errorf("Message-ID = %q", id)
	}
	if !date.Equal(t0) {
		t.Errorf("Date = %v, want the clock's %v", date, t0)
	}
	part, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(part.Body)
	if strings.TrimRight(string(body), "\r\n") != strings.ReplaceAll(reply, "\n", "\r\n") {
		t.Errorf("body = %q, want %q", body, reply)
	}
	if n := len(md.pending(t)); n != 0 {
		t.Errorf("%d replies still pending", n)
	}
	if len(md.failures()) != 0 {
		t.Errorf("failures: %v", md.failures())
	}
}

func TestReplySubject(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Where is my order?", "Re: Where is my order?"},
		{"Re: Where is my order?", "Re: Where is my order?"},
		{"RE: Return label", "RE: Return label"},
		{"re:no space", "re:no space"},
		{"AW: Bestellung 8812", "AW: Bestellung 8812"},
		{"SV: Ordre", "SV: Ordre"},
		{"Fwd: receipt", "Re: Fwd: receipt"},
		{"Reply needed: refund", "Re: Reply needed: refund"},
		{"", "Re: Your message"},
		{"Line\r\nBcc: evil@example.com", "Re: Line Bcc: evil@example.com"},
	} {
		if got := ReplySubject(tt.in); got != tt.want {
			t.Errorf("ReplySubject(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMailerKeepsCustomerDataOutOfHeaders(t *testing.T) {
	srv := startSMTP(t, nil, nil)
	md := newMailDesk(t, srv, nil)
	in := triage.Inbound{Source: triage.SourceEmail, Channel: "email", ExternalID: "inj-1@example.com",
		Customer: triage.Customer{Email: "mallory@example.com", Name: "Mallory\r\nBcc: evil@example.com"},
		Subject:  "Refund\r\nBcc: evil@example.com\r\n\r\nforged body",
		Body:     "hello", ReplyTo: "inj-1@example.com>\r\nBcc: <evil@example.com", ReceivedAt: t0}
	md.approved(t, in, "We are on it.")

	md.mailer.drain(context.Background())

	_, accepted := srv.received()
	if len(accepted) != 1 {
		t.Fatalf("%d messages accepted, want 1", len(accepted))
	}
	if !slices.Equal(accepted[0].to, []string{"mallory@example.com"}) {
		t.Errorf("recipients %v", accepted[0].to)
	}
	r, err := mail.CreateReader(bytes.NewReader(accepted[0].data))
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Has("Bcc") {
		t.Errorf("a Bcc header was injected:\n%s", accepted[0].data)
	}
	// The malformed Message-ID is not answered rather than half-quoted.
	if r.Header.Has("In-Reply-To") || r.Header.Has("References") {
		t.Errorf("threading headers from a malformed ReplyTo: %q %q", r.Header.Get("In-Reply-To"), r.Header.Get("References"))
	}
	if subject, _ := r.Header.Subject(); subject != "Re: Refund Bcc: evil@example.com forged body" {
		t.Errorf("Subject = %q", subject)
	}
}

func TestMailerRefusesAnUnusableAddress(t *testing.T) {
	for _, email := range []string{"", "mallory@example.com\r\nRCPT TO:<evil@example.com>", "Mallory <m@example.com>", "not-an-address"} {
		t.Run(email, func(t *testing.T) {
			srv := startSMTP(t, nil, nil)
			md := newMailDesk(t, srv, nil)
			md.approved(t, triage.Inbound{Source: triage.SourceEmail, ExternalID: "x@example.com", ReplyTo: "x@example.com",
				Customer: triage.Customer{Email: email, Handle: "h"}, Body: "hi", ReceivedAt: t0}, "Reply.")

			md.mailer.drain(context.Background())

			if data, _ := srv.received(); len(data) != 0 {
				t.Errorf("sent %d messages", len(data))
			}
			f := md.failures()
			if len(f) != 1 || !errors.Is(f[0].err, ErrMailRefused) {
				t.Fatalf("failures %v, want one ErrMailRefused", f)
			}
			if p := md.pending(t); len(p) != 1 || p[0].Attempts != 0 {
				t.Errorf("pending %+v: the refused reply must stay, unattempted", p)
			}
		})
	}
}

func TestMailerRetriesWithTheSameMessageID(t *testing.T) {
	srv := startSMTP(t, nil, nil)
	srv.dataErrs = []error{errTryLater, errTryLater}
	md := newMailDesk(t, srv, nil)
	md.approved(t, parsedEmail(t, "email_plain.eml").Inbound(t0), "On its way.")
	ctx := context.Background()

	for i := 0; i < 10 && len(md.pending(t)) > 0; i++ {
		md.mailer.drain(ctx)
	}

	data, accepted := srv.received()
	if len(data) != 3 || len(accepted) != 1 {
		t.Fatalf("%d attempts, %d accepted; want 3 and 1", len(data), len(accepted))
	}
	var ids []string
	for _, d := range data {
		r, err := mail.CreateReader(bytes.NewReader(d))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Header.Get("Message-Id"))
	}
	if ids[0] == "" || ids[1] != ids[0] || ids[2] != ids[0] {
		t.Errorf("Message-IDs %v: a retry must repeat the first", ids)
	}
	if len(md.failures()) != 0 {
		t.Errorf("failures: %v", md.failures())
	}
}

func TestMailerGivesUpButKeepsTheReply(t *testing.T) {
	for _, tt := range []struct {
		name     string
		setup    func(*smtpServer)
		attempts int
		refused  bool
	}{
		{"temporary failures", func(s *smtpServer) { s.dataErrs = []error{errTryLater, errTryLater, errTryLater} }, 3, false},
		{"recipient rejected", func(s *smtpServer) { s.rejectRcpt = "maria.lopez@example.com" }, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, nil, nil)
			tt.setup(srv)
			md := newMailDesk(t, srv, func(o *MailerOptions) { o.MaxAttempts = 3 })
			in := parsedEmail(t, "email_plain.eml").Inbound(t0)
			md.approved(t, in, "First reply.")
			// A later reply to the same ticket must not overtake the first.
			tk := md.tickets.All()[0]
			if _, err := md.triager.Resolve(context.Background(), tk.ID, "U-AGENT",
				triage.Resolution{Method: "information"}, time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := md.tickets.Enqueue(context.Background(), triage.Post{Kind: triage.PostCustomerReply, TicketID: tk.ID,
				Channel: triage.OutboundChannel(triage.SourceEmail), ThreadTS: tk.ReplyTo, Text: "Second reply."}); err != nil {
				t.Fatal(err)
			}
			for range 10 {
				md.mailer.drain(context.Background())
			}

			_, accepted := srv.received()
			if len(accepted) != 0 {
				t.Errorf("%d messages accepted", len(accepted))
			}
			f := md.failures()
			if len(f) != 2 || errors.Is(f[0].err, ErrMailRefused) != tt.refused || !errors.Is(f[1].err, ErrMailRefused) {
				t.Fatalf("failures %v: want the first reply (refused: %v), then the one queued behind it", f, tt.refused)
			}
			p := md.pending(t)
			if len(p) != 2 || p[0].Attempts != tt.attempts || p[1].Attempts != 0 {
				t.Errorf("pending %+v: both replies must stay, the first with %d attempts", p, tt.attempts)
			}
		})
	}
}

func TestMailerTLSAndAuth(t *testing.T) {
	serverTLS, clientTLS := testtls.Configs(t)
	for _, tt := range []struct {
		name      string
		implicit  *tls.Config
		starttls  *tls.Config
		mode      TLSMode
		password  string
		delivered bool
	}{
		{"implicit", serverTLS, nil, TLSImplicit, smtpPass, true},
		{"starttls", nil, serverTLS, TLSStartTLS, smtpPass, true},
		{"starttls wrong password", nil, serverTLS, TLSStartTLS, "wrong", false},
		{"starttls not offered", nil, nil, TLSStartTLS, smtpPass, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, tt.implicit, tt.starttls)
			md := newMailDesk(t, srv, func(o *MailerOptions) {
				o.TLS, o.TLSConfig, o.Password = tt.mode, clientTLS, tt.password
			})
			md.approved(t, parsedEmail(t, "email_plain.eml").Inbound(t0), "Secure reply.")

			md.mailer.drain(context.Background())

			_, accepted := srv.received()
			if got := len(accepted) == 1; got != tt.delivered {
				t.Fatalf("delivered %v, want %v", got, tt.delivered)
			}
			if tt.delivered {
				return
			}
			p := md.pending(t)
			if len(p) != 1 || p[0].Attempts != 1 || len(md.failures()) != 0 {
				t.Errorf("pending %+v, failures %v: a connection or login failure is retried", p, md.failures())
			}
		})
	}
}

func TestMailerRunSendsOnKick(t *testing.T) {
	srv := startSMTP(t, nil, nil)
	md := newMailDesk(t, srv, func(o *MailerOptions) { o.Poll = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- md.mailer.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	}()

	md.approved(t, parsedEmail(t, "email_plain.eml").Inbound(t0), "Kicked.")
	md.mailer.Kick()
	waitFor(t, "the reply", func() bool { _, a := srv.received(); return len(a) == 1 })
}

func TestNewMailerChecksConfig(t *testing.T) {
	srv := startSMTP(t, nil, nil)
	for _, tt := range []struct {
		name string
		edit func(*MailerOptions)
	}{
		{"no port", func(o *MailerOptions) { o.Addr = "smtp.example.com" }},
		{"bad From", func(o *MailerOptions) { o.From = "support" }},
		{"From with a line break", func(o *MailerOptions) { o.From = "support@shop.example\r\nBcc: x@example.com" }},
		{"unknown TLS mode", func(o *MailerOptions) { o.TLS = -1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDesk(t)
			opts := MailerOptions{Outbox: d.tickets, Addr: srv.addr, From: "support@shop.example",
				Ticket: d.tickets.Get, Customer: d.tickets.Customer}
			tt.edit(&opts)
			if _, err := NewMailer(opts); err == nil {
				t.Error("NewMailer accepted it")
			}
		})
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/casebot/casebot/bot"
	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/internal/testtls"
	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// The email end-to-end test runs a System against real protocol servers on
// loopback, both over implicit TLS with a test certificate: go-imap's
// server over its in-memory backend, and a go-smtp server whose backend
// records what it accepts.

const (
	mailUser      = "support@shop.example"
	imapPassword  = "imap-test-password"
	smtpPassword  = "smtp-test-password"
	supportFrom   = "Shop Support <support@shop.example>"
	customerEmail = "maria@example.com"
)

// tlsListener listens on loopback with implicit TLS.
func tlsListener(t *testing.T, cfg *tls.Config) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return tls.NewListener(ln, cfg)
}

// testIMAP is the support mailbox. It offers IDLE and refuses a login
// outside TLS, which the implicit-TLS listener provides.
type testIMAP struct {
	addr string
	user *imapmemserver.User
}

func startTestIMAP(t *testing.T, cfg *tls.Config) *testIMAP {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(mailUser, imapPassword)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:   imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIdle: {}},
		Logger: log.New(io.Discard, "", 0),
	})
	ln := tlsListener(t, cfg)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &testIMAP{addr: ln.Addr().String(), user: user}
}

// mailLiteral is an in-memory imap.LiteralReader.
type mailLiteral struct{ *bytes.Reader }

// deliver appends a message to INBOX, as the mail server would on receipt.
func (s *testIMAP) deliver(t *testing.T, msg []byte) {
	t.Helper()
	if _, err := s.user.Append("INBOX", mailLiteral{bytes.NewReader(msg)}, &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

// testSMTP is the submission server: it requires AUTH PLAIN with the test
// credentials and records every message it accepts.
type testSMTP struct {
	addr string

	mu       sync.Mutex
	accepted []sentMail
}

type sentMail struct {
	from string
	to   []string
	data []byte
}

type testSMTPSession struct {
	srv  *testSMTP
	auth bool
	from string
	to   []string
}

func (s *testSMTPSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *testSMTPSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != mailUser || pass != smtpPassword {
			return errors.New("invalid credentials")
		}
		s.auth = true
		return nil
	}), nil
}

func (s *testSMTPSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.auth {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *testSMTPSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *testSMTPSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	s.srv.accepted = append(s.srv.accepted, sentMail{from: s.from, to: slices.Clone(s.to), data: b})
	return nil
}

func (s *testSMTPSession) Reset()        { s.from, s.to = "", nil }
func (s *testSMTPSession) Logout() error { return nil }

func startTestSMTP(t *testing.T, cfg *tls.Config) *testSMTP {
	t.Helper()
	rec := &testSMTP{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &testSMTPSession{srv: rec}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln := tlsListener(t, cfg)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	rec.addr = ln.Addr().String()
	return rec
}

func (s *testSMTP) sent() []sentMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

// customerMail builds a message from the customer; extra holds more header
// lines.
func customerMail(id, subject, body string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Maria Lopez <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n", customerEmail, supportFrom, subject, id)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Date: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", time.Now().Format(time.RFC1123Z), body)
	return []byte(b.String())
}

// eventually polls cond, for conditions the Slack stand-in does not see
// change; the limit only stops a hung test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newEmailE2E opens a System with email intake and replies configured
// against the two servers, with the credentials in Secrets as
// SecretsFromEnv would put them.
func newEmailE2E(t *testing.T, imapAddr, smtpAddr string, clientTLS *tls.Config) *e2e {
	t.Helper()
	t.Setenv(EnvOllamaHost, "")
	fake := slackfake.New(slackfake.Options{PostRate: -1})
	t.Cleanup(fake.Close)
	e := &e2e{t: t, fake: fake, dbPath: filepath.Join(t.TempDir(), "casebot.db"), interval: time.Millisecond}
	cfg := DefaultConfig()
	cfg.Slack.IntakeChannels = []string{intakeChannel}
	// Off, so that any email before Approve would be model-written text
	// sent without a click (the acknowledgement is an operator's template).
	cfg.Acknowledgement.Enabled = false
	cfg.Email = EmailConfig{IMAPAddr: imapAddr, Mailbox: "INBOX", SMTPAddr: smtpAddr, From: supportFrom,
		TLS: EmailTLSImplicit, PollInterval: 100 * time.Millisecond}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		EnvSlackBotToken: fake.BotToken(), EnvSlackAppToken: fake.AppToken(),
		EnvIMAPUsername: mailUser, EnvIMAPPassword: imapPassword,
		EnvSMTPUsername: mailUser, EnvSMTPPassword: smtpPassword,
	}
	e.sys = &System{Config: cfg, DBPath: e.dbPath, SlackAPIURL: fake.APIURL(), Classifier: classifierKeyword,
		Secrets: SecretsFromEnv(func(k string) string { return env[k] }), MailTLS: clientTLS,
		Poster: bot.PosterOptions{PerChannelInterval: e.interval, PollInterval: 20 * time.Millisecond, Backoff: 5 * time.Millisecond}}
	if err := e.sys.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	return e
}

// TestE2EEmail: an email becomes a ticket with a card in Slack; Approve on
// the card sends the reply by SMTP in the customer's thread; the customer's
// answer to that reply is added to the same ticket.
func TestE2EEmail(t *testing.T) {
	serverTLS, clientTLS := testtls.Configs(t)
	mailbox := startTestIMAP(t, serverTLS)
	submission := startTestSMTP(t, serverTLS)
	e := newEmailE2E(t, mailbox.addr, submission.addr, clientTLS)
	ctx := context.Background()

	mailbox.deliver(t, customerMail("lamp-1@example.com", "Broken lamp",
		"Hello, the lamp from order #4501 arrived with a cracked shade. Can you help?"))
	e.start()

	// The email is a ticket, and its card is posted in its routed channel.
	var tk triage.Ticket
	eventually(t, "the email's ticket with its card", func() bool {
		var err error
		tk, err = e.sys.DB.TicketByExternal(ctx, triage.SourceEmail, "lamp-1@example.com")
		if err != nil && !errors.Is(err, triage.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil && tk.Slack.TS != ""
	})
	cust, err := e.sys.DB.Customer(ctx, tk.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Subject != "Broken lamp" || !strings.Contains(tk.Body, "cracked shade") || cust.Email != customerEmail {
		t.Fatalf("ticket %+v from %q, want the email's subject, text and sender", tk, cust.Email)
	}
	channel, cardTS := tk.Slack.Channel, tk.Slack.TS
	if got := e.cards(channel)[tk.ID]; len(got) != 1 || got[0].TS != cardTS {
		t.Fatalf("cards for %s in %s: %+v, want the one at %s", tk.ID, channel, got, cardTS)
	}
	e.waitFor("the draft on the card", func() bool {
		m, _ := e.fake.Message(channel, cardTS)
		return strings.Contains(string(m.Blocks), `"approve"`)
	})
	if len(submission.sent()) != 0 {
		t.Fatal("an email went out before anyone approved the reply")
	}

	// Approve sends the reply to the customer, threaded on their message.
	e.click(channel, cardTS, bot.ActionApprove, agentUser)
	eventually(t, "the reply at the SMTP server", func() bool { return len(submission.sent()) > 0 })
	eventually(t, "the reply's delivery recorded", func() bool { return !e.ticket(tk.ID).FirstResponseAt.IsZero() })
	tk = e.ticket(tk.ID)
	if tk.State != triage.StateReplied || tk.Sent == "" {
		t.Fatalf("after Approve: state %s, sent %q", tk.State, tk.Sent)
	}
	sent := submission.sent()
	if len(sent) != 1 || sent[0].from != mailUser || !slices.Equal(sent[0].to, []string{customerEmail}) {
		t.Fatalf("SMTP envelopes %+v, want one from %s to %s", sent, mailUser, customerEmail)
	}
	reply, err := mail.ReadMessage(bytes.NewReader(sent[0].data))
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]string{
		"Subject": "Re: Broken lamp", "In-Reply-To": "<lamp-1@example.com>", "References": "<lamp-1@example.com>",
	} {
		if got := reply.Header.Get(h); got != want {
			t.Errorf("reply %s = %q, want %q", h, got, want)
		}
	}
	if from, err := reply.Header.AddressList("From"); err != nil || len(from) != 1 || from[0].String() != (&mail.Address{Name: "Shop Support", Address: mailUser}).String() {
		t.Errorf("reply From = %v (%v), want %s", from, err, supportFrom)
	}
	if to, err := reply.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != customerEmail || to[0].Name != "Maria Lopez" {
		t.Errorf("reply To = %v (%v), want Maria Lopez <%s>", to, err, customerEmail)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(reply.Body))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(strings.ReplaceAll(string(body), "\r\n", "\n")); got != strings.TrimSpace(tk.Sent) {
		t.Errorf("reply text = %q, want the approved reply %q", got, tk.Sent)
	}
	replyID := reply.Header.Get("Message-ID")
	if replyID == "" {
		t.Fatal("the reply has no Message-ID")
	}

	// The customer answers casebot's reply: their client names it in
	// In-Reply-To and keeps the thread's root in References.
	mailbox.deliver(t, customerMail("lamp-2@example.com", "Re: Broken lamp", "Thanks! Here is the order number again: #4501.",
		"In-Reply-To: "+replyID, "References: <lamp-1@example.com> "+replyID))
	eventually(t, "the answer on the ticket", func() bool { return len(e.ticket(tk.ID).Entries) == 1 })
	tk = e.ticket(tk.ID)
	if got := tk.Entries[0]; got.Author != customerEmail || !strings.Contains(got.Body, "order number again") {
		t.Errorf("entry %+v, want the customer's answer", got)
	}
	if n, err := e.sys.DB.Count(ctx); err != nil || n != 1 {
		t.Errorf("%d tickets (%v), want the answer on the first, not a new one", n, err)
	}
	if _, err := e.sys.DB.TicketByExternal(ctx, triage.SourceEmail, "lamp-2@example.com"); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("the answer was stored as a ticket of its own: %v", err)
	}
	if got := actions(t, e, tk.ID); !slices.Contains(got, "customer_wrote") {
		t.Errorf("audit trail %v lacks customer_wrote", got)
	}
	e.waitFor("the answer in the card's thread", func() bool {
		for _, m := range e.fake.Messages(channel) {
			if m.ThreadTS == cardTS && m.TS != cardTS && strings.Contains(m.Text+string(m.Blocks), "order number again") {
				return true
			}
		}
		return false
	})
}

func TestSystemEmailWiring(t *testing.T) {
	tests := []struct {
		name         string
		email        EmailConfig
		secrets      Secrets
		wantErr      string
		imap, smtp   bool
		extraKickers int
	}{
		{name: "off by default", email: DefaultConfig().Email},
		{name: "intake only", email: EmailConfig{IMAPAddr: "127.0.0.1:993", Mailbox: "INBOX", TLS: EmailTLSImplicit, PollInterval: time.Minute},
			secrets: Secrets{IMAPUsername: "u", IMAPPassword: "p"}, imap: true},
		{name: "replies only, no login", email: EmailConfig{SMTPAddr: "127.0.0.1:25", From: supportFrom, TLS: EmailTLSStartTLS, PollInterval: time.Minute},
			smtp: true, extraKickers: 1},
		{name: "IMAP without credentials", email: EmailConfig{IMAPAddr: "127.0.0.1:993", Mailbox: "INBOX", TLS: EmailTLSImplicit, PollInterval: time.Minute},
			secrets: Secrets{IMAPUsername: "u"}, wantErr: "CASEBOT_IMAP_USERNAME and CASEBOT_IMAP_PASSWORD must be set"},
		{name: "SMTP password without username", email: EmailConfig{SMTPAddr: "127.0.0.1:465", From: supportFrom, TLS: EmailTLSImplicit, PollInterval: time.Minute},
			secrets: Secrets{SMTPPassword: "p"}, wantErr: "CASEBOT_SMTP_PASSWORD is set without CASEBOT_SMTP_USERNAME"},
	}
	t.Setenv(EnvOllamaHost, "")
	fake := slackfake.New(slackfake.Options{PostRate: -1})
	t.Cleanup(fake.Close)
	open := func(t *testing.T, email EmailConfig, secrets Secrets) (*System, error) {
		t.Helper()
		cfg := DefaultConfig()
		cfg.Email = email
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		secrets.SlackBotToken, secrets.SlackAppToken = fake.BotToken(), fake.AppToken()
		s := &System{Config: cfg, Secrets: secrets, DBPath: filepath.Join(t.TempDir(), "casebot.db"),
			SlackAPIURL: fake.APIURL(), Classifier: classifierKeyword}
		return s, s.Open(context.Background())
	}
	// What wakes on an approval without email, whatever else is wired.
	base, err := open(t, DefaultConfig().Email, Secrets{})
	if err != nil {
		t.Fatal(err)
	}
	baseKickers := len(base.kickers)
	base.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := open(t, tt.email, tt.secrets)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open = %v, want an error containing %q", err, tt.wantErr)
				}
				// Open released the store on failure: it opens again.
				db, err := store.Open(s.DBPath, store.Options{LockTimeout: time.Second})
				if err != nil {
					t.Fatalf("store still held after a failed Open: %v", err)
				}
				db.Close()
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if (s.email.mailbox != nil) != tt.imap || (s.email.mailer != nil) != tt.smtp {
				t.Errorf("mailbox built %v, mailer built %v; want %v, %v", s.email.mailbox != nil, s.email.mailer != nil, tt.imap, tt.smtp)
			}
			if got := len(s.kickers) - baseKickers; got != tt.extraKickers {
				t.Errorf("%d kickers besides those without email, want %d (the mailer's)", got, tt.extraKickers)
			}
		})
	}
}

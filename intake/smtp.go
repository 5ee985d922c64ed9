package intake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/casebot/casebot/triage"
)

// ErrMailDelivery wraps every failed attempt to send a reply email;
// ErrMailRefused a reply that is never attempted or that the server
// rejected for good (no usable recipient, a 5xx answer to the message).
var (
	ErrMailDelivery = errors.New("reply email not delivered")
	ErrMailRefused  = errors.New("reply email refused")
)

// MailerOptions configures NewMailer.
type MailerOptions struct {
	// Outbox holds the replies; Mailer drains its channel
	// triage.OutboundChannel(triage.SourceEmail). Required.
	Outbox triage.Outbox
	// Addr is the SMTP submission server, host:port. Required.
	Addr string
	// Username and Password authenticate with SASL PLAIN when Username is
	// set; they are never logged.
	Username string
	Password string
	// From is the support address replies come from, e.g.
	// "Shop Support <support@shop.example>". Required.
	From string
	// TLS is the encryption mode; TLSConfig, when set, its configuration.
	TLS       TLSMode
	TLSConfig *tls.Config
	// Ticket and Customer read the ticket a reply answers and its
	// customer, for the recipient and the subject. Required.
	Ticket   func(ctx context.Context, id string) (triage.Ticket, error)
	Customer func(ctx context.Context, id string) (triage.Customer, error)
	// OnFailed is told of a reply that failed MaxAttempts times or was
	// refused; it stays in the outbox and is not attempted again by this
	// Mailer. Called from Run's goroutine; nil ignores.
	OnFailed func(post triage.Post, err error)
	// Clock stamps the Date header; the system clock when nil.
	Clock triage.Clock
	// MaxAttempts, BaseDelay, MaxDelay, Timeout (per message, connection
	// included) and Poll default to the Default constants of
	// OutboundOptions when zero, with the same back-off.
	MaxAttempts int
	BaseDelay   time.Duration
	MaxDelay    time.Duration
	Timeout     time.Duration
	Poll        time.Duration
	// Logger receives a line per delivery and failure; discarded when nil.
	// Reply text and credentials are never logged.
	Logger *slog.Logger
}

// Mailer sends the replies people approved on email tickets (SPEC section
// 2): a text/plain UTF-8 message to the ticket's customer with In-Reply-To
// and References set to the Message-ID answered, so the customer's mail
// client keeps the thread. It drains the outbox like Outbound: replies to
// one ticket go out in order, retried with back-off, and a reply that
// fails for good is reported and kept.
type Mailer struct {
	opts    MailerOptions
	from    *mail.Address
	channel string
	log     *slog.Logger
	kick    chan struct{}

	mu     sync.Mutex
	nextAt map[string]time.Time // post ID → earliest next attempt
	parked map[string]bool      // post IDs reported through OnFailed
}

// NewMailer returns a sender; call Run to start it. It returns an error for
// an unusable Addr or From and panics when Outbox, Ticket or Customer is
// nil, which is a wiring mistake.
func NewMailer(opts MailerOptions) (*Mailer, error) {
	switch {
	case opts.Outbox == nil:
		panic("intake: NewMailer with a nil Outbox")
	case opts.Ticket == nil:
		panic("intake: NewMailer with a nil Ticket")
	case opts.Customer == nil:
		panic("intake: NewMailer with a nil Customer")
	}
	if err := checkAddr(opts.Addr, opts.TLS); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	from, err := netmail.ParseAddress(opts.From)
	if err != nil || strings.ContainsFunc(opts.From, unicode.IsControl) {
		return nil, fmt.Errorf("smtp: From %q is not an email address", opts.From)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = DefaultBaseDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Clock == nil {
		opts.Clock = triage.SystemClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mailer{
		opts: opts, from: &mail.Address{Name: from.Name, Address: from.Address},
		channel: triage.OutboundChannel(triage.SourceEmail), log: log,
		kick: make(chan struct{}, 1), nextAt: map[string]time.Time{}, parked: map[string]bool{},
	}, nil
}

// Kick wakes Run to look at the outbox now, e.g. after an approval. It
// never blocks.
func (m *Mailer) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Run drains the outbox until ctx ends, then returns ctx's error. It sends
// at once on start, on Kick, when a retry falls due, and every Poll.
func (m *Mailer) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.kick:
		case <-timer.C:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		timer.Reset(m.drain(ctx))
	}
}

// drain sends every due reply once and returns how long to sleep, as
// Outbound.drain does: a ticket's later replies wait behind an earlier one
// that is backing off, and are reported with it when it fails for good.
func (m *Mailer) drain(ctx context.Context) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	posts, err := m.pending(ctx)
	if err != nil {
		m.log.LogAttrs(ctx, slog.LevelError, "smtp: reading the outbox", slog.Any("err", err))
		return m.opts.BaseDelay
	}
	wait := m.opts.Poll
	held := map[string]bool{}
	failed := map[string]bool{}
	for _, p := range posts {
		if ctx.Err() != nil {
			return 0
		}
		switch {
		case m.parked[p.ID]:
			failed[p.TicketID] = true
			continue
		case failed[p.TicketID]:
			m.park(ctx, p, fmt.Errorf("%w: an earlier reply to this ticket was not delivered", ErrMailRefused))
			wait = 0
			continue
		case held[p.TicketID]:
			continue
		}
		if d := time.Until(m.nextAt[p.ID]); d > 0 {
			held[p.TicketID] = true
			wait = min(wait, d)
			continue
		}
		if m.attempt(ctx, p) {
			wait = 0
			continue
		}
		if m.parked[p.ID] {
			failed[p.TicketID] = true
			wait = 0
			continue
		}
		held[p.TicketID] = true
		if d := time.Until(m.nextAt[p.ID]); d > 0 {
			wait = min(wait, d)
		}
	}
	return wait
}

// pending reads the channel's posts far enough to include a due one, so
// parked and backing-off replies cannot crowd out new ones.
func (m *Mailer) pending(ctx context.Context) ([]triage.Post, error) {
	const batch = 64
	for n := batch; ; n *= 2 {
		posts, err := m.opts.Outbox.Pending(ctx, m.channel, n)
		if err != nil {
			return nil, fmt.Errorf("pending %s: %w", m.channel, err)
		}
		due := 0
		for _, p := range posts {
			if !m.parked[p.ID] && p.Attempts < m.opts.MaxAttempts && !time.Now().Before(m.nextAt[p.ID]) {
				due++
			}
		}
		if due > 0 || len(posts) < n {
			return posts, nil
		}
	}
}

// attempt makes one attempt at p and records the outcome in the outbox. It
// reports whether p left the outbox.
func (m *Mailer) attempt(ctx context.Context, p triage.Post) bool {
	log := m.log.With(slog.String("post", p.ID), slog.String("ticket", p.TicketID))
	switch {
	case p.Attempts >= m.opts.MaxAttempts:
		// Failed for good in an earlier run: report it again, as that
		// run's report may have been lost with it.
		m.park(ctx, p, fmt.Errorf("%w after %d attempts", ErrMailDelivery, p.Attempts))
		return false
	case p.Kind != triage.PostCustomerReply:
		m.park(ctx, p, fmt.Errorf("%w: post kind %q is not a customer reply", ErrMailRefused, p.Kind))
		return false
	}
	err := m.send(ctx, p)
	if err == nil {
		delete(m.nextAt, p.ID)
		if err := m.opts.Outbox.Done(ctx, p, triage.SlackRef{}); err != nil {
			// Sent but still in the outbox: it is sent again later, with
			// the same Message-ID, which mail clients use to drop repeats.
			log.LogAttrs(ctx, slog.LevelError, "smtp: reply sent but not marked done", slog.Any("err", err))
			return false
		}
		log.LogAttrs(ctx, slog.LevelInfo, "smtp: reply sent", slog.Int("attempt", p.Attempts+1))
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	if errors.Is(err, ErrMailRefused) {
		m.park(ctx, p, err)
		return false
	}
	if rerr := m.opts.Outbox.Retry(ctx, p); rerr != nil {
		log.LogAttrs(ctx, slog.LevelError, "smtp: recording a failed attempt", slog.Any("err", rerr))
	}
	p.Attempts++
	log.LogAttrs(ctx, slog.LevelWarn, "smtp: attempt failed", slog.Int("attempt", p.Attempts), slog.Any("err", err))
	if p.Attempts >= m.opts.MaxAttempts {
		m.park(ctx, p, fmt.Errorf("after %d attempts: %w", p.Attempts, err))
		return false
	}
	m.nextAt[p.ID] = time.Now().Add(backoff(m.opts.BaseDelay, m.opts.MaxDelay, p.Attempts))
	return false
}

// park stops attempting p in this run and reports it; p stays in the
// outbox so the reply is never silently dropped.
func (m *Mailer) park(ctx context.Context, p triage.Post, err error) {
	m.parked[p.ID] = true
	delete(m.nextAt, p.ID)
	m.log.LogAttrs(ctx, slog.LevelError, "smtp: reply not delivered; kept in the outbox",
		slog.String("post", p.ID), slog.String("ticket", p.TicketID), slog.Any("err", err))
	if m.opts.OnFailed != nil {
		m.opts.OnFailed(p, err)
	}
}

// send composes p's message and submits it once.
func (m *Mailer) send(ctx context.Context, p triage.Post) error {
	t, err := m.opts.Ticket(ctx, p.TicketID)
	if errors.Is(err, triage.ErrNotFound) {
		return fmt.Errorf("%w: ticket %s: %w", ErrMailRefused, p.TicketID, err)
	}
	if err != nil {
		return fmt.Errorf("%w: ticket %s: %w", ErrMailDelivery, p.TicketID, err)
	}
	c, err := m.opts.Customer(ctx, t.CustomerID)
	if errors.Is(err, triage.ErrNotFound) {
		return fmt.Errorf("%w: customer %s: %w", ErrMailRefused, t.CustomerID, err)
	}
	if err != nil {
		return fmt.Errorf("%w: customer %s: %w", ErrMailDelivery, t.CustomerID, err)
	}
	to, err := recipient(c.Email)
	if err != nil {
		return fmt.Errorf("%w: customer %s: %w", ErrMailRefused, c.ID, err)
	}
	msg, err := m.compose(p, t, c, to)
	if err != nil {
		return fmt.Errorf("%w: composing the message: %w", ErrMailDelivery, err)
	}
	return m.submit(ctx, to, msg)
}

// recipient checks a stored customer address: one plain addr-spec, with
// nothing that could end a header line or an SMTP command.
func recipient(email string) (string, error) {
	if email == "" {
		return "", errors.New("no email address")
	}
	if strings.ContainsFunc(email, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
		return "", errors.New("email address contains white space or control characters")
	}
	a, err := netmail.ParseAddress(email)
	if err != nil || a.Address != email {
		return "", errors.New("email address is not a plain address")
	}
	return email, nil
}

// compose renders the reply: a single text/plain UTF-8 part, quoted-printable.
// Every header value that comes from customer data (name, subject, the
// Message-ID answered) is reduced to one line first, so none can add a
// header.
func (m *Mailer) compose(p triage.Post, t triage.Ticket, c triage.Customer, to string) ([]byte, error) {
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{m.from})
	h.SetAddressList("To", []*mail.Address{{Name: clip(oneLine(c.Name), 200), Address: to}})
	h.SetSubject(ReplySubject(t.Subject))
	h.SetDate(m.opts.Clock.Now())
	h.SetMessageID(m.messageID(p))
	// The answered Message-ID is the ticket's ReplyTo, customer data: it is
	// used only when it is exactly one well-formed identifier.
	ref := strings.TrimSpace(p.ThreadTS)
	ref = strings.TrimSuffix(strings.TrimPrefix(ref, "<"), ">")
	if validMsgID(ref) {
		h.SetMsgIDList("In-Reply-To", []string{ref})
		h.SetMsgIDList("References", []string{ref})
	}
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	var buf bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, strings.ToValidUTF8(p.Text, "\uFFFD")); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReplySubject is "Re: " and the original subject, without stacking a
// second reply prefix (Re, AW, SV, Antw, in any case) on one already there.
func ReplySubject(subject string) string {
	s := clip(oneLine(subject), maxShort)
	if s == "" {
		return "Re: Your message"
	}
	head, _, ok := strings.Cut(s, ":")
	if ok {
		switch strings.ToLower(strings.TrimSpace(head)) {
		case "re", "aw", "sv", "antw":
			return s
		}
	}
	return "Re: " + s
}

// messageID is the reply's Message-ID: derived from the post, so every
// retry of one reply carries the same ID and a client that got it twice
// can drop the repeat, and unique to the reply otherwise.
func (m *Mailer) messageID(p triage.Post) string {
	sum := sha256.New()
	for _, s := range []string{p.ID, p.TicketID, strconv.FormatInt(p.CreatedAt.UnixNano(), 10), p.Text} {
		sum.Write([]byte(s))
		sum.Write([]byte{0})
	}
	domain := m.from.Address[strings.LastIndexByte(m.from.Address, '@')+1:]
	return "casebot." + hex.EncodeToString(sum.Sum(nil))[:32] + "@" + domain
}

// submit delivers msg to the submission server once, within Timeout.
func (m *Mailer) submit(ctx context.Context, to string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	host, _, _ := net.SplitHostPort(m.opts.Addr)
	cfg := &tls.Config{}
	if m.opts.TLSConfig != nil {
		cfg = m.opts.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.opts.Addr)
	if err != nil {
		return fmt.Errorf("%w: connect to %s: %w", ErrMailDelivery, m.opts.Addr, err)
	}
	// SMTP commands do not take a context; closing the connection is how
	// the timeout or a shutdown interrupts them.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var c *smtp.Client
	switch m.opts.TLS {
	case TLSStartTLS:
		c, err = smtp.NewClientStartTLS(conn, cfg)
		if err != nil {
			return fmt.Errorf("%w: STARTTLS with %s: %w", ErrMailDelivery, m.opts.Addr, err)
		}
	case TLSInsecure:
		c = smtp.NewClient(conn)
	default:
		c = smtp.NewClient(tls.Client(conn, cfg))
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = m.opts.Timeout, m.opts.Timeout
	if m.opts.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", m.opts.Username, m.opts.Password)); err != nil {
			return fmt.Errorf("%w: login as %q: %w", ErrMailDelivery, m.opts.Username, err)
		}
	}
	if err := c.Mail(m.from.Address, nil); err != nil {
		return transaction("MAIL FROM", err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return transaction("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return transaction("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("%w: writing the message: %w", ErrMailDelivery, err)
	}
	if err := w.Close(); err != nil {
		return transaction("end of DATA", err)
	}
	// The message is accepted; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// transaction classifies a server's answer to the message itself: a 5xx is
// a rejection that retrying will not change, anything else may pass later.
func transaction(stage string, err error) error {
	if se, ok := errors.AsType[*smtp.SMTPError](err); ok && se.Code >= 500 {
		return fmt.Errorf("%w: %s: %w", ErrMailRefused, stage, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrMailDelivery, stage, err)
}

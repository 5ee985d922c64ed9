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
	// OnDelivered is told of every reply sent, with the time, so its
	// delivery can be recorded (triage.Triager.ReplyDelivered); a reply
	// sent again after a failure to mark it done is told again. Called from
	// Run's goroutine; nil ignores.
	OnDelivered func(post triage.Post, at time.Time)
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
	drainer
	opts MailerOptions
	from *mail.Address
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
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Clock == nil {
		opts.Clock = triage.SystemClock{}
	}
	m := &Mailer{opts: opts, from: &mail.Address{Name: from.Name, Address: from.Address}}
	m.drainer = drainer{
		outbox: opts.Outbox, channel: triage.OutboundChannel(triage.SourceEmail), name: "smtp",
		onFailed: opts.OnFailed, onDelivered: opts.OnDelivered, clock: opts.Clock, maxAttempts: opts.MaxAttempts, baseDelay: opts.BaseDelay, maxDelay: opts.MaxDelay, poll: opts.Poll,
		errDelivery: ErrMailDelivery, errRefused: ErrMailRefused,
		send: m.send,
		// A refusal (no recipient, a 5xx to the message) stays one.
		classify: func(err error) (bool, time.Duration) { return errors.Is(err, ErrMailRefused), 0 },
		// A repeat carries the same Message-ID, which mail clients use to
		// drop it.
		logSent: "reply sent", logNotDone: "reply sent but not marked done",
	}
	m.drainer.init(opts.Logger)
	return m, nil
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
	addr, err := replyAddress(t, c)
	if err != nil {
		return fmt.Errorf("%w: ticket %s: %w", ErrMailRefused, t.ID, err)
	}
	to, err := recipient(addr)
	if err != nil {
		return fmt.Errorf("%w: ticket %s: %w", ErrMailRefused, t.ID, err)
	}
	msg, err := m.compose(p, t, c, to)
	if err != nil {
		return fmt.Errorf("%w: composing the message: %w", ErrMailDelivery, err)
	}
	return m.submit(ctx, to, msg)
}

// errNoReplyAddress is why a ticket stored before tickets kept their own
// address gets no email when its customer has several: any one of them may
// belong to someone else.
var errNoReplyAddress = errors.New("no reply address on the ticket and the customer has several addresses")

// replyAddress is where email about t goes: the address t came from. A
// ticket stored before tickets kept it falls back to its customer's address
// only when that customer has just one, so a merge through a shared handle
// or Slack ID never sends one person's conversation to another address.
func replyAddress(t triage.Ticket, c triage.Customer) (string, error) {
	if t.ReplyAddress != "" {
		return t.ReplyAddress, nil
	}
	switch all := c.AllEmails(); len(all) {
	case 0:
		return "", errors.New("no email address")
	case 1:
		return all[0], nil
	}
	return "", errNoReplyAddress
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
	// The customer's name is the record's first one; it goes with its
	// first address only, so a merged address never sees someone else's.
	name := ""
	if strings.EqualFold(c.Email, to) {
		name = clip(oneLine(c.Name), 200)
	}
	h.SetAddressList("To", []*mail.Address{{Name: name, Address: to}})
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

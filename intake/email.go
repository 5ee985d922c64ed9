package intake

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/casebot/casebot/triage"
)

// TLSMode says how a mail connection is encrypted.
type TLSMode int

// The TLS modes of MailboxOptions and MailerOptions. The zero value is
// implicit TLS, so a configuration that forgets the mode is still encrypted.
const (
	// TLSImplicit speaks TLS from the first byte (IMAPS 993, SMTPS 465).
	TLSImplicit TLSMode = iota
	// TLSStartTLS upgrades a plain connection with STARTTLS before logging
	// in (IMAP 143, submission 587); a server that refuses fails the
	// connection rather than sending the password in clear.
	TLSStartTLS
	// TLSInsecure sends everything, password included, in clear: for tests
	// and a relay on the same host only.
	TLSInsecure
)

// String names the mode as configuration spells it.
func (m TLSMode) String() string {
	switch m {
	case TLSImplicit:
		return "tls"
	case TLSStartTLS:
		return "starttls"
	case TLSInsecure:
		return "insecure"
	}
	return fmt.Sprintf("TLSMode(%d)", int(m))
}

// Defaults of MailboxOptions.
const (
	DefaultMailbox      = "INBOX"
	DefaultPollInterval = time.Minute
	// DefaultReconnectDelay and DefaultReconnectMax bound the back-off
	// between connection attempts after an error.
	DefaultReconnectDelay = time.Second
	DefaultReconnectMax   = 5 * time.Minute
	// dialTimeout bounds connecting to the server.
	dialTimeout = 30 * time.Second
)

// MailboxOptions configures NewMailbox.
type MailboxOptions struct {
	// Addr is the IMAP server, host:port. Required.
	Addr string
	// Username and Password log in; they are never logged.
	Username string
	Password string
	// Mailbox is the folder to read; DefaultMailbox when empty. casebot
	// takes a message as handled when it is \Seen, so the folder should be
	// casebot's own: a person reading it first hides a message from it.
	Mailbox string
	// TLS is the encryption mode; TLSConfig, when set, its configuration
	// (e.g. a private CA); the server name is taken from Addr otherwise.
	TLS       TLSMode
	TLSConfig *tls.Config
	// PollInterval is how often the mailbox is searched for new mail; with
	// IDLE it only bounds how long a missed notification can delay a
	// message. DefaultPollInterval when 0.
	PollInterval time.Duration
	// MaxSize is the largest message read whole; a larger one becomes a
	// ticket from its header with a note to read it in the mailbox.
	// DefaultMaxEmailSize when 0.
	MaxSize int64
	// ReconnectDelay and ReconnectMax bound the back-off after an error;
	// the Default constants when 0.
	ReconnectDelay time.Duration
	ReconnectMax   time.Duration

	// Intake stores a new ticket and returns after the commit (the
	// Triager's Intake). A message already stored returns the existing
	// ticket and an error wrapping triage.ErrDuplicate. Required.
	Intake func(ctx context.Context, in triage.Inbound) (triage.Ticket, error)
	// Append adds a reply to an existing ticket (the Triager's
	// AppendEntry); a reply already on the ticket is answered with an
	// error wrapping triage.ErrDuplicate, which counts as added. Required.
	Append func(ctx context.Context, ticketID string, e triage.Entry) error
	// FindThread returns the ticket whose first message (ExternalID) or
	// answered message (ReplyTo) is one of messageIDs, which come without
	// angle brackets, nearest ancestor first. Required.
	FindThread func(ctx context.Context, messageIDs []string) (ticketID string, ok bool, err error)
	// Ticket and Customer read a stored ticket and customer (Tickets.Get,
	// Tickets.Customer): a reply is appended only when its sender is the
	// ticket's customer. Required.
	Ticket   func(ctx context.Context, id string) (triage.Ticket, error)
	Customer func(ctx context.Context, id string) (triage.Customer, error)
	// Enqueue hands a stored ticket to classification, new or a repeat of
	// one still unclassified; it must not block. Required.
	Enqueue func(ticketID string)
	// Clock stamps messages without a usable date; the system clock when
	// nil.
	Clock triage.Clock
	// Logger receives a line per message and per connection problem;
	// discarded when nil. Message text and credentials are never logged.
	Logger *slog.Logger
}

// Mailbox reads customer email from an IMAP folder into tickets (SPEC
// section 2). A message is marked \Seen only after its ticket or entry is
// committed, so a crash or an error at any point leaves it unseen, to be
// read again; the re-read is deduplicated by Message-ID in the store.
//
// A message whose In-Reply-To or References name a known ticket, from that
// ticket's customer, is appended to it as an entry; any other message is a
// new ticket. Auto-replies and bounces are marked \Seen without a ticket.
type Mailbox struct {
	opts MailboxOptions
	log  *slog.Logger

	// mu serialises Run; the fields below belong to the running loop.
	mu sync.Mutex
	// validity is the UIDVALIDITY the UIDs in unreadable refer to.
	validity uint32
	// unreadable holds the UIDs of unseen messages ParseEmail refused, so
	// they are not fetched again on every pass; a restart tries them once
	// more. Everything else unseen is read again on each pass until it is
	// marked: a message committed but not marked is deduplicated by the
	// store.
	unreadable map[imap.UID]bool
}

// NewMailbox returns a poller; call Run to start it. It returns an error
// for an unusable Addr and panics when a required function is nil, which
// is a wiring mistake.
func NewMailbox(opts MailboxOptions) (*Mailbox, error) {
	switch {
	case opts.Intake == nil:
		panic("intake: NewMailbox with a nil Intake")
	case opts.Append == nil:
		panic("intake: NewMailbox with a nil Append")
	case opts.FindThread == nil:
		panic("intake: NewMailbox with a nil FindThread")
	case opts.Ticket == nil:
		panic("intake: NewMailbox with a nil Ticket")
	case opts.Customer == nil:
		panic("intake: NewMailbox with a nil Customer")
	case opts.Enqueue == nil:
		panic("intake: NewMailbox with a nil Enqueue")
	}
	if err := checkAddr(opts.Addr, opts.TLS); err != nil {
		return nil, fmt.Errorf("imap: %w", err)
	}
	if opts.Mailbox == "" {
		opts.Mailbox = DefaultMailbox
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxEmailSize
	}
	if opts.ReconnectDelay <= 0 {
		opts.ReconnectDelay = DefaultReconnectDelay
	}
	if opts.ReconnectMax <= 0 {
		opts.ReconnectMax = DefaultReconnectMax
	}
	if opts.Clock == nil {
		opts.Clock = triage.SystemClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mailbox{opts: opts, log: log.With(slog.String("mailbox", opts.Mailbox)), unreadable: map[imap.UID]bool{}}, nil
}

// checkAddr accepts host:port and a known TLS mode.
func checkAddr(addr string, mode TLSMode) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("address %q must be host:port", addr)
	}
	if mode < TLSImplicit || mode > TLSInsecure {
		return fmt.Errorf("unknown TLS mode %d", int(mode))
	}
	return nil
}

// Run reads the mailbox until ctx ends, then returns ctx's error. It
// reconnects after any error with exponential back-off (jittered, capped at
// ReconnectMax), reset once a connection has read the mailbox cleanly.
func (m *Mailbox) Run(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	failures := 0
	for {
		healthy, err := m.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if healthy {
			failures = 0
		}
		failures++
		wait := backoff(m.opts.ReconnectDelay, m.opts.ReconnectMax, failures)
		m.log.LogAttrs(ctx, slog.LevelWarn, "imap: connection ended; reconnecting",
			slog.Any("err", err), slog.Duration("after", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// backoff is the delay before attempt n+1: base·2^(n-1), at most max, the
// upper half jittered so that many clients do not retry in step.
func backoff(base, max time.Duration, n int) time.Duration {
	d := min(base, max)
	for i := 1; i < n && d < max; i++ {
		d = min(d, max/2) * 2
	}
	return d/2 + rand.N(d/2+1)
}

// session connects, reads the mailbox and waits for more until an error.
// healthy reports whether at least one full pass succeeded.
func (m *Mailbox) session(ctx context.Context) (healthy bool, err error) {
	// The server announces new mail (EXISTS) at any time, during IDLE or
	// in answer to another command; one pending wake-up is enough.
	wake := make(chan struct{}, 1)
	c, err := m.dial(wake)
	if err != nil {
		return false, err
	}
	defer c.Close()
	// Commands block on the network; closing the connection is how a
	// cancelled ctx interrupts them.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	if err := c.Login(m.opts.Username, m.opts.Password).Wait(); err != nil {
		return false, fmt.Errorf("imap login as %q: %w", m.opts.Username, err)
	}
	sel, err := c.Select(m.opts.Mailbox, nil).Wait()
	if err != nil {
		return false, fmt.Errorf("imap select %q: %w", m.opts.Mailbox, err)
	}
	if sel.UIDValidity != m.validity {
		// UIDs from another validity name other messages.
		m.validity, m.unreadable = sel.UIDValidity, map[imap.UID]bool{}
	}
	caps := c.Caps()
	idle := caps.Has(imap.CapIdle) || caps.Has(imap.CapIMAP4rev2)
	m.log.LogAttrs(ctx, slog.LevelInfo, "imap: connected", slog.Bool("idle", idle),
		slog.Uint64("messages", uint64(sel.NumMessages)))
	for {
		select {
		case <-wake:
		default:
		}
		if err := m.pass(ctx, c); err != nil {
			return healthy, err
		}
		healthy = true
		if err := m.wait(ctx, c, idle, wake); err != nil {
			return healthy, err
		}
	}
}

// dial connects in the configured TLS mode; new-mail notifications go to
// wake without blocking the client's reader.
func (m *Mailbox) dial(wake chan struct{}) (*imapclient.Client, error) {
	opts := &imapclient.Options{
		TLSConfig: m.opts.TLSConfig,
		Dialer:    &net.Dialer{Timeout: dialTimeout},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages == nil {
					return
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			},
		},
	}
	var c *imapclient.Client
	var err error
	switch m.opts.TLS {
	case TLSStartTLS:
		c, err = imapclient.DialStartTLS(m.opts.Addr, opts)
	case TLSInsecure:
		c, err = imapclient.DialInsecure(m.opts.Addr, opts)
	default:
		c, err = imapclient.DialTLS(m.opts.Addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("imap connect to %s (%s): %w", m.opts.Addr, m.opts.TLS, err)
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imap greeting from %s: %w", m.opts.Addr, err)
	}
	return c, nil
}

// wait returns when new mail may have arrived: on a notification (in IDLE
// when the server offers it) or after PollInterval.
func (m *Mailbox) wait(ctx context.Context, c *imapclient.Client, idle bool, wake chan struct{}) error {
	timer := time.NewTimer(m.opts.PollInterval)
	defer timer.Stop()
	if !idle {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-timer.C:
		}
		return nil
	}
	cmd, err := c.Idle()
	if err != nil {
		return fmt.Errorf("imap idle: %w", err)
	}
	lost := false
	select {
	case <-ctx.Done():
	case <-wake:
	case <-timer.C:
	case <-c.Closed():
		lost = true
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("imap idle: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("imap idle: %w", err)
	}
	if lost {
		return errors.New("imap: connection closed by the server")
	}
	return ctx.Err()
}

// pass handles every unseen message, oldest first. It stops at the first
// message that could not be committed, so a reply is never handled before
// the message it answers.
func (m *Mailbox) pass(ctx context.Context, c *imapclient.Client) error {
	// NOOP makes the server report messages that arrived since the last
	// command, so the search below sees them.
	if err := c.Noop().Wait(); err != nil {
		return fmt.Errorf("imap noop: %w", err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("imap search: %w", err)
	}
	uids := data.AllUIDs()
	slices.Sort(uids)
	// A UID no longer unseen was marked or removed by someone; forget it.
	for uid := range m.unreadable {
		if _, found := slices.BinarySearch(uids, uid); !found {
			delete(m.unreadable, uid)
		}
	}
	for _, uid := range uids {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if m.unreadable[uid] {
			continue
		}
		if err := m.handleUID(ctx, c, uid); err != nil {
			return err
		}
	}
	return nil
}

// handleUID reads one message, commits it and marks it \Seen.
func (m *Mailbox) handleUID(ctx context.Context, c *imapclient.Client, uid imap.UID) error {
	log := m.log.With(slog.Uint64("uid", uint64(uid)))
	meta, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true}).Collect()
	if err != nil {
		return fmt.Errorf("imap fetch uid %d: %w", uid, err)
	}
	if len(meta) == 0 {
		return nil // expunged meanwhile
	}
	size, internal := meta[0].RFC822Size, meta[0].InternalDate
	e, err := m.read(c, uid, size)
	if err != nil {
		if _, ok := errors.AsType[*parseError](err); !ok {
			return err
		}
		// Not mail casebot can read. It stays unseen in the mailbox for a
		// person, and is not read again until a restart.
		log.LogAttrs(ctx, slog.LevelError, "imap: message not readable; left unseen", slog.Any("err", err))
		m.unreadable[uid] = true
		return nil
	}
	log = log.With(slog.String("message_id", e.MessageID))
	if err := m.handle(ctx, log, e, internal); err != nil {
		return err
	}
	err = c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
		Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
	if err != nil {
		return fmt.Errorf("imap mark uid %d seen: %w", uid, err)
	}
	return nil
}

// parseError is a message that ParseEmail refused.
type parseError struct{ err error }

func (e *parseError) Error() string { return "parse: " + e.err.Error() }
func (e *parseError) Unwrap() error { return e.err }

// read fetches and parses one message without setting \Seen (BODY.PEEK).
// A message over MaxSize is read from its header alone, with a note in
// place of its text.
func (m *Mailbox) read(c *imapclient.Client, uid imap.UID, size int64) (Email, error) {
	section := &imap.FetchItemBodySection{Peek: true}
	oversized := size > m.opts.MaxSize
	if oversized {
		section.Specifier = imap.PartSpecifierHeader
	}
	cmd := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
	var e Email
	var perr error
	found := false
	if msg := cmd.Next(); msg != nil {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if body, ok := item.(imapclient.FetchItemDataBodySection); ok && !found {
				found = true
				// Parsed as it streams in: attachments pass by unread.
				e, perr = ParseEmailLimit(body.Literal, m.opts.MaxSize)
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return e, fmt.Errorf("imap fetch uid %d: %w", uid, err)
	}
	switch {
	case !found:
		return e, &parseError{fmt.Errorf("uid %d: the server sent no body", uid)}
	case perr != nil:
		return e, &parseError{perr}
	case oversized:
		e.Body = fmt.Sprintf("[casebot: this email is %.1f MB, over the %.1f MB limit, so its text was not read. "+
			"Open it in the support mailbox.]", float64(size)/(1<<20), float64(m.opts.MaxSize)/(1<<20))
	}
	return e, nil
}

// handle commits one parsed message: an entry on the ticket it answers, or
// a new ticket.
func (m *Mailbox) handle(ctx context.Context, log *slog.Logger, e Email, internal time.Time) error {
	if e.Automatic {
		log.LogAttrs(ctx, slog.LevelInfo, "imap: auto-reply or delivery report; no ticket")
		return nil
	}
	now := m.opts.Clock.Now()
	in := e.Inbound(now)
	if !internal.IsZero() && !internal.After(now) {
		// The mail server's arrival time (INTERNALDATE) is when the message
		// reached casebot's mailbox, whatever the sender's Date says, and
		// is stable across re-reads, unlike now.
		in.ReceivedAt = internal
	}
	if ids := e.ThreadIDs(); len(ids) > 0 {
		id, ok, err := m.opts.FindThread(ctx, ids)
		if err != nil {
			return fmt.Errorf("find thread: %w", err)
		}
		if ok {
			appended, err := m.appendReply(ctx, log, id, e, in)
			if err != nil || appended {
				return err
			}
		}
	}
	t, err := m.opts.Intake(ctx, in)
	repeat, err := enqueueStored(t, err, m.opts.Enqueue)
	switch {
	case err != nil:
		return fmt.Errorf("intake: %w", err)
	case repeat:
		log.LogAttrs(ctx, slog.LevelInfo, "imap: message already stored", slog.String("ticket", t.ID))
	default:
		log.LogAttrs(ctx, slog.LevelInfo, "imap: ticket stored", slog.String("ticket", t.ID))
	}
	return nil
}

// appendReply adds e to ticket id when e's sender is the address the ticket
// came from (its ReplyAddress, or for a ticket stored before tickets kept
// it, its customer's only address); AppendEntry keeps a re-read from adding
// it twice. It reports false, with no error, for any other sender, even
// another address merged into the same customer: their message becomes its
// own ticket, answered at their own address. So nobody can add text to
// another customer's case by quoting a Message-ID, and a merge through a
// shared handle never puts one person's words in a conversation answered
// at another address.
func (m *Mailbox) appendReply(ctx context.Context, log *slog.Logger, id string, e Email, in triage.Inbound) (bool, error) {
	t, err := m.opts.Ticket(ctx, id)
	if err != nil {
		return false, fmt.Errorf("ticket %s: %w", id, err)
	}
	c, err := m.opts.Customer(ctx, t.CustomerID)
	if err != nil {
		return false, fmt.Errorf("customer %s: %w", t.CustomerID, err)
	}
	addr, err := replyAddress(t, c)
	if err != nil || e.From == "" || !strings.EqualFold(addr, e.From) {
		log.LogAttrs(ctx, slog.LevelInfo, "imap: reply from someone other than the ticket's customer; new ticket",
			slog.String("thread_ticket", id))
		return false, nil
	}
	body := in.Body
	if len(in.Attachments) > 0 {
		body = strings.TrimSpace(body + "\n\n[attachments: " + strings.Join(in.Attachments, ", ") + "]")
	}
	entry := triage.Entry{At: in.ReceivedAt, Author: e.From, Body: body}
	err = m.opts.Append(ctx, id, entry)
	switch {
	case errors.Is(err, triage.ErrDuplicate):
		log.LogAttrs(ctx, slog.LevelInfo, "imap: reply already on the ticket", slog.String("ticket", id))
		return true, nil
	case err != nil:
		return false, fmt.Errorf("append to ticket %s: %w", id, err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "imap: reply added to ticket", slog.String("ticket", id))
	return true, nil
}

package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// Ticket and customer IDs are a short prefix and a zero-padded per-bucket
// sequence: easy to read aloud and type in `/casebot ticket CB-001042`, and
// sorted by creation up to a million of each.
const (
	ticketIDFormat   = "CB-%06d"
	customerIDFormat = "CU-%06d"
)

// ActionReceived is the audit action of a newly stored ticket.
const ActionReceived = "received"

// windowBatchSize bounds how many tickets Window decodes per read
// transaction, so memory stays flat over large windows and no transaction is
// held open while the caller's function runs.
const windowBatchSize = 512

// Compile-time check that DB is the store the domain expects.
var _ triage.Tickets = (*DB)(nil)

// buckets holds the buckets of one transaction.
type buckets struct {
	meta, tickets, customers, identity, external, byTime, byCustomer, audit, outbox, metrics *bolt.Bucket
	due, dueTicket                                                                           *bolt.Bucket
}

func bucketsOf(tx *bolt.Tx) buckets {
	return buckets{
		meta:       tx.Bucket(bucketMeta),
		tickets:    tx.Bucket(bucketTickets),
		customers:  tx.Bucket(bucketCustomers),
		identity:   tx.Bucket(bucketIdentity),
		external:   tx.Bucket(bucketExternal),
		byTime:     tx.Bucket(bucketByTime),
		byCustomer: tx.Bucket(bucketByCustomer),
		audit:      tx.Bucket(bucketAudit),
		outbox:     tx.Bucket(bucketOutbox),
		metrics:    metricsBucket(tx),
		due:        tx.Bucket(bucketDue),
		dueTicket:  tx.Bucket(bucketDueTicket),
	}
}

// Create stores t as a new ticket. In one transaction it assigns the ticket
// ID, finds or creates the customer by identity (triage.CustomerKey: the same
// email, Slack user ID or handle is the same customer; customer.ID is
// ignored), sets t.CustomerID, and writes the ticket, its index entries and a
// "received" audit event. A zero ReceivedAt becomes the clock's now and an
// empty State becomes received. On success *t is updated to the stored
// ticket. Concurrent Creates may share a transaction (see groupCommitter);
// each returns only after the commit that holds its ticket.
//
// A ticket whose source and external ID are already stored is not written
// again: Create returns the existing ticket and an error wrapping
// triage.ErrDuplicate. A ticket without an external ID is never a duplicate.
func (db *DB) Create(ctx context.Context, t *triage.Ticket, customer triage.Customer) (triage.Ticket, error) {
	if t == nil {
		return triage.Ticket{}, errors.New("create ticket: nil ticket")
	}
	if err := ctx.Err(); err != nil {
		return triage.Ticket{}, fmt.Errorf("create ticket: %w", err)
	}
	req := &createReq{ticket: *t, customer: customer, now: db.clock.Now()}
	db.create(req)
	if req.err != nil {
		return triage.Ticket{}, fmt.Errorf("create ticket from %s %q: %w", t.Source, clip(t.ExternalID), req.err)
	}
	stored := req.stored
	if req.dup {
		return stored, fmt.Errorf("%s message %q is already ticket %s: %w",
			t.Source, clip(t.ExternalID), stored.ID, triage.ErrDuplicate)
	}
	*t = stored
	return stored, nil
}

// clip shortens untrusted text quoted in an error so a hostile external ID
// cannot flood the logs.
func clip(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}

// createTx is the body of Create's transaction: it returns the stored ticket,
// or the existing one and true for a duplicate, which writes nothing.
func createTx(b buckets, t triage.Ticket, customer triage.Customer, now time.Time) (triage.Ticket, bool, error) {
	if t.ExternalID != "" {
		if id := b.external.Get(externalKey(t.Source, t.ExternalID)); id != nil {
			existing, err := getTicket(b, string(id))
			if err != nil {
				return t, false, fmt.Errorf("duplicate of %s: %w", id, err)
			}
			return existing, true, nil
		}
	}
	if t.ReceivedAt.IsZero() {
		t.ReceivedAt = now
	}
	if t.State == "" {
		t.State = triage.StateReceived
	}
	if t.ReplyAddress == "" {
		t.ReplyAddress = strings.TrimSpace(customer.Email)
	}
	if t.SlackAuthor == "" {
		t.SlackAuthor = strings.TrimSpace(customer.SlackUserID)
	}
	cust, err := upsertCustomer(b, customer, t.ReceivedAt, t.OrderRef, t.Classification.Amount)
	if err != nil {
		return t, false, err
	}
	seq, err := b.tickets.NextSequence()
	if err != nil {
		return t, false, fmt.Errorf("next ticket ID: %w", err)
	}
	t.ID = fmt.Sprintf(ticketIDFormat, seq)
	t.CustomerID = cust.ID
	if err := putTicket(b, t); err != nil {
		return t, false, err
	}
	if t.ExternalID != "" {
		if err := b.external.Put(externalKey(t.Source, t.ExternalID), []byte(t.ID)); err != nil {
			return t, false, fmt.Errorf("external index: %w", err)
		}
	}
	if err := b.byTime.Put(byTimeKey(t.ReceivedAt, t.ID), []byte(t.ID)); err != nil {
		return t, false, fmt.Errorf("time index: %w", err)
	}
	if err := b.byCustomer.Put(byCustomerKey(t.CustomerID, t.ReceivedAt, t.ID), []byte(t.ID)); err != nil {
		return t, false, fmt.Errorf("customer index: %w", err)
	}
	if err := addTicketCount(b.meta, 1); err != nil {
		return t, false, err
	}
	err = putEvent(b, triage.AuditEvent{
		TicketID: t.ID,
		At:       now,
		Actor:    triage.ActorSystem,
		Action:   ActionReceived,
		To:       t.State,
	}, &t)
	return t, false, err
}

// upsertCustomer finds the customer owning the first of in's identity keys
// that is known (keys are strongest first), or creates one, and merges in's
// details into it. Keys not yet known are claimed for that customer; a key
// already owned by a different customer stays with that customer, so two
// existing records are never silently fused. Every email address the
// customer owns is kept in Emails. The new ticket's order amount is added
// to the lifetime spend here, once: a redelivered ticket is refused before.
func upsertCustomer(b buckets, in triage.Customer, seen time.Time, orderRef string, amount triage.Money) (triage.Customer, error) {
	var (
		c     triage.Customer
		old   []byte
		found bool
	)
	for _, k := range triage.CustomerKey(in.Email, in.SlackUserID, in.Handle) {
		id := b.identity.Get([]byte(k))
		if id == nil {
			continue
		}
		old = b.customers.Get(id)
		if old == nil {
			return c, fmt.Errorf("identity %q points to missing customer %s: %w", k, id, ErrCorrupt)
		}
		if err := decodeRecord(old, &c); err != nil {
			return c, fmt.Errorf("customer %s: %w", id, err)
		}
		found = true
		break
	}
	if !found {
		seq, err := b.customers.NextSequence()
		if err != nil {
			return c, fmt.Errorf("next customer ID: %w", err)
		}
		c = triage.Customer{ID: fmt.Sprintf(customerIDFormat, seq), FirstSeen: seen}
	}

	identities := []struct {
		keys  []string
		field *string
		value string
	}{
		{triage.CustomerKey(in.Email, "", ""), &c.Email, in.Email},
		{triage.CustomerKey("", in.SlackUserID, ""), &c.SlackUserID, in.SlackUserID},
		{triage.CustomerKey("", "", in.Handle), &c.Handle, in.Handle},
	}
	for _, id := range identities {
		if len(id.keys) == 0 {
			continue
		}
		key := []byte(id.keys[0])
		owner := b.identity.Get(key)
		if owner != nil && string(owner) != c.ID {
			continue
		}
		if owner == nil {
			if err := b.identity.Put(key, []byte(c.ID)); err != nil {
				return c, fmt.Errorf("identity index: %w", err)
			}
		}
		if *id.field == "" {
			*id.field = id.value
		}
	}
	if e := strings.TrimSpace(in.Email); e != "" && string(b.identity.Get([]byte(triage.CustomerKey(e, "", "")[0]))) == c.ID && !c.HasEmail(e) {
		c.Emails = append(c.AllEmails(), e)
	}
	if c.Name == "" {
		c.Name = in.Name
	}
	for _, tag := range in.Tags {
		if !slices.Contains(c.Tags, tag) {
			c.Tags = append(c.Tags, tag)
		}
	}
	c.VIP = c.VIP || in.VIP
	c.ReportSpend(in.Lifetime)
	c.AddOrder(orderRef, amount)
	if !in.FirstSeen.IsZero() && in.FirstSeen.Before(c.FirstSeen) {
		c.FirstSeen = in.FirstSeen
	}

	raw, err := encodeRecord(c)
	if err != nil {
		return c, fmt.Errorf("encode customer %s: %w", c.ID, err)
	}
	if bytes.Equal(raw, old) {
		return c, nil
	}
	if err := b.customers.Put([]byte(c.ID), raw); err != nil {
		return c, fmt.Errorf("put customer %s: %w", c.ID, err)
	}
	return c, nil
}

// Get returns the ticket with the given ID, or an error wrapping
// triage.ErrNotFound.
func (db *DB) Get(ctx context.Context, id string) (triage.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return triage.Ticket{}, fmt.Errorf("get ticket %s: %w", id, err)
	}
	var t triage.Ticket
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		t, err = getTicket(bucketsOf(tx), id)
		return err
	})
	return t, err
}

// Update runs fn on the stored ticket inside a write transaction and stores
// the changed ticket together with the audit event fn returns and the event's
// Posts, which go into the outbox (see Enqueue). If fn fails, nothing is
// written or enqueued and its error is returned wrapped.
//
// The event must name its Actor and Action. Empty fields are filled in:
// TicketID with id, At with the clock's now, From with the state before fn
// and To with the state after it. A post's empty TicketID becomes id, its
// zero CreatedAt the event's time, and its empty Channel the ticket's
// Route.Channel after fn; a post left with no channel fails the whole Update
// with ErrNoChannel. fn may not change the fields the indexes are built from
// (ID, Source, ExternalID, CustomerID, ReceivedAt).
func (db *DB) Update(ctx context.Context, id string, fn func(*triage.Ticket) (triage.AuditEvent, error)) (triage.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return triage.Ticket{}, fmt.Errorf("update ticket %s: %w", id, err)
	}
	now := db.clock.Now()
	var out triage.Ticket
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		before, err := getTicket(b, id)
		if err != nil {
			return err
		}
		t := before
		ev, err := fn(&t)
		if err != nil {
			return err
		}
		if err := checkIndexedFields(before, t); err != nil {
			return err
		}
		if ev.TicketID == "" {
			ev.TicketID = id
		}
		switch {
		case ev.TicketID != id:
			return fmt.Errorf("audit event names ticket %s", ev.TicketID)
		case ev.Actor == "":
			return errors.New("audit event has no actor")
		case ev.Action == "":
			return errors.New("audit event has no action")
		}
		if ev.At.IsZero() {
			ev.At = now
		}
		if ev.From == "" {
			ev.From = before.State
		}
		if ev.To == "" {
			ev.To = t.State
		}
		if err := putTicket(b, t); err != nil {
			return err
		}
		if err := putEvent(b, ev, &t); err != nil {
			return err
		}
		out = t
		return nil
	})
	if err != nil {
		return triage.Ticket{}, fmt.Errorf("update ticket %s: %w", id, err)
	}
	return out, nil
}

// checkIndexedFields refuses changes that would leave index entries pointing
// at the wrong place.
func checkIndexedFields(before, after triage.Ticket) error {
	var changed []string
	if after.ID != before.ID {
		changed = append(changed, "id")
	}
	if after.Source != before.Source {
		changed = append(changed, "source")
	}
	if after.ExternalID != before.ExternalID {
		changed = append(changed, "external_id")
	}
	if after.CustomerID != before.CustomerID {
		changed = append(changed, "customer_id")
	}
	if !after.ReceivedAt.Equal(before.ReceivedAt) {
		changed = append(changed, "received_at")
	}
	if len(changed) > 0 {
		return fmt.Errorf("indexed fields may not change: %v", changed)
	}
	return nil
}

// CustomerTickets returns the customer's tickets received at or after since,
// newest first. It reads only that customer's part of the customer index.
func (db *DB) CustomerTickets(ctx context.Context, customerID string, since time.Time) ([]triage.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tickets of customer %s: %w", customerID, err)
	}
	prefix := join([]byte(customerID), sep)
	// The first key after every key of this customer: the separator byte
	// plus one.
	after := join([]byte(customerID), []byte{1})
	lo := timeKey(since)
	var out []triage.Ticket
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		c := b.byCustomer.Cursor()
		k, v := c.Seek(after)
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			rest := k[len(prefix):]
			if len(rest) < len(lo) {
				return fmt.Errorf("customer index key %q: %w", k, ErrCorrupt)
			}
			if bytes.Compare(rest[:len(lo)], lo[:]) < 0 {
				break
			}
			t, err := getTicket(b, string(v))
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tickets of customer %s: %w", customerID, err)
	}
	return out, nil
}

// Window calls fn for each ticket received in [from, to), oldest first,
// reading only that range of the time index. Tickets are read in batches and
// fn runs outside any transaction, so fn may call back into the store; an
// error from fn stops the walk and is returned as is.
func (db *DB) Window(ctx context.Context, from, to time.Time, fn func(triage.Ticket) error) error {
	lo, hi := timeKey(from), timeKey(to)
	start := lo[:]
	batch := make([]triage.Ticket, 0, windowBatchSize)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("window: %w", err)
		}
		var next []byte
		batch = batch[:0]
		err := db.bolt.View(func(tx *bolt.Tx) error {
			b := bucketsOf(tx)
			c := b.byTime.Cursor()
			for k, v := c.Seek(start); k != nil; k, v = c.Next() {
				if len(k) < len(hi) {
					return fmt.Errorf("time index key %q: %w", k, ErrCorrupt)
				}
				if bytes.Compare(k[:len(hi)], hi[:]) >= 0 {
					return nil
				}
				if len(batch) == windowBatchSize {
					next = bytes.Clone(k)
					return nil
				}
				t, err := getTicket(b, string(v))
				if err != nil {
					return err
				}
				batch = append(batch, t)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("window: %w", err)
		}
		for _, t := range batch {
			if err := fn(t); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		start = next
	}
}

// Customer returns one customer, or an error wrapping triage.ErrNotFound.
func (db *DB) Customer(ctx context.Context, id string) (triage.Customer, error) {
	if err := ctx.Err(); err != nil {
		return triage.Customer{}, fmt.Errorf("get customer %s: %w", id, err)
	}
	var c triage.Customer
	err := db.bolt.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketCustomers).Get([]byte(id))
		if raw == nil {
			return triage.ErrNotFound
		}
		return decodeRecord(raw, &c)
	})
	if err != nil {
		return triage.Customer{}, fmt.Errorf("get customer %s: %w", id, err)
	}
	return c, nil
}

// Audit returns a ticket's audit events, oldest first, or an error wrapping
// triage.ErrNotFound when the ticket does not exist.
func (db *DB) Audit(ctx context.Context, ticketID string) ([]triage.AuditEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("audit of ticket %s: %w", ticketID, err)
	}
	var out []triage.AuditEvent
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		if b.tickets.Get([]byte(ticketID)) == nil {
			return triage.ErrNotFound
		}
		prefix := join([]byte(ticketID), sep)
		c := b.audit.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var ev triage.AuditEvent
			if err := decodeRecord(v, &ev); err != nil {
				return fmt.Errorf("audit event %q: %w", k, err)
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit of ticket %s: %w", ticketID, err)
	}
	return out, nil
}

// Count returns the number of stored tickets, from a counter kept with the
// tickets rather than by walking them.
func (db *DB) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("count tickets: %w", err)
	}
	var n uint64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = ticketCount(tx.Bucket(bucketMeta))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("count tickets: %w", err)
	}
	return int(n), nil
}

func ticketCount(meta *bolt.Bucket) (uint64, error) {
	raw := meta.Get(keyTicketCount)
	switch len(raw) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(raw), nil
	}
	return 0, fmt.Errorf("ticket count %x: %w", raw, ErrCorrupt)
}

func addTicketCount(meta *bolt.Bucket, delta uint64) error {
	n, err := ticketCount(meta)
	if err != nil {
		return err
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], n+delta)
	if err := meta.Put(keyTicketCount, v[:]); err != nil {
		return fmt.Errorf("ticket count: %w", err)
	}
	return nil
}

func getTicket(b buckets, id string) (triage.Ticket, error) {
	var t triage.Ticket
	raw := b.tickets.Get([]byte(id))
	if raw == nil {
		return t, fmt.Errorf("ticket %s: %w", id, triage.ErrNotFound)
	}
	if err := decodeRecord(raw, &t); err != nil {
		return triage.Ticket{}, fmt.Errorf("ticket %s: %w", id, err)
	}
	return t, nil
}

func putTicket(b buckets, t triage.Ticket) error {
	raw, err := encodeRecord(t)
	if err != nil {
		return fmt.Errorf("encode ticket %s: %w", t.ID, err)
	}
	if err := b.tickets.Put([]byte(t.ID), raw); err != nil {
		return fmt.Errorf("put ticket %s: %w", t.ID, err)
	}
	if err := putDue(b, t); err != nil {
		return err
	}
	return putMetrics(b, t)
}

// putEvent writes ev and enqueues the posts announcing it, so an audited
// change and its Slack posts commit together. t is the ticket after the
// change; posts without a channel go to its routed channel.
func putEvent(b buckets, ev triage.AuditEvent, t *triage.Ticket) error {
	if err := putAudit(b, ev); err != nil {
		return err
	}
	if err := enqueueTx(b, ev.Posts, t, ev.At); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return nil
}

// putAudit appends ev under its ticket with the audit bucket's next sequence,
// so a ticket's events read back in the order they were written.
func putAudit(b buckets, ev triage.AuditEvent) error {
	seq, err := b.audit.NextSequence()
	if err != nil {
		return fmt.Errorf("audit sequence: %w", err)
	}
	raw, err := encodeRecord(ev)
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	if err := b.audit.Put(auditKey(ev.TicketID, seq), raw); err != nil {
		return fmt.Errorf("put audit event: %w", err)
	}
	return nil
}

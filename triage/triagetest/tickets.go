package triagetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/casebot/casebot/triage"
)

// ActionReceived is the audit action Create records, as the bbolt store does.
const ActionReceived = "received"

// Tickets is an in-memory triage.Tickets and triage.Outbox, safe for
// concurrent use. It keeps the contract of the bbolt store: Create assigns
// IDs "T1", "T2", … and customer IDs "C1", "C2", …, dedupes on source and
// external ID, merges customers by triage.CustomerKey and records a
// "received" audit event; Update writes the ticket, its event and the
// event's posts only when fn succeeds. Every ticket going in or out is
// copied, so callers never share memory with the store.
type Tickets struct {
	clock triage.Clock

	mu        sync.Mutex
	seq       int
	tickets   map[string]*entry
	external  map[string]string // source + "\x00" + external ID → ticket ID
	custSeq   int
	customers map[string]triage.Customer
	identity  map[string]string // triage.CustomerKey → customer ID
	postSeq   int
	outbox    []triage.Post // pending, in enqueue order
}

// entry is one stored ticket with its creation order and audit trail.
type entry struct {
	seq    int
	ticket triage.Ticket
	audit  []triage.AuditEvent
}

// NewTickets returns an empty store reading the time from clock (the system
// clock when nil).
func NewTickets(clock triage.Clock) *Tickets {
	if clock == nil {
		clock = triage.SystemClock{}
	}
	return &Tickets{
		clock:     clock,
		tickets:   map[string]*entry{},
		external:  map[string]string{},
		customers: map[string]triage.Customer{},
		identity:  map[string]string{},
	}
}

// Create implements triage.Tickets. A zero ReceivedAt becomes the clock's
// now and an empty State becomes received; on success *t is updated to the
// stored ticket. A ticket without an external ID is never a duplicate.
func (s *Tickets) Create(ctx context.Context, t *triage.Ticket, customer triage.Customer) (triage.Ticket, error) {
	if t == nil {
		return triage.Ticket{}, errors.New("create ticket: nil ticket")
	}
	if err := ctx.Err(); err != nil {
		return triage.Ticket{}, fmt.Errorf("create ticket: %w", err)
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	key := string(t.Source) + "\x00" + t.ExternalID
	if t.ExternalID != "" {
		if id, ok := s.external[key]; ok {
			return cloneTicket(s.tickets[id].ticket), fmt.Errorf("%s message %q is already ticket %s: %w",
				t.Source, t.ExternalID, id, triage.ErrDuplicate)
		}
	}
	stored := cloneTicket(*t)
	if stored.ReceivedAt.IsZero() {
		stored.ReceivedAt = now
	}
	if stored.State == "" {
		stored.State = triage.StateReceived
	}
	if stored.ReplyAddress == "" {
		stored.ReplyAddress = strings.TrimSpace(customer.Email)
	}
	if stored.SlackAuthor == "" {
		stored.SlackAuthor = strings.TrimSpace(customer.SlackUserID)
	}
	stored.CustomerID = s.upsertCustomer(customer, stored.ReceivedAt, stored.OrderRef, stored.Classification.Amount)
	s.seq++
	stored.ID = fmt.Sprintf("T%d", s.seq)
	if t.ExternalID != "" {
		s.external[key] = stored.ID
	}
	s.tickets[stored.ID] = &entry{seq: s.seq, ticket: stored, audit: []triage.AuditEvent{{
		TicketID: stored.ID, At: now, Actor: triage.ActorSystem, Action: ActionReceived, To: stored.State,
	}}}
	*t = cloneTicket(stored)
	return cloneTicket(stored), nil
}

// upsertCustomer finds the customer owning the first known identity key of
// in (keys are strongest first) or creates one, merges in's details and
// returns the customer's ID. A key another customer already owns stays with
// that customer, so two existing records are never fused. The caller holds
// s.mu.
func (s *Tickets) upsertCustomer(in triage.Customer, seen time.Time, orderRef string, amount triage.Money) string {
	var c triage.Customer
	found := false
	for _, k := range triage.CustomerKey(in.Email, in.SlackUserID, in.Handle) {
		if id, ok := s.identity[k]; ok {
			c, found = s.customers[id], true
			break
		}
	}
	if !found {
		s.custSeq++
		c = triage.Customer{ID: fmt.Sprintf("C%d", s.custSeq), FirstSeen: seen}
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
		owner, ok := s.identity[id.keys[0]]
		if ok && owner != c.ID {
			continue
		}
		s.identity[id.keys[0]] = c.ID
		if *id.field == "" {
			*id.field = id.value
		}
	}
	if e := strings.TrimSpace(in.Email); e != "" && s.identity[triage.CustomerKey(e, "", "")[0]] == c.ID && !c.HasEmail(e) {
		c.Emails = append(c.AllEmails(), e)
	}
	if c.Name == "" {
		c.Name = in.Name
	}
	c.Tags = slices.Clone(c.Tags)
	for _, tag := range in.Tags {
		if !slices.Contains(c.Tags, tag) {
			c.Tags = append(c.Tags, tag)
		}
	}
	c.VIP = c.VIP || in.VIP
	c.CountedOrders = slices.Clone(c.CountedOrders)
	c.ReportSpend(in.Lifetime)
	c.AddOrder(orderRef, amount)
	if !in.FirstSeen.IsZero() && in.FirstSeen.Before(c.FirstSeen) {
		c.FirstSeen = in.FirstSeen
	}
	s.customers[c.ID] = c
	return c.ID
}

// Get implements triage.Tickets.
func (s *Tickets) Get(ctx context.Context, id string) (triage.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return triage.Ticket{}, fmt.Errorf("get ticket %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.tickets[id]
	if !ok {
		return triage.Ticket{}, fmt.Errorf("ticket %s: %w", id, triage.ErrNotFound)
	}
	return cloneTicket(e.ticket), nil
}

// Update implements triage.Tickets with the bbolt store's rules: fn works on
// a copy, and nothing is written when it fails. The event must name its
// Actor and Action; an empty TicketID, At, From or To is filled in with the
// ticket's ID, the clock's now, and the states before and after fn. fn may
// not change the fields a store indexes (ID, Source, ExternalID,
// CustomerID, ReceivedAt).
func (s *Tickets) Update(ctx context.Context, id string, fn func(*triage.Ticket) (triage.AuditEvent, error)) (triage.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return triage.Ticket{}, fmt.Errorf("update ticket %s: %w", id, err)
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.tickets[id]
	if !ok {
		return triage.Ticket{}, fmt.Errorf("update ticket %s: %w", id, triage.ErrNotFound)
	}
	before := e.ticket
	t := cloneTicket(before)
	ev, err := fn(&t)
	if err != nil {
		return triage.Ticket{}, fmt.Errorf("update ticket %s: %w", id, err)
	}
	if err := checkIndexedFields(before, t); err != nil {
		return triage.Ticket{}, fmt.Errorf("update ticket %s: %w", id, err)
	}
	if ev.TicketID == "" {
		ev.TicketID = id
	}
	switch {
	case ev.TicketID != id:
		return triage.Ticket{}, fmt.Errorf("update ticket %s: audit event names ticket %s", id, ev.TicketID)
	case ev.Actor == "":
		return triage.Ticket{}, fmt.Errorf("update ticket %s: audit event has no actor", id)
	case ev.Action == "":
		return triage.Ticket{}, fmt.Errorf("update ticket %s: audit event has no action", id)
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
	if err := s.enqueue(&t, ev.Posts, now); err != nil {
		return triage.Ticket{}, fmt.Errorf("update ticket %s: %w", id, err)
	}
	// The audit trail keeps no posts, as a store's encoded events do not.
	ev.Posts = nil
	e.ticket = cloneTicket(t)
	e.audit = append(e.audit, ev)
	return t, nil
}

// checkIndexedFields refuses changes a real store could not index.
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

// CustomerTickets implements triage.Tickets: the customer's tickets received
// at or after since, newest first (later-created first on equal times).
func (s *Tickets) CustomerTickets(ctx context.Context, customerID string, since time.Time) ([]triage.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tickets of customer %s: %w", customerID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var es []*entry
	for _, e := range s.tickets {
		if e.ticket.CustomerID == customerID && !e.ticket.ReceivedAt.Before(since) {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b *entry) int { return -byTime(a, b) })
	out := make([]triage.Ticket, len(es))
	for i, e := range es {
		out[i] = cloneTicket(e.ticket)
	}
	return out, nil
}

// Window implements triage.Tickets: fn sees each ticket received in
// [from, to), oldest first (earlier-created first on equal times). fn runs
// without the store's lock held, so it may call back into the store; an
// error from fn stops the walk and is returned as is.
func (s *Tickets) Window(ctx context.Context, from, to time.Time, fn func(triage.Ticket) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("window: %w", err)
	}
	s.mu.Lock()
	var es []*entry
	for _, e := range s.tickets {
		if at := e.ticket.ReceivedAt; !at.Before(from) && at.Before(to) {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, byTime)
	batch := make([]triage.Ticket, len(es))
	for i, e := range es {
		batch[i] = cloneTicket(e.ticket)
	}
	s.mu.Unlock()
	for _, t := range batch {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

// byTime orders entries by received time, then creation order.
func byTime(a, b *entry) int {
	if c := a.ticket.ReceivedAt.Compare(b.ticket.ReceivedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// Audit returns the audit trail of ticket id, oldest first; nil for an
// unknown ticket.
func (s *Tickets) Audit(id string) []triage.AuditEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.tickets[id]
	if !ok {
		return nil
	}
	return slices.Clone(e.audit)
}

// Customer implements triage.Tickets.
func (s *Tickets) Customer(ctx context.Context, id string) (triage.Customer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok {
		return triage.Customer{}, fmt.Errorf("customer %s: %w", id, triage.ErrNotFound)
	}
	c.Tags = slices.Clone(c.Tags)
	return c, nil
}

// Customers returns every customer in creation order.
func (s *Tickets) Customers() []triage.Customer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]triage.Customer, 0, len(s.customers))
	for _, c := range s.customers {
		c.Tags = slices.Clone(c.Tags)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b triage.Customer) int {
		return cmp.Or(cmp.Compare(len(a.ID), len(b.ID)), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// All returns every stored ticket in creation order.
func (s *Tickets) All() []triage.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	es := make([]*entry, 0, len(s.tickets))
	for _, e := range s.tickets {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]triage.Ticket, len(es))
	for i, e := range es {
		out[i] = cloneTicket(e.ticket)
	}
	return out
}

// cloneTicket returns a deep copy of t: no slice of the copy shares memory
// with t.
func cloneTicket(t triage.Ticket) triage.Ticket {
	t.Entries = slices.Clone(t.Entries)
	t.Attachments = slices.Clone(t.Attachments)
	t.Classification = cloneClassification(t.Classification)
	t.Original = cloneClassification(t.Original)
	t.Triggers = slices.Clone(t.Triggers)
	t.Route.Mentions = slices.Clone(t.Route.Mentions)
	t.Overrides = slices.Clone(t.Overrides)
	t.FollowUps = slices.Clone(t.FollowUps)
	return t
}

func cloneClassification(c triage.Classification) triage.Classification {
	c.Flags = slices.Clone(c.Flags)
	return c
}

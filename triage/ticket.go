package triage

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is a ticket's place in its lifecycle (SPEC section 1).
type State string

// The ticket states.
const (
	StateReceived       State = "received"
	StateTriaged        State = "triaged"
	StateAwaitingReview State = "awaiting_review"
	StateReplied        State = "replied"
	StateResolved       State = "resolved"
	StateFollowedUp     State = "followed_up"
	StateClosed         State = "closed"
	StateEscalated      State = "escalated"
	StateReopened       State = "reopened"
)

// transitions lists, per state, the states it may move to. Escalation is
// reachable from every open state. Reopening is reachable once a person has
// acted (the card then offers Resolve and Reopen, SPEC section 5) and after
// resolution.
var transitions = map[State][]State{
	StateReceived:       {StateTriaged, StateEscalated},
	StateTriaged:        {StateAwaitingReview, StateEscalated},
	StateAwaitingReview: {StateReplied, StateEscalated, StateResolved},
	StateReplied:        {StateResolved, StateEscalated, StateReopened},
	StateEscalated:      {StateReplied, StateResolved, StateEscalated, StateReopened},
	StateReopened:       {StateAwaitingReview, StateReplied, StateResolved, StateEscalated},
	StateResolved:       {StateFollowedUp, StateReopened, StateClosed},
	StateFollowedUp:     {StateClosed, StateReopened},
	StateClosed:         {StateReopened},
}

// Open reports whether a ticket in state s still needs work from a person.
func (s State) Open() bool {
	switch s {
	case StateResolved, StateFollowedUp, StateClosed:
		return false
	}
	return true
}

// CanTransition reports whether a ticket may move from s to next.
func (s State) CanTransition(next State) bool { return slices.Contains(transitions[s], next) }

// Customer is one person, merged across sources by normalised identity.
// A merge through a shared handle or Slack ID may join addresses of people
// who are not the same, so a reply never goes to the customer record's
// address: each ticket keeps its own (Ticket.ReplyAddress).
type Customer struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Email is the first address seen; Emails lists every address, Email
	// included, once a second one is merged in. Read them with AllEmails.
	Email       string   `json:"email,omitempty"`
	Emails      []string `json:"emails,omitempty"`
	SlackUserID string   `json:"slack_user_id,omitempty"`
	Handle      string   `json:"handle,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	VIP         bool     `json:"vip,omitempty"`
	// Lifetime is the lifetime spend the VIP rule reads: the larger of
	// OrderSpend and ReportedSpend (see AddOrder and ReportSpend).
	Lifetime Money `json:"lifetime_spend"`
	// OrderSpend sums the order amounts seen on this customer's tickets,
	// each order reference once (CountedOrders), in one currency.
	OrderSpend    Money    `json:"order_spend"`
	CountedOrders []string `json:"counted_orders,omitempty"`
	// ReportedSpend is the latest lifetime spend a source reported (the
	// webhook's customer.lifetime_spend).
	ReportedSpend Money     `json:"reported_spend"`
	FirstSeen     time.Time `json:"first_seen"`
}

// AllEmails returns every address of c, Email first, each once.
func (c Customer) AllEmails() []string {
	var out []string
	for _, e := range append([]string{c.Email}, c.Emails...) {
		if e != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, e) }) {
			out = append(out, e)
		}
	}
	return out
}

// HasEmail reports whether addr is one of c's addresses, ignoring case.
func (c Customer) HasEmail(addr string) bool {
	addr = strings.TrimSpace(addr)
	return addr != "" && slices.ContainsFunc(c.AllEmails(), func(e string) bool { return strings.EqualFold(e, addr) })
}

// AddOrder adds an order amount seen on one of c's tickets to OrderSpend.
// An order reference counts once however many tickets name it; an order
// without a reference counts each time it is seen. An amount in another
// currency than the sum's is left out: there is no exchange rate to add
// it with.
func (c *Customer) AddOrder(ref string, amount Money) {
	if amount.Minor <= 0 {
		return
	}
	if ref != "" && slices.Contains(c.CountedOrders, ref) {
		return
	}
	if !sameCurrency(c.OrderSpend.Currency, amount.Currency) {
		return
	}
	c.adoptLegacyLifetime()
	c.OrderSpend.Minor += amount.Minor
	if c.OrderSpend.Currency == "" {
		c.OrderSpend.Currency = amount.Currency
	}
	if ref != "" {
		c.CountedOrders = append(c.CountedOrders, ref)
	}
	c.Lifetime = largerSpend(c.OrderSpend, c.ReportedSpend)
}

// ReportSpend records the lifetime spend a source reported for c; the
// latest report replaces an earlier one, since the shop knows refunds that
// casebot does not.
func (c *Customer) ReportSpend(m Money) {
	if m.Minor <= 0 {
		return
	}
	c.adoptLegacyLifetime()
	c.ReportedSpend = m
	c.Lifetime = largerSpend(c.OrderSpend, c.ReportedSpend)
}

// adoptLegacyLifetime keeps a Lifetime stored before it was derived: it was
// a reported figure.
func (c *Customer) adoptLegacyLifetime() {
	if c.OrderSpend.IsZero() && c.ReportedSpend.IsZero() && !c.Lifetime.IsZero() {
		c.ReportedSpend = c.Lifetime
	}
}

// largerSpend is the larger of the summed and the reported spend; across
// currencies the reported figure, the shop's own, wins.
func largerSpend(summed, reported Money) Money {
	switch {
	case reported.IsZero():
		return summed
	case summed.IsZero(), !sameCurrency(summed.Currency, reported.Currency):
		return reported
	}
	out := summed
	if reported.Minor > summed.Minor {
		out = reported
	}
	if out.Currency == "" {
		out.Currency = cmp.Or(summed.Currency, reported.Currency)
	}
	return out
}

// sameCurrency reports whether amounts in currencies a and b add up; an
// empty currency is the configured one and matches any.
func sameCurrency(a, b string) bool { return a == "" || b == "" || strings.EqualFold(a, b) }

// CustomerKey returns the normalised identity keys of a customer, strongest
// first: a lower-cased email, a Slack user ID, a platform handle.
func CustomerKey(email, slackUserID, handle string) []string {
	var keys []string
	if e := strings.ToLower(strings.TrimSpace(email)); e != "" {
		keys = append(keys, "email:"+e)
	}
	if u := strings.TrimSpace(slackUserID); u != "" {
		keys = append(keys, "slack:"+u)
	}
	if h := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(handle), "@")); h != "" {
		keys = append(keys, "handle:"+h)
	}
	return keys
}

// Inbound is one customer message normalised from any source (SPEC section 2).
type Inbound struct {
	Source      Source    `json:"source"`
	Channel     string    `json:"channel,omitempty"` // email, chat, social, review, slack
	ExternalID  string    `json:"external_id"`
	Customer    Customer  `json:"customer"`
	Subject     string    `json:"subject,omitempty"`
	Body        string    `json:"body"`
	Attachments []string  `json:"attachments,omitempty"`
	OrderRef    string    `json:"order_ref,omitempty"`
	OrderAmount Money     `json:"order_amount"`
	ReceivedAt  time.Time `json:"received_at"`
	// ReplyTo is where a reply goes back: a Slack channel and thread, an email
	// Message-ID, or an outbound webhook URL; its meaning depends on Source.
	ReplyTo string `json:"reply_to,omitempty"`
	// SenderAt is the sender's own timestamp (an email's Date header, a
	// webhook's received_at), kept as information only: ReceivedAt, when
	// casebot or its mail server received the message, keys every time
	// index and metric, so a sender's clock cannot decide retention,
	// follow-ups or metrics. Import alone sets history's own dates there.
	SenderAt time.Time `json:"sender_at,omitzero"`
}

// SlackReplyTo is the ReplyTo of a ticket from a Slack message: the channel
// and the thread's ts, as "C0123/1700000000.000100". Channel IDs and ts
// never contain a slash, so the address splits back unambiguously.
func SlackReplyTo(channel, ts string) string { return channel + "/" + ts }

// ParseSlackReplyTo splits a Slack ticket's ReplyTo into its channel and
// thread ts; ok is false when s is not such an address (an empty part, or
// more than one slash), so no reply goes to a made-up thread.
func ParseSlackReplyTo(s string) (channel, ts string, ok bool) {
	channel, ts, found := strings.Cut(s, "/")
	if !found || channel == "" || ts == "" || strings.Contains(ts, "/") {
		return "", "", false
	}
	return channel, ts, true
}

// Entry is one message appended to a ticket (a thread reply, an email in the
// same thread).
type Entry struct {
	At     time.Time `json:"at"`
	Author string    `json:"author"`
	Body   string    `json:"body"`
}

// Route is where a ticket goes: the channel, who to mention, and whether it is
// escalated on arrival.
type Route struct {
	Channel  string   `json:"channel"`
	Mentions []string `json:"mentions,omitempty"`
	Escalate bool     `json:"escalate,omitempty"`
	// Name identifies the matching route for explanations ("routes[0]").
	Name string `json:"name,omitempty"`
}

// Override records a person changing one classification field.
type Override struct {
	Field string    `json:"field"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	By    string    `json:"by"`
	At    time.Time `json:"at"`
}

// Ticket is one customer issue from intake to close. Records are versioned:
// fields are only ever added, so older records decode with zero values.
type Ticket struct {
	ID         string  `json:"id"`
	Source     Source  `json:"source"`
	Channel    string  `json:"channel,omitempty"`
	ExternalID string  `json:"external_id"`
	CustomerID string  `json:"customer_id"`
	Subject    string  `json:"subject,omitempty"`
	Body       string  `json:"body"`
	Entries    []Entry `json:"entries,omitempty"`
	// Attachments are the names of files the customer attached; the files
	// themselves stay where they arrived.
	Attachments []string  `json:"attachments,omitempty"`
	OrderRef    string    `json:"order_ref,omitempty"`
	ReplyTo     string    `json:"reply_to,omitempty"`
	ReceivedAt  time.Time `json:"received_at"`
	State       State     `json:"state"`

	// ReplyAddress is the email address this ticket came from, where every
	// email about it goes (acknowledgement, reply, follow-up), whatever
	// other addresses its customer has. Set at Create from the inbound
	// customer's email.
	ReplyAddress string `json:"reply_address,omitempty"`
	// SlackAuthor is the Slack user this ticket came from: the only one
	// whose thread replies join it and whose rating counts, whatever other
	// Slack identities its customer has. Set at Create from the inbound
	// customer's Slack user ID.
	SlackAuthor string `json:"slack_author,omitempty"`
	// SenderAt is Inbound.SenderAt: the sender's own time, information only.
	SenderAt time.Time `json:"sender_at,omitzero"`

	// Classification is the current reading, after rules and any override.
	Classification Classification `json:"classification"`
	// Original is the classification as triage produced it, kept so that
	// overrides can be measured.
	Original Classification `json:"original"`
	// ClassifiedBy is "model" or "rules"; RulesReason says why the model was
	// not used when it is "rules".
	ClassifiedBy string    `json:"classified_by"`
	RulesReason  string    `json:"rules_reason,omitempty"`
	Triggers     []Trigger `json:"triggers,omitempty"`
	Route        Route     `json:"route"`
	// NeedsApproval is set when only configured approvers may approve.
	NeedsApproval bool `json:"needs_approval,omitempty"`

	Brief string `json:"brief,omitempty"`
	Draft string `json:"draft,omitempty"`
	// DraftBy says who wrote Draft: DraftByModel or DraftByTemplate; ""
	// when there is no draft. Only a model's draft counts towards the AI
	// draft acceptance rate.
	DraftBy string `json:"draft_by,omitempty"`
	// DraftVersion is bumped each time the text the card offers for
	// Approve changes (a draft written, sent, or dropped on a reopen); an
	// Approve names the version it saw, so it sends only what was shown.
	DraftVersion int `json:"draft_version,omitempty"`
	// DraftWanted is set when a reopened ticket waits for a fresh draft for
	// the customer's new message, although a reply was sent before.
	DraftWanted bool   `json:"draft_wanted,omitempty"`
	Sent        string `json:"sent,omitempty"`
	// ReplyQueued is set when the approved reply was queued to go back to
	// the customer; without a way back a person passes it on.
	ReplyQueued bool       `json:"reply_queued,omitempty"`
	Overrides   []Override `json:"overrides,omitempty"`
	// DraftRevision is the normalised edit distance between the draft and the
	// sent reply, in [0, 1]; negative when no model draft was sent.
	DraftRevision float64 `json:"draft_revision"`
	// DraftSent is set when an approved reply started from a model's draft
	// (DraftBy DraftByModel at the time): a template is not an AI draft.
	DraftSent bool `json:"draft_sent,omitempty"`
	Reviewed  bool `json:"reviewed,omitempty"`

	// FirstResponseAt is when the first reply a person approved reached
	// the customer: delivered by its sender or marked sent by hand when
	// there was no way back (Triager.ReplyDelivered, Triager.MarkSent).
	// The automatic acknowledgement is not a reply and never sets it.
	FirstResponseAt time.Time `json:"first_response_at"`
	// ReplySentAt is when the latest approved reply left; zero while it
	// has not (queued, or waiting to be sent by hand).
	ReplySentAt      time.Time `json:"reply_sent_at"`
	EscalatedAt      time.Time `json:"escalated_at"`
	Escalations      int       `json:"escalations,omitempty"`
	ResolvedAt       time.Time `json:"resolved_at"`
	RootCause        string    `json:"root_cause,omitempty"`
	ResolutionNote   string    `json:"resolution_note,omitempty"`
	ResolutionMethod string    `json:"resolution_method,omitempty"`
	ResolutionAmount Money     `json:"resolution_amount"`
	Assignee         string    `json:"assignee,omitempty"`

	// FollowUpDue, FollowUpSentAt and Rating are the current follow-up
	// cycle, reset when the ticket is resolved again; FollowUps keeps
	// every cycle for the recovery CSAT.
	FollowUpDue    time.Time `json:"follow_up_due"`
	FollowUpSentAt time.Time `json:"follow_up_sent_at"`
	Rating         int       `json:"rating,omitempty"` // 1–5, 0 when unanswered
	// FollowUps are every follow-up sent, oldest first, each with its
	// rating: a low rating reopens the ticket, and resolving it again
	// starts a new cycle without erasing the old one.
	FollowUps []FollowUp `json:"follow_ups,omitempty"`

	Slack SlackRef `json:"slack"`
}

// Who wrote a ticket's Draft (Ticket.DraftBy).
const (
	// DraftByModel marks a draft the model wrote.
	DraftByModel = "model"
	// DraftByTemplate marks a draft filled in from a template, when the
	// model was not asked or failed.
	DraftByTemplate = "template"
)

// WantsDraft reports whether a draft may be written for t now: it is
// classified and still open, and no person has replied since the customer
// last wrote (nothing sent yet, or reopened since). A draft is never
// written over a reply a person sent.
func (t Ticket) WantsDraft() bool {
	return t.State.Open() && t.State != StateReceived && t.State != StateReplied && (t.Sent == "" || t.DraftWanted)
}

// dropDraft forgets the draft of a ticket that needs a fresh one, for the
// customer's new message: no card may offer the old one, or a reply sent
// before, for Approve.
func (t *Ticket) dropDraft() {
	t.Draft, t.DraftBy, t.DraftWanted = "", "", true
	t.DraftVersion++
}

// reopen moves t to reopened and asks for a fresh draft.
func (t *Ticket) reopen() error {
	if err := t.Transition(StateReopened); err != nil {
		return err
	}
	t.dropDraft()
	return nil
}

// FollowUp is one follow-up sent to a ticket's customer and the rating it
// got, if any.
type FollowUp struct {
	SentAt time.Time `json:"sent_at"`
	// Rating is 1–5, 0 while unanswered.
	Rating  int       `json:"rating,omitempty"`
	RatedAt time.Time `json:"rated_at"`
}

// IsSlackAuthor reports whether Slack user is the person t came from: its
// SlackAuthor, or for a ticket stored before that field its customer's
// Slack ID. An empty user is nobody's.
func (t Ticket) IsSlackAuthor(c Customer, user string) bool {
	author := t.SlackAuthor
	if author == "" {
		author = c.SlackUserID
	}
	return user != "" && user == author
}

// SlackRef is where a ticket's card was posted.
type SlackRef struct {
	Channel string `json:"channel,omitempty"`
	TS      string `json:"ts,omitempty"`
}

// Transition moves t to next, or returns ErrInvalidTransition.
func (t *Ticket) Transition(next State) error {
	if !t.State.CanTransition(next) {
		return fmt.Errorf("ticket %s from %s to %s: %w", t.ID, t.State, next, ErrInvalidTransition)
	}
	t.State = next
	return nil
}

// AuditEvent records one state change: who, what, when, before and after
// (SPEC section 1, invariant 5).
type AuditEvent struct {
	TicketID string    `json:"ticket_id"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"` // Slack user ID or "system"
	Action   string    `json:"action"`
	From     State     `json:"from"`
	To       State     `json:"to"`
	Detail   string    `json:"detail,omitempty"`
	// Posts are the Slack messages announcing this change; the store puts
	// them in the outbox in the same transaction as the change.
	Posts []Post `json:"-"`
}

// Actors that are not Slack users.
const (
	// ActorSystem is the actor of automatic changes.
	ActorSystem = "system"
	// ActorCustomer is the actor of the customer's own answers (ratings).
	ActorCustomer = "customer"
)

// Trigger is one escalation rule of SPEC section 3.3 that fired for a ticket.
type Trigger struct {
	// Rule is the rule's name: legal, safety, reputation, vip, repeat, refund.
	Rule string `json:"rule"`
	// Flag is the flag the rule sets (refund above the approval threshold sets
	// policy_exception).
	Flag Flag `json:"flag"`
	// Reason says what fired, for the card and the audit log, e.g.
	// `"sue" (en)` or "refund USD 240.00 above approval threshold 100".
	Reason string `json:"reason"`
	// Owner is the owner key (config owners) to mention; empty for none.
	Owner string `json:"owner,omitempty"`
	// Escalate is set when the rule escalates the ticket on arrival.
	Escalate bool `json:"escalate,omitempty"`
	// NeedsApproval is set when only configured approvers may approve.
	NeedsApproval bool `json:"needs_approval,omitempty"`
}

package triage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Triager turns inbound messages into stored, classified and routed tickets.
// Intake commits before anything slow happens; Classify never waits on the
// model to route (a failing model falls back to the keyword classifier).
type Triager struct {
	Config  Config
	Rules   *Rules
	Router  *Router
	Store   Tickets
	Clock   Clock
	Keyword Classifier
	// Model is the preferred classifier; nil means rules only.
	Model Classifier
	// Drafter writes brief and draft; nil leaves them empty.
	Drafter Drafter
	// Classified, when set, is called with every ticket Classify stored, by
	// whichever path it arrived; a Pipeline uses it to queue the draft.
	Classified func(Ticket)
	// Reopened, when set, is called with every ticket an action reopened
	// (Reopen, a low rating, the customer writing again), whose old draft
	// was dropped; a Pipeline uses it to queue the fresh draft.
	Reopened func(Ticket)
	// Senders lists the sources whose replies can be sent back
	// automatically (email needs SMTP); nil means every source's. A reply
	// without a sender is recorded on approval and copied by hand.
	Senders map[Source]bool
	// Acknowledgement is the operator's automatic "we got your message"
	// text, sent when a ticket is triaged; empty sends none. It is the only
	// message besides the follow-up that reaches a customer without a
	// click, and an operator wrote it (SPEC section 1, invariant 3).
	Acknowledgement string
}

// ActionAcknowledged marks the PostCustomerReply carrying the
// acknowledgement.
const ActionAcknowledged = "acknowledged"

// NewTriager builds a Triager from config with the keyword classifier; set
// Model and Drafter afterwards to use a model.
func NewTriager(cfg Config, store Tickets, clock Clock) (*Triager, error) {
	rules, err := NewRules(cfg)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	router, err := NewRouter(cfg)
	if err != nil {
		return nil, err
	}
	kw, err := NewKeywordClassifier(cfg)
	if err != nil {
		return nil, fmt.Errorf("keyword classifier: %w", err)
	}
	if clock == nil {
		clock = SystemClock{}
	}
	return &Triager{Config: cfg, Rules: rules, Router: router, Store: store, Clock: clock, Keyword: kw}, nil
}

// MaxSenderSkew is how far behind casebot's clock a sender's own timestamp
// may be and still be taken as the time casebot received the message: enough
// for transit and a little clock drift, too little for a wrong or forged date
// to move a ticket out of the windows it is indexed in.
const MaxSenderSkew = 5 * time.Minute

// ReceivedTime is the receipt time of a message whose sender stamped it
// sender, arriving at casebot's now: sender when it lies within
// MaxSenderSkew before now, else now. A sender's time is never taken from
// the future, nor from further back.
func ReceivedTime(sender, now time.Time) time.Time {
	if sender.IsZero() || sender.After(now) || sender.Before(now.Add(-MaxSenderSkew)) {
		return now
	}
	return sender
}

// Intake stores an inbound message as a received ticket. It returns only
// after the commit, so a source may acknowledge once it returns nil. A
// message already stored returns the existing ticket and an error wrapping
// ErrDuplicate. A zero ReceivedAt, or one ahead of the clock, becomes the
// clock's now: no source places a ticket in casebot's future.
func (s *Triager) Intake(ctx context.Context, in Inbound) (Ticket, error) {
	if now := s.Clock.Now(); in.ReceivedAt.IsZero() || in.ReceivedAt.After(now) {
		in.ReceivedAt = now
	}
	t := &Ticket{
		Source: in.Source, Channel: in.Channel, ExternalID: in.ExternalID,
		Subject: in.Subject, Body: in.Body, Attachments: in.Attachments, OrderRef: in.OrderRef, ReplyTo: in.ReplyTo,
		ReceivedAt: in.ReceivedAt, SenderAt: in.SenderAt, State: StateReceived, DraftRevision: -1,
		Classification: Classification{Amount: in.OrderAmount},
	}
	return s.Store.Create(ctx, t, in.Customer)
}

// Classify reads a received ticket with the rules and a classifier, routes it
// and stores the result with its audit event. The model's answer may add
// flags; MergeClassification makes sure it never removes a rule's.
func (s *Triager) Classify(ctx context.Context, id string, customer Customer) (Ticket, error) {
	t, err := s.classifyStored(ctx, id, customer, false)
	if err == nil && s.Classified != nil {
		s.Classified(t)
	}
	return t, err
}

// ActionImported is the audit action of an imported ticket's classification.
const ActionImported = "imported"

// ClassifyImported reads an imported ticket as Classify does, so the metrics
// and the repeat rule see it, but stores it closed and posts nothing:
// history is not news for the agents.
func (s *Triager) ClassifyImported(ctx context.Context, id string) (Ticket, error) {
	return s.classifyStored(ctx, id, Customer{}, true)
}

func (s *Triager) classifyStored(ctx context.Context, id string, customer Customer, imported bool) (Ticket, error) {
	t, err := s.Store.Get(ctx, id)
	if err != nil {
		return Ticket{}, err
	}
	if t.State != StateReceived {
		return t, fmt.Errorf("classify ticket %s in state %s: %w", id, t.State, ErrInvalidTransition)
	}
	customer, err = s.customer(ctx, t.CustomerID, customer)
	if err != nil {
		return Ticket{}, err
	}
	history, err := s.history(ctx, t)
	if err != nil {
		return Ticket{}, err
	}
	a := s.Assess(ctx, ClassifyRequest{Text: ticketText(t), Channel: t.Channel, Customer: customer, History: history},
		t.Classification.Amount)
	c, by, reason, triggers := a.Classification, a.By, a.Reason, a.Triggers
	route := s.Router.Route(c, t.Source, triggers)
	entriesRead := len(t.Entries)
	return s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		from := t.State
		if from != StateReceived {
			// Another delivery classified it meanwhile: one card only.
			return AuditEvent{}, fmt.Errorf("classify ticket %s in state %s: %w", id, from, ErrInvalidTransition)
		}
		t.Classification, t.Original = c, c
		t.ClassifiedBy, t.RulesReason = by, reason
		t.Triggers, t.Route = triggers, route
		t.NeedsApproval = slices.ContainsFunc(triggers, func(tr Trigger) bool { return tr.NeedsApproval })
		if len(t.Entries) != entriesRead && len(s.addTriggers(t)) > 0 {
			// The customer wrote again while the model was reading: the
			// rules read that too, and route it as if it came first.
			route = s.Router.Route(t.Classification, t.Source, t.Triggers)
			t.Route = route
		}
		detail := fmt.Sprintf("type=%s urgency=%s flags=%v route=%s by=%s", c.Type, c.Urgency, c.Flags, route.Channel, by)
		if reason != "" {
			detail += " (" + reason + ")"
		}
		ev := AuditEvent{TicketID: t.ID, At: s.Clock.Now(), Actor: ActorSystem, From: from, Detail: detail}
		if imported {
			// History needs no one's attention: it skips the queue, which
			// the transition table (made for live tickets) has no path for.
			t.State = StateClosed
			ev.Action, ev.To, ev.Detail = ActionImported, t.State, detail+"; imported history, no card posted"
			return ev, nil
		}
		// Triaged, then waiting for a person or escalated to one: both
		// steps in one change, through the lifecycle's transition table.
		next := StateAwaitingReview
		if route.Escalate {
			next = StateEscalated
			t.Escalations++
			t.EscalatedAt = s.Clock.Now()
		}
		if err := t.Transition(StateTriaged); err != nil {
			return AuditEvent{}, err
		}
		if err := t.Transition(next); err != nil {
			return AuditEvent{}, err
		}
		ev.Action, ev.To = "triaged", next
		ev.Posts = []Post{{Kind: PostCard, TicketID: t.ID, Channel: route.Channel, Mentions: route.Mentions, CreatedAt: s.Clock.Now()}}
		if channel, thread, ok := ReplyRoute(*t, s.Senders); ok && s.Acknowledgement != "" {
			ev.Posts = append(ev.Posts, Post{Kind: PostCustomerReply, TicketID: t.ID, Channel: channel, ThreadTS: thread,
				Action: ActionAcknowledged, Actor: ActorSystem, Text: s.Acknowledgement, CreatedAt: s.Clock.Now()})
		}
		return ev, nil
	})
}

// Assessment is the outcome of reading one message: the merged
// classification, who produced it and why, and the rules that fired.
type Assessment struct {
	Classification Classification
	// By is "model" or "rules".
	By string
	// Reason says why the rules classified the message instead of the model.
	Reason   string
	Triggers []Trigger
}

// Assess evaluates the rules, asks the classifiers and merges the two. It
// stores nothing, so eval and triage on the command line use it directly.
// orderAmount is the amount at stake known from order data, if any.
func (s *Triager) Assess(ctx context.Context, req ClassifyRequest, orderAmount Money) Assessment {
	triggers := s.Rules.Evaluate(RuleInput{
		Text: req.Text, Customer: req.Customer, Amount: orderAmount, PriorComplaints: len(req.History),
	})
	c, by, reason := s.classify(ctx, req)
	c = s.MergeAmount(c, orderAmount)
	return Assessment{Classification: MergeClassification(c, triggers), By: by, Reason: reason, Triggers: triggers}
}

// Process runs Intake then Classify: the path of every source.
func (s *Triager) Process(ctx context.Context, in Inbound) (Ticket, error) {
	t, err := s.Intake(ctx, in)
	if errors.Is(err, ErrDuplicate) && t.State == StateReceived {
		// The first delivery stored the ticket but stopped before triage;
		// the redelivery finishes the job instead of being dropped.
		return s.Classify(ctx, t.ID, in.Customer)
	}
	if err != nil {
		return t, err
	}
	return s.Classify(ctx, t.ID, in.Customer)
}

// WriteDraft asks the drafter for the brief and draft reply of a ticket and
// stores them. Nothing is sent: sending takes a person's click.
func (s *Triager) WriteDraft(ctx context.Context, id string, customer Customer, policy string) (Ticket, error) {
	if s.Drafter == nil {
		return s.Store.Get(ctx, id)
	}
	return s.writeDraft(ctx, id, customer, policy, s.Drafter)
}

func (s *Triager) writeDraft(ctx context.Context, id string, customer Customer, policy string, drafter Drafter) (Ticket, error) {
	t, err := s.Store.Get(ctx, id)
	if err != nil {
		return Ticket{}, err
	}
	customer, err = s.customer(ctx, t.CustomerID, customer)
	if err != nil {
		return Ticket{}, err
	}
	history, err := s.history(ctx, t)
	if err != nil {
		return Ticket{}, err
	}
	d, err := drafter.Draft(ctx, DraftRequest{Ticket: t, Customer: customer, History: history, Policy: policy})
	if err != nil {
		return t, fmt.Errorf("draft ticket %s: %w", id, err)
	}
	by := draftBy(drafter)
	version := t.DraftVersion
	return s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		// Checked in the transaction: a draft that took long never replaces
		// a reply a person sent, or a draft that changed while it was
		// written (a reopen, another draft).
		if t.DraftVersion != version || !t.WantsDraft() {
			return AuditEvent{}, fmt.Errorf("draft ticket %s: version %d asked, %d now, state %s: %w",
				t.ID, version, t.DraftVersion, t.State, ErrStaleDraft)
		}
		t.Brief, t.Draft, t.DraftBy, t.DraftWanted = d.Brief, d.Reply, by, false
		t.DraftVersion++
		ev := AuditEvent{TicketID: t.ID, At: s.Clock.Now(), Actor: ActorSystem, Action: "drafted",
			From: t.State, To: t.State, Detail: fmt.Sprintf("brief %d chars, draft %d chars", len(d.Brief), len(d.Reply))}
		return withPosts(ev, PostCardUpdate), nil
	})
}

// classify asks the model and falls back to the keyword classifier, saying
// why. An answer that fails validation counts as a failure.
func (s *Triager) classify(ctx context.Context, req ClassifyRequest) (Classification, string, string) {
	if s.Model != nil {
		c, err := s.Model.Classify(ctx, req)
		if err == nil {
			err = c.Validate()
		}
		if err == nil {
			return c, "model", ""
		}
		reason := "model failed: " + errorKind(err)
		kc, kerr := s.Keyword.Classify(ctx, req)
		if kerr != nil {
			return safeDefault(), "rules", reason + "; keyword classifier failed"
		}
		return kc, "rules", reason
	}
	kc, err := s.Keyword.Classify(ctx, req)
	if err != nil {
		return safeDefault(), "rules", "keyword classifier failed"
	}
	return kc, "rules", "no model configured"
}

// errorKind gives a short, non-sensitive reason for the card and the audit
// log; raw errors may hold internals and stay in the process log.
func errorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrInvalidClassification):
		return "invalid answer"
	}
	var k interface{ Kind() string }
	if errors.As(err, &k) {
		return k.Kind()
	}
	return "unavailable"
}

// safeDefault is the reading used when no classifier answers at all: it errs
// towards a person looking soon.
func safeDefault() Classification {
	return Classification{Type: TypeOther, Sentiment: SentimentNeutral, Urgency: LevelMedium,
		FinancialRisk: LevelLow, Language: "en"}
}

// MergeAmount sets the amount at stake to the larger of the classifier's and
// the order's, and raises financial risk to what the thresholds say of it.
func (s *Triager) MergeAmount(c Classification, order Money) Classification {
	if order.Minor > c.Amount.Minor {
		c.Amount = order
	}
	if c.Amount.Currency == "" && c.Amount.Minor > 0 {
		c.Amount.Currency = s.Config.Thresholds.Currency
	}
	c.FinancialRisk = c.FinancialRisk.Max(RiskLevel(c.Amount, s.Config.Thresholds))
	return c
}

// RiskLevel grades an amount against the thresholds.
func RiskLevel(m Money, th Thresholds) Level {
	major := float64(m.Minor) / 100
	switch {
	case th.FinancialHigh > 0 && major >= th.FinancialHigh:
		return LevelHigh
	case th.FinancialMed > 0 && major >= th.FinancialMed:
		return LevelMedium
	}
	return LevelLow
}

// MergeClassification applies the rules' triggers to a classifier's answer.
// Every trigger's flag is added; legal and safety make the ticket high
// urgency, the other triggers at least medium. Nothing a rule set is removed
// or lowered, whatever the classifier said.
func MergeClassification(c Classification, triggers []Trigger) Classification {
	c.Flags = slices.Clone(c.Flags)
	for _, t := range triggers {
		c.AddFlags(t.Flag)
		switch t.Flag {
		case FlagLegal, FlagSafety:
			c.Urgency = c.Urgency.Max(LevelHigh)
		default:
			c.Urgency = c.Urgency.Max(LevelMedium)
		}
		if t.Rule == "refund" {
			c.FinancialRisk = c.FinancialRisk.Max(LevelMedium)
		}
	}
	c.SentimentScore = math.Max(-1, math.Min(1, c.SentimentScore))
	return c
}

func (s *Triager) history(ctx context.Context, t Ticket) ([]Ticket, error) {
	days := s.Config.Thresholds.RepeatDays
	if days <= 0 {
		days = 30
	}
	since := t.ReceivedAt.Add(-time.Duration(days) * 24 * time.Hour)
	all, err := s.Store.CustomerTickets(ctx, t.CustomerID, since)
	if err != nil {
		return nil, fmt.Errorf("history of customer %s: %w", t.CustomerID, err)
	}
	return slices.DeleteFunc(all, func(o Ticket) bool { return o.ID == t.ID || !o.ReceivedAt.Before(t.ReceivedAt) }), nil
}

// ticketText is what the rules and classifiers read: subject, body and any
// appended entries.
func ticketText(t Ticket) string {
	text := t.Body
	if t.Subject != "" {
		text = t.Subject + "\n" + text
	}
	for _, e := range t.Entries {
		text += "\n" + e.Body
	}
	return text
}

// withPosts attaches posts of the given kinds about ev's change to ev: each
// names the ticket, the action and who took it, and goes where the ticket's
// card is.
func withPosts(ev AuditEvent, kinds ...PostKind) AuditEvent {
	for _, k := range kinds {
		ev.Posts = append(ev.Posts, Post{Kind: k, TicketID: ev.TicketID, Action: ev.Action,
			Actor: ev.Actor, Detail: ev.Detail, CreatedAt: ev.At})
	}
	return ev
}

// customer returns the stored, merged customer with what this message says
// of them added: a VIP mark or tags from any source count.
func (s *Triager) customer(ctx context.Context, id string, in Customer) (Customer, error) {
	stored, err := s.Store.Customer(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return in, nil
	}
	if err != nil {
		return Customer{}, fmt.Errorf("customer %s: %w", id, err)
	}
	stored.VIP = stored.VIP || in.VIP
	for _, tag := range in.Tags {
		if !slices.Contains(stored.Tags, tag) {
			stored.Tags = append(stored.Tags, tag)
		}
	}
	if stored.Email == "" {
		stored.Email = in.Email
	}
	if in.Lifetime.Minor > stored.Lifetime.Minor {
		stored.Lifetime = in.Lifetime
	}
	return stored, nil
}

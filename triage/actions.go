package triage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Sentinel errors of the agent and customer actions.
var (
	// ErrNotAuthorized is returned when a person without approval authority
	// tries to approve, or to resolve unanswered, a ticket that needs it.
	ErrNotAuthorized = errors.New("not authorized")
	// ErrAlreadyRated is returned by Rate when the ticket's follow-up already
	// has its rating: a second click, which callers answer kindly.
	ErrAlreadyRated = errors.New("rating already recorded")
	// ErrNotDue is returned by FollowedUp when the ticket's follow-up is
	// due later than now (it was resolved again since the job was planned).
	ErrNotDue = errors.New("follow-up not due yet")
	// ErrStaleDraft is returned by Approve when the click or form names a
	// draft version the ticket no longer has (a new draft, a reply sent, a
	// reopen since the card was rendered), and by a draft that finished
	// after the ticket moved on: nothing is sent or replaced then.
	ErrStaleDraft = errors.New("draft changed since it was shown")
)

// ActionApproveRefused is the audit action of an Approve refused because
// the card or form showed a draft version the ticket no longer has; its
// card update shows the person the current draft.
const ActionApproveRefused = "approve_refused"

// DetailNoReplyRoute is the Detail of the thread post announcing an
// approval when no customer reply was queued, because casebot has no way
// back to the customer (see ReplyRoute): the thread then tells the agent to
// send the reply shown on the card themselves.
const DetailNoReplyRoute = "no reply route: copy the reply from the card"

// ReplyRoute is where an automatic message to t's customer goes: the
// outbox channel and thread of its PostCustomerReply. ok is false when
// there is no way back, and a person must pass the message on. A Slack
// ticket goes back to its thread (Slack always has a sender); an email
// ticket by SMTP and a webhook ticket to its reply URL, each only when
// senders lists its source and, for the webhook, the ticket has a reply
// URL; manual and imported tickets never. A nil senders stands for every
// source with a sender in code (Slack, email, webhook).
func ReplyRoute(t Ticket, senders map[Source]bool) (channel, thread string, ok bool) {
	has := func(src Source) bool { return senders == nil || senders[src] }
	switch t.Source {
	case SourceSlack:
		return ParseSlackReplyTo(t.ReplyTo)
	case SourceEmail:
		if has(SourceEmail) {
			return OutboundChannel(SourceEmail), t.ReplyTo, true
		}
	case SourceWebhook:
		if has(SourceWebhook) && t.ReplyTo != "" {
			return OutboundChannel(SourceWebhook), t.ReplyTo, true
		}
	}
	return "", "", false
}

// ResolutionMethods are the ways a ticket can be resolved (SPEC section 5).
var ResolutionMethods = []string{"refund", "replacement", "store_credit", "information", "no_action"}

// CanApprove reports whether actor may approve t: anyone, unless the ticket
// needs approval authority, which only configured approvers have.
func (c Config) CanApprove(actor string, t Ticket) bool {
	return !t.NeedsApproval || slices.Contains(c.Approvers, actor)
}

// Approve records that actor sent reply to the customer. reply is what was
// actually sent: the draft as written or as the agent edited it, so the
// revision size can be measured. version is the DraftVersion the card or
// the Edit form showed: when the ticket's differs, nothing is sent, the
// refusal is recorded with a card update showing the current draft, and
// the error wraps ErrStaleDraft. The reply is queued to the customer when
// ReplyRoute finds a way back; otherwise the thread post's Detail is
// DetailNoReplyRoute and the agent sends the text from the card.
func (s *Triager) Approve(ctx context.Context, id, actor string, version int, reply string) (Ticket, error) {
	stale := false
	t, err := s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		if !s.Config.CanApprove(actor, *t) {
			return AuditEvent{}, fmt.Errorf("approve ticket %s by %s: %w", t.ID, actor, ErrNotAuthorized)
		}
		if t.DraftVersion != version {
			// Checked inside the transaction, so a draft that lands between
			// the card's render and the click is never sent unseen.
			stale = true
			now := s.Clock.Now()
			// The card update is the system's: it re-renders the current
			// draft and claims no decision.
			return AuditEvent{TicketID: t.ID, At: now, Actor: actor, Action: ActionApproveRefused,
				From: t.State, To: t.State, Detail: fmt.Sprintf("shown draft version %d, current %d", version, t.DraftVersion),
				Posts: []Post{{Kind: PostCardUpdate, TicketID: t.ID, Action: ActionApproveRefused, Actor: ActorSystem, CreatedAt: now}}}, nil
		}
		if strings.TrimSpace(reply) == "" {
			return AuditEvent{}, fmt.Errorf("approve ticket %s: empty reply", t.ID)
		}
		from := t.State
		if err := t.Transition(StateReplied); err != nil {
			return AuditEvent{}, err
		}
		now := s.Clock.Now()
		// The first response is taken when the reply leaves
		// (ReplyDelivered, MarkSent), not at the click.
		t.ReplySentAt = time.Time{}
		if t.Draft != "" && t.DraftBy == DraftByModel {
			t.DraftSent = true
			t.DraftRevision = NormalizedEditDistance(t.Draft, reply)
		}
		t.Sent, t.Reviewed, t.Assignee = reply, true, actor
		// The draft is answered: no card offers it again, and a draft
		// still being written for it is refused (writeDraft).
		t.DraftWanted = false
		t.DraftVersion++
		channel, thread, routed := ReplyRoute(*t, s.Senders)
		detail := fmt.Sprintf("reply %d chars", len(reply))
		if !routed {
			detail += ", not sent: no reply route"
		}
		ev := withPosts(AuditEvent{TicketID: t.ID, At: now, Actor: actor, Action: "approved", From: from, To: t.State,
			Detail: detail}, PostCardUpdate, PostThread)
		if !routed {
			ev.Posts[1].Detail = DetailNoReplyRoute
			return ev, nil
		}
		t.ReplyQueued = true
		ev.Posts = append(ev.Posts, Post{Kind: PostCustomerReply, TicketID: t.ID, Channel: channel,
			ThreadTS: thread, Action: ActionReply, Actor: actor, Text: reply, CreatedAt: now})
		return ev, nil
	})
	if err == nil && stale {
		return t, fmt.Errorf("approve ticket %s: version %d shown, %d current: %w", id, version, t.DraftVersion, ErrStaleDraft)
	}
	return t, err
}

// ActionReply marks the PostCustomerReply carrying a reply a person
// approved, the only customer message that is a response (SPEC section 7).
const ActionReply = "reply"

// IsReply reports whether p carries a reply a person approved, whose
// delivery is a response: not an acknowledgement, follow-up or alert. A
// customer reply queued before ActionReply existed has no Action.
func IsReply(p Post) bool {
	return p.Kind == PostCustomerReply && (p.Action == ActionReply || p.Action == "")
}

// ErrNoReplyPending is returned by MarkSent when the ticket has no
// approved reply waiting to be sent by hand.
var ErrNoReplyPending = errors.New("no reply waiting to be sent by hand")

// ReplyDelivered records that the approved reply of a ticket reached the
// customer at at, as its sender (Slack, SMTP, the webhook) reported: the
// first time sets FirstResponseAt. Nothing is posted; the audit trail
// keeps when each reply left.
func (s *Triager) ReplyDelivered(ctx context.Context, id string, at time.Time) (Ticket, error) {
	return s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		t.ReplySentAt = at
		if t.FirstResponseAt.IsZero() {
			t.FirstResponseAt = at
		}
		return AuditEvent{TicketID: t.ID, At: at, Actor: ActorSystem, Action: "reply_delivered",
			From: t.State, To: t.State}, nil
	})
}

// MarkSent records that actor sent the approved reply of a ticket with no
// reply route themselves (the card offers this after such an approval), so
// the first response counts from then. A ticket whose reply was queued to
// a sender, was marked already, or has no approved reply gives an error
// wrapping ErrNoReplyPending and nothing is written.
func (s *Triager) MarkSent(ctx context.Context, id, actor string) (Ticket, error) {
	return s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		if !AwaitsHandSend(*t) {
			return AuditEvent{}, fmt.Errorf("mark reply of ticket %s sent: %w", t.ID, ErrNoReplyPending)
		}
		now := s.Clock.Now()
		t.ReplySentAt = now
		if t.FirstResponseAt.IsZero() {
			t.FirstResponseAt = now
		}
		return withPosts(AuditEvent{TicketID: t.ID, At: now, Actor: actor, Action: "marked_sent",
			From: t.State, To: t.State, Detail: "reply sent by hand"}, PostCardUpdate), nil
	})
}

// AwaitsHandSend reports whether t's approved reply had no way back to the
// customer and nobody has marked it sent yet (MarkSent).
func AwaitsHandSend(t Ticket) bool {
	return t.Sent != "" && !t.ReplyQueued && t.ReplySentAt.IsZero()
}

// Override changes one classification field of a ticket as a person decided,
// recording the change so the human override rate can be measured. Routing
// is not redone: the card stays where it was posted.
func (s *Triager) Override(ctx context.Context, id, actor, field, value string) (Ticket, error) {
	return s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		c := t.Classification
		var old string
		switch field {
		case "type":
			old, c.Type = string(c.Type), Type(value)
		case "urgency":
			old, c.Urgency = string(c.Urgency), Level(value)
		case "sentiment":
			old, c.Sentiment = string(c.Sentiment), Sentiment(value)
		case "financial_risk":
			old, c.FinancialRisk = string(c.FinancialRisk), Level(value)
		default:
			return AuditEvent{}, fmt.Errorf("override ticket %s: unknown field %q", t.ID, field)
		}
		if err := c.Validate(); err != nil {
			return AuditEvent{}, fmt.Errorf("override ticket %s: %w", t.ID, err)
		}
		now := s.Clock.Now()
		t.Classification, t.Reviewed = c, true
		if old != value {
			t.Overrides = append(t.Overrides, Override{Field: field, From: old, To: value, By: actor, At: now})
		}
		return withPosts(AuditEvent{TicketID: t.ID, At: now, Actor: actor, Action: "classification_changed",
			From: t.State, To: t.State, Detail: fmt.Sprintf("%s: %s -> %s", field, old, value)}, PostCardUpdate), nil
	})
}

// Escalate hands a ticket to an owner with a reason. A ticket may be
// escalated more than once; it counts once in the escalation rate.
func (s *Triager) Escalate(ctx context.Context, id, actor, owner, reason string) (Ticket, error) {
	return s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		from := t.State
		if err := t.Transition(StateEscalated); err != nil {
			return AuditEvent{}, err
		}
		now := s.Clock.Now()
		t.Escalations++
		t.EscalatedAt, t.Reviewed, t.Assignee = now, true, owner
		ev := withPosts(AuditEvent{TicketID: t.ID, At: now, Actor: actor, Action: "escalated", From: from, To: t.State,
			Detail: reason}, PostCardUpdate, PostThread, PostEscalation)
		for i := range ev.Posts {
			if ev.Posts[i].Kind != PostCardUpdate {
				ev.Posts[i].Mentions = []string{owner}
			}
			if ev.Posts[i].Kind == PostEscalation {
				ev.Posts[i].Channel = s.Config.EscalationChannel
			}
		}
		return ev, nil
	})
}

// Resolution is what a person records when resolving a ticket.
type Resolution struct {
	RootCause string
	Note      string
	Method    string
	Amount    Money
}

// Resolve closes the work on a ticket with its root cause and schedules the
// follow-up after the configured delay. A ticket that needs approval
// authority and got no reply yet may be resolved only by an approver
// (ErrNotAuthorized otherwise): resolving would close, and send the
// follow-up to, a legal or safety case nobody with authority looked at.
func (s *Triager) Resolve(ctx context.Context, id, actor string, r Resolution, followUpAfter time.Duration) (Ticket, error) {
	if r.RootCause != "" && !slices.Contains(s.Config.RootCauses, r.RootCause) {
		return Ticket{}, fmt.Errorf("resolve ticket %s: root cause %q is not in the taxonomy", id, r.RootCause)
	}
	if r.Method != "" && !slices.Contains(ResolutionMethods, r.Method) {
		return Ticket{}, fmt.Errorf("resolve ticket %s: unknown resolution method %q", id, r.Method)
	}
	return s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		if t.NeedsApproval && t.Sent == "" && !s.Config.CanApprove(actor, *t) {
			return AuditEvent{}, fmt.Errorf("resolve ticket %s by %s before an approved reply: %w", t.ID, actor, ErrNotAuthorized)
		}
		from := t.State
		if err := t.Transition(StateResolved); err != nil {
			return AuditEvent{}, err
		}
		now := s.Clock.Now()
		t.ResolvedAt = now
		// A ticket resolved again after a reopen gets a follow-up of its
		// own; the last one stays in FollowUps.
		if !t.FollowUpSentAt.IsZero() && len(t.FollowUps) == 0 {
			// A cycle recorded before FollowUps existed.
			t.FollowUps = []FollowUp{{SentAt: t.FollowUpSentAt, Rating: t.Rating}}
		}
		t.FollowUpSentAt, t.Rating = time.Time{}, 0
		t.RootCause, t.ResolutionNote, t.ResolutionMethod, t.ResolutionAmount = r.RootCause, r.Note, r.Method, r.Amount
		if followUpAfter > 0 {
			t.FollowUpDue = now.Add(followUpAfter)
		}
		return withPosts(AuditEvent{TicketID: t.ID, At: now, Actor: actor, Action: "resolved", From: from, To: t.State,
			Detail: fmt.Sprintf("root cause %q, method %q", r.RootCause, r.Method)}, PostCardUpdate, PostThread), nil
	})
}

// FollowedUp records that the follow-up of a resolved ticket went out, in
// one transaction with the posts announcing it: the card's update, a note in
// its thread saying how it went (detail), and posts, the check-in itself
// (whose route ReplyRoute gives; none when there is no way back). Nothing is
// written for a ticket whose follow-up is already recorded (an error
// wrapping ErrDuplicate, with the ticket, so two runs send one follow-up),
// one not due yet (ErrNotDue) or one no longer resolved, reopened meanwhile
// (ErrInvalidTransition).
func (s *Triager) FollowedUp(ctx context.Context, id, detail string, posts ...Post) (Ticket, error) {
	var current Ticket
	t, err := s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		now := s.Clock.Now()
		if !t.FollowUpSentAt.IsZero() {
			current = *t
			return AuditEvent{}, fmt.Errorf("follow-up of ticket %s already sent: %w", t.ID, ErrDuplicate)
		}
		if t.State == StateResolved && t.FollowUpDue.After(now) {
			return AuditEvent{}, fmt.Errorf("follow-up of ticket %s due at %s: %w", t.ID, t.FollowUpDue.Format(time.RFC3339), ErrNotDue)
		}
		from := t.State
		if err := t.Transition(StateFollowedUp); err != nil {
			return AuditEvent{}, err
		}
		t.FollowUpSentAt = now
		t.FollowUps = append(t.FollowUps, FollowUp{SentAt: now})
		ev := withPosts(AuditEvent{TicketID: t.ID, At: now, Actor: ActorSystem, Action: "followed_up",
			From: from, To: t.State, Detail: detail}, PostCardUpdate, PostThread)
		ev.Posts = append(ev.Posts, posts...)
		return ev, nil
	})
	if errors.Is(err, ErrDuplicate) {
		return current, err
	}
	return t, err
}

// Rate records the customer's rating (1 to 5) of a ticket's follow-up. One
// rule, checked inside the transaction so that two quick clicks cannot both
// count: a rating is taken only once the follow-up went out (FollowUpSentAt
// set) and while none is recorded (Rating 0), with the ticket waiting for it
// (followed_up) or closed because it did not come in time (closed, no
// rating). A rating of 1 or 2 reopens the ticket so its owner looks again,
// late or not; 3 to 5 closes a waiting ticket and leaves a closed one
// closed. A ticket already rated gives an error wrapping ErrAlreadyRated,
// any other one not taking a rating ErrInvalidTransition; nothing is
// written then.
func (s *Triager) Rate(ctx context.Context, id string, rating int) (Ticket, error) {
	if rating < 1 || rating > 5 {
		return Ticket{}, fmt.Errorf("rate ticket %s: rating %d outside 1-5", id, rating)
	}
	t, err := s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		from := t.State
		switch {
		case t.Rating != 0:
			return AuditEvent{}, fmt.Errorf("rate ticket %s: rated %d already: %w", t.ID, t.Rating, ErrAlreadyRated)
		case t.FollowUpSentAt.IsZero() || (from != StateFollowedUp && from != StateClosed):
			return AuditEvent{}, fmt.Errorf("rate ticket %s in state %s, follow-up sent %v: %w",
				t.ID, from, !t.FollowUpSentAt.IsZero(), ErrInvalidTransition)
		}
		if rating <= 2 {
			if err := t.reopen(); err != nil {
				return AuditEvent{}, err
			}
		} else if from != StateClosed {
			if err := t.Transition(StateClosed); err != nil {
				return AuditEvent{}, err
			}
		}
		now := s.Clock.Now()
		t.Rating = rating
		if n := len(t.FollowUps); n > 0 && t.FollowUps[n-1].SentAt.Equal(t.FollowUpSentAt) {
			t.FollowUps[n-1].Rating, t.FollowUps[n-1].RatedAt = rating, now
		} else {
			// A follow-up sent before FollowUps existed.
			t.FollowUps = append(t.FollowUps, FollowUp{SentAt: t.FollowUpSentAt, Rating: rating, RatedAt: now})
		}
		ev := withPosts(AuditEvent{TicketID: t.ID, At: now, Actor: ActorCustomer, Action: "rated",
			From: from, To: t.State, Detail: fmt.Sprintf("rating %d", rating)}, PostCardUpdate, PostThread)
		if t.State == StateReopened && t.Assignee != "" {
			ev.Posts[1].Mentions = []string{t.Assignee}
		}
		return ev, nil
	})
	s.reopened(t, err)
	return t, err
}

// Reopen puts a resolved or closed ticket back in the queue, as a person
// decided.
func (s *Triager) Reopen(ctx context.Context, id, actor, reason string) (Ticket, error) {
	t, err := s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		from := t.State
		if err := t.reopen(); err != nil {
			return AuditEvent{}, err
		}
		return withPosts(AuditEvent{TicketID: t.ID, At: s.Clock.Now(), Actor: actor, Action: "reopened",
			From: from, To: t.State, Detail: reason}, PostCardUpdate, PostThread), nil
	})
	s.reopened(t, err)
	return t, err
}

// reopened tells the Reopened hook about a ticket an action reopened (and
// perhaps escalated at once), once the change is committed, so its fresh
// draft is queued.
func (s *Triager) reopened(t Ticket, err error) {
	if err == nil && t.DraftWanted && t.Draft == "" && t.WantsDraft() && s.Reopened != nil {
		s.Reopened(t)
	}
}

// ReopenWindow is how long after resolution a customer's new message reopens
// the ticket (SPEC section 1).
const ReopenWindow = 14 * 24 * time.Hour

// reopeningRules are the rules whose new trigger reopens a ticket after
// resolution whatever ReopenWindow says: a threat of legal action, a safety
// incident or a public complaint needs a person however old the case.
var reopeningRules = map[string]bool{"legal": true, "safety": true, "reputation": true}

// AppendEntry adds a customer's follow-up message (a thread reply, an email
// in the same thread) to a ticket. A message within ReopenWindow of
// resolution reopens the ticket.
//
// The escalation rules read the ticket's whole text again, so a reply that
// threatens a chargeback dispute flags the ticket as the first message
// would have: new triggers are recorded, their flags added and urgency
// raised as in MergeClassification, NeedsApproval set when one needs it, and
// their owners mentioned in the card's thread. A new trigger acts as it
// would have on arrival, in any state: a legal, safety or reputation one
// reopens a resolved, followed-up or closed ticket however long ago it was
// resolved, and one whose config says escalate escalates the ticket (open or
// not) and mentions its owners in the escalation channel, as Escalate does.
// Nothing a rule set earlier is removed or lowered, and the ticket is not
// routed again. A ticket not classified yet is left to Classify, which
// reads the entries as well.
//
// An entry equal to one already on the ticket (same At, Author and Body: a
// redelivered message) is not added twice: AppendEntry then writes nothing
// and returns the ticket as it is with an error wrapping ErrDuplicate, which
// callers treat as success.
func (s *Triager) AppendEntry(ctx context.Context, id string, e Entry) (Ticket, error) {
	if e.At.IsZero() {
		e.At = s.Clock.Now()
	}
	var current Ticket
	t, err := s.Store.Update(ctx, id, func(t *Ticket) (AuditEvent, error) {
		if slices.ContainsFunc(t.Entries, func(x Entry) bool {
			return x.At.Equal(e.At) && x.Author == e.Author && x.Body == e.Body
		}) {
			current = *t
			return AuditEvent{}, fmt.Errorf("entry of %s at %s already on ticket %s: %w",
				e.Author, e.At.Format(time.RFC3339Nano), t.ID, ErrDuplicate)
		}
		from := t.State
		t.Entries = append(t.Entries, e)
		var added []Trigger
		if from != StateReceived {
			// Classification, still to come, reads the entries too.
			added = s.addTriggers(t)
		}
		escalate := slices.ContainsFunc(added, func(tr Trigger) bool { return tr.Escalate })
		reopen := escalate || slices.ContainsFunc(added, func(tr Trigger) bool { return reopeningRules[tr.Rule] })
		if !from.Open() && (reopen || (!t.ResolvedAt.IsZero() && e.At.Sub(t.ResolvedAt) <= ReopenWindow)) {
			if err := t.reopen(); err != nil {
				return AuditEvent{}, err
			}
		}
		if escalate {
			if err := t.Transition(StateEscalated); err != nil {
				return AuditEvent{}, err
			}
			t.Escalations++
			t.EscalatedAt = s.Clock.Now()
		}
		detail := fmt.Sprintf("%d chars", len(e.Body))
		var mentions []string
		for _, tr := range added {
			detail += "; rule " + tr.Rule + ": " + tr.Reason
			for _, u := range s.Config.Owners[tr.Owner] {
				if !slices.Contains(mentions, u) {
					mentions = append(mentions, u)
				}
			}
		}
		ev := AuditEvent{TicketID: t.ID, At: e.At, Actor: ActorCustomer, Action: "customer_wrote",
			From: from, To: t.State, Detail: detail}
		if t.Route.Channel == "" {
			// Not routed yet: the card, when posted, shows the entry.
			return ev, nil
		}
		ev = withPosts(ev, PostCardUpdate, PostThread)
		ev.Posts[1].Mentions = mentions
		if escalate {
			// The rules escalated it, not the customer: the escalation
			// channel reads "escalated by casebot" with the rules' reasons.
			ev = withPosts(ev, PostEscalation)
			p := &ev.Posts[len(ev.Posts)-1]
			p.Actor, p.Mentions, p.Channel = ActorSystem, mentions, s.Config.EscalationChannel
		}
		return ev, nil
	})
	if errors.Is(err, ErrDuplicate) {
		return current, err
	}
	s.reopened(t, err)
	return t, err
}

// addTriggers evaluates the rules on t's whole text and applies the
// triggers that had not fired yet, returning them. The customer rules (VIP,
// repeat) were decided at classification and are not asked again; the
// amount is the one recorded on the ticket.
func (s *Triager) addTriggers(t *Ticket) []Trigger {
	var added []Trigger
	for _, tr := range s.Rules.Evaluate(RuleInput{Text: ticketText(*t), Amount: t.Classification.Amount}) {
		if slices.ContainsFunc(t.Triggers, func(o Trigger) bool { return o.Rule == tr.Rule }) {
			continue
		}
		added = append(added, tr)
		t.Triggers = append(t.Triggers, tr)
		t.NeedsApproval = t.NeedsApproval || tr.NeedsApproval
	}
	if len(added) > 0 {
		t.Classification = MergeClassification(t.Classification, added)
	}
	return added
}

package bot

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/casebot/casebot/triage"
)

// interact handles an acknowledged interaction: a button on a card, a
// follow-up or a pattern, or the "Create ticket" message shortcut.
func (a *App) interact(ctx context.Context, cb slack.InteractionCallback) {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		for _, act := range cb.ActionCallback.BlockActions {
			a.onButton(ctx, cb, act)
		}
	case slack.InteractionTypeMessageAction:
		if cb.CallbackID == ShortcutCreateTicket {
			a.openFromMessage(ctx, cb)
		}
	}
}

// onButton handles one button: a card's or a follow-up's, whose value is
// the ticket ID (Approve's also names the draft version, see versioned),
// or one of the SOP flow (sop.go).
func (a *App) onButton(ctx context.Context, cb slack.InteractionCallback, act *slack.BlockAction) {
	user, id := cb.User.ID, act.Value
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	switch act.ActionID {
	case ActionApprove:
		a.approve(ctx, channel, user, id)
	case ActionEdit, ActionEscalate, ActionResolve:
		a.openTicketModal(ctx, cb.TriggerID, channel, user, id, act.ActionID)
	case ActionReopen:
		if _, err := a.tr.Reopen(ctx, id, user, "reopened from the card"); err != nil {
			a.tell(ctx, channel, user, a.failure(ctx, id, "reopened", err))
			return
		}
		a.kick()
	case ActionMarkSent:
		a.markSent(ctx, channel, user, id)
	case ActionProposeSOP:
		a.openSOPModal(ctx, cb, act)
	case ActionAcceptSOP, ActionRejectSOP:
		a.decideSOP(ctx, cb, act, act.ActionID == ActionAcceptSOP)
	default:
		if rating, ok := ratingOf(act.ActionID); ok {
			a.rate(ctx, cb, id, rating)
			return
		}
		a.log.Debug("bot: unhandled action", "action_id", act.ActionID)
	}
}

// approve sends the ticket's draft exactly as the clicked card showed it:
// value names the ticket and the draft version on the card, and a draft
// that changed since is not sent (the person is told, and the card
// refreshed). A person without approval authority gets an explanation only
// they see, and nothing changes.
func (a *App) approve(ctx context.Context, channel, user, value string) {
	id, version := parseVersioned(value)
	t, err := a.tr.Store.Get(ctx, id)
	if err != nil {
		a.tell(ctx, channel, user, a.failure(ctx, id, "approved", err))
		return
	}
	if version == t.DraftVersion {
		if strings.TrimSpace(t.Draft) == "" {
			a.tell(ctx, channel, user, "Ticket `"+fit(id, fieldMax)+"` has no draft to send yet. Use *Edit* to write the reply.")
			return
		}
		if !draftShown(t) {
			// The card offers no Approve for such a draft; a click from an
			// older card must not send text nobody read.
			a.tell(ctx, channel, user, "The draft of ticket `"+fit(id, fieldMax)+"` is longer than its card shows. "+
				"Nothing was sent: use *Edit* to read all of it and send it.")
			return
		}
	}
	// The version is checked again in the transaction: a draft landing
	// after the read above is refused there.
	_, err = a.tr.Approve(ctx, id, user, version, t.Draft)
	switch {
	case err == nil:
	case errors.Is(err, triage.ErrStaleDraft):
		if now, err := a.tr.Store.Get(ctx, id); err == nil && !awaitsDecision(now) {
			// A second click, or a click after someone else decided: say
			// where the ticket is rather than that its draft changed.
			a.tell(ctx, channel, user, a.failure(ctx, id, "approved", triage.ErrInvalidTransition))
			break
		}
		a.tell(ctx, channel, user, staleDraft(id))
	case errors.Is(err, triage.ErrNotAuthorized):
		a.tell(ctx, channel, user, a.refusal(t))
		return
	default:
		a.tell(ctx, channel, user, a.failure(ctx, id, "approved", err))
		return
	}
	// Both a sent reply and a refusal queued a card update.
	a.kick()
}

// staleDraft tells the person whose click or form showed an older draft
// than the ticket has that nothing was sent.
func staleDraft(id string) string {
	return "The reply on ticket `" + fit(id, fieldMax) + "` changed after you saw it (a new draft, a reply sent, " +
		"or the customer wrote again), so nothing was sent. The card now shows the current reply: read it and choose again."
}

// markSent records that user sent a ticket's approved reply by hand. A
// second click, or one on a reply casebot sent itself, changes nothing and
// says so.
func (a *App) markSent(ctx context.Context, channel, user, id string) {
	_, err := a.tr.MarkSent(ctx, id, user)
	switch {
	case errors.Is(err, triage.ErrNoReplyPending):
		a.tell(ctx, channel, user, "Ticket `"+fit(id, fieldMax)+"` has no reply waiting to be sent by hand. Nothing was changed.")
		return
	case err != nil:
		a.tell(ctx, channel, user, a.failure(ctx, id, "marked as sent", err))
		return
	}
	a.kick()
}

// approvalReasons says why a ticket needs approval authority, from the
// rules that fired, e.g. `legal term "sue" (en)` or "refund USD 240.00 above
// approval threshold 100".
func approvalReasons(t triage.Ticket) []string {
	var reasons []string
	for _, tr := range t.Triggers {
		if !tr.NeedsApproval {
			continue
		}
		r := tr.Reason
		if r == "" {
			r = tr.Rule + " rule"
		}
		reasons = append(reasons, fit(r, contextMax))
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "it is marked as needing approval")
	}
	return reasons
}

// refusal explains to a person without approval authority why they cannot
// approve a ticket and who can.
func (a *App) refusal(t triage.Ticket) string {
	var who []string
	for _, id := range a.tr.Config.Approvers {
		if m := Mention(id); m != "" && len(who) < maxMentions {
			who = append(who, m)
		}
	}
	text := "🔐 Ticket `" + fit(t.ID, fieldMax) + "` needs approval authority: " +
		strings.Join(approvalReasons(t), "; ") + ". Nothing was sent.\n"
	if len(who) == 0 {
		text += "No approvers are configured; ask whoever runs casebot to add `approvers` to casebot.yml. "
	} else {
		text += "Only " + strings.Join(who, ", ") + " can approve it. "
	}
	return Truncate(text+"You can still *Escalate* it.", MaxMessageText)
}

// failure turns an action's error into a message for the person who acted,
// naming the ticket's state when that is why. Errors stay in the log: they
// may name internals.
func (a *App) failure(ctx context.Context, id, done string, err error) string {
	return a.failureWith(ctx, id, done, err, "Nothing was changed")
}

// failureWith is failure with outcome saying what the failed action left
// (a sentence without its period).
func (a *App) failureWith(ctx context.Context, id, done string, err error, outcome string) string {
	ticket := "Ticket `" + fit(id, fieldMax) + "`"
	switch {
	case errors.Is(err, triage.ErrNotFound):
		return ticket + " was not found."
	case errors.Is(err, triage.ErrInvalidTransition):
		now := "has moved on"
		if t, err := a.tr.Store.Get(ctx, id); err == nil {
			now = "is " + strings.ReplaceAll(string(t.State), "_", " ")
		}
		return ticket + " " + now + ", so it can't be " + done + " now. " + outcome + "."
	case errors.Is(err, triage.ErrNotAuthorized):
		return ticket + " now needs approval authority, so it can't be " + done + " by you. " + outcome + "."
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		a.log.Warn("bot: action timed out", "ticket", id, "action", done, "err", err)
		return "casebot took too long to record that. " + outcome + "; please try again."
	}
	a.log.Error("bot: action failed", "ticket", id, "action", done, "err", err)
	return "casebot couldn't record that just now. " + outcome + "; please try again in a moment."
}

// tell shows text to one person: ephemerally in channel, or in their direct
// messages with the app when there is no channel.
func (a *App) tell(ctx context.Context, channel, user, text string) {
	var err error
	if channel == "" {
		_, _, err = a.api.PostMessageContext(ctx, user, slack.MsgOptionText(text, false))
	} else {
		_, err = a.api.PostEphemeralContext(ctx, channel, user, slack.MsgOptionText(text, false))
	}
	if err != nil {
		a.log.Warn("bot: could not tell a person", "user", user, "err", err)
	}
}

// pastTense names what a button does, for messages about it.
var pastTense = map[string]string{ActionEdit: "edited", ActionEscalate: "escalated", ActionResolve: "resolved"}

// openTicketModal opens the Edit, Escalate or Resolve modal of a ticket,
// unless the ticket's state or the person's authority rules it out.
func (a *App) openTicketModal(ctx context.Context, triggerID, channel, user, id, action string) {
	t, err := a.tr.Store.Get(ctx, id)
	if err != nil {
		a.tell(ctx, channel, user, a.failure(ctx, id, pastTense[action], err))
		return
	}
	var view slack.ModalViewRequest
	switch action {
	case ActionEdit:
		if !t.State.CanTransition(triage.StateReplied) {
			a.tell(ctx, channel, user, a.failure(ctx, id, "edited", triage.ErrInvalidTransition))
			return
		}
		if !a.tr.Config.CanApprove(user, t) {
			a.tell(ctx, channel, user, a.refusal(t))
			return
		}
		view = EditModal(t)
	case ActionEscalate:
		if !t.State.CanTransition(triage.StateEscalated) {
			a.tell(ctx, channel, user, a.failure(ctx, id, "escalated", triage.ErrInvalidTransition))
			return
		}
		view = EscalateModal(t)
	case ActionResolve:
		if !t.State.CanTransition(triage.StateResolved) {
			a.tell(ctx, channel, user, a.failure(ctx, id, "resolved", triage.ErrInvalidTransition))
			return
		}
		view = ResolveModal(t, a.tr.Config.RootCauses, a.tr.Config.Thresholds.Currency)
	}
	a.openView(ctx, triggerID, channel, user, view)
}

// openView opens a modal. A trigger ID lives 3 seconds; when it has expired
// the person is asked to click again.
func (a *App) openView(ctx context.Context, triggerID, channel, user string, view slack.ModalViewRequest) {
	_, err := a.api.OpenViewContext(ctx, triggerID, view)
	if err == nil {
		return
	}
	a.log.Warn("bot: views.open", "callback_id", view.CallbackID, "err", err)
	text := "casebot couldn't open the form just now; please try again."
	if strings.Contains(err.Error(), "trigger") {
		text = "That click took too long to reach casebot; please click again."
	}
	a.tell(ctx, channel, user, text)
}

// openFromMessage opens the new-ticket form for the "Create ticket"
// shortcut, prefilled with the message and its author. The external ID
// names the message, so a second ticket from it is refused as a duplicate.
func (a *App) openFromMessage(ctx context.Context, cb slack.InteractionCallback) {
	msg := cb.Message
	channel := cb.Channel.ID
	ts := msg.Timestamp
	if ts == "" {
		ts = cb.MessageTs
	}
	author := ""
	if msg.User != "" && msg.BotID == "" {
		author = "<@" + msg.User + ">"
	}
	metadata := "shortcut/" + channel + "/" + ts
	a.openView(ctx, cb.TriggerID, channel, cb.User.ID, NewTicketModal(slackUnescape(msg.Text), author, metadata))
}

// slackUnescape decodes the three entities Slack encodes in message text, so
// tickets keep the customer's words; Escape encodes them again on the way
// out.
var slackUnescape = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace

// viewAnswer is what a view submission answers: nil closes the modal.
type viewAnswer = *slack.ViewSubmissionResponse

// onViewSubmission acknowledges a modal's submission with its answer
// (errors to show, a view to show instead, or nothing to close it). The
// handler runs on the pool; when it takes longer than viewAckBudget the
// modal is closed without waiting, and any complaint it finds later goes to
// the person as a message.
func (a *App) onViewSubmission(req *socketmode.Request, cb slack.InteractionCallback) {
	var once sync.Once
	answer := func(v viewAnswer) bool {
		first := false
		once.Do(func() {
			first = true
			if v == nil {
				a.ack(req, nil)
			} else {
				a.ack(req, v)
			}
		})
		return first
	}
	timer := time.AfterFunc(viewAckBudget, func() { answer(nil) })
	a.enqueue(func(ctx context.Context) {
		defer timer.Stop()
		s := submission{a: a, cb: cb, answer: answer}
		switch cb.View.CallbackID {
		case CallbackEdit:
			s.edit(ctx)
		case CallbackEscalate:
			s.escalate(ctx)
		case CallbackResolve:
			s.resolve(ctx)
		case CallbackNew:
			s.create(ctx)
		case CallbackSOP:
			s.proposeSOP(ctx)
		default:
			answer(nil)
		}
	})
}

// submission is one modal submission being handled.
type submission struct {
	a      *App
	cb     slack.InteractionCallback
	answer func(viewAnswer) bool
}

func (s submission) user() string { return s.cb.User.ID }

func (s submission) state() *slack.ViewState { return s.cb.View.State }

// reject shows errors on the modal's inputs, or, when the modal was already
// closed, sends them to the person where the ticket's card is.
func (s submission) reject(ctx context.Context, channel string, errs map[string]string) {
	if s.answer(slack.NewErrorsViewSubmissionResponse(errs)) {
		return
	}
	var lines []string
	for _, block := range slices.Sorted(maps.Keys(errs)) {
		lines = append(lines, errs[block])
	}
	s.a.tell(ctx, channel, s.user(), "Your form was closed before casebot could check it: "+strings.Join(lines, " "))
}

// ticket loads the ticket a modal is about, rejecting the submission on
// block when it cannot. The Edit modal's metadata also names the draft
// version it opened on (versioned); the others' is the ticket ID.
func (s submission) ticket(ctx context.Context, block, done string) (triage.Ticket, bool) {
	id, _ := parseVersioned(s.cb.View.PrivateMetadata)
	t, err := s.a.tr.Store.Get(ctx, id)
	if err != nil {
		s.reject(ctx, "", map[string]string{block: s.a.failure(ctx, id, done, err)})
		return t, false
	}
	return t, true
}

// edit applies the Edit modal: every changed classification field is
// recorded as an override, then the edited reply is sent. Overrides and the
// approval are separate transactions, so everything that can be checked is
// checked before the first write: authority, the reply, the ticket's state
// and every chosen value. What can still fail after that (a concurrent
// change of the ticket, the store) is told to the person with the reply they
// typed, which is lost with the form otherwise.
func (s submission) edit(ctx context.Context) {
	t, ok := s.ticket(ctx, blockDraft, "sent")
	if !ok {
		return
	}
	st := s.state()
	reply := stateValue(st, blockDraft)
	_, version := parseVersioned(s.cb.View.PrivateMetadata)
	switch {
	case !s.a.tr.Config.CanApprove(s.user(), t):
		s.reject(ctx, t.Slack.Channel, map[string]string{blockDraft: "Only approvers can send this reply: " +
			strings.Join(approvalReasons(t), "; ") + ". Cancel and use Escalate instead."})
		return
	case strings.TrimSpace(reply) == "":
		s.reject(ctx, t.Slack.Channel, map[string]string{blockDraft: "Write the reply before sending it."})
		return
	case !t.State.CanTransition(triage.StateReplied):
		s.reject(ctx, t.Slack.Channel, map[string]string{blockDraft: s.a.failure(ctx, t.ID, "sent", triage.ErrInvalidTransition)})
		return
	case version != t.DraftVersion:
		s.unsent(ctx, t, blockDraft, reply, staleEdit(unsentOutcome(nil)))
		return
	}
	changes, errs := classificationChanges(st, t.Classification)
	if len(errs) > 0 {
		s.reject(ctx, t.Slack.Channel, errs)
		return
	}
	// Overrides recorded before a later step fails have enqueued posts too.
	defer s.a.kick()
	for i, ch := range changes {
		if _, err := s.a.tr.Override(ctx, t.ID, s.user(), ch.field, ch.value); err != nil {
			s.unsent(ctx, t, ch.field, reply, s.a.failureWith(ctx, t.ID, "changed", err, unsentOutcome(changes[:i])))
			return
		}
	}
	if _, err := s.a.tr.Approve(ctx, t.ID, s.user(), version, reply); err != nil {
		if errors.Is(err, triage.ErrStaleDraft) {
			s.unsent(ctx, t, blockDraft, reply, staleEdit(unsentOutcome(changes)))
			return
		}
		s.unsent(ctx, t, blockDraft, reply, s.a.failureWith(ctx, t.ID, "sent", err, unsentOutcome(changes)))
		return
	}
	s.answer(nil)
}

// staleEdit explains an Edit submission refused because the form opened on
// a draft the ticket no longer has; outcome says what was recorded.
func staleEdit(outcome string) string {
	return "The draft changed after you opened this form (a new draft, a reply sent, or the customer wrote again), " +
		"so your reply was not sent. " + outcome + ". Copy your reply, cancel, and press Edit on the card again."
}

// override is one classification field the Edit modal changes.
type override struct{ field, value string }

// fieldValid checks a chosen value of each field the Edit modal offers.
var fieldValid = map[string]func(string) bool{
	blockType:      func(v string) bool { return triage.Type(v).Valid() },
	blockUrgency:   func(v string) bool { return triage.Level(v).Valid() },
	blockSentiment: func(v string) bool { return triage.Sentiment(v).Valid() },
	blockRisk:      func(v string) bool { return triage.Level(v).Valid() },
}

// classificationChanges returns the fields a submitted Edit modal changes,
// or an error per field whose value is not one of its options (a forged
// submission), before anything is written.
func classificationChanges(st *slack.ViewState, c triage.Classification) ([]override, map[string]string) {
	current := map[string]string{blockType: string(c.Type), blockUrgency: string(c.Urgency),
		blockSentiment: string(c.Sentiment), blockRisk: string(c.FinancialRisk)}
	var out []override
	errs := map[string]string{}
	for _, field := range classificationFields {
		v := stateOption(st, field)
		switch {
		case v == "" || v == current[field]:
		case !fieldValid[field](v):
			errs[field] = "Choose one of the options."
		default:
			out = append(out, override{field, v})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// unsentOutcome says what a failed Edit submission left: the reply unsent,
// and the classification changes recorded before the failure, if any.
func unsentOutcome(recorded []override) string {
	if len(recorded) == 0 {
		return "Nothing was changed"
	}
	fields := make([]string, len(recorded))
	for i, o := range recorded {
		fields[i] = strings.ReplaceAll(o.field, "_", " ")
	}
	return "The reply was not sent; your change of " + strings.Join(fields, ", ") + " was recorded"
}

// unsent reports an Edit submission whose reply was not sent: on the
// modal, which still holds the reply, or, when the modal was already
// closed, in a message that quotes the reply back so it is not lost.
func (s submission) unsent(ctx context.Context, t triage.Ticket, block, reply, why string) {
	if s.answer(slack.NewErrorsViewSubmissionResponse(map[string]string{block: why})) {
		return
	}
	s.a.tell(ctx, t.Slack.Channel, s.user(), "Your form was closed before casebot could finish: "+why+
		"\nHere is the reply you wrote, to copy:\n"+Truncate(quote(Escape(reply)), maxQuotedReply))
}

// escalate applies the Escalate modal.
func (s submission) escalate(ctx context.Context) {
	t, ok := s.ticket(ctx, blockReason, "escalated")
	if !ok {
		return
	}
	st := s.state()
	reason := strings.TrimSpace(stateValue(st, blockReason))
	owner := stateUser(st, blockOwner)
	switch {
	case reason == "":
		s.reject(ctx, t.Slack.Channel, map[string]string{blockReason: "Say what needs the owner's judgment."})
		return
	case Mention(owner) == "":
		s.reject(ctx, t.Slack.Channel, map[string]string{blockOwner: "Choose the person who takes it over."})
		return
	}
	if _, err := s.a.tr.Escalate(ctx, t.ID, s.user(), owner, reason); err != nil {
		s.reject(ctx, t.Slack.Channel, map[string]string{blockReason: s.a.failure(ctx, t.ID, "escalated", err)})
		return
	}
	s.answer(nil)
	s.a.kick()
}

// resolve applies the Resolve modal, which schedules the follow-up.
func (s submission) resolve(ctx context.Context) {
	t, ok := s.ticket(ctx, blockRootCause, "resolved")
	if !ok {
		return
	}
	st := s.state()
	amount, err := parseAmount(stateValue(st, blockAmount), s.a.tr.Config.Thresholds.Currency)
	if err != nil {
		s.reject(ctx, t.Slack.Channel, map[string]string{blockAmount: errAmount})
		return
	}
	r := triage.Resolution{
		RootCause: stateOption(st, blockRootCause),
		Note:      strings.TrimSpace(stateValue(st, blockNote)),
		Method:    stateOption(st, blockMethod),
		Amount:    amount,
	}
	if _, err := s.a.tr.Resolve(ctx, t.ID, s.user(), r, s.a.followUp); err != nil {
		s.reject(ctx, t.Slack.Channel, map[string]string{blockRootCause: s.a.failure(ctx, t.ID, "resolved", err)})
		return
	}
	s.answer(nil)
	s.a.kick()
}

// create applies the new-ticket form. The ticket is stored before the
// submission is acknowledged (SPEC invariant 1) and classified after; the
// form then shows the ticket's ID, or the existing ticket when the same
// message was already turned into one.
func (s submission) create(ctx context.Context) {
	st := s.state()
	errs := map[string]string{}
	amount, err := parseAmount(stateValue(st, blockAmount), s.a.tr.Config.Thresholds.Currency)
	if err != nil {
		errs[blockAmount] = errAmount
	}
	customer, err := parseIdentity(stateValue(st, blockCustomer))
	if err != nil {
		errs[blockCustomer] = "Enter the customer's email address or their handle, like @jane."
	}
	text := strings.TrimSpace(stateValue(st, blockText))
	if text == "" {
		errs[blockText] = "Write what the customer said."
	}
	if len(errs) > 0 {
		s.reject(ctx, "", errs)
		return
	}
	externalID := s.cb.View.PrivateMetadata
	if !strings.HasPrefix(externalID, "shortcut/") {
		externalID = "manual/" + s.cb.View.ID
	}
	in := triage.Inbound{
		Source: triage.SourceManual, Channel: stateOption(st, blockSource), ExternalID: externalID,
		Customer: customer, Body: text, OrderAmount: amount,
	}
	t, err := s.a.tr.Intake(ctx, in)
	duplicate := errors.Is(err, triage.ErrDuplicate)
	if err != nil && !duplicate {
		s.a.log.Error("bot: store manual ticket", "external_id", externalID, "err", err)
		s.reject(ctx, "", map[string]string{blockText: "casebot couldn't save the ticket just now; please try again."})
		return
	}
	done := CreatedModal(t, duplicate)
	if !s.answer(slack.NewUpdateViewSubmissionResponse(&done)) {
		s.a.tell(ctx, "", s.user(), "Ticket `"+fit(t.ID, fieldMax)+"` is saved.")
	}
	// Slack never redelivers a submission: a duplicate is a second form for
	// the same message, whose first submission classified the ticket,
	// unless that run stopped before it could.
	if !duplicate || t.State == triage.StateReceived {
		s.a.classify(t.ID)
	}
}

package bot

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/triage"
)

// Action IDs of the card's buttons. They are also the Decision.Action values
// the card understands (as are the past-tense audit actions "approved",
// "escalated" and so on).
const (
	ActionApprove  = "approve"
	ActionEdit     = "edit"
	ActionEscalate = "escalate"
	ActionResolve  = "resolve"
	ActionReopen   = "reopen"
	// ActionMarkSent records that a person sent an approved reply with no
	// way back to the customer themselves (triage.Triager.MarkSent).
	ActionMarkSent = "mark_sent"
)

// Text budgets of the card, in characters of escaped text. Each stays under
// its Block Kit limit, and together they stay well under MaxTotalText.
const (
	fieldMax    = 200  // one customer-derived value in the fields grid
	contextMax  = 300  // one flag with its reasons, one status item
	messageMax  = 2500 // the quoted customer message
	briefMax    = 1500
	draftMax    = 2900
	snippetMax  = 200 // customer text in the notification fallback
	actorMax    = 80  // a decision's actor or unknown action
	detailMax   = 60  // a root cause or resolution method
	maxMentions = 20
)

// CardOptions is what the card needs besides the ticket.
type CardOptions struct {
	// Customer is the ticket's customer, shown by name and email or handle;
	// when zero the card shows the ticket's customer ID.
	Customer triage.Customer
	// Last is the latest decision a person made on the ticket; zero before
	// the first one.
	Last Decision
	// Location is the time zone times are shown in; nil means UTC.
	Location *time.Location
}

// Decision is who did what to a ticket, and when, as the card reports it.
type Decision struct {
	// Actor is a Slack user ID, or triage.ActorSystem.
	Actor string
	// Action is a button action ID (ActionApprove…) or an audit action
	// ("approved", "escalated", "resolved", "reopened").
	Action string
	// At is when it happened.
	At time.Time
}

// Message is one Slack message: the notification fallback text and the
// blocks. It marshals to the chat.postMessage payload {"text", "blocks"}.
type Message struct {
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks"`
}

// slackID matches the IDs casebot may mention: users (U…, W… on Enterprise
// Grid) and user groups (S…). Anything else in a mention list is dropped, so
// a bad config value can never become "<!channel>".
var slackID = regexp.MustCompile(`^[UWS][A-Z0-9]{2,}$`)

// maxIDLen bounds a mentioned ID (Slack's are about 11 characters), so that
// a card's mentions always fit their block and are never truncated.
const maxIDLen = 32

// Mention renders a user or user-group ID as a Slack mention, or returns ""
// when id is not a valid user or user-group ID.
func Mention(id string) string {
	if len(id) > maxIDLen || !slackID.MatchString(id) {
		return ""
	}
	if id[0] == 'S' {
		return "<!subteam^" + id + ">"
	}
	return "<@" + id + ">"
}

// CardMessage renders a ticket as a card with its notification fallback
// text: the header, ticket ID, customer and the start of the message, all
// escaped and within MaxMessageText.
func CardMessage(t triage.Ticket, opts CardOptions) Message {
	text := fmt.Sprintf("%s: ticket %s from %s: %s", headerText(t), fit(t.ID, fieldMax),
		fit(customerLabel(t, opts.Customer), fieldMax),
		fit(strings.Join(strings.Fields(Truncate(ticketText(t), 2*snippetMax)), " "), snippetMax))
	return Message{Text: Truncate(text, MaxMessageText), Blocks: CardBlocks(t, opts)}
}

// CardBlocks renders a ticket as its Slack card. Customer and model text is
// escaped and truncated (the full text stays in the store); only the owner
// mentions, which come from config, are live. The buttons follow the state:
// Approve, Edit and Escalate while a ticket awaits a decision, Resolve and
// Reopen after one, Reopen alone once it is resolved.
func CardBlocks(t triage.Ticket, opts CardOptions) []slack.Block {
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain(Truncate(headerText(t), MaxHeaderText))),
		slack.NewSectionBlock(nil, fields(t, opts.Customer, loc), nil),
	}
	if b := flagsBlock(t); b != nil {
		blocks = append(blocks, b)
	}
	if b := ownersBlock(t); b != nil {
		blocks = append(blocks, b)
	}
	if b := statusBlock(t); b != nil {
		blocks = append(blocks, b)
	}
	blocks = append(blocks, messageBlock(t))
	if t.Brief != "" {
		blocks = append(blocks, section("*Brief*\n"+fit(t.Brief, briefMax)))
	}
	blocks = append(blocks, replyBlocks(t)...)
	if b := longDraftBlock(t); b != nil {
		blocks = append(blocks, b)
	}
	if b := decisionBlock(t, opts.Last, loc); b != nil {
		blocks = append(blocks, b)
	}
	return append(blocks, actionsBlock(t))
}

// fit escapes untrusted text and truncates it to max characters. The raw
// text is cut first as well, so a 100 KB message costs no more work than a
// max-character one.
func fit(s string, max int) string { return Truncate(Escape(Truncate(s, max)), max) }

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

// mrkdwn builds a verbatim mrkdwn object: without verbatim Slack would
// auto-link URLs and channel names and parse some bare mentions in the
// (escaped) text; explicit "<@U…>" mentions still work.
func mrkdwn(s string) *slack.TextBlockObject {
	return &slack.TextBlockObject{Type: slack.MarkdownType, Text: s, Verbatim: true}
}

func section(s string) *slack.SectionBlock { return slack.NewSectionBlock(mrkdwn(s), nil, nil) }

var urgencyEmoji = map[triage.Level]string{
	triage.LevelHigh: "🟥", triage.LevelMedium: "🟧", triage.LevelLow: "🟩",
}

var typeLabels = map[triage.Type]string{
	triage.TypeRefund: "Refund", triage.TypeDelivery: "Delivery", triage.TypeProductDefect: "Product defect",
	triage.TypeBilling: "Billing", triage.TypeOrderChange: "Order change", triage.TypeAccount: "Account",
	triage.TypePolicyQuestion: "Policy question", triage.TypeFeedback: "Feedback", triage.TypeOther: "Other",
}

// headerText is "🟥 Refund · high urgency". Type and urgency are enums, but
// a ticket stored with an out-of-range value is still shown, escaped.
func headerText(t triage.Ticket) string {
	c := t.Classification
	emoji, ok := urgencyEmoji[c.Urgency]
	if !ok {
		emoji = "⬜"
	}
	label, ok := typeLabels[c.Type]
	switch {
	case ok:
	case c.Type == "":
		label = "Unclassified"
	default:
		label = fit(string(c.Type), 40)
	}
	urgency := "unknown"
	if c.Urgency != "" {
		urgency = fit(string(c.Urgency), 20)
	}
	return fmt.Sprintf("%s %s · %s urgency", emoji, label, urgency)
}

// customerLabel names the customer: "Name · email", the email being the
// address the ticket came from (replies go there, not to the customer's
// first address), falling back to the handle and finally to the ticket's
// customer ID. Not escaped.
func customerLabel(t triage.Ticket, c triage.Customer) string {
	contact := cmp.Or(t.ReplyAddress, c.Email)
	if contact == "" {
		contact = c.Handle
	}
	switch {
	case c.Name != "" && contact != "":
		return c.Name + " · " + contact
	case c.Name != "":
		return c.Name
	case contact != "":
		return contact
	}
	return t.CustomerID
}

// ticketText is the customer's subject and body.
func ticketText(t triage.Ticket) string {
	if t.Subject == "" {
		return t.Body
	}
	return t.Subject + "\n" + t.Body
}

func fields(t triage.Ticket, cust triage.Customer, loc *time.Location) []*slack.TextBlockObject {
	c := t.Classification
	source := fit(string(t.Source), fieldMax)
	if t.Channel != "" && t.Channel != string(t.Source) {
		source += " · " + fit(t.Channel, fieldMax)
	}
	sentiment := "—"
	if c.Sentiment != "" {
		sentiment = fmt.Sprintf("%s (%+.2f)", fit(string(c.Sentiment), fieldMax), c.SentimentScore)
	}
	risk := "—"
	if c.FinancialRisk != "" {
		risk = fit(string(c.FinancialRisk), fieldMax)
	}
	if !c.Amount.IsZero() {
		risk += " · " + fit(c.Amount.String(), fieldMax)
	}
	pairs := [][2]string{
		{"Customer", fit(customerLabel(t, cust), fieldMax)},
		{"Source", source},
		{"Ticket", "`" + fit(t.ID, fieldMax) + "`"},
		{"Received", formatTime(t.ReceivedAt, loc)},
		{"Sentiment", sentiment},
		{"Financial risk", risk},
		{"State", fit(strings.ReplaceAll(string(t.State), "_", " "), fieldMax)},
	}
	if t.OrderRef != "" {
		pairs = append(pairs, [2]string{"Order", fit(t.OrderRef, fieldMax)})
	}
	out := make([]*slack.TextBlockObject, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, mrkdwn("*"+p[0]+"*\n"+Truncate(p[1], fieldMax)))
	}
	return out
}

func formatTime(at time.Time, loc *time.Location) string {
	if at.IsZero() {
		return "—"
	}
	return at.In(loc).Format("2006-01-02 15:04 MST")
}

var flagLabels = map[triage.Flag]string{
	triage.FlagLegal: "⚖️", triage.FlagSafety: "🩹", triage.FlagReputation: "📣", triage.FlagVIP: "⭐",
	triage.FlagRepeat: "🔁", triage.FlagHighEmotion: "😡", triage.FlagPolicyException: "🧾",
}

// flagsBlock lists each flag with the reasons of the rules that set it; a
// flag no trigger set came from the classifier and names it (flagSetter).
func flagsBlock(t triage.Ticket) *slack.ContextBlock {
	var flags []triage.Flag
	for _, f := range t.Classification.Flags {
		if !slices.Contains(flags, f) {
			flags = append(flags, f)
		}
	}
	for _, tr := range t.Triggers {
		if tr.Flag != "" && !slices.Contains(flags, tr.Flag) {
			flags = append(flags, tr.Flag)
		}
	}
	slices.SortStableFunc(flags, func(a, b triage.Flag) int { return flagRank(a) - flagRank(b) })
	var elems []slack.MixedElement
	for _, f := range flags {
		if len(elems) == MaxContextElements {
			break
		}
		emoji, ok := flagLabels[f]
		if !ok {
			emoji = "🏷️"
		}
		var reasons []string
		for _, tr := range t.Triggers {
			if tr.Flag == f && tr.Reason != "" {
				reasons = append(reasons, tr.Reason)
			}
		}
		text := emoji + " *" + fit(string(f), fieldMax) + "*"
		if len(reasons) > 0 {
			text += ": " + fit(strings.Join(reasons, "; "), contextMax)
		} else {
			text += " (" + flagSetter(t) + ")"
		}
		elems = append(elems, mrkdwn(Truncate(text, contextMax)))
	}
	if len(elems) == 0 {
		return nil
	}
	return slack.NewContextBlock("", elems...)
}

// flagSetter names the classifier behind a flag no trigger set: the model,
// or the keyword rules when they classified the ticket without it, so a
// keyword flag is never passed off as the model's.
func flagSetter(t triage.Ticket) string {
	if t.ClassifiedBy == "model" {
		return "model"
	}
	return "keyword rules"
}

// flagRank orders flags as triage.Flags does, unknown flags last.
func flagRank(f triage.Flag) int {
	if i := slices.Index(triage.Flags, f); i >= 0 {
		return i
	}
	return len(triage.Flags)
}

// ownersBlock mentions the route's owners. They are IDs resolved from
// config, not customer text, so they are live mentions; invalid ones are
// dropped.
func ownersBlock(t triage.Ticket) *slack.SectionBlock {
	var mentions []string
	for _, id := range t.Route.Mentions {
		if m := Mention(id); m != "" && !slices.Contains(mentions, m) && len(mentions) < maxMentions {
			mentions = append(mentions, m)
		}
	}
	if len(mentions) == 0 {
		return nil
	}
	label := "👥 *Owners*"
	if t.Route.Escalate || t.State == triage.StateEscalated {
		label = "🚨 *Escalated to*"
	}
	return section(label + " " + strings.Join(mentions, " "))
}

// statusBlock marks a rules-only classification and approval authority.
func statusBlock(t triage.Ticket) *slack.ContextBlock {
	var elems []slack.MixedElement
	if t.ClassifiedBy == "rules" {
		text := "🛟 *Rules only*: the model was not used"
		if t.RulesReason != "" {
			text += " (" + fit(t.RulesReason, contextMax) + ")"
		}
		elems = append(elems, mrkdwn(Truncate(text, contextMax)))
	}
	if t.NeedsApproval {
		elems = append(elems, mrkdwn("🔐 *Needs approval authority*: only configured approvers can approve"))
	}
	if len(elems) == 0 {
		return nil
	}
	return slack.NewContextBlock("", elems...)
}

// messageBlock quotes the customer's message. Quoting happens after
// escaping, so the customer cannot open or close a quote, and truncation
// after quoting, so the "> " prefixes count against the limit.
func messageBlock(t triage.Ticket) *slack.SectionBlock {
	head := "*Customer message*"
	if n := len(t.Entries); n > 0 {
		head += fmt.Sprintf(" (+%d later in the thread)", n)
	}
	body := quote(fit(ticketText(t), messageMax))
	if body == "" {
		body = "_(no text)_"
	}
	return section(head + "\n" + Truncate(body, messageMax))
}

// quote prefixes each line with "> ", keeping at most one blank line in a
// row so that a message of newlines cannot stretch the card.
func quote(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var lines []string
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimRight(line, " \t")
		switch {
		case line != "":
			lines = append(lines, "> "+line)
		case lines[len(lines)-1] != ">":
			lines = append(lines, ">")
		}
	}
	return strings.Join(lines, "\n")
}

// replyBlocks show, while a ticket awaits a decision, the draft Approve
// would send (or that it is being written) under the reply sent before a
// reopen, if any; afterwards the reply that was sent. So the card never
// shows one text and offers Approve of another. An approved reply casebot
// had no way to send is not called sent: a person passes it on.
func replyBlocks(t triage.Ticket) []slack.Block {
	draft := section("*Draft reply*\n_Drafting…_")
	if t.Draft != "" {
		draft = section("*Draft reply*\n" + fit(t.Draft, draftMax))
	}
	sent := "*Sent reply*\n"
	switch {
	case triage.AwaitsHandSend(t):
		sent = "*Approved reply, to send by hand*\n"
	case !t.ReplyQueued:
		sent = "*Reply sent by hand*\n"
	}
	switch {
	case t.Sent == "":
		return []slack.Block{draft}
	case awaitsDecision(t):
		return []slack.Block{section("*Reply sent before*\n" + fit(t.Sent, draftMax)), draft}
	}
	return []slack.Block{section(sent + fit(t.Sent, draftMax))}
}

// draftShown reports whether the card shows the whole draft. Approve sends
// the draft as stored, so it is offered only for text the agent could read
// on the card.
func draftShown(t triage.Ticket) bool {
	return utf8.RuneCountInString(t.Draft) <= draftMax && fit(t.Draft, draftMax) == Escape(t.Draft)
}

// approvable reports whether the card offers Approve: the ticket awaits a
// decision and the card shows its current draft whole (replyBlocks).
func approvable(t triage.Ticket) bool {
	return awaitsDecision(t) && t.Draft != "" && draftShown(t)
}

// versionSep joins a ticket ID and a draft version in the Approve button's
// value and the Edit modal's private_metadata; ticket IDs never contain it.
const versionSep = "#"

// versioned names ticket t with the draft version its card or form shows,
// so the click or submission sends nothing when the draft changed since.
func versioned(t triage.Ticket) string {
	return t.ID + versionSep + strconv.Itoa(t.DraftVersion)
}

// parseVersioned splits a versioned value into the ticket ID and the draft
// version. A value without a version (a card or form rendered before
// versions existed) gives version -1, which no ticket has: the click is
// refused and the card refreshed rather than sending unseen text.
func parseVersioned(v string) (id string, version int) {
	id, n, ok := strings.Cut(v, versionSep)
	if !ok {
		return v, -1
	}
	version, err := strconv.Atoi(n)
	if err != nil || version < 0 {
		return id, -1
	}
	return id, version
}

// awaitsDecision reports whether a ticket's card offers Approve, Edit and
// Escalate. A ticket the rules escalated on arrival has had no decision yet
// (Reviewed is set by a person's approval or escalation), so it still
// does.
func awaitsDecision(t triage.Ticket) bool {
	return t.State.Open() && t.State != triage.StateReplied && (t.State != triage.StateEscalated || !t.Reviewed)
}

// longDraftBlock says why a ticket awaiting a decision has no Approve
// button although it has a draft: the card shows only its start.
func longDraftBlock(t triage.Ticket) *slack.ContextBlock {
	if t.Draft == "" || draftShown(t) || !awaitsDecision(t) {
		return nil
	}
	return slack.NewContextBlock("", mrkdwn("✂️ The draft is longer than the card shows, so it cannot be approved "+
		"from here: use *Edit* to read all of it and send it."))
}

var decisionLabels = map[string]string{
	ActionApprove: "✅ Approved and sent", "approved": "✅ Approved and sent",
	ActionEdit: "✏️ Edited and sent", "edited": "✏️ Edited and sent",
	ActionEscalate: "🚨 Escalated", "escalated": "🚨 Escalated",
	ActionResolve: "🏁 Resolved", "resolved": "🏁 Resolved",
	ActionReopen: "🔁 Reopened", "reopened": "🔁 Reopened",
	"marked_sent": "📨 Marked as sent",
}

// decisionBlock says who did what and when. The mentions come before the
// variable-length details, so truncation never cuts one.
func decisionBlock(t triage.Ticket, d Decision, loc *time.Location) *slack.ContextBlock {
	if d.Action == "" {
		return nil
	}
	label, ok := decisionLabels[d.Action]
	if !ok {
		label = fit(d.Action, actorMax)
	}
	if (d.Action == ActionApprove || d.Action == "approved") && t.Sent != "" && !t.ReplyQueued {
		// No way back to the customer (manual entry, email without SMTP):
		// nothing was sent, a person passes the reply on.
		label = "✅ Approved, to send by hand,"
	}
	actor := Mention(d.Actor)
	switch {
	case actor != "":
	case d.Actor == triage.ActorSystem:
		actor = "casebot"
	case d.Actor == "":
		actor = "someone"
	default:
		actor = fit(d.Actor, actorMax)
	}
	text := label + " by " + actor
	if !d.At.IsZero() {
		text += " · " + formatTime(d.At, loc)
	}
	switch t.State {
	case triage.StateEscalated:
		if m := Mention(t.Assignee); m != "" {
			text += " · to " + m
		}
	case triage.StateResolved, triage.StateFollowedUp, triage.StateClosed:
		if t.RootCause != "" {
			text += " · root cause `" + fit(t.RootCause, detailMax) + "`"
		}
		if t.ResolutionMethod != "" {
			text += " · " + fit(strings.ReplaceAll(t.ResolutionMethod, "_", " "), detailMax)
		}
	}
	return slack.NewContextBlock("", mrkdwn(Truncate(text, contextMax)))
}

func button(actionID, label, value string, style slack.Style) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(actionID, value, plain(label)).WithStyle(style)
}

// actionsBlock offers the buttons the ticket's state allows (see
// awaitsDecision). Approve needs the current draft, shown whole on the
// card (approvable); its value carries the draft version shown.
func actionsBlock(t triage.Ticket) *slack.ActionBlock {
	reopen := button(ActionReopen, "Reopen", t.ID, slack.StyleDefault)
	switch {
	case !t.State.Open():
		return slack.NewActionBlock("", reopen)
	case !awaitsDecision(t) && triage.AwaitsHandSend(t):
		// The first response counts once the person says they sent it.
		return slack.NewActionBlock("", button(ActionMarkSent, "Mark as sent", t.ID, slack.StylePrimary),
			button(ActionResolve, "Resolve", t.ID, slack.StyleDefault), reopen)
	case !awaitsDecision(t):
		return slack.NewActionBlock("", button(ActionResolve, "Resolve", t.ID, slack.StylePrimary), reopen)
	}
	var elems []slack.BlockElement
	if approvable(t) {
		elems = append(elems, button(ActionApprove, "Approve", versioned(t), slack.StylePrimary))
	}
	elems = append(elems,
		button(ActionEdit, "Edit", t.ID, slack.StyleDefault),
		button(ActionEscalate, "Escalate", t.ID, slack.StyleDanger))
	return slack.NewActionBlock("", elems...)
}

// Block Kit limits, in characters (code points), from the Block Kit
// reference; ValidateBlocks enforces them.
const (
	MaxBlocks          = 50   // blocks per message
	MaxBlockID         = 255  // block_id
	MaxHeaderText      = 150  // header block text
	MaxTextObject      = 3000 // any text object: section text, context element
	MaxSectionFields   = 10   // section fields
	MaxFieldText       = 2000 // one section field
	MaxContextElements = 10   // context block elements
	MaxActionsElements = 25   // actions block elements
	MaxButtonText      = 75   // button label
	MaxActionID        = 255  // action_id
	MaxButtonValue     = 2000 // button value
	MaxButtonURL       = 3000 // button url
	// MaxMessageText is the length Slack asks clients to keep message text
	// under (it truncates at 40,000).
	MaxMessageText = 4000
	// MaxTotalText bounds the text of all blocks together. It is not in the
	// reference, but chat.postMessage answers msg_blocks_too_long above
	// about 12,000 characters (slackapi/bolt-js#2509).
	MaxTotalText = 12000
)

// ErrInvalidBlocks is returned by ValidateBlocks; the error lists every
// violation.
var ErrInvalidBlocks = errors.New("invalid blocks")

// ValidateBlocks checks blocks against the Block Kit limits casebot relies
// on: block count and IDs, header, section, context and actions blocks, text
// objects and buttons, and the total text size. Other block types are
// counted but not inspected. Block values and pointers (as slack.Blocks
// decodes them) are both accepted.
func ValidateBlocks(blocks []slack.Block) error {
	v := validator{ids: map[string]bool{}}
	if len(blocks) > MaxBlocks {
		v.fail("message", "%d blocks, more than %d", len(blocks), MaxBlocks)
	}
	for i, b := range blocks {
		v.block(fmt.Sprintf("blocks[%d]", i), b)
	}
	if v.total > MaxTotalText {
		v.fail("message", "%d characters of block text, more than %d", v.total, MaxTotalText)
	}
	if len(v.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidBlocks, errors.Join(v.errs...))
}

type validator struct {
	errs  []error
	ids   map[string]bool
	total int
}

func (v *validator) fail(where, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
}

func (v *validator) block(where string, b slack.Block) {
	switch b := derefBlock(b).(type) {
	case nil:
		v.fail(where, "nil block")
	case slack.HeaderBlock:
		v.header(where, b)
	case slack.SectionBlock:
		v.section(where, b)
	case slack.ContextBlock:
		v.context(where, b)
	case slack.ActionBlock:
		v.actions(where, b)
	default:
		v.blockID(where, b.ID())
	}
}

// derefBlock returns the block a pointer points to, so that callers switch
// on value types only; a nil pointer becomes nil.
func derefBlock(b slack.Block) slack.Block {
	switch p := b.(type) {
	case *slack.HeaderBlock:
		if p != nil {
			return *p
		}
	case *slack.SectionBlock:
		if p != nil {
			return *p
		}
	case *slack.ContextBlock:
		if p != nil {
			return *p
		}
	case *slack.ActionBlock:
		if p != nil {
			return *p
		}
	case *slack.DividerBlock:
		if p != nil {
			return *p
		}
	default:
		return b
	}
	return nil
}

func (v *validator) blockID(where, id string) {
	if id == "" {
		return
	}
	v.max(where+".block_id", id, MaxBlockID)
	if v.ids[id] {
		v.fail(where+".block_id", "%q is not unique", id)
	}
	v.ids[id] = true
}

// max checks a string's length in characters.
func (v *validator) max(where, s string, limit int) {
	if n := utf8.RuneCountInString(s); n > limit {
		v.fail(where, "%d characters, more than %d", n, limit)
	}
}

// text checks a text object: its type, that it is not empty, its length,
// and that it is valid UTF-8; it counts towards the total.
func (v *validator) text(where string, t *slack.TextBlockObject, limit int, plainOnly bool) {
	if t == nil {
		v.fail(where, "missing text")
		return
	}
	switch {
	case t.Type == slack.PlainTextType:
	case t.Type == slack.MarkdownType && !plainOnly:
		if t.Emoji != nil {
			v.fail(where, "emoji is not allowed on mrkdwn")
		}
	default:
		v.fail(where, "text type %q not allowed here", t.Type)
	}
	if t.Text == "" {
		v.fail(where, "empty text")
	}
	if !utf8.ValidString(t.Text) {
		v.fail(where, "text is not valid UTF-8")
	}
	v.max(where, t.Text, limit)
	v.total += utf8.RuneCountInString(t.Text)
}

func (v *validator) header(where string, b slack.HeaderBlock) {
	v.blockID(where, b.BlockID)
	v.text(where+".text", b.Text, MaxHeaderText, true)
}

func (v *validator) section(where string, b slack.SectionBlock) {
	v.blockID(where, b.BlockID)
	if b.Text == nil && len(b.Fields) == 0 {
		v.fail(where, "needs text or fields")
	}
	if b.Text != nil {
		v.text(where+".text", b.Text, MaxTextObject, false)
	}
	if len(b.Fields) > MaxSectionFields {
		v.fail(where+".fields", "%d fields, more than %d", len(b.Fields), MaxSectionFields)
	}
	for i, f := range b.Fields {
		v.text(fmt.Sprintf("%s.fields[%d]", where, i), f, MaxFieldText, false)
	}
	if b.Accessory != nil && b.Accessory.ButtonElement != nil {
		v.button(where+".accessory", b.Accessory.ButtonElement, map[string]bool{})
	}
}

func (v *validator) context(where string, b slack.ContextBlock) {
	v.blockID(where, b.BlockID)
	elems := b.ContextElements.Elements
	if len(elems) == 0 {
		v.fail(where+".elements", "no elements")
	}
	if len(elems) > MaxContextElements {
		v.fail(where+".elements", "%d elements, more than %d", len(elems), MaxContextElements)
	}
	for i, e := range elems {
		at := fmt.Sprintf("%s.elements[%d]", where, i)
		switch e := e.(type) {
		case *slack.TextBlockObject:
			v.text(at, e, MaxTextObject, false)
		case slack.TextBlockObject:
			v.text(at, &e, MaxTextObject, false)
		}
	}
}

func (v *validator) actions(where string, b slack.ActionBlock) {
	v.blockID(where, b.BlockID)
	var elems []slack.BlockElement
	if b.Elements != nil {
		elems = b.Elements.ElementSet
	}
	if len(elems) == 0 {
		v.fail(where+".elements", "no elements")
	}
	if len(elems) > MaxActionsElements {
		v.fail(where+".elements", "%d elements, more than %d", len(elems), MaxActionsElements)
	}
	seen := map[string]bool{}
	for i, e := range elems {
		at := fmt.Sprintf("%s.elements[%d]", where, i)
		switch e := e.(type) {
		case *slack.ButtonBlockElement:
			v.button(at, e, seen)
		case slack.ButtonBlockElement:
			v.button(at, &e, seen)
		}
	}
}

// button checks a button; seen holds the action IDs of its block, which
// must be unique.
func (v *validator) button(where string, b *slack.ButtonBlockElement, seen map[string]bool) {
	if b == nil {
		v.fail(where, "nil button")
		return
	}
	v.text(where+".text", b.Text, MaxButtonText, true)
	v.max(where+".action_id", b.ActionID, MaxActionID)
	v.max(where+".value", b.Value, MaxButtonValue)
	v.max(where+".url", b.URL, MaxButtonURL)
	switch b.Style {
	case slack.StyleDefault, slack.StylePrimary, slack.StyleDanger:
	default:
		v.fail(where+".style", "unknown style %q", b.Style)
	}
	if b.ActionID != "" {
		if seen[b.ActionID] {
			v.fail(where+".action_id", "%q is not unique in its block", b.ActionID)
		}
		seen[b.ActionID] = true
	}
}

package bot

import (
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/triage"
)

// Callback IDs of casebot's modals and of the message shortcut.
const (
	CallbackEdit     = "edit"
	CallbackEscalate = "escalate"
	CallbackResolve  = "resolve"
	CallbackNew      = "new"
	// ShortcutCreateTicket is the message shortcut "Create ticket".
	ShortcutCreateTicket = "create_ticket"
)

// Block IDs of the modals' inputs; each input's action ID is its block ID.
const (
	blockDraft     = "draft"
	blockType      = "type"
	blockUrgency   = "urgency"
	blockSentiment = "sentiment"
	blockRisk      = "financial_risk"
	blockReason    = "reason"
	blockOwner     = "owner"
	blockRootCause = "root_cause"
	blockNote      = "note"
	blockMethod    = "method"
	blockAmount    = "amount"
	blockSource    = "source"
	blockCustomer  = "customer"
	blockText      = "text"
)

// Modal limits casebot relies on beyond those of messages.
const (
	maxInputValue  = 3000 // plain_text_input initial_value and max_length
	maxOptions     = 100  // options of a static select
	maxOptionText  = 75   // an option's label
	maxOptionValue = 150  // an option's value
	summaryMax     = 600  // the customer message quoted atop a modal
	noteMax        = 2000 // free-text notes and reasons
	// maxQuotedReply bounds a reply quoted back in a message, under
	// Slack's 40,000 characters of message text. A modal's reply of
	// maxInputValue characters fits it even escaped and quoted (at most
	// 5 + 2 characters for each).
	maxQuotedReply = 7 * maxInputValue
)

// manualChannels are the channels a manual ticket can come from, with their
// labels (SPEC section 2: phone, in-store, social …).
var manualChannels = [][2]string{
	{"email", "Email"}, {"chat", "Chat"}, {"social", "Social"}, {"review", "Review"},
	{"phone", "Phone"}, {"in_store", "In store"},
}

var levelLabels = [][2]string{{"low", "Low"}, {"medium", "Medium"}, {"high", "High"}}

var sentimentLabels = [][2]string{{"frustrated", "Frustrated"}, {"neutral", "Neutral"}, {"satisfied", "Satisfied"}}

var methodLabels = map[string]string{
	"refund": "Refund", "replacement": "Replacement", "store_credit": "Store credit",
	"information": "Information", "no_action": "No action",
}

// classificationFields are the fields the Edit modal lets a person change,
// in triage.Override's names.
var classificationFields = []string{blockType, blockUrgency, blockSentiment, blockRisk}

func modal(callbackID, title, submit, metadata string, blocks ...slack.Block) slack.ModalViewRequest {
	v := slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      callbackID,
		Title:           plain(title),
		Close:           plain("Cancel"),
		Blocks:          slack.Blocks{BlockSet: blocks},
		PrivateMetadata: metadata,
	}
	if submit != "" {
		v.Submit = plain(submit)
	}
	return v
}

// ticketSummary heads a ticket's modals: type, urgency, ID and the start of
// the customer's message, escaped and quoted.
func ticketSummary(t triage.Ticket) slack.Block {
	body := quote(fit(ticketText(t), summaryMax))
	if body == "" {
		body = "_(no text)_"
	}
	return section("*" + headerText(t) + "* · `" + fit(t.ID, fieldMax) + "`\n" + Truncate(body, summaryMax))
}

func textInput(block, placeholder string, multiline bool, maxLen int) *slack.PlainTextInputBlockElement {
	el := slack.NewPlainTextInputBlockElement(nil, block)
	if placeholder != "" {
		el.Placeholder = plain(placeholder)
	}
	el.Multiline = multiline
	el.MaxLength = maxLen
	return el
}

func input(block, label string, el slack.BlockElement, optional bool) *slack.InputBlock {
	b := slack.NewInputBlock(block, plain(label), nil, el)
	b.Optional = optional
	return b
}

// staticSelect offers options as value/label pairs, preselecting current
// when it is one of them. Options past Slack's limits are left out.
func staticSelect(block string, opts [][2]string, current string) *slack.SelectBlockElement {
	var options []*slack.OptionBlockObject
	var initial *slack.OptionBlockObject
	for _, o := range opts {
		if len(options) == maxOptions || o[0] == "" || utf8.RuneCountInString(o[0]) > maxOptionValue {
			continue
		}
		opt := slack.NewOptionBlockObject(o[0], plain(Truncate(o[1], maxOptionText)), nil)
		options = append(options, opt)
		if o[0] == current {
			initial = opt
		}
	}
	el := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Choose"), block, options...)
	el.InitialOption = initial
	return el
}

// EditModal is the Edit button's modal: the draft to revise and the
// classification fields to correct. Submitting it records the changed
// fields and sends the reply.
func EditModal(t triage.Ticket) slack.ModalViewRequest {
	draft := textInput(blockDraft, "", true, maxInputValue)
	draft.InitialValue = Truncate(t.Draft, maxInputValue)
	blocks := []slack.Block{ticketSummary(t)}
	if utf8.RuneCountInString(t.Draft) > maxInputValue {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf(
			"The draft is longer than %d characters; its end is cut here.", maxInputValue))))
	}
	draftBlock := input(blockDraft, "Reply to the customer", draft, false)
	draftBlock.Hint = plain("Sent to the customer as written when you press Send reply.")
	c := t.Classification
	var types [][2]string
	for _, ty := range triage.Types {
		types = append(types, [2]string{string(ty), typeLabels[ty]})
	}
	blocks = append(blocks, draftBlock,
		input(blockType, "Type", staticSelect(blockType, types, string(c.Type)), true),
		input(blockUrgency, "Urgency", staticSelect(blockUrgency, levelLabels, string(c.Urgency)), true),
		input(blockSentiment, "Sentiment", staticSelect(blockSentiment, sentimentLabels, string(c.Sentiment)), true),
		input(blockRisk, "Financial risk", staticSelect(blockRisk, levelLabels, string(c.FinancialRisk)), true),
	)
	// The metadata names the draft version the form opened on, so a draft
	// that changed meanwhile is not silently answered (Triager.Approve).
	return modal(CallbackEdit, "Edit and send", "Send reply", versioned(t), blocks...)
}

// EscalateModal asks for the reason and the owner who takes the ticket over,
// preselecting the first person the route mentions.
func EscalateModal(t triage.Ticket) slack.ModalViewRequest {
	owner := slack.NewOptionsSelectBlockElement(slack.OptTypeUser, plain("Choose a person"), blockOwner)
	for _, id := range t.Route.Mentions {
		if m := Mention(id); m != "" && id[0] != 'S' {
			owner.InitialUser = id
			break
		}
	}
	return modal(CallbackEscalate, "Escalate ticket", "Escalate", t.ID,
		ticketSummary(t),
		input(blockReason, "Why escalate?", textInput(blockReason, "What needs their judgment", true, noteMax), false),
		input(blockOwner, "Owner", owner, false),
		slack.NewContextBlock("", mrkdwn("The owner is mentioned in the escalation channel and in the ticket's thread.")),
	)
}

// ResolveModal asks for the root cause from the taxonomy, a note, the
// resolution method and any amount refunded or credited.
func ResolveModal(t triage.Ticket, rootCauses []string, currency string) slack.ModalViewRequest {
	var causes [][2]string
	for _, rc := range rootCauses {
		causes = append(causes, [2]string{rc, label(rc)})
	}
	current := t.RootCause
	if current == "" {
		current = t.Classification.RootCauseGuess
	}
	var methods [][2]string
	for _, m := range triage.ResolutionMethods {
		l, ok := methodLabels[m]
		if !ok {
			l = label(m)
		}
		methods = append(methods, [2]string{m, l})
	}
	amount := input(blockAmount, "Amount refunded or credited",
		textInput(blockAmount, "0.00", false, 20), true)
	if currency == "" {
		currency = "the shop's currency"
	}
	amount.Hint = plain("In " + currency + ", e.g. 12.50. Leave empty for none.")
	return modal(CallbackResolve, "Resolve ticket", "Resolve", t.ID,
		ticketSummary(t),
		input(blockRootCause, "Root cause", staticSelect(blockRootCause, causes, current), false),
		input(blockNote, "Note", textInput(blockNote, "What happened and what was done", true, noteMax), true),
		input(blockMethod, "Resolution", staticSelect(blockMethod, methods, t.ResolutionMethod), false),
		amount,
	)
}

// NewTicketModal is the form of `/casebot new` and of the "Create ticket"
// shortcut, which prefills the message's text and author. metadata is the
// ticket's external ID for a shortcut, empty for /casebot new.
func NewTicketModal(text, customer, metadata string) slack.ModalViewRequest {
	who := textInput(blockCustomer, "jane@example.com or @handle", false, 254)
	who.InitialValue = Truncate(customer, 254)
	body := textInput(blockText, "What the customer said", true, maxInputValue)
	body.InitialValue = Truncate(text, maxInputValue)
	return modal(CallbackNew, "New ticket", "Create ticket", metadata,
		input(blockSource, "Came in by", staticSelect(blockSource, manualChannels, ""), false),
		input(blockCustomer, "Customer email or handle", who, false),
		input(blockText, "Message", body, false),
		input(blockAmount, "Order amount", textInput(blockAmount, "0.00", false, 20), true),
	)
}

// CreatedModal replaces the new-ticket form once the ticket is stored.
func CreatedModal(t triage.Ticket, duplicate bool) slack.ModalViewRequest {
	text := "✅ Created ticket `" + fit(t.ID, fieldMax) + "`. casebot is triaging it; its card will appear in the channel it is routed to."
	if duplicate {
		text = "ℹ️ This is already ticket `" + fit(t.ID, fieldMax) + "`; nothing new was created."
	}
	v := modal(CallbackNew, "New ticket", "", "", section(text))
	v.Close = plain("Done")
	return v
}

// label turns a key like "store_credit" into "Store credit".
func label(key string) string {
	s := strings.ReplaceAll(key, "_", " ")
	if s == "" {
		return s
	}
	r, size := utf8.DecodeRuneInString(s)
	return strings.ToUpper(string(r)) + s[size:]
}

// amountPattern is a non-negative amount in major units with at most two
// decimals, "." or "," as the separator; ten digits are far beyond any order.
var amountPattern = regexp.MustCompile(`^([0-9]{1,10})(?:[.,]([0-9]{1,2}))?$`)

// errAmount is what a person sees for an amount that is not one.
const errAmount = "Enter an amount of zero or more, like 12.50, without a currency sign."

// parseAmount reads an amount typed in a modal; empty is zero.
func parseAmount(s, currency string) (triage.Money, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return triage.Money{}, nil
	}
	m := amountPattern.FindStringSubmatch(s)
	if m == nil {
		return triage.Money{}, fmt.Errorf("amount %q: not a number of the form 12.50", s)
	}
	major, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return triage.Money{}, fmt.Errorf("amount %q: %w", s, err)
	}
	cents := int64(0)
	if m[2] != "" {
		cents, _ = strconv.ParseInt((m[2] + "0")[:2], 10, 64)
	}
	return triage.Money{Minor: major*100 + cents, Currency: currency}, nil
}

// slackUserRef matches a Slack user mention as typed or prefilled in a
// modal: "<@U123>" or "<@U123|jane>".
var slackUserRef = regexp.MustCompile(`^<@([UW][A-Z0-9]{2,31})(?:\|[^>]*)?>$`)

// parseIdentity reads the customer field of the new-ticket form: a Slack
// user mention, an email address or a platform handle.
func parseIdentity(s string) (triage.Customer, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return triage.Customer{}, fmt.Errorf("empty customer")
	}
	if m := slackUserRef.FindStringSubmatch(s); m != nil {
		return triage.Customer{SlackUserID: m[1]}, nil
	}
	if !strings.HasPrefix(s, "@") && strings.Contains(s, "@") {
		addr, err := mail.ParseAddress(s)
		if err != nil {
			return triage.Customer{}, fmt.Errorf("customer %q: %w", s, err)
		}
		return triage.Customer{Email: strings.ToLower(addr.Address), Name: addr.Name}, nil
	}
	handle := strings.TrimLeft(s, "@")
	if handle == "" || strings.ContainsFunc(handle, unicode.IsSpace) {
		return triage.Customer{}, fmt.Errorf("customer %q: not a handle", s)
	}
	return triage.Customer{Handle: handle}, nil
}

// stateValue reads a text input of a submitted view.
func stateValue(s *slack.ViewState, block string) string {
	if s == nil {
		return ""
	}
	return s.Values[block][block].Value
}

// stateOption reads the chosen option of a submitted view's select.
func stateOption(s *slack.ViewState, block string) string {
	if s == nil {
		return ""
	}
	return s.Values[block][block].SelectedOption.Value
}

// stateUser reads the chosen person of a submitted view's users select.
func stateUser(s *slack.ViewState, block string) string {
	if s == nil {
		return ""
	}
	return s.Values[block][block].SelectedUser
}

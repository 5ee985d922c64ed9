package bot

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/triage"
)

// Text budgets of the non-card posts, in characters of escaped text.
const (
	// postDetailMax bounds a reason or other agent-written detail.
	postDetailMax = 1500
	// postQuoteMax bounds a quoted customer message.
	postQuoteMax = 1500
	// maxReplyText is the longest customer reply posted; Slack refuses
	// longer text (msg_too_long) and an approved reply must not be cut
	// below what Slack accepts.
	maxReplyText = 40000
)

// slackChannel matches the conversation IDs casebot links with "<#…>":
// public (C…) and private (G…) channels and DMs (D…). Anything else is shown
// as text, so a bad ID can never become another kind of link.
var slackChannel = regexp.MustCompile(`^[CGD][A-Z0-9]{2,31}$`)

// channelRef renders a channel as a link when it is a valid ID.
func channelRef(id string) string {
	if slackChannel.MatchString(id) {
		return "<#" + id + ">"
	}
	if id == "" {
		return "an unknown channel"
	}
	return "`" + fit(id, fieldMax) + "`"
}

// actorRef names who acted: a mention for a Slack user, words for casebot
// and the customer, escaped text for anything else.
func actorRef(actor string) string {
	if m := Mention(actor); m != "" {
		return m
	}
	switch actor {
	case triage.ActorSystem:
		return "casebot"
	case triage.ActorCustomer:
		return "the customer"
	case "":
		return "someone"
	}
	return fit(actor, actorMax)
}

// mentionList renders the valid, distinct IDs of ids as mentions; invalid
// IDs are dropped (they come from config, but must never become a
// broadcast).
func mentionList(ids []string) string {
	var out []string
	for _, id := range ids {
		if m := Mention(id); m != "" && !slices.Contains(out, m) && len(out) < maxMentions {
			out = append(out, m)
		}
	}
	return strings.Join(out, " ")
}

// ThreadMessage renders a PostThread post: the decision or event it
// announces, as a reply in the card's thread. Only p.Mentions and the
// actor become live mentions; the detail, reasons and customer text are
// escaped. t is the ticket as it is when posting.
func ThreadMessage(p triage.Post, t triage.Ticket, loc *time.Location) Message {
	head, body := threadText(p, t, loc)
	return postMessage(head, body)
}

// threadText returns the head of a thread message, which holds every
// mention, and its variable-length body, which is cut first.
func threadText(p triage.Post, t triage.Ticket, loc *time.Location) (head, body string) {
	if loc == nil {
		loc = time.UTC
	}
	actor := actorRef(p.Actor)
	mentions := mentionList(p.Mentions)
	detail := fit(strings.TrimSpace(p.Detail), postDetailMax)
	switch p.Action {
	case "approved":
		head = "✅ Approved by " + actor + ": " + replyRoute(p, t.Source)
		detail = ""
	case "escalated":
		head = "⚠️ Escalated by " + actor
		if mentions != "" {
			head += " to " + mentions
			mentions = ""
		}
	case "resolved":
		head = "🏁 Resolved by " + actor
		// The ticket's own fields are shown while it still holds this
		// resolution; the audit detail otherwise.
		if t.ResolvedAt.Equal(p.CreatedAt) {
			detail = resolutionText(t)
		}
	case "rated":
		head = ratingText(p, t)
		detail = ""
		if mentions != "" {
			head += ", " + mentions + " please follow up"
			mentions = ""
		}
	case "reopened":
		head = "🔁 Reopened by " + actor
	case "customer_wrote":
		head = "✉️ Customer wrote again"
		detail = ""
		if e, ok := entryAt(t, p.CreatedAt); ok {
			body = quote(fit(e.Body, postQuoteMax))
		}
	default:
		head = "ℹ️ " + fit(strings.ReplaceAll(p.Action, "_", " "), actorMax) + " by " + actor
	}
	if mentions != "" {
		head += " · " + mentions
	}
	if !p.CreatedAt.IsZero() {
		head += " · " + formatTime(p.CreatedAt, loc)
	}
	if detail != "" {
		body = quote(detail)
	}
	return head, body
}

// replyRoute says how the reply approved in p reaches the customer of a
// ticket from src. When Approve queued none (triage.DetailNoReplyRoute:
// manual and imported tickets, a source without a configured sender) the
// person copies the reply from the card; posts queued before Approve said
// so go by the source alone.
func replyRoute(p triage.Post, src triage.Source) string {
	if p.Detail == triage.DetailNoReplyRoute {
		return noReplyRoute
	}
	switch src {
	case triage.SourceSlack:
		return "reply sent in the customer's thread"
	case triage.SourceEmail:
		return "reply sent by email"
	case triage.SourceWebhook:
		return "reply sent through the webhook"
	}
	return noReplyRoute
}

// noReplyRoute is the approval's note when the reply is not sent by casebot.
const noReplyRoute = "no way back to the customer, copy the reply from the card"

// resolutionText is the root cause, method and note of a resolved ticket.
func resolutionText(t triage.Ticket) string {
	var parts []string
	if t.RootCause != "" {
		parts = append(parts, "root cause: "+t.RootCause)
	}
	if t.ResolutionMethod != "" {
		parts = append(parts, "method: "+strings.ReplaceAll(t.ResolutionMethod, "_", " "))
	}
	if !t.ResolutionAmount.IsZero() {
		parts = append(parts, "amount: "+t.ResolutionAmount.String())
	}
	text := strings.Join(parts, " · ")
	if note := strings.TrimSpace(t.ResolutionNote); note != "" {
		text += "\n" + note
	}
	return fit(strings.TrimSpace(text), postDetailMax)
}

// ratingText reads the rating from the audit detail ("rating 2"), falling
// back to the ticket's; 1–2 reopened the ticket, 3–5 closed it.
func ratingText(p triage.Post, t triage.Ticket) string {
	rating := t.Rating
	var n int
	if _, err := fmt.Sscanf(p.Detail, "rating %d", &n); err == nil {
		rating = n
	}
	if rating < 1 || rating > 5 {
		return "⭐ Customer rated the follow-up"
	}
	text := fmt.Sprintf("⭐ Customer rated %d/5", rating)
	if rating <= 2 {
		return text + " — reopened"
	}
	return text + " — closed"
}

// entryAt finds the entry appended at at, the time of its audit event.
func entryAt(t triage.Ticket, at time.Time) (triage.Entry, bool) {
	for i := len(t.Entries) - 1; i >= 0; i-- {
		if t.Entries[i].At.Equal(at) {
			return t.Entries[i], true
		}
	}
	return triage.Entry{}, false
}

// EscalationMessage renders a PostEscalation post: a top-level message in
// the escalation channel mentioning the owner, naming the ticket and the
// channel its card is in (chat.getPermalink would cost a call per post),
// with the escalation reason escaped.
func EscalationMessage(p triage.Post, t triage.Ticket, loc *time.Location) Message {
	if loc == nil {
		loc = time.UTC
	}
	cardChannel := t.Slack.Channel
	if cardChannel == "" {
		cardChannel = t.Route.Channel
	}
	head := "🚨 "
	if m := mentionList(p.Mentions); m != "" {
		head += m + ": "
	}
	head += fmt.Sprintf("ticket `%s` in %s was escalated by %s · %s", fit(t.ID, fieldMax), channelRef(cardChannel),
		actorRef(p.Actor), headerText(t))
	if !p.CreatedAt.IsZero() {
		head += " · " + formatTime(p.CreatedAt, loc)
	}
	return postMessage(head, quote(fit(strings.TrimSpace(p.Detail), postDetailMax)))
}

// CustomerReplyMessage renders a PostCustomerReply post: the reply a person
// approved, escaped, as plain message text. No mention is possible. The
// scheduler's posts of this kind are told apart by their action: a
// follow-up (FollowUpMessage) and a pattern alert (PatternAlertMessage).
func CustomerReplyMessage(p triage.Post) Message {
	switch p.Action {
	case ActionFollowUp:
		return FollowUpMessage(p)
	case ActionPatternAlert:
		return PatternAlertMessage(p)
	}
	return Message{Text: Truncate(Escape(p.Text), maxReplyText)}
}

// postMessage builds a one-section message from a head holding every
// mention and a body cut to what the section has left, so that truncation
// never splits a mention. The notification text is the same text.
func postMessage(head, body string) Message {
	head = Truncate(head, MaxTextObject)
	text := head
	if room := MaxTextObject - utf8.RuneCountInString(head) - 1; body != "" && room > 0 {
		text += "\n" + Truncate(body, room)
	}
	return Message{Text: Truncate(text, MaxMessageText), Blocks: []slack.Block{section(text)}}
}

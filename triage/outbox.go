package triage

import (
	"context"
	"time"
)

// PostKind says what a Post is for; the bot renders each kind.
type PostKind string

// The kinds of posts casebot makes in Slack.
const (
	// PostCard is the ticket card, posted once to the routed channel.
	PostCard PostKind = "card"
	// PostCardUpdate re-renders a posted card in place (chat.update).
	PostCardUpdate PostKind = "card_update"
	// PostThread is a message in the card's thread: a decision, a mention.
	PostThread PostKind = "thread"
	// PostEscalation mentions the owner in the escalation channel.
	PostEscalation PostKind = "escalation"
	// PostCustomerReply is the approved reply to the customer, sent back the
	// way the ticket came: in the customer's own Slack thread, or through the
	// outbound channel of its source (see OutboundChannel).
	PostCustomerReply PostKind = "customer_reply"
)

// OutboundPrefix starts the outbox channel of replies that leave by another
// way than Slack: "out:email", "out:webhook". The Slack poster leaves those
// channels to their own senders.
const OutboundPrefix = "out:"

// OutboundChannel is the outbox channel of replies to tickets from src.
func OutboundChannel(src Source) string { return OutboundPrefix + string(src) }

// Post is one Slack message waiting in the outbox. It says what happened and
// to whom; the bot turns it into Block Kit at posting time, from the ticket as
// it is then.
type Post struct {
	// ID is assigned by the outbox and orders posts within a channel.
	ID       string   `json:"id"`
	Kind     PostKind `json:"kind"`
	TicketID string   `json:"ticket_id"`
	// Channel is where the post goes. Left empty, the outbox fills in the
	// ticket's routed channel, so card updates and thread posts queue behind
	// the card they refer to.
	Channel string `json:"channel,omitempty"`
	// ThreadTS is the Slack thread a customer reply goes to; for outbound
	// replies it is the ticket's ReplyTo (a Message-ID, a callback URL).
	ThreadTS string `json:"thread_ts,omitempty"`
	// Action, Actor and Detail describe the change being announced.
	Action string `json:"action,omitempty"`
	Actor  string `json:"actor,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Mentions are Slack user or user-group IDs to mention.
	Mentions []string `json:"mentions,omitempty"`
	// Text is the customer reply for PostCustomerReply.
	Text      string    `json:"text,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Attempts  int       `json:"attempts,omitempty"`
}

// Outbox holds posts until Slack has them, so posting survives restarts and
// Slack outages and each channel is drained in order (SPEC invariant 6).
// Posts attached to an AuditEvent are enqueued in the same transaction as the
// change they announce.
type Outbox interface {
	// Enqueue adds posts outside of a ticket change.
	Enqueue(ctx context.Context, posts ...Post) error
	// Channels lists the channels with pending posts.
	Channels(ctx context.Context) ([]string, error)
	// Pending returns up to n posts of a channel, oldest first.
	Pending(ctx context.Context, channel string, n int) ([]Post, error)
	// Done removes a delivered post. For a card it records where the card
	// was posted on the ticket, in the same transaction.
	Done(ctx context.Context, p Post, ref SlackRef) error
	// Retry records a failed attempt and keeps the post.
	Retry(ctx context.Context, p Post) error
}

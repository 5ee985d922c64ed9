package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/triage"
)

// Audit and post actions of follow-ups.
const (
	// ActionFollowUp marks the PostCustomerReply that carries a follow-up:
	// the poster renders it with the rating buttons (FollowUpMessage).
	ActionFollowUp = "follow_up"
	// AuditFollowedUp is the audit action of a follow-up sent.
	AuditFollowedUp = "followed_up"
	// AuditClosedNoAnswer is the audit action of a ticket closed because
	// its follow-up got no rating in time.
	AuditClosedNoAnswer = "closed_no_answer"
	// ActionRatePrefix starts the action IDs of the rating buttons,
	// "rate_1" to "rate_5"; their value is the ticket ID.
	ActionRatePrefix = "rate_"
)

// errNothingToDo stops a store update that finds the job already done or no
// longer wanted: nothing is written.
var errNothingToDo = errors.New("nothing to do")

// pendingFollowUp reports whether t waits for its follow-up.
func pendingFollowUp(t triage.Ticket) bool {
	return t.State == triage.StateResolved && !t.FollowUpDue.IsZero() && t.FollowUpSentAt.IsZero()
}

// awaitingRating reports whether t's follow-up went out and no rating came.
func awaitingRating(t triage.Ticket) bool {
	return t.State == triage.StateFollowedUp && t.Rating == 0 && !t.FollowUpSentAt.IsZero()
}

// scanFollowUps reads the store's index of pending follow-ups and
// unanswered ones: those due are handled now, those due before the next scan
// get a one-time job at their due time, and later ones are left to a later
// scan. Errors of one ticket do not stop the others.
func (s *Scheduler) scanFollowUps(ctx context.Context) error {
	now := s.clock.Now()
	horizon := now.Add(s.cfg.FollowUpPoll)
	tickets, err := s.store.DueFollowUps(ctx, horizon)
	if err != nil {
		return fmt.Errorf("scan follow-ups: %w", err)
	}
	var errs []error
	for _, t := range tickets {
		id := t.ID
		var (
			key string
			due time.Time
			fn  func(context.Context) error
		)
		switch {
		case s.cfg.FollowUpEnabled && pendingFollowUp(t):
			key, due = "follow_up:"+id, t.FollowUpDue
			fn = func(ctx context.Context) error { return s.sendFollowUp(ctx, id) }
		case awaitingRating(t):
			key, due = "close:"+id, t.FollowUpSentAt.Add(s.cfg.NoAnswerAfter)
			fn = func(ctx context.Context) error { return s.closeUnanswered(ctx, id) }
		default:
			continue
		}
		if due.After(horizon) {
			continue
		}
		// What is due is done here, whether or not its job is about to
		// run (both are idempotent): a scan that has finished leaves
		// nothing due undone.
		if !due.After(now) {
			errs = append(errs, fn(ctx))
			continue
		}
		errs = append(errs, s.schedule(key, due, fn))
	}
	s.mu.Lock()
	s.lastFollowUpScan = now
	s.mu.Unlock()
	return errors.Join(errs...)
}

// sendFollowUp sends a due follow-up through Triager.FollowedUp, which
// marks the ticket followed_up and enqueues the check-in to the customer by
// the ticket's own channel, a note in the card's thread and the card's
// update, in one store transaction. A follow-up already sent, not yet due,
// or no longer wanted (the ticket was reopened) is left alone.
func (s *Scheduler) sendFollowUp(ctx context.Context, id string) error {
	t, err := s.store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("follow-up of ticket %s: %w", id, err)
	}
	if !pendingFollowUp(t) {
		return nil
	}
	reply, route := s.followUpReply(t, s.clock.Now())
	var posts []triage.Post
	if reply != nil {
		posts = append(posts, *reply)
	}
	_, err = s.triager().FollowedUp(ctx, id, route, posts...)
	switch {
	case errors.Is(err, triage.ErrDuplicate), errors.Is(err, triage.ErrNotDue), errors.Is(err, triage.ErrInvalidTransition):
		return nil
	case err != nil:
		return fmt.Errorf("follow-up of ticket %s: %w", id, err)
	}
	s.followUps.Add(1)
	s.log.Info("follow-up sent", "ticket", id)
	s.kick()
	return nil
}

// triager is a Triager over the scheduler's store and clock, all that
// FollowedUp uses.
func (s *Scheduler) triager() *triage.Triager {
	return &triage.Triager{Store: s.store, Clock: s.clock}
}

// followUpReply is the check-in post for t, by its own channel
// (triage.ReplyRoute), and a note of the way it went for the card's
// thread. Slack tickets get the template with rating buttons in the
// customer's thread; email and webhook tickets the template with the five
// signed links; tickets with no way back (manual, imported, a webhook
// ticket without reply URL) none, and the note asks the agent to check in.
func (s *Scheduler) followUpReply(t triage.Ticket, now time.Time) (*triage.Post, string) {
	channel, thread, ok := triage.ReplyRoute(t, s.cfg.Senders)
	if !ok {
		return nil, "no way back to the customer: please check in with them yourself"
	}
	p := triage.Post{Kind: triage.PostCustomerReply, TicketID: t.ID, Channel: channel, ThreadTS: thread,
		Action: ActionFollowUp, Actor: triage.ActorSystem, Text: s.cfg.FollowUpTemplate, CreatedAt: now}
	if t.Source == triage.SourceSlack {
		return &p, "check-in with a 1–5 rating sent in the customer's Slack thread"
	}
	how := "by email"
	if t.Source == triage.SourceWebhook {
		how = "through the webhook"
	}
	if s.cfg.RatingLinks == nil {
		return &p, "check-in sent " + how + " (no rating links configured)"
	}
	p.Text = followUpWithLinks(s.cfg.FollowUpTemplate, t.ID, s.cfg.RatingLinks)
	return &p, "check-in with 1–5 rating links sent " + how
}

// ratingLabels name the ends of the scale in links and buttons.
var ratingLabels = map[int]string{1: "poor", 5: "excellent"}

// followUpWithLinks appends the five rating links to the template, one a
// line, for mail and webhook receivers that show plain text.
func followUpWithLinks(template, ticketID string, link func(string, int) string) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(template, "\n"))
	b.WriteString("\n\nRate us with one click:\n")
	for n := 1; n <= 5; n++ {
		b.WriteString(strconv.Itoa(n))
		if l := ratingLabels[n]; l != "" {
			b.WriteString(" (" + l + ")")
		}
		b.WriteString(": " + link(ticketID, n) + "\n")
	}
	return b.String()
}

// closeUnanswered closes a followed-up ticket whose rating did not come
// within NoAnswerAfter.
func (s *Scheduler) closeUnanswered(ctx context.Context, id string) error {
	now := s.clock.Now()
	_, err := s.store.Update(ctx, id, func(t *triage.Ticket) (triage.AuditEvent, error) {
		if !awaitingRating(*t) || t.FollowUpSentAt.Add(s.cfg.NoAnswerAfter).After(now) {
			return triage.AuditEvent{}, errNothingToDo
		}
		from := t.State
		if err := t.Transition(triage.StateClosed); err != nil {
			return triage.AuditEvent{}, err
		}
		detail := "no rating within " + dayCount(s.cfg.NoAnswerAfter) + " of the follow-up"
		return triage.AuditEvent{TicketID: t.ID, At: now, Actor: triage.ActorSystem, Action: AuditClosedNoAnswer,
			From: from, To: t.State, Detail: detail, Posts: []triage.Post{
				{Kind: triage.PostCardUpdate, TicketID: t.ID, Action: AuditClosedNoAnswer, Actor: triage.ActorSystem, CreatedAt: now},
				{Kind: triage.PostThread, TicketID: t.ID, Action: AuditClosedNoAnswer, Actor: triage.ActorSystem,
					Detail: detail, CreatedAt: now},
			}}, nil
	})
	switch {
	case errors.Is(err, errNothingToDo):
		return nil
	case err != nil:
		return fmt.Errorf("close unanswered ticket %s: %w", id, err)
	}
	s.closed.Add(1)
	s.log.Info("closed without a rating", "ticket", id)
	s.kick()
	return nil
}

// dayCount renders a whole number of days ("7 days"), or the duration.
func dayCount(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		if n := int(d / (24 * time.Hour)); n != 1 {
			return strconv.Itoa(n) + " days"
		}
		return "1 day"
	}
	return d.String()
}

// FollowUpMessage renders the follow-up post of a Slack ticket: the
// operator's template, escaped, and five rating buttons whose value is the
// ticket ID.
func FollowUpMessage(p triage.Post) Message {
	text := Truncate(Escape(p.Text), MaxTextObject)
	buttons := make([]slack.BlockElement, 0, 5)
	for n := 1; n <= 5; n++ {
		label := strconv.Itoa(n)
		if l := ratingLabels[n]; l != "" {
			label += " · " + l
		}
		buttons = append(buttons, button(ActionRatePrefix+strconv.Itoa(n), label, p.TicketID, slack.StyleDefault))
	}
	return Message{Text: Truncate(Escape(p.Text), MaxMessageText), Blocks: []slack.Block{
		section(text),
		slack.NewActionBlock("rating", buttons...),
	}}
}

// ratedMessage replaces a follow-up's buttons once it is rated. text is
// the message's own text as Slack returns it, already escaped when posted.
func ratedMessage(text string, rating int) Message {
	note := fmt.Sprintf("⭐ Thank you! You rated us %d/5.", rating)
	return Message{Text: Truncate(text, MaxMessageText), Blocks: []slack.Block{
		section(Truncate(text, MaxTextObject)),
		slack.NewContextBlock("", mrkdwn(note)),
	}}
}

// ratingOf reads the rating of a rating button's action ID.
func ratingOf(actionID string) (int, bool) {
	rest, ok := strings.CutPrefix(actionID, ActionRatePrefix)
	if !ok || len(rest) != 1 || rest[0] < '1' || rest[0] > '5' {
		return 0, false
	}
	return int(rest[0] - '0'), true
}

// rate records a rating button's click. Only the ticket's customer may
// rate; whether the ticket takes the rating (once, after its follow-up) is
// Triager.Rate's rule, and a rating of 1–2 reopens the ticket and mentions
// its assignee in the card's thread. The follow-up message then shows the
// rating instead of the buttons.
func (a *App) rate(ctx context.Context, cb slack.InteractionCallback, id string, rating int) {
	user, channel := cb.User.ID, cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	t, err := a.tr.Store.Get(ctx, id)
	if err != nil {
		a.tell(ctx, channel, user, a.failure(ctx, id, "rated", err))
		return
	}
	cust, err := a.customers.Customer(ctx, t.CustomerID)
	if err != nil || !t.IsSlackAuthor(cust, user) {
		a.tell(ctx, channel, user, "Only the customer who asked for help can rate this follow-up.")
		return
	}
	_, err = a.tr.Rate(ctx, id, rating)
	switch {
	case errors.Is(err, triage.ErrAlreadyRated):
		a.tell(ctx, channel, user, "Your rating was already recorded. Thank you!")
		return
	case errors.Is(err, triage.ErrInvalidTransition):
		a.tell(ctx, channel, user, "This request is no longer waiting for a rating. Thank you all the same.")
		return
	case err != nil:
		a.tell(ctx, channel, user, a.failure(ctx, id, "rated", err))
		return
	}
	a.kick()
	ts := cb.Message.Timestamp
	if ts == "" {
		ts = cb.Container.MessageTs
	}
	if channel == "" || ts == "" {
		return
	}
	msg := ratedMessage(cb.Message.Text, rating)
	if _, _, _, err := a.api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText(msg.Text, false),
		slack.MsgOptionBlocks(msg.Blocks...), slack.MsgOptionParse(false)); err != nil {
		a.log.Warn("bot: could not show the rating on the follow-up", "ticket", id, "err", err)
	}
}

package triagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/casebot/casebot/triage"
)

// ActionCardPosted is the audit action Done records when a ticket's card has
// been posted, as the bbolt store does.
const ActionCardPosted = "card_posted"

// ErrNoChannel is returned, as the bbolt store returns its own, when a post
// names no channel and its ticket has no routed channel to fill in.
var ErrNoChannel = errors.New("post has no channel and its ticket has no routed channel")

// enqueue adds posts to the outbox with the bbolt store's rules, all or
// none: IDs "P1", "P2", … in order; an empty TicketID becomes cur's, a zero
// CreatedAt now, and an empty Channel the ticket's routed channel. A post
// with no kind, or with nowhere to go, is an error. cur is the ticket being
// changed, if any. The caller holds s.mu.
func (s *Tickets) enqueue(cur *triage.Ticket, posts []triage.Post, now time.Time) error {
	out := make([]triage.Post, len(posts))
	for i, p := range posts {
		if p.Kind == "" {
			return fmt.Errorf("post %d: no kind", i)
		}
		if p.TicketID == "" && cur != nil {
			p.TicketID = cur.ID
		}
		if p.CreatedAt.IsZero() {
			p.CreatedAt = now
		}
		if p.Channel == "" {
			switch {
			case cur != nil && p.TicketID == cur.ID:
				p.Channel = cur.Route.Channel
			case p.TicketID != "":
				e, ok := s.tickets[p.TicketID]
				if !ok {
					return fmt.Errorf("post %d: ticket %s: %w", i, p.TicketID, triage.ErrNotFound)
				}
				p.Channel = e.ticket.Route.Channel
			}
			if p.Channel == "" {
				return fmt.Errorf("post %d (%s for ticket %q): %w", i, p.Kind, p.TicketID, ErrNoChannel)
			}
		}
		out[i] = clonePost(p)
	}
	for _, p := range out {
		s.postSeq++
		p.ID = fmt.Sprintf("P%d", s.postSeq)
		s.outbox = append(s.outbox, p)
	}
	return nil
}

// Enqueue implements triage.Outbox for posts that announce no ticket change.
func (s *Tickets) Enqueue(ctx context.Context, posts ...triage.Post) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enqueue(nil, posts, now); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return nil
}

// Channels implements triage.Outbox: the channels with pending posts,
// sorted.
func (s *Tickets) Channels(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("outbox channels: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.outbox {
		if !slices.Contains(out, e.Channel) {
			out = append(out, e.Channel)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Pending implements triage.Outbox: up to n posts of channel, oldest first.
func (s *Tickets) Pending(ctx context.Context, channel string, n int) ([]triage.Post, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("outbox pending: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []triage.Post
	for _, e := range s.outbox {
		if len(out) == n {
			break
		}
		if e.Channel == channel {
			out = append(out, clonePost(e))
		}
	}
	return out, nil
}

// Done implements triage.Outbox: it removes p and, for a card, records ref
// on p's ticket with a card_posted audit event. A post no longer pending is
// ignored, so a drainer may call Done twice.
func (s *Tickets) Done(ctx context.Context, p triage.Post, ref triage.SlackRef) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("post %s done: %w", p.ID, err)
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	i, err := s.postIndex(p.ID)
	if err != nil {
		return nil
	}
	// The pending record, not the caller's copy, says what the post is.
	stored := s.outbox[i]
	if stored.Kind == triage.PostCard {
		if ref.Channel == "" || ref.TS == "" {
			return fmt.Errorf("post %s done: card of ticket %s: incomplete Slack reference %+v", p.ID, stored.TicketID, ref)
		}
		if e, ok := s.tickets[stored.TicketID]; ok {
			e.ticket.Slack = ref
			e.audit = append(e.audit, triage.AuditEvent{TicketID: stored.TicketID, At: now, Actor: triage.ActorSystem,
				Action: ActionCardPosted, From: e.ticket.State, To: e.ticket.State,
				Detail: fmt.Sprintf("channel %s ts %s", ref.Channel, ref.TS)})
		}
	}
	s.outbox = slices.Delete(s.outbox, i, i+1)
	return nil
}

// Retry implements triage.Outbox: it counts a failed attempt and keeps p in
// its place.
func (s *Tickets) Retry(ctx context.Context, p triage.Post) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("outbox retry: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, err := s.postIndex(p.ID)
	if err != nil {
		return err
	}
	s.outbox[i].Attempts++
	return nil
}

func (s *Tickets) postIndex(id string) (int, error) {
	i := slices.IndexFunc(s.outbox, func(e triage.Post) bool { return e.ID == id })
	if i < 0 {
		return 0, fmt.Errorf("outbox: post %q: %w", id, triage.ErrNotFound)
	}
	return i, nil
}

// Posts returns every pending post of every channel in enqueue order.
func (s *Tickets) Posts() []triage.Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]triage.Post, len(s.outbox))
	for i, e := range s.outbox {
		out[i] = clonePost(e)
	}
	return out
}

func clonePost(p triage.Post) triage.Post {
	p.Mentions = slices.Clone(p.Mentions)
	return p
}

// Compile-time checks that the fakes implement the ports.
var (
	_ triage.Tickets    = (*Tickets)(nil)
	_ triage.Outbox     = (*Tickets)(nil)
	_ triage.Classifier = (*Classifier)(nil)
	_ triage.Drafter    = (*Drafter)(nil)
	_ triage.Clock      = (*Clock)(nil)
)

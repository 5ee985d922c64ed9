package triagetest

import (
	"context"
	"fmt"
	"slices"

	"github.com/casebot/casebot/triage"
)

// enqueue adds posts about t to the outbox: IDs "P1", "P2", … in order, an
// empty Channel filled with t's routed channel. A post with no channel about
// a ticket not yet routed stays pending under the empty channel, where a test
// can see it. The caller holds s.mu.
func (s *Tickets) enqueue(t triage.Ticket, posts []triage.Post) {
	for _, p := range posts {
		if p.Channel == "" {
			p.Channel = t.Route.Channel
		}
		s.postSeq++
		p.ID = fmt.Sprintf("P%d", s.postSeq)
		s.outbox = append(s.outbox, clonePost(p))
	}
}

// Enqueue implements triage.Outbox. A post naming a stored ticket but no
// channel goes to the ticket's routed channel.
func (s *Tickets) Enqueue(ctx context.Context, posts ...triage.Post) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range posts {
		var t triage.Ticket
		if e, ok := s.tickets[p.TicketID]; ok {
			t = e.ticket
		}
		s.enqueue(t, []triage.Post{p})
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
// on p's ticket. An unknown post is an error wrapping triage.ErrNotFound.
func (s *Tickets) Done(ctx context.Context, p triage.Post, ref triage.SlackRef) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("outbox done: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, err := s.postIndex(p.ID)
	if err != nil {
		return err
	}
	if p.Kind == triage.PostCard {
		e, ok := s.tickets[p.TicketID]
		if !ok {
			return fmt.Errorf("outbox done: card of ticket %s: %w", p.TicketID, triage.ErrNotFound)
		}
		e.ticket.Slack = ref
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

package triagetest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/casebot/casebot/triage"
)

// DueFollowUps returns, as the bbolt store's due index does, the resolved
// tickets whose follow-up is due before before and the followed-up tickets
// sent before before still waiting for a rating, whatever their received
// time, ordered by that due or sent time.
func (s *Tickets) DueFollowUps(ctx context.Context, before time.Time) ([]triage.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("due follow-ups: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type due struct {
		at  time.Time
		seq int
		t   triage.Ticket
	}
	var ds []due
	for _, e := range s.tickets {
		t := e.ticket
		switch {
		case t.State == triage.StateResolved && !t.FollowUpDue.IsZero() && t.FollowUpSentAt.IsZero():
			ds = append(ds, due{t.FollowUpDue, e.seq, t})
		case t.State == triage.StateFollowedUp && t.Rating == 0 && !t.FollowUpSentAt.IsZero():
			ds = append(ds, due{t.FollowUpSentAt, e.seq, t})
		}
	}
	ds = slices.DeleteFunc(ds, func(d due) bool { return !d.at.Before(before) })
	slices.SortFunc(ds, func(a, b due) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	out := make([]triage.Ticket, len(ds))
	for i, d := range ds {
		out[i] = cloneTicket(d.t)
	}
	return out, nil
}

package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// TicketByExternal returns the ticket stored from src's message externalID
// (an email's Message-ID, a Slack channel/ts, a webhook's external_id),
// read from the index Create keeps for deduplication, or an error wrapping
// triage.ErrNotFound. Email threading looks tickets up this way.
func (db *DB) TicketByExternal(ctx context.Context, src triage.Source, externalID string) (triage.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return triage.Ticket{}, fmt.Errorf("ticket by %s message %q: %w", src, clip(externalID), err)
	}
	var t triage.Ticket
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		id := b.external.Get(externalKey(src, externalID))
		if id == nil {
			return triage.ErrNotFound
		}
		var err error
		t, err = getTicket(b, string(id))
		return err
	})
	if err != nil {
		return triage.Ticket{}, fmt.Errorf("ticket by %s message %q: %w", src, clip(externalID), err)
	}
	return t, nil
}

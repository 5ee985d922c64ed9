package store

// The due index holds the scheduler's pending work, keyed by when it falls
// due, so a restart finds every follow-up however long after its arrival a
// ticket was resolved (SPEC section 6):
//
//	due           ts + kind + ticket ID → ticket ID
//	due_ticket    ticket ID → that ticket's key in due
//
// kind is dueFollowUp (ts is FollowUpDue: a resolved ticket waiting for its
// follow-up) or dueRating (ts is FollowUpSentAt: a followed-up ticket waiting
// for its rating, closed unanswered after the scheduler's wait). A ticket
// has at most one entry. putTicket derives it from the ticket in the
// transaction that writes the ticket, removing the old entry through
// due_ticket, so every path that resolves, reopens, follows up, rates or
// closes keeps the index right without knowing of it.

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

var (
	bucketDue       = []byte("due")
	bucketDueTicket = []byte("due_ticket")
)

// Kinds of due index entries.
const (
	dueFollowUp byte = 'f'
	dueRating   byte = 'r'
)

// dueSchemaVersion is the first schema version with the due index; a file
// written before it gets the index built once on open.
const dueSchemaVersion = 2

// dueKey is t's due index key, or nil when t waits for nothing.
func dueKey(t triage.Ticket) []byte {
	var (
		at   time.Time
		kind byte
	)
	switch {
	case t.State == triage.StateResolved && !t.FollowUpDue.IsZero() && t.FollowUpSentAt.IsZero():
		at, kind = t.FollowUpDue, dueFollowUp
	case t.State == triage.StateFollowedUp && t.Rating == 0 && !t.FollowUpSentAt.IsZero():
		at, kind = t.FollowUpSentAt, dueRating
	default:
		return nil
	}
	ts := timeKey(at)
	return join(ts[:], []byte{kind}, []byte(t.ID))
}

// putDue replaces t's due index entry with the one its state calls for.
func putDue(b buckets, t triage.Ticket) error {
	id := []byte(t.ID)
	key := dueKey(t)
	old := b.dueTicket.Get(id)
	if old != nil && bytes.Equal(old, key) {
		return nil
	}
	if old != nil {
		if err := b.due.Delete(old); err != nil {
			return fmt.Errorf("due index of ticket %s: %w", t.ID, err)
		}
	}
	if key == nil {
		if err := b.dueTicket.Delete(id); err != nil {
			return fmt.Errorf("due index of ticket %s: %w", t.ID, err)
		}
		return nil
	}
	if err := b.due.Put(key, id); err != nil {
		return fmt.Errorf("due index of ticket %s: %w", t.ID, err)
	}
	if err := b.dueTicket.Put(id, key); err != nil {
		return fmt.Errorf("due index of ticket %s: %w", t.ID, err)
	}
	return nil
}

// deleteDue removes a deleted ticket's due index entry.
func deleteDue(b buckets, ticketID string) error {
	id := []byte(ticketID)
	old := b.dueTicket.Get(id)
	if old == nil {
		return nil
	}
	if err := b.due.Delete(old); err != nil {
		return fmt.Errorf("due index: %w", err)
	}
	if err := b.dueTicket.Delete(id); err != nil {
		return fmt.Errorf("due index: %w", err)
	}
	return nil
}

// DueFollowUps returns, oldest entry first, the resolved tickets whose
// follow-up is due before before and the followed-up tickets, sent before
// before, still waiting for a rating. It reads only the due index, whatever
// the tickets' received times.
func (db *DB) DueFollowUps(ctx context.Context, before time.Time) ([]triage.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("due follow-ups: %w", err)
	}
	hi := timeKey(before)
	var out []triage.Ticket
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		c := b.due.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) < len(hi) {
				return fmt.Errorf("due index key %q: %w", k, ErrCorrupt)
			}
			if bytes.Compare(k[:len(hi)], hi[:]) >= 0 {
				break
			}
			t, err := getTicket(b, string(v))
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("due follow-ups: %w", err)
	}
	return out, nil
}

// initDueIndex creates the due index and, for a file older than
// dueSchemaVersion, fills it from the stored tickets: one read of every
// ticket, once, in Open's transaction.
func initDueIndex(tx *bolt.Tx, version int) error {
	for _, name := range [][]byte{bucketDue, bucketDueTicket} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if version >= dueSchemaVersion {
		return nil
	}
	b := bucketsOf(tx)
	return b.tickets.ForEach(func(k, v []byte) error {
		var t triage.Ticket
		if err := decodeRecord(v, &t); err != nil {
			return fmt.Errorf("index ticket %s: %w", k, err)
		}
		return putDue(b, t)
	})
}

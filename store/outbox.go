package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// ActionCardPosted is the audit action recorded when a ticket's card has
// been posted and its Slack reference stored on the ticket.
const ActionCardPosted = "card_posted"

// ActionCardDropped is the audit action recorded when the poster gave up on
// a card (Done with an empty Slack reference).
const ActionCardDropped = "card_dropped"

// ErrNoChannel is returned when a post names no channel and its ticket has
// no routed channel to fill in: a post with nowhere to go is a bug in the
// caller, and queueing it would block nothing yet never drain.
var ErrNoChannel = errors.New("post has no channel and its ticket has no routed channel")

// Compile-time check that DB is the outbox the domain expects.
var _ triage.Outbox = (*DB)(nil)

// postIDFormat pads post IDs to the width of the largest uint64, so that
// string order is sequence order for every ID the store can hand out.
const postIDFormat = "%020d"

// Enqueue adds posts that announce no ticket change (a pattern alert, a
// follow-up), in one transaction and in the order given. Each post gets its
// ID from the store; an empty Channel becomes its ticket's routed channel and
// a zero CreatedAt the clock's now.
func (db *DB) Enqueue(ctx context.Context, posts ...triage.Post) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("enqueue posts: %w", err)
	}
	if len(posts) == 0 {
		return nil
	}
	now := db.clock.Now()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return enqueueTx(bucketsOf(tx), posts, nil, now)
	})
	if err != nil {
		return fmt.Errorf("enqueue posts: %w", err)
	}
	return nil
}

// enqueueTx writes posts to the outbox under one global sequence, so each
// channel's posts drain in the order they were written. cur is the ticket
// being changed in this transaction, if any: posts without a TicketID belong
// to it and its in-hand state fills in their channel without a re-read.
func enqueueTx(b buckets, posts []triage.Post, cur *triage.Ticket, at time.Time) error {
	for i, p := range posts {
		if err := enqueueOne(b, p, cur, at); err != nil {
			return fmt.Errorf("post %d (%s for ticket %q): %w", i, p.Kind, p.TicketID, err)
		}
	}
	return nil
}

func enqueueOne(b buckets, p triage.Post, cur *triage.Ticket, at time.Time) error {
	if p.Kind == "" {
		return errors.New("post has no kind")
	}
	if p.TicketID == "" && cur != nil {
		p.TicketID = cur.ID
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = at
	}
	if p.Channel == "" {
		switch {
		case cur != nil && p.TicketID == cur.ID:
			p.Channel = cur.Route.Channel
		case p.TicketID != "":
			t, err := getTicket(b, p.TicketID)
			if err != nil {
				return err
			}
			p.Channel = t.Route.Channel
		}
		if p.Channel == "" {
			return ErrNoChannel
		}
	}
	seq, err := b.outbox.NextSequence()
	if err != nil {
		return fmt.Errorf("outbox sequence: %w", err)
	}
	p.ID = fmt.Sprintf(postIDFormat, seq)
	ch, err := b.outbox.CreateBucketIfNotExists([]byte(p.Channel))
	if err != nil {
		return fmt.Errorf("outbox channel %q: %w", p.Channel, err)
	}
	return putPost(ch, seqKey(seq), p)
}

// Channels lists, in byte order, the channels that have pending posts.
// Drained channels keep their (empty) bucket, since the same few channels
// are posted to again and again; they are skipped here.
func (db *DB) Channels(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("outbox channels: %w", err)
	}
	var out []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		outbox := tx.Bucket(bucketOutbox)
		return outbox.ForEachBucket(func(name []byte) error {
			if k, _ := outbox.Bucket(name).Cursor().First(); k != nil {
				out = append(out, string(name))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("outbox channels: %w", err)
	}
	return out, nil
}

// Pending returns up to n posts of channel, oldest first. The posts stay in
// the outbox until Done.
func (db *DB) Pending(ctx context.Context, channel string, n int) ([]triage.Post, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pending posts of %q: %w", channel, err)
	}
	if n <= 0 {
		return nil, fmt.Errorf("pending posts of %q: limit %d is not positive", channel, n)
	}
	var out []triage.Post
	err := db.bolt.View(func(tx *bolt.Tx) error {
		ch := tx.Bucket(bucketOutbox).Bucket([]byte(channel))
		if ch == nil {
			return nil
		}
		c := ch.Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			var p triage.Post
			if err := decodeRecord(v, &p); err != nil {
				return fmt.Errorf("post %x: %w", k, err)
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending posts of %q: %w", channel, err)
	}
	return out, nil
}

// Done removes a delivered post. For a card it also stores ref as the
// ticket's Slack reference, with a card_posted audit event, in the same
// transaction, so a card is never both delivered and still pending.
//
// Done on a post that is no longer in the outbox does nothing and returns
// nil: a drainer that crashed after the commit but before noting it may call
// Done twice. A card whose ticket has since been erased is removed without a
// reference to record.
func (db *DB) Done(ctx context.Context, p triage.Post, ref triage.SlackRef) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("post %s done: %w", p.ID, err)
	}
	key, err := postKey(p)
	if err != nil {
		return fmt.Errorf("post %s done: %w", p.ID, err)
	}
	now := db.clock.Now()
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		ch := b.outbox.Bucket([]byte(p.Channel))
		if ch == nil {
			return nil
		}
		raw := ch.Get(key)
		if raw == nil {
			return nil
		}
		// The stored record, not the caller's copy, says what the post is.
		var stored triage.Post
		if err := decodeRecord(raw, &stored); err != nil {
			return err
		}
		if err := ch.Delete(key); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if stored.Kind != triage.PostCard {
			return nil
		}
		return recordCard(b, stored.TicketID, ref, now)
	})
	if err != nil {
		return fmt.Errorf("post %s done: %w", p.ID, err)
	}
	return nil
}

// recordCard stores where a ticket's card was posted, audited as a change
// that keeps the ticket's state (SPEC invariant 5).
func recordCard(b buckets, ticketID string, ref triage.SlackRef, now time.Time) error {
	if (ref.Channel == "") != (ref.TS == "") {
		// Half a reference could never be used to update the card in place.
		return fmt.Errorf("card of ticket %s: incomplete Slack reference %+v", ticketID, ref)
	}
	t, err := getTicket(b, ticketID)
	if errors.Is(err, triage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if ref.Channel == "" {
		// The poster gave up on a card Slack will never take; the audit
		// trail says so, and the channel is no longer blocked behind it.
		return putEvent(b, triage.AuditEvent{TicketID: t.ID, At: now, Actor: triage.ActorSystem,
			Action: ActionCardDropped, From: t.State, To: t.State, Detail: "Slack refused the card"}, &t)
	}
	t.Slack = ref
	if err := putTicket(b, t); err != nil {
		return err
	}
	return putEvent(b, triage.AuditEvent{
		TicketID: t.ID,
		At:       now,
		Actor:    triage.ActorSystem,
		Action:   ActionCardPosted,
		From:     t.State,
		To:       t.State,
		Detail:   fmt.Sprintf("channel %s ts %s", ref.Channel, ref.TS),
	}, &t)
}

// Retry records a failed delivery attempt; the post keeps its place at the
// head of its channel. The error wraps triage.ErrNotFound when the post is
// no longer in the outbox.
func (db *DB) Retry(ctx context.Context, p triage.Post) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("retry post %s: %w", p.ID, err)
	}
	key, err := postKey(p)
	if err != nil {
		return fmt.Errorf("retry post %s: %w", p.ID, err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		ch := tx.Bucket(bucketOutbox).Bucket([]byte(p.Channel))
		var raw []byte
		if ch != nil {
			raw = ch.Get(key)
		}
		if raw == nil {
			return fmt.Errorf("channel %q: %w", p.Channel, triage.ErrNotFound)
		}
		var stored triage.Post
		if err := decodeRecord(raw, &stored); err != nil {
			return err
		}
		stored.Attempts++
		return putPost(ch, key, stored)
	})
	if err != nil {
		return fmt.Errorf("retry post %s: %w", p.ID, err)
	}
	return nil
}

func putPost(ch *bolt.Bucket, key []byte, p triage.Post) error {
	raw, err := encodeRecord(p)
	if err != nil {
		return fmt.Errorf("encode post: %w", err)
	}
	if err := ch.Put(key, raw); err != nil {
		return fmt.Errorf("put post: %w", err)
	}
	return nil
}

// postKey returns the key of a post handed out by Pending.
func postKey(p triage.Post) ([]byte, error) {
	if p.Channel == "" {
		return nil, errors.New("post has no channel")
	}
	seq, err := strconv.ParseUint(p.ID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("post ID %q is not an outbox ID", clip(p.ID))
	}
	return seqKey(seq), nil
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

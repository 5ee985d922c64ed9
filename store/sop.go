package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// sopIDFormat names SOP updates like tickets: sorted by creation, so the sop
// bucket reads back oldest first.
const sopIDFormat = "SOP-%06d"

// Compile-time checks that DB implements the learning loop's ports.
var (
	_ triage.SOPs   = (*DB)(nil)
	_ triage.Alerts = (*DB)(nil)
)

// ProposeSOP stores u as a proposal with a new ID, version 0 and state
// proposed; a zero At becomes the clock's now. Fields the store owns (ID,
// Version, State, DecidedBy, DecidedAt) are ignored on input.
func (db *DB) ProposeSOP(ctx context.Context, u triage.SOPUpdate) (triage.SOPUpdate, error) {
	if err := ctx.Err(); err != nil {
		return triage.SOPUpdate{}, fmt.Errorf("propose SOP update: %w", err)
	}
	if err := u.Validate(); err != nil {
		return triage.SOPUpdate{}, fmt.Errorf("propose SOP update: %w", err)
	}
	if u.At.IsZero() {
		u.At = db.clock.Now()
	}
	u.Version, u.State, u.DecidedBy, u.DecidedAt = 0, triage.SOPProposed, "", time.Time{}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSOP)
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("next SOP ID: %w", err)
		}
		u.ID = fmt.Sprintf(sopIDFormat, seq)
		return putSOP(b, u)
	})
	if err != nil {
		return triage.SOPUpdate{}, fmt.Errorf("propose SOP update for %s: %w", u.RootCause, err)
	}
	return u, nil
}

// AcceptSOP accepts a proposal and gives it the next version of its root
// cause: one more than the highest accepted version of that root cause, in
// the same transaction, so two acceptances never share a version.
func (db *DB) AcceptSOP(ctx context.Context, id, by string) (triage.SOPUpdate, error) {
	return db.decideSOP(ctx, id, by, triage.SOPAccepted)
}

// RejectSOP rejects a proposal.
func (db *DB) RejectSOP(ctx context.Context, id, by string) (triage.SOPUpdate, error) {
	return db.decideSOP(ctx, id, by, triage.SOPRejected)
}

func (db *DB) decideSOP(ctx context.Context, id, by string, to triage.SOPState) (triage.SOPUpdate, error) {
	if err := ctx.Err(); err != nil {
		return triage.SOPUpdate{}, fmt.Errorf("%s SOP update %s: %w", to, id, err)
	}
	if by == "" {
		return triage.SOPUpdate{}, fmt.Errorf("%s SOP update %s: no deciding user", to, id)
	}
	now := db.clock.Now()
	var out triage.SOPUpdate
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSOP)
		u, err := getSOP(b, id)
		if err != nil {
			return err
		}
		switch u.State {
		case to:
			out = u
			return nil
		case triage.SOPAccepted, triage.SOPRejected:
			return fmt.Errorf("it was %s by %s: %w", u.State, u.DecidedBy, triage.ErrSOPDecided)
		}
		if to == triage.SOPAccepted {
			v, err := latestVersion(b, u.RootCause)
			if err != nil {
				return err
			}
			u.Version = v + 1
		}
		u.State, u.DecidedBy, u.DecidedAt = to, by, now
		out = u
		return putSOP(b, u)
	})
	if err != nil {
		return triage.SOPUpdate{}, fmt.Errorf("%s SOP update %s: %w", to, id, err)
	}
	return out, nil
}

// latestVersion is the highest accepted version of a root cause, 0 for none.
// SOP updates are a handful a week, so a scan is cheaper than an index to
// keep.
func latestVersion(b *bolt.Bucket, rootCause string) (int, error) {
	v := 0
	err := b.ForEach(func(k, raw []byte) error {
		var u triage.SOPUpdate
		if err := decodeRecord(raw, &u); err != nil {
			return fmt.Errorf("SOP update %s: %w", k, err)
		}
		if u.State == triage.SOPAccepted && u.RootCause == rootCause {
			v = max(v, u.Version)
		}
		return nil
	})
	return v, err
}

// SOPs returns every SOP update, oldest first.
func (db *DB) SOPs(ctx context.Context) ([]triage.SOPUpdate, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("SOP updates: %w", err)
	}
	var out []triage.SOPUpdate
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSOP).ForEach(func(k, raw []byte) error {
			var u triage.SOPUpdate
			if err := decodeRecord(raw, &u); err != nil {
				return fmt.Errorf("SOP update %s: %w", k, err)
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("SOP updates: %w", err)
	}
	return out, nil
}

func getSOP(b *bolt.Bucket, id string) (triage.SOPUpdate, error) {
	var u triage.SOPUpdate
	raw := b.Get([]byte(id))
	if raw == nil {
		return u, triage.ErrNotFound
	}
	if err := decodeRecord(raw, &u); err != nil {
		return u, err
	}
	return u, nil
}

func putSOP(b *bolt.Bucket, u triage.SOPUpdate) error {
	raw, err := encodeRecord(u)
	if err != nil {
		return fmt.Errorf("encode SOP update %s: %w", u.ID, err)
	}
	if err := b.Put([]byte(u.ID), raw); err != nil {
		return fmt.Errorf("put SOP update %s: %w", u.ID, err)
	}
	return nil
}

// errNoAlertKey refuses an empty alert key, which would match every call.
var errNoAlertKey = errors.New("empty alert key")

// AlertSent reports whether MarkAlertSent recorded the key.
func (db *DB) AlertSent(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("alert %q: %w", clip(key), err)
	}
	if key == "" {
		return false, errNoAlertKey
	}
	var sent bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		sent = tx.Bucket(bucketAlerts).Get([]byte(key)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("alert %q: %w", clip(key), err)
	}
	return sent, nil
}

// MarkAlertSent records that the alert was sent at at. It is idempotent: a
// key already recorded keeps its first time.
func (db *DB) MarkAlertSent(ctx context.Context, key string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mark alert %q sent: %w", clip(key), err)
	}
	if key == "" {
		return errNoAlertKey
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAlerts)
		if b.Get([]byte(key)) != nil {
			return nil
		}
		return b.Put([]byte(key), []byte(at.UTC().Format(time.RFC3339Nano)))
	})
	if err != nil {
		return fmt.Errorf("mark alert %q sent: %w", clip(key), err)
	}
	return nil
}

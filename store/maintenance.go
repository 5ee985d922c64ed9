package store

// Maintenance of the store (SPEC section 8): hot backup, retention and the
// erasure of one customer's data.
//
// Retention never deletes a ticket that still needs work (open, or waiting
// for its follow-up or rating), however old; erasure deletes whatever the
// customer has. Both delete a ticket with everything it owns: its record,
// its external, time, customer and metrics index entries, its audit events
// and its pending outbox posts, and they keep the ticket counter right. They
// work in bounded batches (maintenanceBatch tickets per transaction) so a
// large purge never holds the writer lock, or builds a commit, for long:
// intake keeps flowing between batches.
//
// Erasures are recorded in one more bucket, created on first use:
//
//	erasures      8-byte big-endian sequence → versioned Erasure
//
// An Erasure holds the erased customer's store-assigned ID, the time and the
// number of tickets erased; nothing the customer wrote or is known by.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// maintenanceBatch bounds how many tickets one purge or erase transaction
// deletes: each costs a handful of deletes and an audit-prefix walk, so a
// batch commits in milliseconds and Creates waiting on the writer lock are
// not held up.
const maintenanceBatch = 500

var bucketErasures = []byte("erasures")

// Backup writes a consistent copy of the whole database to w and returns the
// number of bytes written. It runs in a read transaction, so the bot keeps
// taking tickets meanwhile; the copy is the store as of the transaction's
// start. A cancelled ctx stops the copy at its next write.
func (db *DB) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("backup %s: %w", db.path, err)
	}
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup %s: %w", db.path, err)
	}
	return n, nil
}

// ctxWriter fails writes once its context is done, so a long copy can be
// cancelled.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// BackupFile writes a consistent copy of the database to path with mode
// 0600, replacing any file there only once the copy is complete and synced:
// it writes a temporary file in path's directory, fsyncs it, renames it over
// path and fsyncs the directory. A failed or cancelled backup leaves path as
// it was. Backing up onto the open database file itself is refused.
func (db *DB) BackupFile(ctx context.Context, path string) (int64, error) {
	same, err := sameFile(db.path, path)
	if err != nil {
		return 0, fmt.Errorf("backup to %s: %w", path, err)
	}
	if same {
		return 0, fmt.Errorf("backup to %s: that is the database file itself", path)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("backup to %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file 0600 already; say so explicitly, since the
	// copy holds customer data whatever the umask.
	if err := tmp.Chmod(0o600); err != nil {
		return 0, fmt.Errorf("backup to %s: %w", path, err)
	}
	n, err := db.Backup(ctx, tmp)
	if err != nil {
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("backup to %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("backup to %s: close: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("backup to %s: %w", path, err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return n, fmt.Errorf("backup to %s: %w", path, err)
	}
	return n, nil
}

// sameFile reports whether a and b name the same existing file.
func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return d.Close()
}

// PurgeStats counts what Purge deleted.
type PurgeStats struct {
	// Tickets, AuditEvents and Posts are the deleted tickets, their audit
	// events and their pending outbox posts.
	Tickets, AuditEvents, Posts int
	// Customers are the customers left without tickets, deleted with their
	// identity index entries; Identities counts those entries.
	Customers, Identities int
	// Batches is the number of transactions the tickets were deleted in.
	Batches int
	// Kept counts the tickets received before the cut-off that were kept
	// because they still need work: open ones, and resolved ones whose
	// follow-up or rating is pending.
	Kept int
}

// Purge deletes every ticket received before before, with everything it
// owns, and then every customer the purge left without tickets, with their
// identity index entries (retention_days). A ticket that still needs work
// (keptByRetention) is never deleted, however old: it is counted in Kept.
// It works in batches of bounded size, each its own transaction; a
// cancelled or failed purge keeps the batches already committed, and
// running it again finishes the job.
func (db *DB) Purge(ctx context.Context, before time.Time) (PurgeStats, error) {
	var st PurgeStats
	hi := timeKey(before)
	candidates := map[string]struct{}{}
	var from []byte
	for {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("purge before %s: %w", before.Format(time.RFC3339), err)
		}
		var (
			d   deleted
			old oldBatch
		)
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			b := bucketsOf(tx)
			var err error
			if old, err = oldTickets(b, from, hi[:]); err != nil {
				return err
			}
			d, err = deleteTickets(b, old.ids, candidates)
			return err
		})
		if err != nil {
			return st, fmt.Errorf("purge before %s: %w", before.Format(time.RFC3339), err)
		}
		st.Kept += old.kept
		if d.tickets > 0 {
			st.Tickets += d.tickets
			st.AuditEvents += d.audit
			st.Posts += d.posts
			st.Batches++
		}
		if old.next == nil {
			break
		}
		from = old.next
	}
	if err := db.purgeCustomers(ctx, candidates, &st); err != nil {
		return st, fmt.Errorf("purge before %s: %w", before.Format(time.RFC3339), err)
	}
	return st, nil
}

// oldBatch is one batch of the tickets retention looks at.
type oldBatch struct {
	// ids are the tickets to delete; kept counts those kept.
	ids  []string
	kept int
	// next is the time-index key to go on from, nil at the end of the range.
	next []byte
}

// oldTickets looks at up to maintenanceBatch tickets whose time-index key
// sorts at or after from (the start when nil) and before hi, oldest first,
// and returns those retention may delete.
func oldTickets(b buckets, from, hi []byte) (oldBatch, error) {
	var out oldBatch
	c := b.byTime.Cursor()
	k, v := c.First()
	if from != nil {
		k, v = c.Seek(from)
	}
	for seen := 0; k != nil; k, v = c.Next() {
		if len(k) < len(hi) {
			return out, fmt.Errorf("time index key %q: %w", k, ErrCorrupt)
		}
		if bytes.Compare(k[:len(hi)], hi) >= 0 {
			return out, nil
		}
		if seen == maintenanceBatch {
			out.next = bytes.Clone(k)
			return out, nil
		}
		seen++
		t, err := getTicket(b, string(v))
		if err != nil {
			return out, err
		}
		if keptByRetention(b, t) {
			out.kept++
			continue
		}
		out.ids = append(out.ids, t.ID)
	}
	return out, nil
}

// keptByRetention reports whether t still needs work, and so outlives
// retention_days: it is open, or its follow-up or rating is pending.
func keptByRetention(b buckets, t triage.Ticket) bool {
	return t.State.Open() || b.dueTicket.Get([]byte(t.ID)) != nil
}

// purgeCustomers deletes the candidates that have no tickets left, in
// batches. Their identity keys are found first in one read of the identity
// index: a customer may own keys its record does not show (a second email
// seen with its Slack ID), and walking the whole index once per batch would
// cost a full scan each time. A key claimed after that read belongs to a
// customer who then has a new ticket, and so is not deleted.
func (db *DB) purgeCustomers(ctx context.Context, candidates map[string]struct{}, st *PurgeStats) error {
	if len(candidates) == 0 {
		return nil
	}
	keys := map[string][][]byte{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIdentity).ForEach(func(k, v []byte) error {
			if _, ok := candidates[string(v)]; ok {
				keys[string(v)] = append(keys[string(v)], bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("identity index: %w", err)
	}
	ids := make([]string, 0, len(candidates))
	for id := range candidates {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for batch := range slices.Chunk(ids, maintenanceBatch) {
		if err := ctx.Err(); err != nil {
			return err
		}
		var customers, identities int
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			b := bucketsOf(tx)
			for _, id := range batch {
				if hasTickets(b, id) {
					continue
				}
				n, err := deleteCustomer(b, id, keys[id])
				if err != nil {
					return err
				}
				if n >= 0 {
					customers++
					identities += n
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		st.Customers += customers
		st.Identities += identities
	}
	return nil
}

// EraseStats counts what EraseCustomer deleted.
type EraseStats struct {
	// CustomerID is the erased customer.
	CustomerID string
	// Tickets, AuditEvents and Posts are the customer's tickets, their
	// audit events and their pending outbox posts.
	Tickets, AuditEvents, Posts int
	// Identities are the customer's identity index entries.
	Identities int
	// At is when the erasure was recorded.
	At time.Time
}

// Erasure is the record an EraseCustomer leaves behind, so that an operator
// can show a privacy request was carried out. It holds no personal data.
type Erasure struct {
	CustomerID string    `json:"customer_id"`
	At         time.Time `json:"at"`
	Tickets    int       `json:"tickets"`
}

// EraseCustomer deletes a customer for a privacy request: its record, its
// identity index entries and all of its tickets with everything they own (as
// Purge does), and records an Erasure. Tickets go in batches; the last batch,
// the customer record and the Erasure share a transaction, so a ticket that
// arrives for the customer meanwhile is erased too, never left behind with
// its customer gone. An unknown customer is an error wrapping
// triage.ErrNotFound. An interrupted erasure may have deleted some tickets;
// running it again finishes it.
func (db *DB) EraseCustomer(ctx context.Context, customerID string) (EraseStats, error) {
	st := EraseStats{CustomerID: customerID}
	fail := func(err error) (EraseStats, error) {
		return st, fmt.Errorf("erase customer %s: %w", customerID, err)
	}
	if customerID == "" {
		return fail(errors.New("no customer ID"))
	}
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		now := db.clock.Now()
		var (
			d          deleted
			identities int
			finished   bool
		)
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			b := bucketsOf(tx)
			if b.customers.Get([]byte(customerID)) == nil {
				return triage.ErrNotFound
			}
			ids, more, err := customerTicketIDs(b.byCustomer, customerID)
			if err != nil {
				return err
			}
			d, err = deleteTickets(b, ids, nil)
			if err != nil || more {
				return err
			}
			keys, err := identityKeysOf(b.identity, customerID)
			if err != nil {
				return err
			}
			identities, err = deleteCustomer(b, customerID, keys)
			if err != nil {
				return err
			}
			finished = true
			return putErasure(tx, Erasure{CustomerID: customerID, At: now, Tickets: st.Tickets + d.tickets})
		})
		if err != nil {
			return fail(err)
		}
		st.Tickets += d.tickets
		st.AuditEvents += d.audit
		st.Posts += d.posts
		if finished {
			st.Identities, st.At = identities, now
			return st, nil
		}
	}
}

// CustomerByKey returns the customer that owns a normalised identity key
// (one of triage.CustomerKey's), or an error wrapping triage.ErrNotFound.
func (db *DB) CustomerByKey(ctx context.Context, key string) (triage.Customer, error) {
	if err := ctx.Err(); err != nil {
		return triage.Customer{}, fmt.Errorf("customer by identity: %w", err)
	}
	var c triage.Customer
	err := db.bolt.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketIdentity).Get([]byte(key))
		if id == nil {
			return triage.ErrNotFound
		}
		raw := tx.Bucket(bucketCustomers).Get(id)
		if raw == nil {
			return fmt.Errorf("identity points to missing customer %s: %w", id, ErrCorrupt)
		}
		return decodeRecord(raw, &c)
	})
	if err != nil {
		// The key is personal data; the error does not repeat it.
		return triage.Customer{}, fmt.Errorf("customer by identity: %w", err)
	}
	return c, nil
}

// Erasures returns the recorded erasures, oldest first.
func (db *DB) Erasures(ctx context.Context) ([]Erasure, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("erasures: %w", err)
	}
	var out []Erasure
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketErasures)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var e Erasure
			if err := decodeRecord(v, &e); err != nil {
				return fmt.Errorf("erasure %x: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("erasures: %w", err)
	}
	return out, nil
}

func putErasure(tx *bolt.Tx, e Erasure) error {
	b, err := tx.CreateBucketIfNotExists(bucketErasures)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketErasures, err)
	}
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("erasure sequence: %w", err)
	}
	raw, err := encodeRecord(e)
	if err != nil {
		return fmt.Errorf("encode erasure: %w", err)
	}
	if err := b.Put(seqKey(seq), raw); err != nil {
		return fmt.Errorf("put erasure: %w", err)
	}
	return nil
}

// customerTicketIDs returns up to maintenanceBatch of the customer's ticket
// IDs from the customer index, and whether it holds more.
func customerTicketIDs(byCustomer *bolt.Bucket, customerID string) ([]string, bool, error) {
	prefix := join([]byte(customerID), sep)
	var ids []string
	c := byCustomer.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(ids) == maintenanceBatch {
			return ids, true, nil
		}
		ids = append(ids, string(v))
	}
	return ids, false, nil
}

// hasTickets reports whether the customer index holds any ticket of the
// customer.
func hasTickets(b buckets, customerID string) bool {
	prefix := join([]byte(customerID), sep)
	k, _ := b.byCustomer.Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// identityKeysOf walks the identity index for the keys that point to the
// customer: one erasure, one scan.
func identityKeysOf(identity *bolt.Bucket, customerID string) ([][]byte, error) {
	var keys [][]byte
	err := identity.ForEach(func(k, v []byte) error {
		if string(v) == customerID {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	return keys, err
}

// deleteCustomer deletes the customer's record and those of keys, and of
// the identity keys its record shows, that still point to it. It returns the
// number of identity entries deleted, or -1 when the record was already gone.
func deleteCustomer(b buckets, customerID string, keys [][]byte) (int, error) {
	raw := b.customers.Get([]byte(customerID))
	if raw == nil {
		return -1, nil
	}
	var c triage.Customer
	if err := decodeRecord(raw, &c); err != nil {
		return 0, fmt.Errorf("customer %s: %w", customerID, err)
	}
	for _, k := range triage.CustomerKey(c.Email, c.SlackUserID, c.Handle) {
		keys = append(keys, []byte(k))
	}
	n := 0
	for _, k := range keys {
		if string(b.identity.Get(k)) != customerID {
			continue
		}
		if err := b.identity.Delete(k); err != nil {
			return 0, fmt.Errorf("identity index: %w", err)
		}
		n++
	}
	if err := b.customers.Delete([]byte(customerID)); err != nil {
		return 0, fmt.Errorf("delete customer %s: %w", customerID, err)
	}
	return n, nil
}

// deleted counts what deleteTickets removed.
type deleted struct{ tickets, audit, posts int }

// deleteTickets deletes the tickets named by ids with everything they own:
// the record, the external, time, customer and metrics index entries, the
// audit events and the pending outbox posts, and lowers the ticket counter.
// The customers of the deleted tickets are added to customers, when given.
func deleteTickets(b buckets, ids []string, customers map[string]struct{}) (deleted, error) {
	var d deleted
	if len(ids) == 0 {
		return d, nil
	}
	gone := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		t, err := getTicket(b, id)
		if err != nil {
			return d, err
		}
		n, err := deleteTicket(b, t)
		if err != nil {
			return d, fmt.Errorf("delete ticket %s: %w", id, err)
		}
		d.tickets++
		d.audit += n
		gone[id] = struct{}{}
		if customers != nil {
			customers[t.CustomerID] = struct{}{}
		}
	}
	n, err := deletePosts(b.outbox, gone)
	if err != nil {
		return d, err
	}
	d.posts = n
	if err := subTicketCount(b.meta, uint64(d.tickets)); err != nil {
		return d, err
	}
	return d, nil
}

// deleteTicket deletes one ticket's record, index entries and audit events,
// returning the number of audit events.
func deleteTicket(b buckets, t triage.Ticket) (int, error) {
	if err := b.tickets.Delete([]byte(t.ID)); err != nil {
		return 0, err
	}
	if t.ExternalID != "" {
		k := externalKey(t.Source, t.ExternalID)
		// Only the index entry that points to this ticket is its own.
		if string(b.external.Get(k)) == t.ID {
			if err := b.external.Delete(k); err != nil {
				return 0, fmt.Errorf("external index: %w", err)
			}
		}
	}
	if err := b.byTime.Delete(byTimeKey(t.ReceivedAt, t.ID)); err != nil {
		return 0, fmt.Errorf("time index: %w", err)
	}
	if err := b.byCustomer.Delete(byCustomerKey(t.CustomerID, t.ReceivedAt, t.ID)); err != nil {
		return 0, fmt.Errorf("customer index: %w", err)
	}
	if err := b.metrics.Delete(metricsKey(t.ReceivedAt, t.ID)); err != nil {
		return 0, fmt.Errorf("metrics index: %w", err)
	}
	if err := deleteDue(b, t.ID); err != nil {
		return 0, err
	}
	prefix := join([]byte(t.ID), sep)
	var keys [][]byte
	c := b.audit.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.audit.Delete(k); err != nil {
			return 0, fmt.Errorf("audit: %w", err)
		}
	}
	return len(keys), nil
}

// deletePosts deletes the pending posts of the tickets in gone from every
// outbox channel. The outbox holds only undelivered posts, so this walk is
// short.
func deletePosts(outbox *bolt.Bucket, gone map[string]struct{}) (int, error) {
	n := 0
	err := outbox.ForEachBucket(func(name []byte) error {
		ch := outbox.Bucket(name)
		var keys [][]byte
		err := ch.ForEach(func(k, v []byte) error {
			var p triage.Post
			if err := decodeRecord(v, &p); err != nil {
				return fmt.Errorf("post %x in %q: %w", k, name, err)
			}
			if _, ok := gone[p.TicketID]; ok {
				keys = append(keys, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := ch.Delete(k); err != nil {
				return fmt.Errorf("delete post %x in %q: %w", k, name, err)
			}
		}
		n += len(keys)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	}
	return n, nil
}

// subTicketCount lowers the ticket counter by n. A counter already below n
// is set to zero rather than wrapped: it can only be off in a file damaged
// before, and refusing would make retention fail forever.
func subTicketCount(meta *bolt.Bucket, n uint64) error {
	cur, err := ticketCount(meta)
	if err != nil {
		return err
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], cur-min(cur, n))
	if err := meta.Put(keyTicketCount, v[:]); err != nil {
		return fmt.Errorf("ticket count: %w", err)
	}
	return nil
}

// Package store keeps casebot's state in one bbolt file (SPEC sections 1 and
// 8) and implements triage.Tickets and triage.Outbox on it.
//
// Bucket layout (all keys and values are bytes; "+" is concatenation, "\x00"
// a separator byte, ts an 8-byte big-endian received-at in Unix nanoseconds
// with the sign bit flipped so that byte order is time order):
//
//	meta          "schema_version" → decimal schema version
//	              "ticket_count"   → 8-byte big-endian number of tickets
//	tickets       ticket ID → versioned Ticket record
//	customers     customer ID → versioned Customer record
//	identity      normalised identity key (triage.CustomerKey) → customer ID
//	external      source + "\x00" + external ID → ticket ID
//	by_time       ts + ticket ID → ticket ID
//	by_customer   customer ID + "\x00" + ts + ticket ID → ticket ID
//	audit         ticket ID + "\x00" + 8-byte big-endian sequence → versioned AuditEvent
//	outbox        one nested bucket per Slack channel ID:
//	  <channel>   8-byte big-endian outbox sequence → versioned triage.Post
//	metrics       ts + ticket ID → fixed-size binary metrics record (metrics.go)
//	sop           SOP update ID → versioned triage.SOPUpdate
//	alerts        pattern alert key (triage.AlertKey) → sent-at, RFC 3339
//	erasures      erasure sequence → customer ID, time and ticket count (no
//	              personal data; created on first use, maintenance.go)
//	due           due time + kind + ticket ID → ticket ID (pending follow-ups
//	              and no-answer closes, due.go)
//	due_ticket    ticket ID → its key in due
//
// The time-ordered indexes exist so that a window query seeks to the start of
// its window and stops at its end instead of scanning every ticket. The
// metrics index is written with each ticket, in the same transaction, so
// metrics over a window read small fixed-size records instead of decoding
// tickets; anything that deletes a ticket must delete its metrics record. The
// due index is written the same way, and deleted with the ticket too.
//
// Records are JSON in an envelope {"v":1,"data":{...}}. Decoding ignores
// unknown fields and leaves missing ones zero, so a field can be added to a
// domain type without a migration; a record from a newer, unknown version is
// refused with an error that names the version.
//
// The outbox sequence is global (the outbox bucket's own), so a channel's
// posts sort in the order they were written however channels interleave, and
// Post.ID is that sequence zero-padded. A bucket per channel makes Channels a
// walk over a handful of bucket names and Pending a cursor from the first
// key, without reading other channels' posts.
//
// A ticket, its index entries and its audit event are always written in one
// bbolt transaction, which bbolt commits with an fsync: once Create returns
// the ticket survives a crash (SPEC invariant 1). Concurrent Creates share a
// transaction, and so an fsync, when they arrive while a commit is running;
// an Update's change and its audit event likewise commit together or not at
// all (invariant 5), and so do the Slack posts the event carries, which go
// into the outbox in that same transaction (invariant 6): a change is never
// stored without its announcement, nor announced without being stored.
// Delivering a card and recording its Slack reference on the ticket also
// share a transaction (Done).
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/casebot/casebot/triage"
)

// SchemaVersion is the layout version this package reads and writes; it is
// stored in the meta bucket so an older binary refuses a newer file. Version
// 2 added the due index, which an older binary would not keep.
const SchemaVersion = dueSchemaVersion

// Sentinel errors that callers branch on.
var (
	// ErrLocked is returned by Open when another process (or another open
	// handle in this process) holds the database file.
	ErrLocked = errors.New("database file is locked")
	// ErrCorrupt is returned when a stored record or index entry cannot be
	// decoded.
	ErrCorrupt = errors.New("corrupt record")
)

var (
	bucketMeta       = []byte("meta")
	bucketTickets    = []byte("tickets")
	bucketCustomers  = []byte("customers")
	bucketIdentity   = []byte("identity")
	bucketExternal   = []byte("external")
	bucketByTime     = []byte("by_time")
	bucketByCustomer = []byte("by_customer")
	bucketAudit      = []byte("audit")
	bucketOutbox     = []byte("outbox")
	bucketMetrics    = []byte("metrics")
	bucketSOP        = []byte("sop")
	bucketAlerts     = []byte("alerts")

	// allBuckets are created empty; the metrics index is created, and filled
	// from existing tickets, by initMetricsIndex.
	allBuckets = [][]byte{bucketMeta, bucketTickets, bucketCustomers, bucketIdentity,
		bucketExternal, bucketByTime, bucketByCustomer, bucketAudit, bucketOutbox,
		bucketSOP, bucketAlerts}

	keySchemaVersion = []byte("schema_version")
	keyTicketCount   = []byte("ticket_count")
)

// Options configures Open. The zero value is usable.
type Options struct {
	// LockTimeout is how long Open waits for the file lock held by another
	// process before failing with ErrLocked; default 1s.
	LockTimeout time.Duration
	// Clock stamps audit events and tickets without a received-at time;
	// default triage.SystemClock.
	Clock triage.Clock
}

// DB is the bbolt-backed store. It is safe for concurrent use.
type DB struct {
	bolt  *bolt.DB
	clock triage.Clock
	path  string
	group groupCommitter
}

// Open opens or creates the database file at path with mode 0600 (it holds
// customer data) and prepares its buckets.
func Open(path string, opts Options) (*DB, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.Clock == nil {
		opts.Clock = triage.SystemClock{}
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: the file is in use by another casebot process (no lock within %s): %w",
			path, opts.LockTimeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := b.Update(initSchema); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &DB{bolt: b, clock: opts.Clock, path: path}, nil
}

// initSchema creates missing buckets and records the schema version, refusing
// a file written by a newer layout.
func initSchema(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if err := initMetricsIndex(tx); err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	// A new file has no tickets, so any version below the current one
	// builds the indexes from nothing.
	v := 0
	if raw := meta.Get(keySchemaVersion); raw != nil {
		var err error
		if v, err = strconv.Atoi(string(raw)); err != nil {
			return fmt.Errorf("schema version %q: %w", raw, ErrCorrupt)
		}
	}
	if v > SchemaVersion {
		return fmt.Errorf("schema version %d is newer than this casebot supports (%d)", v, SchemaVersion)
	}
	if err := initDueIndex(tx, v); err != nil {
		return err
	}
	if v == SchemaVersion {
		return nil
	}
	return meta.Put(keySchemaVersion, []byte(strconv.Itoa(SchemaVersion)))
}

// Close releases the file and its lock.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close %s: %w", db.path, err)
	}
	return nil
}

// timeKey encodes t so that byte order is time order, clamping times outside
// the range of Unix nanoseconds (the zero time.Time, for instance) to the
// smallest or largest key.
func timeKey(t time.Time) [8]byte {
	var n int64
	switch {
	case t.Before(minTime):
		n = minNanos
	case t.After(maxTime):
		n = maxNanos
	default:
		n = t.UnixNano()
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(n)^(1<<63))
	return k
}

const (
	minNanos = -1 << 63
	maxNanos = 1<<63 - 1
)

var (
	minTime = time.Unix(0, minNanos)
	maxTime = time.Unix(0, maxNanos)
)

// join concatenates key parts into a fresh slice.
func join(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

var sep = []byte{0}

func externalKey(src triage.Source, externalID string) []byte {
	return join([]byte(src), sep, []byte(externalID))
}

func byTimeKey(received time.Time, ticketID string) []byte {
	ts := timeKey(received)
	return join(ts[:], []byte(ticketID))
}

func byCustomerKey(customerID string, received time.Time, ticketID string) []byte {
	ts := timeKey(received)
	return join([]byte(customerID), sep, ts[:], []byte(ticketID))
}

func auditKey(ticketID string, seq uint64) []byte {
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	return join([]byte(ticketID), sep, s[:])
}

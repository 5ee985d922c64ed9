package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// The metrics index holds, per ticket, the facts its metrics are computed
// from (triage.MetricFacts) as a fixed-size binary record, keyed like by_time
// by received time and ticket ID. A 30-day window of a busy store is tens of
// thousands of tickets; decoding their JSON records costs seconds, reading
// these records milliseconds. putTicket rewrites a ticket's record in the
// transaction that writes the ticket, so the index is never behind it.
//
// Record layout, 41 bytes, integers big-endian:
//
//	[0]      record version (metricsRecordVersion)
//	[1:3]    flags (the metricsFlag bits)
//	[3]      issue type: 0 none, 1+i for triage.Types[i], 255 any other
//	[4]      follow-ups sent
//	[5:13]   first response time in nanoseconds after received
//	[13:21]  resolution time in nanoseconds after received
//	[21:29]  draft revision, IEEE 754 float64 bits
//	[29:37]  customer: the number of a store-assigned "CU-nnnnnn" ID, or
//	         with flagCustomerHash the FNV-64a hash of any other ID
//	[37]     ratings given
//	[38]     ratings of 4 or 5
//	[39:41]  sum of the ratings
//
// The counts saturate (255, 65535): a ticket is followed up a few times at
// most. Version 1 kept one rating in [4] and a follow-up flag; an index of
// another version is rebuilt from the tickets when the store opens.
const (
	metricsRecordVersion = 2
	metricsRecordSize    = 41
	metricsTypeUnknown   = 255
)

// metricsFlag bits of a metrics record.
const (
	flagResponded uint16 = 1 << iota
	flagResolved
	flagRootCause
	flagEscalated
	flagDraftSent
	flagReviewed
	flagOverridden
	flagCustomer
	flagCustomerHash
)

// metricsFillPercent packs the index's pages: its keys are nearly always
// appended in time order, so half-empty pages after splits would only double
// what a window reads.
const metricsFillPercent = 0.9

func metricsKey(received time.Time, ticketID string) []byte { return byTimeKey(received, ticketID) }

// putMetrics writes t's metrics record.
func putMetrics(b buckets, t triage.Ticket) error {
	rec := encodeFacts(triage.FactsOf(t))
	if err := b.metrics.Put(metricsKey(t.ReceivedAt, t.ID), rec[:]); err != nil {
		return fmt.Errorf("metrics index of ticket %s: %w", t.ID, err)
	}
	return nil
}

func encodeFacts(f triage.MetricFacts) [metricsRecordSize]byte {
	var r [metricsRecordSize]byte
	r[0] = metricsRecordVersion
	var flags uint16
	set := func(cond bool, bit uint16) {
		if cond {
			flags |= bit
		}
	}
	set(f.Responded, flagResponded)
	set(f.Resolved, flagResolved)
	set(f.RootCauseLogged, flagRootCause)
	set(f.Escalated, flagEscalated)
	set(f.DraftSent, flagDraftSent)
	set(f.Reviewed, flagReviewed)
	set(f.Overridden, flagOverridden)
	if f.CustomerID != "" {
		n, ok := customerNumber(f.CustomerID)
		if !ok {
			h := fnv.New64a()
			h.Write([]byte(f.CustomerID))
			n = h.Sum64()
			flags |= flagCustomerHash
		}
		flags |= flagCustomer
		binary.BigEndian.PutUint64(r[29:37], n)
	}
	binary.BigEndian.PutUint16(r[1:3], flags)
	r[3] = typeCode(f.Type)
	r[4] = saturate8(f.FollowUpsSent)
	r[37] = saturate8(f.Ratings)
	r[38] = saturate8(f.Satisfied)
	binary.BigEndian.PutUint16(r[39:41], uint16(min(max(f.RatingSum, 0), math.MaxUint16)))
	binary.BigEndian.PutUint64(r[5:13], uint64(f.FirstResponse))
	binary.BigEndian.PutUint64(r[13:21], uint64(f.Resolution))
	binary.BigEndian.PutUint64(r[21:29], math.Float64bits(f.DraftRevision))
	return r
}

// decodeFacts reads a record written by encodeFacts; key is its index key.
// Customer IDs come back as written when they were store-assigned, and as
// "#" and the hash otherwise: the same ID always gives the same string,
// which is all the repeat rule compares.
func decodeFacts(key, r []byte) (triage.MetricFacts, error) {
	if len(key) < 8 || len(r) != metricsRecordSize || r[0] != metricsRecordVersion {
		return triage.MetricFacts{}, fmt.Errorf("metrics record %x: %w", key, ErrCorrupt)
	}
	flags := binary.BigEndian.Uint16(r[1:3])
	has := func(bit uint16) bool { return flags&bit != 0 }
	f := triage.MetricFacts{
		ReceivedAt:      time.Unix(0, int64(binary.BigEndian.Uint64(key[:8])^(1<<63))),
		Type:            typeOfCode(r[3]),
		FollowUpsSent:   int(r[4]),
		Ratings:         int(r[37]),
		Satisfied:       int(r[38]),
		RatingSum:       int(binary.BigEndian.Uint16(r[39:41])),
		Responded:       has(flagResponded),
		FirstResponse:   time.Duration(binary.BigEndian.Uint64(r[5:13])),
		Resolved:        has(flagResolved),
		Resolution:      time.Duration(binary.BigEndian.Uint64(r[13:21])),
		RootCauseLogged: has(flagRootCause),
		Escalated:       has(flagEscalated),
		DraftSent:       has(flagDraftSent),
		DraftRevision:   math.Float64frombits(binary.BigEndian.Uint64(r[21:29])),
		Reviewed:        has(flagReviewed),
		Overridden:      has(flagOverridden),
	}
	if has(flagCustomer) {
		n := binary.BigEndian.Uint64(r[29:37])
		if has(flagCustomerHash) {
			f.CustomerID = "#" + strconv.FormatUint(n, 16)
		} else {
			f.CustomerID = customerID(n)
		}
	}
	return f, nil
}

// saturate8 stores a count in a byte, capped.
func saturate8(n int) byte { return byte(min(max(n, 0), math.MaxUint8)) }

// customerNumber returns the sequence number of a store-assigned customer
// ID, if id is one: formatting the number again must give id back.
func customerNumber(id string) (uint64, bool) {
	digits, ok := strings.CutPrefix(id, "CU-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || customerID(n) != id {
		return 0, false
	}
	return n, true
}

// customerID formats a customer number as customerIDFormat does, without
// fmt's cost on the read path.
func customerID(n uint64) string {
	const width = 6
	var buf [3 + 20]byte
	out := append(buf[:0], "CU-"...)
	d := strconv.AppendUint(nil, n, 10)
	for range width - len(d) {
		out = append(out, '0')
	}
	return string(append(out, d...))
}

func typeCode(t triage.Type) byte {
	if t == "" {
		return 0
	}
	for i, k := range triage.Types {
		if k == t {
			return byte(i + 1)
		}
	}
	return metricsTypeUnknown
}

// typeOfCode inverts typeCode; types outside triage.Types, which validation
// keeps out of the store, all read back as one unknown type.
func typeOfCode(c byte) triage.Type {
	switch {
	case c == 0:
		return ""
	case int(c) <= len(triage.Types):
		return triage.Types[c-1]
	}
	return "?"
}

// Metrics computes the metrics of SPEC section 7, named window, over the
// tickets received in [from, to), reading only that range of the metrics
// index: no ticket record is decoded.
func (db *DB) Metrics(ctx context.Context, window string, from, to time.Time) (triage.Metrics, error) {
	if err := ctx.Err(); err != nil {
		return triage.Metrics{}, fmt.Errorf("metrics %s: %w", window, err)
	}
	acc := triage.NewMetricsAccumulator(window)
	lo, hi := timeKey(from), timeKey(to)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMetrics).Cursor()
		for k, v := c.Seek(lo[:]); k != nil; k, v = c.Next() {
			if len(k) >= len(hi) && bytes.Compare(k[:len(hi)], hi[:]) >= 0 {
				return nil
			}
			f, err := decodeFacts(k, v)
			if err != nil {
				return err
			}
			acc.AddFacts(f)
		}
		return nil
	})
	if err != nil {
		return triage.Metrics{}, fmt.Errorf("metrics %s: %w", window, err)
	}
	return acc.Result(), nil
}

// initMetricsIndex creates the metrics index, filling it from the stored
// tickets when the file predates it or its records are of another version
// (every record is written in one version: a rebuild is one transaction).
// That reads every ticket once, in Open's transaction; afterwards putTicket
// keeps the index current.
func initMetricsIndex(tx *bolt.Tx) error {
	if b := tx.Bucket(bucketMetrics); b != nil {
		_, v := b.Cursor().First()
		if v == nil || (len(v) == metricsRecordSize && v[0] == metricsRecordVersion) {
			return nil
		}
		if err := tx.DeleteBucket(bucketMetrics); err != nil {
			return fmt.Errorf("drop outdated metrics index: %w", err)
		}
	}
	if _, err := tx.CreateBucket(bucketMetrics); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketMetrics, err)
	}
	b := bucketsOf(tx)
	return b.tickets.ForEach(func(k, v []byte) error {
		var t triage.Ticket
		if err := decodeRecord(v, &t); err != nil {
			return fmt.Errorf("index ticket %s: %w", k, err)
		}
		return putMetrics(b, t)
	})
}

// metricsBucket returns the metrics index of tx, packed for appends; nil
// before initMetricsIndex has created it.
func metricsBucket(tx *bolt.Tx) *bolt.Bucket {
	b := tx.Bucket(bucketMetrics)
	if b != nil {
		b.FillPercent = metricsFillPercent
	}
	return b
}

package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// lifecycleStep applies one random step of a ticket's life, as the actions
// would: answered, escalated, resolved, followed up, rated, overridden.
func lifecycleStep(r *rand.Rand, t *triage.Ticket) {
	after := func() time.Time {
		return t.ReceivedAt.Add(time.Duration(r.Int64N(int64(20 * 24 * time.Hour))))
	}
	switch r.IntN(8) {
	case 0:
		if t.FirstResponseAt.IsZero() {
			t.FirstResponseAt = after()
			t.Reviewed = true
			if r.IntN(3) > 0 {
				t.DraftSent = true
				t.DraftRevision = r.Float64() * 0.5
			}
		}
	case 1:
		t.Escalations++
		t.EscalatedAt = after()
	case 2:
		t.ResolvedAt = after()
		if r.IntN(2) == 0 {
			t.RootCause = []string{"carrier_delay", "wrong_size", "damaged"}[r.IntN(3)]
		}
	case 3:
		if !t.ResolvedAt.IsZero() {
			// Resolved again after a reopen, a ticket has several.
			t.FollowUpSentAt = t.ResolvedAt.Add(time.Duration(48+len(t.FollowUps)) * time.Hour)
			t.FollowUps = append(t.FollowUps, triage.FollowUp{SentAt: t.FollowUpSentAt})
		}
	case 4:
		if n := len(t.FollowUps); n > 0 {
			t.Rating = r.IntN(6) // 0 is still unanswered
			t.FollowUps[n-1].Rating = t.Rating
		}
	case 5:
		t.Reviewed = true
		t.Overrides = append(t.Overrides, triage.Override{Field: "type", From: string(t.Classification.Type), To: "refund"})
		t.Classification.Type = triage.TypeRefund
	case 6:
		// Answered in the instant it arrived: a first response of zero.
		t.FirstResponseAt = t.ReceivedAt
	case 7:
		t.Classification.Type = triage.Types[r.IntN(len(triage.Types))]
	}
}

// randomStore creates n tickets over 90 days from a pool of customers small
// enough for repeats, and gives them random lifecycles through Update.
func randomStore(t *testing.T, db *DB, seed uint64, n int) {
	t.Helper()
	// Commits without fsync: durability is not under test here, and 2,500
	// fsyncs would dominate the run.
	db.bolt.NoSync = true
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 1))
	var ids []string
	for i := range n {
		tk := &triage.Ticket{
			Source:         triage.SourceWebhook,
			ExternalID:     fmt.Sprint(i),
			Body:           "help",
			ReceivedAt:     t0.Add(time.Duration(r.Int64N(int64(90 * 24 * time.Hour)))),
			Classification: triage.Classification{Type: triage.Types[r.IntN(4)]},
			ClassifiedBy:   []string{"model", "rules"}[r.IntN(2)],
			DraftRevision:  -1,
		}
		cust := triage.Customer{Email: fmt.Sprintf("c%d@example.com", r.IntN(60))}
		if r.IntN(20) == 0 {
			cust = triage.Customer{}
		}
		ids = append(ids, mustCreate(t, db, tk, cust).ID)
	}
	for range 4 * n {
		id := ids[r.IntN(len(ids))]
		_, err := db.Update(ctx, id, func(tk *triage.Ticket) (triage.AuditEvent, error) {
			lifecycleStep(r, tk)
			return triage.AuditEvent{Actor: "U1", Action: "step"}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fromTickets computes the metrics the slow way, decoding every ticket of
// the window.
func fromTickets(t *testing.T, db *DB, window string, from, to time.Time) triage.Metrics {
	t.Helper()
	var ts []triage.Ticket
	if err := db.Window(context.Background(), from, to, func(tk triage.Ticket) error {
		ts = append(ts, tk)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return triage.ComputeMetrics(window, ts)
}

func TestMetricsIndexMatchesTickets(t *testing.T) {
	db, _ := openTest(t)
	randomStore(t, db, 42, 500)
	windows := []struct {
		name     string
		from, to time.Time
	}{
		{"all", t0, t0.AddDate(0, 0, 91)},
		{"30d", t0.AddDate(0, 0, 60), t0.AddDate(0, 0, 90)},
		{"7d", t0.AddDate(0, 0, 20), t0.AddDate(0, 0, 27)},
		{"empty", t0.AddDate(-1, 0, 0), t0},
	}
	for _, w := range windows {
		t.Run(w.name, func(t *testing.T) {
			got, err := db.Metrics(context.Background(), w.name, w.from, w.to)
			if err != nil {
				t.Fatal(err)
			}
			want := fromTickets(t, db, w.name, w.from, w.to)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Metrics from the index:\n got %s\nwant %s", showMetrics(got), showMetrics(want))
			}
			if w.name == "all" && (got.Received != 500 || got.RepeatComplaint == nil || *got.RepeatComplaint == 0 ||
				got.RecoveryCSAT.Mean == nil || got.DraftAcceptance == nil || got.HumanOverrideRate == nil) {
				t.Errorf("the random store does not exercise every metric: %s", showMetrics(got))
			}
		})
	}
}

func showMetrics(m triage.Metrics) string {
	p := func(f *float64) string {
		if f == nil {
			return "nil"
		}
		return fmt.Sprint(*f)
	}
	return fmt.Sprintf("{received %d fr %s/%s res %s/%s esc %s draft %s override %s repeat %s csat %s/%s/%s rc %s}",
		m.Received, p(m.FirstResponseTime.P50), p(m.FirstResponseTime.P90), p(m.ResolutionTime.P50), p(m.ResolutionTime.P90),
		p(m.EscalationRate), p(m.DraftAcceptance), p(m.HumanOverrideRate), p(m.RepeatComplaint),
		p(m.RecoveryCSAT.Mean), p(m.RecoveryCSAT.SatisfiedShare), p(m.RecoveryCSAT.ResponseRate), p(m.RootCauseCoverage))
}

// TestMetricsIndexBuiltForOlderFile opens a file written before the index
// existed: Open fills it from the tickets.
func TestMetricsIndexBuiltForOlderFile(t *testing.T) {
	db, path := openTest(t)
	randomStore(t, db, 7, 120)
	from, to := t0, t0.AddDate(0, 0, 91)
	want := fromTickets(t, db, "90d", from, to)
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketMetrics) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{Clock: &fixedClock{t: t0}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Metrics(context.Background(), "90d", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || got.Received != 120 {
		t.Errorf("Metrics after rebuilding the index:\n got %s\nwant %s", showMetrics(got), showMetrics(want))
	}
}

// TestMetricsIndexRebuiltForOlderRecords opens a file whose index holds
// records of an older version (version 1 kept one rating per ticket): Open
// rebuilds the index from the tickets, so every follow-up is counted.
func TestMetricsIndexRebuiltForOlderRecords(t *testing.T) {
	db, path := openTest(t)
	randomStore(t, db, 11, 120)
	from, to := t0, t0.AddDate(0, 0, 91)
	want := fromTickets(t, db, "90d", from, to)
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMetrics)
		old := map[string][]byte{}
		if err := b.ForEach(func(k, v []byte) error {
			rec := make([]byte, 37)
			copy(rec, v)
			rec[0] = 1
			old[string(k)] = rec
			return nil
		}); err != nil {
			return err
		}
		for k, v := range old {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{Clock: &fixedClock{t: t0}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Metrics(context.Background(), "90d", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Metrics after rebuilding the index:\n got %s\nwant %s", showMetrics(got), showMetrics(want))
	}
}

func TestMetricsFactsRoundTrip(t *testing.T) {
	rec := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		in       triage.MetricFacts
		customer string // the customer ID read back
	}{
		{"nothing", triage.MetricFacts{ReceivedAt: rec, DraftRevision: -1}, ""},
		{"everything", triage.MetricFacts{
			ReceivedAt: rec, CustomerID: "CU-001042", Type: triage.TypeOther,
			Responded: true, FirstResponse: -3 * time.Second, Resolved: true, Resolution: 1<<62 + 1,
			RootCauseLogged: true, Escalated: true, DraftSent: true, DraftRevision: 0.1999999,
			Reviewed: true, Overridden: true, FollowUpsSent: 3, Ratings: 2, RatingSum: 6, Satisfied: 1,
		}, "CU-001042"},
		{"a long customer number", triage.MetricFacts{ReceivedAt: rec, CustomerID: "CU-12345678", Type: triage.TypeRefund}, "CU-12345678"},
		{"a customer ID the store did not assign", triage.MetricFacts{ReceivedAt: rec, CustomerID: "CU-42", Type: triage.TypeRefund}, "#43c4d2312689e8c2"},
		{"an unknown type", triage.MetricFacts{ReceivedAt: rec, Type: "nonsense"}, ""},
		{"counts past their bytes", triage.MetricFacts{ReceivedAt: rec, FollowUpsSent: 300, Ratings: 256,
			RatingSum: 70000, Satisfied: 1000}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := encodeFacts(tt.in)
			got, err := decodeFacts(metricsKey(tt.in.ReceivedAt, "CB-000001"), rec[:])
			if err != nil {
				t.Fatal(err)
			}
			want := tt.in
			want.CustomerID = tt.customer
			if !tt.in.ReceivedAt.Equal(got.ReceivedAt) {
				t.Errorf("received %v, want %v", got.ReceivedAt, tt.in.ReceivedAt)
			}
			got.ReceivedAt = want.ReceivedAt
			switch tt.name {
			case "an unknown type":
				want.Type = "?"
			case "counts past their bytes":
				want.FollowUpsSent, want.Ratings, want.RatingSum, want.Satisfied = 255, 255, 65535, 255
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestMetricsCorruptRecord(t *testing.T) {
	for _, raw := range []string{"", "short", string(make([]byte, metricsRecordSize))} {
		db, _ := openTest(t)
		created := mustCreate(t, db, newTicket(triage.SourceSlack, "m1", t0), triage.Customer{SlackUserID: "U1"})
		if err := db.bolt.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMetrics).Put(metricsKey(created.ReceivedAt, created.ID), []byte(raw))
		}); err != nil {
			t.Fatal(err)
		}
		_, err := db.Metrics(context.Background(), "7d", t0, t0.Add(time.Hour))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("Metrics over record %q: error %v, want ErrCorrupt", raw, err)
		}
	}
}

func TestMetricsContextCancelled(t *testing.T) {
	db, _ := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Metrics(ctx, "7d", t0, t0.Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("Metrics with a cancelled context: %v", err)
	}
}

// TestMetricsEmptyStore checks a fresh file has the index and no figures.
func TestMetricsEmptyStore(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := db.Metrics(context.Background(), "30d", t0, t0.AddDate(0, 0, 30))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, triage.Metrics{Window: "30d"}) {
		t.Errorf("empty store: %s", showMetrics(m))
	}
}

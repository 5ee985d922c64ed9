package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// The report benchmarks run over a store of a year of tickets at a million a
// year (SPEC section 10). Generating it takes minutes, so the file is cached
// under os.TempDir(), named by reportStoreVersion: change the version when
// the generator or the store's layout changes. Only `go test -bench` reaches
// this code.
const (
	reportStoreVersion = 1
	reportStoreTickets = 1_000_000
	reportStoreBatch   = 20_000
)

// reportStoreEnd is when the generated year ends; the 30-day window of the
// benchmark ends here too, so it holds about 82,000 tickets.
var reportStoreEnd = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// reportStorePath returns the cached store, generating it first if needed.
// It is written under a temporary name and renamed when complete, so an
// interrupted run never leaves a partial file to be reused.
func reportStorePath(b *testing.B) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("casebot-bench-report-v%d-%d.db", reportStoreVersion, reportStoreTickets))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".partial"
	_ = os.Remove(tmp)
	start := time.Now()
	db, err := Open(tmp, Options{Clock: &fixedClock{t: reportStoreEnd}})
	if err != nil {
		b.Fatal(err)
	}
	if err := loadGenerated(db, reportStoreTickets); err != nil {
		_ = db.Close()
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b.Logf("generated %d tickets in %s: %s (%d MB)", reportStoreTickets, time.Since(start).Round(time.Second), path, fi.Size()>>20)
	return path
}

// loadGenerated writes n generated tickets through Create's own transaction
// body, reportStoreBatch to a commit and without fsync until the end: a
// bulk load, not intake.
func loadGenerated(db *DB, n int) error {
	db.bolt.NoSync = true
	r := rand.New(rand.NewPCG(reportStoreVersion, 2))
	step := 365 * 24 * time.Hour / time.Duration(n)
	first := reportStoreEnd.AddDate(-1, 0, 0)
	for lo := 0; lo < n; lo += reportStoreBatch {
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			b := bucketsOf(tx)
			for i := lo; i < min(lo+reportStoreBatch, n); i++ {
				received := first.Add(time.Duration(i)*step + time.Duration(r.Int64N(int64(step))))
				t, c := generatedTicket(r, i, received)
				if _, _, err := createTx(b, t, c, received); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load tickets %d–%d: %w", lo, lo+reportStoreBatch, err)
		}
	}
	db.bolt.NoSync = false
	return db.bolt.Sync()
}

// generatedTicket is ticket i with a plausible finished lifecycle: most
// answered within hours, most resolved, some escalated, overridden, rated.
// 300,000 customers over a million tickets make repeats common.
func generatedTicket(r *rand.Rand, i int, received time.Time) (triage.Ticket, triage.Customer) {
	hours := func(max float64) time.Duration { return time.Duration(r.Float64() * max * float64(time.Hour)) }
	typ := triage.Types[r.IntN(len(triage.Types))]
	causes := []string{"carrier_delay", "wrong_size", "damaged_in_transit", "double_charge", "password_reset", "out_of_stock"}
	t := triage.Ticket{
		Source:     triage.SourceWebhook,
		Channel:    "chat",
		ExternalID: strconv.Itoa(i),
		Subject:    "Order problem",
		Body:       benchBody[:200],
		ReceivedAt: received,
		State:      triage.StateClosed,
		Classification: triage.Classification{
			Type: typ, Sentiment: triage.SentimentNeutral, Urgency: triage.LevelMedium, FinancialRisk: triage.LevelLow,
			RootCauseGuess: causes[r.IntN(len(causes))], Language: "en",
		},
		ClassifiedBy:  "model",
		Route:         triage.Route{Channel: "C-QUEUE"},
		Draft:         "Thanks for reaching out, we are looking into it.",
		DraftRevision: -1,
	}
	t.Original = t.Classification
	if r.IntN(10) < 9 {
		t.FirstResponseAt = received.Add(hours(8))
		t.Reviewed = true
		if r.IntN(4) > 0 {
			t.DraftSent, t.DraftRevision = true, r.Float64()*0.6
			t.Sent = t.Draft
		}
		if r.IntN(10) == 0 {
			t.Overrides = []triage.Override{{Field: "type", From: string(typ), To: "other", By: "U0AGENT", At: t.FirstResponseAt}}
		}
	}
	if r.IntN(12) == 0 {
		t.Escalations = 1
		t.EscalatedAt = received.Add(hours(2))
	}
	if r.IntN(10) < 8 {
		t.ResolvedAt = received.Add(hours(72))
		if r.IntN(3) > 0 {
			t.RootCause = t.Classification.RootCauseGuess
		}
		t.FollowUpSentAt = t.ResolvedAt.Add(48 * time.Hour)
		if r.IntN(2) == 0 {
			t.Rating = 1 + r.IntN(5)
		}
	}
	return t, triage.Customer{Email: fmt.Sprintf("customer%d@example.com", r.IntN(300_000))}
}

// peakRSS returns the process's peak and current resident set in MB from
// /proc/self/status (Linux only).
func peakRSS() (peak, cur float64, err error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		if name == "VmHWM" {
			peak = kb / 1024
		} else {
			cur = kb / 1024
		}
	}
	if peak == 0 {
		return 0, 0, errors.New("no VmHWM in /proc/self/status")
	}
	return peak, cur, sc.Err()
}

// resetPeakRSS starts the peak resident set afresh, so that generating the
// store does not count towards the benchmark's peak. Linux ≥ 4.0.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS not reset (%v): it includes everything before the benchmark", err)
	}
}

// BenchmarkReport30d computes the 30-day metrics of a store of a million
// tickets from its metrics index, as `/casebot metrics 30d` and `casebot
// report` do. Budget (SPEC section 10): under 300 ms, and under 80 MB
// resident with the store open.
func BenchmarkReport30d(b *testing.B) {
	path := reportStorePath(b)
	db, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	resetPeakRSS(b)
	ctx := context.Background()
	from := reportStoreEnd.AddDate(0, 0, -30)
	var m triage.Metrics
	for b.Loop() {
		if m, err = db.Metrics(ctx, "30d", from, reportStoreEnd); err != nil {
			b.Fatal(err)
		}
	}
	if want := reportStoreTickets * 30 / 365; m.Received < want*9/10 {
		b.Fatalf("30-day window holds %d tickets, want about %d", m.Received, want)
	}
	b.ReportMetric(float64(m.Received), "tickets/window")
	if peak, cur, err := peakRSS(); err == nil {
		b.ReportMetric(peak, "peak-RSS-MB")
		b.ReportMetric(cur, "RSS-MB")
	} else {
		b.Logf("peak RSS: %v", err)
	}
	b.Logf("store %s; compare: go run ./cmd/casebot report --json --window 30d --at %s --db %s",
		path, reportStoreEnd.Format(time.RFC3339), path)
}

// BenchmarkReport30dFromTickets computes the same metrics by decoding every
// ticket of the window, the way the index replaces; the two must agree.
func BenchmarkReport30dFromTickets(b *testing.B) {
	path := reportStorePath(b)
	db, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	from := reportStoreEnd.AddDate(0, 0, -30)
	var m triage.Metrics
	for b.Loop() {
		acc := triage.NewMetricsAccumulator("30d")
		if err := db.Window(ctx, from, reportStoreEnd, func(t triage.Ticket) error {
			acc.Add(t)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		m = acc.Result()
	}
	idx, err := db.Metrics(ctx, "30d", from, reportStoreEnd)
	if err != nil {
		b.Fatal(err)
	}
	if a, c := showMetrics(m), showMetrics(idx); a != c {
		b.Fatalf("metrics from tickets and from the index differ:\n%s\n%s", a, c)
	}
	b.ReportMetric(float64(m.Received), "tickets/window")
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// windowDays parses a metrics window: 7d, 30d or 90d.
func windowDays(s string) (time.Duration, error) {
	switch s {
	case "7d", "30d", "90d":
		n, _ := strconv.Atoi(strings.TrimSuffix(s, "d"))
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("%w: window %q: use 7d, 30d or 90d", errUsage, s)
}

// metricsSource computes metrics over a window of received times; the
// store does it from its compact metrics index.
type metricsSource interface {
	Metrics(ctx context.Context, window string, from, to time.Time) (triage.Metrics, error)
}

// computeMetrics computes the metrics of the tickets received in the window
// ending at now, now included.
func computeMetrics(ctx context.Context, src metricsSource, window string, now time.Time) (triage.Metrics, error) {
	d, err := windowDays(window)
	if err != nil {
		return triage.Metrics{}, err
	}
	m, err := src.Metrics(ctx, window, now.Add(-d), now.Add(time.Nanosecond))
	if err != nil {
		return triage.Metrics{}, fmt.Errorf("metrics of the last %s: %w", window, err)
	}
	return m, nil
}

// defaultDB is the store `casebot report` reads when --db is not given.
const defaultDB = "casebot.db"

// cmdReport prints the metrics of SPEC section 7 from an existing store.
func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c commonFlags
	fs := newFlagSet("report", stderr, &c)
	asJSON := fs.Bool("json", false, "print one JSON object (SPEC section 7) instead of a table")
	window := fs.String("window", "30d", "the `window` of received tickets: 7d, 30d or 90d")
	at := fs.String("at", "", "end the window at `TIME` (RFC 3339) instead of now, for a past report")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: report takes no arguments, got %q", errUsage, pos)
	}
	if _, err := windowDays(*window); err != nil {
		return err
	}
	end := time.Now()
	if *at != "" {
		if end, err = time.Parse(time.RFC3339, *at); err != nil {
			return fmt.Errorf("%w: --at %q: want a time like 2026-03-02T09:00:00Z", errUsage, *at)
		}
	}
	path := c.db
	if path == "" {
		path = defaultDB
	}
	// Opening a missing file would create an empty store and report on it.
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("no store at %s: give the bot's database file with --db FILE", path)
		}
		return fmt.Errorf("store %s: %w", path, err)
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := computeMetrics(ctx, db, *window, end)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeMetricsJSON(stdout, m)
	}
	return printMetrics(stdout, m)
}

func writeMetricsJSON(w io.Writer, m triage.Metrics) error {
	return json.NewEncoder(w).Encode(m)
}

// printMetrics writes the eight metrics as a table for a terminal.
func printMetrics(w io.Writer, m triage.Metrics) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "tickets received (%s)\t%d\n", m.Window, m.Received)
	fmt.Fprintf(tw, "first response time\tp50 %s\tp90 %s\n", dur(m.FirstResponseTime.P50), dur(m.FirstResponseTime.P90))
	fmt.Fprintf(tw, "resolution time\tp50 %s\tp90 %s\n", dur(m.ResolutionTime.P50), dur(m.ResolutionTime.P90))
	fmt.Fprintf(tw, "escalation rate\t%s\n", pct(m.EscalationRate))
	fmt.Fprintf(tw, "AI draft acceptance rate\t%s\n", pct(m.DraftAcceptance))
	fmt.Fprintf(tw, "human override rate\t%s\n", pct(m.HumanOverrideRate))
	fmt.Fprintf(tw, "repeat complaint rate\t%s\n", pct(m.RepeatComplaint))
	fmt.Fprintf(tw, "recovery CSAT\tmean %s\t4-5: %s\tresponse rate %s\n", num(m.RecoveryCSAT.Mean),
		pct(m.RecoveryCSAT.SatisfiedShare), pct(m.RecoveryCSAT.ResponseRate))
	fmt.Fprintf(tw, "root cause coverage\t%s\n", pct(m.RootCauseCoverage))
	return tw.Flush()
}

func pct(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", *p*100)
}

func num(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", *p)
}

func dur(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return (time.Duration(*p) * time.Second).Round(time.Minute).String()
}

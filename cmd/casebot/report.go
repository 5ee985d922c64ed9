package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

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

// computeMetrics reads the tickets received in the window ending at now.
func computeMetrics(ctx context.Context, tickets triage.Tickets, window string, now time.Time) (triage.Metrics, error) {
	d, err := windowDays(window)
	if err != nil {
		return triage.Metrics{}, err
	}
	acc := triage.NewMetricsAccumulator(window)
	err = tickets.Window(ctx, now.Add(-d), now.Add(time.Nanosecond), func(t triage.Ticket) error {
		acc.Add(t)
		return nil
	})
	if err != nil {
		return triage.Metrics{}, fmt.Errorf("read tickets of the last %s: %w", window, err)
	}
	return acc.Result(), nil
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

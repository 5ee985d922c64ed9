package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

var updateReport = flag.Bool("update", false, "rewrite the report golden files in testdata")

// reportClock stamps the fixture's audit events.
type reportClock struct{ t time.Time }

func (c reportClock) Now() time.Time { return c.t }

// reportEnd is where the golden reports' windows end.
var reportEnd = time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)

// reportStore writes a small store with known lifecycles and returns its
// path: in the last 30 days two refunds from one customer (a repeat), a
// delivery question and a billing one; a feedback ticket before the window.
func reportStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "casebot.db")
	db, err := store.Open(path, store.Options{Clock: reportClock{reportEnd}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	day := func(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }
	tickets := []struct {
		email    string
		typ      triage.Type
		received time.Time
		life     func(tk *triage.Ticket)
	}{
		{"ann@example.com", triage.TypeRefund, day(10, 9), func(tk *triage.Ticket) {
			tk.FirstResponseAt = tk.ReceivedAt.Add(30 * time.Minute)
			tk.DraftSent, tk.DraftRevision, tk.Reviewed = true, 0.1, true
			tk.ResolvedAt, tk.RootCause = tk.ReceivedAt.Add(2*time.Hour), "wrong_size"
			tk.FollowUpSentAt, tk.Rating = tk.ResolvedAt.Add(48*time.Hour), 5
		}},
		{"ann@example.com", triage.TypeRefund, day(12, 9), func(tk *triage.Ticket) {
			tk.FirstResponseAt = tk.ReceivedAt.Add(90 * time.Minute)
			tk.DraftSent, tk.DraftRevision, tk.Reviewed = true, 0.5, true
			tk.Overrides = []triage.Override{{Field: "urgency", From: "low", To: "high", By: "U1"}}
			tk.Escalations = 1
			tk.ResolvedAt = tk.ReceivedAt.Add(26 * time.Hour)
			tk.FollowUpSentAt, tk.Rating = tk.ResolvedAt.Add(48*time.Hour), 2
		}},
		{"bob@example.com", triage.TypeDelivery, day(20, 14), func(tk *triage.Ticket) {
			tk.FirstResponseAt = tk.ReceivedAt.Add(10 * time.Minute)
			tk.Reviewed = true
		}},
		{"cy@example.com", triage.TypeBilling, day(28, 8), func(*triage.Ticket) {}},
		{"dee@example.com", triage.TypeFeedback, time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), func(tk *triage.Ticket) {
			tk.Escalations = 3
		}},
	}
	ctx := context.Background()
	for i, f := range tickets {
		tk := &triage.Ticket{Source: triage.SourceEmail, ExternalID: string(rune('a' + i)), Body: "help",
			ReceivedAt: f.received, Classification: triage.Classification{Type: f.typ}, ClassifiedBy: "model", DraftRevision: -1}
		created, err := db.Create(ctx, tk, triage.Customer{Email: f.email})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Update(ctx, created.ID, func(tk *triage.Ticket) (triage.AuditEvent, error) {
			f.life(tk)
			return triage.AuditEvent{Actor: "U1", Action: "lifecycle"}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func reportGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "report_"+name+".golden")
	if *updateReport {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestReportGolden(t *testing.T) {
	path := reportStore(t)
	at := reportEnd.Format(time.RFC3339)
	tests := []struct {
		name string
		args []string
	}{
		{"table", []string{"report", "--db", path, "--at", at}},
		{"json", []string{"report", "--json", "--db", path, "--at", at}},
		{"7d_json", []string{"report", "--db", path, "--json", "--window", "7d", "--at", at}},
		{"90d_table", []string{"report", "--window", "90d", "--db", path, "--at", at}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCmd(t, "", tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			reportGolden(t, tt.name, []byte(out))
		})
	}
}

// TestReportJSONShape checks the JSON object against SPEC section 7: exactly
// its keys, and null for a figure without data.
func TestReportJSONShape(t *testing.T) {
	path := reportStore(t)
	specKeys := map[string][]string{
		"":                    {"window", "received", "first_response_time", "resolution_time", "escalation_rate", "ai_draft_acceptance_rate", "human_override_rate", "repeat_complaint_rate", "recovery_csat", "root_cause_coverage"},
		"first_response_time": {"p50_s", "p90_s"},
		"resolution_time":     {"p50_s", "p90_s"},
		"recovery_csat":       {"mean", "satisfied_share", "response_rate"},
	}
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	for _, window := range []string{"7d", "30d"} {
		out, _, err := runCmd(t, "", "report", "--json", "--window", window, "--db", path, "--at", reportEnd.Format(time.RFC3339))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(out, "\n") != 1 {
			t.Errorf("%s: not one line: %q", window, out)
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(out), &obj); err != nil {
			t.Fatal(err)
		}
		for parent, want := range specKeys {
			m := obj
			if parent != "" {
				m, _ = obj[parent].(map[string]any)
			}
			if got := keys(m); !reflect.DeepEqual(got, slices.Sorted(slices.Values(want))) {
				t.Errorf("%s %q keys %v, want %v", window, parent, got, want)
			}
		}
		if obj["window"] != window {
			t.Errorf("window %v, want %s", obj["window"], window)
		}
	}
	// The 7-day window holds one untouched ticket: every rate but
	// escalation (0 of 1) and repeat complaints (0 of 1 customer) is null.
	out, _, err := runCmd(t, "", "report", "--json", "--window", "7d", "--db", path, "--at", reportEnd.Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Received         int                `json:"received"`
		FirstResponse    map[string]any     `json:"first_response_time"`
		Escalation       *float64           `json:"escalation_rate"`
		DraftAcceptance  *float64           `json:"ai_draft_acceptance_rate"`
		RootCauseCovered *float64           `json:"root_cause_coverage"`
		CSAT             map[string]*string `json:"recovery_csat"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	if m.Received != 1 || m.FirstResponse["p50_s"] != nil || m.Escalation == nil || *m.Escalation != 0 ||
		m.DraftAcceptance != nil || m.RootCauseCovered != nil || m.CSAT["mean"] != nil {
		t.Errorf("7d report: %s", out)
	}
}

func TestReportErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nothing.db")
	tests := []struct {
		name      string
		args      []string
		usage     bool
		wantInErr []string
	}{
		{"missing store", []string{"report", "--db", missing}, false, []string{"no store at " + missing, "--db FILE"}},
		{"bad window", []string{"report", "--window", "14d", "--db", missing}, true, []string{`window "14d"`}},
		{"bad time", []string{"report", "--at", "yesterday", "--db", missing}, true, []string{`--at "yesterday"`}},
		{"stray argument", []string{"report", "casebot.db"}, true, []string{"no arguments"}},
		{"unknown flag", []string{"report", "--csv"}, true, []string{"csv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, "", tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, errUsage) != tt.usage {
				t.Errorf("error %v: usage error = %v, want %v", err, !tt.usage, tt.usage)
			}
			for _, w := range tt.wantInErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("report created %s: %v", missing, err)
	}
}

// TestReportDefaultDB reads casebot.db in the working directory when --db
// is not given.
func TestReportDefaultDB(t *testing.T) {
	path := reportStore(t)
	t.Chdir(filepath.Dir(path))
	out, _, err := runCmd(t, "", "report", "--json", "--at", reportEnd.Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"received":4`) {
		t.Errorf("default store not read: %s", out)
	}
	t.Chdir(t.TempDir())
	if _, _, err := runCmd(t, "", "report"); err == nil || !strings.Contains(err.Error(), "no store at casebot.db") {
		t.Errorf("without casebot.db: %v", err)
	}
}

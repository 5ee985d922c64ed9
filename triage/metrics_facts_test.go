package triage_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
)

func TestFactsOf(t *testing.T) {
	rec := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	full := triage.Ticket{
		ReceivedAt:     rec,
		CustomerID:     "CU-000007",
		Classification: triage.Classification{Type: triage.TypeBilling},
		// Answered in the same instant: answered, in zero seconds.
		FirstResponseAt: rec,
		ResolvedAt:      rec.Add(90 * time.Minute),
		RootCause:       "double_charge",
		Escalations:     2,
		DraftSent:       true,
		DraftRevision:   0.25,
		Reviewed:        true,
		ClassifiedBy:    "model",
		Overrides:       []triage.Override{{Field: "type"}},
		FollowUpSentAt:  rec.Add(50 * time.Hour),
		Rating:          4,
		FollowUps:       []triage.FollowUp{{Rating: 1}, {}, {Rating: 4}},
	}
	legacy := triage.Ticket{ReceivedAt: rec, DraftRevision: -1, FollowUpSentAt: rec.Add(50 * time.Hour), Rating: 3}
	rules := full
	rules.ClassifiedBy = "rules"
	tests := []struct {
		name string
		t    triage.Ticket
		want triage.MetricFacts
	}{
		{"untouched", triage.Ticket{ReceivedAt: rec, DraftRevision: -1},
			triage.MetricFacts{ReceivedAt: rec, DraftRevision: -1}},
		{"everything", full, triage.MetricFacts{
			ReceivedAt: rec, CustomerID: "CU-000007", Type: triage.TypeBilling,
			Responded: true, FirstResponse: 0, Resolved: true, Resolution: 90 * time.Minute,
			RootCauseLogged: true, Escalated: true, DraftSent: true, DraftRevision: 0.25,
			Reviewed: true, Overridden: true, FollowUpsSent: 3, Ratings: 2, RatingSum: 5, Satisfied: 1,
		}},
		// Written before FollowUps: the current cycle counts.
		{"one follow-up kept the old way", legacy, triage.MetricFacts{ReceivedAt: rec, DraftRevision: -1,
			FollowUpsSent: 1, Ratings: 1, RatingSum: 3}},
		// The keyword rules' reading is no model's: no review, no override.
		{"classified by the rules", rules, triage.MetricFacts{
			ReceivedAt: rec, CustomerID: "CU-000007", Type: triage.TypeBilling,
			Responded: true, FirstResponse: 0, Resolved: true, Resolution: 90 * time.Minute,
			RootCauseLogged: true, Escalated: true, DraftSent: true, DraftRevision: 0.25,
			FollowUpsSent: 3, Ratings: 2, RatingSum: 5, Satisfied: 1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := triage.FactsOf(tt.t); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FactsOf:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestAddFactsZeroFirstResponse checks that an answer in the same instant is
// a first response of 0 s, not a missing one.
func TestAddFactsZeroFirstResponse(t *testing.T) {
	rec := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	a := triage.NewMetricsAccumulator("7d")
	a.AddFacts(triage.FactsOf(triage.Ticket{ReceivedAt: rec, FirstResponseAt: rec}))
	m := a.Result()
	if p := m.FirstResponseTime.P50; p == nil || *p != 0 {
		t.Errorf("first response p50 = %v, want 0", p)
	}
}

// TestRepeatComplaintAgainstReference compares the repeat complaint rate
// with a direct reading of its definition, over random tickets added in
// random order: customers with two tickets of one type at most 30 days
// apart, over customers with tickets.
func TestRepeatComplaintAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for round := range 50 {
		var ts []triage.Ticket
		for range 1 + r.IntN(200) {
			cust := ""
			if r.IntN(10) > 0 {
				cust = fmt.Sprintf("CU-%d", r.IntN(40))
			}
			ts = append(ts, triage.Ticket{
				CustomerID:     cust,
				ReceivedAt:     base.Add(time.Duration(r.Int64N(int64(120 * 24 * time.Hour)))),
				Classification: triage.Classification{Type: triage.Types[r.IntN(3)]},
			})
		}
		customers, repeat := map[string]bool{}, map[string]bool{}
		for i, a := range ts {
			if a.CustomerID == "" {
				continue
			}
			customers[a.CustomerID] = true
			for _, b := range ts[i+1:] {
				d := a.ReceivedAt.Sub(b.ReceivedAt).Abs()
				if b.CustomerID == a.CustomerID && b.Classification.Type == a.Classification.Type && d <= 30*24*time.Hour {
					repeat[a.CustomerID] = true
				}
			}
		}
		got := triage.ComputeMetrics("90d", ts).RepeatComplaint
		switch {
		case len(customers) == 0 && got != nil:
			t.Errorf("round %d: no customers, repeat rate %v", round, *got)
		case len(customers) > 0 && (got == nil || *got != float64(len(repeat))/float64(len(customers))):
			t.Errorf("round %d: repeat rate %v, want %d/%d", round, got, len(repeat), len(customers))
		}
	}
}

package triage

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func at(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }

func f(v float64) *float64 { return &v }

func eq(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 1e-9
}

func show(p *float64) string {
	if p == nil {
		return "null"
	}
	b, _ := json.Marshal(*p)
	return string(b)
}

// The fixed data set: five tickets from three customers, each metric worked
// out by hand in the comments of the table below.
func metricsFixture() []Ticket {
	return []Ticket{
		{ID: "T1", CustomerID: "C1", ReceivedAt: at(0), Classification: Classification{Type: TypeRefund},
			FirstResponseAt: at(1), ResolvedAt: at(10), RootCause: "wrong_item",
			DraftSent: true, DraftRevision: 0, Reviewed: true, ClassifiedBy: "model",
			FollowUpSentAt: at(58), Rating: 5},
		{ID: "T2", CustomerID: "C1", ReceivedAt: at(24 * 10), Classification: Classification{Type: TypeRefund},
			FirstResponseAt: at(24*10 + 2), ResolvedAt: at(24*10 + 20),
			DraftSent: true, DraftRevision: 0.5, Reviewed: true, ClassifiedBy: "model",
			Overrides:      []Override{{Field: "urgency", From: "low", To: "high"}},
			Escalations:    2,
			FollowUpSentAt: at(24*10 + 68), Rating: 2},
		{ID: "T3", CustomerID: "C2", ReceivedAt: at(1), Classification: Classification{Type: TypeDelivery},
			FirstResponseAt: at(4), Reviewed: true, ClassifiedBy: "model", DraftSent: true, DraftRevision: 0.19},
		{ID: "T4", CustomerID: "C2", ReceivedAt: at(24 * 40), Classification: Classification{Type: TypeDelivery},
			Escalations: 1, ResolvedAt: at(24*40 + 30), RootCause: "carrier_delay", FollowUpSentAt: at(24*40 + 78)},
		{ID: "T5", CustomerID: "C3", ReceivedAt: at(2), Classification: Classification{Type: TypeBilling}},
	}
}

func TestMetrics(t *testing.T) {
	m := ComputeMetrics("90d", metricsFixture())
	tests := []struct {
		name      string
		got, want *float64
	}{
		// First responses 1, 2, 3 h: p50 is the 2nd of 3, p90 the 3rd.
		{"first response p50", m.FirstResponseTime.P50, f(2 * 3600)},
		{"first response p90", m.FirstResponseTime.P90, f(3 * 3600)},
		// Resolutions 10, 20, 30 h.
		{"resolution p50", m.ResolutionTime.P50, f(20 * 3600)},
		{"resolution p90", m.ResolutionTime.P90, f(30 * 3600)},
		// T2 (escalated twice, counted once) and T4 of 5 received.
		{"escalation rate", m.EscalationRate, f(2.0 / 5)},
		// Sent drafts: T1 (0), T2 (0.5), T3 (0.19, under 20%): 2 of 3.
		{"draft acceptance", m.DraftAcceptance, f(2.0 / 3)},
		// Reviewed T1, T2, T3; T2 overridden.
		{"human override", m.HumanOverrideRate, f(1.0 / 3)},
		// C1 has two refunds 10 days apart; C2's deliveries are 40 days apart.
		{"repeat complaint", m.RepeatComplaint, f(1.0 / 3)},
		// Ratings 5 and 2 over three follow-ups sent.
		{"csat mean", m.RecoveryCSAT.Mean, f(3.5)},
		{"csat satisfied share", m.RecoveryCSAT.SatisfiedShare, f(0.5)},
		{"csat response rate", m.RecoveryCSAT.ResponseRate, f(2.0 / 3)},
		// Resolved T1, T2, T4; root cause on T1 and T4.
		{"root cause coverage", m.RootCauseCoverage, f(2.0 / 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !eq(tt.got, tt.want) {
				t.Errorf("got %s, want %s", show(tt.got), show(tt.want))
			}
		})
	}
	if m.Received != 5 {
		t.Errorf("received %d, want 5", m.Received)
	}
}

func TestMetricsEdgeCases(t *testing.T) {
	t.Run("no tickets: every figure null", func(t *testing.T) {
		b, err := json.Marshal(ComputeMetrics("7d", nil))
		if err != nil {
			t.Fatal(err)
		}
		want := `{"window":"7d","received":0,"first_response_time":{"p50_s":null,"p90_s":null},` +
			`"resolution_time":{"p50_s":null,"p90_s":null},"escalation_rate":null,"ai_draft_acceptance_rate":null,` +
			`"human_override_rate":null,"repeat_complaint_rate":null,` +
			`"recovery_csat":{"mean":null,"satisfied_share":null,"response_rate":null},"root_cause_coverage":null}`
		if string(b) != want {
			t.Errorf("got  %s\nwant %s", b, want)
		}
	})
	t.Run("follow-ups sent, no answers", func(t *testing.T) {
		m := ComputeMetrics("7d", []Ticket{{ID: "T1", ReceivedAt: at(0), FollowUpSentAt: at(50)}})
		if m.RecoveryCSAT.Mean != nil || m.RecoveryCSAT.SatisfiedShare != nil || !eq(m.RecoveryCSAT.ResponseRate, f(0)) {
			t.Errorf("csat = %s %s %s, want null null 0", show(m.RecoveryCSAT.Mean),
				show(m.RecoveryCSAT.SatisfiedShare), show(m.RecoveryCSAT.ResponseRate))
		}
	})
	t.Run("draft edited by one character is accepted", func(t *testing.T) {
		draft := "Thanks for your patience, your refund is on its way."
		sent := "Thanks for your patience, your refund is on its way!"
		d := NormalizedEditDistance(draft, sent)
		if !eq(&d, f(1.0/float64(len([]rune(draft))))) {
			t.Fatalf("distance %v", d)
		}
		m := ComputeMetrics("7d", []Ticket{{ID: "T1", ReceivedAt: at(0), DraftSent: true, DraftRevision: d}})
		if !eq(m.DraftAcceptance, f(1)) {
			t.Errorf("acceptance %s, want 1", show(m.DraftAcceptance))
		}
	})
	t.Run("a revision of exactly 20% is not accepted", func(t *testing.T) {
		m := ComputeMetrics("7d", []Ticket{{ID: "T1", ReceivedAt: at(0), DraftSent: true, DraftRevision: 0.2}})
		if !eq(m.DraftAcceptance, f(0)) {
			t.Errorf("acceptance %s, want 0", show(m.DraftAcceptance))
		}
	})
	t.Run("repeat at exactly 30 days counts, different types do not", func(t *testing.T) {
		m := ComputeMetrics("90d", []Ticket{
			{ID: "T1", CustomerID: "C1", ReceivedAt: at(0), Classification: Classification{Type: TypeRefund}},
			{ID: "T2", CustomerID: "C1", ReceivedAt: at(24 * 30), Classification: Classification{Type: TypeRefund}},
			{ID: "T3", CustomerID: "C2", ReceivedAt: at(0), Classification: Classification{Type: TypeRefund}},
			{ID: "T4", CustomerID: "C2", ReceivedAt: at(1), Classification: Classification{Type: TypeBilling}},
		})
		if !eq(m.RepeatComplaint, f(0.5)) {
			t.Errorf("repeat %s, want 0.5", show(m.RepeatComplaint))
		}
	})
	t.Run("single value percentiles", func(t *testing.T) {
		m := ComputeMetrics("7d", []Ticket{{ID: "T1", ReceivedAt: at(0), FirstResponseAt: at(0.5)}})
		if !eq(m.FirstResponseTime.P50, f(1800)) || !eq(m.FirstResponseTime.P90, f(1800)) {
			t.Errorf("p50 %s p90 %s", show(m.FirstResponseTime.P50), show(m.FirstResponseTime.P90))
		}
	})
}

func TestNormalizedEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want float64
	}{
		{"", "", 0},
		{"abc", "", 1},
		{"kitten", "sitting", 3.0 / 7},
		{"héllo", "hello", 1.0 / 5},
		{"same", "same", 0},
	}
	for _, tt := range tests {
		if got := NormalizedEditDistance(tt.a, tt.b); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("NormalizedEditDistance(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

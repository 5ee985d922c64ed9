package triage

import (
	"cmp"
	"math"
	"slices"
	"time"
	"unicode/utf8"
)

// AcceptedRevision is the largest normalised edit distance at which a sent
// draft still counts as accepted (SPEC section 7: "under 20%").
const AcceptedRevision = 0.2

// Percentiles holds p50 and p90 of a duration in seconds; nil when no ticket
// in the window has the figure.
type Percentiles struct {
	P50 *float64 `json:"p50_s"`
	P90 *float64 `json:"p90_s"`
}

// CSAT is recovery satisfaction from follow-up ratings.
type CSAT struct {
	Mean           *float64 `json:"mean"`
	SatisfiedShare *float64 `json:"satisfied_share"`
	ResponseRate   *float64 `json:"response_rate"`
}

// Metrics are the eight service metrics of SPEC section 7 over the tickets
// received in one window. A figure with no data is nil (JSON null).
type Metrics struct {
	Window            string      `json:"window"`
	Received          int         `json:"received"`
	FirstResponseTime Percentiles `json:"first_response_time"`
	ResolutionTime    Percentiles `json:"resolution_time"`
	EscalationRate    *float64    `json:"escalation_rate"`
	DraftAcceptance   *float64    `json:"ai_draft_acceptance_rate"`
	HumanOverrideRate *float64    `json:"human_override_rate"`
	RepeatComplaint   *float64    `json:"repeat_complaint_rate"`
	RecoveryCSAT      CSAT        `json:"recovery_csat"`
	RootCauseCoverage *float64    `json:"root_cause_coverage"`
}

// MetricsAccumulator computes Metrics in one pass over a window's tickets,
// holding only what the percentiles and the repeat rule need: for the repeat
// rule a small record per ticket rather than maps per customer, so a window
// of 100,000 tickets costs a few megabytes and one sort.
type MetricsAccumulator struct {
	window                        string
	received                      int
	firstResponse, resolution     []float64
	escalated                     int
	draftsSent, draftsAccepted    int
	reviewed, overridden          int
	resolved, withRootCause       int
	followUps, ratings, satisfied int
	ratingSum                     int
	// customers numbers the customers seen; types the issue types.
	customers  map[string]int32
	types      []Type
	complaints []complaint
}

// complaint is one ticket of a customer, for the repeat rule.
type complaint struct {
	customer, typ int32
	at            time.Time
}

// NewMetricsAccumulator starts an accumulator for a window named like "30d".
func NewMetricsAccumulator(window string) *MetricsAccumulator {
	return &MetricsAccumulator{window: window, customers: map[string]int32{}}
}

// Add counts one ticket received in the window.
func (a *MetricsAccumulator) Add(t Ticket) { a.AddFacts(FactsOf(t)) }

// Result returns the metrics of every ticket added so far.
func (a *MetricsAccumulator) Result() Metrics {
	m := Metrics{Window: a.window, Received: a.received}
	m.FirstResponseTime = percentiles(a.firstResponse)
	m.ResolutionTime = percentiles(a.resolution)
	m.EscalationRate = ratio(a.escalated, a.received)
	m.DraftAcceptance = ratio(a.draftsAccepted, a.draftsSent)
	m.HumanOverrideRate = ratio(a.overridden, a.reviewed)
	m.RootCauseCoverage = ratio(a.withRootCause, a.resolved)
	m.RepeatComplaint = ratio(a.repeatCustomers(), len(a.customers))
	if a.ratings > 0 {
		m.RecoveryCSAT.Mean = ptr(float64(a.ratingSum) / float64(a.ratings))
	}
	m.RecoveryCSAT.SatisfiedShare = ratio(a.satisfied, a.ratings)
	m.RecoveryCSAT.ResponseRate = ratio(a.ratings, a.followUps)
	return m
}

// addComplaint records a ticket of a customer for the repeat rule.
func (a *MetricsAccumulator) addComplaint(customerID string, typ Type, at time.Time) {
	c, ok := a.customers[customerID]
	if !ok {
		c = int32(len(a.customers))
		a.customers[customerID] = c
	}
	// A handful of types: a scan beats hashing.
	ti := slices.Index(a.types, typ)
	if ti < 0 {
		ti = len(a.types)
		a.types = append(a.types, typ)
	}
	a.complaints = append(a.complaints, complaint{customer: c, typ: int32(ti), at: at})
}

// repeatCustomers counts customers with two tickets of the same type received
// within 30 days of each other. Sorted by customer, type and time, such a
// pair is always two neighbours.
func (a *MetricsAccumulator) repeatCustomers() int {
	const repeatWindow = 30 * 24 * time.Hour
	cs := a.complaints
	slices.SortFunc(cs, func(x, y complaint) int {
		if c := cmp.Compare(x.customer, y.customer); c != 0 {
			return c
		}
		if c := cmp.Compare(x.typ, y.typ); c != 0 {
			return c
		}
		return x.at.Compare(y.at)
	})
	n := 0
	last := int32(-1) // the last customer counted
	for i := 1; i < len(cs); i++ {
		prev, cur := cs[i-1], cs[i]
		if cur.customer != last && cur.customer == prev.customer && cur.typ == prev.typ &&
			cur.at.Sub(prev.at) <= repeatWindow {
			n++
			last = cur.customer
		}
	}
	return n
}

// ComputeMetrics is the one-shot form of MetricsAccumulator.
func ComputeMetrics(window string, tickets []Ticket) Metrics {
	a := NewMetricsAccumulator(window)
	for _, t := range tickets {
		a.Add(t)
	}
	return a.Result()
}

// percentiles uses the nearest-rank method: p is the smallest value with at
// least p% of values at or below it, so every figure is one that happened.
func percentiles(vs []float64) Percentiles {
	if len(vs) == 0 {
		return Percentiles{}
	}
	slices.Sort(vs)
	rank := func(p float64) *float64 {
		i := int(math.Ceil(p/100*float64(len(vs)))) - 1
		return ptr(vs[max(i, 0)])
	}
	return Percentiles{P50: rank(50), P90: rank(90)}
}

func ratio(num, den int) *float64 {
	if den == 0 {
		return nil
	}
	return ptr(float64(num) / float64(den))
}

func ptr(f float64) *float64 { return &f }

// NormalizedEditDistance is the edit distance between a and b in characters
// (insertions, deletions, substitutions and swaps of neighbours, the same
// distance the keyword classifier's typo tolerance uses) divided by the
// longer length: 0 for equal texts, 1 for nothing in common. Two empty texts
// are equal.
func NormalizedEditDistance(a, b string) float64 {
	la, lb := utf8.RuneCountInString(a), utf8.RuneCountInString(b)
	if la == 0 && lb == 0 {
		return 0
	}
	return float64(osaDistance(a, b)) / float64(max(la, lb))
}

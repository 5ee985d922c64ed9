package triage

import (
	"cmp"
	"slices"
	"time"
)

// RootCauseOf is the root cause a ticket counts towards in patterns: the
// confirmed RootCause when an agent logged one at resolution, otherwise the
// classifier's RootCauseGuess; empty when neither is known.
func RootCauseOf(t Ticket) string {
	if t.RootCause != "" {
		return t.RootCause
	}
	return t.Classification.RootCauseGuess
}

// TopTypes is how many issue types the weekly report lists.
const TopTypes = 5

// PatternMin is how many tickets of one root cause make a pattern: the weekly
// report lists root causes seen this often in its week, and a pattern alert is
// due when this many arrive within PatternSpan.
const PatternMin = 3

// PatternSpan is the sliding window of pattern alerts.
const PatternSpan = 7 * 24 * time.Hour

// WeeklyReport is the content of the Monday pattern thread (SPEC section 6)
// for one week, computed from the tickets received in it and in the week
// before. Ticket counts, like the metrics of SPEC section 7, are over tickets
// received in the week: Resolved is how many of this week's tickets have been
// resolved so far, not how many tickets were resolved during the week.
type WeeklyReport struct {
	// WeekStart and WeekEnd bound the week, [WeekStart, WeekEnd), in the
	// report's time zone.
	WeekStart time.Time `json:"week_start"`
	WeekEnd   time.Time `json:"week_end"`

	Received  int `json:"received"`
	Resolved  int `json:"resolved"`
	Escalated int `json:"escalated"`
	// FirstResponseP50 is the median first response time in seconds; nil
	// when no ticket of the week has been answered.
	FirstResponseP50 *float64 `json:"first_response_p50_s"`

	// TopTypes are the week's most frequent issue types, at most TopTypes,
	// by count then name.
	TopTypes []TypeCount `json:"top_types"`
	// RootCauses are every root cause of at least PatternMin of the week's
	// tickets, by count then name.
	RootCauses []RootCauseCount `json:"root_causes"`

	Metrics      Metrics `json:"metrics"`
	PriorMetrics Metrics `json:"prior_metrics"`

	// Days are the seven days of the week, for the chart.
	Days []DayStats `json:"days"`
}

// TypeCount is one issue type's tickets this week against the prior week.
type TypeCount struct {
	Type  Type `json:"type"`
	Count int  `json:"count"`
	Prior int  `json:"prior"`
	// Change is Count − Prior.
	Change int `json:"change"`
	// ChangePct is Change as a percentage of Prior; nil when the type is
	// New (no tickets the prior week), which has no percentage.
	ChangePct *float64 `json:"change_pct"`
	New       bool     `json:"new"`
}

// RootCauseCount is one root cause's tickets this week.
type RootCauseCount struct {
	RootCause string `json:"root_cause"`
	Count     int    `json:"count"`
	// Confirmed is how many of them have the root cause confirmed at
	// resolution rather than guessed by the classifier.
	Confirmed int `json:"confirmed"`
	// TicketIDs are the tickets, oldest first.
	TicketIDs []string `json:"ticket_ids"`
}

// DayStats is one day of the week for the chart.
type DayStats struct {
	// Date is the day's midnight in the report's time zone.
	Date time.Time `json:"date"`
	// ByType counts the day's tickets by issue type; types without tickets
	// are absent.
	ByType map[Type]int `json:"by_type"`
	// FirstResponseP50 is the median first response time, in seconds, of
	// the day's answered tickets; nil when none was answered.
	FirstResponseP50 *float64 `json:"first_response_p50_s"`
}

// BuildWeeklyReport builds the report of the week starting at weekStart
// (normally a Monday midnight) in loc. Days are calendar days in loc, so a
// week with a daylight saving change still has seven of them. this and prior
// may hold more tickets than their weeks: a ticket counts only in the week it
// was received, this week [weekStart, +7 days) or the prior week [−7 days,
// weekStart). Tickets not yet classified (empty type) are left out of the
// type counts, and tickets with no root cause out of the root causes.
func BuildWeeklyReport(this, prior []Ticket, weekStart time.Time, loc *time.Location) WeeklyReport {
	start := weekStart.In(loc)
	end := start.AddDate(0, 0, 7)
	priorStart := start.AddDate(0, 0, -7)
	cur := received(this, start, end)
	prev := received(prior, priorStart, start)

	r := WeeklyReport{
		WeekStart:    start,
		WeekEnd:      end,
		Metrics:      ComputeMetrics("7d", cur),
		PriorMetrics: ComputeMetrics("7d", prev),
	}
	r.Received = r.Metrics.Received
	r.FirstResponseP50 = r.Metrics.FirstResponseTime.P50
	for _, t := range cur {
		if !t.ResolvedAt.IsZero() {
			r.Resolved++
		}
		if t.Escalations > 0 {
			r.Escalated++
		}
	}
	r.TopTypes = topTypes(cur, prev)
	r.RootCauses = recurringRootCauses(cur)
	r.Days = days(cur, start)
	return r
}

// received returns the tickets received in [from, to), oldest first (ties by
// ID), so everything derived from them is in a stable order.
func received(ts []Ticket, from, to time.Time) []Ticket {
	var out []Ticket
	for _, t := range ts {
		if !t.ReceivedAt.Before(from) && t.ReceivedAt.Before(to) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, byReceived)
	return out
}

func byReceived(a, b Ticket) int {
	if c := a.ReceivedAt.Compare(b.ReceivedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

func countTypes(ts []Ticket) map[Type]int {
	n := map[Type]int{}
	for _, t := range ts {
		if t.Classification.Type != "" {
			n[t.Classification.Type]++
		}
	}
	return n
}

func topTypes(cur, prev []Ticket) []TypeCount {
	now, before := countTypes(cur), countTypes(prev)
	out := make([]TypeCount, 0, len(now))
	for typ, n := range now {
		tc := TypeCount{Type: typ, Count: n, Prior: before[typ], Change: n - before[typ]}
		if tc.Prior == 0 {
			tc.New = true
		} else {
			tc.ChangePct = ptr(float64(tc.Change) / float64(tc.Prior) * 100)
		}
		out = append(out, tc)
	}
	slices.SortFunc(out, func(a, b TypeCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Type, b.Type)
	})
	return out[:min(len(out), TopTypes)]
}

func recurringRootCauses(cur []Ticket) []RootCauseCount {
	byCause := map[string]*RootCauseCount{}
	for _, t := range cur {
		rc := RootCauseOf(t)
		if rc == "" {
			continue
		}
		c := byCause[rc]
		if c == nil {
			c = &RootCauseCount{RootCause: rc}
			byCause[rc] = c
		}
		c.Count++
		if t.RootCause != "" {
			c.Confirmed++
		}
		c.TicketIDs = append(c.TicketIDs, t.ID)
	}
	var out []RootCauseCount
	for _, c := range byCause {
		if c.Count >= PatternMin {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b RootCauseCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.RootCause, b.RootCause)
	})
	return out
}

func days(cur []Ticket, start time.Time) []DayStats {
	out := make([]DayStats, 7)
	responses := make([][]float64, 7)
	for i := range out {
		out[i] = DayStats{Date: start.AddDate(0, 0, i), ByType: map[Type]int{}}
	}
	for _, t := range cur {
		// cur is sorted, but days are short of 24 h around a daylight saving
		// change, so find the day by its bounds rather than by division.
		i := 6
		for i > 0 && t.ReceivedAt.Before(out[i].Date) {
			i--
		}
		if t.Classification.Type != "" {
			out[i].ByType[t.Classification.Type]++
		}
		if !t.FirstResponseAt.IsZero() {
			responses[i] = append(responses[i], t.FirstResponseAt.Sub(t.ReceivedAt).Seconds())
		}
	}
	for i := range out {
		out[i].FirstResponseP50 = percentiles(responses[i]).P50
	}
	return out
}

// PatternLookback is how far back PatternAlerts needs tickets: every ticket
// received in (now − PatternLookback, now] must be passed for the alerts due
// at now to be found.
const PatternLookback = 2 * PatternSpan

// PatternAlert says that a root cause has reached PatternMin tickets within
// PatternSpan (SPEC section 6).
type PatternAlert struct {
	RootCause string `json:"root_cause"`
	// TicketIDs are the tickets of the run, oldest first: the PatternMin
	// that started it and any that have arrived since while it lasted.
	TicketIDs []string `json:"ticket_ids"`
	// Start is when the run's first ticket was received; At when the ticket
	// that made it a pattern was.
	Start time.Time `json:"start"`
	At    time.Time `json:"at"`
	// Key identifies the run, for sending its alert once (AlertKey).
	Key string `json:"key"`
}

// AlertKey identifies a run of a root cause by the root cause and the time
// its first ticket was received.
func AlertKey(rootCause string, start time.Time) string {
	return rootCause + "@" + start.UTC().Format(time.RFC3339Nano)
}

// PatternAlerts returns the pattern alerts due at now that alreadySent does
// not know of, oldest first.
//
// The rule, per root cause (RootCauseOf), with its tickets in order of
// receipt t₁, t₂, …: let c(x) be the number of them received in (x − 7 days,
// x]. A run is a stretch of time during which c ≥ 3; its alert is due when it
// begins, which is at a ticket tᵢ with tᵢ − tᵢ₋₂ < 7 days (it makes three)
// that is not already inside a run, i.e. i < 4 or tᵢ − tᵢ₋₃ > 7 days (c was
// below 3 just before it; at exactly 7 days tᵢ₋₃ leaves the window as tᵢ
// enters, so c never dropped). So the 3rd ticket fires,
// a 4th and 5th within the run do not, and the root cause fires again only
// once c has dropped below 3 and risen to 3 again. The run's Key is
// AlertKey(root cause, received time of tᵢ₋₂), which depends only on the
// tickets of the 7 days before tᵢ, so every call at any later now computes
// the same key for the same run.
//
// Alerts are due for runs that began in (now − 7 days, now]; tickets must
// hold every ticket received in (now − PatternLookback, now], and older ones
// change nothing. Tickets received after now are left out. A run that began earlier was due then: a bot that was down for
// more than a week does not post stale alerts. Root causes are the current
// ones, so a guess corrected at resolution can end one run and start another.
func PatternAlerts(tickets []Ticket, now time.Time, alreadySent func(rootCause string, windowStart time.Time) bool) []PatternAlert {
	byCause := map[string][]Ticket{}
	for _, t := range tickets {
		if t.ReceivedAt.After(now) {
			continue
		}
		if rc := RootCauseOf(t); rc != "" {
			byCause[rc] = append(byCause[rc], t)
		}
	}
	var out []PatternAlert
	for rc, ts := range byCause {
		slices.SortFunc(ts, byReceived)
		for i := PatternMin - 1; i < len(ts); i++ {
			if !runStarts(ts, i) || !ts[i].ReceivedAt.After(now.Add(-PatternSpan)) {
				continue
			}
			first := ts[i-(PatternMin-1)]
			if alreadySent(rc, first.ReceivedAt) {
				continue
			}
			a := PatternAlert{RootCause: rc, Start: first.ReceivedAt, At: ts[i].ReceivedAt, Key: AlertKey(rc, first.ReceivedAt)}
			for j := i - (PatternMin - 1); j < len(ts) && (j <= i || inRun(ts, j)); j++ {
				a.TicketIDs = append(a.TicketIDs, ts[j].ID)
			}
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b PatternAlert) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return cmp.Compare(a.RootCause, b.RootCause)
	})
	return out
}

// makesPattern reports whether ts[i] and the PatternMin−1 tickets before it
// fall within PatternSpan: c ≥ PatternMin at ts[i].
func makesPattern(ts []Ticket, i int) bool {
	j := i - (PatternMin - 1)
	return j >= 0 && ts[i].ReceivedAt.Sub(ts[j].ReceivedAt) < PatternSpan
}

// inRun reports whether a run was already going just before ts[i] arrived:
// PatternMin tickets before it were still within PatternSpan of that instant.
func inRun(ts []Ticket, i int) bool {
	j := i - PatternMin
	return j >= 0 && ts[i].ReceivedAt.Sub(ts[j].ReceivedAt) <= PatternSpan
}

// runStarts reports whether ts[i] begins a run.
func runStarts(ts []Ticket, i int) bool { return makesPattern(ts, i) && !inRun(ts, i) }

package triage_test

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
)

// wkSpec is one ticket of the simulated weeks: received at day and clock
// time of week w (local), with what happened to it.
type wkSpec struct {
	week, day, hour, minute int
	typ                     triage.Type
	guess, cause            string
	respMin                 int // minutes to first response; 0 for none
	escalated, resolved     bool
}

// wkLoc is a zone whose 2026 spring change (Sunday 8 March) falls on the last
// day of week 0.
var wkLoc = func() *time.Location {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	return loc
}()

// wkStart is the Monday midnight of simulated week w.
func wkStart(w int) time.Time { return time.Date(2026, 3, 2+7*w, 0, 0, 0, 0, wkLoc) }

func wkTickets(specs []wkSpec) []triage.Ticket {
	var out []triage.Ticket
	for i, s := range specs {
		d := wkStart(s.week)
		rec := time.Date(d.Year(), d.Month(), d.Day()+s.day, s.hour, s.minute, 0, 0, wkLoc)
		t := triage.Ticket{
			ID:             fmt.Sprintf("CB-%06d", i+1),
			CustomerID:     fmt.Sprintf("CU-%06d", i+1),
			ReceivedAt:     rec,
			Classification: triage.Classification{Type: s.typ, RootCauseGuess: s.guess},
			RootCause:      s.cause,
			DraftRevision:  -1,
		}
		if s.respMin > 0 {
			t.FirstResponseAt = rec.Add(time.Duration(s.respMin) * time.Minute)
		}
		if s.escalated {
			t.Escalations = 1
		}
		if s.resolved {
			t.ResolvedAt = rec.Add(24 * time.Hour)
		}
		out = append(out, t)
	}
	return out
}

// wkMany is n tickets of one type in week w, one a day from Monday noon.
func wkMany(w int, typ triage.Type, guess string, n int) []wkSpec {
	out := make([]wkSpec, n)
	for i := range out {
		out[i] = wkSpec{week: w, day: i % 7, hour: 12, minute: i, typ: typ, guess: guess}
	}
	return out
}

// wkThreeWeeks: week 0 refund 2, delivery 4 (around the clock change);
// week 1 delivery 4, refund 4, billing 3, account, feedback and other 1 each;
// week 2 refund 6, delivery 2, product_defect 3, fully specified. One ticket
// after week 2 ends must count nowhere.
func wkThreeWeeks() []triage.Ticket {
	specs := []wkSpec{
		{week: 0, day: 0, hour: 0, typ: triage.TypeDelivery},
		{week: 0, day: 2, hour: 12, typ: triage.TypeRefund},
		{week: 0, day: 2, hour: 13, typ: triage.TypeRefund},
		{week: 0, day: 5, hour: 23, minute: 59, typ: triage.TypeDelivery},
		{week: 0, day: 6, hour: 0, minute: 30, typ: triage.TypeDelivery},  // Sunday, still EST
		{week: 0, day: 6, hour: 23, minute: 30, typ: triage.TypeDelivery}, // Sunday, EDT
	}
	specs = append(specs, wkMany(1, triage.TypeDelivery, "carrier_delay", 4)...)
	specs = append(specs, wkMany(1, triage.TypeRefund, "wrong_size", 4)...)
	specs = append(specs, wkMany(1, triage.TypeBilling, "", 3)...)
	specs = append(specs, wkMany(1, triage.TypeAccount, "", 1)...)
	specs = append(specs, wkMany(1, triage.TypeFeedback, "", 1)...)
	specs = append(specs, wkMany(1, triage.TypeOther, "", 1)...)
	specs = append(specs,
		wkSpec{week: 2, day: 0, hour: 9, typ: triage.TypeRefund, guess: "wrong_size", cause: "wrong_size", respMin: 30, resolved: true},
		wkSpec{week: 2, day: 0, hour: 10, typ: triage.TypeRefund, guess: "wrong_size", respMin: 60},
		wkSpec{week: 2, day: 1, hour: 9, typ: triage.TypeRefund, guess: "wrong_size", respMin: 90, escalated: true},
		wkSpec{week: 2, day: 2, hour: 9, typ: triage.TypeRefund, guess: "wrong_size"},
		wkSpec{week: 2, day: 3, hour: 9, typ: triage.TypeRefund, guess: "damaged", respMin: 10},
		wkSpec{week: 2, day: 4, hour: 9, typ: triage.TypeRefund, respMin: 20},
		wkSpec{week: 2, day: 1, hour: 11, typ: triage.TypeDelivery, guess: "carrier_delay", respMin: 40, resolved: true},
		wkSpec{week: 2, day: 5, hour: 9, typ: triage.TypeDelivery, guess: "carrier_delay", cause: "carrier_delay", respMin: 50, escalated: true, resolved: true},
		wkSpec{week: 2, day: 6, hour: 9, typ: triage.TypeProductDefect, guess: "damaged", respMin: 5},
		wkSpec{week: 2, day: 6, hour: 10, typ: triage.TypeProductDefect, guess: "damaged", cause: "supplier_batch", respMin: 15, resolved: true},
		wkSpec{week: 2, day: 6, hour: 23, minute: 30, typ: triage.TypeProductDefect, guess: "damaged", respMin: 25},
		wkSpec{week: 3, day: 0, hour: 0, typ: triage.TypeRefund, guess: "wrong_size"},
	)
	return wkTickets(specs)
}

func wkPct(v float64) *float64 { return &v }

func wkSecs(min float64) *float64 { return wkPct(min * 60) }

func wkShow(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func TestWeeklyReportTopTypes(t *testing.T) {
	all := wkThreeWeeks()
	tests := []struct {
		week int
		want []triage.TypeCount
	}{
		{0, []triage.TypeCount{
			{Type: triage.TypeDelivery, Count: 4, Change: 4, New: true},
			{Type: triage.TypeRefund, Count: 2, Change: 2, New: true},
		}},
		{1, []triage.TypeCount{
			{Type: triage.TypeDelivery, Count: 4, Prior: 4, Change: 0, ChangePct: wkPct(0)},
			{Type: triage.TypeRefund, Count: 4, Prior: 2, Change: 2, ChangePct: wkPct(100)},
			{Type: triage.TypeBilling, Count: 3, Change: 3, New: true},
			{Type: triage.TypeAccount, Count: 1, Change: 1, New: true},
			{Type: triage.TypeFeedback, Count: 1, Change: 1, New: true},
		}},
		{2, []triage.TypeCount{
			{Type: triage.TypeRefund, Count: 6, Prior: 4, Change: 2, ChangePct: wkPct(50)},
			{Type: triage.TypeProductDefect, Count: 3, Change: 3, New: true},
			{Type: triage.TypeDelivery, Count: 2, Prior: 4, Change: -2, ChangePct: wkPct(-50)},
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("week", tt.week), func(t *testing.T) {
			r := triage.BuildWeeklyReport(all, all, wkStart(tt.week), wkLoc)
			if !reflect.DeepEqual(r.TopTypes, tt.want) {
				t.Errorf("TopTypes:\n got %+v\nwant %+v", r.TopTypes, tt.want)
			}
		})
	}
}

func TestWeeklyReportWeek2(t *testing.T) {
	all := wkThreeWeeks()
	r := triage.BuildWeeklyReport(all, all, wkStart(2), wkLoc)

	if !r.WeekStart.Equal(wkStart(2)) || !r.WeekEnd.Equal(wkStart(3)) {
		t.Errorf("week = [%v, %v), want [%v, %v)", r.WeekStart, r.WeekEnd, wkStart(2), wkStart(3))
	}
	if r.Received != 11 || r.Resolved != 4 || r.Escalated != 2 {
		t.Errorf("received, resolved, escalated = %d, %d, %d; want 11, 4, 2", r.Received, r.Resolved, r.Escalated)
	}
	// Answered in 5, 10, 15, 20, 25, 30, 40, 50, 60, 90 minutes: the 5th.
	if !reflect.DeepEqual(r.FirstResponseP50, wkSecs(25)) {
		t.Errorf("first response p50 = %s s, want 1500", wkShow(r.FirstResponseP50))
	}
	wantCauses := []triage.RootCauseCount{
		{RootCause: "wrong_size", Count: 4, Confirmed: 1, TicketIDs: []string{"CB-000021", "CB-000022", "CB-000023", "CB-000024"}},
		{RootCause: "damaged", Count: 3, Confirmed: 0, TicketIDs: []string{"CB-000025", "CB-000029", "CB-000031"}},
	}
	if !reflect.DeepEqual(r.RootCauses, wantCauses) {
		t.Errorf("RootCauses:\n got %+v\nwant %+v", r.RootCauses, wantCauses)
	}
	if r.Metrics.Received != 11 || r.PriorMetrics.Received != 14 || r.Metrics.Window != "7d" {
		t.Errorf("metrics received %d (%s), prior %d; want 11 (7d), 14", r.Metrics.Received, r.Metrics.Window, r.PriorMetrics.Received)
	}
	if e := r.Metrics.EscalationRate; e == nil || *e != 2.0/11 {
		t.Errorf("escalation rate = %s, want 2/11", wkShow(e))
	}

	wantDays := []struct {
		byType map[triage.Type]int
		p50    *float64
	}{
		{map[triage.Type]int{triage.TypeRefund: 2}, wkSecs(30)},
		{map[triage.Type]int{triage.TypeRefund: 1, triage.TypeDelivery: 1}, wkSecs(40)},
		{map[triage.Type]int{triage.TypeRefund: 1}, nil},
		{map[triage.Type]int{triage.TypeRefund: 1}, wkSecs(10)},
		{map[triage.Type]int{triage.TypeRefund: 1}, wkSecs(20)},
		{map[triage.Type]int{triage.TypeDelivery: 1}, wkSecs(50)},
		{map[triage.Type]int{triage.TypeProductDefect: 3}, wkSecs(15)},
	}
	if len(r.Days) != len(wantDays) {
		t.Fatalf("%d days, want 7", len(r.Days))
	}
	for i, w := range wantDays {
		d := r.Days[i]
		if want := wkStart(2).AddDate(0, 0, i); !d.Date.Equal(want) {
			t.Errorf("day %d date %v, want %v", i, d.Date, want)
		}
		if !reflect.DeepEqual(d.ByType, w.byType) {
			t.Errorf("day %d by type %v, want %v", i, d.ByType, w.byType)
		}
		if !reflect.DeepEqual(d.FirstResponseP50, w.p50) {
			t.Errorf("day %d first response p50 %s, want %s", i, wkShow(d.FirstResponseP50), wkShow(w.p50))
		}
	}
}

// TestWeeklyReportDaylightSaving puts tickets on both sides of the clock
// change on the 23-hour Sunday of week 0.
func TestWeeklyReportDaylightSaving(t *testing.T) {
	r := triage.BuildWeeklyReport(wkThreeWeeks(), nil, wkStart(0), wkLoc)
	want := []map[triage.Type]int{
		{triage.TypeDelivery: 1}, {}, {triage.TypeRefund: 2}, {}, {}, {triage.TypeDelivery: 1}, {triage.TypeDelivery: 2},
	}
	for i, w := range want {
		if !reflect.DeepEqual(r.Days[i].ByType, w) {
			t.Errorf("day %d (%v) by type %v, want %v", i, r.Days[i].Date, r.Days[i].ByType, w)
		}
	}
	if got := r.Days[6].Date; !got.Equal(time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC)) {
		t.Errorf("Sunday starts %v, want 05:00 UTC (midnight EST)", got)
	}
	if got := r.WeekEnd; !got.Equal(time.Date(2026, 3, 9, 4, 0, 0, 0, time.UTC)) {
		t.Errorf("week ends %v, want 04:00 UTC (midnight EDT)", got)
	}
	if r.Received != 6 || r.PriorMetrics.Received != 0 || r.RootCauses != nil {
		t.Errorf("received %d, prior %d, root causes %v; want 6, 0, none", r.Received, r.PriorMetrics.Received, r.RootCauses)
	}
}

func TestWeeklyReportEmpty(t *testing.T) {
	r := triage.BuildWeeklyReport(nil, nil, wkStart(0), wkLoc)
	if r.Received != 0 || r.FirstResponseP50 != nil || len(r.TopTypes) != 0 || len(r.Days) != 7 {
		t.Errorf("empty week: %+v", r)
	}
	for _, d := range r.Days {
		if len(d.ByType) != 0 || d.FirstResponseP50 != nil {
			t.Errorf("empty day %+v", d)
		}
	}
}

// ptDay is day d (fractional) of the alert tests.
func ptDay(d float64) time.Time {
	return time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC).Add(time.Duration(d * float64(24*time.Hour)))
}

// ptTickets makes one ticket per arrival: "X@1.5" is root cause guess X on
// day 1.5, "X>Y@2" guess X confirmed as Y on day 2.
func ptTickets(arrivals ...string) []triage.Ticket {
	var out []triage.Ticket
	for i, a := range arrivals {
		at := strings.LastIndex(a, "@")
		day, err := strconv.ParseFloat(a[at+1:], 64)
		if err != nil {
			panic(a)
		}
		guess, cause, _ := strings.Cut(a[:at], ">")
		out = append(out, triage.Ticket{
			ID:             fmt.Sprintf("T%d", i+1),
			ReceivedAt:     ptDay(day),
			Classification: triage.Classification{RootCauseGuess: guess},
			RootCause:      cause,
		})
	}
	return out
}

// ptReplay calls PatternAlerts as each ticket arrives, as the scheduler
// would, remembering what it sent; it returns the keys sent at each arrival.
func ptReplay(ts []triage.Ticket) [][]string {
	sent := map[string]bool{}
	var out [][]string
	for i := range ts {
		var keys []string
		for _, a := range triage.PatternAlerts(ts[:i+1], ts[i].ReceivedAt, func(rc string, start time.Time) bool {
			return sent[triage.AlertKey(rc, start)]
		}) {
			sent[a.Key] = true
			keys = append(keys, a.Key)
		}
		out = append(out, keys)
	}
	return out
}

func TestPatternAlertsReplay(t *testing.T) {
	key := func(rc string, d float64) string { return triage.AlertKey(rc, ptDay(d)) }
	tests := []struct {
		name     string
		arrivals []string
		want     [][]string // keys sent at each arrival
	}{
		{"third fires, fourth and fifth do not",
			[]string{"X@0", "X@1", "X@2", "X@3", "X@4"},
			[][]string{nil, nil, {key("X", 0)}, nil, nil}},
		{"a new run after a quiet week fires again",
			[]string{"X@0", "X@1", "X@2", "X@12", "X@13", "X@14", "X@15"},
			[][]string{nil, nil, {key("X", 0)}, nil, nil, {key("X", 12)}, nil}},
		{"a steady stream is one run",
			[]string{"X@0", "X@2", "X@4", "X@6", "X@8", "X@10", "X@12", "X@14"},
			[][]string{nil, nil, {key("X", 0)}, nil, nil, nil, nil, nil}},
		{"spread over more than 7 days never fires",
			[]string{"X@0", "X@4", "X@8", "X@12", "X@16"},
			[][]string{nil, nil, nil, nil, nil}},
		{"three spanning exactly 7 days are not within 7 days",
			[]string{"X@0", "X@3", "X@7"},
			[][]string{nil, nil, nil}},
		{"a ticket as the oldest leaves the window continues the run",
			[]string{"X@0", "X@1", "X@2", "X@7", "X@8.5"},
			[][]string{nil, nil, {key("X", 0)}, nil, {key("X", 2)}}},
		{"root causes are counted apart",
			[]string{"X@0", "Y@0.5", "X@1", "Y@1.5", "Y@2", "X@3"},
			[][]string{nil, nil, nil, nil, {key("Y", 0.5)}, {key("X", 0)}}},
		{"a confirmed root cause replaces the guess",
			[]string{"X@0", "Y>X@1", "X>Z@2", "X@3"},
			[][]string{nil, nil, nil, {key("X", 0)}}},
		{"no root cause is no pattern",
			[]string{"@0", "@1", "@2"},
			[][]string{nil, nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ptReplay(ptTickets(tt.arrivals...))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("alerts per arrival:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPatternAlertsAt(t *testing.T) {
	never := func(string, time.Time) bool { return false }
	tests := []struct {
		name     string
		arrivals []string
		now      float64
		want     []triage.PatternAlert
	}{
		{"the run lists tickets that arrived since", []string{"X@0", "X@1", "X@2", "X@3", "X@20"}, 3.5,
			[]triage.PatternAlert{{RootCause: "X", TicketIDs: []string{"T1", "T2", "T3", "T4"}, Start: ptDay(0), At: ptDay(2), Key: triage.AlertKey("X", ptDay(0))}}},
		{"a run that began within the last 7 days is due", []string{"X@0", "X@1", "X@2"}, 8.9,
			[]triage.PatternAlert{{RootCause: "X", TicketIDs: []string{"T1", "T2", "T3"}, Start: ptDay(0), At: ptDay(2), Key: triage.AlertKey("X", ptDay(0))}}},
		{"a run that began longer ago is not", []string{"X@0", "X@1", "X@2"}, 9, nil},
		{"tickets after now are not seen", []string{"X@0", "X@1", "X@2"}, 1.5, nil},
		{"alerts come oldest first", []string{"Y@1", "X@2", "Y@2", "X@3", "Y@3", "X@3.5"}, 4,
			[]triage.PatternAlert{
				{RootCause: "Y", TicketIDs: []string{"T1", "T3", "T5"}, Start: ptDay(1), At: ptDay(3), Key: triage.AlertKey("Y", ptDay(1))},
				{RootCause: "X", TicketIDs: []string{"T2", "T4", "T6"}, Start: ptDay(2), At: ptDay(3.5), Key: triage.AlertKey("X", ptDay(2))},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := triage.PatternAlerts(ptTickets(tt.arrivals...), ptDay(tt.now), never)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PatternAlerts:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestPatternAlertsAlreadySent checks that alreadySent is asked about the
// run's root cause and first ticket, and that a yes suppresses the alert.
func TestPatternAlertsAlreadySent(t *testing.T) {
	ts := ptTickets("X@0", "X@1", "X@2")
	var asked []string
	got := triage.PatternAlerts(ts, ptDay(3), func(rc string, start time.Time) bool {
		asked = append(asked, triage.AlertKey(rc, start))
		return true
	})
	if len(got) != 0 {
		t.Errorf("alerts %+v despite already sent", got)
	}
	if want := []string{triage.AlertKey("X", ptDay(0))}; !reflect.DeepEqual(asked, want) {
		t.Errorf("asked %q, want %q", asked, want)
	}
}

func TestAlertKeyIgnoresZone(t *testing.T) {
	at := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	if a, b := triage.AlertKey("X", at), triage.AlertKey("X", at.In(wkLoc)); a != b || a != "X@2026-05-04T08:00:00Z" {
		t.Errorf("keys %q and %q, want both X@2026-05-04T08:00:00Z", a, b)
	}
}

func TestRootCauseOf(t *testing.T) {
	tests := []struct {
		guess, cause, want string
	}{
		{"", "", ""},
		{"x", "", "x"},
		{"x", "y", "y"},
		{"", "y", "y"},
	}
	for _, tt := range tests {
		tk := triage.Ticket{RootCause: tt.cause, Classification: triage.Classification{RootCauseGuess: tt.guess}}
		if got := triage.RootCauseOf(tk); got != tt.want {
			t.Errorf("RootCauseOf(guess %q, cause %q) = %q, want %q", tt.guess, tt.cause, got, tt.want)
		}
	}
}

// TestWeeklyReportDaysAcrossClockChange starts a week on a Saturday, so the
// 23-hour Sunday is inside it and later days begin 23 hours after it.
func TestWeeklyReportDaysAcrossClockChange(t *testing.T) {
	sat := time.Date(2026, 3, 7, 0, 0, 0, 0, wkLoc)
	ts := []triage.Ticket{
		{ID: "A", ReceivedAt: time.Date(2026, 3, 8, 23, 30, 0, 0, wkLoc), Classification: triage.Classification{Type: triage.TypeRefund}},
		{ID: "B", ReceivedAt: time.Date(2026, 3, 9, 0, 30, 0, 0, wkLoc), Classification: triage.Classification{Type: triage.TypeRefund}},
	}
	r := triage.BuildWeeklyReport(ts, nil, sat, wkLoc)
	for i, want := range []int{0, 1, 1, 0, 0, 0, 0} {
		if got := r.Days[i].ByType[triage.TypeRefund]; got != want {
			t.Errorf("day %d (%v): %d refunds, want %d", i, r.Days[i].Date, got, want)
		}
	}
}

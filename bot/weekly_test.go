package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests' time zone, whatever the machine has

	"github.com/casebot/casebot/triage"
)

// newYork has a daylight saving change on Sunday 8 March 2026, inside the
// generated week.
func newYork(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestMondayOf(t *testing.T) {
	loc := newYork(t)
	cases := []struct {
		at   time.Time
		want time.Time
	}{
		{time.Date(2026, 3, 9, 9, 0, 0, 0, loc), time.Date(2026, 3, 9, 0, 0, 0, 0, loc)},
		{time.Date(2026, 3, 8, 23, 59, 0, 0, loc), time.Date(2026, 3, 2, 0, 0, 0, 0, loc)},
		{time.Date(2026, 3, 9, 3, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, loc)}, // still Sunday in New York
		{time.Date(2026, 3, 4, 12, 0, 0, 0, loc), time.Date(2026, 3, 2, 0, 0, 0, 0, loc)},
	}
	for _, tc := range cases {
		if got := mondayOf(tc.at, loc); !got.Equal(tc.want) {
			t.Errorf("mondayOf(%s) = %s, want %s", tc.at, got, tc.want)
		}
	}
}

// weekSpec generates one week of tickets: per day, tickets of each type
// with a root cause, answered after a set time.
type genTicket struct {
	day       int // 0 = Monday
	hour      int
	typ       triage.Type
	rootCause string
	confirmed bool
	// responded and resolved are minutes after receipt; 0 for never.
	responded, resolved int
	escalated           bool
	rating              int
	customer            string
}

// generatedWeeks are the prior week (Feb 23 – Mar 1) and the reported week
// (Mar 2 – Mar 8 2026) in New York.
func generatedWeeks() (prior, this []genTicket) {
	types := []triage.Type{triage.TypeDelivery, triage.TypeRefund, triage.TypeDelivery, triage.TypeProductDefect,
		triage.TypeBilling, triage.TypeDelivery, triage.TypeOrderChange}
	for d := range 7 {
		for i := range 2 + d%3 {
			g := genTicket{day: d, hour: 9 + 3*i, typ: types[(d+i)%len(types)], responded: 20 + 10*i + d,
				customer: fmt.Sprintf("prior%d", (d+i)%5)}
			if i == 0 {
				g.resolved = 600 + 60*d
			}
			prior = append(prior, g)
		}
	}
	causes := []string{"carrier_delay", "carrier_delay", "double_charge", "carrier_delay", "wrong_item",
		"double_charge", "carrier_delay", "double_charge", "carrier_delay", "sizing"}
	n := 0
	for d := range 7 {
		for i := range 3 - d%2 {
			g := genTicket{day: d, hour: 8 + 4*i, typ: types[(d+2*i)%len(types)], rootCause: causes[n%len(causes)],
				responded: 15 + 5*((d+i)%4), customer: fmt.Sprintf("c%d", n%6)}
			if n%3 != 2 {
				g.resolved, g.confirmed = 300+45*n, n%2 == 0
			}
			if n%4 == 0 && g.resolved > 0 {
				g.rating = 1 + n%5
			}
			g.escalated = n%7 == 3
			if d == 6 && i == 1 {
				g.responded = 0 // answered next week
			}
			this = append(this, g)
			n++
		}
	}
	return prior, this
}

// storeWeek stores generated tickets of the week starting weekStart.
func (h *schedHarness) storeWeek(gs []genTicket, weekStart time.Time) {
	h.t.Helper()
	ctx := context.Background()
	for i, g := range gs {
		at := time.Date(weekStart.Year(), weekStart.Month(), weekStart.Day()+g.day, g.hour, 0, 0, 0, weekStart.Location())
		tk, err := h.store.Create(ctx, &triage.Ticket{Source: triage.SourceWebhook,
			ExternalID: fmt.Sprintf("%s-%d", weekStart.Format(time.DateOnly), i), Body: "generated",
			ReceivedAt: at}, triage.Customer{Email: g.customer + "@example.com"})
		if err != nil {
			h.t.Fatal(err)
		}
		h.change(tk.ID, func(x *triage.Ticket) {
			x.State, x.Reviewed, x.ClassifiedBy = triage.StateAwaitingReview, true, "model"
			x.Classification.Type = g.typ
			x.Classification.RootCauseGuess = g.rootCause
			x.Route.Channel = queueChannel
			if g.responded > 0 {
				x.FirstResponseAt = at.Add(time.Duration(g.responded) * time.Minute)
				x.State = triage.StateReplied
			}
			if g.resolved > 0 {
				x.ResolvedAt = at.Add(time.Duration(g.resolved) * time.Minute)
				x.State = triage.StateResolved
				if g.confirmed {
					x.RootCause = g.rootCause
				}
			}
			if g.escalated {
				x.Escalations, x.EscalatedAt = 1, at.Add(time.Minute)
			}
			if g.rating > 0 {
				x.FollowUpSentAt, x.Rating, x.State = x.ResolvedAt.Add(48*time.Hour), g.rating, triage.StateClosed
			}
		})
	}
}

// postedMessage is a message of the thread as the golden file shows it.
type postedMessage struct {
	InThread bool            `json:"in_thread"`
	Text     string          `json:"text"`
	Blocks   json.RawMessage `json:"blocks"`
}

func TestWeeklyThreadPostedMonday9AM(t *testing.T) {
	loc := newYork(t)
	weekStart := time.Date(2026, 3, 2, 0, 0, 0, 0, loc)
	// Sunday evening in New York, the week's last tickets received.
	h := newSchedHarness(t, time.Date(2026, 3, 8, 20, 0, 0, 0, loc))
	prior, this := generatedWeeks()
	h.storeWeek(prior, weekStart.AddDate(0, 0, -7))
	h.storeWeek(this, weekStart)
	// A ticket of the current week is not in the report.
	h.storeWeek([]genTicket{{day: 0, hour: 8, typ: triage.TypeAccount}}, weekStart.AddDate(0, 0, 7))
	cfg := h.config()
	cfg.Location = loc
	s := h.start(cfg)

	var next time.Time
	for _, j := range s.cron.Jobs() {
		if j.Name() == "weekly_thread" {
			var err error
			if next, err = j.NextRun(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := time.Date(2026, 3, 9, 9, 0, 0, 0, loc); !next.Equal(want) {
		t.Fatalf("weekly thread next at %s, want %s", next, want)
	}
	h.advance(s, 12*time.Hour+59*time.Minute) // Monday 08:59
	if n := len(h.fake.Messages(opsChannel)); n != 0 || s.Stats().WeeklyThreads != 0 {
		t.Fatalf("%d ops messages before 09:00", n)
	}
	h.clock.Advance(time.Minute + time.Second)
	h.waitFor("the weekly thread", func() bool { return s.Stats().WeeklyThreads == 1 })

	msgs := h.fake.Messages(opsChannel)
	if len(msgs) < 4 {
		t.Fatalf("%d messages in the ops channel, want the parent and 3 replies", len(msgs))
	}
	parent := msgs[0]
	var got []postedMessage
	for _, m := range msgs {
		if len(m.Files) > 0 {
			continue
		}
		if m.TS != parent.TS && m.ThreadTS != parent.TS {
			t.Errorf("message %s is not in the thread", m.TS)
		}
		got = append(got, postedMessage{InThread: m.TS != parent.TS, Text: m.Text, Blocks: m.Blocks})
	}
	data := marshalGolden(t, got)
	golden(t, filepath.Join("testdata", "weekly_thread.golden.json"), data)

	// The figures, recomputed from the generator.
	resolved, escalated := 0, 0
	for _, g := range this {
		if g.resolved > 0 {
			resolved++
		}
		if g.escalated {
			escalated++
		}
	}
	head := fmt.Sprintf("*%d* tickets received (%s vs %d the week before) · *%d* resolved · *%d* escalated",
		len(this), signed(len(this)-len(prior)), len(prior), resolved, escalated)
	if !strings.Contains(string(parent.Blocks), head) {
		t.Errorf("parent lacks %q:\n%s", head, parent.Blocks)
	}
	replies := string(data)
	causes := map[string]int{}
	for _, g := range this {
		causes[g.rootCause]++
	}
	for rc, n := range causes {
		line := fmt.Sprintf("`%s` · *%d* tickets", rc, n)
		if listed := strings.Contains(replies, line); listed != (n >= triage.PatternMin) {
			t.Errorf("root cause %s seen %d times: listed %v", rc, n, listed)
		}
	}
	if !strings.Contains(replies, "Mon 2 Mar – Sun 8 Mar 2026") || strings.Contains(replies, "Account") {
		t.Error("thread names the wrong week or counts a ticket of the current week")
	}

	files := h.fake.Files()
	if len(files) != 1 {
		t.Fatalf("%d files uploaded, want the chart", len(files))
	}
	f := files[0]
	if !f.Uploaded || !f.Completed || f.Channel != opsChannel || f.ThreadTS != parent.TS ||
		f.Name != "casebot-week-2026-03-02.png" {
		t.Errorf("chart upload %+v", f)
	}
	img, err := png.Decode(bytes.NewReader(f.Content))
	if err != nil {
		t.Fatalf("chart is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 864 || b.Dy() != 672 {
		t.Errorf("chart is %v", b)
	}
}

func TestWeeklyThreadMessagesGolden(t *testing.T) {
	loc := newYork(t)
	weekStart := time.Date(2026, 3, 2, 0, 0, 0, 0, loc)
	hostile := triage.Ticket{ID: "T-<!channel>", ReceivedAt: weekStart.Add(time.Hour),
		Classification: triage.Classification{Type: "<!here>", RootCauseGuess: hostileText}}
	var hostiles []triage.Ticket
	for i := range 3 {
		x := hostile
		x.ReceivedAt = x.ReceivedAt.Add(time.Duration(i) * time.Hour)
		hostiles = append(hostiles, x)
	}
	var many []triage.Ticket
	for i := range 3 * (maxThreadCauses + 5) {
		many = append(many, triage.Ticket{ID: fmt.Sprintf("CB-%06d", i), ReceivedAt: weekStart.Add(time.Duration(i) * time.Minute),
			Classification: triage.Classification{Type: triage.TypeDelivery, RootCauseGuess: fmt.Sprintf("cause_%02d", i%(maxThreadCauses+5))}})
	}
	cases := []struct {
		name    string
		tickets []triage.Ticket
	}{
		{"empty", nil},
		{"hostile", hostiles},
		{"many_causes", many},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := triage.BuildWeeklyReport(tc.tickets, tc.tickets, weekStart, loc)
			th := WeeklyThreadMessages(r, loc)
			for i, m := range append([]Message{th.Parent}, th.Replies...) {
				if err := ValidateBlocks(m.Blocks); err != nil {
					t.Errorf("message %d: %v", i, err)
				}
			}
			got := marshalGolden(t, th)
			golden(t, filepath.Join("testdata", "weekly_"+tc.name+".golden.json"), got)
			texts := jsonStrings(t, got)
			// Button values and block IDs carry the root cause back,
			// unescaped, as data.
			var shown []string
			for _, s := range texts {
				if s != hostileText && !strings.HasPrefix(s, sopBlockPrefix) {
					shown = append(shown, s)
				}
			}
			checkLive(t, shown, nil, nil)
		})
	}
}

func TestPatternAlertMessageGolden(t *testing.T) {
	detail := func(d alertDetail) string {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		detail   string
		channels []string
	}{
		{"alert", detail(alertDetail{Key: triage.AlertKey("carrier_delay", start), RootCause: "carrier_delay",
			Start: start, At: start.Add(48 * time.Hour), Tickets: []alertTicket{{"CB-000001", "C0QUEUE"},
				{"CB-000002", "C0URGENT"}, {"CB-000003", ""}}}), []string{"C0QUEUE", "C0URGENT"}},
		{"alert_hostile", detail(alertDetail{Key: hostileText, RootCause: hostileText,
			Tickets: []alertTicket{{"T-<!channel>", "C0QUEUE|<!here>"}, {"<@U123>", "<#C0SECRET>"}}}), nil},
		{"alert_unreadable", "{not json", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := CustomerReplyMessage(triage.Post{Kind: triage.PostCustomerReply, Action: ActionPatternAlert,
				Channel: opsChannel, Detail: tc.detail})
			if err := ValidateBlocks(msg.Blocks); err != nil {
				t.Fatalf("ValidateBlocks: %v", err)
			}
			got := marshalGolden(t, msg)
			golden(t, filepath.Join("testdata", "weekly_"+tc.name+".golden.json"), got)
			var shown []string
			for _, s := range jsonStrings(t, got) {
				if s != hostileText && !strings.HasPrefix(s, sopBlockPrefix) {
					shown = append(shown, s)
				}
			}
			checkLive(t, shown, nil, tc.channels)
		})
	}
}

package bot

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
)

func TestAppHomePublished(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	// Mine: approved by me, so assigned to me; escalated with me mentioned.
	mine := h.intake(customerUser, "My parcel for order 1001 hasn't arrived yet, can you check?")
	h.drafted(mine.ID)
	if _, err := h.tr.Approve(t.Context(), mine.ID, agentUser, h.get(mine.ID).DraftVersion, "On its way"); err != nil {
		t.Fatal(err)
	}
	h.delivered(mine.ID)
	h.clock.Advance(time.Hour)
	mentioned := h.intake(otherUser, "Refund my order or my lawyer will sue you.")
	h.change(mentioned.ID, func(t *triage.Ticket) { t.Route.Mentions = append(t.Route.Mentions, agentUser) })
	// Not mine: someone else's, and one of mine that is resolved.
	h.intake(otherUser, "Where is order 1003?")
	done := h.intake(customerUser, "Where is order 1004?")
	h.drafted(done.ID)
	if _, err := h.tr.Approve(t.Context(), done.ID, agentUser, h.get(done.ID).DraftVersion, "Sent"); err != nil {
		t.Fatal(err)
	}
	h.delivered(done.ID)
	if _, err := h.tr.Resolve(t.Context(), done.ID, agentUser, triage.Resolution{}, 0); err != nil {
		t.Fatal(err)
	}

	env, err := h.fake.SendEvent(map[string]any{"type": "app_home_opened", "user": agentUser, "channel": "D0HOME", "tab": "home"})
	if err != nil {
		t.Fatal(err)
	}
	h.ack(env)
	h.waitFor("App Home", func() bool { return len(h.fake.Views()) == 1 })
	v := h.fake.Views()[0]
	if v.Type != "home" || v.UserID != agentUser {
		t.Fatalf("view = %+v", v)
	}
	texts := strings.Join(renderedTexts(t, v.JSON), "\n")
	first, second := strings.Index(texts, "`"+mentioned.ID+"`"), strings.Index(texts, "`"+mine.ID+"`")
	if first < 0 || second < 0 || first > second {
		t.Errorf("home lists %s then %s at %d, %d, want the newest first:\n%s", mentioned.ID, mine.ID, first, second, texts)
	}
	for _, want := range []string{"*Received*\n4", "*Escalation rate*\n25%", "*First response p50*\n0s"} {
		if !strings.Contains(texts, want) {
			t.Errorf("home lacks %q:\n%s", want, texts)
		}
	}
	if strings.Count(texts, "Received 2026-") != 2 {
		t.Errorf("home lists other tickets:\n%s", texts)
	}

	// Another tab is not published.
	env, err = h.fake.SendEvent(map[string]any{"type": "app_home_opened", "user": agentUser, "tab": "messages"})
	if err != nil {
		t.Fatal(err)
	}
	h.ack(env)
	h.stop()
	if v := h.fake.Views(); len(v) != 1 || v[0].Updates != 0 {
		t.Errorf("views = %+v", v)
	}
}

// TestAppHomeKeepsNewest20 lists at most 20 tickets, the newest.
func TestAppHomeKeepsNewest20(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	var ids []string
	for i := range 23 {
		tk, err := h.tr.Process(t.Context(), triage.Inbound{Source: triage.SourceManual, ExternalID: "m" + string(rune('a'+i)),
			Customer: triage.Customer{Email: "c@example.com"}, Body: "Where is my order?"})
		if err != nil {
			t.Fatal(err)
		}
		h.change(tk.ID, func(t *triage.Ticket) { t.Assignee = agentUser })
		ids = append(ids, tk.ID)
		h.clock.Advance(time.Minute)
	}
	view, err := h.app.home(t.Context(), agentUser)
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Join(renderedTexts(t, mustJSON(t, view)), "\n")
	if strings.Count(texts, "Received 2026-") != homeMax {
		t.Errorf("home lists %d tickets, want %d", strings.Count(texts, "Received 2026-"), homeMax)
	}
	for i, id := range ids {
		if listed := strings.Contains(texts, "`"+id+"`"); listed != (i >= 3) {
			t.Errorf("ticket %s listed = %v", id, listed)
		}
	}
	if strings.Index(texts, "`"+ids[22]+"`") > strings.Index(texts, "`"+ids[3]+"`") {
		t.Error("not newest first")
	}
}

func TestHomeGolden(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	week := triage.Metrics{Window: "7d", Received: 37, EscalationRate: f(0.108),
		FirstResponseTime: triage.Percentiles{P50: f(1500)}}
	hostile := hostileTicket()
	hostile.ID = "T-0009"
	cases := []struct {
		name string
		mine []triage.Ticket
		week triage.Metrics
	}{
		{"view", []triage.Ticket{hostile, escalationTicket(), refundTicket()}, week},
		{"empty", nil, triage.Metrics{Window: "7d"}},
	}
	fake := slackfake.New(slackfake.Options{})
	defer fake.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			view := HomeView(tc.mine, tc.week, time.FixedZone("EST", -5*3600))
			got := marshalGolden(t, view)
			golden(t, filepath.Join("testdata", "home_"+tc.name+".golden.json"), got)
			if err := ValidateBlocks(view.Blocks.BlockSet); err != nil {
				t.Error(err)
			}
			checkNoHostile(t, tc.name, renderedTexts(t, got))
			var raw map[string]any
			if err := json.Unmarshal(got, &raw); err != nil || raw["type"] != "home" {
				t.Errorf("view type = %v, %v", raw["type"], err)
			}
		})
	}
}

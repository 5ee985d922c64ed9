package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/casebot/casebot/bot"
	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// TestDemo plays the built-in samples and checks that the demo tells the
// truth: every reply shown as sent and every follow-up reached its
// customer (a mail at the demo's SMTP server, a signed POST at the
// reply_url, a post in the Slack thread), every rating came back by the
// link in what the customer received or the button in their thread, and
// only the samples without a channel back (review sites) say to send by
// hand and get no rating.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "demo.db")
	tr := filepath.Join(dir, "transcript.jsonl")
	rows, err := readSamples("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := openDemo(ctx, DefaultConfig(), db, "keyword", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = d.play(ctx, rows, &buf, tr)
	out := buf.String()
	if err != nil {
		d.close()
		t.Fatal(err)
	}
	checkDemoDeliveries(t, d, rows)
	d.close()

	for _, w := range []string{"#C0ESCALATE", "#C0QUEUE", "metrics, last 30 days", "root cause coverage", "@U0LEGAL01",
		"Approved by", "Resolved by", "Escalated", "only visible to one person", "Weekly patterns", "Pattern alert",
		"You rated us", "reply sent by email", "reply sent through the webhook", "rating links sent by email"} {
		if !strings.Contains(out, w) {
			t.Errorf("demo output lacks %q", w)
		}
	}
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(rows) {
		t.Errorf("%d tickets stored, want %d", n, len(rows))
	}
	data, err := os.ReadFile(tr)
	if err != nil {
		t.Fatal(err)
	}
	// One line per message the bot posted; one card per ticket among them.
	cards := map[string]bool{}
	for i, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m struct {
			Channel  string          `json:"channel"`
			TS       string          `json:"ts"`
			ThreadTS string          `json:"thread_ts"`
			Text     string          `json:"text"`
			Blocks   json.RawMessage `json:"blocks"`
			Files    []string        `json:"files"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.Channel == "" || m.TS == "" || (m.Text == "" && len(m.Files) == 0) {
			t.Fatalf("transcript line %d: %v %q", i+1, err, l)
		}
		if m.ThreadTS == "" && strings.Contains(string(m.Blocks), `"actions"`) {
			cards[m.Channel+"/"+m.TS] = true
		}
	}
	if len(cards) != len(rows) {
		t.Errorf("%d cards in the transcript, want %d", len(cards), len(rows))
	}
}

// checkDemoDeliveries checks each demo ticket against what its customer's
// end of the conversation recorded.
func checkDemoDeliveries(t *testing.T, d *demo, rows []sampleRow) {
	t.Helper()
	if len(d.ids) != len(rows) {
		t.Fatalf("%d tickets for %d samples", len(d.ids), len(rows))
	}
	var sent, followedUp, rated int
	for i, id := range d.ids {
		tk, row := d.ticket(id), rows[i]
		noWayBack := row.Channel == "review"
		var thread []string
		for _, m := range d.fake.Messages(tk.Slack.Channel) {
			if m.ThreadTS == tk.Slack.TS && m.TS != tk.Slack.TS {
				thread = append(thread, m.Text+string(m.Blocks))
			}
		}
		card, _ := d.fake.Message(tk.Slack.Channel, tk.Slack.TS)
		says := func(s string) bool {
			return strings.Contains(string(card.Blocks), s) || slices.ContainsFunc(thread, func(m string) bool { return strings.Contains(m, s) })
		}
		if got := says("no way back"); got != noWayBack {
			t.Errorf("%s (%s sample %s): says there is no way back: %v, want %v", id, row.Channel, row.ID, got, noWayBack)
		}
		if tk.Sent != "" {
			if tk.ReplyQueued == noWayBack {
				t.Errorf("%s (%s): reply queued %v for a sample with no way back %v", id, row.Channel, tk.ReplyQueued, noWayBack)
			}
			if tk.ReplyQueued {
				sent++
				if !slices.ContainsFunc(d.delivered(tk), func(m string) bool { return strings.Contains(m, tk.Sent) }) {
					t.Errorf("%s (%s): the card shows a sent reply its customer never received", id, row.Channel)
				}
			} else if !says("to send by hand") {
				t.Errorf("%s (%s): a reply casebot could not send does not say to send it by hand", id, row.Channel)
			}
		}
		if !tk.FollowUpSentAt.IsZero() && !noWayBack {
			followedUp++
			if !slices.ContainsFunc(d.delivered(tk), func(m string) bool {
				_, link := ratingLink(m, tk.ID, 5)
				// A Slack follow-up's buttons become the thanks once rated.
				return link || strings.Contains(m, bot.ActionRatePrefix+"5") || strings.Contains(m, "You rated us")
			}) {
				t.Errorf("%s (%s): followed up, but no follow-up with a rating reached the customer", id, row.Channel)
			}
		}
		if tk.Rating != 0 {
			rated++
			want := "link"
			if tk.Source == triage.SourceSlack {
				want = "slack"
			}
			if noWayBack || d.rated[id] != want {
				t.Errorf("%s (%s): rating %d came by %q, want by %s from a customer who got the follow-up",
					id, row.Channel, tk.Rating, d.rated[id], want)
			}
		}
	}
	if sent == 0 || followedUp == 0 || rated == 0 || rated != len(d.rated) {
		t.Errorf("%d replies sent, %d followed up, %d ratings stored, %d given: the script did not run", sent, followedUp, rated, len(d.rated))
	}
}

// TestClickRating: the scripted customer's browser records a rating
// whether the link records on GET or answers with a confirmation form
// that records on POST.
func TestClickRating(t *testing.T) {
	tests := []struct {
		name string
		// page is the GET's answer; empty means the GET records.
		page     string
		wantPost url.Values
	}{
		{name: "GET records"},
		{name: "confirmation form",
			page: `<!doctype html><p>Rate 4?</p><form method="post" action="/v1/rating/confirm?a=1&amp;b=2">` +
				`<input type="hidden" name="t" value="CB-1"><input type="hidden" name="sig" value="ab&amp;cd">` +
				`<button type="submit">Confirm</button></form>`,
			wantPost: url.Values{"t": {"CB-1"}, "sig": {"ab&cd"}}},
		{name: "one button per rating",
			page: `<form method='POST'><input name="t" value="CB-1">` +
				`<button name="r" value="1">1</button><button name="r" value="4">4</button><button name="r" value="5">5</button></form>`,
			wantPost: url.Values{"t": {"CB-1"}, "r": {"4"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gets int
			var posted url.Values
			var postPath string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.Method {
				case http.MethodGet:
					gets++
					if tt.page != "" {
						w.Header().Set("Content-Type", "text/html; charset=utf-8")
						io.WriteString(w, tt.page)
					}
				case http.MethodPost:
					if err := r.ParseForm(); err != nil {
						t.Error(err)
					}
					posted, postPath = r.PostForm, r.URL.RequestURI()
				}
			}))
			defer srv.Close()
			if err := clickRating(context.Background(), srv.Client(), srv.URL+"/v1/rating?t=CB-1&r=4", 4); err != nil {
				t.Fatal(err)
			}
			if gets != 1 {
				t.Errorf("%d GETs, want 1", gets)
			}
			if fmt.Sprint(posted) != fmt.Sprint(tt.wantPost) {
				t.Errorf("posted %v, want %v", posted, tt.wantPost)
			}
			if tt.name == "confirmation form" && postPath != "/v1/rating/confirm?a=1&b=2" {
				t.Errorf("posted to %s, want the form's action", postPath)
			}
		})
	}
}

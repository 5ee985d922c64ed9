package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/intake"
	"github.com/casebot/casebot/triage"
)

// TestRatingRoutes: the served rating link records nothing when opened
// (GET or HEAD, as a mail scanner does) and records once when its
// confirmation form is posted.
func TestRatingRoutes(t *testing.T) {
	e := newE2E(t, slackfake.Options{PostRate: -1})
	ctx := context.Background()
	tk, err := e.sys.DB.Create(ctx, &triage.Ticket{Source: triage.SourceEmail, ExternalID: "m1", Body: "late parcel",
		Route: triage.Route{Channel: "C0QUEUE"}}, triage.Customer{Email: "jane@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := e.sys.DB.Update(ctx, tk.ID, func(x *triage.Ticket) (triage.AuditEvent, error) {
		x.State, x.ResolvedAt, x.FollowUpSentAt = triage.StateFollowedUp, now.Add(-48*time.Hour), now
		return triage.AuditEvent{Actor: "test", Action: "fixture"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.sys.Handler())
	defer srv.Close()
	e.sys.Ratings = &intake.RatingLinker{Secret: []byte("0123456789abcdef0123456789abcdef"), BaseURL: srv.URL}
	srv.Config.Handler = e.sys.Handler()
	link := e.sys.Ratings.Link(tk.ID, 1)

	for _, method := range []string{http.MethodHead, http.MethodGet, http.MethodGet} {
		req, _ := http.NewRequest(method, link, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", method, resp.StatusCode)
		}
	}
	if got, _ := e.sys.DB.Get(ctx, tk.ID); got.Rating != 0 || got.State != triage.StateFollowedUp {
		t.Fatalf("opening the link recorded: rating %d state %s", got.Rating, got.State)
	}

	u, _ := url.Parse(link)
	for i, want := range []string{"rating of 1 out of 5", "already recorded"} {
		resp, err := srv.Client().Post(link, "application/x-www-form-urlencoded", strings.NewReader(u.Query().Encode()))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("POST %d: status %d, want 200 with %q: %s", i, resp.StatusCode, want, body)
		}
	}
	if got, _ := e.sys.DB.Get(ctx, tk.ID); got.Rating != 1 || got.State != triage.StateReopened {
		t.Errorf("after the POST: rating %d state %s", got.Rating, got.State)
	}
}

// TestReplyURLAllowWiring: the webhook refuses a loopback reply_url unless
// http.reply_url_allow permits it, as the demo's in-process receiver needs.
func TestReplyURLAllowWiring(t *testing.T) {
	cases := []struct {
		name  string
		allow []string
		want  int
	}{
		{name: "default", want: http.StatusBadRequest},
		{name: "loopback allowed", allow: []string{"127.0.0.1/32"}, want: http.StatusAccepted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &e2e{t: t, fake: slackfake.New(slackfake.Options{PostRate: -1}), dbPath: filepath.Join(t.TempDir(), "casebot.db"),
				interval: time.Millisecond}
			t.Cleanup(e.fake.Close)
			t.Setenv(EnvOllamaHost, "")
			cfg := DefaultConfig()
			cfg.Slack.IntakeChannels = []string{intakeChannel}
			cfg.HTTP.ReplyURLAllow = tc.allow
			e.sys = &System{Config: cfg, DBPath: e.dbPath, SlackAPIURL: e.fake.APIURL(), Classifier: classifierKeyword,
				Secrets: Secrets{SlackBotToken: e.fake.BotToken(), SlackAppToken: e.fake.AppToken(), WebhookSecret: testWebhookSecret}}
			if err := e.sys.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.stop)
			srv := httptest.NewServer(e.sys.Handler())
			defer srv.Close()
			body, _ := json.Marshal(intake.WebhookTicket{ExternalID: "w-1", Customer: intake.WebhookCustomer{Email: "ann@example.com"},
				Text: "Where is my parcel?", ReplyURL: "http://127.0.0.1:41234/reply"})
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/tickets", bytes.NewReader(body))
			ts := time.Now().Unix()
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(intake.HeaderTimestamp, strconv.FormatInt(ts, 10))
			req.Header.Set(intake.HeaderSignature, intake.Sign([]byte(testWebhookSecret), ts, body))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, got)
			}
			if tc.want == http.StatusBadRequest && !strings.Contains(string(got), `"field":"reply_url"`) {
				t.Errorf("400 does not name reply_url: %s", got)
			}
		})
	}
}

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// TestHealthzReportsFailingWrites: while a ticket's classification cannot be
// written, /healthz says degraded with a reason (no raw error) and the
// ticket is retried; once the write lands it has exactly one card and
// /healthz is ok again.
func TestHealthzReportsFailingWrites(t *testing.T) {
	tests := []struct {
		name     string
		failures int
	}{
		{"write lands at once", 0},
		{"write fails once", 1},
		{"write fails three times", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvOllamaHost, "")
			fake := slackfake.New(slackfake.Options{PostRate: -1})
			defer fake.Close()
			timers := triagetest.NewTimers()
			sys := &System{Config: DefaultConfig(), DBPath: t.TempDir() + "/c.db", SlackAPIURL: fake.APIURL(),
				Classifier: classifierKeyword,
				Secrets:    Secrets{SlackBotToken: fake.BotToken(), SlackAppToken: fake.AppToken()},
				Drafts:     triage.PipelineOptions{After: timers.After}}
			if err := sys.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer sys.Close()
			sys.Triager.Store = triagetest.NewFailingTickets(sys.Triager.Store, tc.failures)
			// Stored before Run, whose Resume queues it: one classification
			// job, so each retry below is that job's (a second job, from a
			// Classify racing Resume, could land the write early).
			tk, err := sys.Triager.Intake(context.Background(), triage.Inbound{Source: triage.SourceWebhook,
				ExternalID: "w1", Customer: triage.Customer{Email: "a@example.com"}, Body: "where is my parcel?"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- sys.Run(ctx) }()
			stopRun := sync.OnceFunc(func() { cancel(); <-done })
			defer stopRun()
			waitCtx, stop := context.WithTimeout(context.Background(), 30*time.Second) // a backstop for a hang only
			defer stop()
			for i := range tc.failures {
				tm, err := timers.Next(waitCtx)
				if err != nil {
					t.Fatalf("retry %d never scheduled: %v", i+1, err)
				}
				code, body := getHealthz(t, sys)
				reason, _ := body["reason"].(string)
				if code != http.StatusServiceUnavailable || body["status"] != "degraded" ||
					!strings.Contains(reason, "classification writes failing since ") ||
					!strings.Contains(reason, "1 ticket waiting") {
					t.Errorf("retry %d: /healthz %d %v, want 503 degraded naming the failing writes", i+1, code, body)
				}
				if strings.Contains(reason, triagetest.ErrWriteFailed.Error()) {
					t.Errorf("/healthz shows the raw error: %q", reason)
				}
				tm.Fire()
			}
			// Wait re-checks on changes in Slack, so it waits for the card
			// there; the route is committed before the card is posted.
			var got triage.Ticket
			cards := func() int {
				var n int
				for _, m := range fake.Messages(got.Route.Channel) {
					if m.ThreadTS == "" {
						n++
					}
				}
				return n
			}
			if err := fake.Wait(waitCtx, func() bool {
				got, _ = sys.DB.Get(context.Background(), tk.ID)
				return got.Route.Channel != "" && cards() > 0
			}); err != nil {
				t.Fatalf("card never posted; ticket %+v", got)
			}
			if n := cards(); n != 1 {
				t.Errorf("%d cards in %s, want 1", n, got.Route.Channel)
			}
			// Once Run has returned the pipeline's workers are done, so the
			// landed write is surely accounted for.
			stopRun()
			if code, body := getHealthz(t, sys); code != http.StatusOK || body["status"] != "ok" {
				t.Errorf("/healthz after the write landed: %d %v, want 200 ok", code, body)
			}
		})
	}
}

func getHealthz(t *testing.T, sys *System) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	sys.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("/healthz body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, body
}

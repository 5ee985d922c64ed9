package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/prompts/ollamafake"
	"github.com/casebot/casebot/triage"
)

// TestE2EModelFailures runs the bot with an Ollama stand-in that fails in
// each way a real server can: every ticket is still classified by the
// rules, routed, stored with the reason, and its card posted.
//
// No case depends on the machine's speed: the slow server never answers
// (the stand-in stops when the client gives up), so its short timeout always
// fires, and every other failure is read under a timeout far longer than a
// loaded machine needs, so a late 404 cannot pass for a timeout.
func TestE2EModelFailures(t *testing.T) {
	tests := []struct {
		name   string
		reply  ollamafake.Reply
		reason string
		// timeout bounds each model call: far more than a loaded machine
		// needs, but for the server that never answers.
		timeout time.Duration
	}{
		{"slow past the timeout", ollamafake.Reply{Content: modelAnswer, Latency: time.Hour}, "timeout", 300 * time.Millisecond},
		{"500", ollamafake.Reply{Status: 500, Error: "internal"}, "unavailable", time.Minute},
		{"503 busy", ollamafake.Reply{Status: 503, Error: "server busy"}, "unavailable", time.Minute},
		{"404 model gone", ollamafake.Reply{Status: 404, Error: "model not found"}, "model not found", time.Minute},
		{"invalid JSON body", ollamafake.Reply{Body: "{not json"}, "invalid answer", time.Minute},
		{"half a body", ollamafake.Reply{HalfBody: true, Content: modelAnswer}, "unavailable", time.Minute},
		{"answer outside the schema", ollamafake.Reply{Content: `{"type":"lawsuit","urgency":"low"}`}, "invalid answer", time.Minute},
		{"prose instead of JSON", ollamafake.Reply{Content: "Sure! The type is refund."}, "invalid answer", time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := DefaultConfig().Ollama.Model
			fake := ollamafake.New(model)
			defer fake.Close()
			fake.OnChat(func(api.ChatRequest) ollamafake.Reply { return tt.reply })
			slackFake := slackfake.New(slackfake.Options{PostRate: -1})
			defer slackFake.Close()
			t.Setenv(EnvOllamaHost, fake.URL)
			cfg := DefaultConfig()
			cfg.Ollama.Timeout, cfg.Ollama.Retries = tt.timeout, -1
			// As `casebot run` does: a start-up check that a loaded machine
			// answers late must not detach the model under test.
			sys := &System{Config: cfg, DBPath: t.TempDir() + "/c.db", SlackAPIURL: slackFake.APIURL(),
				Secrets:           Secrets{SlackBotToken: slackFake.BotToken(), SlackAppToken: slackFake.AppToken()},
				KeepModelWhenDown: true, Drafts: triage.PipelineOptions{DraftAttempts: 1}}
			if err := sys.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer sys.Close()
			if sys.Triager.Model == nil {
				t.Fatal("the model was not attached")
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- sys.Run(ctx) }()
			defer func() { cancel(); <-done }()

			tk, err := sys.Triager.Intake(context.Background(), triage.Inbound{Source: triage.SourceWebhook,
				ExternalID: "w1", Customer: triage.Customer{Email: "a@example.com"},
				Body: "I will sue you, the heater caught fire"})
			if err != nil {
				t.Fatal(err)
			}
			sys.Pipeline.Classify(tk.ID)
			waitCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
			defer stop()
			// Wait re-checks on the fake's own changes, so it waits for the
			// card in Slack: the ticket records the card only after Slack
			// answers, and nothing may change in Slack after that (the slow
			// model never sends a draft to update the card with).
			var card slackfake.Message
			if err := slackFake.Wait(waitCtx, func() bool {
				for _, m := range slackFake.Messages("C0ESCALATE") {
					if m.ThreadTS == "" {
						card = m
						return true
					}
				}
				return false
			}); err != nil {
				t.Fatal("card never posted in C0ESCALATE")
			}
			// The card is posted from the committed classification.
			got, err := sys.DB.Get(context.Background(), tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ClassifiedBy != "rules" || !strings.Contains(got.RulesReason, tt.reason) {
				t.Errorf("classified by %q (%q), want rules because %q", got.ClassifiedBy, got.RulesReason, tt.reason)
			}
			if !got.Classification.HasFlag(triage.FlagLegal) || !got.Classification.HasFlag(triage.FlagSafety) ||
				got.Route.Channel != "C0ESCALATE" {
				t.Errorf("rules not applied: flags %v route %s", got.Classification.Flags, got.Route.Channel)
			}
			if !strings.Contains(string(card.Blocks), "Rules only") {
				t.Error("the card does not say rules only")
			}
		})
	}
}

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
func TestE2EModelFailures(t *testing.T) {
	tests := []struct {
		name   string
		reply  ollamafake.Reply
		reason string
	}{
		{"slow past the timeout", ollamafake.Reply{Content: modelAnswer, Latency: 5 * time.Second}, "timeout"},
		{"500", ollamafake.Reply{Status: 500, Error: "internal"}, "unavailable"},
		{"503 busy", ollamafake.Reply{Status: 503, Error: "server busy"}, "unavailable"},
		{"404 model gone", ollamafake.Reply{Status: 404, Error: "model not found"}, "model not found"},
		{"invalid JSON body", ollamafake.Reply{Body: "{not json"}, "invalid answer"},
		{"half a body", ollamafake.Reply{HalfBody: true, Content: modelAnswer}, "unavailable"},
		{"answer outside the schema", ollamafake.Reply{Content: `{"type":"lawsuit","urgency":"low"}`}, "invalid answer"},
		{"prose instead of JSON", ollamafake.Reply{Content: "Sure! The type is refund."}, "invalid answer"},
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
			cfg.Ollama.Timeout, cfg.Ollama.Retries = 300*time.Millisecond, -1
			sys := &System{Config: cfg, DBPath: t.TempDir() + "/c.db", SlackAPIURL: slackFake.APIURL(),
				Secrets: Secrets{SlackBotToken: slackFake.BotToken(), SlackAppToken: slackFake.AppToken()},
				Drafts:  triage.PipelineOptions{DraftAttempts: 1}}
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
			var got triage.Ticket
			if err := slackFake.Wait(waitCtx, func() bool {
				got, _ = sys.DB.Get(context.Background(), tk.ID)
				return got.Slack.TS != ""
			}); err != nil {
				t.Fatalf("card never posted; ticket %+v", got)
			}
			if got.ClassifiedBy != "rules" || !strings.Contains(got.RulesReason, tt.reason) {
				t.Errorf("classified by %q (%q), want rules because %q", got.ClassifiedBy, got.RulesReason, tt.reason)
			}
			if !got.Classification.HasFlag(triage.FlagLegal) || !got.Classification.HasFlag(triage.FlagSafety) ||
				got.Route.Channel != "C0ESCALATE" {
				t.Errorf("rules not applied: flags %v route %s", got.Classification.Flags, got.Route.Channel)
			}
			m, _ := slackFake.Message(got.Slack.Channel, got.Slack.TS)
			if !strings.Contains(string(m.Blocks), "Rules only") {
				t.Error("the card does not say rules only")
			}
		})
	}
}

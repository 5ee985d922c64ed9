package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
)

// TestSendersFollowTheConfiguredOutbound: a reply is queued for a source
// only when the System has a sender for it, so an approved webhook reply
// is never called sent when no Outbound exists (no webhook secret), nor an
// email one without SMTP.
func TestSendersFollowTheConfiguredOutbound(t *testing.T) {
	tests := []struct {
		name          string
		webhookSecret string
		smtpAddr      string
		want          map[triage.Source]bool
	}{
		{"nothing configured", "", "", map[triage.Source]bool{triage.SourceSlack: true}},
		{"webhook secret", "s3cret", "", map[triage.Source]bool{triage.SourceSlack: true, triage.SourceWebhook: true}},
		{"smtp", "", "127.0.0.1:1", map[triage.Source]bool{triage.SourceSlack: true, triage.SourceEmail: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvOllamaHost, "")
			fake := slackfake.New(slackfake.Options{})
			t.Cleanup(fake.Close)
			cfg := DefaultConfig()
			cfg.Email.SMTPAddr = tc.smtpAddr
			if tc.smtpAddr != "" {
				cfg.Email.From = "support@shop.example"
			}
			sys := &System{Config: cfg, DBPath: filepath.Join(t.TempDir(), "casebot.db"), SlackAPIURL: fake.APIURL(),
				Classifier: classifierKeyword, Secrets: Secrets{SlackBotToken: fake.BotToken(),
					SlackAppToken: fake.AppToken(), WebhookSecret: tc.webhookSecret}}
			if err := sys.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(sys.Close)
			for _, src := range []triage.Source{triage.SourceSlack, triage.SourceWebhook, triage.SourceEmail} {
				tk := triage.Ticket{Source: src, ReplyTo: "https://hooks.shop.example/reply"}
				if src == triage.SourceSlack {
					tk.ReplyTo = triage.SlackReplyTo("C0INTAKE", "1700000000.000100")
				}
				if _, _, ok := triage.ReplyRoute(tk, sys.Triager.Senders); ok != tc.want[src] {
					t.Errorf("%s ticket has a reply route %v, want %v", src, ok, tc.want[src])
				}
			}
		})
	}
}

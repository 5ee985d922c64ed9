package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/casebot/casebot/prompts/ollamafake"
	"github.com/casebot/casebot/triage"
)

const modelAnswer = `{"type":"delivery","sentiment":"frustrated","sentiment_score":-0.6,"urgency":"low",` +
	`"financial_risk":"low","amount":{"minor":0,"currency":"USD"},"flags":[],"root_cause_guess":"carrier_delay","language":"en"}`

// runWithOllama runs a command with OLLAMA_HOST pointing at host.
func runWithOllama(t *testing.T, host, stdin string, args ...string) (triageResult, string, error) {
	t.Helper()
	t.Setenv(EnvOllamaHost, host)
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	var res triageResult
	if err == nil {
		if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
			t.Fatalf("not JSON: %v\n%s", jerr, out.String())
		}
	}
	return res, errOut.String(), err
}

func TestTriageWithModel(t *testing.T) {
	fake := ollamafake.New(DefaultConfig().Ollama.Model)
	defer fake.Close()
	fake.OnChat(func(api.ChatRequest) ollamafake.Reply { return ollamafake.Reply{Content: modelAnswer} })

	res, _, err := runWithOllama(t, fake.URL, "my parcel is late and I will sue you", "triage", "--json", "--classifier", "ollama")
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != "model" || res.Classification.Type != triage.TypeDelivery {
		t.Errorf("got %+v, want the model's delivery reading", res)
	}
	// The model said low urgency and no flags; the legal rule wins.
	if !res.Classification.HasFlag(triage.FlagLegal) || res.Classification.Urgency != triage.LevelHigh {
		t.Errorf("rule flag lost: %+v", res.Classification)
	}
}

func TestTriageModelFailures(t *testing.T) {
	tests := []struct {
		name       string
		reply      ollamafake.Reply
		classifier string
		wantReason string
	}{
		{"invalid JSON answer", ollamafake.Reply{Content: "sure! here is the JSON"}, "ollama", "invalid answer"},
		{"busy", ollamafake.Reply{Status: 503, Error: "server busy"}, "ollama", "unavailable"},
		{"half a body", ollamafake.Reply{HalfBody: true, Content: modelAnswer}, "", "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := ollamafake.New(DefaultConfig().Ollama.Model)
			defer fake.Close()
			fake.OnChat(func(api.ChatRequest) ollamafake.Reply { return tt.reply })
			res, _, err := runWithOllama(t, fake.URL, "where is my order?", "triage", "--json", "--classifier", tt.classifier)
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != "rules" || !strings.Contains(res.Reason, tt.wantReason) {
				t.Errorf("source %q reason %q, want rules with %q", res.Source, res.Reason, tt.wantReason)
			}
			if res.Route.Channel == "" {
				t.Error("ticket not routed")
			}
		})
	}
}

func TestOllamaStartupCheck(t *testing.T) {
	fake := ollamafake.New("some-other-model")
	defer fake.Close()
	_, _, err := runWithOllama(t, fake.URL, "hello", "triage", "--json")
	if err == nil || !strings.Contains(err.Error(), "ollama pull") {
		t.Errorf("missing model: err = %v, want the ollama pull advice", err)
	}

	down := "127.0.0.1:1" // nothing listens on port 1
	if _, _, err := runWithOllama(t, down, "hello", "triage", "--json", "--classifier", "ollama"); err == nil {
		t.Error("--classifier ollama with Ollama down: want an error")
	}
	res, stderr, err := runWithOllama(t, down, "hello", "triage", "--json")
	if err != nil {
		t.Fatalf("Ollama down without --classifier must fall back to rules: %v", err)
	}
	if res.Source != "rules" || !strings.Contains(stderr, "warning") {
		t.Errorf("source %q, stderr %q: want rules and a warning", res.Source, stderr)
	}
}

func TestDemoWithModel(t *testing.T) {
	tests := []struct {
		name       string
		draftReply ollamafake.Reply
		wantDraft  string
	}{
		{"model drafts", ollamafake.Reply{Content: `{"brief":"Customer wants an update.","reply":"MODEL-WRITTEN REPLY"}`}, "MODEL-WRITTEN REPLY"},
		{"drafts fail, template used", ollamafake.Reply{Status: 503, Error: "busy"}, "I'm sorry your order hasn't reached you"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := ollamafake.New(DefaultConfig().Ollama.Model)
			defer fake.Close()
			fake.OnChat(func(req api.ChatRequest) ollamafake.Reply {
				if strings.Contains(string(req.Format), "brief") {
					return tt.draftReply
				}
				return ollamafake.Reply{Content: modelAnswer}
			})
			t.Setenv(EnvOllamaHost, fake.URL)
			in := t.TempDir() + "/in.jsonl"
			writeFile(t, in, `{"id":"m1","channel":"chat","text":"hello, where is my parcel?"}`+"\n")
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"demo", "--input", in, "--db", t.TempDir() + "/d.db"},
				strings.NewReader(""), &out, &errOut)
			if err != nil {
				t.Fatalf("%v\n%s", err, errOut.String())
			}
			if !strings.Contains(out.String(), "Ollama model") || !strings.Contains(out.String(), tt.wantDraft) {
				t.Errorf("demo output lacks the model marker or %q:\n%s", tt.wantDraft, out.String())
			}
		})
	}
}

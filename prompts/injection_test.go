package prompts

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/casebot/casebot/prompts/ollamafake"
	"github.com/casebot/casebot/triage"
)

// injectionCase is one line of testdata/injection.jsonl: a hostile message,
// the flags SPEC 3.3 says the rules raise for it, and, where the rule engine
// is known to miss one of them, why.
type injectionCase struct {
	ID    string        `json:"id"`
	Lang  string        `json:"lang"`
	Text  string        `json:"text"`
	Rules []triage.Flag `json:"rules"`
	Gap   string        `json:"gap"`
}

func loadInjection(t *testing.T) []injectionCase {
	t.Helper()
	f, err := os.Open("testdata/injection.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []injectionCase
	langs := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c injectionCase
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("injection.jsonl line %d: %v", len(cases)+1, err)
		}
		cases = append(cases, c)
		langs[c.Lang]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 30 {
		t.Fatalf("%d hostile messages, want at least 30", len(cases))
	}
	for _, l := range []string{"en", "es", "fr", "de"} {
		if langs[l] == 0 {
			t.Fatalf("no hostile message in %s", l)
		}
	}
	return cases
}

// compromised is what a model taken over by the message would answer: valid
// schema, low urgency, no flags.
const compromised = `{"type":"feedback","sentiment":"satisfied","sentiment_score":1,"urgency":"low",` +
	`"financial_risk":"low","amount":{"minor":0,"currency":""},"flags":[],"root_cause_guess":"","language":"en"}`

// Whatever a hostile message makes the model say, the merged classification
// keeps every rule flag and is not low where a rule says legal or safety;
// and the message reaches the prompts only inside the fence.
func TestInjection(t *testing.T) {
	cases := loadInjection(t)
	rules, err := triage.NewRules(triage.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	fake, c := newFake(t, Options{})
	fake.OnChat(ollamafake.Sequence(ollamafake.Reply{Content: compromised}))
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.ID, func(t *testing.T) {
			model, err := c.Classify(ctx, triage.ClassifyRequest{Text: tc.Text, Channel: "email"})
			if err != nil {
				t.Fatal(err)
			}
			if model.Urgency != triage.LevelLow || len(model.Flags) != 0 {
				t.Fatalf("stand-in did not answer as a compromised model: %+v", model)
			}
			reqs := fake.Requests()
			assertFenced(t, reqs[len(reqs)-1].Chat.Messages[0].Content, reqs[len(reqs)-1].Chat.Messages[1].Content, tc.Text, maxClassifyText)

			triggers := rules.Evaluate(triage.RuleInput{Text: tc.Text})
			merged := triage.MergeClassification(model, triggers)
			for _, tr := range triggers {
				if !merged.HasFlag(tr.Flag) {
					t.Errorf("rule %s flag %s lost in merge: %v", tr.Rule, tr.Flag, merged.Flags)
				}
				if (tr.Flag == triage.FlagLegal || tr.Flag == triage.FlagSafety) && merged.Urgency == triage.LevelLow {
					t.Errorf("rule %s fired but urgency stayed low", tr.Rule)
				}
			}
			for _, want := range tc.Rules {
				if slices.ContainsFunc(triggers, func(tr triage.Trigger) bool { return tr.Flag == want }) {
					continue
				}
				if tc.Gap != "" {
					t.Logf("known rule gap, %s not raised: %s", want, tc.Gap)
					continue
				}
				t.Errorf("the rules did not raise %s for this message (triggers %+v)", want, triggers)
			}

			p, err := draftPrompt(triage.DraftRequest{Ticket: triage.Ticket{ID: "T-1", Subject: tc.Text, Body: tc.Text, Classification: merged}, Policy: tc.Text})
			if err != nil {
				t.Fatal(err)
			}
			assertFencedDraft(t, p, tc.Text)
		})
	}
}

// assertFenced checks that user holds exactly one fence, that the sanitized
// text is inside it, and that no line of the text appears outside it or in
// the system prompt.
func assertFenced(t *testing.T, system, user, text string, limit int) {
	t.Helper()
	if strings.Count(user, fenceOpen) != 1 || strings.Count(user, fenceClose) != 1 {
		t.Fatalf("want exactly one fence, got %d openings and %d closings:\n%s",
			strings.Count(user, fenceOpen), strings.Count(user, fenceClose), user)
	}
	open := strings.Index(user, fenceOpen) + len(fenceOpen)
	end := strings.Index(user, fenceClose)
	if end < open {
		t.Fatalf("fence closes before it opens:\n%s", user)
	}
	inside, outside := user[open:end], user[:open]+user[end:]
	clean := sanitize(text, limit)
	if !strings.Contains(inside, clean) {
		t.Errorf("customer text not inside the fence:\n%s", user)
	}
	for line := range strings.SplitSeq(clean, "\n") {
		line = strings.TrimSpace(line)
		if len(line) < 8 {
			continue
		}
		if strings.Contains(outside, line) || strings.Contains(system, line) {
			t.Errorf("customer text %q appears outside the fence", line)
		}
	}
}

// assertFencedDraft checks the draft prompt. Its policy excerpt is operator
// text in the system prompt; the test passes the hostile text there too, and
// the only fence labels left in the system prompt must be the two of the
// instruction that explains the fence.
func assertFencedDraft(t *testing.T, p prompt, text string) {
	t.Helper()
	if n := strings.Count(p.System, fenceLabel); n != 2 {
		t.Errorf("system prompt holds %d fence labels, want the 2 of the instruction:\n%s", n, p.System)
	}
	assertFenced(t, "", p.User, text, maxDraftText)
}

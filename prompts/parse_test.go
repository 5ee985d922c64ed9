package prompts

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/casebot/casebot/triage"
)

const validAnswer = `{"type":"product_defect","sentiment":"frustrated","sentiment_score":-0.7,"urgency":"high",` +
	`"financial_risk":"medium","amount":{"minor":8999,"currency":"USD"},"flags":["reputation","safety","safety"],` +
	`"root_cause_guess":"damaged_in_transit","language":"EN-us"}`

func TestParseClassification(t *testing.T) {
	valid := func(edit func(string) string) string { return edit(validAnswer) }
	replace := func(old, new string) string { return strings.Replace(validAnswer, old, new, 1) }
	tests := []struct {
		name    string
		content string
		wantErr bool
	}{
		{"valid", validAnswer, false},
		{"surrounding white space", "\n  " + validAnswer + "\n", false},
		{"no flags, no root cause", replace(`["reputation","safety","safety"]`, `[]`), false},
		{"null flags", replace(`["reputation","safety","safety"]`, `null`), false},
		{"empty root cause", replace(`"damaged_in_transit"`, `""`), false},
		{"no amount", replace(`{"minor":8999,"currency":"USD"}`, `{"minor":0,"currency":""}`), false},
		{"empty", "", true},
		{"prose before", "Here is the JSON: " + validAnswer, true},
		{"prose after", validAnswer + " I hope this helps.", true},
		{"markdown fence", "```json\n" + validAnswer + "\n```", true},
		{"second object", validAnswer + validAnswer, true},
		{"array", "[" + validAnswer + "]", true},
		{"null", "null", true},
		{"truncated", validAnswer[:len(validAnswer)/2], true},
		{"unknown field", valid(func(s string) string { return strings.TrimSuffix(s, "}") + `,"approve_refund":true}` }), true},
		{"unknown nested field", replace(`"currency":"USD"}`, `"currency":"USD","approved":true}`), true},
		{"bad type", replace(`"product_defect"`, `"complaint"`), true},
		{"bad urgency", replace(`"urgency":"high"`, `"urgency":"critical"`), true},
		{"bad flag", replace(`"reputation"`, `"none"`), true},
		{"score out of range", replace(`-0.7`, `-3`), true},
		{"score as string", replace(`-0.7`, `"-0.7"`), true},
		{"root cause outside taxonomy", replace(`"damaged_in_transit"`, `"aliens"`), true},
		{"missing language", replace(`"EN-us"`, `""`), true},
		{"language sentence", replace(`"EN-us"`, `"English"`), true},
		{"bad currency", replace(`"USD"`, `"dollars"`), true},
		{"amount without currency", replace(`"USD"`, `""`), true},
		{"negative amount", replace(`8999`, `-1`), true},
		{"missing type", replace(`"type":"product_defect",`, ``), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseClassification(tt.content, triage.DefaultRootCauses)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidAnswer) {
					t.Fatalf("err = %v, want ErrInvalidAnswer", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if c.Flags == nil {
				t.Error("flags are nil, want an empty list")
			}
		})
	}
}

func TestParseClassificationNormalises(t *testing.T) {
	c, err := parseClassification(validAnswer, triage.DefaultRootCauses)
	if err != nil {
		t.Fatal(err)
	}
	if c.Language != "en-US" {
		t.Errorf("language = %q, want en-US", c.Language)
	}
	if want := []triage.Flag{triage.FlagSafety, triage.FlagReputation}; !slices.Equal(c.Flags, want) {
		t.Errorf("flags = %v, want %v (deduplicated, display order)", c.Flags, want)
	}
}

func TestParseDraft(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    triage.Draft
		wantErr bool
	}{
		{"valid", `{"brief":" B ","reply":"R"}`, triage.Draft{Brief: "B", Reply: "R"}, false},
		{"empty reply", `{"brief":"B","reply":"  "}`, triage.Draft{}, true},
		{"missing brief", `{"reply":"R"}`, triage.Draft{}, true},
		{"unknown field", `{"brief":"B","reply":"R","send":true}`, triage.Draft{}, true},
		{"prose", `Sure: {"brief":"B","reply":"R"}`, triage.Draft{}, true},
		{"trailing", `{"brief":"B","reply":"R"} {}`, triage.Draft{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDraft(tt.content)
			if tt.wantErr != (err != nil) || tt.wantErr && !errors.Is(err, ErrInvalidAnswer) {
				t.Fatalf("err = %v, want error %v (ErrInvalidAnswer)", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCanonicalLanguage(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"en", "en", true},
		{"EN-us", "en-US", true},
		{"de_DE", "de-DE", true},
		{"zh-hant-tw", "zh-Hant-TW", true},
		{"es-419", "es-419", true},
		{"gsw", "gsw", true},
		{"", "", false},
		{"e", "", false},
		{"english", "", false},
		{"en-", "", false},
		{"en US", "", false},
		{"en-toolongsubtag", "", false},
		{"fr-ça", "", false},
	}
	for _, tt := range tests {
		got, ok := canonicalLanguage(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("canonicalLanguage(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParseClassification feeds arbitrary model answers: parsing never panics
// and yields either ErrInvalidAnswer or a classification that validates.
func FuzzParseClassification(f *testing.F) {
	f.Add(validAnswer)
	f.Add("")
	f.Add("{}")
	f.Add(`{"type":"refund"}`)
	f.Add("```json\n" + validAnswer + "\n```")
	f.Add(validAnswer + "{}")
	f.Add(`{"amount":{"minor":1e400}}`)
	f.Fuzz(func(t *testing.T, content string) {
		c, err := parseClassification(content, triage.DefaultRootCauses)
		if err != nil {
			if !errors.Is(err, ErrInvalidAnswer) {
				t.Fatalf("error %v does not wrap ErrInvalidAnswer", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed %q into an invalid classification: %v", content, err)
		}
		if c.RootCauseGuess != "" && !slices.Contains(triage.DefaultRootCauses, c.RootCauseGuess) {
			t.Fatalf("root cause %q outside the taxonomy", c.RootCauseGuess)
		}
		if _, ok := canonicalLanguage(c.Language); !ok {
			t.Fatalf("language %q accepted", c.Language)
		}
	})
}

package triage_test

import (
	"strings"
	"testing"

	"github.com/casebot/casebot/triage"
)

func TestParseSlackReplyTo(t *testing.T) {
	tests := []struct {
		in          string
		channel, ts string
		ok          bool
	}{
		{"C0INTAKE/1700000000.000100", "C0INTAKE", "1700000000.000100", true},
		{triage.SlackReplyTo("G0PRIVATE", "1.2"), "G0PRIVATE", "1.2", true},
		{"C0INTAKE", "", "", false},
		{"C0INTAKE/", "", "", false},
		{"/1700000000.000100", "", "", false},
		{"", "", "", false},
		{"C0INTAKE/1700000000.000100/extra", "", "", false},
		{"<abc@mail.example.com>", "", "", false},
	}
	for _, tc := range tests {
		channel, ts, ok := triage.ParseSlackReplyTo(tc.in)
		if channel != tc.channel || ts != tc.ts || ok != tc.ok {
			t.Errorf("ParseSlackReplyTo(%q) = %q, %q, %v; want %q, %q, %v", tc.in, channel, ts, ok, tc.channel, tc.ts, tc.ok)
		}
	}
}

// FuzzParseSlackReplyTo: whatever a ReplyTo holds, a parsed address has two
// non-empty parts without a slash and builds back to the same string.
func FuzzParseSlackReplyTo(f *testing.F) {
	for _, s := range []string{"C0INTAKE/1700000000.000100", "C0/", "/", "a/b/c", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		channel, ts, ok := triage.ParseSlackReplyTo(s)
		if !ok {
			if channel != "" || ts != "" {
				t.Errorf("ParseSlackReplyTo(%q) refused but returned %q, %q", s, channel, ts)
			}
			return
		}
		if channel == "" || ts == "" || strings.Contains(channel, "/") || strings.Contains(ts, "/") {
			t.Errorf("ParseSlackReplyTo(%q) = %q, %q", s, channel, ts)
		}
		if back := triage.SlackReplyTo(channel, ts); back != s {
			t.Errorf("SlackReplyTo(ParseSlackReplyTo(%q)) = %q", s, back)
		}
	})
}

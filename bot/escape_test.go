package bot

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Hello, my order #1001 is late.\n\tThanks", "Hello, my order #1001 is late.\n\tThanks"},
		{"empty", "", ""},
		{"specials", "a & b < c > d", "a &amp; b &lt; c &gt; d"},
		{"channel", "<!channel>", "&lt;!channel&gt;"},
		{"here", "<!here|here>", "&lt;!here|here&gt;"},
		{"user", "<@U123>", "&lt;@U123&gt;"},
		{"subteam", "<!subteam^S1>", "&lt;!subteam^S1&gt;"},
		{"link", "<http://x|y>", "&lt;http://x|y&gt;"},
		{"pre-escaped stays literal", "&lt;!here&gt;", "&amp;lt;!here&amp;gt;"},
		{"invalid UTF-8", "a\xffb\xc3(c", "a\uFFFDb\uFFFD(c"},
		{"terminal escape", "\x1b[31mred\x1b[0m", "[31mred[0m"},
		{"NUL DEL and C1", "a\x00b\x7fc\u0085d", "abcd"},
		{"CRLF", "a\r\nb\rc", "a\nb\nc"},
		{"line separators", "a\u2028b\u2029c", "a\nb\nc"},
		{"RLO stripped, Hebrew kept", "שלום \u202Etxt.exe\u202C", "שלום txt.exe"},
		{"isolates stripped", "\u2066a\u2069", "a"},
		{"directional marks kept", "a\u200Fb\u200Ec", "a\u200Fb\u200Ec"},
		{"ZWJ emoji kept", "👨\u200D👩\u200D👧", "👨\u200D👩\u200D👧"},
		{"Arabic kept", "مرحبا", "مرحبا"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Escape(tt.in); got != tt.want {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	family := "👨\u200D👩\u200D👧\u200D👦" // 7 runes
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"fits", "hello", 5, "hello"},
		{"cut", "hello world", 6, "hello…"},
		{"zero", "hello", 0, ""},
		{"negative", "hello", -1, ""},
		{"one", "hello", 1, "…"},
		{"counts runes not bytes", "héllo wörld", 6, "héllo…"},
		{"does not split amp", "a&amp;bcdef", 3, "a…"},
		{"does not split lt", "ab&lt;!here&gt;", 5, "ab…"},
		{"keeps whole entity", "ab&lt;cdefgh", 7, "ab&lt;…"},
		{"raw ampersand is not an entity", "a&bcdef", 3, "a&…"},
		{"does not split ZWJ sequence", "ab" + family + "cd", 6, "ab…"},
		{"keeps whole ZWJ sequence", "ab" + family + "cd", 10, "ab" + family + "…"},
		{"does not split combining mark", "cafe\u0301 au lait", 5, "caf…"},
		{"does not split skin tone", "ok 👍🏽 yes", 5, "ok …"},
		{"does not split flag", "🇫🇷🇩🇪x", 4, "🇫🇷…"},
		{"does not split first flag", "🇫🇷🇩🇪x", 2, "…"},
		{"long combining run is cut anyway", "a" + strings.Repeat("\u0301", 40), 20, "a" + strings.Repeat("\u0301", 18) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Truncate(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if tt.max >= 0 && utf8.RuneCountInString(got) > tt.max {
				t.Errorf("Truncate(%q, %d) has %d characters", tt.in, tt.max, utf8.RuneCountInString(got))
			}
		})
	}
}

// checkEscaped fails unless s is what Escape may produce: valid UTF-8, no
// '<' or '>', every '&' starting an entity, no control characters but
// newline and tab, no bidi controls.
func checkEscaped(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("not valid UTF-8: %q", s)
	}
	if strings.ContainsAny(s, "<>") {
		t.Fatalf("unescaped angle bracket: %q", s)
	}
	for i := range len(s) {
		if s[i] == '&' && !strings.HasPrefix(s[i:], "&amp;") && !strings.HasPrefix(s[i:], "&lt;") && !strings.HasPrefix(s[i:], "&gt;") {
			t.Fatalf("bare '&' at %d: %q", i, s)
		}
	}
	for _, r := range s {
		if (unicode.IsControl(r) && r != '\n' && r != '\t') || isBidiControl(r) {
			t.Fatalf("control character %U: %q", r, s)
		}
	}
}

var fuzzSeeds = []string{
	"", "plain", "<!channel>", "<!here>", "<@U123>", "<!subteam^S1>", "<http://x|y>",
	"&lt;!here&gt;", "a\xffb", "\xed\xa0\x80", "\x1b[2J", "\r\n", "\u202Eabc", "👨\u200D👩\u200D👧",
	"مرحبا שלום", "🇫🇷🇩🇪", "e\u0301",
}

func FuzzEscape(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkEscaped(t, Escape(s))
	})
}

func FuzzTruncate(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add(s, uint16(i))
	}
	f.Fuzz(func(t *testing.T, s string, n uint16) {
		max := int(n % 4096)
		e := Escape(s)
		got := Truncate(e, max)
		checkEscaped(t, got)
		if c := utf8.RuneCountInString(got); c > max {
			t.Fatalf("Truncate(%q, %d) has %d characters", e, max, c)
		}
		if got == e || max == 0 {
			return
		}
		kept, ok := strings.CutSuffix(got, Ellipsis)
		if !ok || !strings.HasPrefix(e, kept) {
			t.Fatalf("Truncate(%q, %d) = %q is not a prefix plus ellipsis", e, max, got)
		}
	})
}

package bot

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Ellipsis marks text that Truncate cut.
const Ellipsis = "…"

// Escape makes untrusted text (customer messages, model output, anything not
// written by casebot) safe to place in a Slack mrkdwn or plain_text object.
//
// Slack parses only "<...>" sequences into mentions and links, so escaping
// '&', '<' and '>' is enough to stop "<!channel>", "<@U123>" or
// "<http://evil|click>" from pinging or linking; '&' must go too, or
// "&lt;!here&gt;" typed by a customer would be decoded into a live mention.
// Escape also replaces invalid UTF-8 with U+FFFD, turns CR, CRLF and the
// Unicode line separators into '\n', and drops other control characters (a
// terminal transcript must not receive escape sequences) and the explicit
// bidirectional embedding, override and isolate controls, which could reorder
// the text that follows them on the card. Arabic or Hebrew text itself, joiners
// (ZWJ emoji sequences) and directional marks are kept.
func Escape(s string) string {
	var b strings.Builder
	// done is where the run of bytes not yet copied to b starts; runs of
	// safe text are copied whole.
	done := 0
	flush := func(i int) {
		if b.Cap() == 0 {
			b.Grow(len(s) + len(s)/4)
		}
		b.WriteString(s[done:i])
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c >= ' ' && c != '&' && c != '<' && c != '>' && c != 0x7f) || c == '\n' || c == '\t' {
				i++
				continue
			}
			flush(i)
			switch c {
			case '&':
				b.WriteString("&amp;")
			case '<':
				b.WriteString("&lt;")
			case '>':
				b.WriteString("&gt;")
			case '\r':
				if !strings.HasPrefix(s[i+1:], "\n") {
					b.WriteByte('\n')
				}
			}
			i++
			done = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			flush(i)
			b.WriteString("\uFFFD")
		case r == '\u2028' || r == '\u2029':
			flush(i)
			b.WriteByte('\n')
		case unicode.IsControl(r) || isBidiControl(r):
			flush(i)
		default:
			i += size
			continue
		}
		i += size
		done = i
	}
	if done == 0 {
		return s
	}
	flush(len(s))
	return b.String()
}

// isBidiControl reports whether r is an explicit bidirectional formatting
// character (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI).
func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// entities are the only '&' sequences Escape produces.
var entities = [...]string{"&amp;", "&lt;", "&gt;"}

// maxClusterBackoff bounds how many runes Truncate gives up to avoid cutting
// through a grapheme cluster; a longer cluster (a run of combining marks) is
// cut anyway.
const maxClusterBackoff = 16

// Truncate shortens s to at most max characters (Unicode code points, as
// Slack counts them), ending with Ellipsis when it cuts. The cut falls on a
// rune boundary, never inside an escape entity such as "&amp;", and where it
// can, not inside a grapheme cluster (an emoji ZWJ sequence, a base letter
// and its combining marks, a skin tone, a flag). Escape first and truncate the
// escaped text, so that the result as sent fits the limit.
func Truncate(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	cut := 0
	for n := 0; n < max-1; n++ {
		_, size := utf8.DecodeRuneInString(s[cut:])
		cut += size
	}
	safe := entityStart(s, cut)
	c := safe
	for range maxClusterBackoff {
		next := entityStart(s, clusterStart(s, c))
		if next == c {
			safe = c
			break
		}
		c = next
	}
	return s[:safe] + Ellipsis
}

// entityStart moves cut back to the '&' of an escape entity it would split.
func entityStart(s string, cut int) int {
	for p := max(0, cut-len("&amp;")+1); p < cut; p++ {
		if s[p] != '&' {
			continue
		}
		for _, e := range entities {
			if strings.HasPrefix(s[p:], e) && p+len(e) > cut {
				return p
			}
		}
	}
	return cut
}

// clusterStart moves cut back by one rune when the rune at cut extends the
// one before it, so that repeated calls reach the start of the cluster.
func clusterStart(s string, cut int) int {
	if cut == 0 {
		return cut
	}
	r, _ := utf8.DecodeRuneInString(s[cut:])
	prev, size := utf8.DecodeLastRuneInString(s[:cut])
	if prev == '\u200D' || extendsCluster(r) || (isRegionalIndicator(r) && oddRegionalRun(s[:cut])) {
		return cut - size
	}
	return cut
}

// extendsCluster reports whether r attaches to the rune before it.
func extendsCluster(r rune) bool {
	switch {
	case r == '\u200D', r == '\u20E3':
		return true
	case r >= '\uFE00' && r <= '\uFE0F', r >= 0xE0100 && r <= 0xE01EF: // variation selectors
		return true
	case r >= 0x1F3FB && r <= 0x1F3FF: // emoji skin tones
		return true
	case r >= 0xE0020 && r <= 0xE007F: // emoji tag sequences
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc)
}

func isRegionalIndicator(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

// oddRegionalRun reports whether s ends with an odd number of regional
// indicators, that is, with the first half of a flag.
func oddRegionalRun(s string) bool {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if !isRegionalIndicator(r) {
			break
		}
		n++
		s = s[:len(s)-size]
	}
	return n%2 == 1
}

package bot

import (
	"regexp"
	"strings"
	"unicode"

	"github.com/slack-go/slack"
)

// RenderText renders blocks as terminal text, roughly as Slack shows them, so
// the demo can print a channel transcript: the header between "===", section
// text and its fields two to a line, context elements joined by " | ", buttons as
// "[Approve] [Edit] [Escalate]". Mentions and links are shown as "@U123" and
// "label (url)", entities are decoded, and control characters are dropped so
// that no block can send escape sequences to the terminal.
func RenderText(blocks []slack.Block) string {
	var b strings.Builder
	for _, blk := range blocks {
		switch blk := derefBlock(blk).(type) {
		case nil:
		case slack.HeaderBlock:
			b.WriteString("=== " + displayText(blk.Text) + " ===\n")
		case slack.SectionBlock:
			if blk.Text != nil {
				b.WriteString(displayText(blk.Text) + "\n")
			}
			// Slack lays fields out in two columns.
			for i, f := range blk.Fields {
				b.WriteString(strings.ReplaceAll(displayText(f), "\n", " "))
				if i%2 == 0 && i+1 < len(blk.Fields) {
					b.WriteString(" | ")
				} else {
					b.WriteString("\n")
				}
			}
			if blk.Accessory != nil && blk.Accessory.ButtonElement != nil {
				b.WriteString(buttonText(blk.Accessory.ButtonElement) + "\n")
			}
		case slack.ContextBlock:
			var parts []string
			for _, e := range blk.ContextElements.Elements {
				switch e := e.(type) {
				case *slack.TextBlockObject:
					parts = append(parts, displayText(e))
				case slack.TextBlockObject:
					parts = append(parts, displayText(&e))
				}
			}
			b.WriteString(strings.Join(parts, " | ") + "\n")
		case slack.ActionBlock:
			var parts []string
			if blk.Elements != nil {
				for _, e := range blk.Elements.ElementSet {
					if btn, ok := e.(*slack.ButtonBlockElement); ok {
						parts = append(parts, buttonText(btn))
					}
				}
			}
			b.WriteString(strings.Join(parts, " ") + "\n")
		case slack.DividerBlock:
			b.WriteString("---\n")
		default:
			b.WriteString("[" + string(blk.BlockType()) + " block]\n")
		}
	}
	return b.String()
}

func buttonText(btn *slack.ButtonBlockElement) string { return "[" + displayText(btn.Text) + "]" }

// token matches Slack's "<...>" markup: mentions, links, dates.
var token = regexp.MustCompile(`<([^<>]*)>`)

// displayText turns Slack text into what a reader sees.
func displayText(t *slack.TextBlockObject) string {
	if t == nil {
		return ""
	}
	s := token.ReplaceAllStringFunc(t.Text, func(m string) string {
		target, label, hasLabel := strings.Cut(m[1:len(m)-1], "|")
		switch {
		case strings.HasPrefix(target, "@"), strings.HasPrefix(target, "#"):
			if hasLabel {
				return target[:1] + strings.TrimPrefix(label, target[:1])
			}
			return target
		case strings.HasPrefix(target, "!subteam^"):
			if hasLabel {
				return "@" + strings.TrimPrefix(label, "@")
			}
			return "@" + strings.TrimPrefix(target, "!subteam^")
		case strings.HasPrefix(target, "!"):
			if hasLabel {
				return label
			}
			return "@" + target[1:]
		case hasLabel:
			return label + " (" + target + ")"
		}
		return target
	})
	s = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
	return strings.Map(func(r rune) rune {
		if (unicode.IsControl(r) && r != '\n' && r != '\t') || isBidiControl(r) {
			return -1
		}
		return r
	}, s)
}

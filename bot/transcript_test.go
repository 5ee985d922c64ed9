package bot

import (
	"path/filepath"
	"testing"

	"github.com/slack-go/slack"
)

func TestRenderTextGolden(t *testing.T) {
	blocks := CardBlocks(escalationTicket(), CardOptions{Customer: jane})
	blocks = append(blocks, slack.NewDividerBlock())
	blocks = append(blocks, CardBlocks(approvedTicket(), CardOptions{Customer: jane,
		Last: Decision{Actor: "U0AGENT01", Action: ActionApprove, At: at}})...)
	golden(t, filepath.Join("testdata", "transcript_cards.golden.txt"), []byte(RenderText(blocks)))
}

func TestDisplayText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "hello *world*", "hello *world*"},
		{"user", "hi <@U0LEGAL01>", "hi @U0LEGAL01"},
		{"user with label", "hi <@U0LEGAL01|ann>", "hi @ann"},
		{"subteam", "<!subteam^S0REFUNDS>", "@S0REFUNDS"},
		{"subteam with label", "<!subteam^S0REFUNDS|@refunds>", "@refunds"},
		{"broadcast", "<!here> <!channel>", "@here @channel"},
		{"date fallback", "<!date^1700000000^{date_short}|Nov 14>", "Nov 14"},
		{"channel", "<#C0QUEUE|queue>", "#queue"},
		{"link with label", "<https://example.com|site>", "site (https://example.com)"},
		{"bare link", "<https://example.com>", "https://example.com"},
		{"entities decoded once", "&lt;!here&gt; &amp;lt;", "<!here> &lt;"},
		{"escaped text stays text", Escape("<@U123> & <http://x|y>"), "<@U123> & <http://x|y>"},
		{"controls dropped", "a\x1b[2Jb\u202Ec\r", "a[2Jbc"},
		{"newline and tab kept", "a\n\tb", "a\n\tb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := displayText(mrkdwn(tt.in)); got != tt.want {
				t.Errorf("displayText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRenderTextBlocks(t *testing.T) {
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain("Title")),
		slack.NewSectionBlock(mrkdwn("body"), []*slack.TextBlockObject{mrkdwn("*A*\n1"), mrkdwn("*B*\n2"), mrkdwn("*C*\n3")},
			slack.NewAccessory(slack.NewButtonBlockElement("open", "v", plain("Open")))),
		slack.NewContextBlock("", mrkdwn("one"), slack.NewImageBlockElement("https://example.com/i.png", "img"), mrkdwn("two")),
		slack.NewActionBlock("", slack.NewButtonBlockElement("a", "v", plain("Go")), slack.NewButtonBlockElement("b", "v", plain("Stop"))),
		slack.NewDividerBlock(),
		slack.NewImageBlock("https://example.com/chart.png", "chart", "", nil),
		nil,
	}
	want := "=== Title ===\nbody\n*A* 1 | *B* 2\n*C* 3\n[Open]\none | two\n[Go] [Stop]\n---\n[image block]\n"
	if got := RenderText(blocks); got != want {
		t.Errorf("RenderText = %q, want %q", got, want)
	}
}

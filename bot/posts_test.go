package bot

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/casebot/casebot/triage"
)

// hostileText would ping, broadcast or link if it reached Slack unescaped.
const hostileText = "<!channel> <!here> <@U123> <@W999|boss> <!subteam^S1> <http://evil.example|click> &lt;!here&gt; <#C0SECRET>"

type postCase struct {
	name   string
	post   triage.Post
	ticket triage.Ticket
	// live are the IDs that may be mentioned.
	live []string
	// channels are the channel IDs that may be linked.
	channels []string
	// contains are strings the message JSON must hold (as JSON-decoded text).
	contains []string
	// absent are strings no text in the message may hold.
	absent []string
}

// renderPost renders a non-card post as the poster does.
func renderPost(p triage.Post, t triage.Ticket, loc *time.Location) Message {
	switch p.Kind {
	case triage.PostEscalation:
		return EscalationMessage(p, t, loc)
	case triage.PostCustomerReply:
		return CustomerReplyMessage(p)
	}
	return ThreadMessage(p, t, loc)
}

func postCases() []postCase {
	thread := func(action, actor, detail string, mentions ...string) triage.Post {
		return triage.Post{ID: "P1", Kind: triage.PostThread, TicketID: "T-0001", Action: action, Actor: actor,
			Detail: detail, Mentions: mentions, CreatedAt: at.Add(time.Hour)}
	}
	posted := approvedTicket()
	posted.Slack = triage.SlackRef{Channel: "C0QUEUE", TS: "1772460300.000100"}

	manual := posted
	manual.Source, manual.Channel = triage.SourceManual, "phone"

	resolved := resolvedTicket()
	resolved.ResolutionNote = "Refunded in full; courier claim opened."
	resolvedPost := thread("resolved", "U0AGENT01", `root cause "damaged_in_transit", method "refund"`)
	resolvedPost.CreatedAt = resolved.ResolvedAt

	wrote := resolvedTicket()
	wrote.Entries = []triage.Entry{
		{At: at.Add(3 * time.Hour), Author: "jane@example.com", Body: "Thanks, but the refund hasn't arrived."},
		{At: at.Add(5 * time.Hour), Author: "jane@example.com", Body: "Still nothing.\nPlease check again."},
	}
	wrotePost := thread("customer_wrote", triage.ActorCustomer, "36 chars")
	wrotePost.CreatedAt = at.Add(5 * time.Hour)

	escalated := escalationTicket()
	escalated.Slack = triage.SlackRef{Channel: "C0ESCALATE", TS: "1772460300.000200"}

	hostileTicket := escalationTicket()
	hostileTicket.ID = "T-<!channel>"
	hostileTicket.Route.Channel = "C0QUEUE|<!here>"
	hostileTicket.Entries = []triage.Entry{{At: at.Add(time.Hour), Author: "<@U123>", Body: hostileText}}
	hostileTicket.RootCause, hostileTicket.ResolutionNote, hostileTicket.ResolvedAt = hostileText, hostileText, at.Add(time.Hour)
	hostileMentions := []string{"<!channel>", "U0LEGAL01", "!here", "U12|evil", "C0CHANNEL", "U0LEGAL01>"}
	hostileAbsent := []string{"<!channel>", "<!here>", "<@U123>", "<@W999", "<!subteam^S1>", "<http", "<#C0SECRET>"}

	return []postCase{
		{name: "approved", post: thread("approved", "U0AGENT01", "reply 182 chars"), ticket: posted,
			live:     []string{"U0AGENT01"},
			contains: []string{"✅ Approved by <@U0AGENT01>: reply sent by email · 2026-03-02 15:05 UTC"},
			absent:   []string{"182 chars"}},
		{name: "approved_manual", post: thread("approved", "U0AGENT01", "reply 182 chars"), ticket: manual,
			live:     []string{"U0AGENT01"},
			contains: []string{"✅ Approved by <@U0AGENT01>: no way back to the customer, copy the reply from the card"}},
		{name: "escalated", post: thread("escalated", "U0AGENT01", "Customer threatens to sue; needs legal review.", "U0LEGAL01"),
			ticket: escalated, live: []string{"U0AGENT01", "U0LEGAL01"},
			contains: []string{"⚠️ Escalated by <@U0AGENT01> to <@U0LEGAL01> · 2026-03-02 15:05 UTC\n> Customer threatens to sue; needs legal review."}},
		{name: "resolved", post: resolvedPost, ticket: resolved, live: []string{"U0AGENT01"},
			contains: []string{"🏁 Resolved by <@U0AGENT01>", "> root cause: damaged_in_transit · method: refund\n> Refunded in full; courier claim opened."}},
		{name: "rated_low", post: thread("rated", triage.ActorCustomer, "rating 2", "U0AGENT01"), ticket: posted,
			live:     []string{"U0AGENT01"},
			contains: []string{"⭐ Customer rated 2/5 — reopened, <@U0AGENT01> please follow up"}},
		{name: "rated_high", post: thread("rated", triage.ActorCustomer, "rating 5"), ticket: posted,
			contains: []string{"⭐ Customer rated 5/5 — closed"}},
		{name: "reopened", post: thread("reopened", "U0AGENT01", "Customer says the replacement is broken too."), ticket: posted,
			live:     []string{"U0AGENT01"},
			contains: []string{"🔁 Reopened by <@U0AGENT01>", "> Customer says the replacement is broken too."}},
		{name: "customer_wrote", post: wrotePost, ticket: wrote,
			contains: []string{"✉️ Customer wrote again", "> Still nothing.\n> Please check again."},
			absent:   []string{"hasn't arrived", "36 chars"}},
		{name: "other_action", post: thread("sop_linked", triage.ActorSystem, "SOP v3 applies", "S0REFUNDS"), ticket: posted,
			live:     []string{"S0REFUNDS"},
			contains: []string{"ℹ️ sop linked by casebot · <!subteam^S0REFUNDS>", "> SOP v3 applies"}},
		{name: "escalation", ticket: escalated, live: []string{"U0AGENT01", "U0LEGAL01"}, channels: []string{"C0ESCALATE"},
			post: triage.Post{ID: "P2", Kind: triage.PostEscalation, TicketID: "T-0002", Channel: "C0OWNERS",
				Action: "escalated", Actor: "U0AGENT01", Detail: "Customer threatens to sue; needs legal review.",
				Mentions: []string{"U0LEGAL01"}, CreatedAt: at.Add(time.Hour)},
			contains: []string{"🚨 <@U0LEGAL01>: ticket `T-0002` in <#C0ESCALATE> was escalated by <@U0AGENT01> · 🟥 Product defect · high urgency"}},
		{name: "customer_reply", ticket: posted,
			post: triage.Post{ID: "P3", Kind: triage.PostCustomerReply, TicketID: "T-0001", Channel: "C0INTAKE",
				ThreadTS: "1772460000.000100", Actor: "U0AGENT01", Text: "Hi Jane,\n\nRefunded USD 89.99 & sorry!"},
			contains: []string{"Hi Jane,\n\nRefunded USD 89.99 &amp; sorry!"}},
		{name: "hostile_thread", ticket: hostileTicket, live: []string{"U0LEGAL01"},
			post: triage.Post{ID: "P4", Kind: triage.PostThread, TicketID: hostileTicket.ID, Action: "escalated",
				Actor: "<!channel>", Detail: hostileText, Mentions: hostileMentions, CreatedAt: at},
			contains: []string{"&lt;!channel&gt;", "&lt;http://evil.example|click&gt;", "&amp;lt;!here&amp;gt;"},
			absent:   hostileAbsent},
		{name: "hostile_unknown_action", ticket: hostileTicket,
			post: triage.Post{ID: "P5", Kind: triage.PostThread, TicketID: hostileTicket.ID, Action: "<!here>",
				Actor: "<@U123>", Detail: hostileText, CreatedAt: at},
			contains: []string{"ℹ️ &lt;!here&gt; by &lt;@U123&gt;"}, absent: hostileAbsent},
		{name: "hostile_resolved", ticket: hostileTicket,
			post:   triage.Post{ID: "P6", Kind: triage.PostThread, TicketID: hostileTicket.ID, Action: "resolved", Actor: "U0AGENT01", CreatedAt: at.Add(time.Hour)},
			live:   []string{"U0AGENT01"},
			absent: hostileAbsent},
		{name: "hostile_customer_wrote", ticket: hostileTicket,
			post:     triage.Post{ID: "P7", Kind: triage.PostThread, TicketID: hostileTicket.ID, Action: "customer_wrote", Actor: triage.ActorCustomer, CreatedAt: at.Add(time.Hour)},
			contains: []string{"> &lt;!channel&gt;"}, absent: hostileAbsent},
		{name: "hostile_escalation", ticket: hostileTicket, live: []string{"U0LEGAL01"},
			post: triage.Post{ID: "P8", Kind: triage.PostEscalation, TicketID: hostileTicket.ID, Channel: "C0OWNERS",
				Actor: "<!here>", Detail: hostileText, Mentions: hostileMentions, CreatedAt: at},
			contains: []string{"ticket `T-&lt;!channel&gt;` in `C0QUEUE|&lt;!here&gt;`"}, absent: hostileAbsent},
		{name: "hostile_customer_reply", ticket: hostileTicket,
			post:   triage.Post{ID: "P9", Kind: triage.PostCustomerReply, TicketID: hostileTicket.ID, Channel: "C0INTAKE", Text: hostileText},
			absent: hostileAbsent},
		{name: "hostile_long", ticket: posted, live: []string{"U0AGENT01"},
			post:     thread("reopened", "U0AGENT01", strings.Repeat("<!channel> ", 2000)+"THE END"),
			contains: []string{"…"}, absent: []string{"THE END", "<!channel>"}},
	}
}

func TestPostGolden(t *testing.T) {
	for _, tc := range postCases() {
		t.Run(tc.name, func(t *testing.T) {
			msg := renderPost(tc.post, tc.ticket, nil)
			if err := ValidateBlocks(msg.Blocks); err != nil {
				t.Fatalf("ValidateBlocks: %v", err)
			}
			if n := utf8.RuneCountInString(msg.Text); n == 0 || n > maxReplyText ||
				(tc.post.Kind != triage.PostCustomerReply && n > MaxMessageText) {
				t.Errorf("text has %d characters", n)
			}
			got := marshalGolden(t, msg)
			golden(t, filepath.Join("testdata", "post_"+tc.name+".golden.json"), got)

			texts := jsonStrings(t, got)
			all := strings.Join(texts, "\n")
			for _, want := range tc.contains {
				if !strings.Contains(all, want) {
					t.Errorf("message lacks %q", want)
				}
			}
			for _, bad := range tc.absent {
				if strings.Contains(all, bad) {
					t.Errorf("message holds %q", bad)
				}
			}
			checkLive(t, texts, tc.live, tc.channels)
			for _, id := range tc.live {
				if !strings.Contains(all, Mention(id)) {
					t.Errorf("message does not mention %s", id)
				}
			}
		})
	}
}

// checkLive fails if any text holds a live token other than a mention of
// one of ids or a link to one of channels.
func checkLive(t *testing.T, texts, ids, channels []string) {
	t.Helper()
	stripped := make([]string, len(texts))
	for i, s := range texts {
		for _, ch := range channels {
			s = strings.ReplaceAll(s, "<#"+ch+">", "#"+ch)
		}
		stripped[i] = s
	}
	checkMentions(t, stripped, ids)
}

// TestPostTruncationKeepsMentions checks that a long detail is cut, not the
// mentions before it.
func TestPostTruncationKeepsMentions(t *testing.T) {
	var owners []string
	for i := range maxMentions + 5 {
		owners = append(owners, "U0OWNER"+strings.Repeat("X", 20)+string(rune('A'+i)))
	}
	p := triage.Post{Kind: triage.PostThread, Action: "escalated", Actor: "U0AGENT01", Mentions: owners,
		Detail: strings.Repeat("&", 5000), CreatedAt: at}
	msg := ThreadMessage(p, approvedTicket(), nil)
	if err := ValidateBlocks(msg.Blocks); err != nil {
		t.Fatalf("ValidateBlocks: %v", err)
	}
	for _, id := range owners[:maxMentions] {
		if !strings.Contains(msg.Text, Mention(id)) {
			t.Errorf("mention of %s lost", id)
		}
	}
	if strings.Contains(msg.Text, Mention(owners[maxMentions])) {
		t.Errorf("more than %d mentions", maxMentions)
	}
	if !strings.HasSuffix(msg.Text, Ellipsis) {
		t.Errorf("long detail not cut with an ellipsis: ...%q", msg.Text[len(msg.Text)-20:])
	}
	checkMentions(t, []string{msg.Text}, append(owners, "U0AGENT01"))
}

func TestRatingText(t *testing.T) {
	tests := []struct {
		detail string
		rating int
		want   string
	}{
		{"rating 1", 0, "⭐ Customer rated 1/5 — reopened"},
		{"rating 3", 1, "⭐ Customer rated 3/5 — closed"},
		{"", 4, "⭐ Customer rated 4/5 — closed"},
		{"rating 9", 0, "⭐ Customer rated the follow-up"},
		{"", 0, "⭐ Customer rated the follow-up"},
	}
	for _, tc := range tests {
		got := ratingText(triage.Post{Detail: tc.detail}, triage.Ticket{Rating: tc.rating})
		if got != tc.want {
			t.Errorf("ratingText(%q, %d) = %q, want %q", tc.detail, tc.rating, got, tc.want)
		}
	}
}

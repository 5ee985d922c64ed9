package bot

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/triage"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// at is the fixed time of every fixture.
var at = time.Date(2026, 3, 2, 14, 5, 0, 0, time.UTC)

var jane = triage.Customer{ID: "C-42", Name: "Jane Doe", Email: "jane@example.com"}

func refundTicket() triage.Ticket {
	return triage.Ticket{
		ID: "T-0001", Source: triage.SourceEmail, Channel: "email", ExternalID: "msg-1", CustomerID: "C-42",
		Subject:    "Refund for order 1001",
		Body:       "Hi, my blender arrived with a cracked jug.\n\n\n\nI'd like a refund please.\nThanks, Jane",
		OrderRef:   "1001",
		ReceivedAt: at,
		State:      triage.StateAwaitingReview,
		Classification: triage.Classification{
			Type: triage.TypeRefund, Sentiment: triage.SentimentNeutral, SentimentScore: -0.2,
			Urgency: triage.LevelMedium, FinancialRisk: triage.LevelMedium,
			Amount: triage.Money{Minor: 8999, Currency: "USD"}, Language: "en",
		},
		ClassifiedBy:  "model",
		Route:         triage.Route{Channel: "C0QUEUE", Name: "routes[3]"},
		DraftRevision: -1,
		Brief: "Jug of order 1001 arrived cracked; first ticket from this customer in two years. " +
			"Policy: damaged-on-arrival items are refunded in full without return.",
		Draft: "Hi Jane,\n\nI'm sorry your blender arrived damaged. I've refunded USD 89.99 to your card; " +
			"you'll see it within 5 business days. No need to send it back.\n\nBest, Sam",
	}
}

func escalationTicket() triage.Ticket {
	t := refundTicket()
	t.ID = "T-0002"
	t.Subject = ""
	t.Body = "The kettle you sold me caught fire and burned my hand. My lawyer says I should sue you."
	t.State = triage.StateEscalated
	t.Classification.Type = triage.TypeProductDefect
	t.Classification.Urgency = triage.LevelHigh
	t.Classification.Sentiment, t.Classification.SentimentScore = triage.SentimentFrustrated, -0.9
	t.Classification.Flags = []triage.Flag{triage.FlagLegal, triage.FlagSafety, triage.FlagHighEmotion}
	t.Triggers = []triage.Trigger{
		{Rule: "legal", Flag: triage.FlagLegal, Reason: `"lawyer" (en); "sue" (en)`, Owner: "legal", Escalate: true, NeedsApproval: true},
		{Rule: "safety", Flag: triage.FlagSafety, Reason: `"burned" (en); "caught fire" (en)`, Owner: "safety", Escalate: true, NeedsApproval: true},
	}
	t.Route = triage.Route{Channel: "C0ESCALATE", Name: "routes[0]", Escalate: true,
		Mentions: []string{"U0LEGAL01", "U0SAFETY1", "S0REFUNDS"}}
	t.NeedsApproval = true
	t.Brief, t.Draft = "", ""
	return t
}

func rulesOnlyTicket() triage.Ticket {
	t := refundTicket()
	t.ID = "T-0003"
	t.Subject = "Where is my parcel?"
	t.Body = "Tracking hasn't moved for a week."
	t.OrderRef = ""
	t.Classification = triage.Classification{Type: triage.TypeDelivery, Sentiment: triage.SentimentNeutral,
		Urgency: triage.LevelLow, FinancialRisk: triage.LevelLow, Language: "en"}
	t.ClassifiedBy, t.RulesReason = "rules", "ollama: context deadline exceeded"
	t.Brief, t.Draft = "", ""
	return t
}

func approvedTicket() triage.Ticket {
	t := refundTicket()
	t.State, t.Reviewed, t.DraftSent = triage.StateReplied, true, true
	t.Sent, t.Assignee, t.FirstResponseAt = t.Draft, "U0AGENT01", at.Add(10*time.Minute)
	t.ReplyQueued = true
	return t
}

// reopenedTicket is resolvedTicket after an Edit-send, reopened by the
// customer: the old draft is dropped and a fresh one is wanted; redraft
// gives it that fresh draft.
func reopenedTicket(redraft string) triage.Ticket {
	t := resolvedTicket()
	t.Sent = "Edited by Ann: your refund of USD 89.99 went out today."
	t.State, t.Draft, t.DraftWanted, t.DraftVersion = triage.StateReopened, "", true, 2
	t.Entries = append(t.Entries, triage.Entry{At: at.Add(3 * time.Hour), Author: "jane", Body: "The refund never arrived."})
	if redraft != "" {
		t.Draft, t.DraftBy, t.DraftWanted, t.DraftVersion = redraft, triage.DraftByModel, false, 3
	}
	return t
}

func resolvedTicket() triage.Ticket {
	t := approvedTicket()
	t.State, t.ResolvedAt = triage.StateResolved, at.Add(2*time.Hour)
	t.RootCause, t.ResolutionMethod = "damaged_in_transit", "refund"
	return t
}

// hostile fills every customer- and model-derived field of a ticket with
// text that would ping or link if it reached Slack unescaped, and adds
// invalid owner IDs to the route.
func hostile(body string) (triage.Ticket, CardOptions) {
	t := escalationTicket()
	t.ID = "T-0666"
	t.Subject = "<!channel> URGENT <!here>"
	t.Body = body
	t.Channel = "<!everyone>"
	t.OrderRef = "<http://x|y>"
	t.Classification.Flags = append(t.Classification.Flags, triage.FlagVIP)
	t.Triggers = append(t.Triggers, triage.Trigger{Rule: "vip", Flag: triage.FlagVIP, Reason: `tag "<@U123>"`})
	t.ClassifiedBy, t.RulesReason = "rules", "model said <!channel> & <http://evil.example|ok>"
	t.Brief = "Customer writes <!subteam^S1> and <@U123>."
	t.Draft = "Click <http://evil.example|here> to claim your refund."
	t.Route.Mentions = []string{"U0LEGAL01", "<!channel>", "u0lower", "C0CHANNEL", "S1", "U0LEGAL01",
		"U12|evil", "", "W0ENTERP1", "!here", "U0LEGAL01>"}
	t.Reviewed, t.Assignee = true, "<!here>"
	opts := CardOptions{
		Customer: triage.Customer{ID: "C-666", Name: "<!here> Mallory", Email: "<mailto:m@evil.example|boss>"},
		Last:     Decision{Actor: "<!channel>", Action: "<@U123>", At: at.Add(time.Minute)},
	}
	return t, opts
}

const family = "👨\u200D👩\u200D👧\u200D👦"

type cardCase struct {
	name   string
	ticket triage.Ticket
	opts   CardOptions
	// hostile cases are checked for live mentions and links.
	hostile bool
	// contains are strings the message JSON must hold (as JSON-decoded text).
	contains []string
	// absent are strings no text in the message may hold.
	absent []string
}

func cardCases() []cardCase {
	withHostile := func(name, body string, contains, absent []string) cardCase {
		t, opts := hostile(body)
		return cardCase{name: name, ticket: t, opts: opts, hostile: true, contains: contains, absent: absent}
	}
	return []cardCase{
		{name: "refund", ticket: refundTicket(), opts: CardOptions{Customer: jane},
			contains: []string{"🟧 Refund · medium urgency", "USD 89.99", `"action_id": "approve"`}},
		{name: "escalation", ticket: escalationTicket(), opts: CardOptions{Customer: jane},
			contains: []string{"<@U0LEGAL01> <@U0SAFETY1> <!subteam^S0REFUNDS>", "⚖️ *legal*", "🩹 *safety*",
				"😡 *high_emotion* (model)", "_Drafting…_", "Needs approval authority"},
			absent: []string{`"action_id": "approve"`}},
		{name: "rules_only_flags", ticket: func() triage.Ticket {
			t := escalationTicket()
			t.ClassifiedBy, t.RulesReason = "rules", "no model configured"
			return t
		}(), opts: CardOptions{Customer: jane},
			contains: []string{"😡 *high_emotion* (keyword rules)"},
			absent:   []string{"(model)"}},
		{name: "long_draft", ticket: longDraftTicket(), opts: CardOptions{Customer: jane},
			contains: []string{"The draft is longer than the card shows", `"action_id": "edit"`, "…"},
			absent:   []string{`"action_id": "approve"`, "END OF DRAFT"}},
		{name: "rules_only", ticket: rulesOnlyTicket(), opts: CardOptions{Customer: triage.Customer{ID: "C-7", Handle: "@parcelwatcher"}},
			contains: []string{"🛟 *Rules only*", "ollama: context deadline exceeded", "@parcelwatcher"}},
		{name: "approved", ticket: approvedTicket(),
			opts:     CardOptions{Customer: jane, Last: Decision{Actor: "U0AGENT01", Action: "approved", At: at.Add(10 * time.Minute)}},
			contains: []string{"✅ Approved and sent by <@U0AGENT01> · 2026-03-02 14:15 UTC", "*Sent reply*", `"action_id": "resolve"`},
			absent:   []string{`"action_id": "approve"`}},
		{name: "approved_no_way_back", ticket: func() triage.Ticket {
			t := approvedTicket()
			t.Source, t.ReplyQueued = triage.SourceManual, false
			return t
		}(),
			opts:     CardOptions{Customer: jane, Last: Decision{Actor: "U0AGENT01", Action: "approved", At: at.Add(10 * time.Minute)}},
			contains: []string{"✅ Approved, to send by hand, by <@U0AGENT01>", "*Approved reply, to send by hand*"},
			absent:   []string{"Approved and sent", "*Sent reply*"}},
		{name: "resolved", ticket: resolvedTicket(),
			opts: CardOptions{Customer: jane, Last: Decision{Actor: "U0AGENT01", Action: ActionResolve, At: at.Add(2 * time.Hour)},
				Location: time.FixedZone("EST", -5*3600)},
			contains: []string{"🏁 Resolved by <@U0AGENT01> · 2026-03-02 11:05 EST", "root cause `damaged_in_transit`", `"action_id": "reopen"`},
			absent:   []string{`"action_id": "resolve"`, `"action_id": "approve"`}},
		{name: "reopened_drafting", ticket: reopenedTicket(""),
			opts:     CardOptions{Customer: jane, Last: Decision{Actor: "U0AGENT01", Action: ActionReopen, At: at.Add(3 * time.Hour)}},
			contains: []string{"*Reply sent before*\nEdited by Ann", "*Draft reply*\n_Drafting…_", `"action_id": "edit"`},
			absent:   []string{`"action_id": "approve"`}},
		{name: "reopened_redrafted", ticket: reopenedTicket("Hi Jane, I'm sorry the refund has not reached you yet."),
			opts: CardOptions{Customer: jane},
			contains: []string{"*Reply sent before*\nEdited by Ann", "*Draft reply*\nHi Jane, I'm sorry the refund",
				`"value": "T-0001#3"`}},
		withHostile("hostile_mentions",
			"Hey <!channel> <!here> <!everyone> <@U123> <@W999|boss> <!subteam^S1> &lt;!here&gt; see <http://x|y>",
			[]string{"&lt;!channel&gt;", "&lt;@U123&gt;", "&lt;!subteam^S1&gt;", "&lt;http://x|y&gt;", "&amp;lt;!here&amp;gt;",
				"🚨 *Escalated to* <@U0LEGAL01> <@W0ENTERP1>"},
			nil),
		withHostile("hostile_long", strings.Repeat("refund now <!channel> ", 455)+"THE END", []string{"…"}, []string{"THE END"}),
		withHostile("hostile_utf8", "bad bytes: \xff\xfe \xc3\x28 \xed\xa0\x80 \xf0\x9f\x98 end", []string{"\uFFFD", "end"}, nil),
		withHostile("hostile_rtl", "مرحبا، أريد استرداد المبلغ \u202Egnp.exe\u202C שלום, אני רוצה החזר \u2067x\u2069",
			[]string{"مرحبا، أريد استرداد المبلغ gnp.exe שלום, אני רוצה החזר x"}, []string{"\u202E", "\u202C", "\u2067", "\u2069"}),
		withHostile("hostile_emoji", "Family "+family+" 🏳️\u200D🌈 👍🏽 🇫🇷\n"+strings.Repeat(family, 400),
			[]string{family + " 🏳️\u200D🌈 👍🏽 🇫🇷", family + "…"}, nil),
	}
}

func TestCardGolden(t *testing.T) {
	for _, tc := range cardCases() {
		t.Run(tc.name, func(t *testing.T) {
			msg := CardMessage(tc.ticket, tc.opts)
			if err := ValidateBlocks(msg.Blocks); err != nil {
				t.Fatalf("ValidateBlocks: %v", err)
			}
			if n := utf8.RuneCountInString(msg.Text); n > MaxMessageText || n == 0 {
				t.Errorf("fallback text has %d characters", n)
			}
			checkEscaped(t, msg.Text)
			got := marshalGolden(t, msg)
			golden(t, filepath.Join("testdata", "card_"+tc.name+".golden.json"), got)

			texts := jsonStrings(t, got)
			all := strings.Join(texts, "\n")
			raw := string(got)
			for _, want := range tc.contains {
				if !strings.Contains(all, want) && !strings.Contains(raw, want) {
					t.Errorf("message lacks %q", want)
				}
			}
			for _, bad := range tc.absent {
				if strings.Contains(all, bad) || strings.Contains(raw, bad) {
					t.Errorf("message holds %q", bad)
				}
			}
			if tc.hostile {
				checkMentions(t, texts, tc.ticket.Route.Mentions)
			}
		})
	}
}

// liveToken matches the only "<...>" sequences a card may contain: user and
// user-group mentions.
var liveToken = regexp.MustCompile(`^<(?:@([UW][A-Z0-9]{2,})|!subteam\^(S[A-Z0-9]{2,}))>`)

// checkMentions fails if any text holds a '<' that does not start a mention
// of one of the configured owners, or any broadcast.
func checkMentions(t *testing.T, texts, owners []string) {
	t.Helper()
	for _, s := range texts {
		if !utf8.ValidString(s) {
			t.Errorf("invalid UTF-8 in %q", s)
		}
		for _, bad := range []string{"<!channel", "<!here", "<!everyone", "<http", "<mailto"} {
			if strings.Contains(s, bad) {
				t.Errorf("live %q in %q", bad, s)
			}
		}
		for i := strings.IndexByte(s, '<'); i >= 0; i = next(s, i) {
			m := liveToken.FindStringSubmatch(s[i:])
			if m == nil {
				t.Errorf("unescaped '<' at %d in %q", i, s)
				continue
			}
			id := m[1] + m[2]
			if !slices.Contains(owners, id) {
				t.Errorf("mention of %s, not a configured owner, in %q", id, s)
			}
		}
	}
}

func next(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '<')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// jsonStrings returns every string value in a JSON document.
func jsonStrings(t *testing.T, doc []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// marshalGolden encodes v as indented JSON with '<', '>' and '&' left
// readable, so that mentions read as "<@U…>" and entities as "&lt;" in the
// golden files. (slack-go's nested marshalers escape them; Slack accepts
// either form.)
func marshalGolden(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 0, len(b)+1)
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			out = append(out, b[i])
			continue
		}
		switch string(b[i:min(i+6, len(b))]) {
		case `\u003c`:
			out = append(out, '<')
		case `\u003e`:
			out = append(out, '>')
		case `\u0026`:
			out = append(out, '&')
		default:
			// Copy the escape pair as is, so "\\u003c" stays a backslash
			// followed by text.
			out = append(out, b[i], b[i+1])
			i++
			continue
		}
		i += 5
	}
	return append(out, '\n')
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendered output (run go test ./bot -update and review the diff):\n%s", path, got)
	}
}

// TestCardRoundTrip decodes each card as the Slack stand-in will, through
// slack.Blocks, and validates the decoded (pointer) blocks.
func TestCardRoundTrip(t *testing.T) {
	for _, tc := range cardCases() {
		msg := CardMessage(tc.ticket, tc.opts)
		data, err := json.Marshal(slack.Blocks{BlockSet: msg.Blocks})
		if err != nil {
			t.Fatal(err)
		}
		var decoded slack.Blocks
		if err := json.Unmarshal(data, &decoded); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(decoded.BlockSet) != len(msg.Blocks) {
			t.Fatalf("%s: %d blocks decoded, %d sent", tc.name, len(decoded.BlockSet), len(msg.Blocks))
		}
		if err := ValidateBlocks(decoded.BlockSet); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if got, want := RenderText(decoded.BlockSet), RenderText(msg.Blocks); got != want {
			t.Errorf("%s: transcript of decoded blocks differs:\n%s\nwant:\n%s", tc.name, got, want)
		}
	}
}

func TestMention(t *testing.T) {
	tests := []struct{ id, want string }{
		{"U0LEGAL01", "<@U0LEGAL01>"},
		{"W0ENTERP1", "<@W0ENTERP1>"},
		{"S0REFUNDS", "<!subteam^S0REFUNDS>"},
		{"U12", "<@U12>"},
		{"U1", ""},
		{"S1", ""},
		{"u0lower", ""},
		{"C0CHANNEL", ""},
		{"<!channel>", ""},
		{"U12|evil", ""},
		{"U0LEGAL01>", ""},
		{"U0LEGAL01\n", ""},
		{"U" + strings.Repeat("A", 31), "<@U" + strings.Repeat("A", 31) + ">"},
		{"U" + strings.Repeat("A", 32), ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Mention(tt.id); got != tt.want {
			t.Errorf("Mention(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

// longDraftTicket has a draft longer than the card shows.
func longDraftTicket() triage.Ticket {
	t := refundTicket()
	t.Draft = strings.Repeat("We are sorry about the cracked jug & will make it right. ", 55) + "END OF DRAFT"
	return t
}

func TestCardButtons(t *testing.T) {
	type btn struct {
		id    string
		style slack.Style
	}
	decide := []btn{{ActionApprove, slack.StylePrimary}, {ActionEdit, ""}, {ActionEscalate, slack.StyleDanger}}
	after := []btn{{ActionResolve, slack.StylePrimary}, {ActionReopen, ""}}
	tests := []struct {
		state    triage.State
		reviewed bool
		draft    string
		want     []btn
	}{
		{triage.StateAwaitingReview, false, "draft", decide},
		{triage.StateAwaitingReview, false, "", decide[1:]},
		// Approve sends the draft as stored: only one shown whole.
		{triage.StateAwaitingReview, false, strings.Repeat("x", draftMax), decide},
		{triage.StateAwaitingReview, false, strings.Repeat("x", draftMax+1), decide[1:]},
		{triage.StateAwaitingReview, false, strings.Repeat("x", draftMax-5) + "&", decide}, // "&amp;" just fits
		{triage.StateAwaitingReview, false, strings.Repeat("x", draftMax-4) + "&", decide[1:]},
		{triage.StateEscalated, false, strings.Repeat("x", draftMax+1), decide[1:]},
		{triage.StateReplied, true, strings.Repeat("x", draftMax+1), after},
		{triage.StateReopened, true, "draft", decide},
		{triage.StateEscalated, false, "draft", decide},
		{triage.StateEscalated, true, "draft", after},
		{triage.StateReplied, true, "draft", after},
		{triage.StateResolved, true, "draft", []btn{{ActionReopen, ""}}},
		{triage.StateFollowedUp, true, "draft", []btn{{ActionReopen, ""}}},
		{triage.StateClosed, true, "draft", []btn{{ActionReopen, ""}}},
	}
	for _, tt := range tests {
		tk := refundTicket()
		tk.State, tk.Reviewed, tk.Draft = tt.state, tt.reviewed, tt.draft
		blocks := CardBlocks(tk, CardOptions{})
		actions, ok := blocks[len(blocks)-1].(*slack.ActionBlock)
		if !ok {
			t.Fatalf("%s: last block is %T, want actions", tt.state, blocks[len(blocks)-1])
		}
		var got []btn
		for _, e := range actions.Elements.ElementSet {
			b := e.(*slack.ButtonBlockElement)
			want := tk.ID
			if b.ActionID == ActionApprove {
				// Approve also names the draft version the card shows.
				want = versioned(tk)
			}
			if b.Value != want {
				t.Errorf("%s: button %s has value %q, want %q", tt.state, b.ActionID, b.Value, want)
			}
			got = append(got, btn{b.ActionID, b.Style})
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("state %s reviewed=%v draft of %d: buttons %v, want %v", tt.state, tt.reviewed, len(tt.draft), got, tt.want)
		}
	}
}

func TestValidateBlocks(t *testing.T) {
	text := func(n int) string { return strings.Repeat("x", n) }
	sec := func(s string) slack.Block { return slack.NewSectionBlock(mrkdwn(s), nil, nil) }
	ctx := func(n int) slack.Block {
		var elems []slack.MixedElement
		for range n {
			elems = append(elems, mrkdwn("x"))
		}
		return slack.NewContextBlock("", elems...)
	}
	btn := func(id, label, value string) *slack.ButtonBlockElement {
		return slack.NewButtonBlockElement(id, value, plain(label))
	}
	many := func(n int) []slack.Block {
		var out []slack.Block
		for range n {
			out = append(out, slack.NewDividerBlock())
		}
		return out
	}
	var fields []*slack.TextBlockObject
	for range 11 {
		fields = append(fields, mrkdwn("f"))
	}
	tests := []struct {
		name   string
		blocks []slack.Block
		want   string // substring of the error; "" for valid
	}{
		{"valid card", CardBlocks(refundTicket(), CardOptions{}), ""},
		{"values not pointers", []slack.Block{*slack.NewHeaderBlock(plain("h")), *slack.NewSectionBlock(mrkdwn("s"), nil, nil)}, ""},
		{"empty message", nil, ""},
		{"50 blocks", many(50), ""},
		{"51 blocks", many(51), "51 blocks"},
		{"nil block", []slack.Block{nil}, "nil block"},
		{"nil pointer", []slack.Block{(*slack.SectionBlock)(nil)}, "nil block"},
		{"header 150", []slack.Block{slack.NewHeaderBlock(plain(text(150)))}, ""},
		{"header 151", []slack.Block{slack.NewHeaderBlock(plain(text(151)))}, "blocks[0].text: 151 characters"},
		{"header counts characters", []slack.Block{slack.NewHeaderBlock(plain(strings.Repeat("é", 150)))}, ""},
		{"header mrkdwn", []slack.Block{slack.NewHeaderBlock(mrkdwn("h"))}, "not allowed"},
		{"section 3000", []slack.Block{sec(text(3000))}, ""},
		{"section 3001", []slack.Block{sec(text(3001))}, "3001 characters"},
		{"section empty text", []slack.Block{sec("")}, "empty text"},
		{"section without text or fields", []slack.Block{slack.NewSectionBlock(nil, nil, nil)}, "needs text or fields"},
		{"11 fields", []slack.Block{slack.NewSectionBlock(nil, fields, nil)}, "11 fields"},
		{"field 2001", []slack.Block{slack.NewSectionBlock(nil, []*slack.TextBlockObject{mrkdwn(text(2001))}, nil)}, "fields[0]: 2001"},
		{"invalid UTF-8", []slack.Block{sec("a\xff")}, "UTF-8"},
		{"mrkdwn with emoji", []slack.Block{slack.NewSectionBlock(&slack.TextBlockObject{Type: "mrkdwn", Text: "x", Emoji: new(bool)}, nil, nil)}, "emoji"},
		{"unknown text type", []slack.Block{sec("x"), slack.NewSectionBlock(&slack.TextBlockObject{Type: "html", Text: "x"}, nil, nil)}, "blocks[1].text: text type"},
		{"context 10", []slack.Block{ctx(10)}, ""},
		{"context 11", []slack.Block{ctx(11)}, "11 elements"},
		{"context empty", []slack.Block{ctx(0)}, "no elements"},
		{"context text 3001", []slack.Block{slack.NewContextBlock("", mrkdwn(text(3001)))}, "3001 characters"},
		{"actions empty", []slack.Block{slack.NewActionBlock("")}, "no elements"},
		{"button text 75", []slack.Block{slack.NewActionBlock("", btn("a", text(75), "v"))}, ""},
		{"button text 76", []slack.Block{slack.NewActionBlock("", btn("a", text(76), "v"))}, "76 characters"},
		{"button text mrkdwn", []slack.Block{slack.NewActionBlock("", slack.NewButtonBlockElement("a", "v", mrkdwn("b")))}, "not allowed"},
		{"action_id 256", []slack.Block{slack.NewActionBlock("", btn(text(256), "b", "v"))}, "action_id: 256"},
		{"value 2000", []slack.Block{slack.NewActionBlock("", btn("a", "b", text(2000)))}, ""},
		{"value 2001", []slack.Block{slack.NewActionBlock("", btn("a", "b", text(2001)))}, "value: 2001"},
		{"url 3001", []slack.Block{slack.NewActionBlock("", btn("a", "b", "v").WithURL(text(3001)))}, "url: 3001"},
		{"bad style", []slack.Block{slack.NewActionBlock("", btn("a", "b", "v").WithStyle("loud"))}, "style"},
		{"duplicate action_id", []slack.Block{slack.NewActionBlock("", btn("a", "b", "v"), btn("a", "c", "v"))}, "not unique in its block"},
		{"accessory button", []slack.Block{slack.NewSectionBlock(mrkdwn("s"), nil, slack.NewAccessory(btn("a", text(76), "v")))}, "accessory.text: 76"},
		{"block_id 256", []slack.Block{slack.NewDividerBlock(), slack.NewSectionBlock(mrkdwn("s"), nil, nil, slack.SectionBlockOptionBlockID(text(256)))}, "block_id: 256"},
		{"duplicate block_id", []slack.Block{slack.NewContextBlock("x", mrkdwn("a")), slack.NewActionBlock("x", btn("a", "b", "v"))}, `"x" is not unique`},
		{"total text", []slack.Block{sec(text(3000)), sec(text(3000)), sec(text(3000)), sec(text(3000)), sec(text(1))}, "12001 characters of block text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateBlocks(tt.blocks)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("no error, want %q", tt.want)
			case tt.want != "" && (!errors.Is(err, ErrInvalidBlocks) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q wrapping ErrInvalidBlocks", err, tt.want)
			}
		})
	}
}

// TestCardLimits renders a ticket whose every field is at its worst length
// and checks the card still validates.
func TestCardLimits(t *testing.T) {
	long := strings.Repeat("&<>é👍🏽", 5000)
	tk := escalationTicket()
	tk.ID = strings.Repeat("T", 300)
	tk.Subject, tk.Body, tk.Brief, tk.Draft, tk.OrderRef, tk.Channel = long, long, long, long, long, long
	tk.RulesReason, tk.ClassifiedBy = long, "rules"
	tk.Classification.Type, tk.Classification.Urgency = triage.Type(long), triage.Level(long)
	tk.Classification.Flags = append(tk.Classification.Flags, "a", "b", "c", "d", "e", "f", "g", "h", "i")
	for _, f := range tk.Classification.Flags {
		tk.Triggers = append(tk.Triggers, triage.Trigger{Flag: f, Reason: long})
	}
	for i := range 100 {
		tk.Route.Mentions = append(tk.Route.Mentions, "U0"+strings.Repeat("A", i+1))
	}
	opts := CardOptions{Customer: triage.Customer{Name: long, Email: long},
		Last: Decision{Actor: long, Action: long, At: at}}
	for _, state := range []triage.State{triage.StateAwaitingReview, triage.StateEscalated, triage.StateResolved} {
		tk.State = state
		tk.Reviewed = state != triage.StateAwaitingReview
		tk.Assignee, tk.RootCause, tk.ResolutionMethod = "U0OWNER01", long, long
		msg := CardMessage(tk, opts)
		if err := ValidateBlocks(msg.Blocks); err != nil {
			t.Errorf("%s: %v", state, err)
		}
		if n := utf8.RuneCountInString(msg.Text); n > MaxMessageText {
			t.Errorf("%s: fallback text has %d characters", state, n)
		}
	}
}

func BenchmarkCardBlocks(b *testing.B) {
	b.Run("refund", func(b *testing.B) {
		tk := refundTicket()
		opts := CardOptions{Customer: jane}
		b.ReportAllocs()
		for b.Loop() {
			CardBlocks(tk, opts)
		}
	})
	b.Run("hostile_long", func(b *testing.B) {
		tk, opts := hostile(strings.Repeat("refund now <!channel> ", 455))
		tk.Brief, tk.Draft = tk.Body, tk.Body
		b.ReportAllocs()
		for b.Loop() {
			CardBlocks(tk, opts)
		}
	})
}

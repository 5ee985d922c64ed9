package bot

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
)

// command runs a slash command, checks it was acked in time with no
// payload, and returns its one response_url answer.
func (h *appHarness) command(text string) slackfake.ResponsePost {
	h.t.Helper()
	before := len(h.fake.ResponsePosts())
	env, err := h.fake.SlashCommand(slackfake.Command{Command: "/casebot", Text: text, User: agentUser, Channel: otherChannel})
	if err != nil {
		h.t.Fatal(err)
	}
	if a := h.ack(env); len(a.Payload) != 0 {
		h.t.Errorf("slash command ack carries %s", a.Payload)
	}
	h.waitFor("answer to /casebot "+text, func() bool { return len(h.fake.ResponsePosts()) > before })
	p := h.fake.ResponsePosts()[before]
	if p.Error != "" || p.ResponseType != slack.ResponseTypeEphemeral || p.Source != slackfake.TypeSlashCommands || p.URL != env.ResponseURL {
		h.t.Errorf("answer to %q = %+v", text, p)
	}
	return p
}

func answerTexts(t *testing.T, p slackfake.ResponsePost) string {
	t.Helper()
	texts := renderedTexts(t, p.Blocks)
	return p.Text + "\n" + strings.Join(texts, "\n")
}

func TestSlashMetricsAnsweredAfterAck(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	a := h.intake(customerUser, "My parcel for order 1001 hasn't arrived yet, can you check?")
	h.intake(otherUser, "Refund my order or my lawyer will sue you.")
	h.drafted(a.ID)
	h.clock.Advance(90 * time.Minute)
	if _, err := h.tr.Approve(t.Context(), a.ID, agentUser, h.get(a.ID).DraftVersion, "On its way"); err != nil {
		t.Fatal(err)
	}
	h.delivered(a.ID)
	p := h.command("metrics 7d")
	got := answerTexts(t, p)
	for _, want := range []string{"Metrics · last 7d", "*Received*\n2", "*First response*\np50 1h 30m", "*Escalation rate*\n50%", "*Root cause coverage*\n—"} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics answer lacks %q:\n%s", want, got)
		}
	}
	var acked bool
	for _, ack := range h.fake.Acks() {
		if ack.Type == slackfake.TypeSlashCommands {
			acked = !ack.Late && !ack.At.After(p.At)
		}
	}
	if !acked {
		t.Errorf("no timely ack before the answer: %+v", h.fake.Acks())
	}
}

func TestSlashCommands(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	tk := h.intake(customerUser, "Where is my order 1001?")
	cases := []struct {
		text   string
		want   []string
		absent []string
	}{
		{"", []string{"/casebot metrics [7d|30d|90d]", "/casebot patterns"}, []string{"doesn't know"}},
		{"help", []string{"/casebot ticket ID"}, nil},
		{"HELP", []string{"/casebot new"}, nil},
		{"frobnicate now", []string{"casebot doesn't know `frobnicate`", "/casebot help"}, nil},
		{"metrics", []string{"Metrics · last 30d", "*Received*\n1"}, nil},
		{"metrics 12d", []string{"Use `/casebot metrics 7d`, `30d` or `90d`."}, []string{"Received"}},
		{"ticket", []string{"Use `/casebot ticket ID`"}, nil},
		{"ticket " + tk.ID, []string{"`" + tk.ID + "`", "Where is my order 1001?", "Customer message"}, nil},
		{"ticket T404", []string{"There is no ticket `T404`."}, nil},
		{"patterns", []string{"No root cause was seen on 3 or more tickets in the last 7 days."}, nil},
	}
	// No subtests: the harness fails its own test.
	for _, tc := range cases {
		got := answerTexts(t, h.command(tc.text))
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("answer to %q lacks %q:\n%s", tc.text, w, got)
			}
		}
		for _, w := range tc.absent {
			if strings.Contains(got, w) {
				t.Errorf("answer to %q holds %q:\n%s", tc.text, w, got)
			}
		}
	}
}

func TestSlashPatterns(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	var ids []string
	for i, text := range []string{"Where is order 1?", "Where is order 2?", "Where is order 3?", "Where is order 4?", "Old one"} {
		tk := h.intake(customerUser, text)
		ids = append(ids, tk.ID)
		// A confirmed root cause counts, else the guess (triage.RootCauseOf).
		h.change(tk.ID, func(t *triage.Ticket) {
			switch i {
			case 3:
				t.RootCause, t.Classification.RootCauseGuess = "", "carrier_delay"
			case 4:
				t.RootCause, t.Classification.RootCauseGuess = "wrong_item", "carrier_delay"
			default:
				t.RootCause = "carrier_delay"
			}
		})
	}
	h.clock.Advance(6 * 24 * time.Hour)
	got := answerTexts(t, h.command("patterns"))
	want := "• `carrier_delay`: 4 tickets (" + strings.Join(ids[:4], ", ") + ")"
	if !strings.Contains(got, want) || strings.Contains(got, "wrong_item") {
		t.Errorf("patterns answer lacks %q or lists a cause seen once:\n%s", want, got)
	}
	h.clock.Advance(2 * 24 * time.Hour)
	if got := answerTexts(t, h.command("patterns")); !strings.Contains(got, "No root cause") {
		t.Errorf("a week later the answer is:\n%s", got)
	}
}

// TestSlashNew opens the form and creates a manual ticket from it.
func TestSlashNew(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	env, err := h.fake.SlashCommand(slackfake.Command{Command: "/casebot", Text: "new", User: agentUser, Channel: otherChannel})
	if err != nil {
		t.Fatal(err)
	}
	h.ack(env)
	v := h.modal(1)
	if v.CallbackID != CallbackNew || v.PrivateMetadata != "" || v.TriggerID != env.TriggerID {
		t.Fatalf("modal = %+v", v)
	}
	values := func(customer, amount string) map[string]map[string]slackfake.Input {
		return map[string]map[string]slackfake.Input{
			blockSource:   {blockSource: {Value: "in_store"}},
			blockCustomer: {blockCustomer: {Value: customer}},
			blockText:     {blockText: {Value: "Blender jug cracked on first use, wants a replacement"}},
			blockAmount:   {blockAmount: {Value: amount}},
		}
	}
	r := viewResponse(t, h.submit(slackfake.Submission{ViewID: v.ID, User: agentUser, Values: values("jane doe", "ninety")}))
	if r.ResponseAction != slack.RAErrors || r.Errors[blockAmount] != errAmount || r.Errors[blockCustomer] == "" {
		t.Errorf("bad form answered %+v", r)
	}
	if n := len(h.store.All()); n != 0 {
		t.Fatalf("%d tickets after a refused form", n)
	}
	r = viewResponse(t, h.submit(slackfake.Submission{ViewID: v.ID, User: agentUser, Values: values("Jane <Jane@Example.com>", "89.99")}))
	h.waitFor("the ticket classified", func() bool {
		all := h.store.All()
		return len(all) == 1 && all[0].State != triage.StateReceived
	})
	h.stop()
	all := h.store.All()
	if len(all) != 1 {
		t.Fatalf("%d tickets, want 1", len(all))
	}
	tk := all[0]
	if r.ResponseAction != slack.RAUpdate || !strings.Contains(string(mustJSON(t, r.View)), "Created ticket `"+tk.ID+"`") {
		t.Errorf("answered %s", mustJSON(t, r))
	}
	if tk.Source != triage.SourceManual || tk.Channel != "in_store" || tk.ExternalID != "manual/"+v.ID ||
		tk.Classification.Amount.Minor != 8999 || tk.State == triage.StateReceived {
		t.Errorf("ticket = %+v", tk)
	}
	cust, err := storeCustomers{h.store}.Customer(context.Background(), tk.CustomerID)
	if err != nil || cust.Email != "jane@example.com" {
		t.Errorf("customer = %+v, %v", cust, err)
	}
}

func TestParseCommand(t *testing.T) {
	cases := []struct{ text, sub, arg string }{
		{"", "", ""},
		{"  ", "", ""},
		{"Metrics 7D", "metrics", "7D"},
		{"ticket  T12 extra", "ticket", "T12"},
		{"\tpatterns\n", "patterns", ""},
	}
	for _, tc := range cases {
		sub, arg := parseCommand(tc.text)
		if sub != tc.sub || arg != tc.arg {
			t.Errorf("parseCommand(%q) = %q, %q; want %q, %q", tc.text, sub, arg, tc.sub, tc.arg)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"", "metrics 30d", "ticket T1", "TICKET  <!channel>", "new\u00a0x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		sub, arg := parseCommand(text)
		if strings.ContainsFunc(sub+arg, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' }) {
			t.Errorf("parseCommand(%q) = %q, %q: holds spaces", text, sub, arg)
		}
		if sub != strings.ToLower(sub) {
			t.Errorf("subcommand %q is not lower-cased", sub)
		}
		if sub == "" && arg != "" {
			t.Errorf("an argument without a subcommand: %q", arg)
		}
	})
}

func TestFigureFormats(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct{ got, want string }{
		{duration(nil), "—"},
		{duration(f(44.6)), "45s"},
		{duration(f(60)), "1m"},
		{duration(f(3599)), "59m"},
		{duration(f(3600 + 180)), "1h 3m"},
		{duration(f(47 * 3600)), "47h 0m"},
		{duration(f(50 * 3600)), "2d 2h"},
		{percent(nil), "—"},
		{percent(f(0.125)), "12%"},
		{percent(f(1)), "100%"},
		{decimal(nil), "—"},
		{decimal(f(4.25)), "4.2"},
	}
	for i, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("case %d = %q, want %q", i, tc.got, tc.want)
		}
	}
}

// TestCommandGolden renders the answers with fixed figures.
func TestCommandGolden(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	full := triage.Metrics{Window: "30d", Received: 412,
		FirstResponseTime: triage.Percentiles{P50: f(1260), P90: f(15400)},
		ResolutionTime:    triage.Percentiles{P50: f(86400 + 7200), P90: f(5 * 86400)},
		EscalationRate:    f(0.082), DraftAcceptance: f(0.71), HumanOverrideRate: f(0.14),
		RepeatComplaint: f(0.05), RecoveryCSAT: triage.CSAT{Mean: f(4.3), SatisfiedShare: f(0.81), ResponseRate: f(0.44)},
		RootCauseCoverage: f(0.9)}
	hostilePatterns := []Pattern{
		{RootCause: "carrier_delay", Tickets: []string{"T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10"}},
		{RootCause: "<!channel> & <@U1>", Tickets: []string{"T11", "T12", "T13"}},
	}
	cases := []struct {
		name  string
		reply Reply
	}{
		{"metrics", MetricsReply(full)},
		{"metrics_empty", MetricsReply(triage.Metrics{Window: "7d"})},
		{"patterns", PatternsReply(hostilePatterns)},
		{"patterns_none", PatternsReply(nil)},
		{"help_unknown", helpReply("casebot doesn't know `" + fit("<!here>", actorMax) + "`.")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateBlocks(tc.reply.Blocks); err != nil {
				t.Fatal(err)
			}
			got := marshalGolden(t, tc.reply)
			golden(t, filepath.Join("testdata", "command_"+tc.name+".golden.json"), got)
			var doc struct {
				Text   string          `json:"Text"`
				Blocks json.RawMessage `json:"Blocks"`
			}
			if err := json.Unmarshal(got, &doc); err != nil {
				t.Fatal(err)
			}
			checkNoHostile(t, tc.name, append(renderedTexts(t, doc.Blocks), doc.Text))
		})
	}
}

package bot

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
)

// hostileTicket is an escalated ticket whose customer text tries to ping
// and link, with a draft past the input limit.
func hostileTicket() triage.Ticket {
	t := escalationTicket()
	t.Body = appHostile + "\n" + strings.Repeat("ünïcödé ", 100)
	t.Draft = strings.Repeat("Dear customer, ", 250)
	t.Classification.RootCauseGuess = "damaged_in_transit"
	return t
}

type modalCase struct {
	name string
	view slack.ModalViewRequest
}

func modalCases() []modalCase {
	refund := refundTicket()
	hostile := hostileTicket()
	return []modalCase{
		{"edit", EditModal(refund)},
		{"edit_hostile", EditModal(hostile)},
		{"escalate", EscalateModal(escalationTicket())},
		{"escalate_hostile", EscalateModal(hostile)},
		{"resolve", ResolveModal(refund, triage.DefaultRootCauses, "USD")},
		{"resolve_hostile", ResolveModal(hostile, triage.DefaultRootCauses, "")},
		{"new", NewTicketModal("", "", "")},
		{"new_shortcut", NewTicketModal(appHostile, "<@U0CUST001>", "shortcut/C0GENERAL/1772442000.000100")},
		{"created", CreatedModal(refund, false)},
		{"created_duplicate", CreatedModal(refund, true)},
	}
}

// TestModalGolden renders each modal, checks Slack accepts it (the
// stand-in enforces the view limits) and that no customer text is live.
func TestModalGolden(t *testing.T) {
	fake := slackfake.New(slackfake.Options{})
	defer fake.Close()
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()))
	for _, tc := range modalCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := marshalGolden(t, tc.view)
			golden(t, filepath.Join("testdata", "modal_"+tc.name+".golden.json"), got)
			if _, err := api.OpenView(fake.NewTriggerID("U1"), tc.view); err != nil {
				t.Fatalf("views.open refused the modal: %v", err)
			}
			if n := utf8.RuneCountInString(tc.view.Title.Text); n > 24 {
				t.Errorf("title has %d characters", n)
			}
			checkNoHostile(t, tc.name, renderedTexts(t, got))
		})
	}
}

// TestModalInitialValues checks what each form is prefilled with.
func TestModalInitialValues(t *testing.T) {
	hostile := hostileTicket()
	edit := EditModal(hostile)
	draft := inputElement(t, edit, blockDraft).(*slack.PlainTextInputBlockElement)
	if n := utf8.RuneCountInString(draft.InitialValue); n != maxInputValue || !strings.HasSuffix(draft.InitialValue, Ellipsis) {
		t.Errorf("a long draft is prefilled with %d characters", n)
	}
	for field, want := range map[string]string{blockType: "product_defect", blockUrgency: "high",
		blockSentiment: "frustrated", blockRisk: "medium"} {
		sel := inputElement(t, edit, field).(*slack.SelectBlockElement)
		if sel.InitialOption == nil || sel.InitialOption.Value != want {
			t.Errorf("%s starts at %+v, want %s", field, sel.InitialOption, want)
		}
	}
	unclassified := refundTicket()
	unclassified.Classification = triage.Classification{}
	if sel := inputElement(t, EditModal(unclassified), blockType).(*slack.SelectBlockElement); sel.InitialOption != nil {
		t.Errorf("an unclassified ticket preselects %+v", sel.InitialOption)
	}
	esc := inputElement(t, EscalateModal(hostile), blockOwner).(*slack.SelectBlockElement)
	if esc.InitialUser != "U0LEGAL01" {
		t.Errorf("owner starts at %q, want the route's first person", esc.InitialUser)
	}
	res := inputElement(t, ResolveModal(hostile, triage.DefaultRootCauses, "USD"), blockRootCause).(*slack.SelectBlockElement)
	if res.InitialOption == nil || res.InitialOption.Value != "damaged_in_transit" {
		t.Errorf("root cause starts at %+v, want the guess", res.InitialOption)
	}
	notInTaxonomy := hostile
	notInTaxonomy.Classification.RootCauseGuess = "<!channel>"
	res = inputElement(t, ResolveModal(notInTaxonomy, triage.DefaultRootCauses, "USD"), blockRootCause).(*slack.SelectBlockElement)
	if res.InitialOption != nil {
		t.Errorf("a guess outside the taxonomy is preselected: %+v", res.InitialOption)
	}
}

func inputElement(t *testing.T, v slack.ModalViewRequest, block string) slack.BlockElement {
	t.Helper()
	for _, b := range v.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok && in.BlockID == block {
			return in.Element
		}
	}
	t.Fatalf("no input %q", block)
	return nil
}

// TestStaticSelectLimits: a taxonomy beyond Slack's limits is cut to what
// Slack accepts rather than refused.
func TestStaticSelectLimits(t *testing.T) {
	var opts [][2]string
	for i := range 120 {
		opts = append(opts, [2]string{strings.Repeat("k", i+1), strings.Repeat("label ", 20)})
	}
	sel := staticSelect("x", opts, "")
	if len(sel.Options) != maxOptions {
		t.Errorf("%d options, want %d", len(sel.Options), maxOptions)
	}
	for _, o := range sel.Options {
		if utf8.RuneCountInString(o.Value) > maxOptionValue || utf8.RuneCountInString(o.Text.Text) > maxOptionText {
			t.Errorf("option %q / %q past the limits", o.Value, o.Text.Text)
		}
	}
}

func TestParseAmount(t *testing.T) {
	cases := []struct {
		in    string
		minor int64
		ok    bool
	}{
		{"", 0, true}, {"  ", 0, true}, {"0", 0, true}, {"12", 1200, true}, {"12.5", 1250, true},
		{"12,50", 1250, true}, {" 89.99 ", 8999, true}, {"0.01", 1, true}, {"9999999999.99", 999999999999, true},
		{"-1", 0, false}, {"12.345", 0, false}, {"1e3", 0, false}, {"$12", 0, false}, {"12 USD", 0, false},
		{"1,234.50", 0, false}, {"abc", 0, false}, {".5", 0, false}, {"12.", 0, false}, {"١٢", 0, false},
		{"99999999999", 0, false},
	}
	for _, tc := range cases {
		m, err := parseAmount(tc.in, "EUR")
		if (err == nil) != tc.ok || (tc.ok && m.Minor != tc.minor) {
			t.Errorf("parseAmount(%q) = %+v, %v; want %d ok=%v", tc.in, m, err, tc.minor, tc.ok)
		}
		if err == nil && m.Minor != 0 && m.Currency != "EUR" {
			t.Errorf("parseAmount(%q) currency %q", tc.in, m.Currency)
		}
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"12.50", "0", "-3", "1,5", "9999999999.99", "1e9", "12.345"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseAmount(s, "USD")
		if err != nil {
			return
		}
		if m.Minor < 0 || m.Minor > 999999999999 {
			t.Fatalf("parseAmount(%q) = %d", s, m.Minor)
		}
		// The amount is the number typed.
		typed := strings.TrimSpace(s)
		if typed == "" {
			if m.Minor != 0 {
				t.Errorf("parseAmount(%q) = %d", s, m.Minor)
			}
			return
		}
		whole, frac, _ := strings.Cut(strings.ReplaceAll(typed, ",", "."), ".")
		w, err1 := strconv.ParseInt(whole, 10, 64)
		c, err2 := strconv.ParseInt((frac + "00")[:2], 10, 64)
		if err1 != nil || err2 != nil || m.Minor != w*100+c {
			t.Errorf("parseAmount(%q) = %d", s, m.Minor)
		}
	})
}

func TestParseIdentity(t *testing.T) {
	cases := []struct {
		in   string
		want triage.Customer
		ok   bool
	}{
		{"jane@example.com", triage.Customer{Email: "jane@example.com"}, true},
		{" Jane Doe <Jane@Example.COM> ", triage.Customer{Email: "jane@example.com", Name: "Jane Doe"}, true},
		{"@janedoe", triage.Customer{Handle: "janedoe"}, true},
		{"janedoe", triage.Customer{Handle: "janedoe"}, true},
		{"<@U0CUST001>", triage.Customer{SlackUserID: "U0CUST001"}, true},
		{"<@W0CUST001|jane>", triage.Customer{SlackUserID: "W0CUST001"}, true},
		{"", triage.Customer{}, false},
		{"jane doe", triage.Customer{}, false},
		{"@", triage.Customer{}, false},
		{"@@", triage.Customer{}, false},
		{"@@jane", triage.Customer{Handle: "jane"}, true},
		{"jane\u00a0doe", triage.Customer{}, false},
		{"jane@", triage.Customer{}, false},
		{"<!channel>", triage.Customer{Handle: "<!channel>"}, true},
	}
	for _, tc := range cases {
		got, err := parseIdentity(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (got.Email != tc.want.Email || got.Name != tc.want.Name ||
			got.Handle != tc.want.Handle || got.SlackUserID != tc.want.SlackUserID)) {
			t.Errorf("parseIdentity(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{"jane@example.com", "@jane", "<@U123>", "Jane <j@x.io>", "a b", "@", "@@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseIdentity(s)
		if err != nil {
			return
		}
		if len(triage.CustomerKey(c.Email, c.SlackUserID, c.Handle)) == 0 {
			t.Errorf("parseIdentity(%q) = %+v: no identity to merge on", s, c)
		}
	})
}

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{"store_credit": "Store credit", "": "", "élan_vital": "Élan vital", "x": "X"} {
		if got := label(in); got != want {
			t.Errorf("label(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestViewStateReaders reads values the way Slack reports them.
func TestViewStateReaders(t *testing.T) {
	var st slack.ViewState
	raw := `{"values":{"draft":{"draft":{"type":"plain_text_input","value":"hi"}},
		"type":{"type":{"type":"static_select","selected_option":{"value":"billing"}}},
		"owner":{"owner":{"type":"users_select","selected_user":"U1"}}}}`
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatal(err)
	}
	if stateValue(&st, blockDraft) != "hi" || stateOption(&st, blockType) != "billing" || stateUser(&st, blockOwner) != "U1" {
		t.Errorf("state readers got %q %q %q", stateValue(&st, blockDraft), stateOption(&st, blockType), stateUser(&st, blockOwner))
	}
	if stateValue(nil, blockDraft) != "" || stateOption(&st, "missing") != "" || stateUser(nil, blockOwner) != "" {
		t.Error("missing state is not empty")
	}
}

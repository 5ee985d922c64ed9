package triage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

func templateDraft(t *testing.T, req triage.DraftRequest) triage.Draft {
	t.Helper()
	d, err := triage.TemplateDrafter{}.Draft(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func replyFor(t *testing.T, lang string, typ triage.Type) string {
	t.Helper()
	return templateDraft(t, triage.DraftRequest{Ticket: triage.Ticket{
		Classification: triage.Classification{Type: typ, Language: lang}}}).Reply
}

func TestTemplateDrafterLanguage(t *testing.T) {
	tests := []struct {
		lang string
		typ  triage.Type
		want string // a word only that language's reply has
	}{
		{"en", triage.TypeRefund, "refund"},
		{"es", triage.TypeRefund, "reembolso"},
		{"fr", triage.TypeRefund, "remboursement"},
		{"de", triage.TypeRefund, "Erstattung"},
		{"es", triage.TypeDelivery, "pedido"},
		{"fr", triage.TypeDelivery, "commande"},
		{"de", triage.TypeDelivery, "Bestellung"},
		{"es-MX", triage.TypeRefund, "reembolso"},
		{"FR-ca", triage.TypeRefund, "remboursement"},
		// Types without a line of their own in a language get that
		// language's general line, not English.
		{"es", triage.TypeBilling, "Gracias"},
		{"fr", triage.TypeAccount, "Merci"},
		{"de", triage.TypeOther, "Danke"},
	}
	for _, tc := range tests {
		if got := replyFor(t, tc.lang, tc.typ); !strings.Contains(got, tc.want) {
			t.Errorf("reply for %s %s = %q, want it to contain %q", tc.lang, tc.typ, got, tc.want)
		}
	}
}

func TestTemplateDrafterFallsBackToEnglish(t *testing.T) {
	for _, typ := range triage.Types {
		en := replyFor(t, "en", typ)
		if strings.TrimSpace(en) == "" {
			t.Errorf("no English reply for %s", typ)
		}
		for _, lang := range []string{"pt", "zh-Hans", "", "xx-YY"} {
			if got := replyFor(t, lang, typ); got != en {
				t.Errorf("reply for unknown language %q, type %s = %q, want the English %q", lang, typ, got, en)
			}
		}
		for _, lang := range []string{"es", "fr", "de"} {
			if got := replyFor(t, lang, typ); got == en || strings.TrimSpace(got) == "" {
				t.Errorf("reply for %s %s = %q, want a non-empty %s line", lang, typ, got, lang)
			}
		}
	}
}

func TestTemplateDrafterBrief(t *testing.T) {
	legal := triage.Trigger{Rule: "legal", Flag: triage.FlagLegal, Reason: `legal term "lawyer" (en)`}
	refund := triage.Trigger{Rule: "refund", Flag: triage.FlagPolicyException, Reason: "refund USD 240.00 above approval threshold USD 100"}
	history := []triage.Ticket{
		{ID: "T2", Classification: triage.Classification{Type: triage.TypeOrderChange}},
		{ID: "T1", Classification: triage.Classification{Type: triage.TypeDelivery}},
	}
	tests := []struct {
		name    string
		c       triage.Classification
		trs     []triage.Trigger
		history []triage.Ticket
		policy  string
		want    []string
		notWant []string
	}{
		{
			name: "everything",
			c: triage.Classification{Type: triage.TypeProductDefect, Sentiment: triage.SentimentFrustrated,
				Amount: triage.Money{Minor: 24000, Currency: "USD"}, FinancialRisk: triage.LevelMedium},
			trs: []triage.Trigger{legal, refund}, history: history, policy: "Defective items: refund or replace within 30 days.",
			want: []string{"product defect issue", "customer frustrated", "USD 240.00 at stake (medium risk)",
				"2 earlier ticket(s)", "latest about order change", legal.Reason, refund.Reason,
				"Policy: Defective items: refund or replace within 30 days."},
		},
		{
			name:    "nothing known",
			c:       triage.Classification{Type: triage.TypeOther, Sentiment: triage.SentimentNeutral},
			want:    []string{"other issue", "No earlier tickets"},
			notWant: []string{"at stake", "Rules:", "Policy:"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := templateDraft(t, triage.DraftRequest{
				Ticket:  triage.Ticket{Classification: tc.c, Triggers: tc.trs, Body: "ignore all rules <!channel>"},
				History: tc.history, Policy: tc.policy,
			})
			for _, w := range tc.want {
				if !strings.Contains(d.Brief, w) {
					t.Errorf("brief %q lacks %q", d.Brief, w)
				}
			}
			for _, w := range append(tc.notWant, "<!channel>") {
				if strings.Contains(d.Brief, w) {
					t.Errorf("brief %q contains %q", d.Brief, w)
				}
			}
		})
	}
}

// TestTemplateDrafterThroughTriager writes the draft of a Spanish legal
// ticket end to end: the reply is in Spanish and the brief names the rule.
func TestTemplateDrafterThroughTriager(t *testing.T) {
	es := calm
	es.Type, es.Language = triage.TypeRefund, "es"
	f := newFixture(t, &triagetest.Classifier{Result: es})
	f.tr.Drafter = triage.TemplateDrafter{}
	tk := f.process(t, f.inbound("m1", "Quiero mi reembolso o hablaré con mi abogado.", ann))
	got, err := f.tr.WriteDraft(context.Background(), tk.ID, ann, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Draft, "reembolso") {
		t.Errorf("draft %q is not the Spanish refund line", got.Draft)
	}
	if !strings.Contains(got.Brief, "legal") || !strings.Contains(got.Brief, "refund issue") {
		t.Errorf("brief %q does not name the type and the legal rule", got.Brief)
	}
}

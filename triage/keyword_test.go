package triage

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// labelled is one line of the evaluation format (SPEC section 9).
type labelled struct {
	ID     string `json:"id"`
	Text   string `json:"text"`
	Expect struct {
		Type Type `json:"type"`
	} `json:"expect"`
}

// readLabelled reads an evaluation-format JSONL file.
func readLabelled(t *testing.T, path string) []labelled {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			t.Skipf("%s not present: %v", path, err)
		}
		t.Fatal(err)
	}
	defer f.Close()
	var rows []labelled
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var row labelled
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// typeAccuracy classifies rows and returns the share typed as expected,
// the confusion matrix (expected → got → count) and the misses.
func typeAccuracy(t *testing.T, rows []labelled) (float64, map[Type]map[Type]int, []string) {
	t.Helper()
	k, err := NewKeywordClassifier(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	confusion := map[Type]map[Type]int{}
	var misses []string
	right := 0
	for _, row := range rows {
		c, err := k.Classify(context.Background(), ClassifyRequest{Text: row.Text})
		if err != nil {
			t.Fatalf("%s: %v", row.ID, err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", row.ID, err)
		}
		if confusion[row.Expect.Type] == nil {
			confusion[row.Expect.Type] = map[Type]int{}
		}
		confusion[row.Expect.Type][c.Type]++
		if c.Type == row.Expect.Type {
			right++
		} else {
			misses = append(misses, fmt.Sprintf("%s want %s got %s: %q", row.ID, row.Expect.Type, c.Type, row.Text))
		}
	}
	return float64(right) / float64(len(rows)), confusion, misses
}

// formatConfusion renders a confusion matrix, expected types as rows.
func formatConfusion(m map[Type]map[Type]int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s", "expected\\got")
	for _, g := range Types {
		fmt.Fprintf(&b, "%16s", g)
	}
	b.WriteString("\n")
	var rows []Type
	for e := range m {
		rows = append(rows, e)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i] < rows[j] })
	for _, e := range rows {
		fmt.Fprintf(&b, "%-16s", e)
		for _, g := range Types {
			fmt.Fprintf(&b, "%16d", m[e][g])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestKeywordAccuracyBitext(t *testing.T) {
	rows := readLabelled(t, filepath.Join("..", "..", "shared", "data", "bitext-dev.jsonl"))
	acc, confusion, misses := typeAccuracy(t, rows)
	t.Logf("bitext type accuracy %.4f over %d rows\n%s", acc, len(rows), formatConfusion(confusion))
	if testing.Verbose() {
		for _, m := range misses {
			t.Log(m)
		}
	}
	if acc < 0.85 {
		t.Errorf("type accuracy %.4f, want >= 0.85", acc)
	}
}

// checkRealistic scores the realistic messages of file (every type must
// be present) and fails below min.
func checkRealistic(t *testing.T, file string, min float64) {
	t.Helper()
	rows := readLabelled(t, filepath.Join("testdata", file))
	seen := map[Type]bool{}
	for _, row := range rows {
		seen[row.Expect.Type] = true
	}
	for _, typ := range Types {
		if !seen[typ] {
			t.Errorf("%s has no %s message", file, typ)
		}
	}
	acc, confusion, misses := typeAccuracy(t, rows)
	t.Logf("%s type accuracy %.4f over %d rows\n%s", file, acc, len(rows), formatConfusion(confusion))
	for _, m := range misses {
		t.Log(m)
	}
	if acc < min {
		t.Errorf("%s type accuracy %.4f, want >= %.2f", file, acc, min)
	}
}

// TestKeywordRealistic scores the realistic messages the lexicons were
// tuned on.
func TestKeywordRealistic(t *testing.T) {
	checkRealistic(t, "keyword_realistic.jsonl", 0.85)
}

// TestKeywordHoldout scores realistic messages written before the tuning
// and never tuned on: the honest estimate of how the classifier does on
// real customer mail.
func TestKeywordHoldout(t *testing.T) {
	checkRealistic(t, "keyword_holdout.jsonl", 0.80)
}

func TestKeywordIntentRules(t *testing.T) {
	k := newTestClassifier(t)
	tests := []struct {
		name string
		text string
		want Type
	}{
		{"money-back demand beats the defect", "The lid of the teapot is chipped. I want a full refund.", TypeRefund},
		{"defect without a demand", "The lid of the teapot is chipped. Could you send a new one?", TypeProductDefect},
		{"refund status beats tracking words", "Tracking shows you received my return, so where is my refund?", TypeRefund},
		{"missing item is delivery", "The box came without the second cushion cover.\nThe packing slip lists two, one is missing.", TypeDelivery},
		{"safety language is about the product", "The toy gave my son an electric shock.", TypeProductDefect},
		{"praise naming the delivery", "Fantastic, the table arrived early and looks wonderful.", TypeFeedback},
		{"praise that asks for something", "Wonderful, thank you! Please cancel order 8812 though.", TypeOrderChange},
		{"praise that asks a question", "Love the vase! Do you ship to Norway?", TypePolicyQuestion},
		{"a sign-off is no praise", "The parcel is late. Many thanks, appreciate it!", TypeDelivery},
		{"site error beats the coupon", "The website shows an error page whenever I enter my coupon.", TypeOther},
		{"return window question", "How long do I have to send back shoes I wore once indoors?", TypePolicyQuestion},
		{"service complaint without a case", "Your customer service was rude to me on the phone yesterday.", TypeFeedback},
		{"evidence-free emotion is feedback", "Brilliant, just brilliant.", TypeFeedback},
		{"named other type stays other", "Your site is down again, terrible.", TypeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := k.Classify(context.Background(), ClassifyRequest{Text: tt.text})
			if err != nil {
				t.Fatal(err)
			}
			if c.Type != tt.want {
				t.Errorf("Classify(%q) type %s, want %s", tt.text, c.Type, tt.want)
			}
		})
	}
}

func TestKeywordCourtesyEdges(t *testing.T) {
	k := newTestClassifier(t)
	tests := []struct {
		text       string
		lead, tail string // first and last token left, "" when none is
	}{
		{"Hi Anna, the lamp is broken. Thanks, Priya", "the", "broken"},
		{"Hello there, where is it? Kind regards, Dan Smith", "where", "it"},
		{"Thank you for the lovely scarf", "thank", "scarf"},
		{"Thanks so much, the service was excellent", "the", "excellent"},
		{"Bonjour, le colis est perdu. Merci d'avance, cordialement.", "le", "perdu"},
		{"Thanks!", "", ""},
		{"Where is my order", "where", "order"},
		{"Hallo, mein Paket fehlt. Viele Grüße", "mein", "fehlt"},
	}
	for _, tt := range tests {
		toks := tokenize(tt.text)
		var courtesy []hit
		k.m.scan(toks, nil, func(h hit) {
			if h.phrase.section == secCourtesy {
				courtesy = append(courtesy, h)
			}
		})
		lead, tail := courtesyEdges(toks, courtesy)
		var gotLead, gotTail string
		if lead < tail {
			gotLead, gotTail = toks[lead].text, toks[tail-1].text
		}
		if gotLead != tt.lead || gotTail != tt.tail {
			t.Errorf("courtesyEdges(%q) keeps %q…%q, want %q…%q", tt.text, gotLead, gotTail, tt.lead, tt.tail)
		}
	}
}

func TestKeywordShoutedComplaint(t *testing.T) {
	k := newTestClassifier(t)
	c, err := k.Classify(context.Background(), ClassifyRequest{Text: "THIS IS UNACCEPTABLE!!!"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Sentiment != SentimentFrustrated || !c.HasFlag(FlagHighEmotion) {
		t.Errorf("sentiment %s flags %v, want frustrated with high_emotion", c.Sentiment, c.Flags)
	}
}

// caseLanguage is the language a keyword_cases.jsonl ID names
// ("kw-refund-es-1" is Spanish).
func caseLanguage(id string) string {
	parts := strings.Split(id, "-")
	if len(parts) < 4 {
		return ""
	}
	return parts[2]
}

func TestKeywordCases(t *testing.T) {
	rows := readLabelled(t, filepath.Join("testdata", "keyword_cases.jsonl"))
	seen := map[Type]bool{}
	for _, row := range rows {
		seen[row.Expect.Type] = true
	}
	for _, typ := range Types {
		if !seen[typ] {
			t.Errorf("keyword_cases.jsonl has no %s case", typ)
		}
	}
	acc, confusion, misses := typeAccuracy(t, rows)
	t.Logf("hand-written type accuracy %.4f over %d rows\n%s", acc, len(rows), formatConfusion(confusion))
	for _, m := range misses {
		t.Log(m)
	}
	if acc < 0.85 {
		t.Errorf("type accuracy %.4f, want >= 0.85", acc)
	}
	wrongLang := 0
	for _, row := range rows {
		if got, want := DetectLanguage(row.Text), caseLanguage(row.ID); got != want {
			wrongLang++
			t.Logf("%s: DetectLanguage = %s, want %s", row.ID, got, want)
		}
	}
	if wrongLang > len(rows)/10 {
		t.Errorf("DetectLanguage wrong on %d of %d cases", wrongLang, len(rows))
	}
}

// newTestClassifier builds a KeywordClassifier from the default config.
func newTestClassifier(t testing.TB) *KeywordClassifier {
	t.Helper()
	k, err := NewKeywordClassifier(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeywordClassifyFields(t *testing.T) {
	k := newTestClassifier(t)
	tests := []struct {
		name      string
		text      string
		typ       Type
		sentiment Sentiment
		urgency   Level
		risk      Level
		amount    Money
		flags     []Flag
		cause     string
		lang      string
	}{
		{
			name: "calm tracking question", text: "Hi, could you tell me where my parcel is? Order 5521.",
			typ: TypeDelivery, sentiment: SentimentNeutral, urgency: LevelLow, risk: LevelLow, flags: []Flag{}, lang: "en",
		},
		{
			name: "damaged on arrival with money", text: "The vase arrived damaged, the box was crushed. I paid $60 for it.",
			typ: TypeProductDefect, sentiment: SentimentNeutral, urgency: LevelMedium, risk: LevelMedium,
			amount: Money{6000, "USD"}, flags: []Flag{}, cause: "damaged_in_transit", lang: "en",
		},
		{
			name: "angry double charge", text: "You CHARGED ME TWICE for the same order!!! This is a SCAM. $320 taken from my account.",
			typ: TypeBilling, sentiment: SentimentFrustrated, urgency: LevelHigh, risk: LevelHigh,
			amount: Money{32000, "USD"}, flags: []Flag{FlagHighEmotion}, cause: "double_charge", lang: "en",
		},
		{
			name: "safety", text: "The heater caught fire in my living room, my son got a burn on his arm.",
			typ: TypeProductDefect, sentiment: SentimentNeutral, urgency: LevelHigh, risk: LevelLow,
			flags: []Flag{FlagSafety}, lang: "en",
		},
		{
			name: "legal and reputation", text: "My attorney will contact you and I will post this on TikTok. I want a refund.",
			typ: TypeRefund, sentiment: SentimentNeutral, urgency: LevelHigh, risk: LevelLow,
			flags: []Flag{FlagLegal, FlagReputation}, lang: "en",
		},
		{
			name: "urgent wrong size", text: "Urgent: you sent the wrong size, I need the M for a wedding on Saturday, can I exchange it?",
			typ: TypeOrderChange, sentiment: SentimentNeutral, urgency: LevelHigh, risk: LevelLow, flags: []Flag{}, cause: "sizing", lang: "en",
		},
		{
			name: "happy feedback", text: "Thank you so much, the service was excellent and the dress is perfect!",
			typ: TypeFeedback, sentiment: SentimentSatisfied, urgency: LevelLow, risk: LevelLow, flags: []Flag{}, lang: "en",
		},
		{
			name: "negated positive", text: "I am not happy with the blender, it stopped working.",
			typ: TypeProductDefect, sentiment: SentimentFrustrated, urgency: LevelMedium, risk: LevelLow, flags: []Flag{}, cause: "product_quality", lang: "en",
		},
		{
			name: "spanish refund", text: "Estoy muy enfadado, quiero el reembolso de 1.299,50 € ya mismo.",
			typ: TypeRefund, sentiment: SentimentFrustrated, urgency: LevelHigh, risk: LevelHigh,
			amount: Money{129950, "EUR"}, flags: []Flag{}, lang: "es",
		},
		{
			name: "french account", text: "Bonjour, j'ai oublié mon mot de passe et je ne peux pas me connecter à mon compte.",
			typ: TypeAccount, sentiment: SentimentNeutral, urgency: LevelLow, risk: LevelLow, flags: []Flag{}, cause: "account_access", lang: "fr",
		},
		{
			name: "german late parcel", text: "Hallo, mein Paket ist verspätet und noch nicht angekommen. Bitte um Hilfe.",
			typ: TypeDelivery, sentiment: SentimentNeutral, urgency: LevelLow, risk: LevelLow, flags: []Flag{}, cause: "carrier_delay", lang: "de",
		},
		{
			name: "nothing to go on", text: "hello?",
			typ: TypeOther, sentiment: SentimentNeutral, urgency: LevelLow, risk: LevelLow, flags: []Flag{}, lang: "en",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := k.Classify(context.Background(), ClassifyRequest{Text: tt.text})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if c.Type != tt.typ || c.Sentiment != tt.sentiment || c.Urgency != tt.urgency || c.FinancialRisk != tt.risk ||
				c.Amount != tt.amount || !slices.Equal(c.Flags, tt.flags) || c.RootCauseGuess != tt.cause || c.Language != tt.lang {
				t.Errorf("Classify(%q)\n got %+v\nwant type=%s sentiment=%s urgency=%s risk=%s amount=%v flags=%v cause=%q lang=%s",
					tt.text, c, tt.typ, tt.sentiment, tt.urgency, tt.risk, tt.amount, tt.flags, tt.cause, tt.lang)
			}
			if c.SentimentScore < -1 || c.SentimentScore > 1 {
				t.Errorf("score %v", c.SentimentScore)
			}
		})
	}
}

func TestKeywordHighEmotion(t *testing.T) {
	k := newTestClassifier(t)
	tests := []struct {
		text string
		want bool
	}{
		{"WHERE IS MY ORDER I HAVE BEEN WAITING FOR WEEKS", true},
		{"Where is my order?!!!", true},
		{"I ordered it. Where is it! Hello! Anyone! Please! Now!", true},
		{"This is fucking ridiculous, where is my parcel", true},
		{"I ordered from USPS via DHL, where is my order?", false},
		{"Where is my order? Thanks!", false},
		{"OK", false},
	}
	for _, tt := range tests {
		c, err := k.Classify(context.Background(), ClassifyRequest{Text: tt.text})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.HasFlag(FlagHighEmotion); got != tt.want {
			t.Errorf("Classify(%q) high_emotion = %v, want %v (flags %v)", tt.text, got, tt.want, c.Flags)
		}
	}
}

func TestKeywordRootCauseFromConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RootCauses = []string{"carrier_delay", "other"}
	k, err := NewKeywordClassifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := k.Classify(context.Background(), ClassifyRequest{Text: "I was charged twice and the parcel is delayed."})
	if err != nil {
		t.Fatal(err)
	}
	if c.RootCauseGuess != "carrier_delay" {
		t.Errorf("root cause %q, want carrier_delay (double_charge is not configured)", c.RootCauseGuess)
	}
	cfg.RootCauses = nil
	k, err = NewKeywordClassifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := k.Classify(context.Background(), ClassifyRequest{Text: "charged twice"}); c.RootCauseGuess != "" {
		t.Errorf("root cause %q with an empty taxonomy", c.RootCauseGuess)
	}
}

func TestKeywordCanceledContext(t *testing.T) {
	k := newTestClassifier(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := k.Classify(ctx, ClassifyRequest{Text: "hi"}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestKeywordUnsupportedLanguage(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Languages = []string{"xx"}
	if _, err := NewKeywordClassifier(cfg); !errors.Is(err, ErrUnsupportedLanguage) {
		t.Errorf("error %v, want ErrUnsupportedLanguage", err)
	}
}

func TestKeywordHugeAndInvalidText(t *testing.T) {
	k := newTestClassifier(t)
	text := strings.Repeat("my order never arrived \xff\xfe\xc3 I want to track it ", 5<<20/46)
	c, err := k.Classify(context.Background(), ClassifyRequest{Text: text})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Type != TypeDelivery {
		t.Errorf("type %s, want delivery", c.Type)
	}
}

func FuzzKeywordClassify(f *testing.F) {
	for _, s := range []string{"", "WHERE IS MY ORDER!!!", "reembolso de 1.299,50 €", "\xff\xfe", "rtack order", "ne ... pas"} {
		f.Add(s)
	}
	k := newTestClassifier(f)
	f.Fuzz(func(t *testing.T, text string) {
		c, err := k.Classify(context.Background(), ClassifyRequest{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Classify(%q): %v", text, err)
		}
	})
}

func BenchmarkKeywordClassify(b *testing.B) {
	k := newTestClassifier(b)
	req := ClassifyRequest{Text: "Hi, my order 4471 arrived yesterday but the kettle lid is cracked and it leaks. I paid $89 and I'd like a replacement or a refund please, this is really disappointing. Thanks!"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Classify(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

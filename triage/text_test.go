package triage

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// texts returns the token texts of toks.
func texts(toks []token) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.text
	}
	return out
}

func TestTextTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Hello, World!", []string{"hello", "world"}},
		{"Café crème à Zürich, Straße", []string{"cafe", "creme", "a", "zurich", "strasse"}},
		{"GROSSE STRASSE ẞ", []string{"grosse", "strasse", "ss"}},
		{"Cafe\u0301 decomposed", []string{"cafe", "decomposed"}},
		{"lawyer's lawyer’s lawyerʼs", []string{"lawyer", "s", "lawyer", "s", "lawyer", "s"}},
		{"isn't ISN’T don't", []string{"is", "not", "is", "not", "do", "not"}},
		{"y'all'n't", []string{"y", "all", "not"}},
		{"l'avocat d’avocat", []string{"l", "avocat", "d", "avocat"}},
		{"'quoted' rock'n'roll", []string{"quoted", "rock", "n", "roll"}},
		{"sign-up e-mail", []string{"sign", "up", "e", "mail"}},
		{"order #12345 $240.50", []string{"order", "12345", "240", "50"}},
		{"bad\xffbytes\xc3", []string{"bad", "bytes"}},
		{"Привет мир 你好", []string{"привет", "мир", "你好"}},
		{"ñandú ÇA", []string{"nandu", "ca"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := texts(tokenize(tt.in)); !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("tokenize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTextClauses(t *testing.T) {
	toks := tokenize("one two. three, four\nfive")
	var got []int32
	for _, tk := range toks {
		got = append(got, tk.clause)
	}
	if want := []int32{0, 0, 1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("clauses %v, want %v", got, want)
	}
}

func TestTextOSADistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"track", "track", 0}, {"rtack", "track", 1}, {"compesation", "compensation", 1},
		{"cancfel", "cancel", 1}, {"deilvery", "delivery", 1}, {"refund", "return", 3},
		{"", "abc", 3}, {"ñandu", "nandu", 1},
	}
	for _, tt := range tests {
		if got := osaDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("osaDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestTextFuzzyCorrections(t *testing.T) {
	m := newMatcher([]phrase{
		{toks: []ptok{{text: "track"}}}, {toks: []ptok{{text: "compensation"}}},
		{toks: []ptok{{text: "deliver"}}}, {toks: []ptok{{text: "bill"}}}, {toks: []ptok{{text: "danada"}}},
		{toks: []ptok{{text: "pleased"}}, section: secPositive},
	}, func(s string) bool { return s != secPositive }, map[string]bool{"tracks": true})
	tests := []struct{ in, want string }{
		{"rtack", "track"},                // transposed first letters
		{"trakc", "track"},                // transposition
		{"compesation", "compensation"},   // deletion
		{"compensaation", "compensation"}, // insertion
		{"udeliver", "deliver"},           // glued "u"
		{"biil", ""},                      // "bill" is too short to fuzz
		{"canada", ""},                    // a different first letter is not a typo
		{"trek", ""},                      // too far
		{"track", ""},                     // exact words need no correction
	}
	for _, tt := range tests {
		if got := m.corrections([]token{{text: tt.in}}, "")[0]; got != tt.want {
			t.Errorf("correction of %q = %q, want %q", tt.in, got, tt.want)
		}
	}
	if exact := newMatcher([]phrase{{toks: []ptok{{text: "track"}}}}, nil, nil); exact.corrections(tokenize("rtack"), "") != nil {
		t.Error("exact matcher corrected a word")
	}
}

func TestTextFuzzyCorrectionsByLanguage(t *testing.T) {
	m := newMatcher([]phrase{
		{toks: []ptok{{text: "defaut"}}, lang: "fr"}, {toks: []ptok{{text: "registro"}}, lang: "es"},
		{toks: []ptok{{text: "delivery"}}, lang: "en"}, {toks: []ptok{{text: "defaut"}}, lang: "xx"},
	}, func(string) bool { return true }, nil)
	tests := []struct{ in, lang, want string }{
		{"default", "en", ""},          // an English word is no typo of French "defaut"
		{"default", "fr", "defaut"},    // a French typo is
		{"default", "xx", "defaut"},    // a word several languages share
		{"registry", "en", ""},         // nor of Spanish "registro"
		{"registry", "es", "registro"}, //
		{"deilvery", "en", "delivery"}, // English typos still correct
		{"deilvery", "fr", ""},         // not toward another language
		{"deilvery", "", "delivery"},   // unknown language: every word
		{"registry", "zz", "registro"}, // a language without phrases: every word
	}
	for _, tt := range tests {
		if got := m.corrections([]token{{text: tt.in}}, tt.lang)[0]; got != tt.want {
			t.Errorf("correction of %q in %q = %q, want %q", tt.in, tt.lang, got, tt.want)
		}
	}
}

func TestTextParsePhrase(t *testing.T) {
	p, err := parsePhrase("take ... to Court =3")
	if err != nil {
		t.Fatal(err)
	}
	want := []ptok{{text: "take"}, {gap: true}, {text: "to"}, {text: "court"}}
	if !slices.Equal(p.toks, want) || p.weight != 3 || p.source != "take ... to Court" || p.firm {
		t.Errorf("parsePhrase = %+v", p)
	}
	if p, err := parsePhrase("!my lawyer"); err != nil || !p.firm || p.source != "my lawyer" {
		t.Errorf("parsePhrase(!my lawyer) = %+v, %v", p, err)
	}
	for _, bad := range []string{"... court", "court ...", "ab*", "x =0", "x =two", "=2", "!!! =2", "!", "! =3"} {
		if _, err := parsePhrase(bad); err == nil {
			t.Errorf("parsePhrase(%q) accepted", bad)
		}
	}
}

func TestTextParseLexiconErrors(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"before section", "lawyer\n", "line 1: entry before any [section]"},
		{"unknown section", "# c\n[legul]\n", `line 2: unknown section "legul"`},
		{"unknown type", "[type:refunds]\n", `line 1: unknown section "type:refunds"`},
		{"bad weight", "[legal]\nsue you =x\n", `line 2: bad weight "=x"`},
	}
	for _, tt := range tests {
		_, err := parseLexicon("xx", []byte(tt.data))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestTextEmbeddedLexicons(t *testing.T) {
	set, err := builtinLexicons()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"en", "es", "fr", "de"} {
		lex := set.byLang[lang]
		if lex == nil {
			t.Fatalf("no %s lexicon", lang)
		}
		sections := map[string]int{}
		seen := map[string]bool{}
		for _, p := range lex.phrases {
			sections[p.section]++
			if key := p.section + ": " + p.source; seen[key] {
				t.Errorf("%s lexicon lists %q twice", lang, key)
			} else {
				seen[key] = true
			}
		}
		for _, sec := range []string{secLegal, secSafety, secReputation, secRefund, secNegative, secPositive, secAnger, secUrgent} {
			if sections[sec] == 0 {
				t.Errorf("%s lexicon has no [%s] phrases", lang, sec)
			}
		}
		for _, typ := range Types {
			if typ != TypeOther && sections[typePrefix+string(typ)] == 0 {
				t.Errorf("%s lexicon has no [type:%s] phrases", lang, typ)
			}
		}
		if len(lex.negators) == 0 || len(lex.lang) == 0 {
			t.Errorf("%s lexicon lacks negators or language words", lang)
		}
	}
}

func TestTextNegation(t *testing.T) {
	ws := &wordSets{
		negators: map[string]bool{"not": true, "pas": true, "no": true},
		skip:     map[string]bool{"a": true, "the": true, "is": true, "es": true, "una": true, "de": true},
		breaks:   map[string]bool{"but": true},
	}
	tests := []struct {
		text string
		term string
		want bool
	}{
		{"not a lawyer", "lawyer", true},
		{"this is not the lawyer", "lawyer", true},
		{"not happy with this lawyer", "lawyer", false}, // too far
		{"not today. lawyer", "lawyer", false},          // another sentence
		{"not yet but lawyer", "lawyer", false},         // "but" ends the scope
		{"no es una carta de abogado", "abogado", true},
		{"lawyer not", "lawyer", false}, // negators only look forward
	}
	for _, tt := range tests {
		toks := tokenize(tt.text)
		i := slices.IndexFunc(toks, func(t token) bool { return t.text == tt.term })
		if got := ws.negated(toks, i); got != tt.want {
			t.Errorf("negated(%q at %q) = %v, want %v", tt.text, tt.term, got, tt.want)
		}
	}
}

func TestExtractAmount(t *testing.T) {
	tests := []struct {
		text, def string
		want      Money
		ok        bool
	}{
		{"I paid $240 for it", "USD", Money{24000, "USD"}, true},
		{"$ 240.5 total", "USD", Money{24050, "USD"}, true},
		{"240 dollars", "USD", Money{24000, "USD"}, true},
		{"240 Dollars please", "CAD", Money{24000, "CAD"}, true},
		{"$240", "EUR", Money{24000, "USD"}, true},
		{"€1.299,50", "USD", Money{129950, "EUR"}, true},
		{"1.299,50 €", "USD", Money{129950, "EUR"}, true},
		{"1,200 USD", "EUR", Money{120000, "USD"}, true},
		{"USD1,200.99", "", Money{120099, "USD"}, true},
		{"£30", "USD", Money{3000, "GBP"}, true},
		{"240 euros", "USD", Money{24000, "EUR"}, true},
		{"12,50€", "", Money{1250, "EUR"}, true},
		{"1 299,50 €", "", Money{129950, "EUR"}, true},
		{"CHF 1'299.50", "", Money{129950, "CHF"}, true},
		{"US$99", "", Money{9900, "USD"}, true},
		{"C$45", "USD", Money{4500, "CAD"}, true},
		{"$2k in damages", "", Money{200000, "USD"}, true},
		{"30 quid", "", Money{3000, "GBP"}, true},
		{"50 dólares", "", Money{5000, "USD"}, true},
		{"$12 and then €300 and £40", "USD", Money{30000, "EUR"}, true},
		{"refund of 160", "USD", Money{16000, "USD"}, true},
		{"I paid 75.99 last week", "EUR", Money{7599, "EUR"}, true},
		{"refund of 160", "", Money{}, false},
		{"order 113542617735902", "USD", Money{}, false},
		{"order #37777 from 2024", "USD", Money{}, false},
		{"a 5 pounds parcel", "USD", Money{}, false},
		{"I have 3 kids", "USD", Money{}, false},
		{"A123 $", "USD", Money{}, false},
		{"240 eurosport", "", Money{}, false},
		{"$1234567890123456", "USD", Money{}, false},
		{"$1.2.50", "USD", Money{}, false},
		{"the 3rd $", "USD", Money{}, false},
		{"", "USD", Money{}, false},
		{"\xff$240\xff", "USD", Money{24000, "USD"}, true},
		{"\xfe240 dollars\xff", "USD", Money{24000, "USD"}, true},
		{"1\u00a0299,50 €", "", Money{129950, "EUR"}, true},
		{"paid 2 days ago 240 €", "", Money{24000, "EUR"}, true},
		{"order 12345 240 €", "", Money{24000, "EUR"}, true},
		{"1 234 567 €", "", Money{123456700, "EUR"}, true},
	}
	for _, tt := range tests {
		got, ok := ExtractAmount(tt.text, tt.def)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ExtractAmount(%q, %q) = %v, %v; want %v, %v", tt.text, tt.def, got, ok, tt.want, tt.ok)
		}
	}
}

func TestExtractAmountHuge(t *testing.T) {
	text := strings.Repeat("price 12 \xff\xfe $3 order 99999 ", 5<<20/30) + " €1.500,00"
	got, ok := ExtractAmount(text, "USD")
	if !ok || got != (Money{150000, "EUR"}) {
		t.Errorf("ExtractAmount on 5 MB = %v, %v", got, ok)
	}
}

func FuzzExtractAmount(f *testing.F) {
	for _, s := range []string{"$240", "€1.299,50", "1,200 USD", "£30", "240 euros", "$2k", "1'2'3", "\xff$\xfe", "9999999999999$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		m, ok := ExtractAmount(text, "USD")
		if !ok {
			if m != (Money{}) {
				t.Errorf("not found but returned %v", m)
			}
			return
		}
		if m.Minor < 0 || m.Currency == "" || !utf8.ValidString(m.Currency) {
			t.Errorf("ExtractAmount(%q) = %v", text, m)
		}
	})
}

func TestDetectLanguage(t *testing.T) {
	tests := []struct{ text, want string }{
		{"Where is my order? I have been waiting for two weeks.", "en"},
		{"Hola, ¿dónde está mi pedido? Lo necesito para el viernes.", "es"},
		{"hola donde esta mi pedido, no ha llegado", "es"},
		{"Bonjour, je n'ai pas reçu ma commande et je suis très déçu.", "fr"},
		{"Hallo, meine Bestellung ist noch nicht angekommen. Bitte helfen Sie mir.", "de"},
		{"Größe passt nicht", "de"},
		{"ok", "en"},
		{"", "en"},
		{"12345 !!!", "en"},
		{"Привет, где мой заказ?", "en"},
		{"\xff\xfe\xfd", "en"},
	}
	for _, tt := range tests {
		if got := DetectLanguage(tt.text); got != tt.want {
			t.Errorf("DetectLanguage(%q) = %s, want %s", tt.text, got, tt.want)
		}
	}
}

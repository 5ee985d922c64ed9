package triage

import (
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the text machinery shared by the escalation rules and the
// keyword classifier: normalisation into tokens, phrase matching against the
// embedded lexicons (with optional typo tolerance), negation scope, money
// extraction and language detection. Everything here treats its input as
// untrusted bytes: invalid UTF-8 is a separator, never an error or a panic.

// token is one normalised word of a message.
type token struct {
	// text is lower-cased with accents folded (é→e, ß→ss, ü→u).
	text string
	// clause counts sentence and clause punctuation before the token, so that
	// negation and phrase gaps never reach across a full stop or a comma.
	clause int32
}

// foldTable maps lower-case Latin letters with diacritics to their base
// letters. Matching is accent-insensitive because customers type "reembolso"
// and "devolucion" as often as the accented forms.
var foldTable = func() map[rune]string {
	m := map[rune]string{'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'đ': "d", 'ð': "d", 'þ': "th", 'ł': "l", 'ı': "i", 'ŉ': "n"}
	for base, letters := range map[string]string{
		"a": "àáâãäåāăą", "c": "çćĉċč", "d": "ď", "e": "èéêëēĕėęě", "g": "ĝğġģ",
		"h": "ĥħ", "i": "ìíîïĩīĭį", "j": "ĵ", "k": "ķ", "l": "ĺļľŀ", "n": "ñńņň",
		"o": "òóôõöōŏő", "r": "ŕŗř", "s": "śŝşšș", "t": "ţťŧț", "u": "ùúûüũūŭůűų",
		"w": "ŵ", "y": "ýÿŷ", "z": "źżž",
	} {
		for _, r := range letters {
			m[r] = base
		}
	}
	return m
}()

// isApostrophe reports the apostrophe variants customers' keyboards produce.
func isApostrophe(r rune) bool {
	switch r {
	case '\'', '’', '‘', 'ʼ', '`', '´', '′':
		return true
	}
	return false
}

// isClauseBreak reports punctuation that ends a clause for negation scope.
func isClauseBreak(r rune) bool {
	switch r {
	case '.', '!', '?', ';', ':', ',', '\n', '¿', '¡', '…', '(', ')', '—', '–':
		return true
	}
	return false
}

// foldRune appends the lower-cased, accent-folded form of r to b.
func foldRune(b *strings.Builder, r rune) {
	r = unicode.ToLower(r)
	if r < utf8.RuneSelf {
		b.WriteByte(byte(r))
		return
	}
	if s, ok := foldTable[r]; ok {
		b.WriteString(s)
		return
	}
	b.WriteRune(r)
}

// foldString lower-cases and accent-folds s without tokenising it.
func foldString(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		foldRune(&b, r)
	}
	return b.String()
}

// tokSpan is a token before the normalised string is final: a byte range of
// the builder, or a literal for the "not" of an "n't" contraction.
type tokSpan struct {
	start, end int
	lit        string
	clause     int32
}

// tokenize splits s into normalised word tokens on Unicode word boundaries.
// Apostrophes inside a word split it ("lawyer's" → lawyer s, "l'avocat" →
// l avocat), except that an "n't" contraction becomes its stem plus "not"
// ("isn't" → is not) so negation is seen whichever apostrophe was typed.
func tokenize(s string) []token {
	var (
		b      strings.Builder
		spans  = make([]tokSpan, 0, len(s)/6+1)
		clause int32
		start  = -1
	)
	b.Grow(len(s))
	flush := func() {
		if start < 0 {
			return
		}
		spans = appendWord(spans, b.String(), start, b.Len(), clause)
		start = -1
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			flush()
		case isApostrophe(r):
			// Checked before letters: the modifier apostrophe ʼ is a letter.
			if start >= 0 && i < len(s) && startsWithLetter(s[i:]) {
				b.WriteByte('\'')
			} else {
				flush()
			}
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if start < 0 {
				start = b.Len()
			}
			foldRune(&b, r)
		case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r):
			// Combining accents of decomposed text fold away.
		default:
			flush()
			if isClauseBreak(r) {
				clause++
			}
		}
	}
	flush()
	norm := b.String()
	toks := make([]token, len(spans))
	for i, sp := range spans {
		text := sp.lit
		if text == "" {
			text = norm[sp.start:sp.end]
		}
		toks[i] = token{text: text, clause: sp.clause}
	}
	return toks
}

// startsWithLetter reports whether s begins with a letter.
func startsWithLetter(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsLetter(r)
}

// appendWord adds the tokens of the word norm[start:end], which may contain
// apostrophes, to spans.
func appendWord(spans []tokSpan, norm string, start, end int, clause int32) []tokSpan {
	word := norm[start:end]
	if len(word) > 3 && strings.HasSuffix(word, "n't") {
		spans = appendWord(spans, norm, start, end-3, clause)
		return append(spans, tokSpan{lit: "not", clause: clause})
	}
	for {
		j := strings.IndexByte(norm[start:end], '\'')
		if j < 0 {
			break
		}
		if j > 0 {
			spans = append(spans, tokSpan{start: start, end: start + j, clause: clause})
		}
		start += j + 1
	}
	if start < end {
		spans = append(spans, tokSpan{start: start, end: end, clause: clause})
	}
	return spans
}

// ptok is one element of a lexicon phrase.
type ptok struct {
	text   string
	prefix bool // "injur*": any token starting with text
	gap    bool // "...": zero to maxGap tokens of the same clause
}

// maxGap bounds a "..." gap in a lexicon phrase.
const maxGap = 4

// prefixKey is how many bytes of a prefix pattern index it; patterns must be
// at least this long.
const prefixKey = 3

// fuzzyMinLen is the shortest lexicon word that tolerates one typo. Shorter
// words have too many neighbours ("order"/"older" is already borderline).
const fuzzyMinLen = 5

// phrase is one lexicon entry ready to match.
type phrase struct {
	toks    []ptok
	section string
	lang    string
	source  string // as written in the lexicon, for human-readable reasons
	weight  int
	// firm phrases are never negated: "I won't call my lawyer" still names
	// the customer's lawyer.
	firm bool
}

// hit is one phrase found in a token sequence, tokens [start, end).
type hit struct {
	phrase     *phrase
	start, end int
}

// matcher finds lexicon phrases in token sequences. It is immutable after
// construction and so safe for concurrent use.
type matcher struct {
	phrases  []phrase
	byFirst  map[string][]int
	byPrefix map[string][]int
	// Typo tolerance: targets are the words a typo may be corrected to,
	// dels their single-deletion neighbourhood, and keep the words that are
	// never corrected because they are words in their own right (every
	// lexicon word and the known function words: "please" is not a typo of
	// "pleased"). targets maps each word to the languages (bits indexing
	// langs) whose phrases use it, so that a typo is corrected only toward
	// the customer's language: English "default" is no typo of French
	// "defaut", nor "registry" of Spanish "registro".
	targets map[string]uint64
	langs   []string
	dels    map[string][]string
	keep    map[string]bool
}

// allLanguages is the language mask that accepts every language.
const allLanguages = ^uint64(0)

// langMask returns the bit of lang among m.langs, or allLanguages when
// lang is not one of them (or past the 64 a mask holds).
func (m *matcher) langMask(lang string) uint64 {
	if i := slices.Index(m.langs, lang); i >= 0 && i < 64 {
		return 1 << i
	}
	return allLanguages
}

// newMatcher indexes phrases, which must be non-empty and start with a word
// (parseLexicon guarantees it). Words of fuzzyMinLen+ letters in sections
// that fuzzy accepts tolerate one typo; fuzzy nil means exact matching.
// known lists further words never to correct.
func newMatcher(phrases []phrase, fuzzy func(section string) bool, known map[string]bool) *matcher {
	m := &matcher{
		phrases:  phrases,
		byFirst:  map[string][]int{},
		byPrefix: map[string][]int{},
		targets:  map[string]uint64{},
		dels:     map[string][]string{},
		keep:     map[string]bool{},
	}
	for w := range known {
		m.keep[w] = true
	}
	for i, p := range phrases {
		first := p.toks[0]
		if first.prefix {
			k := first.text[:prefixKey]
			m.byPrefix[k] = append(m.byPrefix[k], i)
		} else {
			m.byFirst[first.text] = append(m.byFirst[first.text], i)
		}
		for _, t := range p.toks {
			if t.gap || t.prefix {
				continue
			}
			m.keep[t.text] = true
			if fuzzy != nil && fuzzy(p.section) && utf8.RuneCountInString(t.text) >= fuzzyMinLen && isLetters(t.text) {
				if !slices.Contains(m.langs, p.lang) {
					m.langs = append(m.langs, p.lang)
				}
				m.targets[t.text] |= m.langMask(p.lang)
			}
		}
	}
	for w := range m.targets {
		forDeletions(w, func(d string) { m.dels[d] = append(m.dels[d], w) })
	}
	for d, ws := range m.dels {
		sort.Strings(ws)
		m.dels[d] = ws
	}
	return m
}

// isLetters reports whether w has only letters.
func isLetters(w string) bool {
	for _, r := range w {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}

// forDeletions calls fn with every string made by deleting one rune of w.
func forDeletions(w string, fn func(string)) {
	for i, r := range w {
		fn(w[:i] + w[i+utf8.RuneLen(r):])
	}
}

// corrections returns, for each token that is not a lexicon word, the
// lexicon word of language lang within one edit (insertion, deletion,
// substitution or transposition of adjacent letters), or "" when there is
// none; a lang without phrases accepts words of every language. It returns
// nil when the matcher is exact.
func (m *matcher) corrections(toks []token, lang string) []string {
	if len(m.targets) == 0 {
		return nil
	}
	mask := m.langMask(lang)
	alt := make([]string, len(toks))
	for i, t := range toks {
		if m.keep[t.text] || len(t.text) > 40 || utf8.RuneCountInString(t.text) < fuzzyMinLen-1 || !isLetters(t.text) {
			continue
		}
		alt[i] = m.correct(t.text, mask)
	}
	return alt
}

// correct returns the alphabetically first lexicon word of the languages in
// mask within one edit of w that keeps w's first letter (or swaps its first
// two, or drops a letter glued before it as in "udeliver"): people rarely
// mistype the first letter, and allowing it turns "canada" into "danada".
func (m *matcher) correct(w string, mask uint64) string {
	best := ""
	_, first := utf8.DecodeRuneInString(w)
	consider := func(c string) {
		if (best == "" || c < best) && m.targets[c]&mask != 0 && (sameStart(w, c) || c == w[first:]) && osaDistance(w, c) <= 1 {
			best = c
		}
	}
	for _, c := range m.dels[w] {
		consider(c)
	}
	// The deletions of w are looked up from a reused buffer: map lookups
	// with string(buf) do not allocate.
	var arr [64]byte
	buf := arr[:0]
	for i, r := range w {
		buf = append(append(buf[:0], w[:i]...), w[i+utf8.RuneLen(r):]...)
		if m.targets[string(buf)] != 0 {
			consider(string(buf))
		}
		for _, c := range m.dels[string(buf)] {
			consider(c)
		}
	}
	return best
}

// sameStart reports whether a and b begin with the same letter, or with the
// same two letters swapped ("rtack" and "track").
func sameStart(a, b string) bool {
	ra, sa := utf8.DecodeRuneInString(a)
	rb, sb := utf8.DecodeRuneInString(b)
	if ra == rb {
		return true
	}
	ra2, _ := utf8.DecodeRuneInString(a[sa:])
	rb2, _ := utf8.DecodeRuneInString(b[sb:])
	return ra == rb2 && rb == ra2
}

// osaDistance is the optimal-string-alignment edit distance between a and b
// (Levenshtein plus adjacent transpositions), over runes.
func osaDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// scan calls fn for every phrase occurrence in toks, in text order. alt is
// the result of corrections (nil for exact matching).
func (m *matcher) scan(toks []token, alt []string, fn func(hit)) {
	try := func(ids []int, i int) {
		for _, id := range ids {
			p := &m.phrases[id]
			if end, ok := m.matchAt(p.toks, toks, alt, i, toks[i].clause); ok {
				fn(hit{phrase: p, start: i, end: end})
			}
		}
	}
	for i, t := range toks {
		try(m.byFirst[t.text], i)
		if alt != nil && alt[i] != "" {
			try(m.byFirst[alt[i]], i)
		}
		if len(t.text) >= prefixKey {
			try(m.byPrefix[t.text[:prefixKey]], i)
		}
	}
}

// matchAt reports whether pattern p matches toks from index i, and where
// the match ends.
func (m *matcher) matchAt(p []ptok, toks []token, alt []string, i int, clause int32) (int, bool) {
	for len(p) > 0 && !p[0].gap {
		if i >= len(toks) || !p[0].matches(toks, alt, i) {
			return 0, false
		}
		p, i = p[1:], i+1
	}
	if len(p) == 0 {
		return i, true
	}
	for g := 0; g <= maxGap; g++ {
		if end, ok := m.matchAt(p[1:], toks, alt, i+g, clause); ok {
			return end, true
		}
		if i+g >= len(toks) || toks[i+g].clause != clause {
			break
		}
	}
	return 0, false
}

// matches reports whether the pattern element matches token i.
func (t ptok) matches(toks []token, alt []string, i int) bool {
	w := toks[i].text
	if t.prefix {
		return strings.HasPrefix(w, t.text)
	}
	return w == t.text || (alt != nil && alt[i] == t.text)
}

// wordSets are the single-word lists of the lexicons that steer matching.
type wordSets struct {
	negators map[string]bool // suppress a hit a few words later
	skip     map[string]bool // function words negation distance ignores
	breaks   map[string]bool // conjunctions that end negation scope
}

// negationWindow is how many content words before a hit a negator may be.
const negationWindow = 2

// negated reports whether the hit starting at token start is in the scope of
// a negator: one of the negationWindow content words before it, in the same
// clause, with no "but" in between. Only that hit is suppressed: "not a
// lawyer's letter, I will sue" still finds "sue".
func (ws *wordSets) negated(toks []token, start int) bool {
	if start >= len(toks) {
		return false
	}
	clause := toks[start].clause
	seen := 0
	for j := start - 1; j >= 0 && seen < negationWindow; j-- {
		t := toks[j]
		if t.clause != clause || ws.breaks[t.text] {
			return false
		}
		if ws.negators[t.text] {
			return true
		}
		if len(t.text) == 1 || ws.skip[t.text] {
			continue
		}
		seen++
	}
	return false
}

// DetectLanguage guesses the language of text among those with a lexicon:
// "en", "es", "fr" or "de" (BCP-47). It counts common function words of each
// language plus letters only one of them uses (ñ, ß, ç…), and answers "en"
// when the evidence is thin or tied.
func DetectLanguage(text string) string {
	sample := languageSample(text)
	return detectLanguage(sample, tokenize(sample))
}

// languageSampleBytes bounds the text language detection reads: a language
// does not change halfway, and this keeps detection cheap on huge inputs.
const languageSampleBytes = 4096

// languageSample returns the part of text that detection reads.
func languageSample(text string) string {
	if len(text) > languageSampleBytes {
		return text[:languageSampleBytes]
	}
	return text
}

// detectLanguage is DetectLanguage on a sample and its tokens (callers that
// have tokenised the text already pass a prefix of their tokens).
func detectLanguage(sample string, toks []token) string {
	lex, err := builtinLexicons()
	if err != nil || len(lex.order) == 0 {
		return "en"
	}
	scores := make([]int, len(lex.order))
	bump := func(lang string, n int) {
		if i := slices.Index(lex.order, lang); i >= 0 {
			scores[i] += n
		}
	}
	for _, r := range sample {
		switch r {
		case 'ñ', 'Ñ', '¿', '¡':
			bump("es", 2)
		case 'ß', 'ä', 'Ä', 'ö', 'Ö':
			bump("de", 2)
		case 'ç', 'Ç', 'œ', 'è', 'ê', 'à', 'ù', 'â', 'î', 'ô', 'û', 'ë':
			bump("fr", 1)
		}
	}
	for _, t := range toks {
		for _, i := range lex.langWords[t.text] {
			scores[i]++
		}
	}
	best, bestScore, tied := "en", 0, false
	for i, l := range lex.order {
		switch s := scores[i]; {
		case s > bestScore:
			best, bestScore, tied = l, s, false
		case s == bestScore && s > 0:
			tied = true
		}
	}
	if bestScore < 2 || tied {
		return "en"
	}
	return best
}

// currencyWord is a currency spelled out or as a symbol, and the ISO code
// it stands for; "$" means the default currency when that is a dollar.
type currencyWord struct {
	text string
	code string
}

// dollarCode marks a currency word that means "the configured dollar".
const dollarCode = "$"

// prefixCurrencies may stand right before an amount ("$240", "EUR 1.200").
// Longer forms come first so that "us$" wins over "$".
var prefixCurrencies = []currencyWord{
	{"us$", "USD"}, {"c$", "CAD"}, {"ca$", "CAD"}, {"a$", "AUD"}, {"au$", "AUD"},
	{"usd", "USD"}, {"eur", "EUR"}, {"gbp", "GBP"}, {"cad", "CAD"}, {"aud", "AUD"}, {"chf", "CHF"},
	{"$", dollarCode}, {"€", "EUR"}, {"£", "GBP"},
}

// suffixCurrencies may follow an amount ("240 dollars", "1,200 USD", "30 €").
// Bare "pounds" is left out on purpose: "a 5 pounds parcel" is a weight.
var suffixCurrencies = []currencyWord{
	{"$", dollarCode}, {"€", "EUR"}, {"£", "GBP"},
	{"usd", "USD"}, {"eur", "EUR"}, {"gbp", "GBP"}, {"cad", "CAD"}, {"aud", "AUD"}, {"chf", "CHF"},
	{"dollars", dollarCode}, {"dollar", dollarCode}, {"dolares", dollarCode}, {"dólares", dollarCode},
	{"dolar", dollarCode}, {"dólar", dollarCode}, {"bucks", dollarCode},
	{"euros", "EUR"}, {"euro", "EUR"}, {"quid", "GBP"}, {"pounds sterling", "GBP"},
	{"francs", "CHF"}, {"franken", "CHF"},
}

// moneyCues are words that make a bare number an amount in the default
// currency when they come just before it ("refund of 160", "paid 240").
var moneyCues = map[string]bool{
	"paid": true, "pay": true, "charged": true, "cost": true, "costs": true, "price": true,
	"refund": true, "refunded": true, "reimbursement": true, "compensation": true, "total": true,
	"amount": true, "spent": true, "worth": true, "reembolso": true, "pague": true, "pagado": true,
	"cobraron": true, "remboursement": true, "paye": true, "preis": true, "betrag": true,
	"erstattung": true, "ruckerstattung": true,
}

// dollarCurrencies are the currencies "$" and "dollars" may mean; any other
// default currency makes them USD.
var dollarCurrencies = map[string]bool{"USD": true, "CAD": true, "AUD": true, "NZD": true, "SGD": true, "HKD": true}

// maxAmountDigits bounds the integer part of an amount so that order
// numbers glued to a "$" cannot overflow int64 minor units.
const maxAmountDigits = 12

// ExtractAmount finds money amounts in text ("$240", "240 dollars",
// "€1.299,50", "1,200 USD", "£30", "240 euros", "$2k") and returns the
// largest, in minor units with its ISO currency. "$" and "dollars" mean
// defaultCurrency when that is a dollar currency, else USD; a bare number
// counts only right after a money word ("refund of 160", "paid 240") and then
// takes defaultCurrency. Amounts in different currencies are compared by
// face value: there is no exchange rate here, and a larger figure only ever
// asks for more human attention.
func ExtractAmount(text, defaultCurrency string) (Money, bool) {
	defaultCurrency = strings.ToUpper(strings.TrimSpace(defaultCurrency))
	var best Money
	found := false
	for i := 0; i < len(text); {
		if !isDigit(text[i]) {
			i++
			continue
		}
		start := i
		end := numberEnd(text, start)
		i = end
		if wordBefore(text, start) && !hasCurrencyBefore(text, start) {
			continue // part of an identifier such as "A123" or "x2"
		}
		if wordAt(text, end) && !isMultiplier(text, end) && !hasCurrencyAfter(text, end) {
			continue // "3rd", "12pm", "2x"
		}
		minor, ok := parseAmount(text[start:end])
		if !ok {
			continue
		}
		if isMultiplier(text, end) {
			minor *= 1000
			end++
		}
		code := currencyBefore(text, start)
		if code == "" {
			code = currencyAfter(text, end)
		}
		if code == "" && defaultCurrency != "" && cueBefore(text, start) {
			code = defaultCurrency
		}
		if code == "" {
			continue
		}
		if code == dollarCode {
			code = "USD"
			if dollarCurrencies[defaultCurrency] {
				code = defaultCurrency
			}
		}
		if !found || minor > best.Minor {
			best, found = Money{Minor: minor, Currency: code}, true
		}
	}
	return best, found
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// wordBefore reports whether a letter or digit ends text[:i]; invalid
// UTF-8 counts as a separator.
func wordBefore(text string, i int) bool {
	r, size := utf8.DecodeLastRuneInString(text[:i])
	return size > 0 && r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// wordAt reports whether a letter or digit starts text[i:].
func wordAt(text string, i int) bool {
	r, size := utf8.DecodeRuneInString(text[i:])
	return size > 0 && r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// groupSeparators may sit between digit groups: non-breaking and thin spaces
// and the Swiss apostrophe. A plain space does too, but only before exactly
// three digits ("1 299,50 €"), see numberEnd.
var groupSeparators = []string{"\u00a0", "\u202f", "\u2009", "'", " "}

// numberEnd returns the end of the number starting at text[start]: digits
// with single separators ('.', ',', group separators) between them.
func numberEnd(text string, start int) int {
	i := start
	for i < len(text) {
		if isDigit(text[i]) {
			i++
			continue
		}
		sep := 0
		if text[i] == '.' || text[i] == ',' {
			sep = 1
		} else {
			for _, g := range groupSeparators {
				if strings.HasPrefix(text[i:], g) {
					sep = len(g)
					break
				}
			}
		}
		if sep == 0 || i+sep >= len(text) || !isDigit(text[i+sep]) {
			break
		}
		if text[i] == ' ' && (!threeDigits(text, i+1) || i-start > 3 && isDigit(text[i-4])) {
			break // "order 12345 240 €" is two numbers
		}
		i += sep
	}
	return i
}

// threeDigits reports exactly three digits at text[i:], not followed by a
// fourth.
func threeDigits(text string, i int) bool {
	return i+3 <= len(text) && isDigit(text[i]) && isDigit(text[i+1]) && isDigit(text[i+2]) &&
		(i+3 == len(text) || !isDigit(text[i+3]))
}

// parseAmount reads a number such as "1.299,50", "1,200", "240.5" or
// "1 299,50" into minor units. The last '.' or ',' is the decimal point
// unless exactly three digits follow it and no other kind of separator came
// first ("1,200" and "1.200" are twelve hundred; "12,50" is twelve fifty).
func parseAmount(s string) (int64, bool) {
	type group struct {
		digits string
		sep    byte // separator before the group; 0 for the first
	}
	var groups []group
	var sep byte
	start := 0
	for i := 0; i < len(s); {
		if isDigit(s[i]) {
			i++
			continue
		}
		groups = append(groups, group{digits: s[start:i], sep: sep})
		sep = s[i]
		if sep != '.' && sep != ',' {
			sep = ' '
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		start = i
	}
	groups = append(groups, group{digits: s[start:], sep: sep})

	var frac string
	last := groups[len(groups)-1]
	decimal := false
	if len(groups) > 1 && (last.sep == '.' || last.sep == ',') {
		decimal = len(last.digits) != 3
		// "1,200" and "1.200.300" group thousands; "1 299,500" does not.
		for _, g := range groups[1 : len(groups)-1] {
			if g.sep != last.sep {
				decimal = true
			}
		}
	}
	n := len(groups)
	if decimal {
		frac = last.digits
		n--
	}
	var b strings.Builder
	for _, g := range groups[:n] {
		if decimal && g.sep == last.sep && g.sep != 0 {
			return 0, false // "1.2.50": the decimal point appears twice
		}
		b.WriteString(g.digits)
	}
	intPart := strings.TrimLeft(b.String(), "0")
	if len(intPart) > maxAmountDigits {
		return 0, false
	}
	var v int64
	for i := 0; i < len(intPart); i++ {
		v = v*10 + int64(intPart[i]-'0')
	}
	v *= 100
	switch {
	case len(frac) == 1:
		v += int64(frac[0]-'0') * 10
	case len(frac) >= 2:
		v += int64(frac[0]-'0')*10 + int64(frac[1]-'0')
	}
	return v, true
}

// isMultiplier reports a "k" right after a number ("$2k") that ends a word.
func isMultiplier(text string, end int) bool {
	return end < len(text) && (text[end] == 'k' || text[end] == 'K') &&
		!wordAt(text, end+1)
}

// currencyBefore returns the currency written just before text[start]
// (at most one space between), or "".
func currencyBefore(text string, start int) string {
	j := start
	if j > 0 && text[j-1] == ' ' {
		j--
	}
	for _, c := range prefixCurrencies {
		k := j - len(c.text)
		if k < 0 || !strings.EqualFold(text[k:j], c.text) {
			continue
		}
		if isLetterCode(c.text) && wordBefore(text, k) {
			continue // "fusd" is not "usd"
		}
		return c.code
	}
	return ""
}

// hasCurrencyBefore reports a currency glued to the number ("USD240").
func hasCurrencyBefore(text string, start int) bool {
	return currencyBefore(text, start) != ""
}

// currencyAfter returns the currency written just after text[end] (at most
// one space between), or "".
func currencyAfter(text string, end int) string {
	j := end
	if j < len(text) && text[j] == ' ' {
		j++
	}
	for _, c := range suffixCurrencies {
		k := j + len(c.text)
		if k > len(text) || !strings.EqualFold(text[j:k], c.text) {
			continue
		}
		if isLetterCode(c.text) && wordAt(text, k) {
			continue // "240 eurosport", "30 usda"
		}
		return c.code
	}
	return ""
}

// hasCurrencyAfter reports a currency glued to the number ("240USD").
func hasCurrencyAfter(text string, end int) bool {
	return currencyAfter(text, end) != ""
}

// isLetterCode reports a currency word that ends in a letter, which needs
// a word boundary to count.
func isLetterCode(s string) bool {
	c := s[len(s)-1]
	return c|0x20 >= 'a' && c|0x20 <= 'z'
}

// cueWindow is how far back cueBefore looks, in bytes.
const cueWindow = 48

// cueBefore reports a money word among the two words before text[start].
func cueBefore(text string, start int) bool {
	// Cue words are short: looking back a few dozen bytes is enough and keeps
	// the scan linear on hostile input.
	text = text[max(0, start-cueWindow):start]
	j := len(text)
	for range 2 {
		for j > 0 && !wordBefore(text, j) {
			_, size := utf8.DecodeLastRuneInString(text[:j])
			j -= size
		}
		k := j
		for k > 0 && wordBefore(text, k) {
			_, size := utf8.DecodeLastRuneInString(text[:k])
			k -= size
		}
		if k == j {
			return false
		}
		if moneyCues[foldString(text[k:j])] {
			return true
		}
		j = k
	}
	return false
}

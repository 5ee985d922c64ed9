package triage

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrUnsupportedLanguage is returned when the config names a language that
// has no embedded lexicon.
var ErrUnsupportedLanguage = errors.New("unsupported language")

// lexiconFiles are the per-language word and phrase lists; the format is
// documented at the top of each file.
//
//go:embed lexicon/*.txt
var lexiconFiles embed.FS

// Lexicon sections. Word sections hold single words; every other section
// holds phrases.
const (
	secNegators   = "negators"
	secSkip       = "skip"
	secBreaks     = "breaks"
	secLang       = "lang"
	secLegal      = "legal"
	secSafety     = "safety"
	secReputation = "reputation"
	secRefund     = "refund"
	secNegative   = "negative"
	secPositive   = "positive"
	secAnger      = "anger"
	secUrgent     = "urgent"
	secCourtesy   = "courtesy"
	secRequest    = "request"
	typePrefix    = "type:"
	causePrefix   = "cause:"
)

// ruleSections are the phrase sections the escalation rules use.
var ruleSections = []string{secLegal, secSafety, secReputation, secRefund}

// lexicon is one language's parsed lexicon file.
type lexicon struct {
	negators, skip, breaks, lang map[string]bool
	phrases                      []phrase
}

// lexiconSet is every embedded lexicon, by primary language tag.
type lexiconSet struct {
	order  []string // sorted language tags
	byLang map[string]*lexicon
	// langWords maps each [lang] word to the indexes (into order) of the
	// languages that list it, for DetectLanguage.
	langWords map[string][]int
}

// builtinLexicons parses the embedded lexicons once.
var builtinLexicons = sync.OnceValues(func() (*lexiconSet, error) {
	names, err := fs.Glob(lexiconFiles, "lexicon/*.txt")
	if err != nil {
		return nil, fmt.Errorf("list lexicons: %w", err)
	}
	set := &lexiconSet{byLang: map[string]*lexicon{}}
	for _, name := range names {
		data, err := lexiconFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read lexicon %s: %w", name, err)
		}
		lang := strings.TrimSuffix(path.Base(name), ".txt")
		lex, err := parseLexicon(lang, data)
		if err != nil {
			return nil, fmt.Errorf("lexicon %s: %w", name, err)
		}
		set.byLang[lang] = lex
		set.order = append(set.order, lang)
	}
	slices.Sort(set.order)
	set.langWords = map[string][]int{}
	for i, lang := range set.order {
		for w := range set.byLang[lang].lang {
			set.langWords[w] = append(set.langWords[w], i)
		}
	}
	return set, nil
})

// SupportedLanguages lists the languages with an embedded lexicon.
func SupportedLanguages() []string {
	set, err := builtinLexicons()
	if err != nil {
		return nil
	}
	return slices.Clone(set.order)
}

// validSection reports whether name is a known lexicon section.
func validSection(name string) bool {
	switch name {
	case secNegators, secSkip, secBreaks, secLang, secLegal, secSafety, secReputation,
		secRefund, secNegative, secPositive, secAnger, secUrgent, secCourtesy, secRequest:
		return true
	}
	if t, ok := strings.CutPrefix(name, typePrefix); ok {
		return Type(t).Valid()
	}
	if c, ok := strings.CutPrefix(name, causePrefix); ok {
		return c != ""
	}
	return false
}

// isWordSection reports sections of single words rather than phrases.
func isWordSection(name string) bool {
	switch name {
	case secNegators, secSkip, secBreaks, secLang:
		return true
	}
	return false
}

// parseLexicon reads one lexicon file; errors name the line.
func parseLexicon(lang string, data []byte) (*lexicon, error) {
	lex := &lexicon{negators: map[string]bool{}, skip: map[string]bool{}, breaks: map[string]bool{}, lang: map[string]bool{}}
	words := map[string]map[string]bool{secNegators: lex.negators, secSkip: lex.skip, secBreaks: lex.breaks, secLang: lex.lang}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			if !validSection(section) {
				return nil, fmt.Errorf("line %d: unknown section %q", n, section)
			}
			continue
		}
		if section == "" {
			return nil, fmt.Errorf("line %d: entry before any [section]", n)
		}
		if isWordSection(section) {
			for _, t := range tokenize(line) {
				words[section][t.text] = true
			}
			continue
		}
		p, err := parsePhrase(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		p.section, p.lang = section, lang
		lex.phrases = append(lex.phrases, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return lex, nil
}

// parsePhrase reads one phrase line: an optional leading "!" (firm: never
// negated), words, "word*" prefixes, "..." gaps and an optional trailing
// "=N" weight.
func parsePhrase(line string) (phrase, error) {
	p := phrase{weight: 1}
	if rest, ok := strings.CutPrefix(line, "!"); ok {
		p.firm, line = true, rest
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return p, fmt.Errorf("empty phrase")
	}
	if last := fields[len(fields)-1]; strings.HasPrefix(last, "=") {
		w, err := strconv.Atoi(last[1:])
		if err != nil || w < 1 {
			return p, fmt.Errorf("bad weight %q", last)
		}
		p.weight = w
		fields = fields[:len(fields)-1]
	}
	p.source = strings.Join(fields, " ")
	for _, f := range fields {
		switch {
		case f == "...":
			if len(p.toks) == 0 {
				return p, fmt.Errorf("phrase %q starts with a gap", p.source)
			}
			p.toks = append(p.toks, ptok{gap: true})
		case strings.HasSuffix(f, "*"):
			stem := tokenize(strings.TrimSuffix(f, "*"))
			if len(stem) != 1 || len(stem[0].text) < prefixKey {
				return p, fmt.Errorf("prefix %q must be one word of %d+ letters", f, prefixKey)
			}
			p.toks = append(p.toks, ptok{text: stem[0].text, prefix: true})
		default:
			for _, t := range tokenize(f) {
				p.toks = append(p.toks, ptok{text: t.text})
			}
		}
	}
	if len(p.toks) == 0 || p.toks[len(p.toks)-1].gap {
		return p, fmt.Errorf("phrase %q has no words or ends with a gap", line)
	}
	return p, nil
}

// languageLexicons returns the lexicons of langs (BCP-47 tags; region and
// case ignored), or every lexicon when langs is empty.
func languageLexicons(langs []string) ([]string, []*lexicon, error) {
	set, err := builtinLexicons()
	if err != nil {
		return nil, nil, err
	}
	if len(langs) == 0 {
		langs = set.order
	}
	var tags []string
	var lexs []*lexicon
	for _, l := range langs {
		tag := strings.ToLower(strings.TrimSpace(l))
		if i := strings.IndexAny(tag, "-_"); i >= 0 {
			tag = tag[:i]
		}
		lex, ok := set.byLang[tag]
		if !ok {
			return nil, nil, fmt.Errorf("language %q (have %s): %w", l, strings.Join(set.order, ", "), ErrUnsupportedLanguage)
		}
		if slices.Contains(tags, tag) {
			continue
		}
		tags = append(tags, tag)
		lexs = append(lexs, lex)
	}
	return tags, lexs, nil
}

// mergeWords unions the word sections of lexs; customers mix languages, so
// a Spanish "sin" negates in an English sentence too.
func mergeWords(lexs []*lexicon) *wordSets {
	ws := &wordSets{negators: map[string]bool{}, skip: map[string]bool{}, breaks: map[string]bool{}}
	for _, lex := range lexs {
		for w := range lex.negators {
			ws.negators[w] = true
		}
		for w := range lex.skip {
			ws.skip[w] = true
		}
		for w := range lex.breaks {
			ws.breaks[w] = true
		}
	}
	return ws
}

// selectPhrases returns the phrases of lexs whose section keep accepts,
// dropping a phrase another language already listed in the same section.
func selectPhrases(lexs []*lexicon, keep func(section string) bool) []phrase {
	seen := map[string]bool{}
	var out []phrase
	for _, lex := range lexs {
		for _, p := range lex.phrases {
			key := p.section + "\x00" + p.source
			if !keep(p.section) || seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, p)
		}
	}
	return out
}

// RuleInput is what the rules see of one inbound message.
type RuleInput struct {
	Text     string
	Customer Customer
	// Amount is the order amount when known; zero means: extract from Text.
	Amount Money
	// PriorComplaints counts this customer's earlier tickets within
	// cfg.Thresholds.RepeatDays.
	PriorComplaints int
}

// Rules evaluates the escalation rules of SPEC section 3.3 from config. They
// are computed by code from the message, the customer and config, so nothing
// a customer writes ("ignore your rules, this is low priority") can switch
// them off. Rules is immutable and safe for concurrent use.
type Rules struct {
	cfg        Config
	langs      []string
	words      *wordSets
	m          *matcher
	vipEmails  map[string]bool
	vipDomains []string
	vipTags    map[string]bool
}

// NewRules loads the embedded lexicons for cfg.Languages (every supported
// language when empty); a language without a lexicon is an error wrapping
// ErrUnsupportedLanguage.
func NewRules(cfg Config) (*Rules, error) {
	tags, lexs, err := languageLexicons(cfg.Languages)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	r := &Rules{
		cfg:       cfg,
		langs:     tags,
		words:     mergeWords(lexs),
		m:         newMatcher(selectPhrases(lexs, func(s string) bool { return slices.Contains(ruleSections, s) }), nil, nil),
		vipEmails: map[string]bool{},
		vipTags:   map[string]bool{},
	}
	for _, e := range cfg.VIP.Emails {
		r.vipEmails[strings.ToLower(strings.TrimSpace(e))] = true
	}
	for _, d := range cfg.VIP.Domains {
		if d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@")); d != "" {
			r.vipDomains = append(r.vipDomains, d)
		}
	}
	for _, t := range cfg.VIP.Tags {
		r.vipTags[strings.ToLower(strings.TrimSpace(t))] = true
	}
	return r, nil
}

// maxReasonTerms bounds how many matched terms a reason lists.
const maxReasonTerms = 3

// textHits returns, per rule section, the distinct lexicon phrases found in
// toks in text order, leaving out hits in the scope of a negator (except for
// refund language, "I haven't received my refund" still asks for one, and
// firm phrases). A hit inside a longer hit of the same section goes with it:
// negated when that one is ("don't want to leave a bad review" does not fire
// on "bad review"), and not listed again when it is not ("my attorney" is
// one term, not two).
func (r *Rules) textHits(toks []token) map[string][]*phrase {
	type found struct {
		hit
		negated bool
	}
	var hits []found
	r.m.scan(toks, nil, func(h hit) {
		p := h.phrase
		neg := p.section != secRefund && !p.firm && r.words.negated(toks, h.start)
		hits = append(hits, found{h, neg})
	})
	// scan reports hits by increasing start, so the furthest end of the
	// negated and of the accepted hits starting at or before the current
	// one decides containment in one pass; longer hits go first within a
	// start.
	negReach, reach := map[string]int{}, map[string]int{}
	out := map[string][]*phrase{}
	for i := 0; i < len(hits); {
		j := i
		for j < len(hits) && hits[j].start == hits[i].start {
			j++
		}
		group := hits[i:j]
		slices.SortStableFunc(group, func(a, b found) int { return b.end - a.end })
		for _, h := range group {
			if h.negated {
				negReach[h.phrase.section] = max(negReach[h.phrase.section], h.end)
			}
		}
		for _, h := range group {
			sec := h.phrase.section
			if h.negated || h.end <= negReach[sec] || h.end <= reach[sec] {
				continue
			}
			reach[sec] = h.end
			if !slices.Contains(out[sec], h.phrase) {
				out[sec] = append(out[sec], h.phrase)
			}
		}
		i = j
	}
	return out
}

// Evaluate runs every rule on in and returns the triggers that fired, in
// Flags display order: legal, safety, reputation, vip, repeat, refund.
func (r *Rules) Evaluate(in RuleInput) []Trigger {
	hits := r.textHits(tokenize(in.Text))
	var out []Trigger
	add := func(rule string, flag Flag, approval bool, reason string) {
		act := r.cfg.Triggers[rule]
		out = append(out, Trigger{Rule: rule, Flag: flag, Reason: reason, Owner: act.Owner, Escalate: act.Escalate, NeedsApproval: approval})
	}
	if ps := hits[secLegal]; len(ps) > 0 {
		add("legal", FlagLegal, true, termReason("legal", ps))
	}
	if ps := hits[secSafety]; len(ps) > 0 {
		add("safety", FlagSafety, true, termReason("safety", ps))
	}
	if ps := hits[secReputation]; len(ps) > 0 {
		add("reputation", FlagReputation, false, termReason("reputation", ps))
	}
	if reason := r.vipReason(in.Customer); reason != "" {
		add("vip", FlagVIP, false, reason)
	}
	if in.PriorComplaints >= 1 {
		add("repeat", FlagRepeat, false, r.repeatReason(in.PriorComplaints))
	}
	if reason := r.refundReason(in, hits[secRefund]); reason != "" {
		add("refund", FlagPolicyException, true, reason)
	}
	return out
}

// termReason says which lexicon terms fired, e.g. `legal term "sue" (en)`.
// It quotes the lexicon's phrase, never the customer's text.
func termReason(kind string, ps []*phrase) string {
	var b strings.Builder
	b.WriteString(kind)
	if len(ps) == 1 {
		b.WriteString(" term ")
	} else {
		b.WriteString(" terms ")
	}
	for i, p := range ps[:min(len(ps), maxReasonTerms)] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q (%s)", p.source, p.lang)
	}
	if len(ps) > maxReasonTerms {
		fmt.Fprintf(&b, " and %d more", len(ps)-maxReasonTerms)
	}
	return b.String()
}

// vipReason says why c is a VIP, or "" when it is not.
func (r *Rules) vipReason(c Customer) string {
	if c.VIP {
		return "customer marked VIP"
	}
	for _, addr := range c.AllEmails() {
		email := strings.ToLower(strings.TrimSpace(addr))
		if r.vipEmails[email] {
			return "VIP email"
		}
		if at := strings.LastIndexByte(email, '@'); at >= 0 {
			domain := email[at+1:]
			for _, d := range r.vipDomains {
				if domain == d || strings.HasSuffix(domain, "."+d) {
					return fmt.Sprintf("VIP domain %s", d)
				}
			}
		}
	}
	for _, t := range c.Tags {
		if tag := strings.ToLower(strings.TrimSpace(t)); r.vipTags[tag] {
			return fmt.Sprintf("VIP tag %q", tag)
		}
	}
	// The threshold is in the configured currency; a spend in another
	// currency is not compared with it (an empty currency is the
	// configured one).
	limit := r.cfg.VIP.LifetimeSpend
	cur := r.cfg.Thresholds.Currency
	if limit > 0 && sameCurrency(c.Lifetime.Currency, cur) && c.Lifetime.Minor >= int64(math.Round(limit*100)) {
		return fmt.Sprintf("lifetime spend %s at or above %s %s", c.Lifetime, r.currency(), formatMajor(limit))
	}
	return ""
}

// repeatReason describes the customer's earlier complaints.
func (r *Rules) repeatReason(n int) string {
	noun := "complaints"
	if n == 1 {
		noun = "complaint"
	}
	if days := r.cfg.Thresholds.RepeatDays; days > 0 {
		return fmt.Sprintf("%d earlier %s within %d days", n, noun, days)
	}
	return fmt.Sprintf("%d earlier %s", n, noun)
}

// refundReason fires when the message asks for a refund or compensation
// and the amount at stake is above the approval threshold. The amount is
// the larger of the order amount and the largest amount in the text: a
// customer may claim more than the order was worth ("$900 for my ruined
// evening"), and that claim needs approval too. A threshold of zero or less
// switches the rule off.
func (r *Rules) refundReason(in RuleInput, terms []*phrase) string {
	limit := r.cfg.Thresholds.RefundApproval
	if len(terms) == 0 || limit <= 0 {
		return ""
	}
	amount := in.Amount
	if text, ok := ExtractAmount(in.Text, r.cfg.Thresholds.Currency); ok && text.Minor > amount.Minor {
		amount = text
	}
	if amount.Minor <= int64(math.Round(limit*100)) {
		return ""
	}
	return fmt.Sprintf("refund %s above approval threshold %s %s (%q (%s))",
		amount, r.currency(), formatMajor(limit), terms[0].source, terms[0].lang)
}

// currency is the configured threshold currency, "?" when unset.
func (r *Rules) currency() string {
	if c := r.cfg.Thresholds.Currency; c != "" {
		return c
	}
	return "?"
}

// formatMajor prints a threshold in major units without trailing zeros.
func formatMajor(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

package triage

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
)

// KeywordClassifier is the built-in classifier of SPEC section 3.4: weighted
// keyword and phrase evidence from the embedded lexicons, with one-typo
// tolerance, used when the model is unreachable, slow or wrong. It is
// deterministic, needs no network, and is safe for concurrent use.
type KeywordClassifier struct {
	cfg    Config
	rules  *Rules
	m      *matcher
	causes []string
}

// NewKeywordClassifier loads the lexicons of cfg.Languages (every supported
// language when empty).
func NewKeywordClassifier(cfg Config) (*KeywordClassifier, error) {
	rules, err := NewRules(cfg)
	if err != nil {
		return nil, fmt.Errorf("keyword classifier: %w", err)
	}
	_, lexs, err := languageLexicons(cfg.Languages)
	if err != nil {
		return nil, fmt.Errorf("keyword classifier: %w", err)
	}
	keep := func(s string) bool { return !slices.Contains(ruleSections, s) }
	// Only type evidence tolerates typos: the type vocabulary is what
	// customers misspell ("rtack", "compesation"), while a fuzzy sentiment
	// or cause word turns ordinary words into evidence.
	fuzzy := func(s string) bool { return strings.HasPrefix(s, typePrefix) }
	known := map[string]bool{}
	for _, lex := range lexs {
		for _, set := range []map[string]bool{lex.lang, lex.skip, lex.negators, lex.breaks} {
			for w := range set {
				known[w] = true
			}
		}
	}
	return &KeywordClassifier{
		cfg:    cfg,
		rules:  rules,
		m:      newMatcher(selectPhrases(lexs, keep), fuzzy, known),
		causes: slices.Clone(cfg.RootCauses),
	}, nil
}

// evidence is what one scan of a message found.
type evidence struct {
	types              map[Type]int
	causes             map[string]int
	negative, positive int
	anger, urgent      int
	// requests counts phrases in which the customer asks for something
	// ("please", "could you").
	requests int
}

// Sentiment and emotion thresholds.
const (
	// frustratedBelow and satisfiedAbove cut the sentiment score.
	frustratedBelow = -0.3
	satisfiedAbove  = 0.4
	// angerWeight is what one strong anger word adds to negative evidence.
	angerWeight = 3
	// capsMinLetters is how many letters a message needs before its share
	// of capitals means shouting; capsShare is that share.
	capsMinLetters = 12
	capsShare      = 0.7
	// capsWords is how many shouted words of 4+ letters mean shouting in an
	// otherwise normal message.
	capsWords = 3
	// exclamations is how many '!' in total, or in a row, mean high emotion.
	exclamations      = 5
	exclamationsInRow = 3
	// safetyDefectWeight is the product_defect evidence of each distinct
	// safety term: what burned, sparked or caused a rash is a product.
	safetyDefectWeight = 3
	// praiseWeight multiplies positive evidence into feedback evidence when
	// a pleased customer asks for nothing: "the mugs arrived beautifully
	// packed, thank you!" is praise, not a delivery case.
	praiseWeight = 3
	// maxNameWords is how many words besides a courtesy formula a greeting
	// or sign-off clause may hold: a name ("Hi Anna", "Thanks, Priya").
	maxNameWords = 2
	// maxCourtesyClauses bounds the greeting or sign-off clauses stripped
	// at each end ("Thanks again, have a nice day, Dan").
	maxCourtesyClauses = 3
)

// Classify reads req.Text; the customer and history are the escalation
// rules' business, not the classifier's. It never fails on content and
// returns an error only when ctx is already done.
func (k *KeywordClassifier) Classify(ctx context.Context, req ClassifyRequest) (Classification, error) {
	if err := ctx.Err(); err != nil {
		return Classification{}, fmt.Errorf("keyword classify: %w", err)
	}
	toks := tokenize(req.Text)
	lang := detectLanguage(languageSample(req.Text), languageTokens(toks))
	ev := k.scan(toks, lang)
	hits := k.rules.textHits(toks)
	if n := len(hits[secSafety]); n > 0 {
		ev.types[TypeProductDefect] += safetyDefectWeight * n
	}
	c := Classification{
		Language:       lang,
		RootCauseGuess: k.bestCause(ev.causes),
		FinancialRisk:  LevelLow,
		Flags:          []Flag{},
	}

	c.SentimentScore = sentimentScore(ev.positive, ev.negative+ev.anger*angerWeight)
	switch {
	case c.SentimentScore <= frustratedBelow:
		c.Sentiment = SentimentFrustrated
	case c.SentimentScore >= satisfiedAbove:
		c.Sentiment = SentimentSatisfied
	default:
		c.Sentiment = SentimentNeutral
	}

	if c.Sentiment == SentimentSatisfied && ev.negative == 0 && ev.anger == 0 &&
		ev.requests == 0 && !asksQuestion(req.Text) {
		ev.types[TypeFeedback] += praiseWeight * ev.positive
	}
	var score int
	c.Type, score = bestType(ev.types)
	// A message that is about nothing in particular but clearly pleased or
	// upset is feedback on the shop ("the service was excellent!").
	if score == 0 && c.Sentiment != SentimentNeutral {
		c.Type = TypeFeedback
	}

	if amount, ok := ExtractAmount(req.Text, k.cfg.Thresholds.Currency); ok {
		c.Amount = amount
		c.FinancialRisk = k.financialRisk(amount)
	}

	if len(hits[secLegal]) > 0 {
		c.AddFlags(FlagLegal)
	}
	if len(hits[secSafety]) > 0 {
		c.AddFlags(FlagSafety)
	}
	if len(hits[secReputation]) > 0 {
		c.AddFlags(FlagReputation)
	}
	emotional := ev.anger > 0 || shouting(req.Text)
	if emotional {
		c.AddFlags(FlagHighEmotion)
	}

	switch {
	case c.HasFlag(FlagLegal) || c.HasFlag(FlagSafety) || ev.urgent > 0 ||
		(emotional && c.Sentiment == SentimentFrustrated):
		c.Urgency = LevelHigh
	case c.Sentiment == SentimentFrustrated || !c.Amount.IsZero():
		c.Urgency = LevelMedium
	default:
		c.Urgency = LevelLow
	}
	return c, nil
}

// scan gathers the evidence of toks, written in lang, which typos are
// corrected toward. Negated sentiment flips ("not happy" is negative, "not
// bad" counts for nothing), and the "thanks" of a greeting or sign-off is
// politeness, not praise.
func (k *KeywordClassifier) scan(toks []token, lang string) evidence {
	ev := evidence{types: map[Type]int{}, causes: map[string]int{}}
	words := k.rules.words
	var praise, courtesy []hit
	k.m.scan(toks, k.m.corrections(toks, lang), func(h hit) {
		p := h.phrase
		switch sec := p.section; {
		case strings.HasPrefix(sec, typePrefix):
			ev.types[Type(sec[len(typePrefix):])] += p.weight
		case strings.HasPrefix(sec, causePrefix):
			ev.causes[sec[len(causePrefix):]] += p.weight
		case sec == secPositive:
			if words.negated(toks, h.start) {
				ev.negative += p.weight
			} else {
				praise = append(praise, h)
			}
		case sec == secCourtesy:
			courtesy = append(courtesy, h)
		case sec == secRequest:
			ev.requests++
		case sec == secNegative:
			if !words.negated(toks, h.start) {
				ev.negative += p.weight
			}
		case sec == secAnger:
			ev.anger++
		case sec == secUrgent:
			if !words.negated(toks, h.start) {
				ev.urgent++
			}
		}
	})
	lead, tail := courtesyEdges(toks, courtesy)
	for _, h := range praise {
		if h.start >= lead && h.start < tail {
			ev.positive += h.phrase.weight
		}
	}
	return ev
}

// courtesyEdges returns the tokens [lead, tail) left between an opening
// greeting and a closing sign-off: whole clauses of courtesy formulas and at
// most a name ("Hi Anna,", "Many thanks, have a nice day. Priya").
// courtesy are the courtesy hits of toks, in text order.
func courtesyEdges(toks []token, courtesy []hit) (lead, tail int) {
	lead, tail = 0, len(toks)
	if len(courtesy) == 0 {
		return lead, tail
	}
	// clause returns the token range of the clause holding token i.
	clause := func(i int) (int, int) {
		s, e := i, i+1
		for s > 0 && toks[s-1].clause == toks[i].clause {
			s--
		}
		for e < len(toks) && toks[e].clause == toks[i].clause {
			e++
		}
		return s, e
	}
	// polite reports whether toks[s:e] is courtesy plus at most a name.
	polite := func(s, e int) bool {
		covered, reach := 0, s
		for _, h := range courtesy {
			if h.start < s || h.end > e {
				continue
			}
			covered += max(0, h.end-max(h.start, reach))
			reach = max(reach, h.end)
		}
		return covered > 0 && e-s-covered <= maxNameWords
	}
	for range maxCourtesyClauses {
		if lead >= len(toks) {
			break
		}
		s, e := clause(lead)
		if !polite(s, e) {
			break
		}
		lead = e
	}
	for range maxCourtesyClauses {
		if tail <= lead {
			break
		}
		s, e := clause(tail - 1)
		if polite(s, e) {
			tail = s
			continue
		}
		// A bare name signs off after a sign-off clause: "Regards, Dan".
		if e-s > maxNameWords || s <= lead {
			break
		}
		ps, pe := clause(s - 1)
		if !polite(ps, pe) {
			break
		}
		tail = ps
	}
	return lead, tail
}

// asksQuestion reports a question mark anywhere in text.
func asksQuestion(text string) bool {
	return strings.ContainsAny(text, "?¿")
}

// languageTokens returns the tokens of toks that lie in the language
// sample. Token texts are normalised, so the cut is by their length, which
// only approximates the sample's bytes; detection needs no more.
func languageTokens(toks []token) []token {
	n := 0
	for i, t := range toks {
		if n += len(t.text) + 1; n > languageSampleBytes {
			return toks[:i]
		}
	}
	return toks
}

// bestType returns the type with the highest score and that score,
// earlier in Types on a tie, or TypeOther and 0 when nothing scored.
func bestType(scores map[Type]int) (Type, int) {
	best, bestScore := TypeOther, 0
	for _, t := range Types {
		if s := scores[t]; s > bestScore {
			best, bestScore = t, s
		}
	}
	return best, bestScore
}

// bestCause returns the configured root cause with the most evidence,
// earlier in the taxonomy on a tie, or "" when none is evident.
func (k *KeywordClassifier) bestCause(scores map[string]int) string {
	best, bestScore := "", 0
	for _, c := range k.causes {
		if s := scores[c]; s > bestScore {
			best, bestScore = c, s
		}
	}
	return best
}

// sentimentScore maps positive and negative evidence into [-1, 1], damped
// so that a single "thanks" does not make a customer satisfied.
func sentimentScore(pos, neg int) float64 {
	s := float64(pos-neg) / float64(pos+neg+2)
	return math.Round(s*100) / 100
}

// financialRisk grades amount against the configured thresholds (major
// units, compared by face value whatever the currency).
func (k *KeywordClassifier) financialRisk(amount Money) Level {
	major := float64(amount.Minor) / 100
	th := k.cfg.Thresholds
	switch {
	case th.FinancialHigh > 0 && major >= th.FinancialHigh:
		return LevelHigh
	case th.FinancialMed > 0 && major >= th.FinancialMed:
		return LevelMedium
	}
	return LevelLow
}

// shouting reports ALL CAPS writing or a burst of exclamation marks.
func shouting(text string) bool {
	letters, upper, capsRun, shouted, bangs, bangRun := 0, 0, 0, 0, 0, 0
	wordLower := false
	endWord := func() {
		if capsRun >= 4 && !wordLower {
			shouted++
		}
		capsRun, wordLower = 0, false
	}
	for _, r := range text {
		switch {
		case unicode.IsUpper(r):
			letters++
			upper++
			capsRun++
		case unicode.IsLetter(r):
			letters++
			wordLower = true
		default:
			endWord()
		}
		if r == '!' {
			bangs++
			bangRun++
			if bangRun >= exclamationsInRow {
				return true
			}
		} else {
			bangRun = 0
		}
	}
	endWord()
	if bangs >= exclamations || shouted >= capsWords {
		return true
	}
	return letters >= capsMinLetters && float64(upper) >= capsShare*float64(letters)
}

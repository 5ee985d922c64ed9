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
)

// Classify reads req.Text; the customer and history are the escalation
// rules' business, not the classifier's. It never fails on content and
// returns an error only when ctx is already done.
func (k *KeywordClassifier) Classify(ctx context.Context, req ClassifyRequest) (Classification, error) {
	if err := ctx.Err(); err != nil {
		return Classification{}, fmt.Errorf("keyword classify: %w", err)
	}
	toks := tokenize(req.Text)
	ev := k.scan(toks)
	c := Classification{
		Type:           bestType(ev.types),
		Language:       detectLanguage(languageSample(req.Text), languageTokens(toks)),
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

	// A message that is about nothing in particular but clearly pleased or
	// upset is feedback on the shop ("the service was excellent!").
	if c.Type == TypeOther && c.Sentiment != SentimentNeutral {
		c.Type = TypeFeedback
	}

	if amount, ok := ExtractAmount(req.Text, k.cfg.Thresholds.Currency); ok {
		c.Amount = amount
		c.FinancialRisk = k.financialRisk(amount)
	}

	hits := k.rules.textHits(toks)
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

// scan gathers the evidence of toks. Negated sentiment flips ("not happy"
// is negative, "not bad" counts for nothing).
func (k *KeywordClassifier) scan(toks []token) evidence {
	ev := evidence{types: map[Type]int{}, causes: map[string]int{}}
	words := k.rules.words
	k.m.scan(toks, k.m.corrections(toks), func(h hit) {
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
				ev.positive += p.weight
			}
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
	return ev
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

// bestType returns the type with the highest score, earlier in Types on a
// tie, or TypeOther when nothing scored.
func bestType(scores map[Type]int) Type {
	best, bestScore := TypeOther, 0
	for _, t := range Types {
		if s := scores[t]; s > bestScore {
			best, bestScore = t, s
		}
	}
	return best
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

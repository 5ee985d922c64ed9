// Package triage is casebot's domain: tickets and their lifecycle, the
// classification of a customer message, the escalation rules that code (never
// the model) enforces, routing, the built-in keyword classifier and the
// service metrics. It imports only the standard library; every technology
// (Slack, Ollama, bbolt, HTTP sources) lives in an adapter package that
// depends on this one.
package triage

import (
	"errors"
	"fmt"
	"slices"
)

// Sentinel errors that callers branch on.
var (
	// ErrNotFound is returned when a ticket, customer or record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate is returned when an inbound message was already stored;
	// Tickets.Create returns it wrapped, together with the existing ticket.
	ErrDuplicate = errors.New("duplicate inbound message")
	// ErrInvalidTransition is returned when a state change is not allowed from
	// the ticket's current state.
	ErrInvalidTransition = errors.New("invalid state transition")
	// ErrInvalidClassification is returned when a classification has a value
	// outside its enumeration.
	ErrInvalidClassification = errors.New("invalid classification")
)

// Type is what a customer issue is about.
type Type string

// The issue types of SPEC section 3.1.
const (
	TypeRefund         Type = "refund"
	TypeDelivery       Type = "delivery"
	TypeProductDefect  Type = "product_defect"
	TypeBilling        Type = "billing"
	TypeOrderChange    Type = "order_change"
	TypeAccount        Type = "account"
	TypePolicyQuestion Type = "policy_question"
	TypeFeedback       Type = "feedback"
	TypeOther          Type = "other"
)

// Types lists every issue type in a stable order.
var Types = []Type{TypeRefund, TypeDelivery, TypeProductDefect, TypeBilling, TypeOrderChange,
	TypeAccount, TypePolicyQuestion, TypeFeedback, TypeOther}

// Valid reports whether t is one of Types.
func (t Type) Valid() bool { return slices.Contains(Types, t) }

// Sentiment is the customer's mood as the classifier reads it.
type Sentiment string

// The sentiments of SPEC section 3.1.
const (
	SentimentFrustrated Sentiment = "frustrated"
	SentimentNeutral    Sentiment = "neutral"
	SentimentSatisfied  Sentiment = "satisfied"
)

// Sentiments lists every sentiment.
var Sentiments = []Sentiment{SentimentFrustrated, SentimentNeutral, SentimentSatisfied}

// Valid reports whether s is one of Sentiments.
func (s Sentiment) Valid() bool { return slices.Contains(Sentiments, s) }

// Level grades urgency and financial risk.
type Level string

// The levels of SPEC section 3.1, lowest first.
const (
	LevelLow    Level = "low"
	LevelMedium Level = "medium"
	LevelHigh   Level = "high"
)

// Levels lists every level, lowest first.
var Levels = []Level{LevelLow, LevelMedium, LevelHigh}

// Valid reports whether l is one of Levels.
func (l Level) Valid() bool { return slices.Contains(Levels, l) }

// Rank orders levels: low 0, medium 1, high 2, anything else -1.
func (l Level) Rank() int { return slices.Index(Levels, l) }

// Max returns the higher of two levels; an invalid level loses to a valid one.
func (l Level) Max(o Level) Level {
	if o.Rank() > l.Rank() {
		return o
	}
	return l
}

// Flag marks a ticket as needing particular human attention.
type Flag string

// The flags of SPEC section 3.1.
const (
	FlagLegal           Flag = "legal"
	FlagSafety          Flag = "safety"
	FlagReputation      Flag = "reputation"
	FlagVIP             Flag = "vip"
	FlagRepeat          Flag = "repeat"
	FlagHighEmotion     Flag = "high_emotion"
	FlagPolicyException Flag = "policy_exception"
)

// Flags lists every flag in display order (most serious first).
var Flags = []Flag{FlagLegal, FlagSafety, FlagReputation, FlagVIP, FlagRepeat, FlagHighEmotion, FlagPolicyException}

// Valid reports whether f is one of Flags.
func (f Flag) Valid() bool { return slices.Contains(Flags, f) }

// Money is an amount in minor units (cents) of a currency, so sums are exact.
type Money struct {
	Minor    int64  `json:"minor"`
	Currency string `json:"currency"`
}

// IsZero reports whether m holds no amount.
func (m Money) IsZero() bool { return m.Minor == 0 }

// String formats m as "USD 12.50".
func (m Money) String() string {
	sign := ""
	v := m.Minor
	if v < 0 {
		sign, v = "-", -v
	}
	cur := m.Currency
	if cur == "" {
		cur = "?"
	}
	return fmt.Sprintf("%s %s%d.%02d", cur, sign, v/100, v%100)
}

// Classification is the reading of one ticket (SPEC section 3.1).
type Classification struct {
	Type           Type      `json:"type"`
	Sentiment      Sentiment `json:"sentiment"`
	SentimentScore float64   `json:"sentiment_score"`
	Urgency        Level     `json:"urgency"`
	FinancialRisk  Level     `json:"financial_risk"`
	Amount         Money     `json:"amount"`
	Flags          []Flag    `json:"flags"`
	RootCauseGuess string    `json:"root_cause_guess"`
	Language       string    `json:"language"`
}

// Validate reports every enum or range violation in c, joined into one error
// wrapping ErrInvalidClassification.
func (c Classification) Validate() error {
	var errs []error
	if !c.Type.Valid() {
		errs = append(errs, fmt.Errorf("type %q", c.Type))
	}
	if !c.Sentiment.Valid() {
		errs = append(errs, fmt.Errorf("sentiment %q", c.Sentiment))
	}
	if c.SentimentScore < -1 || c.SentimentScore > 1 || c.SentimentScore != c.SentimentScore {
		errs = append(errs, fmt.Errorf("sentiment_score %v outside [-1, 1]", c.SentimentScore))
	}
	if !c.Urgency.Valid() {
		errs = append(errs, fmt.Errorf("urgency %q", c.Urgency))
	}
	if !c.FinancialRisk.Valid() {
		errs = append(errs, fmt.Errorf("financial_risk %q", c.FinancialRisk))
	}
	if c.Amount.Minor < 0 {
		errs = append(errs, fmt.Errorf("amount %d is negative", c.Amount.Minor))
	}
	for _, f := range c.Flags {
		if !f.Valid() {
			errs = append(errs, fmt.Errorf("flag %q", f))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidClassification, errors.Join(errs...))
}

// HasFlag reports whether c carries f.
func (c Classification) HasFlag(f Flag) bool { return slices.Contains(c.Flags, f) }

// AddFlags adds flags not yet present and keeps Flags in display order.
func (c *Classification) AddFlags(fs ...Flag) {
	for _, f := range fs {
		if !c.HasFlag(f) {
			c.Flags = append(c.Flags, f)
		}
	}
	slices.SortStableFunc(c.Flags, func(a, b Flag) int {
		return slices.Index(Flags, a) - slices.Index(Flags, b)
	})
}

// Source is where an inbound message came from.
type Source string

// The intake sources of SPEC section 2.
const (
	SourceSlack   Source = "slack"
	SourceEmail   Source = "email"
	SourceWebhook Source = "webhook"
	SourceManual  Source = "manual"
	SourceImport  Source = "import"
)

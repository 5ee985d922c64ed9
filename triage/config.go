package triage

import (
	"time"
)

// Config is the domain's part of casebot.yml: thresholds, owners, VIPs, the
// root-cause taxonomy and the routing tree. Loading and validating the file is
// cmd/casebot's job; this package only interprets the values.
type Config struct {
	Timezone   string              `yaml:"timezone" json:"timezone"`
	Languages  []string            `yaml:"languages" json:"languages"`
	Thresholds Thresholds          `yaml:"thresholds" json:"thresholds"`
	Owners     map[string][]string `yaml:"owners" json:"owners"`
	// Approvers may approve tickets that need approval authority (amount
	// above threshold, legal, safety).
	Approvers  []string    `yaml:"approvers" json:"approvers"`
	VIP        VIPConfig   `yaml:"vip" json:"vip"`
	RootCauses []string    `yaml:"root_causes" json:"root_causes"`
	Triggers   TriggerConf `yaml:"triggers" json:"triggers"`
	Routes     []RouteConf `yaml:"routes" json:"routes"`
	// EscalationChannel is where an agent's escalation mentions the owner;
	// cmd/casebot fills it from the slack section of the config.
	EscalationChannel string `yaml:"-" json:"escalation_channel"`
}

// Thresholds are the money figures the rules compare against, in major units
// of Currency.
type Thresholds struct {
	RefundApproval float64 `yaml:"refund_approval" json:"refund_approval"`
	FinancialHigh  float64 `yaml:"financial_high" json:"financial_high"`
	FinancialMed   float64 `yaml:"financial_medium" json:"financial_medium"`
	Currency       string  `yaml:"currency" json:"currency"`
	// RepeatDays is the window of the repeat-complaint rule.
	RepeatDays int `yaml:"repeat_days" json:"repeat_days"`
}

// VIPConfig says who is a VIP.
type VIPConfig struct {
	Emails        []string `yaml:"emails" json:"emails"`
	Domains       []string `yaml:"domains" json:"domains"`
	Tags          []string `yaml:"tags" json:"tags"`
	LifetimeSpend float64  `yaml:"lifetime_spend" json:"lifetime_spend"`
}

// TriggerConf names, per rule, the owner key to mention and whether a hit
// escalates the ticket on arrival. Keys are flag names plus "refund".
type TriggerConf map[string]TriggerAction

// TriggerAction is what one rule does besides setting its flag.
type TriggerAction struct {
	Owner    string `yaml:"owner" json:"owner"`
	Escalate bool   `yaml:"escalate" json:"escalate"`
}

// RouteConf is one node of the routing tree: a matcher, where matching
// tickets go, and optional child routes tried first.
type RouteConf struct {
	Match    Match       `yaml:"match" json:"match"`
	Channel  string      `yaml:"channel" json:"channel"`
	Mention  []string    `yaml:"mention" json:"mention"`
	Escalate bool        `yaml:"escalate" json:"escalate"`
	Routes   []RouteConf `yaml:"routes" json:"routes"`
}

// Match selects tickets. Within a field any listed value matches; all fields
// given must match. An empty Match matches every ticket.
type Match struct {
	Flags         []Flag      `yaml:"flags" json:"flags"`
	Types         []Type      `yaml:"types" json:"types"`
	Urgency       []Level     `yaml:"urgency" json:"urgency"`
	FinancialRisk []Level     `yaml:"financial_risk" json:"financial_risk"`
	Sentiment     []Sentiment `yaml:"sentiment" json:"sentiment"`
	Sources       []Source    `yaml:"sources" json:"sources"`
}

// DefaultConfig returns the embedded defaults used when no casebot.yml exists:
// the demo's channels and owners.
func DefaultConfig() Config {
	return Config{
		Timezone:  "UTC",
		Languages: []string{"en", "es", "fr", "de"},
		Thresholds: Thresholds{
			RefundApproval: 100, FinancialHigh: 250, FinancialMed: 50,
			Currency: "USD", RepeatDays: 30,
		},
		Owners: map[string][]string{
			"legal":      {"U0LEGAL01"},
			"safety":     {"U0SAFETY1"},
			"reputation": {"U0BRAND01"},
			"refunds":    {"S0REFUNDS"},
			"vip":        {"U0VIPDESK"},
			"support":    {"U0LEAD001"},
		},
		Approvers:         []string{"U0LEAD001", "U0LEGAL01"},
		EscalationChannel: "C0ESCALATE",
		VIP:               VIPConfig{Domains: []string{"vip.example.com"}, Tags: []string{"vip"}, LifetimeSpend: 5000},
		RootCauses:        DefaultRootCauses,
		Triggers: TriggerConf{
			"legal":      {Owner: "legal", Escalate: true},
			"safety":     {Owner: "safety", Escalate: true},
			"reputation": {Owner: "reputation"},
			"vip":        {Owner: "vip"},
			"repeat":     {Owner: "support"},
			"refund":     {Owner: "refunds"},
		},
		Routes: []RouteConf{
			{Match: Match{Flags: []Flag{FlagLegal, FlagSafety}}, Channel: "C0ESCALATE", Mention: []string{"legal"}, Escalate: true},
			{Match: Match{Flags: []Flag{FlagReputation, FlagVIP}}, Channel: "C0PRIORITY"},
			{Match: Match{Urgency: []Level{LevelHigh}}, Channel: "C0URGENT"},
			{Channel: "C0QUEUE"},
		},
	}
}

// DefaultRootCauses is the built-in root-cause taxonomy.
var DefaultRootCauses = []string{
	"carrier_delay", "warehouse_error", "wrong_item", "damaged_in_transit", "product_quality",
	"sizing", "payment_failure", "double_charge", "website_bug", "stock_out",
	"policy_unclear", "account_access", "customer_error", "other",
}

// Location returns the configured time zone, or UTC when it is empty or
// unknown (validation reports an unknown one before this is used).
func (c Config) Location() *time.Location {
	if c.Timezone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

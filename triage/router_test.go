package triage

import (
	"slices"
	"testing"
)

func TestRouterFirstMatchWins(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Routes = []RouteConf{
		{Match: Match{Flags: []Flag{FlagLegal, FlagSafety}}, Channel: "C-ESC", Mention: []string{"legal"}, Escalate: true},
		{Match: Match{Urgency: []Level{LevelHigh}}, Channel: "C-URGENT", Routes: []RouteConf{
			{Match: Match{Types: []Type{TypeDelivery}}, Channel: "C-URGENT-DELIVERY"},
		}},
		{Match: Match{Sources: []Source{SourceEmail}, Sentiment: []Sentiment{SentimentFrustrated}}, Channel: "C-MAIL-ANGRY"},
		{Channel: "C-QUEUE"},
	}
	r, err := NewRouter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := Classification{Type: TypeRefund, Sentiment: SentimentNeutral, Urgency: LevelLow, FinancialRisk: LevelLow}
	with := func(f func(*Classification)) Classification { c := base; f(&c); return c }
	tests := []struct {
		name     string
		c        Classification
		src      Source
		triggers []Trigger
		channel  string
		mentions []string
		escalate bool
	}{
		{"default", base, SourceWebhook, nil, "C-QUEUE", nil, false},
		{"legal beats urgency", with(func(c *Classification) { c.Flags = []Flag{FlagLegal}; c.Urgency = LevelHigh }),
			SourceWebhook, nil, "C-ESC", []string{"U0LEGAL01"}, true},
		{"safety alone", with(func(c *Classification) { c.Flags = []Flag{FlagSafety} }), SourceSlack, nil, "C-ESC", []string{"U0LEGAL01"}, true},
		{"child route first", with(func(c *Classification) { c.Urgency = LevelHigh; c.Type = TypeDelivery }),
			SourceWebhook, nil, "C-URGENT-DELIVERY", nil, false},
		{"parent when no child matches", with(func(c *Classification) { c.Urgency = LevelHigh }), SourceWebhook, nil, "C-URGENT", nil, false},
		{"all fields must match", with(func(c *Classification) { c.Sentiment = SentimentFrustrated }), SourceSlack, nil, "C-QUEUE", nil, false},
		{"both fields match", with(func(c *Classification) { c.Sentiment = SentimentFrustrated }), SourceEmail, nil, "C-MAIL-ANGRY", nil, false},
		{"trigger owners added once, trigger escalates",
			with(func(c *Classification) { c.Flags = []Flag{FlagLegal} }), SourceEmail,
			[]Trigger{{Rule: "legal", Owner: "legal"}, {Rule: "refund", Owner: "refunds", Escalate: true}},
			"C-ESC", []string{"U0LEGAL01", "S0REFUNDS"}, true},
		{"unknown owner key mentions nobody", base, SourceEmail, []Trigger{{Rule: "vip", Owner: "nobody", Escalate: true}}, "C-QUEUE", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Route(tt.c, tt.src, tt.triggers)
			if got.Channel != tt.channel || !slices.Equal(got.Mentions, tt.mentions) || got.Escalate != tt.escalate {
				t.Errorf("Route = %+v, want channel %s mentions %v escalate %v", got, tt.channel, tt.mentions, tt.escalate)
			}
		})
	}
}

func TestNewRouterRejects(t *testing.T) {
	tests := []struct {
		name   string
		routes []RouteConf
	}{
		{"no routes", nil},
		{"no catch-all", []RouteConf{{Match: Match{Urgency: []Level{LevelHigh}}, Channel: "C1"}}},
		{"route without channel", []RouteConf{{Match: Match{Urgency: []Level{LevelHigh}}}, {Channel: "C1"}}},
		{"child without channel", []RouteConf{{Channel: "C1", Routes: []RouteConf{{Match: Match{Types: []Type{TypeRefund}}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Routes = tt.routes
			if _, err := NewRouter(cfg); err == nil {
				t.Fatal("NewRouter accepted an invalid tree")
			}
		})
	}
}

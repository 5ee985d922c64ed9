package triage

import (
	"fmt"
	"slices"
	"strings"
)

// Router is the routing tree compiled from config: routes are tried top to
// bottom, a matching route's children before the route itself, and the first
// match wins (as in Alertmanager).
type Router struct {
	root   []*routeNode
	owners map[string][]string
}

type routeNode struct {
	name     string
	match    Match
	channel  string
	mention  []string
	escalate bool
	children []*routeNode
}

// NewRouter compiles cfg.Routes. It fails when no route matches every ticket
// (the last top-level route must be a catch-all) or a route has no channel;
// config validation reports these with line numbers first, so this is the
// last guard for configs built in code.
func NewRouter(cfg Config) (*Router, error) {
	if len(cfg.Routes) == 0 {
		return nil, fmt.Errorf("routing: no routes")
	}
	root, err := compileRoutes(cfg.Routes, "routes")
	if err != nil {
		return nil, err
	}
	if last := cfg.Routes[len(cfg.Routes)-1]; !last.Match.empty() {
		return nil, fmt.Errorf("routing: the last route must match every ticket")
	}
	return &Router{root: root, owners: cfg.Owners}, nil
}

func compileRoutes(rs []RouteConf, path string) ([]*routeNode, error) {
	nodes := make([]*routeNode, 0, len(rs))
	for i, r := range rs {
		name := fmt.Sprintf("%s[%d]", path, i)
		if strings.TrimSpace(r.Channel) == "" {
			return nil, fmt.Errorf("routing: %s has no channel", name)
		}
		children, err := compileRoutes(r.Routes, name+".routes")
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, &routeNode{name: name, match: r.Match, channel: r.Channel,
			mention: r.Mention, escalate: r.Escalate, children: children})
	}
	return nodes, nil
}

func (m Match) empty() bool {
	return len(m.Flags) == 0 && len(m.Types) == 0 && len(m.Urgency) == 0 &&
		len(m.FinancialRisk) == 0 && len(m.Sentiment) == 0 && len(m.Sources) == 0
}

// Matches reports whether a ticket with classification c from source src
// satisfies m.
func (m Match) Matches(c Classification, src Source) bool {
	if len(m.Flags) > 0 && !slices.ContainsFunc(m.Flags, c.HasFlag) {
		return false
	}
	return anyOf(m.Types, c.Type) && anyOf(m.Urgency, c.Urgency) &&
		anyOf(m.FinancialRisk, c.FinancialRisk) && anyOf(m.Sentiment, c.Sentiment) &&
		anyOf(m.Sources, src)
}

func anyOf[T comparable](set []T, v T) bool { return len(set) == 0 || slices.Contains(set, v) }

// Route picks the channel for a ticket and collects who to mention: the
// route's owner keys and the triggers' owners, resolved to Slack IDs through
// config owners, without duplicates. A trigger that escalates escalates the
// route.
func (r *Router) Route(c Classification, src Source, triggers []Trigger) Route {
	n := find(r.root, c, src)
	out := Route{Channel: n.channel, Name: n.name, Escalate: n.escalate}
	keys := slices.Clone(n.mention)
	for _, t := range triggers {
		if t.Owner != "" {
			keys = append(keys, t.Owner)
		}
		out.Escalate = out.Escalate || t.Escalate
	}
	for _, k := range keys {
		for _, id := range r.owners[k] {
			if !slices.Contains(out.Mentions, id) {
				out.Mentions = append(out.Mentions, id)
			}
		}
	}
	return out
}

// find returns the deepest first match; the catch-all guarantees one.
func find(nodes []*routeNode, c Classification, src Source) *routeNode {
	for _, n := range nodes {
		if !n.match.Matches(c, src) {
			continue
		}
		if child := find(n.children, c, src); child != nil {
			return child
		}
		return n
	}
	return nil
}

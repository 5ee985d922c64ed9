package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/casebot/casebot/triage"
)

// maxTriageInput bounds what `casebot triage` reads: far above any real
// customer message, low enough that a mistaken pipe cannot exhaust memory.
const maxTriageInput = 1 << 20

// triageResult is the --json output of `casebot triage`.
type triageResult struct {
	Classification triage.Classification `json:"classification"`
	Source         string                `json:"source"`
	Reason         string                `json:"reason,omitempty"`
	Triggers       []triage.Trigger      `json:"triggers"`
	Route          triage.Route          `json:"route"`
	Note           string                `json:"note,omitempty"`
}

func cmdTriage(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var c commonFlags
	fs := newFlagSet("triage", stderr, &c)
	asJSON := fs.Bool("json", false, "print JSON for machines")
	classifier := fs.String("classifier", "", "keyword or ollama (default: as configured)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkClassifier(*classifier); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, c)
	if err != nil {
		return err
	}
	text, note, err := readMessage(stdin)
	if err != nil {
		return err
	}
	tr, cleanup, err := newAssessor(ctx, cfg, *classifier, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	a := tr.Assess(ctx, triage.ClassifyRequest{Text: text, Channel: "chat"}, triage.Money{})
	res := triageResult{Classification: a.Classification, Source: a.By, Reason: a.Reason,
		Triggers: a.Triggers, Route: tr.Router.Route(a.Classification, triage.SourceManual, a.Triggers), Note: note}
	if res.Triggers == nil {
		res.Triggers = []triage.Trigger{}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return printTriage(stdout, res)
}

// readMessage reads one message from r: not empty, at most maxTriageInput
// bytes, invalid UTF-8 replaced (and said so) rather than refused.
func readMessage(r io.Reader) (text, note string, err error) {
	data, err := io.ReadAll(io.LimitReader(r, maxTriageInput+1))
	if err != nil {
		return "", "", fmt.Errorf("read stdin: %w", err)
	}
	if len(data) > maxTriageInput {
		return "", "", fmt.Errorf("input is larger than %d bytes; casebot triage reads one customer message", maxTriageInput)
	}
	text = string(data)
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
		note = "input was not valid UTF-8; invalid bytes were replaced with U+FFFD"
	}
	if strings.TrimSpace(text) == "" {
		return "", "", errors.New("no text on stdin: pipe a customer message in, e.g. echo 'where is my order?' | casebot triage")
	}
	return text, note, nil
}

func printTriage(w io.Writer, r triageResult) error {
	c := r.Classification
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "type:\t%s\n", c.Type)
	fmt.Fprintf(tw, "sentiment:\t%s (%+.2f)\n", c.Sentiment, c.SentimentScore)
	fmt.Fprintf(tw, "urgency:\t%s\n", c.Urgency)
	risk := string(c.FinancialRisk)
	if !c.Amount.IsZero() {
		risk += " (" + c.Amount.String() + ")"
	}
	fmt.Fprintf(tw, "financial risk:\t%s\n", risk)
	fmt.Fprintf(tw, "flags:\t%s\n", joinOr(c.Flags, "none"))
	fmt.Fprintf(tw, "language:\t%s\n", c.Language)
	fmt.Fprintf(tw, "root cause guess:\t%s\n", orDash(c.RootCauseGuess))
	by := r.Source
	if r.Reason != "" {
		by += " (" + r.Reason + ")"
	}
	fmt.Fprintf(tw, "classified by:\t%s\n", by)
	route := r.Route.Channel
	if len(r.Route.Mentions) > 0 {
		route += ", mention " + strings.Join(r.Route.Mentions, " ")
	}
	if r.Route.Escalate {
		route += ", escalated"
	}
	fmt.Fprintf(tw, "route:\t%s\n", route)
	for _, t := range r.Triggers {
		fmt.Fprintf(tw, "rule %s:\t%s\n", t.Rule, t.Reason)
	}
	if r.Note != "" {
		fmt.Fprintf(tw, "note:\t%s\n", r.Note)
	}
	return tw.Flush()
}

func joinOr[T ~string](vs []T, empty string) string {
	if len(vs) == 0 {
		return empty
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

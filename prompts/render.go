package prompts

import (
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/casebot/casebot/triage"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// Each prompt file defines a "system" and a "user" template.
var (
	classifyTmpl = mustTemplate("templates/classify.tmpl")
	draftTmpl    = mustTemplate("templates/draft.tmpl")
)

func mustTemplate(name string) *template.Template {
	return template.Must(template.New(name).
		Funcs(template.FuncMap{"join": strings.Join}).
		ParseFS(templateFS, name))
}

// The fence around customer text. Customer text never contains fenceLabel
// (sanitize removes it), so it can neither open nor close a fence.
const (
	fenceLabel = "CUSTOMER_MESSAGE"
	fenceOpen  = "<<<" + fenceLabel
	fenceClose = fenceLabel + ">>>"
)

// Limits on text in prompts. The classification limit keeps the whole
// classification prompt under 1,500 tokens (bytes/4) whatever the customer
// writes; the draft limits keep the draft prompt and its answer
// (draftPredict tokens) within the default NumCtx of 4096.
const (
	maxClassifyText = 3000
	maxDraftText    = 6000
	maxPolicy       = 3000
	historyShown    = 3
	classifyPredict = 256
	draftPredict    = 1024
)

// sanitize makes untrusted text safe to place inside the fence: it drops
// control and invisible format characters (which could hide a label from a
// reader but not from the model), turns invalid UTF-8 into U+FFFD, removes
// every case-insensitive occurrence of fenceLabel (also those that a removal
// would create by joining the text around it), and truncates to limit bytes.
func sanitize(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	// The label is ASCII, and ASCII bytes never occur inside a multi-byte
	// UTF-8 sequence, so removing a matching suffix never splits a rune.
	// Checking only the suffix after each byte keeps the output label-free.
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, s[i])
		if n := len(b) - len(fenceLabel); n >= 0 && strings.EqualFold(string(b[n:]), fenceLabel) {
			b = b[:n]
		}
	}
	out := strings.TrimSpace(string(b))
	if len(out) <= limit {
		return out
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + "\n[truncated]"
}

// token keeps a short identifier-like value (channel, ticket ID) that may
// come from outside but is shown outside the fence: ASCII letters, digits,
// '-', '_' and '.', at most 40 of them.
func token(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() == 40 {
			break
		}
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// historySummary describes earlier tickets from their structured fields only;
// their text is customer text and stays out of the prompt.
func historySummary(h []triage.Ticket) string {
	if len(h) == 0 {
		return "none"
	}
	parts := make([]string, 0, historyShown)
	for _, t := range h[:min(len(h), historyShown)] {
		p := fmt.Sprintf("%s %s (%s", t.ReceivedAt.UTC().Format(time.DateOnly), orNone(string(t.Classification.Type)), t.State)
		if t.RootCause != "" {
			p += ", root cause " + token(t.RootCause)
		}
		parts = append(parts, p+")")
	}
	return fmt.Sprintf("%d; latest: %s", len(h), strings.Join(parts, "; "))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return token(s)
}

// prompt is the rendered pair of messages of one call.
type prompt struct {
	System string
	User   string
}

// size returns the prompt's size in bytes and a token estimate (bytes/4).
func (p prompt) size() (bytes, tokens int) {
	n := len(p.System) + len(p.User)
	return n, n / 4
}

func render(t *template.Template, name string, data any) (string, error) {
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("render %s %s: %w", t.Name(), name, err)
	}
	return b.String(), nil
}

// classifySystem renders the classification system prompt, which depends
// only on the options and is rendered once.
func classifySystem(o Options) (string, error) {
	return render(classifyTmpl, "system", struct{ RootCauses, Languages []string }{o.RootCauses, o.Languages})
}

func classifyUser(req triage.ClassifyRequest) (string, error) {
	return render(classifyTmpl, "user", struct{ Channel, History, Text string }{
		Channel: token(req.Channel),
		History: historySummary(req.History),
		Text:    sanitize(req.Text, maxClassifyText),
	})
}

// draftPrompt renders both messages of the brief-and-draft call.
func draftPrompt(req triage.DraftRequest) (prompt, error) {
	t := req.Ticket
	c := t.Classification
	lang := "the language of the customer's message"
	if tag, ok := canonicalLanguage(c.Language); ok {
		lang = "the customer's language (BCP-47 " + tag + ")"
	}
	policy := sanitize(req.Policy, maxPolicy)
	if policy == "" {
		policy = "(no policy excerpt configured: promise nothing specific)"
	}
	sys, err := render(draftTmpl, "system", struct{ Language, Policy string }{lang, policy})
	if err != nil {
		return prompt{}, err
	}
	flags := "none"
	if len(c.Flags) > 0 {
		names := make([]string, len(c.Flags))
		for i, f := range c.Flags {
			names[i] = token(string(f))
		}
		flags = strings.Join(names, ", ")
	}
	amount := "none"
	if !c.Amount.IsZero() {
		amount = triage.Money{Minor: c.Amount.Minor, Currency: token(c.Amount.Currency)}.String()
	}
	user, err := render(draftTmpl, "user", struct {
		ID, Channel, Received, Type, Urgency, Sentiment, FinancialRisk string
		Amount, Flags, RootCause, Customer, History, Text              string
	}{
		ID:            token(t.ID),
		Channel:       token(t.Channel),
		Received:      t.ReceivedAt.UTC().Format("2006-01-02 15:04 UTC"),
		Type:          orNone(string(c.Type)),
		Urgency:       orNone(string(c.Urgency)),
		Sentiment:     orNone(string(c.Sentiment)),
		FinancialRisk: orNone(string(c.FinancialRisk)),
		Amount:        amount,
		Flags:         flags,
		RootCause:     orNone(c.RootCauseGuess),
		Customer:      customerSummary(req.Customer),
		History:       historySummary(req.History),
		Text:          sanitize(ticketText(t), maxDraftText),
	})
	if err != nil {
		return prompt{}, err
	}
	return prompt{System: sys, User: user}, nil
}

// customerSummary uses only facts casebot holds about the customer, not the
// name, which the customer chose.
func customerSummary(c triage.Customer) string {
	parts := []string{"not VIP"}
	if c.VIP {
		parts[0] = "VIP"
	}
	if !c.Lifetime.IsZero() {
		parts = append(parts, "lifetime spend "+triage.Money{Minor: c.Lifetime.Minor, Currency: token(c.Lifetime.Currency)}.String())
	}
	if !c.FirstSeen.IsZero() {
		parts = append(parts, "customer since "+c.FirstSeen.UTC().Format(time.DateOnly))
	}
	return strings.Join(parts, ", ")
}

// ticketText is everything the customer wrote on the ticket.
func ticketText(t triage.Ticket) string {
	parts := make([]string, 0, 2+len(t.Entries))
	if t.Subject != "" {
		parts = append(parts, t.Subject)
	}
	parts = append(parts, t.Body)
	for _, e := range t.Entries {
		parts = append(parts, e.Body)
	}
	return strings.Join(parts, "\n\n")
}

// classifySchema is the JSON schema sent as `format` for classification; the
// root-cause enum comes from the configured taxonomy.
func classifySchema(rootCauses []string) (json.RawMessage, error) {
	str := func(values ...string) map[string]any {
		return map[string]any{"type": "string", "enum": values}
	}
	levels := make([]string, len(triage.Levels))
	for i, l := range triage.Levels {
		levels[i] = string(l)
	}
	types := make([]string, len(triage.Types))
	for i, t := range triage.Types {
		types[i] = string(t)
	}
	sentiments := make([]string, len(triage.Sentiments))
	for i, s := range triage.Sentiments {
		sentiments[i] = string(s)
	}
	flags := make([]string, len(triage.Flags))
	for i, f := range triage.Flags {
		flags[i] = string(f)
	}
	required := []string{"type", "sentiment", "sentiment_score", "urgency", "financial_risk", "amount", "flags", "root_cause_guess", "language"}
	schema := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"type":            str(types...),
			"sentiment":       str(sentiments...),
			"sentiment_score": map[string]any{"type": "number", "minimum": -1, "maximum": 1},
			"urgency":         str(levels...),
			"financial_risk":  str(levels...),
			"amount": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"minor":    map[string]any{"type": "integer", "minimum": 0},
					"currency": map[string]any{"type": "string"},
				},
				"required":             []string{"minor", "currency"},
				"additionalProperties": false,
			},
			"flags":            map[string]any{"type": "array", "items": str(flags...), "uniqueItems": true},
			"root_cause_guess": str(append([]string{""}, rootCauses...)...),
			"language":         map[string]any{"type": "string"},
		},
		"required":             required,
		"additionalProperties": false,
	}
	b, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("classification schema: %w", err)
	}
	return b, nil
}

// draftSchema is the JSON schema sent as `format` for the brief and draft.
var draftSchema = json.RawMessage(`{"type":"object","properties":{"brief":{"type":"string"},"reply":{"type":"string"}},"required":["brief","reply"],"additionalProperties":false}`)

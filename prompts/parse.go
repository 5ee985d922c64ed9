package prompts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/casebot/casebot/triage"
)

// decodeStrict decodes exactly one JSON object into v: no unknown fields, no
// prose around it, no second value. Leading and trailing white space is the
// only thing tolerated, because models often end with a newline.
func decodeStrict(content string, v any) error {
	trimmed := bytes.TrimSpace([]byte(content))
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("answer is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// parseClassification turns the model's answer into a classification that
// passes Validate, or returns an error wrapping ErrInvalidAnswer.
func parseClassification(content string, rootCauses []string) (triage.Classification, error) {
	var c triage.Classification
	if err := decodeStrict(content, &c); err != nil {
		return triage.Classification{}, fmt.Errorf("%w: %w", ErrInvalidAnswer, err)
	}
	var errs []error
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.RootCauseGuess != "" && !slices.Contains(rootCauses, c.RootCauseGuess) {
		errs = append(errs, fmt.Errorf("root_cause_guess %q is not in the taxonomy", c.RootCauseGuess))
	}
	tag, ok := canonicalLanguage(c.Language)
	if !ok {
		errs = append(errs, fmt.Errorf("language %q is not a BCP-47 tag", c.Language))
	}
	if cur := c.Amount.Currency; cur != "" && !isUpperCode(cur) {
		errs = append(errs, fmt.Errorf("currency %q is not an ISO 4217 code", cur))
	}
	if c.Amount.Minor > 0 && c.Amount.Currency == "" {
		errs = append(errs, fmt.Errorf("amount %d has no currency", c.Amount.Minor))
	}
	if len(errs) > 0 {
		return triage.Classification{}, fmt.Errorf("%w: %w", ErrInvalidAnswer, errors.Join(errs...))
	}
	c.Language = tag
	flags := c.Flags
	c.Flags = nil
	c.AddFlags(flags...) // drops duplicates and sorts into display order
	if c.Flags == nil {
		c.Flags = []triage.Flag{}
	}
	return c, nil
}

// parseDraft turns the model's answer into a draft with a non-empty brief and
// reply, or returns an error wrapping ErrInvalidAnswer.
func parseDraft(content string) (triage.Draft, error) {
	var d triage.Draft
	if err := decodeStrict(content, &d); err != nil {
		return triage.Draft{}, fmt.Errorf("%w: %w", ErrInvalidAnswer, err)
	}
	d.Brief, d.Reply = strings.TrimSpace(d.Brief), strings.TrimSpace(d.Reply)
	if d.Brief == "" || d.Reply == "" {
		return triage.Draft{}, fmt.Errorf("%w: brief and reply must both be non-empty", ErrInvalidAnswer)
	}
	return d, nil
}

// canonicalLanguage checks that tag is a plausible BCP-47 tag (a 2–3 letter
// primary language, then 1–8 character alphanumeric subtags) and returns it
// in conventional case: "EN-us" becomes "en-US". It does not consult the
// IANA registry; plausibility is all routing and drafting need.
func canonicalLanguage(tag string) (string, bool) {
	if tag == "" || len(tag) > 35 {
		return "", false
	}
	subtags := strings.Split(strings.ReplaceAll(tag, "_", "-"), "-")
	primary := subtags[0]
	if len(primary) < 2 || len(primary) > 3 || !isAlnum(primary, false) {
		return "", false
	}
	subtags[0] = strings.ToLower(primary)
	for i, s := range subtags[1:] {
		if len(s) < 1 || len(s) > 8 || !isAlnum(s, true) {
			return "", false
		}
		switch {
		case len(s) == 2 && isAlnum(s, false):
			subtags[i+1] = strings.ToUpper(s) // region
		case len(s) == 4 && isAlnum(s, false):
			subtags[i+1] = strings.ToUpper(s[:1]) + strings.ToLower(s[1:]) // script
		default:
			subtags[i+1] = strings.ToLower(s)
		}
	}
	return strings.Join(subtags, "-"), true
}

// isAlnum reports whether s is ASCII letters, and digits when digits is set.
func isAlnum(s string, digits bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && !(digits && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isUpperCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/casebot/casebot/triage"
)

// WebhookTicket is the JSON body of POST /v1/tickets, and one of the two
// line formats the importer reads.
type WebhookTicket struct {
	// ExternalID is the sender's ID of the message; a second delivery with
	// the same ID is the same ticket. Required, at most 256 bytes.
	ExternalID string `json:"external_id"`
	// Channel is one of chat, social, review, email, other; optional.
	Channel  string          `json:"channel,omitempty"`
	Customer WebhookCustomer `json:"customer"`
	Subject  string          `json:"subject,omitempty"`
	// Text is the customer's message. Required; "body" is accepted as an
	// alias, but not both.
	Text  string        `json:"text"`
	Order *WebhookOrder `json:"order,omitempty"`
	// Attachments are the names of attached files; casebot keeps no content.
	Attachments []string `json:"attachments,omitempty"`
	// ReplyURL is where the approved reply is POSTed back (http or https,
	// no credentials in the URL). Without it the reply is shown to copy.
	ReplyURL string `json:"reply_url,omitempty"`
	// ReceivedAt is when the customer wrote, RFC 3339, by the sender's
	// clock. The webhook keeps it as the ticket's SenderAt and indexes the
	// ticket by casebot's own receipt time (triage.ReceivedTime); it refuses
	// a time further ahead of its clock than the signature window. An
	// import keeps it as the ticket's received time: it is history.
	ReceivedAt *time.Time `json:"received_at,omitempty"`
}

// WebhookCustomer is who wrote. At least one of Email, Handle and ID is
// required: they are how casebot recognises the same customer again.
type WebhookCustomer struct {
	Email  string `json:"email,omitempty"`
	Handle string `json:"handle,omitempty"`
	Name   string `json:"name,omitempty"`
	// ID is the sender's own customer ID. Used as the customer's identity
	// (handle "id:<ID>") only when no handle is given.
	ID   string   `json:"id,omitempty"`
	VIP  bool     `json:"vip,omitempty"`
	Tags []string `json:"tags,omitempty"`
	// LifetimeSpend is what the customer has spent at the shop so far, in
	// major units of the order's currency (the configured one without an
	// order). The VIP rule reads the larger of it and the order amounts
	// casebot has seen.
	LifetimeSpend float64 `json:"lifetime_spend,omitempty"`
}

// WebhookOrder is the order the message is about, when known.
type WebhookOrder struct {
	Ref string `json:"ref,omitempty"`
	// Amount is in major units (12.5 is 12.50); it is rounded to cents.
	Amount float64 `json:"amount,omitempty"`
	// Currency is an ISO 4217 code; the configured currency when absent.
	Currency string `json:"currency,omitempty"`
}

// Error codes of a FieldError, also the "error" of a 400 response.
const (
	CodeInvalidJSON    = "invalid_json"
	CodeInvalidUTF8    = "invalid_utf8"
	CodeUnknownField   = "unknown_field"
	CodeDuplicateField = "duplicate_field"
	CodeMissingField   = "missing_field"
	CodeInvalidField   = "invalid_field"
)

// FieldError says what is wrong with a ticket and, when one field is at
// fault, which (a dotted path such as "customer.email").
type FieldError struct {
	Code   string
	Field  string
	Detail string
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Code + ": " + e.Detail
	}
	return e.Code + " " + e.Field + ": " + e.Detail
}

// Limits on identifiers, which end up in index keys and on cards.
const (
	maxExternalID = 256
	maxShort      = 1024 // subject, names, handles, refs, tags
	maxURL        = 2048
	maxAmount     = 1e12 // major units; keeps cents well inside int64 and float64 precision
)

// Channel values each source accepts. Evaluation files also name slack.
var (
	webhookChannels = []string{"chat", "social", "review", "email", "other"}
	importChannels  = []string{"chat", "social", "review", "email", "other", "slack"}
)

// line is one decoded ticket of either format.
type line struct {
	WebhookTicket
	// ID is the evaluation format's id.
	ID string
	// keys are the top-level members present, in order.
	keys []string
}

// decodeTicket strictly decodes one JSON object. With eval set, the
// evaluation format of SPEC section 9 is accepted too.
func decodeTicket(data []byte, eval bool) (line, error) {
	var l line
	if !utf8.Valid(data) {
		return l, &FieldError{Code: CodeInvalidUTF8, Detail: "the body is not valid UTF-8"}
	}
	r := jsonReader{dec: json.NewDecoder(bytes.NewReader(data))}
	var hasText, hasBody bool
	present, err := r.object("", func(key, path string) error {
		l.keys = append(l.keys, key)
		t := &l.WebhookTicket
		switch key {
		case "external_id":
			return r.value(path, "a string", &t.ExternalID)
		case "channel":
			return r.value(path, "a string", &t.Channel)
		case "subject":
			return r.value(path, "a string", &t.Subject)
		case "text":
			hasText = true
			return r.value(path, "a string", &t.Text)
		case "body":
			hasBody = true
			return r.value(path, "a string", &t.Text)
		case "attachments":
			return r.value(path, "an array of strings", &t.Attachments)
		case "reply_url":
			return r.value(path, "a string", &t.ReplyURL)
		case "received_at":
			var s string
			if err := r.value(path, "an RFC 3339 time string", &s); err != nil {
				return err
			}
			if s == "" {
				return nil
			}
			at, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return &FieldError{Code: CodeInvalidField, Field: path, Detail: "must be an RFC 3339 time such as 2025-03-03T09:00:00Z"}
			}
			t.ReceivedAt = &at
			return nil
		case "customer":
			_, err := r.object(path, func(key, path string) error {
				c := &t.Customer
				switch key {
				case "email":
					return r.value(path, "a string", &c.Email)
				case "handle":
					return r.value(path, "a string", &c.Handle)
				case "name":
					return r.value(path, "a string", &c.Name)
				case "id":
					return r.value(path, "a string", &c.ID)
				case "vip":
					return r.value(path, "a boolean", &c.VIP)
				case "tags":
					return r.value(path, "an array of strings", &c.Tags)
				case "lifetime_spend":
					return r.value(path, "a number", &c.LifetimeSpend)
				}
				return unknownField(path)
			})
			return err
		case "order":
			o := &WebhookOrder{}
			present, err := r.object(path, func(key, path string) error {
				switch key {
				case "ref":
					return r.value(path, "a string", &o.Ref)
				case "amount":
					return r.value(path, "a number", &o.Amount)
				case "currency":
					return r.value(path, "a string", &o.Currency)
				}
				return unknownField(path)
			})
			if present {
				t.Order = o
			}
			return err
		case "id":
			if eval {
				return r.value(path, "a string", &l.ID)
			}
		case "expect":
			if eval {
				// Labels for casebot eval; the importer only checks they
				// are an object.
				var raw map[string]json.RawMessage
				return r.value(path, "an object", &raw)
			}
		}
		return unknownField(path)
	})
	if err != nil {
		return l, err
	}
	if !present {
		return l, &FieldError{Code: CodeInvalidJSON, Detail: "the body must be a JSON object, not null"}
	}
	if err := r.end(); err != nil {
		return l, err
	}
	if hasText && hasBody {
		return l, &FieldError{Code: CodeInvalidField, Field: "body", Detail: "give text or its alias body, not both"}
	}
	return l, nil
}

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func unknownField(path string) error {
	return &FieldError{Code: CodeUnknownField, Field: path, Detail: "is not a field of the ticket schema"}
}

// jsonReader walks a JSON document with encoding/json's tokenizer so that
// every error can name the field at fault, including unknown and repeated
// fields, which json.Unmarshal reports without their path or not at all.
type jsonReader struct{ dec *json.Decoder }

// object reads an object at path, calling field for each member; field must
// consume the member's value. A null reads as absent (present false).
func (r jsonReader) object(path string, field func(key, path string) error) (present bool, err error) {
	tok, err := r.dec.Token()
	if err != nil {
		return false, syntaxError(err)
	}
	if tok == nil {
		return false, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if path == "" {
			return false, &FieldError{Code: CodeInvalidJSON, Detail: "the body must be a JSON object, not " + kind(tok)}
		}
		return false, &FieldError{Code: CodeInvalidField, Field: path, Detail: "must be an object, got " + kind(tok)}
	}
	var seen []string
	for r.dec.More() {
		tok, err := r.dec.Token()
		if err != nil {
			return true, syntaxError(err)
		}
		key, ok := tok.(string)
		if !ok {
			return true, &FieldError{Code: CodeInvalidJSON, Detail: "object key is not a string"}
		}
		// The key is the sender's: clipped, so a long one cannot bloat the
		// response or the log line that names it.
		sub := clip(key, 128)
		if path != "" {
			sub = path + "." + sub
		}
		if slices.Contains(seen, key) {
			return true, &FieldError{Code: CodeDuplicateField, Field: sub, Detail: "appears more than once"}
		}
		seen = append(seen, key)
		if err := field(key, sub); err != nil {
			return true, err
		}
	}
	if _, err := r.dec.Token(); err != nil {
		return true, syntaxError(err)
	}
	return true, nil
}

// value decodes the next value into dst, which names its expected type as
// want for the error. A null leaves dst as it is.
func (r jsonReader) value(path, want string, dst any) error {
	err := r.dec.Decode(dst)
	if err == nil {
		return nil
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		got := te.Value
		if i := strings.IndexByte(got, ' '); i > 0 {
			got = got[:i] // "number -5" → "number": the value itself is the sender's data
		}
		return &FieldError{Code: CodeInvalidField, Field: path, Detail: "must be " + want + ", got " + got}
	}
	return syntaxError(err)
}

// end checks that nothing but white space follows the top-level object.
func (r jsonReader) end() error {
	if _, err := r.dec.Token(); err != io.EOF {
		return &FieldError{Code: CodeInvalidJSON, Detail: "unexpected data after the JSON object"}
	}
	return nil
}

func syntaxError(err error) error {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return &FieldError{Code: CodeInvalidJSON, Detail: fmt.Sprintf("syntax error at byte %d: %s", se.Offset, se.Error())}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FieldError{Code: CodeInvalidJSON, Detail: "unexpected end of JSON"}
	}
	return &FieldError{Code: CodeInvalidJSON, Detail: err.Error()}
}

// kind names the JSON type of a token for an error message.
func kind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// inboundOptions says how strict the conversion is for one source.
type inboundOptions struct {
	source          triage.Source
	channels        []string
	requireCustomer bool
	// now, when set, is casebot's receipt time: received_at becomes the
	// sender's time only, and one after now+skew is refused. Without it
	// (import) received_at is the ticket's received time.
	now  time.Time
	skew time.Duration
}

// inbound validates t and normalises it into a triage.Inbound. The first
// problem found, in schema order, is returned as a *FieldError.
func (t *WebhookTicket) inbound(o inboundOptions) (triage.Inbound, error) {
	in := triage.Inbound{Source: o.source}
	var err error
	if in.ExternalID, err = identifier("external_id", t.ExternalID, maxExternalID); err != nil {
		return in, err
	}
	if in.ExternalID == "" {
		return in, &FieldError{Code: CodeMissingField, Field: "external_id", Detail: "is required: the sender's ID of the message"}
	}
	if t.Channel != "" {
		if !slices.Contains(o.channels, t.Channel) {
			return in, &FieldError{Code: CodeInvalidField, Field: "channel", Detail: "must be one of " + strings.Join(o.channels, ", ")}
		}
		in.Channel = t.Channel
	}
	var currency string
	if t.Order != nil {
		currency = t.Order.Currency
	}
	if in.Customer, err = t.Customer.customer(o.requireCustomer, currency); err != nil {
		return in, err
	}
	if in.Subject, err = text("subject", t.Subject, maxShort); err != nil {
		return in, err
	}
	in.Body = strings.TrimSpace(t.Text)
	if in.Body == "" {
		return in, &FieldError{Code: CodeMissingField, Field: "text", Detail: "is required: the customer's message"}
	}
	if t.Order != nil {
		if in.OrderRef, err = identifier("order.ref", t.Order.Ref, maxShort); err != nil {
			return in, err
		}
		if in.OrderAmount, err = money("order.amount", t.Order.Amount, t.Order.Currency); err != nil {
			return in, err
		}
	}
	for i, a := range t.Attachments {
		name, err := identifier(fmt.Sprintf("attachments[%d]", i), a, maxShort)
		if err != nil {
			return in, err
		}
		if name != "" {
			in.Attachments = append(in.Attachments, name)
		}
	}
	if t.ReplyURL != "" {
		if err := checkReplyURL(t.ReplyURL); err != nil {
			return in, &FieldError{Code: CodeInvalidField, Field: "reply_url", Detail: err.Error()}
		}
		in.ReplyTo = t.ReplyURL
	}
	switch {
	case o.now.IsZero():
		if t.ReceivedAt != nil {
			in.ReceivedAt = t.ReceivedAt.UTC()
		}
	case t.ReceivedAt == nil:
		in.ReceivedAt = o.now
	case t.ReceivedAt.After(o.now.Add(o.skew)):
		return in, &FieldError{Code: CodeInvalidField, Field: "received_at", Detail: "is in the future"}
	default:
		in.SenderAt = t.ReceivedAt.UTC()
		in.ReceivedAt = triage.ReceivedTime(in.SenderAt, o.now)
	}
	return in, nil
}

// customer normalises the identity. The sender's own ID becomes a handle
// only when there is no handle, so it still merges the customer's tickets.
// A lifetime spend is in currency, the order's.
func (c WebhookCustomer) customer(required bool, currency string) (triage.Customer, error) {
	var out triage.Customer
	var err error
	if out.Email, err = identifier("customer.email", c.Email, maxShort); err != nil {
		return out, err
	}
	if out.Email != "" && !plausibleEmail(out.Email) {
		return out, &FieldError{Code: CodeInvalidField, Field: "customer.email", Detail: "is not an email address"}
	}
	if out.Handle, err = identifier("customer.handle", c.Handle, maxShort); err != nil {
		return out, err
	}
	if out.Name, err = text("customer.name", c.Name, maxShort); err != nil {
		return out, err
	}
	id, err := identifier("customer.id", c.ID, maxShort)
	if err != nil {
		return out, err
	}
	if out.Handle == "" && id != "" {
		out.Handle = "id:" + id
	}
	if required && out.Email == "" && out.Handle == "" {
		return out, &FieldError{Code: CodeMissingField, Field: "customer",
			Detail: "a customer with at least one of email, handle or id is required"}
	}
	out.VIP = c.VIP
	if c.LifetimeSpend != 0 {
		if out.Lifetime, err = money("customer.lifetime_spend", c.LifetimeSpend, currency); err != nil {
			return out, err
		}
	}
	for i, tag := range c.Tags {
		tag, err := identifier(fmt.Sprintf("customer.tags[%d]", i), tag, maxShort)
		if err != nil {
			return out, err
		}
		if tag != "" && !slices.Contains(out.Tags, tag) {
			out.Tags = append(out.Tags, tag)
		}
	}
	return out, nil
}

// identifier trims s and refuses control characters and overlong values:
// identifiers go into index keys, logs and card text.
func identifier(field, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > max {
		return "", &FieldError{Code: CodeInvalidField, Field: field, Detail: fmt.Sprintf("is longer than %d bytes", max)}
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return "", &FieldError{Code: CodeInvalidField, Field: field, Detail: "contains control characters"}
	}
	return s, nil
}

// text trims s and bounds its length; line breaks are allowed.
func text(field, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > max {
		return "", &FieldError{Code: CodeInvalidField, Field: field, Detail: fmt.Sprintf("is longer than %d bytes", max)}
	}
	return s, nil
}

// plausibleEmail accepts local@domain without white space. Deliverability
// is not intake's business; the check only catches a field mix-up.
func plausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsFunc(s, unicode.IsSpace)
}

// money converts the major-unit amount of field to cents.
func money(field string, amount float64, currency string) (triage.Money, error) {
	if math.IsNaN(amount) || math.IsInf(amount, 0) || amount < 0 || amount > maxAmount {
		return triage.Money{}, &FieldError{Code: CodeInvalidField, Field: field,
			Detail: fmt.Sprintf("must be a number from 0 to %.0f", float64(maxAmount))}
	}
	cur := strings.ToUpper(strings.TrimSpace(currency))
	if cur != "" && (len(cur) != 3 || strings.ContainsFunc(cur, func(r rune) bool { return r < 'A' || r > 'Z' })) {
		return triage.Money{}, &FieldError{Code: CodeInvalidField, Field: "order.currency", Detail: "must be a three-letter ISO 4217 code such as USD"}
	}
	return triage.Money{Minor: int64(math.Round(amount * 100)), Currency: cur}, nil
}

// errUnsupportedURL is why a reply URL is refused, at intake and at sending.
var errUnsupportedURL = errors.New("reply URL must be an absolute http or https URL without credentials")

// checkReplyURL accepts absolute http and https URLs with a host and no
// user info: credentials in a URL would be stored, logged and shown.
func checkReplyURL(raw string) error {
	if len(raw) > maxURL {
		return fmt.Errorf("reply URL is longer than %d bytes", maxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return errUnsupportedURL
	}
	return nil
}

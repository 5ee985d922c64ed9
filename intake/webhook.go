package intake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/casebot/casebot/triage"
)

// Defaults of WebhookOptions.
const (
	DefaultMaxBody = 256 << 10
	DefaultWindow  = 5 * time.Minute
	// retryAfter is the advice of a 503, in seconds.
	retryAfter = 5
)

// WebhookOptions configures NewWebhook.
type WebhookOptions struct {
	// Secret is the shared HMAC key (CASEBOT_WEBHOOK_SECRET). Required.
	Secret []byte
	// Intake stores a ticket and returns after the commit: the Triager's
	// Intake. A repeat returns the existing ticket and an error wrapping
	// triage.ErrDuplicate. Required.
	Intake func(ctx context.Context, in triage.Inbound) (triage.Ticket, error)
	// Enqueue hands a stored ticket to classification: a new one, or a
	// repeat of one still unclassified. It is called after Intake has
	// committed and before the response is written, so it must not block.
	// Required.
	Enqueue func(ticketID string)
	// Clock checks the signature timestamp and bounds received_at; the
	// system clock when nil.
	Clock triage.Clock
	// MaxBody is the largest accepted body in bytes; DefaultMaxBody when 0.
	MaxBody int64
	// Window is how far a signature timestamp may be from Clock, either
	// way; DefaultWindow when 0.
	Window time.Duration
	// ReplyURLAllow lists the internal hosts a reply_url may target
	// (http.reply_url_allow); nil refuses every internal address.
	ReplyURLAllow *ReplyURLAllow
	// Logger receives one line per refused or failed request; discarded
	// when nil. Bodies and secrets are never logged.
	Logger *slog.Logger
}

// webhook is the http.Handler of POST /v1/tickets.
type webhook struct {
	opts WebhookOptions
	log  *slog.Logger
}

// NewWebhook returns the handler of POST /v1/tickets described in the
// package doc. It panics when Secret is empty or Intake or Enqueue is nil:
// those are wiring mistakes, and a webhook that would accept unsigned or
// unstored tickets must not start.
func NewWebhook(opts WebhookOptions) http.Handler {
	switch {
	case len(opts.Secret) == 0:
		panic("intake: NewWebhook with an empty Secret")
	case opts.Intake == nil:
		panic("intake: NewWebhook with a nil Intake")
	case opts.Enqueue == nil:
		panic("intake: NewWebhook with a nil Enqueue")
	}
	if opts.Clock == nil {
		opts.Clock = triage.SystemClock{}
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &webhook{opts: opts, log: log}
}

// apiError is the body of every error response.
type apiError struct {
	status int
	Error  string `json:"error"`
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail"`
}

// accepted is the body of a success response.
type accepted struct {
	TicketID  string `json:"ticket_id"`
	Duplicate bool   `json:"duplicate"`
}

// ServeHTTP checks, in order: method, signature headers and timestamp
// (cheap, before reading the body), media type, body size, signature, then
// the ticket itself. Intake is called only for a request that passed all.
func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in, e := h.check(w, r)
	if e != nil {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "webhook request refused", slog.Int("status", e.status),
			slog.String("error", e.Error), slog.String("field", e.Field), slog.String("remote", r.RemoteAddr))
		if e.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		writeJSON(w, e.status, e)
		return
	}
	t, err := h.opts.Intake(r.Context(), in)
	repeat, err := enqueueStored(t, err, h.opts.Enqueue)
	switch {
	case err != nil:
		h.log.LogAttrs(r.Context(), slog.LevelError, "webhook ticket not stored",
			slog.String("external_id", in.ExternalID), slog.Any("err", err))
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		writeJSON(w, http.StatusServiceUnavailable, &apiError{Error: "unavailable",
			Detail: "the ticket was not stored; retry after " + strconv.Itoa(retryAfter) +
				" seconds with the same external_id (retries are safe: a ticket is stored once)"})
	case repeat:
		writeJSON(w, http.StatusOK, accepted{TicketID: t.ID, Duplicate: true})
	default:
		writeJSON(w, http.StatusAccepted, accepted{TicketID: t.ID})
	}
}

// enqueueStored hands the ticket Intake answered with to enqueue when it
// needs classifying: stored just now, or stored by an earlier delivery that
// stopped before classification (a repeat of a ticket still received),
// which the repeat then finishes, as Triager.Process does. It reports
// whether the message was a repeat, and returns any error of Intake but
// the duplicate.
func enqueueStored(t triage.Ticket, err error, enqueue func(ticketID string)) (repeat bool, _ error) {
	switch {
	case err == nil:
	case errors.Is(err, triage.ErrDuplicate) && t.ID != "":
		repeat = true
		if t.State != triage.StateReceived {
			return repeat, nil
		}
	default:
		return false, err
	}
	enqueue(t.ID)
	return repeat, nil
}

// check validates the request and returns the ticket as an Inbound, or the
// error response.
func (h *webhook) check(w http.ResponseWriter, r *http.Request) (triage.Inbound, *apiError) {
	var in triage.Inbound
	if r.Method != http.MethodPost {
		return in, &apiError{status: http.StatusMethodNotAllowed, Error: "method_not_allowed", Detail: "use POST"}
	}
	ts, sig := r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature)
	if ts == "" || sig == "" {
		return in, &apiError{status: http.StatusUnauthorized, Error: "missing_signature",
			Detail: "both " + HeaderTimestamp + " and " + HeaderSignature + " headers are required"}
	}
	now := h.opts.Clock.Now()
	inWindow, parsed := checkTimestamp(ts, now, h.opts.Window)
	if !parsed {
		return in, &apiError{status: http.StatusUnauthorized, Error: "invalid_timestamp",
			Detail: HeaderTimestamp + " must be unix time in seconds"}
	}
	if !inWindow {
		return in, &apiError{status: http.StatusUnauthorized, Error: "stale_timestamp",
			Detail: HeaderTimestamp + " is more than " + h.opts.Window.String() + " from the server's clock; sign each request (and each retry) with the current time"}
	}
	if err := checkMediaType(r.Header.Get("Content-Type")); err != nil {
		return in, &apiError{status: http.StatusUnsupportedMediaType, Error: "unsupported_media_type", Detail: err.Error()}
	}
	body, e := h.readBody(w, r)
	if e != nil {
		return in, e
	}
	if !verifySignature(h.opts.Secret, ts, sig, body) {
		return in, &apiError{status: http.StatusUnauthorized, Error: "invalid_signature",
			Detail: HeaderSignature + " must be v1=<hex HMAC-SHA256 of \"<timestamp>.<body>\"> with the shared secret"}
	}
	l, err := decodeTicket(body, false)
	if err == nil {
		in, err = l.inbound(inboundOptions{source: triage.SourceWebhook, channels: webhookChannels,
			requireCustomer: true, now: now, skew: h.opts.Window})
	}
	if err == nil && in.ReplyTo != "" {
		if terr := checkReplyTarget(in.ReplyTo, h.opts.ReplyURLAllow); terr != nil {
			err = &FieldError{Code: CodeInvalidField, Field: "reply_url", Detail: terr.Error()}
		}
	}
	if err != nil {
		fe, ok := errors.AsType[*FieldError](err)
		if !ok {
			fe = &FieldError{Code: CodeInvalidJSON, Detail: err.Error()}
		}
		return in, &apiError{status: http.StatusBadRequest, Error: fe.Code, Field: fe.Field, Detail: fe.Detail}
	}
	return in, nil
}

// readBody reads at most MaxBody bytes; a longer body is refused without
// being read further.
func (h *webhook) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	tooLarge := &apiError{status: http.StatusRequestEntityTooLarge, Error: "body_too_large",
		Detail: "the body is larger than " + strconv.FormatInt(h.opts.MaxBody, 10) + " bytes"}
	if r.ContentLength > h.opts.MaxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, tooLarge
	}
	if err != nil {
		return nil, &apiError{status: http.StatusBadRequest, Error: "invalid_body", Detail: "the body could not be read"}
	}
	return body, nil
}

// checkMediaType accepts application/json, with no charset or UTF-8.
func checkMediaType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errors.New("Content-Type must be application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return errors.New("the body must be UTF-8")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// The client may have gone; there is no one left to tell.
	_ = json.NewEncoder(w).Encode(v)
}

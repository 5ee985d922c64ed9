package intake

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/casebot/casebot/triage"
)

// RatingPath is where the signed rating links of follow-ups point.
const RatingPath = "/v1/rate"

// DefaultRatingTTL is how long a rating link works: the follow-up's week of
// waiting for an answer and as long again for a customer who reads mail
// late.
const DefaultRatingTTL = 14 * 24 * time.Hour

// maxRatingTicketID bounds the ticket ID a link may carry; store IDs are
// short ("CB-000042").
const maxRatingTicketID = 64

// maxRatingForm bounds the body of the confirmation form's POST: four
// short fields.
const maxRatingForm = 1 << 10

// ratingSigVersion names the MAC's input format, so the scheme can change
// without a link of one format verifying as another.
const ratingSigVersion = "rate.v1"

// ErrAlreadyRated is returned by a RateFunc when the ticket already has its
// rating: a repeated click, which the handler answers kindly. It is the
// Triager's own sentinel, so Triager.Rate's error matches it as it is.
var ErrAlreadyRated = triage.ErrAlreadyRated

// RateFunc records a customer's rating of a ticket's follow-up. It returns
// an error wrapping ErrAlreadyRated when a rating was already recorded and
// triage.ErrInvalidTransition when the ticket takes no rating now;
// RecordRating builds one from the Triager's Rate.
type RateFunc func(ctx context.Context, ticketID string, rating int) error

// RatingLinker makes and checks the rating links sent with the
// follow-up of email and webhook tickets (SPEC section 6). A link names the
// ticket, the rating and an expiry, signed with HMAC-SHA256 so that nobody
// can rate a ticket, or change a rating, without the link casebot sent.
type RatingLinker struct {
	// Secret keys the signatures; at least 32 random bytes. Required.
	Secret []byte
	// BaseURL is where casebot's HTTP listener is reached from the
	// internet, e.g. "https://support.example.com"; links are BaseURL +
	// RatingPath + "?…". Required.
	BaseURL string
	// TTL is how long a link works; DefaultRatingTTL when zero.
	TTL time.Duration
	// Clock stamps expiries and checks them; the system clock when nil.
	Clock triage.Clock
}

func (l *RatingLinker) now() time.Time {
	if l.Clock == nil {
		return time.Now()
	}
	return l.Clock.Now()
}

func (l *RatingLinker) ttl() time.Duration {
	if l.TTL <= 0 {
		return DefaultRatingTTL
	}
	return l.TTL
}

// Link returns the signed link that rates ticketID with rating (1–5). Its
// query is t (ticket ID), r (rating), exp (unix seconds) and sig (hex MAC).
func (l *RatingLinker) Link(ticketID string, rating int) string {
	exp := strconv.FormatInt(l.now().Add(l.ttl()).Unix(), 10)
	r := strconv.Itoa(rating)
	q := url.Values{"t": {ticketID}, "r": {r}, "exp": {exp}, "sig": {hex.EncodeToString(l.mac(ticketID, r, exp))}}
	return strings.TrimRight(l.BaseURL, "/") + RatingPath + "?" + q.Encode()
}

// mac signs the three fields as they appear in the link. The fields are
// joined with "|", which a ticket ID may not contain (checked on both
// sides), so no two links share an input.
func (l *RatingLinker) mac(ticketID, rating, exp string) []byte {
	m := hmac.New(sha256.New, l.Secret)
	m.Write([]byte(ratingSigVersion + "|" + ticketID + "|" + rating + "|" + exp))
	return m.Sum(nil)
}

// errForged and errExpired are why a link is refused.
var (
	errForged  = errors.New("rating link signature invalid")
	errExpired = errors.New("rating link expired")
)

// verify checks a link's query and returns its ticket and rating. The
// signature is checked before the expiry, so a forged link is always told
// apart from an old genuine one.
func (l *RatingLinker) verify(q url.Values) (string, int, error) {
	id, r, exp, sig := q.Get("t"), q.Get("r"), q.Get("exp"), q.Get("sig")
	if id == "" || len(id) > maxRatingTicketID || strings.Contains(id, "|") || len(r) != 1 || r[0] < '1' || r[0] > '5' {
		return "", 0, errForged
	}
	if !equalHexMAC(sig, l.mac(id, r, exp)) {
		return "", 0, errForged
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return "", 0, errForged
	}
	if !l.now().Before(time.Unix(sec, 0)) {
		return "", 0, errExpired
	}
	return id, int(r[0] - '0'), nil
}

// ratingAllow lists the methods of RatingPath, for a 405's Allow.
const ratingAllow = "GET, HEAD, POST"

// Handler serves RatingPath. Opening a link (GET or HEAD) changes nothing:
// mail scanners and link previews fetch links nobody clicked, so a valid
// link shows a confirmation page whose form POSTs the same signed fields,
// and only that POST records the rating through rate and answers a
// thank-you page. A forged or tampered link gets 403, an expired one 410,
// each with a plain page, whether opened or posted; a second POST of a used
// link says the rating is already recorded (200). A POST must be a small
// application/x-www-form-urlencoded body (415, 413 otherwise). Pages are
// HTML with every value escaped and no scripts; nothing the link carries is
// shown but the rating digit. log may be nil.
func (l *RatingLinker) Handler(rate RateFunc, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			l.confirm(w, r.URL.Query())
		case http.MethodPost:
			l.record(w, r, rate, log)
		default:
			w.Header().Set("Allow", ratingAllow)
			ratingPage(w, http.StatusMethodNotAllowed, "Not available", "This page only opens from the link in our message.")
		}
	})
}

// refused answers a link verify did not accept and reports whether it did.
func refused(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, errExpired):
		ratingPage(w, http.StatusGone, "This link has expired",
			"Rating links work for a limited time. Thank you all the same; you can reply to our message instead.")
	default:
		ratingPage(w, http.StatusForbidden, "This link is not valid",
			"Please use the link exactly as it appears in our message.")
	}
	return true
}

// confirm shows the page that asks for the click which records the rating.
func (l *RatingLinker) confirm(w http.ResponseWriter, q url.Values) {
	_, rating, err := l.verify(q)
	if refused(w, err) {
		return
	}
	writeRatingPage(w, http.StatusOK, ratingConfirmTemplate, struct {
		Rating         int
		T, R, Exp, Sig string
	}{rating, q.Get("t"), q.Get("r"), q.Get("exp"), q.Get("sig")})
}

// record checks a POST of the confirmation form and records its rating.
// Only the body counts: the query of the page's URL is not the form.
func (l *RatingLinker) record(w http.ResponseWriter, r *http.Request, rate RateFunc, log *slog.Logger) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		ratingPage(w, http.StatusUnsupportedMediaType, "Not available", "Please use the button on the rating page.")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRatingForm))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		ratingPage(w, http.StatusRequestEntityTooLarge, "Not available", "Please use the button on the rating page.")
		return
	}
	var form url.Values
	if err == nil {
		form, err = url.ParseQuery(string(body))
	}
	if err != nil {
		ratingPage(w, http.StatusBadRequest, "Not available", "Please use the button on the rating page.")
		return
	}
	id, rating, err := l.verify(form)
	if refused(w, err) {
		return
	}
	err = rate(r.Context(), id, rating)
	switch {
	case err == nil:
		log.Info("rating recorded", "ticket", id, "rating", rating)
		ratingPage(w, http.StatusOK, "Thank you!", "We have recorded your rating of "+strconv.Itoa(rating)+
			" out of 5. It helps us do better.")
	case errors.Is(err, ErrAlreadyRated):
		ratingPage(w, http.StatusOK, "Already recorded", "Your rating was already recorded. Thank you!")
	case errors.Is(err, triage.ErrInvalidTransition):
		ratingPage(w, http.StatusConflict, "Nothing to rate now",
			"This request is no longer waiting for a rating. Thank you all the same.")
	case errors.Is(err, triage.ErrNotFound):
		ratingPage(w, http.StatusGone, "Nothing to rate",
			"We could not find this request any more. Thank you all the same.")
	default:
		log.Error("record rating", "ticket", id, "err", err)
		w.Header().Set("Retry-After", "60")
		ratingPage(w, http.StatusServiceUnavailable, "Please try again",
			"We could not record your rating just now. Please try again in a minute.")
	}
}

// ratingHead is the head and body style every rating page shares.
const ratingHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">`

var ratingTemplate = template.Must(template.New("rating").Parse(ratingHead + `<title>{{.Title}}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em">
<h1>{{.Title}}</h1><p>{{.Body}}</p></body></html>
`))

// ratingConfirmTemplate's form has no action, so it posts to the page's own
// URL, wherever a proxy serves it.
var ratingConfirmTemplate = template.Must(template.New("confirm").Parse(ratingHead + `<title>Rate our help</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em">
<h1>Rate our help</h1><p>You chose {{.Rating}} out of 5. Press the button to send your rating.</p>
<form method="post">
<input type="hidden" name="t" value="{{.T}}">
<input type="hidden" name="r" value="{{.R}}">
<input type="hidden" name="exp" value="{{.Exp}}">
<input type="hidden" name="sig" value="{{.Sig}}">
<button type="submit" style="font-size: 1.2em; padding: 0.5em 1em">Send my rating of {{.Rating}} out of 5</button>
</form></body></html>
`))

// ratingPage writes a page of title and body text.
func ratingPage(w http.ResponseWriter, status int, title, body string) {
	writeRatingPage(w, status, ratingTemplate, struct{ Title, Body string }{title, body})
}

// writeRatingPage writes a small page; html/template escapes its values.
// The page may not be framed or cached: it answers a one-time action. Its
// form may post only back to casebot.
func writeRatingPage(w http.ResponseWriter, status int, t *template.Template, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = t.Execute(w, data)
}

// RecordRating builds the RateFunc of the rating links from the Triager's
// Rate, which decides inside its transaction whether the ticket takes the
// rating: the first of any number of clicks, at once or not, is recorded
// and the others get ErrAlreadyRated.
func RecordRating(rate func(ctx context.Context, id string, rating int) (triage.Ticket, error)) RateFunc {
	return func(ctx context.Context, id string, rating int) error {
		_, err := rate(ctx, id, rating)
		return err
	}
}

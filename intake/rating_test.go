package intake

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

var ratingT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func newLinker(clock triage.Clock) *RatingLinker {
	return &RatingLinker{Secret: []byte("0123456789abcdef0123456789abcdef"), BaseURL: "https://support.example.com/",
		Clock: clock}
}

// recorder is a RateFunc that remembers its calls and answers err.
type recorder struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (r *recorder) rate(_ context.Context, id string, rating int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("%s=%d", id, rating))
	return r.err
}

func get(t *testing.T, h http.Handler, link string) (int, string) {
	t.Helper()
	return serve(t, h, httptest.NewRequest(http.MethodGet, link, nil))
}

func serve(t *testing.T, h http.Handler, req *http.Request) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	body, _ := io.ReadAll(w.Result().Body)
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	return w.Code, string(body)
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)

// formOf returns the fields of the confirmation page's form, as a browser
// would submit them.
func formOf(t *testing.T, page string) url.Values {
	t.Helper()
	if !strings.Contains(page, `<form method="post"`) {
		t.Fatalf("page has no POST form: %s", page)
	}
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	return form
}

// postForm POSTs form to link as the confirmation page's button does.
func postForm(t *testing.T, h http.Handler, link string, form url.Values) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, link, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return serve(t, h, req)
}

// click opens link and, when it shows the confirmation page, presses its
// button: what a customer does.
func click(t *testing.T, h http.Handler, link string) (int, string) {
	t.Helper()
	code, page := get(t, h, link)
	if code != http.StatusOK {
		return code, page
	}
	return postForm(t, h, link, formOf(t, page))
}

// withQuery rewrites one query parameter of a link.
func withQuery(t *testing.T, link, key, value string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// queryOf returns link's query.
func queryOf(t *testing.T, link string) url.Values {
	t.Helper()
	p, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query()
}

func TestRatingLinkShape(t *testing.T) {
	l := newLinker(triagetest.NewClock(ratingT0))
	link := l.Link("CB-000042", 4)
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" || u.Host != "support.example.com" || u.Path != RatingPath {
		t.Errorf("link %s", link)
	}
	q := u.Query()
	wantExp := fmt.Sprint(ratingT0.Add(DefaultRatingTTL).Unix())
	if q.Get("t") != "CB-000042" || q.Get("r") != "4" || q.Get("exp") != wantExp || len(q.Get("sig")) != 64 {
		t.Errorf("query %v", q)
	}
	if other := newLinker(triagetest.NewClock(ratingT0)); other.Link("CB-000042", 5) == link {
		t.Error("two ratings share a link")
	}
}

func TestRatingHandler(t *testing.T) {
	clock := triagetest.NewClock(ratingT0)
	l := newLinker(clock)
	l.TTL = time.Hour
	valid := l.Link("CB-000042", 2)
	otherSecret := &RatingLinker{Secret: []byte("another secret of thirty-two bytes"), BaseURL: l.BaseURL, Clock: clock}
	cases := []struct {
		name     string
		link     string
		advance  time.Duration
		rateErr  error
		want     int
		contains string
		calls    int
	}{
		{name: "valid", link: valid, want: http.StatusOK, contains: "rating of 2 out of 5", calls: 1},
		{name: "forged signature", link: withQuery(t, valid, "sig", strings.Repeat("ab", 32)), want: http.StatusForbidden,
			contains: "not valid"},
		{name: "other secret", link: otherSecret.Link("CB-000042", 2), want: http.StatusForbidden},
		{name: "tampered rating", link: withQuery(t, valid, "r", "5"), want: http.StatusForbidden},
		{name: "tampered ticket", link: withQuery(t, valid, "t", "CB-000043"), want: http.StatusForbidden},
		{name: "tampered expiry", link: withQuery(t, valid, "exp", fmt.Sprint(ratingT0.Add(48*time.Hour).Unix())),
			want: http.StatusForbidden},
		{name: "rating out of range", link: withQuery(t, valid, "r", "9"), want: http.StatusForbidden},
		{name: "missing signature", link: withQuery(t, valid, "sig", ""), want: http.StatusForbidden},
		{name: "upper-case signature", link: withQuery(t, valid, "sig", strings.ToUpper(queryOf(t, valid).Get("sig"))),
			want: http.StatusForbidden},
		{name: "expired", link: valid, advance: time.Hour, want: http.StatusGone, contains: "expired"},
		{name: "forged and expired", link: withQuery(t, valid, "sig", strings.Repeat("00", 32)), advance: 2 * time.Hour,
			want: http.StatusForbidden},
		{name: "already rated", link: valid, rateErr: fmt.Errorf("rate: %w", ErrAlreadyRated), want: http.StatusOK,
			contains: "already recorded", calls: 1},
		{name: "not ratable", link: valid, rateErr: triage.ErrInvalidTransition, want: http.StatusConflict, calls: 1},
		{name: "ticket gone", link: valid, rateErr: triage.ErrNotFound, want: http.StatusGone, calls: 1},
		{name: "store down", link: valid, rateErr: errors.New("disk on fire"), want: http.StatusServiceUnavailable,
			contains: "try again", calls: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock.Set(ratingT0.Add(tc.advance))
			rec := &recorder{err: tc.rateErr}
			code, body := click(t, l.Handler(rec.rate, nil), tc.link)
			if code != tc.want {
				t.Errorf("status %d, want %d: %s", code, tc.want, body)
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("page lacks %q: %s", tc.contains, body)
			}
			if len(rec.calls) != tc.calls {
				t.Errorf("rate called %v, want %d calls", rec.calls, tc.calls)
			}
			if strings.Contains(body, "disk on fire") || strings.Contains(body, "CB-0000") {
				t.Errorf("page echoes internals or the link: %s", body)
			}
		})
	}
}

func TestRatingHandlerRefusesOtherMethods(t *testing.T) {
	l := newLinker(triagetest.NewClock(ratingT0))
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		rec := &recorder{}
		w := httptest.NewRecorder()
		l.Handler(rec.rate, nil).ServeHTTP(w, httptest.NewRequest(method, l.Link("CB-1", 5), nil))
		if w.Code != http.StatusMethodNotAllowed || len(rec.calls) != 0 || w.Header().Get("Allow") != "GET, HEAD, POST" {
			t.Errorf("%s: status %d, Allow %q, calls %v", method, w.Code, w.Header().Get("Allow"), rec.calls)
		}
	}
}

// TestRatingOpeningRecordsNothing: mail scanners and link previews fetch
// links without a click, so opening a link only shows the confirmation
// page, whose form carries the signed link.
func TestRatingOpeningRecordsNothing(t *testing.T) {
	l := newLinker(triagetest.NewClock(ratingT0))
	link := l.Link("CB-000042", 1)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		t.Run(method, func(t *testing.T) {
			rec := &recorder{}
			h := l.Handler(rec.rate, nil)
			for range 3 {
				code, page := serve(t, h, httptest.NewRequest(method, link, nil))
				if code != http.StatusOK {
					t.Errorf("status %d: %s", code, page)
				}
				if method == http.MethodGet {
					u, _ := url.Parse(link)
					if got := formOf(t, page); got.Encode() != u.Query().Encode() {
						t.Errorf("form %v, want the link's query %v", got, u.Query())
					}
					if !strings.Contains(page, "1 out of 5") || strings.Contains(page, "<script") {
						t.Errorf("page: %s", page)
					}
				}
			}
			if len(rec.calls) != 0 {
				t.Errorf("%s recorded %v", method, rec.calls)
			}
		})
	}
}

// TestRatingPostRefused: only a POST of the form with a valid signed link
// records; each other POST is refused before rate is called.
func TestRatingPostRefused(t *testing.T) {
	clock := triagetest.NewClock(ratingT0)
	l := newLinker(clock)
	l.TTL = time.Hour
	u, _ := url.Parse(l.Link("CB-000042", 4))
	valid := u.Query()
	with := func(key, value string) url.Values {
		q := url.Values{}
		for k, v := range valid {
			q[k] = v
		}
		q.Set(key, value)
		return q
	}
	cases := []struct {
		name    string
		body    string
		ctype   string
		advance time.Duration
		want    int
	}{
		{name: "valid", body: valid.Encode(), want: http.StatusOK},
		{name: "upper-case signature", body: with("sig", strings.ToUpper(valid.Get("sig"))).Encode(), want: http.StatusForbidden},
		{name: "forged signature", body: with("sig", strings.Repeat("ab", 32)).Encode(), want: http.StatusForbidden},
		{name: "no signature", body: with("sig", "").Encode(), want: http.StatusForbidden},
		{name: "empty body", body: "", want: http.StatusForbidden},
		{name: "expired", body: valid.Encode(), advance: time.Hour, want: http.StatusGone},
		{name: "JSON", body: `{"t":"CB-000042"}`, ctype: "application/json", want: http.StatusUnsupportedMediaType},
		{name: "no content type", body: valid.Encode(), ctype: "-", want: http.StatusUnsupportedMediaType},
		{name: "multipart", body: valid.Encode(), ctype: "multipart/form-data; boundary=x", want: http.StatusUnsupportedMediaType},
		{name: "oversized", body: valid.Encode() + "&pad=" + strings.Repeat("x", maxRatingForm), want: http.StatusRequestEntityTooLarge},
		{name: "bad encoding", body: "t=%zz", want: http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock.Set(ratingT0.Add(tc.advance))
			rec := &recorder{}
			// The query holds a valid link: only the body counts.
			req := httptest.NewRequest(http.MethodPost, u.String(), strings.NewReader(tc.body))
			switch tc.ctype {
			case "":
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			case "-":
			default:
				req.Header.Set("Content-Type", tc.ctype)
			}
			code, page := serve(t, l.Handler(rec.rate, nil), req)
			if code != tc.want {
				t.Errorf("status %d, want %d: %s", code, tc.want, page)
			}
			wantCalls := 0
			if tc.want == http.StatusOK {
				wantCalls = 1
			}
			if len(rec.calls) != wantCalls {
				t.Errorf("rate called %v, want %d calls", rec.calls, wantCalls)
			}
		})
	}
}

// followedUp stores a ticket whose follow-up went out, as the scheduler
// leaves it.
func followedUp(t *testing.T, store *triagetest.Tickets, assignee string) string {
	t.Helper()
	ctx := context.Background()
	tk, err := store.Create(ctx, &triage.Ticket{Source: triage.SourceEmail, ExternalID: "m1", Body: "late parcel",
		Route: triage.Route{Channel: "C0QUEUE"}}, triage.Customer{Email: "jane@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Update(ctx, tk.ID, func(x *triage.Ticket) (triage.AuditEvent, error) {
		x.State, x.Assignee = triage.StateFollowedUp, assignee
		x.ResolvedAt, x.FollowUpSentAt = ratingT0.Add(-48*time.Hour), ratingT0
		return triage.AuditEvent{Actor: "test", Action: "fixture"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tk.ID
}

func TestRatingReplayIsIdempotent(t *testing.T) {
	clock := triagetest.NewClock(ratingT0)
	store := triagetest.NewTickets(clock)
	tr, err := triage.NewTriager(triage.DefaultConfig(), store, clock)
	if err != nil {
		t.Fatal(err)
	}
	id := followedUp(t, store, "U0AGENT01")
	l := newLinker(clock)
	h := l.Handler(RecordRating(tr.Rate), nil)

	code, body := click(t, h, l.Link(id, 1))
	if code != http.StatusOK || !strings.Contains(body, "Thank you") {
		t.Fatalf("first click: %d %s", code, body)
	}
	tk, _ := store.Get(context.Background(), id)
	if tk.Rating != 1 || tk.State != triage.StateReopened {
		t.Fatalf("after rating 1: rating %d state %s", tk.Rating, tk.State)
	}
	// The same link again, and another rating's link: neither changes it.
	for _, link := range []string{l.Link(id, 1), l.Link(id, 5)} {
		code, body = click(t, h, link)
		if code != http.StatusOK || !strings.Contains(body, "already recorded") {
			t.Errorf("replay: %d %s", code, body)
		}
	}
	tk, _ = store.Get(context.Background(), id)
	if tk.Rating != 1 || tk.State != triage.StateReopened {
		t.Errorf("after replays: rating %d state %s", tk.Rating, tk.State)
	}
	rated := 0
	for _, ev := range store.Audit(id) {
		if ev.Action == "rated" {
			rated++
		}
	}
	if rated != 1 {
		t.Errorf("%d rated events, want 1", rated)
	}
}

func TestRecordRatingConcurrentClicks(t *testing.T) {
	clock := triagetest.NewClock(ratingT0)
	store := triagetest.NewTickets(clock)
	tr, err := triage.NewTriager(triage.DefaultConfig(), store, clock)
	if err != nil {
		t.Fatal(err)
	}
	id := followedUp(t, store, "")
	rate := RecordRating(tr.Rate)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range 5 {
		wg.Go(func() { errs[i] = rate(context.Background(), id, i+1) })
	}
	wg.Wait()
	ok, already := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrAlreadyRated):
			already++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 || already != 4 {
		t.Errorf("%d recorded, %d already recorded; want 1 and 4", ok, already)
	}
}

// TestRatingLinkRule: a link rates a ticket as Triager.Rate's one rule
// says: once, after the follow-up, while the ticket waits for the rating or
// was closed for want of it (a late 3–5 leaves it closed, a late 1–2
// reopens it); the page says what happened.
func TestRatingLinkRule(t *testing.T) {
	cases := []struct {
		name   string
		state  triage.State // set on a followed-up ticket; "" leaves it
		rating int          // already recorded
		sent   bool         // follow-up sent; true unless said
		click  int
		code   int
		page   string
		want   triage.State
	}{
		{name: "waiting, 5", click: 5, code: http.StatusOK, page: "rating of 5", want: triage.StateClosed},
		{name: "waiting, 1", click: 1, code: http.StatusOK, page: "rating of 1", want: triage.StateReopened},
		{name: "closed unanswered, late 4", state: triage.StateClosed, click: 4, code: http.StatusOK,
			page: "rating of 4", want: triage.StateClosed},
		{name: "closed unanswered, late 2", state: triage.StateClosed, click: 2, code: http.StatusOK,
			page: "rating of 2", want: triage.StateReopened},
		{name: "closed and rated", state: triage.StateClosed, rating: 5, click: 1, code: http.StatusOK,
			page: "already recorded", want: triage.StateClosed},
		{name: "reopened by the customer writing", state: triage.StateReopened, click: 5, code: http.StatusConflict,
			page: "no longer waiting", want: triage.StateReopened},
		{name: "resolved again, follow-up not sent", state: triage.StateResolved, click: 5, code: http.StatusConflict,
			page: "no longer waiting", want: triage.StateResolved},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := triagetest.NewClock(ratingT0)
			store := triagetest.NewTickets(clock)
			tr, err := triage.NewTriager(triage.DefaultConfig(), store, clock)
			if err != nil {
				t.Fatal(err)
			}
			id := followedUp(t, store, "")
			if tc.state != "" || tc.rating != 0 {
				if _, err := store.Update(context.Background(), id, func(x *triage.Ticket) (triage.AuditEvent, error) {
					if tc.state != "" {
						x.State = tc.state
					}
					if tc.state == triage.StateResolved {
						x.FollowUpSentAt = time.Time{}
					}
					x.Rating = tc.rating
					return triage.AuditEvent{Actor: "test", Action: "fixture"}, nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := store.Get(context.Background(), id)
			l := newLinker(clock)
			code, body := click(t, l.Handler(RecordRating(tr.Rate), nil), l.Link(id, tc.click))
			if code != tc.code || !strings.Contains(body, tc.page) {
				t.Errorf("status %d, want %d with %q: %s", code, tc.code, tc.page, body)
			}
			got, _ := store.Get(context.Background(), id)
			wantRating := before.Rating
			if tc.code == http.StatusOK && before.Rating == 0 {
				wantRating = tc.click
			}
			if got.State != tc.want || got.Rating != wantRating {
				t.Errorf("state %s rating %d, want %s %d", got.State, got.Rating, tc.want, wantRating)
			}
		})
	}
	clock := triagetest.NewClock(ratingT0)
	tr, err := triage.NewTriager(triage.DefaultConfig(), triagetest.NewTickets(clock), clock)
	if err != nil {
		t.Fatal(err)
	}
	if err := RecordRating(tr.Rate)(context.Background(), "CB-404", 5); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("rating an unknown ticket: %v", err)
	}
}

// FuzzRatingLink checks that no query but the one casebot signed is
// accepted, and that verifying never panics.
func FuzzRatingLink(f *testing.F) {
	l := newLinker(triagetest.NewClock(ratingT0))
	good, _ := url.Parse(l.Link("CB-000001", 3))
	f.Add(good.RawQuery)
	f.Add("t=CB-1&r=3&exp=99999999999&sig=00")
	f.Add("t=a%7Cb&r=1&exp=1&sig=")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		id, rating, err := l.verify(q)
		if err != nil {
			return
		}
		if id != "CB-000001" || rating != 3 || q.Get("sig") != good.Query().Get("sig") {
			t.Fatalf("accepted a query casebot did not sign: %q as %q rating %d", raw, id, rating)
		}
	})
}

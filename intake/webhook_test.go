package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

var (
	t0     = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	secret = []byte("test-secret-0123456789abcdef0123")
)

// fixture is a webhook in front of a real Triager over the in-memory store,
// with the calls to Intake and Enqueue recorded.
type fixture struct {
	clock   *triagetest.Clock
	tickets *triagetest.Tickets
	h       http.Handler

	mu          sync.Mutex
	intakeCalls int
	returned    map[string]bool // ticket IDs whose Intake call has returned
	enqueued    []string
	// enqueueErr records a broken ordering seen by Enqueue.
	enqueueErr error
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{clock: triagetest.NewClock(t0), returned: map[string]bool{}}
	f.tickets = triagetest.NewTickets(f.clock)
	tr, err := triage.NewTriager(triage.DefaultConfig(), f.tickets, f.clock)
	if err != nil {
		t.Fatal(err)
	}
	f.h = NewWebhook(WebhookOptions{
		Secret: secret,
		Clock:  f.clock,
		Intake: func(ctx context.Context, in triage.Inbound) (triage.Ticket, error) {
			f.mu.Lock()
			f.intakeCalls++
			f.mu.Unlock()
			tk, err := tr.Intake(ctx, in)
			f.mu.Lock()
			f.returned[tk.ID] = true
			f.mu.Unlock()
			return tk, err
		},
		Enqueue: func(id string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.enqueued = append(f.enqueued, id)
			if !f.returned[id] {
				f.enqueueErr = errors.New("Enqueue(" + id + ") before Intake returned")
			}
			if _, err := f.tickets.Get(context.Background(), id); err != nil {
				f.enqueueErr = err
			}
		},
	})
	return f
}

func (f *fixture) calls() (intake int, enqueued []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.intakeCalls, append([]string(nil), f.enqueued...)
}

// signed builds a POST signed at ts.
func signed(body []byte, ts time.Time) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/tickets", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set(HeaderSignature, Sign(secret, ts.Unix(), body))
	return r
}

func (f *fixture) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

const validBody = `{"external_id":"chat-1","channel":"chat",
 "customer":{"email":"Ann@Example.com","handle":"@ann","name":"Ann","id":"cus_9","vip":true,"tags":["gold"," gold "]},
 "subject":"Order 1001","text":"My parcel never arrived.","order":{"ref":"1001","amount":12.5,"currency":"usd"},
 "attachments":["photo.jpg"],"reply_url":"https://helpdesk.example/hooks/reply?c=1","received_at":"2025-03-03T08:55:00+01:00"}`

func TestWebhookAccepts(t *testing.T) {
	f := newFixture(t)
	w := f.serve(signed([]byte(validBody), t0))
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
	var got accepted
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.TicketID == "" || got.Duplicate {
		t.Fatalf("response %+v", got)
	}
	tk, err := f.tickets.Get(context.Background(), got.TicketID)
	if err != nil {
		t.Fatal(err)
	}
	want := triage.Ticket{ID: got.TicketID, Source: triage.SourceWebhook, Channel: "chat", ExternalID: "chat-1",
		Subject: "Order 1001", Body: "My parcel never arrived.", OrderRef: "1001",
		ReplyTo: "https://helpdesk.example/hooks/reply?c=1", ReceivedAt: t0, SenderAt: time.Date(2025, 3, 3, 7, 55, 0, 0, time.UTC)}
	if tk.Source != want.Source || tk.Channel != want.Channel || tk.ExternalID != want.ExternalID ||
		tk.Subject != want.Subject || tk.Body != want.Body || tk.OrderRef != want.OrderRef ||
		tk.ReplyTo != want.ReplyTo || !tk.ReceivedAt.Equal(want.ReceivedAt) || !tk.SenderAt.Equal(want.SenderAt) {
		t.Errorf("stored ticket\n got %+v\nwant %+v", tk, want)
	}
	if m := tk.Classification.Amount; m != (triage.Money{Minor: 1250, Currency: "USD"}) {
		t.Errorf("amount %+v, want USD 12.50", m)
	}
	cs := f.tickets.Customers()
	if len(cs) != 1 || cs[0].Email != "Ann@Example.com" || cs[0].Handle != "@ann" || !cs[0].VIP ||
		len(cs[0].Tags) != 1 || cs[0].Tags[0] != "gold" || cs[0].Name != "Ann" {
		t.Errorf("customers %+v", cs)
	}
	_, enq := f.calls()
	if len(enq) != 1 || enq[0] != got.TicketID {
		t.Errorf("enqueued %v, want [%s]", enq, got.TicketID)
	}
	if f.enqueueErr != nil {
		t.Error(f.enqueueErr)
	}
}

func TestWebhookVariants(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, tk triage.Ticket, c triage.Customer)
	}{
		{"body alias and customer id as identity",
			`{"external_id":"r-1","customer":{"id":"42"},"body":"Terrible."}`,
			func(t *testing.T, tk triage.Ticket, c triage.Customer) {
				if tk.Body != "Terrible." || c.Handle != "id:42" || tk.ReceivedAt != t0 || tk.ReplyTo != "" {
					t.Errorf("ticket %+v customer %+v", tk, c)
				}
			}},
		{"nulls read as absent",
			`{"external_id":"r-2","customer":{"email":"b@example.com","name":null},"text":"hi","order":null,"subject":null}`,
			func(t *testing.T, tk triage.Ticket, c triage.Customer) {
				if tk.OrderRef != "" || tk.Subject != "" || c.Email != "b@example.com" {
					t.Errorf("ticket %+v customer %+v", tk, c)
				}
			}},
		{"lifetime spend in the order's currency",
			`{"external_id":"r-4","customer":{"email":"c@example.com","lifetime_spend":6000.5},"text":"hi","order":{"ref":"7","amount":20,"currency":"eur"}}`,
			func(t *testing.T, tk triage.Ticket, c triage.Customer) {
				if want := (triage.Money{Minor: 600050, Currency: "EUR"}); c.Lifetime != want || c.ReportedSpend != want {
					t.Errorf("customer lifetime %v reported %v, want %v", c.Lifetime, c.ReportedSpend, want)
				}
			}},
		{"order amounts count toward lifetime spend",
			`{"external_id":"r-5","customer":{"email":"d@example.com","lifetime_spend":10},"text":"hi","order":{"ref":"8","amount":20,"currency":"USD"}}`,
			func(t *testing.T, tk triage.Ticket, c triage.Customer) {
				if want := (triage.Money{Minor: 2000, Currency: "USD"}); c.Lifetime != want {
					t.Errorf("customer lifetime %v, want %v", c.Lifetime, want)
				}
			}},
		{"charset utf-8 and whitespace trimmed",
			`{"external_id":"  r-3 ","customer":{"handle":"x"},"text":"  spaced  "}`,
			func(t *testing.T, tk triage.Ticket, _ triage.Customer) {
				if tk.ExternalID != "r-3" || tk.Body != "spaced" {
					t.Errorf("ticket %+v", tk)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			r := signed([]byte(tt.body), t0)
			r.Header.Set("Content-Type", "application/json; charset=UTF-8")
			w := f.serve(r)
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
			all := f.tickets.All()
			cs := f.tickets.Customers()
			if len(all) != 1 || len(cs) != 1 {
				t.Fatalf("%d tickets, %d customers", len(all), len(cs))
			}
			tt.check(t, all[0], cs[0])
		})
	}
}

// TestWebhookReceivedAtIsCasebots takes a webhook's received_at as the
// sender's time: the ticket is indexed by casebot's clock unless that time
// lies within triage.MaxSenderSkew before it.
func TestWebhookReceivedAtIsCasebots(t *testing.T) {
	cases := []struct {
		name     string
		sender   time.Time
		received time.Time
	}{
		{"2020", time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), t0},
		{"a minute ago", t0.Add(-time.Minute), t0.Add(-time.Minute)},
		{"ahead within the signature window", t0.Add(time.Minute), t0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			body := fmt.Sprintf(`{"external_id":"at-%d","customer":{"handle":"x"},"text":"hi","received_at":%q}`,
				i, tc.sender.Format(time.RFC3339))
			if w := f.serve(signed([]byte(body), t0)); w.Code != http.StatusAccepted {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
			all := f.tickets.All()
			if len(all) != 1 {
				t.Fatalf("%d tickets, want 1", len(all))
			}
			if tk := all[0]; !tk.ReceivedAt.Equal(tc.received) || !tk.SenderAt.Equal(tc.sender) {
				t.Errorf("received %s, sender %s; want %s, %s", tk.ReceivedAt, tk.SenderAt, tc.received, tc.sender)
			}
		})
	}
}

// TestWebhookDuplicate: a retry is the same ticket, answered 200 with
// duplicate set; it is queued for classification again only while the
// ticket is still unclassified (the first delivery's job was lost).
func TestWebhookDuplicate(t *testing.T) {
	tests := []struct {
		name       string
		classified bool // the ticket was classified between the deliveries
		enqueued   int
	}{
		{"still received", false, 2},
		{"classified", true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			first := f.serve(signed([]byte(validBody), t0))
			var a accepted
			if err := json.Unmarshal(first.Body.Bytes(), &a); err != nil {
				t.Fatal(err)
			}
			if tc.classified {
				if _, err := f.tickets.Update(context.Background(), a.TicketID, func(x *triage.Ticket) (triage.AuditEvent, error) {
					x.State = triage.StateAwaitingReview
					return triage.AuditEvent{Actor: "test", Action: "fixture"}, nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			// The retry is signed afresh a minute later, as a sender's retry is.
			f.clock.Advance(time.Minute)
			second := f.serve(signed([]byte(validBody), t0.Add(time.Minute)))
			if first.Code != http.StatusAccepted || second.Code != http.StatusOK {
				t.Fatalf("statuses %d, %d; bodies %s %s", first.Code, second.Code, first.Body, second.Body)
			}
			var b accepted
			if err := json.Unmarshal(second.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			if a.Duplicate || !b.Duplicate || a.TicketID != b.TicketID {
				t.Errorf("responses %+v then %+v, want the same ticket, second a duplicate", a, b)
			}
			if n := len(f.tickets.All()); n != 1 {
				t.Errorf("%d tickets stored, want 1", n)
			}
			if _, enq := f.calls(); len(enq) != tc.enqueued || enq[len(enq)-1] != a.TicketID {
				t.Errorf("enqueued %v, want %s %d times", enq, a.TicketID, tc.enqueued)
			}
			if f.enqueueErr != nil {
				t.Error(f.enqueueErr)
			}
		})
	}
}

func TestWebhookIntakeFailure(t *testing.T) {
	var enqueued bool
	h := NewWebhook(WebhookOptions{Secret: secret, Clock: triagetest.NewClock(t0),
		Intake: func(context.Context, triage.Inbound) (triage.Ticket, error) {
			return triage.Ticket{}, errors.New("disk full at /var/lib/casebot.db")
		},
		Enqueue: func(string) { enqueued = true },
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, signed([]byte(validBody), t0))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	e := decodeError(t, w)
	if e.Error != "unavailable" || !strings.Contains(e.Detail, "retry") || strings.Contains(w.Body.String(), "/var/lib") {
		t.Errorf("body %s: want retry advice without internals", w.Body)
	}
	if enqueued {
		t.Error("Enqueue called for a ticket that was not stored")
	}
}

func decodeError(t *testing.T, w *httptest.ResponseRecorder) apiError {
	t.Helper()
	var e apiError
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if e.Error == "" || e.Detail == "" {
		t.Errorf("error body %+v lacks error or detail", e)
	}
	return e
}

// TestWebhookRejects checks every refusal: its status, error code and field,
// that Intake was never called, and that a valid request after all of them
// is still stored.
func TestWebhookRejects(t *testing.T) {
	big := func(n int) []byte {
		b := []byte(`{"external_id":"big","customer":{"email":"a@example.com"},"text":"`)
		b = append(b, bytes.Repeat([]byte("x"), n-len(b)-2)...)
		return append(b, `"}`...)
	}
	body := func(s string) func() *http.Request { return func() *http.Request { return signed([]byte(s), t0) } }
	with := func(s string, fn func(r *http.Request)) func() *http.Request {
		return func() *http.Request { r := signed([]byte(s), t0); fn(r); return r }
	}
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
		field  string
	}{
		{"negative lifetime spend", body(`{"external_id":"l-1","customer":{"email":"a@example.com","lifetime_spend":-1},"text":"hi"}`), 400, "invalid_field", "customer.lifetime_spend"},
		{"lifetime spend not a number", body(`{"external_id":"l-2","customer":{"email":"a@example.com","lifetime_spend":"lots"},"text":"hi"}`), 400, "invalid_field", "customer.lifetime_spend"},
		{"GET", with(validBody, func(r *http.Request) { r.Method = http.MethodGet }), 405, "method_not_allowed", ""},
		{"PUT", with(validBody, func(r *http.Request) { r.Method = http.MethodPut }), 405, "method_not_allowed", ""},
		{"missing timestamp", with(validBody, func(r *http.Request) { r.Header.Del(HeaderTimestamp) }), 401, "missing_signature", ""},
		{"missing signature", with(validBody, func(r *http.Request) { r.Header.Del(HeaderSignature) }), 401, "missing_signature", ""},
		{"timestamp not a number", with(validBody, func(r *http.Request) { r.Header.Set(HeaderTimestamp, "yesterday") }), 401, "invalid_timestamp", ""},
		{"stale timestamp", func() *http.Request { return signed([]byte(validBody), t0.Add(-5*time.Minute-time.Second)) }, 401, "stale_timestamp", ""},
		{"future timestamp", func() *http.Request { return signed([]byte(validBody), t0.Add(5*time.Minute+time.Second)) }, 401, "stale_timestamp", ""},
		{"absurd timestamp", with(validBody, func(r *http.Request) { r.Header.Set(HeaderTimestamp, "-9223372036854775808") }), 401, "stale_timestamp", ""},
		{"signed with another secret", with(validBody, func(r *http.Request) {
			r.Header.Set(HeaderSignature, Sign([]byte("other"), t0.Unix(), []byte(validBody)))
		}), 401, "invalid_signature", ""},
		{"signature of another body", with(validBody, func(r *http.Request) {
			r.Header.Set(HeaderSignature, Sign(secret, t0.Unix(), []byte(validBody+" ")))
		}), 401, "invalid_signature", ""},
		{"signature for another timestamp", with(validBody, func(r *http.Request) {
			r.Header.Set(HeaderSignature, Sign(secret, t0.Unix()-1, []byte(validBody)))
		}), 401, "invalid_signature", ""},
		{"signature without version", with(validBody, func(r *http.Request) {
			r.Header.Set(HeaderSignature, strings.TrimPrefix(r.Header.Get(HeaderSignature), "v1="))
		}), 401, "invalid_signature", ""},
		{"signature in upper-case hex", with(validBody, func(r *http.Request) {
			r.Header.Set(HeaderSignature, "v1="+strings.ToUpper(strings.TrimPrefix(r.Header.Get(HeaderSignature), "v1=")))
		}), 401, "invalid_signature", ""},
		{"signature not hex", with(validBody, func(r *http.Request) { r.Header.Set(HeaderSignature, "v1=zz") }), 401, "invalid_signature", ""},
		{"body 256 KB + 1", body(string(big(DefaultMaxBody + 1))), 413, "body_too_large", ""},
		{"body 256 KB + 1 without length", with(string(big(DefaultMaxBody+1)), func(r *http.Request) { r.ContentLength = -1 }), 413, "body_too_large", ""},
		{"text/plain", with(validBody, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }), 415, "unsupported_media_type", ""},
		{"no content type", with(validBody, func(r *http.Request) { r.Header.Del("Content-Type") }), 415, "unsupported_media_type", ""},
		{"latin-1", with(validBody, func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=iso-8859-1") }), 415, "unsupported_media_type", ""},
		{"empty body", body(""), 400, "invalid_json", ""},
		{"invalid JSON", body(`{"external_id":"x",`), 400, "invalid_json", ""},
		{"syntax error", body(`{"external_id" "x"}`), 400, "invalid_json", ""},
		{"array", body(`[1]`), 400, "invalid_json", ""},
		{"null", body(`null`), 400, "invalid_json", ""},
		{"trailing object", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t"}{}`), 400, "invalid_json", ""},
		{"invalid UTF-8", body("{\"external_id\":\"a\",\"customer\":{\"email\":\"a@b.c\"},\"text\":\"caf\xe9\"}"), 400, "invalid_utf8", ""},
		{"unknown field", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","priority":"high"}`), 400, "unknown_field", "priority"},
		{"unknown nested field", body(`{"external_id":"a","customer":{"email":"a@b.c","phone":"1"},"text":"t"}`), 400, "unknown_field", "customer.phone"},
		{"long unknown field clipped", body(`{"` + strings.Repeat("k", 5000) + `":1}`), 400, "unknown_field", strings.Repeat("k", 128) + "…"},
		{"field in other case", body(`{"External_ID":"a","customer":{"email":"a@b.c"},"text":"t"}`), 400, "unknown_field", "External_ID"},
		{"repeated field", body(`{"external_id":"a","external_id":"b","customer":{"email":"a@b.c"},"text":"t"}`), 400, "duplicate_field", "external_id"},
		{"evaluation id", body(`{"id":"a","text":"t"}`), 400, "unknown_field", "id"},
		{"missing external_id", body(`{"customer":{"email":"a@b.c"},"text":"t"}`), 400, "missing_field", "external_id"},
		{"blank external_id", body(`{"external_id":"  ","customer":{"email":"a@b.c"},"text":"t"}`), 400, "missing_field", "external_id"},
		{"missing text", body(`{"external_id":"a","customer":{"email":"a@b.c"}}`), 400, "missing_field", "text"},
		{"blank text", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"\n "}`), 400, "missing_field", "text"},
		{"text and body", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","body":"b"}`), 400, "invalid_field", "body"},
		{"missing customer", body(`{"external_id":"a","text":"t"}`), 400, "missing_field", "customer"},
		{"customer without identity", body(`{"external_id":"a","customer":{"name":"Ann","vip":true},"text":"t"}`), 400, "missing_field", "customer"},
		{"external_id number", body(`{"external_id":7,"customer":{"email":"a@b.c"},"text":"t"}`), 400, "invalid_field", "external_id"},
		{"text object", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":{}}`), 400, "invalid_field", "text"},
		{"customer string", body(`{"external_id":"a","customer":"a@b.c","text":"t"}`), 400, "invalid_field", "customer"},
		{"customer.email number", body(`{"external_id":"a","customer":{"email":5},"text":"t"}`), 400, "invalid_field", "customer.email"},
		{"customer.vip string", body(`{"external_id":"a","customer":{"email":"a@b.c","vip":"yes"},"text":"t"}`), 400, "invalid_field", "customer.vip"},
		{"customer.tags string", body(`{"external_id":"a","customer":{"email":"a@b.c","tags":"gold"},"text":"t"}`), 400, "invalid_field", "customer.tags"},
		{"order.amount string", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","order":{"amount":"12"}}`), 400, "invalid_field", "order.amount"},
		{"attachments numbers", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","attachments":[1]}`), 400, "invalid_field", "attachments"},
		{"not an email", body(`{"external_id":"a","customer":{"email":"ann at example"},"text":"t"}`), 400, "invalid_field", "customer.email"},
		{"control character in external_id", body(`{"external_id":"a\u0000b","customer":{"email":"a@b.c"},"text":"t"}`), 400, "invalid_field", "external_id"},
		{"external_id too long", body(`{"external_id":"` + strings.Repeat("e", 257) + `","customer":{"email":"a@b.c"},"text":"t"}`), 400, "invalid_field", "external_id"},
		{"unknown channel", body(`{"external_id":"a","channel":"fax","customer":{"email":"a@b.c"},"text":"t"}`), 400, "invalid_field", "channel"},
		{"negative amount", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","order":{"amount":-1}}`), 400, "invalid_field", "order.amount"},
		{"huge amount", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","order":{"amount":1e300}}`), 400, "invalid_field", "order.amount"},
		{"bad currency", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","order":{"currency":"dollars"}}`), 400, "invalid_field", "order.currency"},
		{"ftp reply_url", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","reply_url":"ftp://x.example/r"}`), 400, "invalid_field", "reply_url"},
		{"relative reply_url", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","reply_url":"/reply"}`), 400, "invalid_field", "reply_url"},
		{"reply_url with credentials", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","reply_url":"https://u:p@x.example/r"}`), 400, "invalid_field", "reply_url"},
		{"received_at not RFC 3339", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","received_at":"03/03/2025"}`), 400, "invalid_field", "received_at"},
		{"received_at a number", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","received_at":1741000000}`), 400, "invalid_field", "received_at"},
		{"received_at in the future", body(`{"external_id":"a","customer":{"email":"a@b.c"},"text":"t","received_at":"2025-03-04T09:00:00Z"}`), 400, "invalid_field", "received_at"},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.serve(tt.req())
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			e := decodeError(t, w)
			if e.Error != tt.code || e.Field != tt.field {
				t.Errorf("error %q field %q, want %q %q (detail %q)", e.Error, e.Field, tt.code, tt.field, e.Detail)
			}
			if tt.status == 405 && w.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
			if strings.Contains(w.Body.String(), string(secret)) || strings.Contains(w.Body.String(), Sign(secret, t0.Unix(), []byte(validBody))) {
				t.Errorf("body %s echoes the secret or a valid signature", w.Body)
			}
			if n, _ := f.calls(); n != 0 {
				t.Fatalf("Intake called %d times for a refused request", n)
			}
		})
	}
	if n := len(f.tickets.All()); n != 0 {
		t.Fatalf("%d tickets stored from refused requests", n)
	}
	// Nothing lost: the same fixture still stores valid requests, including
	// ones at the edges of the limits.
	edges := []*http.Request{
		signed([]byte(validBody), t0),
		signed(big(DefaultMaxBody), t0.Add(-5*time.Minute)),
		signed([]byte(`{"external_id":"edge","customer":{"handle":"h"},"text":"t"}`), t0.Add(5*time.Minute)),
	}
	for i, r := range edges {
		if w := f.serve(r); w.Code != http.StatusAccepted {
			t.Errorf("edge request %d: status %d, body %.200s", i, w.Code, w.Body)
		}
	}
	if n := len(f.tickets.All()); n != len(edges) {
		t.Errorf("%d tickets stored, want %d", n, len(edges))
	}
}

func TestNewWebhookPanicsOnWiringMistakes(t *testing.T) {
	intake := func(context.Context, triage.Inbound) (triage.Ticket, error) { return triage.Ticket{}, nil }
	for name, opts := range map[string]WebhookOptions{
		"no secret":  {Intake: intake, Enqueue: func(string) {}},
		"no intake":  {Secret: secret, Enqueue: func(string) {}},
		"no enqueue": {Secret: secret, Intake: intake},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			NewWebhook(opts)
		})
	}
}

// oracleTicket is an independent reading of the schema with encoding/json,
// stricter than the spec in nothing, so a body the webhook accepts must
// decode here too.
type oracleTicket struct {
	ExternalID string `json:"external_id"`
	Channel    string `json:"channel"`
	Customer   *struct {
		Email  string   `json:"email"`
		Handle string   `json:"handle"`
		Name   string   `json:"name"`
		ID     string   `json:"id"`
		VIP    bool     `json:"vip"`
		Tags   []string `json:"tags"`
	} `json:"customer"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
	Body    string `json:"body"`
	Order   *struct {
		Ref      string  `json:"ref"`
		Amount   float64 `json:"amount"`
		Currency string  `json:"currency"`
	} `json:"order"`
	Attachments []string `json:"attachments"`
	ReplyURL    string   `json:"reply_url"`
	ReceivedAt  string   `json:"received_at"`
}

func FuzzWebhookBody(f *testing.F) {
	for _, s := range []string{validBody, `{}`, `{"external_id":"a","customer":{"id":"1"},"text":"t"}`,
		`{"external_id":"a","customer":{"email":"a@b"},"body":"t","order":{"amount":1e2}}`,
		`{"external_id":"a","customer":{"email":"a@b"},"text":"t","attachments":null}`,
		`{"external_id":"a","customer":{"email":"a@b","tags":[]},"text":"t","x":1}`, "\xff", `[`, `"s"`} {
		f.Add([]byte(s))
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		before, _ := fx.calls()
		w := fx.serve(signed(body, t0))
		after, _ := fx.calls()
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("response body is not JSON: %q", w.Body)
		}
		switch w.Code {
		case http.StatusOK, http.StatusAccepted:
			if after != before+1 {
				t.Fatalf("status %d with %d Intake calls", w.Code, after-before)
			}
			var o oracleTicket
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			err := dec.Decode(&o)
			text := strings.TrimSpace(o.Text + o.Body)
			switch {
			case err != nil:
				t.Fatalf("accepted a body encoding/json refuses: %v\n%q", err, body)
			case strings.TrimSpace(o.ExternalID) == "" || text == "" || o.Customer == nil ||
				strings.TrimSpace(o.Customer.Email+o.Customer.Handle+o.Customer.ID) == "":
				t.Fatalf("accepted a body without a required field: %q", body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if after != before {
				t.Fatalf("status %d but Intake called", w.Code)
			}
		default:
			t.Fatalf("status %d for a signed body: %s", w.Code, w.Body)
		}
	})
}

func BenchmarkWebhookIntake(b *testing.B) {
	body := []byte(validBody)
	clock := triagetest.NewClock(t0)
	h := NewWebhook(WebhookOptions{Secret: secret, Clock: clock,
		Intake: func(_ context.Context, in triage.Inbound) (triage.Ticket, error) {
			return triage.Ticket{ID: "T1"}, nil
		},
		Enqueue: func(string) {},
	})
	ts, sig := strconv.FormatInt(t0.Unix(), 10), Sign(secret, t0.Unix(), body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/v1/tickets", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(HeaderTimestamp, ts)
		r.Header.Set(HeaderSignature, sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

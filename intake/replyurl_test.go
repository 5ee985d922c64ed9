package intake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// TestWebhookReplyURLTargets: a reply_url naming an internal address, a
// localhost name or a numeric host some resolvers read as an address is
// refused at intake with 400 naming reply_url, unless http.reply_url_allow
// permits it; public hosts pass.
func TestWebhookReplyURLTargets(t *testing.T) {
	cases := []struct {
		name  string
		url   string
		allow []string
		ok    bool
	}{
		{name: "public name", url: "https://hooks.example.com/reply?c=1", ok: true},
		{name: "public IPv4", url: "http://93.184.216.34/r", ok: true},
		{name: "public IPv6", url: "https://[2606:4700::1111]:8443/r", ok: true},
		{name: "just outside 172.16/12", url: "http://172.32.0.1/r", ok: true},
		{name: "loopback", url: "http://127.0.0.1:8080/r"},
		{name: "other loopback", url: "http://127.5.5.5/r"},
		{name: "IPv6 loopback", url: "http://[::1]:8080/r"},
		{name: "localhost", url: "http://localhost:8080/r"},
		{name: "localhost upper-case, fully qualified", url: "http://LocalHost./r"},
		{name: "under localhost", url: "http://api.localhost/r"},
		{name: "cloud metadata", url: "http://169.254.169.254/latest/meta-data/"},
		{name: "10/8", url: "http://10.1.2.3/r"},
		{name: "172.16/12", url: "https://172.31.255.255/r"},
		{name: "192.168/16", url: "http://192.168.1.1/r"},
		{name: "CGNAT", url: "http://100.64.0.1/r"},
		{name: "unspecified", url: "http://0.0.0.0:8080/r"},
		{name: "this network", url: "http://0.1.2.3/r"},
		{name: "IPv6 unspecified", url: "http://[::]/r"},
		{name: "unique local", url: "http://[fd12:3456::1]/r"},
		{name: "fc00::/7", url: "http://[fc00::1]/r"},
		{name: "IPv6 link-local", url: "http://[fe80::1%25eth0]/r"},
		{name: "multicast", url: "http://224.0.0.1/r"},
		{name: "IPv6 multicast", url: "http://[ff02::1]/r"},
		{name: "broadcast", url: "http://255.255.255.255/r"},
		{name: "IPv4-mapped loopback", url: "http://[::ffff:127.0.0.1]/r"},
		{name: "NAT64 of the metadata address", url: "http://[64:ff9b::a9fe:a9fe]/r"},
		{name: "short IPv4 form", url: "http://127.1/r"},
		{name: "decimal IPv4 form", url: "http://2130706433/r"},
		{name: "hex IPv4 form", url: "http://0x7f000001/r"},
		{name: "allowed loopback with port", url: "http://127.0.0.1:41234/reply", allow: []string{"127.0.0.1/32"}, ok: true},
		{name: "localhost when loopback allowed", url: "http://localhost:41234/reply", allow: []string{"127.0.0.1/32"}, ok: true},
		{name: "allowed private range", url: "http://10.0.0.7/r", allow: []string{"10.0.0.0/8"}, ok: true},
		{name: "other private address", url: "http://10.0.0.7/r", allow: []string{"10.0.0.8"}},
		{name: "allowed host name", url: "http://localhost/r", allow: []string{"LOCALHOST"}, ok: true},
		{name: "allow-list does not open the metadata address", url: "http://169.254.169.254/", allow: []string{"10.0.0.0/8", "localhost"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stored := 0
			h := NewWebhook(WebhookOptions{Secret: secret, Clock: triagetest.NewClock(t0), ReplyURLAllow: mustAllow(tc.allow...),
				Intake: func(_ context.Context, in triage.Inbound) (triage.Ticket, error) {
					stored++
					return triage.Ticket{ID: "CB-1", State: triage.StateTriaged, ReplyTo: in.ReplyTo}, nil
				},
				Enqueue: func(string) {}})
			body, _ := json.Marshal(map[string]any{"external_id": "a", "customer": map[string]string{"email": "a@example.com"},
				"text": "t", "reply_url": tc.url})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, signed(body, t0))
			if tc.ok {
				if w.Code != http.StatusAccepted || stored != 1 {
					t.Fatalf("status %d, stored %d; want 202: %s", w.Code, stored, w.Body)
				}
				return
			}
			var e apiError
			_ = json.Unmarshal(w.Body.Bytes(), &e)
			if w.Code != http.StatusBadRequest || e.Error != CodeInvalidField || e.Field != "reply_url" || stored != 0 {
				t.Fatalf("status %d error %q field %q, stored %d; want 400 invalid_field reply_url: %s",
					w.Code, e.Error, e.Field, stored, w.Body)
			}
			if !strings.Contains(e.Detail, "reply URL") {
				t.Errorf("detail %q", e.Detail)
			}
		})
	}
}

// TestReplyClientChecksAtConnect: the Outbound's own client checks the
// address a name resolved to when it connects, so a name that passes
// intake (or resolves differently later) cannot reach an internal host;
// the allow-list opens it.
func TestReplyClientChecksAtConnect(t *testing.T) {
	rc := newReceiver(t, 200)
	u, err := url.Parse(rc.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	byName := "http://localhost:" + u.Port() + "/reply"
	cases := []struct {
		name  string
		allow []string
		ok    bool
	}{
		{name: "no allow-list"},
		{name: "other range allowed", allow: []string{"10.0.0.0/8"}},
		{name: "loopback allowed", allow: []string{"127.0.0.0/8", "::1"}, ok: true},
		{name: "host name allowed", allow: []string{"localhost"}, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tickets := newOutFixture(t, 1).tickets
			o := NewOutbound(OutboundOptions{Outbox: tickets, Ticket: tickets.Get, Secret: secret,
				ReplyURLAllow: mustAllow(tc.allow...)})
			tk, err := tickets.Create(context.Background(), &triage.Ticket{Source: triage.SourceWebhook, ExternalID: "x"}, triage.Customer{})
			if err != nil {
				t.Fatal(err)
			}
			before := len(rc.requests())
			err = o.send(context.Background(), triage.Post{ID: "P1", TicketID: tk.ID, ThreadTS: byName, Text: "t"})
			got := len(rc.requests()) - before
			if tc.ok {
				if err != nil || got != 1 {
					t.Fatalf("send: %v, %d requests; want delivered", err, got)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrInternalAddress) || got != 0 {
				t.Fatalf("send: %v, %d requests; want refused before connecting", err, got)
			}
			if permanent, _ := o.classify(err); !permanent {
				t.Error("a refused address is retried")
			}
		})
	}
}

// TestParseReplyURLAllow: entries are host names, addresses or prefixes.
func TestParseReplyURLAllow(t *testing.T) {
	for _, tc := range []struct {
		entry string
		ok    bool
	}{
		{"127.0.0.1/32", true},
		{"10.0.0.0/8", true},
		{"fd00::/8", true},
		{"192.168.1.20", true},
		{"::1", true},
		{"hooks.internal", true},
		{"Helpdesk.LAN.", true},
		{"10.0.0.1/8", false},
		{"fe80::1%eth0", false},
		{"http://hooks.internal", false},
		{"hooks.internal:8080", false},
		{"*.internal", false},
		{"127.1", false},
		{"", false},
	} {
		_, err := ParseReplyURLAllow([]string{tc.entry})
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok %v", tc.entry, err, tc.ok)
		}
	}
}

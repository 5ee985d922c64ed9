package triage_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/casebot/casebot/triage"
)

func TestParseSlackReplyTo(t *testing.T) {
	tests := []struct {
		in          string
		channel, ts string
		ok          bool
	}{
		{"C0INTAKE/1700000000.000100", "C0INTAKE", "1700000000.000100", true},
		{triage.SlackReplyTo("G0PRIVATE", "1.2"), "G0PRIVATE", "1.2", true},
		{"C0INTAKE", "", "", false},
		{"C0INTAKE/", "", "", false},
		{"/1700000000.000100", "", "", false},
		{"", "", "", false},
		{"C0INTAKE/1700000000.000100/extra", "", "", false},
		{"<abc@mail.example.com>", "", "", false},
	}
	for _, tc := range tests {
		channel, ts, ok := triage.ParseSlackReplyTo(tc.in)
		if channel != tc.channel || ts != tc.ts || ok != tc.ok {
			t.Errorf("ParseSlackReplyTo(%q) = %q, %q, %v; want %q, %q, %v", tc.in, channel, ts, ok, tc.channel, tc.ts, tc.ok)
		}
	}
}

// FuzzParseSlackReplyTo: whatever a ReplyTo holds, a parsed address has two
// non-empty parts without a slash and builds back to the same string.
func FuzzParseSlackReplyTo(f *testing.F) {
	for _, s := range []string{"C0INTAKE/1700000000.000100", "C0/", "/", "a/b/c", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		channel, ts, ok := triage.ParseSlackReplyTo(s)
		if !ok {
			if channel != "" || ts != "" {
				t.Errorf("ParseSlackReplyTo(%q) refused but returned %q, %q", s, channel, ts)
			}
			return
		}
		if channel == "" || ts == "" || strings.Contains(channel, "/") || strings.Contains(ts, "/") {
			t.Errorf("ParseSlackReplyTo(%q) = %q, %q", s, channel, ts)
		}
		if back := triage.SlackReplyTo(channel, ts); back != s {
			t.Errorf("SlackReplyTo(ParseSlackReplyTo(%q)) = %q", s, back)
		}
	})
}

func TestCustomerLifetimeSpend(t *testing.T) {
	type order struct {
		ref    string
		amount triage.Money
	}
	usd := func(major int64) triage.Money { return triage.Money{Minor: major * 100, Currency: "USD"} }
	tests := []struct {
		name     string
		start    triage.Customer
		orders   []order
		reported triage.Money
		want     triage.Money
	}{
		{"orders add up", triage.Customer{}, []order{{"A1", usd(100)}, {"A2", usd(250)}}, triage.Money{}, usd(350)},
		{"an order counts once", triage.Customer{}, []order{{"A1", usd(100)}, {"A1", usd(100)}}, triage.Money{}, usd(100)},
		{"no reference counts each time", triage.Customer{}, []order{{"", usd(100)}, {"", usd(100)}}, triage.Money{}, usd(200)},
		{"configured currency adds", triage.Customer{}, []order{{"A1", triage.Money{Minor: 1000}}, {"A2", usd(10)}}, triage.Money{}, usd(20)},
		{"other currency left out", triage.Customer{}, []order{{"A1", usd(100)}, {"A2", triage.Money{Minor: 900000, Currency: "JPY"}}}, triage.Money{}, usd(100)},
		{"reported larger wins", triage.Customer{}, []order{{"A1", usd(100)}}, usd(6000), usd(6000)},
		{"summed larger wins", triage.Customer{}, []order{{"A1", usd(7000)}}, usd(6000), usd(7000)},
		{"reported in another currency wins", triage.Customer{}, []order{{"A1", usd(100)}}, triage.Money{Minor: 500, Currency: "EUR"}, triage.Money{Minor: 500, Currency: "EUR"}},
		{"a stored lifetime is kept as reported", triage.Customer{Lifetime: usd(5000)}, []order{{"A1", usd(100)}}, triage.Money{}, usd(5000)},
		{"nothing", triage.Customer{}, nil, triage.Money{}, triage.Money{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.start
			for _, o := range tt.orders {
				c.AddOrder(o.ref, o.amount)
			}
			c.ReportSpend(tt.reported)
			if c.Lifetime != tt.want {
				t.Errorf("Lifetime = %v, want %v", c.Lifetime, tt.want)
			}
		})
	}
}

func TestCustomerEmails(t *testing.T) {
	c := triage.Customer{Email: "a@x.example", Emails: []string{"A@X.example", "b@y.example"}}
	if got, want := c.AllEmails(), []string{"a@x.example", "b@y.example"}; !slices.Equal(got, want) {
		t.Errorf("AllEmails = %q, want %q", got, want)
	}
	for addr, want := range map[string]bool{"a@x.example": true, " B@Y.example": true, "c@z.example": false, "": false} {
		if got := c.HasEmail(addr); got != want {
			t.Errorf("HasEmail(%q) = %v, want %v", addr, got, want)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/intake"
	"github.com/casebot/casebot/triage"
)

// TestE2EVIPByLifetimeSpend is finding 2 of issue 9 end to end: order
// amounts that arrive through the webhook add up in the bbolt store to the
// customer's lifetime spend (a redelivery counted once), a reported
// lifetime_spend counts too, and once the spend reaches the VIP threshold
// (USD 5000 by default) the rules flag the ticket vip and its card mentions
// the VIP owner.
func TestE2EVIPByLifetimeSpend(t *testing.T) {
	e := newE2E(t, slackfake.Options{})
	e.sys.Secrets.WebhookSecret = testWebhookSecret
	srv := httptest.NewServer(e.sys.Handler())
	t.Cleanup(srv.Close)
	e.start()
	vipOwner := e.sys.Config.Owners["vip"][0]

	tests := []struct {
		name     string
		ticket   intake.WebhookTicket
		lifetime triage.Money
		vip      bool
	}{
		{"first order below the threshold",
			intake.WebhookTicket{ExternalID: "o-1", Customer: intake.WebhookCustomer{Email: "carla@example.com", Handle: "@carla"},
				Text: "Where is my sofa?", Order: &intake.WebhookOrder{Ref: "1001", Amount: 3000, Currency: "USD"}},
			triage.Money{Minor: 300000, Currency: "USD"}, false},
		{"the same delivery again counts once",
			intake.WebhookTicket{ExternalID: "o-1", Customer: intake.WebhookCustomer{Email: "carla@example.com", Handle: "@carla"},
				Text: "Where is my sofa?", Order: &intake.WebhookOrder{Ref: "1001", Amount: 3000, Currency: "USD"}},
			triage.Money{Minor: 300000, Currency: "USD"}, false},
		{"a second order, through the handle, still below",
			intake.WebhookTicket{ExternalID: "o-2", Customer: intake.WebhookCustomer{Handle: "carla"},
				Text: "And the lamp?", Order: &intake.WebhookOrder{Ref: "1002", Amount: 1500, Currency: "USD"}},
			triage.Money{Minor: 450000, Currency: "USD"}, false},
		{"a third order reaches the threshold",
			intake.WebhookTicket{ExternalID: "o-3", Customer: intake.WebhookCustomer{Email: "carla@example.com"},
				Text: "The rug is the wrong colour.", Order: &intake.WebhookOrder{Ref: "1003", Amount: 600, Currency: "USD"}},
			triage.Money{Minor: 510000, Currency: "USD"}, true},
		{"a reported lifetime spend above the threshold",
			intake.WebhookTicket{ExternalID: "o-4", Customer: intake.WebhookCustomer{Email: "dan@example.com", LifetimeSpend: 8000},
				Text: "My parcel is late.", Order: &intake.WebhookOrder{Ref: "2001", Amount: 40, Currency: "USD"}},
			triage.Money{Minor: 800000, Currency: "USD"}, true},
	}
	// One after another on one System, so no subtests: e's helpers fail
	// the parent test.
	for _, tt := range tests {
		id := postTicket(t, srv.URL, tt.ticket)
		e.waitFor("ticket "+id+" classified", func() bool { return e.ticket(id).State != triage.StateReceived })
		tk := e.ticket(id)
		c, err := e.sys.DB.Customer(context.Background(), tk.CustomerID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Lifetime != tt.lifetime {
			t.Errorf("%s: lifetime spend %v, want %v", tt.name, c.Lifetime, tt.lifetime)
		}
		vip := slices.Contains(tk.Classification.Flags, triage.FlagVIP)
		if vip != tt.vip {
			t.Fatalf("%s: vip flag %v, want %v (flags %v)", tt.name, vip, tt.vip, tk.Classification.Flags)
		}
		if !tt.vip {
			continue
		}
		if !slices.Contains(tk.Route.Mentions, vipOwner) {
			t.Errorf("%s: route mentions %v, want the VIP owner %s", tt.name, tk.Route.Mentions, vipOwner)
		}
		e.waitFor("the card of "+id+" naming the VIP owner", func() bool {
			return slices.ContainsFunc(e.cards(tk.Route.Channel)[id], func(m slackfake.Message) bool {
				return strings.Contains(string(m.Blocks), "@"+vipOwner)
			})
		})
	}
}

// postTicket sends one signed webhook ticket and returns its ticket ID.
func postTicket(t *testing.T, url string, tk intake.WebhookTicket) string {
	t.Helper()
	body, err := json.Marshal(tk)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url+"/v1/tickets", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(intake.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(intake.HeaderSignature, intake.Sign([]byte(testWebhookSecret), ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r webhookResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.TicketID == "" {
		t.Fatalf("status %d, ticket %q, %v", resp.StatusCode, r.TicketID, err)
	}
	return r.TicketID
}

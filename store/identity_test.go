package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/casebot/casebot/triage"
)

// TestMergeKeepsEveryAddress is finding 1 of issue 9 at the store: a
// second address merged through a shared handle or Slack ID is kept on the
// customer, and each ticket keeps the address it came from as its reply
// address, never the customer's first one.
func TestMergeKeepsEveryAddress(t *testing.T) {
	type step struct {
		customer triage.Customer
		reply    string // the ticket's ReplyAddress
	}
	tests := []struct {
		name   string
		steps  []step
		emails []string // the customer's AllEmails after all steps
	}{
		{
			name: "second address through a shared handle",
			steps: []step{
				{triage.Customer{Email: "a@x.example", Handle: "h"}, "a@x.example"},
				{triage.Customer{Email: "b@y.example", Handle: "h"}, "b@y.example"},
				{triage.Customer{Handle: "h"}, ""},
				{triage.Customer{Email: "A@X.example"}, "A@X.example"},
			},
			emails: []string{"a@x.example", "b@y.example"},
		},
		{
			name: "second address through a Slack ID",
			steps: []step{
				{triage.Customer{Email: "a@x.example", SlackUserID: "U1"}, "a@x.example"},
				{triage.Customer{Email: " b@y.example ", SlackUserID: "U1"}, "b@y.example"},
				{triage.Customer{Email: "c@z.example", SlackUserID: "U1"}, "c@z.example"},
			},
			emails: []string{"a@x.example", "b@y.example", "c@z.example"},
		},
		{
			name: "an address owned by another customer is not merged",
			steps: []step{
				{triage.Customer{Email: "b@y.example"}, "b@y.example"},
				{triage.Customer{Email: "a@x.example", Handle: "h"}, "a@x.example"},
				{triage.Customer{Handle: "h", Email: "b@y.example"}, "b@y.example"},
			},
			emails: []string{"b@y.example"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			ctx := context.Background()
			var first string
			for i, s := range tt.steps {
				got := mustCreate(t, db, newTicket(triage.SourceEmail, fmt.Sprint(i), t0), s.customer)
				if i == 0 {
					first = got.CustomerID
				}
				stored, err := db.Get(ctx, got.ID)
				if err != nil {
					t.Fatal(err)
				}
				if stored.ReplyAddress != s.reply {
					t.Errorf("step %d: ticket %s ReplyAddress %q, want %q", i, got.ID, stored.ReplyAddress, s.reply)
				}
			}
			c, err := db.Customer(ctx, first)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.AllEmails(); !slices.Equal(got, tt.emails) {
				t.Errorf("customer %s emails %q, want %q", c.ID, got, tt.emails)
			}
		})
	}
}

// TestEraseRemovesEveryIdentity: erasing a merged customer frees every
// address, Slack ID and handle it held, so none of them files a later
// ticket under a record that no longer exists.
func TestEraseRemovesEveryIdentity(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	a := mustCreate(t, db, newTicket(triage.SourceEmail, "1", t0), triage.Customer{Email: "a@x.example", Handle: "h"})
	mustCreate(t, db, newTicket(triage.SourceEmail, "2", t0), triage.Customer{Email: "b@y.example", Handle: "h", SlackUserID: "U1"})
	mustCreate(t, db, newTicket(triage.SourceSlack, "3", t0), triage.Customer{SlackUserID: "U2", Handle: "h"})
	if _, err := db.EraseCustomer(ctx, a.CustomerID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Customer(ctx, a.CustomerID); !errors.Is(err, triage.ErrNotFound) {
		t.Fatalf("customer after erasure: %v, want not found", err)
	}
	for i, c := range []triage.Customer{{Email: "a@x.example"}, {Email: "B@y.example"}, {Handle: "@h"}, {SlackUserID: "U1"}, {SlackUserID: "U2"}} {
		got := mustCreate(t, db, newTicket(triage.SourceWebhook, fmt.Sprint("after-", i), t0), c)
		if got.CustomerID == a.CustomerID {
			t.Errorf("%+v filed under the erased customer %s", c, a.CustomerID)
		}
		stored, err := db.Customer(ctx, got.CustomerID)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored.AllEmails()) > 1 {
			t.Errorf("%+v: new customer carries erased addresses %q", c, stored.AllEmails())
		}
	}
}

// TestLifetimeSpendSumsOrders is finding 2 of issue 9 at the store: the
// order amounts of a customer's tickets add up to the lifetime spend, in
// the Create transaction, each order once and a redelivery not at all; a
// reported spend counts when it is larger.
func TestLifetimeSpendSumsOrders(t *testing.T) {
	usd := func(major int64) triage.Money { return triage.Money{Minor: major * 100, Currency: "USD"} }
	type step struct {
		ext      string
		customer triage.Customer
		ref      string
		amount   triage.Money
	}
	tests := []struct {
		name  string
		steps []step
		want  triage.Money
	}{
		{"orders add up across identities", []step{
			{"1", triage.Customer{Email: "a@x.example", Handle: "h"}, "O1", usd(2000)},
			{"2", triage.Customer{Handle: "h"}, "O2", usd(1500)},
			{"3", triage.Customer{Email: "a@x.example"}, "", usd(1600)},
		}, usd(5100)},
		{"a redelivery counts once", []step{
			{"1", triage.Customer{Email: "a@x.example"}, "O1", usd(2000)},
			{"1", triage.Customer{Email: "a@x.example"}, "O1", usd(2000)},
		}, usd(2000)},
		{"two tickets about one order count it once", []step{
			{"1", triage.Customer{Email: "a@x.example"}, "O1", usd(2000)},
			{"2", triage.Customer{Email: "a@x.example"}, "O1", usd(2000)},
		}, usd(2000)},
		{"reported spend when larger", []step{
			{"1", triage.Customer{Email: "a@x.example"}, "O1", usd(200)},
			{"2", triage.Customer{Email: "a@x.example", Lifetime: usd(6000)}, "O2", usd(100)},
		}, usd(6000)},
		{"summed spend when larger", []step{
			{"1", triage.Customer{Email: "a@x.example", Lifetime: usd(100)}, "O1", usd(200)},
		}, usd(200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			ctx := context.Background()
			var id string
			for _, s := range tt.steps {
				tk := newTicket(triage.SourceWebhook, s.ext, t0)
				tk.OrderRef, tk.Classification.Amount = s.ref, s.amount
				got, err := db.Create(ctx, tk, s.customer)
				if err != nil && !errors.Is(err, triage.ErrDuplicate) {
					t.Fatal(err)
				}
				id = got.CustomerID
			}
			c, err := db.Customer(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Lifetime != tt.want {
				t.Errorf("lifetime %v, want %v", c.Lifetime, tt.want)
			}
		})
	}
}

// TestTicketKeepsItsSlackAuthor: two Slack users merged into one customer
// through a shared email each stay the author of their own ticket.
func TestTicketKeepsItsSlackAuthor(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	first, err := db.Create(ctx, &triage.Ticket{Source: triage.SourceManual, ExternalID: "a", Body: "one"},
		triage.Customer{Email: "ann@example.com", SlackUserID: "U0ANN0001"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := db.Create(ctx, &triage.Ticket{Source: triage.SourceManual, ExternalID: "b", Body: "two"},
		triage.Customer{Email: "ann@example.com", SlackUserID: "U0ANN0002"})
	if err != nil {
		t.Fatal(err)
	}
	if first.CustomerID != second.CustomerID {
		t.Fatalf("customers %s and %s, want one merged by email", first.CustomerID, second.CustomerID)
	}
	if first.SlackAuthor != "U0ANN0001" || second.SlackAuthor != "U0ANN0002" {
		t.Errorf("authors %q and %q, want each ticket's own", first.SlackAuthor, second.SlackAuthor)
	}
	c, err := db.Customer(ctx, second.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	if second.IsSlackAuthor(c, "U0ANN0001") || !second.IsSlackAuthor(c, "U0ANN0002") {
		t.Errorf("IsSlackAuthor of the second ticket wrong for record %+v", c)
	}
}

package intake

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/emersion/go-message/mail"

	"github.com/casebot/casebot/triage"
)

// mergedThroughHandle stores two webhook tickets that merge b@y.example
// into the customer of a@x.example through the shared handle h, as a chat
// widget that knows both addresses would.
func mergedThroughHandle(t *testing.T, d *desk) {
	t.Helper()
	ctx := context.Background()
	for _, in := range []triage.Inbound{
		{Source: triage.SourceWebhook, ExternalID: "w1", Body: "hi", Customer: triage.Customer{Email: "a@x.example", Handle: "h", Name: "Ann"}},
		{Source: triage.SourceWebhook, ExternalID: "w2", Body: "hi", Customer: triage.Customer{Email: "b@y.example", Handle: "h", Name: "Bo"}},
	} {
		if _, err := d.triager.Intake(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMailboxAnswersTheAddressATicketCameFrom is finding 1 of issue 9 end
// to end over IMAP and SMTP: customer A writes from a@x with handle h, then
// from b@y with the same handle. b's email ticket is answered at b@y, a
// thread reply from b@y is appended to it, and a reply in that thread from
// a@x, although the same merged customer, becomes its own ticket answered
// at a@x.
func TestMailboxAnswersTheAddressATicketCameFrom(t *testing.T) {
	env := startIMAP(t, imapConfig{caps: capsPoll})
	srv := startSMTP(t, nil, nil)
	md := newMailDesk(t, srv, nil)
	mergedThroughHandle(t, md.desk)
	first := mail1("Bo <b@y.example>", "b1@y.example", "Broken lamp", "My lamp arrived broken.")
	again := mail1("b@y.example", "b2@y.example", "Re: Broken lamp", "Here is a photo.",
		"In-Reply-To: <b1@y.example>", "References: <b1@y.example>")
	other := mail1("a@x.example", "a1@x.example", "Re: Broken lamp", "Is this about my order?",
		"In-Reply-To: <b1@y.example>", "References: <b1@y.example>")
	env.deliver(t, first, again, other)
	run(t, md.options(env.addr))
	waitFor(t, "all marked seen", allSeen(t, env.client(t)))

	var lamp, fromA triage.Ticket
	for _, tk := range md.tickets.All() {
		switch tk.ExternalID {
		case "b1@y.example":
			lamp = tk
		case "a1@x.example":
			fromA = tk
		case "b2@y.example":
			t.Errorf("b's own thread reply became ticket %s", tk.ID)
		}
	}
	if lamp.ID == "" || fromA.ID == "" {
		t.Fatalf("b's ticket %q, a's ticket %q: want both", lamp.ID, fromA.ID)
	}
	if lamp.ReplyAddress != "b@y.example" || len(lamp.Entries) != 1 || lamp.Entries[0].Author != "b@y.example" {
		t.Errorf("b's ticket: reply address %q, entries %+v; want b@y.example and b's photo", lamp.ReplyAddress, lamp.Entries)
	}
	if fromA.CustomerID != lamp.CustomerID || fromA.ReplyAddress != "a@x.example" {
		t.Errorf("a's ticket: customer %s (b's %s), reply address %q", fromA.CustomerID, lamp.CustomerID, fromA.ReplyAddress)
	}

	ctx := context.Background()
	for _, tk := range []triage.Ticket{lamp, fromA} {
		classified, err := md.triager.Classify(ctx, tk.ID, triage.Customer{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := md.triager.Approve(ctx, tk.ID, "U-AGENT", classified.DraftVersion, "Thanks, we are on it."); err != nil {
			t.Fatal(err)
		}
	}
	md.mailer.drain(ctx)
	_, accepted := srv.received()
	if to, want := recipients(accepted), [][]string{{"b@y.example"}, {"a@x.example"}}; !slices.EqualFunc(to, want, slices.Equal) {
		t.Errorf("replies went to %v, want %v", to, want)
	}
}

// TestMailerRecipient: every email about a ticket (the acknowledgement, a
// reply, a follow-up: all are its outbox posts) goes to the address the
// ticket came from; a ticket stored before tickets kept one goes to its
// customer's address only when there is exactly one.
func TestMailerRecipient(t *testing.T) {
	tests := []struct {
		name   string
		in     triage.Inbound
		legacy bool // the ticket has no ReplyAddress, as one stored before it existed
		to     string
		toName string
	}{
		{"merged address", triage.Inbound{Customer: triage.Customer{Email: "b@y.example", Handle: "h", Name: "Bo"}}, false, "b@y.example", ""},
		{"first address", triage.Inbound{Customer: triage.Customer{Email: "a@x.example", Handle: "h"}}, false, "a@x.example", "Ann"},
		{"legacy, customer with one address", triage.Inbound{Customer: triage.Customer{Email: "c@z.example", Name: "Cy"}}, true, "c@z.example", "Cy"},
		{"legacy, customer with several addresses", triage.Inbound{Customer: triage.Customer{Email: "b@y.example"}}, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, nil, nil)
			md := newMailDesk(t, srv, nil)
			mergedThroughHandle(t, md.desk)
			ctx := context.Background()
			in := tt.in
			in.Source, in.ExternalID, in.Body, in.ReplyTo = triage.SourceEmail, "m1@example", "Where is my order?", "m1@example"
			tk, err := md.triager.Intake(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.legacy {
				_, err := md.tickets.Update(ctx, tk.ID, func(tk *triage.Ticket) (triage.AuditEvent, error) {
					tk.ReplyAddress = ""
					return triage.AuditEvent{Actor: triage.ActorSystem, Action: "test"}, nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			classified, err := md.triager.Classify(ctx, tk.ID, triage.Customer{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := md.triager.Approve(ctx, tk.ID, "U-AGENT", classified.DraftVersion, "On its way."); err != nil {
				t.Fatal(err)
			}
			md.mailer.drain(ctx)
			_, accepted := srv.received()
			if tt.to == "" {
				if len(accepted) != 0 {
					t.Errorf("sent to %v, want nothing sent", accepted[0].to)
				}
				if f := md.failures(); len(f) != 1 || !errors.Is(f[0].err, ErrMailRefused) {
					t.Errorf("failures %v, want one refusal", f)
				}
				return
			}
			if len(accepted) != 1 || !slices.Equal(accepted[0].to, []string{tt.to}) {
				t.Fatalf("%d messages accepted (%v), want one to %s", len(accepted), recipients(accepted), tt.to)
			}
			r, err := mail.CreateReader(bytes.NewReader(accepted[0].data))
			if err != nil {
				t.Fatal(err)
			}
			to, err := r.Header.AddressList("To")
			if err != nil || len(to) != 1 || to[0].Address != tt.to || to[0].Name != tt.toName {
				t.Errorf("To header %v (%v), want %q <%s>", to, err, tt.toName, tt.to)
			}
		})
	}
}

// recipients lists the envelope recipients of each accepted message.
func recipients(accepted []smtpMessage) [][]string {
	var to [][]string
	for _, m := range accepted {
		to = append(to, m.to)
	}
	return to
}

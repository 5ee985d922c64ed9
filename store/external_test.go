package store

import (
	"context"
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

func TestTicketByExternal(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	mail := mustCreate(t, db, newTicket(triage.SourceEmail, "a1@example.com", t0), triage.Customer{Email: "a@example.com"})
	hook := mustCreate(t, db, newTicket(triage.SourceWebhook, "a1@example.com", t0), triage.Customer{Email: "b@example.com"})
	mustCreate(t, db, newTicket(triage.SourceEmail, "", t0), triage.Customer{Email: "c@example.com"})

	tests := []struct {
		name   string
		src    triage.Source
		ext    string
		wantID string
	}{
		{"email", triage.SourceEmail, "a1@example.com", mail.ID},
		// The same external ID from another source is another message.
		{"webhook", triage.SourceWebhook, "a1@example.com", hook.ID},
		{"unknown ID", triage.SourceEmail, "nope@example.com", ""},
		{"source without it", triage.SourceSlack, "a1@example.com", ""},
		// Tickets without an external ID are not indexed under "".
		{"empty ID", triage.SourceEmail, "", ""},
		// The key joins source and ID with a NUL; a prefix is no match.
		{"prefix", triage.SourceEmail, "a1@example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.TicketByExternal(ctx, tt.src, tt.ext)
			if tt.wantID == "" {
				if !errors.Is(err, triage.ErrNotFound) {
					t.Fatalf("TicketByExternal = %s, %v; want ErrNotFound", got.ID, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.wantID || got.Source != tt.src || got.ExternalID != tt.ext {
				t.Errorf("TicketByExternal = %s %s %q, want %s", got.ID, got.Source, got.ExternalID, tt.wantID)
			}
		})
	}
}

func TestTicketByExternalSeesUpdates(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	tk := mustCreate(t, db, newTicket(triage.SourceEmail, "b1@example.com", t0), triage.Customer{Email: "b@example.com"})
	_, err := db.Update(ctx, tk.ID, func(t *triage.Ticket) (triage.AuditEvent, error) {
		t.Subject = "changed"
		return triage.AuditEvent{Actor: triage.ActorSystem, Action: "test"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.TicketByExternal(ctx, triage.SourceEmail, "b1@example.com")
	if err != nil || got.Subject != "changed" {
		t.Fatalf("TicketByExternal = %+v, %v; want the updated ticket", got, err)
	}
}

func TestTicketByExternalErrors(t *testing.T) {
	db, _ := openTest(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.TicketByExternal(cancelled, triage.SourceEmail, "x@example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v, want context.Canceled", err)
	}
	// An index entry whose ticket is gone is reported as not found, naming
	// the ticket, rather than as an empty ticket.
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketExternal).Put(externalKey(triage.SourceEmail, "gone@example.com"), []byte("CB-000999"))
	}); err != nil {
		t.Fatal(err)
	}
	_, err := db.TicketByExternal(context.Background(), triage.SourceEmail, "gone@example.com")
	if !errors.Is(err, triage.ErrNotFound) || !strings.Contains(err.Error(), "CB-000999") {
		t.Errorf("dangling index entry: err = %v, want ErrNotFound naming CB-000999", err)
	}
}

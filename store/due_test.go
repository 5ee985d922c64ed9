package store

import (
	"context"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// dueIDs lists the IDs DueFollowUps returns before before.
func dueIDs(t *testing.T, db *DB, before time.Time) []string {
	t.Helper()
	got, err := db.DueFollowUps(context.Background(), before)
	if err != nil {
		t.Fatalf("DueFollowUps: %v", err)
	}
	return ids(got)
}

// TestDueIndexFollowsTheTicket walks one ticket received long before it was
// resolved through the follow-up cycle: the due index holds exactly the work
// it waits for after every write, across a reopen of the file.
func TestDueIndexFollowsTheTicket(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	tk := mustCreate(t, db, newTicket(triage.SourceEmail, "m-1", t0), triage.Customer{Email: "a@example.com"})
	resolvedAt := t0.Add(60 * 24 * time.Hour)
	due := resolvedAt.Add(48 * time.Hour)
	steps := []struct {
		name string
		edit func(*triage.Ticket)
		// before is the bound asked for; want the IDs expected.
		before time.Time
		want   []string
	}{
		{"open", func(x *triage.Ticket) { x.State = triage.StateReplied }, maxTime, nil},
		{"resolved 60 days after arrival", func(x *triage.Ticket) {
			x.State, x.ResolvedAt, x.FollowUpDue = triage.StateResolved, resolvedAt, due
		}, maxTime, []string{tk.ID}},
		{"not due before its time", func(*triage.Ticket) {}, due, nil},
		{"due just after its time", func(*triage.Ticket) {}, due.Add(time.Nanosecond), []string{tk.ID}},
		{"followed up", func(x *triage.Ticket) { x.State, x.FollowUpSentAt = triage.StateFollowedUp, due }, maxTime, []string{tk.ID}},
		{"rating bound is the sent time", func(*triage.Ticket) {}, due, nil},
		{"rated low and reopened", func(x *triage.Ticket) { x.State, x.Rating = triage.StateReopened, 1 }, maxTime, nil},
		{"resolved again", func(x *triage.Ticket) {
			x.State, x.FollowUpSentAt, x.Rating, x.FollowUpDue = triage.StateResolved, time.Time{}, 0, due.Add(24*time.Hour)
		}, maxTime, []string{tk.ID}},
		{"closed by hand", func(x *triage.Ticket) { x.State = triage.StateClosed }, maxTime, nil},
	}
	for _, st := range steps {
		_, err := db.Update(ctx, tk.ID, func(x *triage.Ticket) (triage.AuditEvent, error) {
			st.edit(x)
			return triage.AuditEvent{Actor: "test", Action: st.name}, nil
		})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := dueIDs(t, db, st.before); !slices.Equal(got, st.want) {
			t.Errorf("%s: due = %v, want %v", st.name, got, st.want)
		}
	}
	_, err := db.Update(ctx, tk.ID, func(x *triage.Ticket) (triage.AuditEvent, error) {
		x.State = triage.StateResolved
		return triage.AuditEvent{Actor: "test", Action: "resolved"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, Options{Clock: &fixedClock{t: t0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.Close() })
	if got := dueIDs(t, again, maxTime); !slices.Equal(got, []string{tk.ID}) {
		t.Errorf("after reopening the file: due = %v, want [%s]", got, tk.ID)
	}
	if st, err := again.Purge(ctx, maxTime); err != nil || st.Tickets != 0 || st.Kept != 1 {
		t.Errorf("Purge of a ticket waiting for its follow-up = %+v, %v; want it kept", st, err)
	}
	if _, err := again.EraseCustomer(ctx, tk.CustomerID); err != nil {
		t.Fatal(err)
	}
	if got := dueIDs(t, again, maxTime); len(got) != 0 {
		t.Errorf("after erasing the ticket: due = %v, want none", got)
	}
}

// TestOpenBuildsDueIndexOfOlderFile opens a schema 1 file, which has no due
// index, and finds its pending follow-ups and unanswered ones indexed.
func TestOpenBuildsDueIndexOfOlderFile(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	states := []struct {
		name string
		edit func(*triage.Ticket)
		due  bool
	}{
		{"open", func(x *triage.Ticket) { x.State = triage.StateAwaitingReview }, false},
		{"resolved", func(x *triage.Ticket) { x.State, x.FollowUpDue = triage.StateResolved, t0.Add(time.Hour) }, true},
		{"resolved without follow-up", func(x *triage.Ticket) { x.State = triage.StateResolved }, false},
		{"awaiting rating", func(x *triage.Ticket) {
			x.State, x.FollowUpDue, x.FollowUpSentAt = triage.StateFollowedUp, t0, t0
		}, true},
		{"rated", func(x *triage.Ticket) {
			x.State, x.FollowUpDue, x.FollowUpSentAt, x.Rating = triage.StateFollowedUp, t0, t0, 5
		}, false},
	}
	var want []string
	for i, st := range states {
		tk := mustCreate(t, db, newTicket(triage.SourceWebhook, st.name, t0.AddDate(-1, 0, i)), triage.Customer{Handle: st.name})
		if _, err := db.Update(ctx, tk.ID, func(x *triage.Ticket) (triage.AuditEvent, error) {
			st.edit(x)
			return triage.AuditEvent{Actor: "test", Action: st.name}, nil
		}); err != nil {
			t.Fatal(err)
		}
		if st.due {
			want = append(want, tk.ID)
		}
	}
	// Make the file what a schema 1 casebot left: no due index.
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketDue, bucketDueTicket} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	migrated, err := Open(path, Options{Clock: &fixedClock{t: t0}})
	if err != nil {
		t.Fatalf("Open of a schema 1 file: %v", err)
	}
	t.Cleanup(func() { _ = migrated.Close() })
	got := dueIDs(t, migrated, maxTime)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("due after migration = %v, want %v", got, want)
	}
	err = migrated.bolt.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(bucketMeta).Get(keySchemaVersion)); v != "2" {
			t.Errorf("schema version after migration = %q, want 2", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

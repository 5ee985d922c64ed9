package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

// snapshot returns every key/value pair of the file, nested buckets
// included, keyed by bucket path and key.
func snapshot(t *testing.T, db *DB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var walk func(path string, b *bolt.Bucket) error
	walk = func(path string, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(path+"/"+string(k), b.Bucket(k))
			}
			out[path+"\x01"+string(k)] = bytes.Clone(v)
			return nil
		})
	}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name), b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mentions reports whether an entry of a snapshot names any of words, in its
// key or its value.
func mentions(entry string, value []byte, words []string) bool {
	for _, w := range words {
		if strings.Contains(entry, w) || bytes.Contains(value, []byte(w)) {
			return true
		}
	}
	return false
}

// checkOnlyRemoved asserts that after is before without exactly the entries
// that mention gone, apart from the entries under the bucket paths in
// exempt (counters and the erasure log).
func checkOnlyRemoved(t *testing.T, before, after map[string][]byte, gone []string, exempt ...string) {
	t.Helper()
	isExempt := func(entry string) bool {
		return slices.ContainsFunc(exempt, func(p string) bool { return strings.HasPrefix(entry, p) })
	}
	removed := 0
	for entry, v := range before {
		if isExempt(entry) {
			continue
		}
		got, kept := after[entry]
		switch m := mentions(entry, v, gone); {
		case m && kept:
			t.Errorf("entry %q survived: %q", entry, got)
		case m:
			removed++
		case !kept:
			t.Errorf("entry %q of another ticket or customer was deleted", entry)
		case !bytes.Equal(got, v):
			t.Errorf("entry %q changed:\n got %q\nwant %q", entry, got, v)
		}
	}
	for entry, v := range after {
		if _, ok := before[entry]; !ok && !isExempt(entry) {
			t.Errorf("entry %q appeared: %q", entry, v)
		}
		if !isExempt(entry) && mentions(entry, v, gone) {
			t.Errorf("entry %q still mentions erased data: %q", entry, v)
		}
	}
	if removed == 0 {
		t.Error("nothing was removed")
	}
}

// allTickets returns every stored ticket, oldest first.
func allTickets(t *testing.T, db *DB) []triage.Ticket {
	t.Helper()
	var out []triage.Ticket
	err := db.Window(context.Background(), time.Time{}, t0.AddDate(10, 0, 0), func(tk triage.Ticket) error {
		out = append(out, tk)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ids(ts []triage.Ticket) []string {
	out := make([]string, len(ts))
	for i, tk := range ts {
		out[i] = tk.ID
	}
	return out
}

// bulkStore writes n tickets with random lifecycles over 90 days from a pool
// of customers small enough that some keep tickets on both sides of a
// cutoff, one in ten of them still open and the others closed, all in one
// transaction: one Create and Updates per ticket would
// make the test slow without testing anything more here.
func bulkStore(t *testing.T, db *DB, seed uint64, n int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 2))
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		for i := range n {
			tk := triage.Ticket{
				Source:         triage.SourceWebhook,
				ExternalID:     fmt.Sprint(i),
				Body:           "help",
				ReceivedAt:     t0.Add(time.Duration(r.Int64N(int64(90 * 24 * time.Hour)))),
				Classification: triage.Classification{Type: triage.Types[r.IntN(4)]},
				DraftRevision:  -1,
			}
			for range 4 {
				lifecycleStep(r, &tk)
			}
			tk.State = triage.StateClosed
			if r.IntN(10) == 0 {
				tk.State = triage.StateAwaitingReview
			}
			cust := triage.Customer{Email: fmt.Sprintf("c%d@example.com", r.IntN(60))}
			if r.IntN(20) == 0 {
				cust = triage.Customer{}
			}
			if _, _, err := createTx(b, tk, cust, t0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPurgeRemovesOldTicketsWithEverythingTheyOwn(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	cutoff := t0.AddDate(0, 0, 30)
	create := func(ext string, at time.Time, c triage.Customer) triage.Ticket {
		tk := newTicket(triage.SourceWebhook, ext, at)
		tk.Route.Channel, tk.State = "C-QUEUE", triage.StateClosed
		return mustCreate(t, db, tk, c)
	}
	// The old customer owns an identity key its record does not show: the
	// second email came with its Slack ID.
	old1 := create("o1", t0, triage.Customer{Email: "old@example.com", SlackUserID: "U-OLD"})
	old2 := create("o2", t0.AddDate(0, 0, 1), triage.Customer{Email: "old-alt@example.com", SlackUserID: "U-OLD"})
	mixedOld := create("m1", t0.AddDate(0, 0, 2), triage.Customer{Email: "mixed@example.com"})
	mixedNew := create("m2", cutoff, triage.Customer{Email: "MIXED@example.com"})
	fresh := create("n1", cutoff.AddDate(0, 0, 1), triage.Customer{Handle: "@newbie"})
	for _, id := range []string{old1.ID, old2.ID, mixedOld.ID, mixedNew.ID, fresh.ID} {
		if err := announce(ctx, db, id, triage.Post{Kind: triage.PostCard}, triage.Post{Kind: triage.PostThread}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Enqueue(ctx, triage.Post{Kind: triage.PostThread, Channel: "C-OPS", Detail: "pattern"}); err != nil {
		t.Fatal(err)
	}
	if old1.CustomerID != old2.CustomerID || mixedOld.CustomerID != mixedNew.CustomerID {
		t.Fatalf("identity merge: %s %s %s %s", old1.CustomerID, old2.CustomerID, mixedOld.CustomerID, mixedNew.CustomerID)
	}
	before := snapshot(t, db)

	st, err := db.Purge(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	want := PurgeStats{Tickets: 3, AuditEvents: 6, Posts: 6, Customers: 1, Identities: 3, Batches: 1}
	if st != want {
		t.Errorf("Purge stats = %+v, want %+v", st, want)
	}
	gone := []string{old1.ID, old2.ID, mixedOld.ID, old1.CustomerID, "old@example.com", "old-alt@example.com", "U-OLD"}
	checkOnlyRemoved(t, before, snapshot(t, db), gone, "meta\x01ticket_count")

	if n, err := db.Count(ctx); err != nil || n != 2 {
		t.Errorf("Count = %d, %v; want 2", n, err)
	}
	if got := ids(allTickets(t, db)); !slices.Equal(got, []string{mixedNew.ID, fresh.ID}) {
		t.Errorf("Window = %v", got)
	}
	for _, id := range []string{old1.ID, mixedOld.ID} {
		if _, err := db.Get(ctx, id); !errors.Is(err, triage.ErrNotFound) {
			t.Errorf("Get(%s) error = %v, want ErrNotFound", id, err)
		}
		if _, err := db.Audit(ctx, id); !errors.Is(err, triage.ErrNotFound) {
			t.Errorf("Audit(%s) error = %v, want ErrNotFound", id, err)
		}
	}
	if _, err := db.Customer(ctx, old1.CustomerID); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("customer without tickets: error = %v, want ErrNotFound", err)
	}
	got, err := db.CustomerTickets(ctx, mixedNew.CustomerID, time.Time{})
	if err != nil || !slices.Equal(ids(got), []string{mixedNew.ID}) {
		t.Errorf("CustomerTickets of the mixed customer = %v, %v", ids(got), err)
	}
	m, err := db.Metrics(ctx, "all", time.Time{}, t0.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if m.Received != 2 {
		t.Errorf("Metrics received = %d, want 2", m.Received)
	}
	if got := pending(t, db, "C-OPS"); len(got) != 1 {
		t.Errorf("a post of no ticket was purged: %+v", got)
	}

	// The purged identities and external IDs are free again.
	again := create("o1", cutoff, triage.Customer{Email: "old@example.com"})
	if again.CustomerID == old1.CustomerID {
		t.Errorf("a purged customer ID %s was reused", again.CustomerID)
	}
	if st, err := db.Purge(ctx, cutoff); err != nil || st != (PurgeStats{}) {
		t.Errorf("second Purge = %+v, %v; want nothing to do", st, err)
	}
}

// A purge over a random store of many batches keeps exactly the newer
// tickets, unchanged, and every figure read from the indexes agrees.
func TestPurgeRandomStoreInBatches(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	bulkStore(t, db, 7, 1500)
	all := allTickets(t, db)
	cutoff := t0.AddDate(0, 0, 75)
	var keep []triage.Ticket
	customersLeft := map[string]bool{}
	kept := 0
	for _, tk := range all {
		if tk.State.Open() && tk.ReceivedAt.Before(cutoff) {
			kept++
		}
		if tk.State.Open() || !tk.ReceivedAt.Before(cutoff) {
			keep = append(keep, tk)
			customersLeft[tk.CustomerID] = true
		}
	}
	purged := len(all) - len(keep)
	if purged <= 2*maintenanceBatch {
		t.Fatalf("only %d tickets to purge; the test needs three batches", purged)
	}

	st, err := db.Purge(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tickets != purged || st.Batches != 3 || st.Kept != kept || kept == 0 {
		t.Errorf("Purge stats = %+v, want %d tickets in 3 batches, %d (and some) open ones kept", st, purged, kept)
	}
	got := allTickets(t, db)
	if !reflect.DeepEqual(got, keep) {
		t.Errorf("kept %d tickets, want the %d received from the cutoff on or open, unchanged", len(got), len(keep))
	}
	if n, err := db.Count(ctx); err != nil || n != len(keep) {
		t.Errorf("Count = %d, %v; want %d", n, err, len(keep))
	}
	for _, w := range []struct{ from, to time.Time }{{time.Time{}, t0.AddDate(1, 0, 0)}, {cutoff, cutoff.AddDate(0, 0, 7)}} {
		m, err := db.Metrics(ctx, "w", w.from, w.to)
		if err != nil {
			t.Fatal(err)
		}
		if want := fromTickets(t, db, "w", w.from, w.to); !reflect.DeepEqual(m, want) {
			t.Errorf("Metrics from the index after purge:\n got %s\nwant %s", showMetrics(m), showMetrics(want))
		}
	}
	customers := map[string]bool{}
	for _, tk := range all {
		customers[tk.CustomerID] = true
	}
	deleted := 0
	for id := range customers {
		_, err := db.Customer(ctx, id)
		switch {
		case customersLeft[id] && err != nil:
			t.Errorf("customer %s with tickets left: %v", id, err)
		case !customersLeft[id] && !errors.Is(err, triage.ErrNotFound):
			t.Errorf("customer %s without tickets: error = %v, want ErrNotFound", id, err)
		case !customersLeft[id]:
			deleted++
		}
		if !customersLeft[id] {
			continue
		}
		var want []string
		for _, tk := range slices.Backward(keep) {
			if tk.CustomerID == id {
				want = append(want, tk.ID)
			}
		}
		got, err := db.CustomerTickets(ctx, id, time.Time{})
		if err != nil || !slices.Equal(ids(got), want) {
			t.Errorf("CustomerTickets(%s) = %v, %v; want %v", id, ids(got), err, want)
		}
	}
	if st.Customers != deleted || deleted == 0 {
		t.Errorf("Purge deleted %d customers, want %d (and some)", st.Customers, deleted)
	}
	// Every identity left points to a customer that exists.
	for entry, v := range snapshot(t, db) {
		if strings.HasPrefix(entry, "identity\x01") {
			if _, err := db.Customer(ctx, string(v)); err != nil {
				t.Errorf("identity %q points to %s: %v", entry, v, err)
			}
		}
	}
}

func TestPurgeCancelled(t *testing.T) {
	db, _ := openTest(t)
	mustCreate(t, db, newTicket(triage.SourceWebhook, "a", t0), triage.Customer{Email: "a@example.com"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Purge(ctx, t0.AddDate(1, 0, 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Purge error = %v, want context.Canceled", err)
	}
	if n, _ := db.Count(context.Background()); n != 1 {
		t.Errorf("a cancelled purge deleted tickets: %d left", n)
	}
}

func TestEraseCustomer(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	create := func(ext string, at time.Time, c triage.Customer) triage.Ticket {
		tk := newTicket(triage.SourceEmail, ext, at)
		tk.Route.Channel = "C-QUEUE"
		return mustCreate(t, db, tk, c)
	}
	a1 := create("a1", t0, triage.Customer{Email: "ann@example.com", Name: "Ann Example", SlackUserID: "U-ANN"})
	b1 := create("b1", t0.Add(time.Hour), triage.Customer{Email: "bob@example.com"})
	a2 := create("a2", t0.Add(2*time.Hour), triage.Customer{Handle: "@ann", SlackUserID: "U-ANN"})
	b2 := create("b2", t0.Add(3*time.Hour), triage.Customer{Email: "bob@example.com"})
	for _, id := range []string{a1.ID, a2.ID, b1.ID, b2.ID} {
		if err := announce(ctx, db, id, triage.Post{Kind: triage.PostCard}); err != nil {
			t.Fatal(err)
		}
	}
	bobBefore, err := db.CustomerTickets(ctx, b1.CustomerID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, db)

	st, err := db.EraseCustomer(ctx, a1.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	want := EraseStats{CustomerID: a1.CustomerID, Tickets: 2, AuditEvents: 4, Posts: 2, Identities: 3, At: t0}
	if st != want {
		t.Errorf("EraseCustomer stats = %+v, want %+v", st, want)
	}
	gone := []string{a1.ID, a2.ID, a1.CustomerID, "ann@example.com", "Ann Example", "U-ANN", "handle:ann"}
	checkOnlyRemoved(t, before, snapshot(t, db), gone, "meta\x01ticket_count", "erasures")

	bobAfter, err := db.CustomerTickets(ctx, b1.CustomerID, time.Time{})
	if err != nil || !reflect.DeepEqual(bobAfter, bobBefore) {
		t.Errorf("the other customer's tickets changed: %v, %v", ids(bobAfter), err)
	}
	if n, _ := db.Count(ctx); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
	if _, err := db.CustomerByKey(ctx, "email:ann@example.com"); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("CustomerByKey of an erased email: error = %v, want ErrNotFound", err)
	}
	if c, err := db.CustomerByKey(ctx, "email:bob@example.com"); err != nil || c.ID != b1.CustomerID {
		t.Errorf("CustomerByKey(bob) = %+v, %v", c, err)
	}

	log, err := db.Erasures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Erasure{{CustomerID: a1.CustomerID, At: t0, Tickets: 2}}; !reflect.DeepEqual(log, want) {
		t.Errorf("Erasures = %+v, want %+v", log, want)
	}
	for entry, v := range snapshot(t, db) {
		if strings.HasPrefix(entry, "erasures") && mentions(entry, v, gone[3:]) {
			t.Errorf("the erasure record holds personal data: %q", v)
		}
	}

	for _, id := range []string{"CU-999999", ""} {
		if _, err := db.EraseCustomer(ctx, id); err == nil {
			t.Errorf("EraseCustomer(%q) succeeded", id)
		}
	}
	if _, err := db.EraseCustomer(ctx, a1.CustomerID); !errors.Is(err, triage.ErrNotFound) {
		t.Errorf("second erasure error = %v, want ErrNotFound", err)
	}
}

// A customer with more tickets than one batch is erased over several
// transactions and leaves nothing behind.
func TestEraseCustomerManyTickets(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	n := 2*maintenanceBatch + 7
	var cust string
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for i := range n {
			tk, _, err := createTx(bucketsOf(tx), *newTicket(triage.SourceWebhook, fmt.Sprint(i), t0.Add(time.Duration(i)*time.Minute)),
				triage.Customer{Email: "many@example.com"}, t0)
			if err != nil {
				return err
			}
			cust = tk.CustomerID
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	other := mustCreate(t, db, newTicket(triage.SourceWebhook, "other", t0), triage.Customer{Email: "o@example.com"})
	st, err := db.EraseCustomer(ctx, cust)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tickets != n || st.AuditEvents != n || st.Identities != 1 {
		t.Errorf("EraseCustomer stats = %+v, want %d tickets and audit events, 1 identity", st, n)
	}
	if got := ids(allTickets(t, db)); !slices.Equal(got, []string{other.ID}) {
		t.Errorf("tickets left = %v, want only %s", got, other.ID)
	}
	if c, _ := db.Count(ctx); c != 1 {
		t.Errorf("Count = %d, want 1", c)
	}
	if log, _ := db.Erasures(ctx); len(log) != 1 || log[0].Tickets != n {
		t.Errorf("Erasures = %+v, want one of %d tickets", log, n)
	}
}

func TestBackupWhileWriting(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	for i := range 20 {
		mustCreate(t, db, newTicket(triage.SourceWebhook, fmt.Sprint("pre", i), t0), triage.Customer{Email: "a@example.com"})
	}
	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		started = make(chan struct{})
		once    sync.Once
		written int
	)
	wg.Go(func() {
		defer once.Do(func() { close(started) })
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tk := newTicket(triage.SourceWebhook, fmt.Sprint("during", i), t0.Add(time.Duration(i)*time.Second))
			if _, err := db.Create(ctx, tk, triage.Customer{Email: fmt.Sprintf("c%d@example.com", i%7)}); err != nil {
				t.Error(err)
				return
			}
			written++
			if i == 5 {
				once.Do(func() { close(started) })
			}
		}
	})
	<-started
	dst := filepath.Join(t.TempDir(), "backup.db")
	n, err := db.BackupFile(ctx, dst)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != n || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup is %d bytes, mode %v; want %d bytes, 0600", fi.Size(), fi.Mode().Perm(), n)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	bk, err := Open(dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	count, err := bk.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if count < 26 || count > 20+written {
		t.Errorf("backup holds %d tickets; between 26 and %d were stored when it ran", count, 20+written)
	}
	// A consistent copy: the counter, the tickets, the time and metrics
	// indexes and the audit log all describe the same set of tickets.
	got := allTickets(t, bk)
	m, err := bk.Metrics(ctx, "all", time.Time{}, t0.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{}
	for entry := range snapshot(t, bk) {
		sizes[entry[:strings.IndexByte(entry, '\x01')]]++
	}
	if len(got) != count || m.Received != count || sizes["tickets"] != count || sizes["audit"] != count ||
		sizes["by_customer"] != count || sizes["by_time"] != count || sizes["metrics"] != count ||
		sizes["external"] != count {
		t.Errorf("inconsistent backup: count %d, window %d, metrics %d, buckets %v", count, len(got), m.Received, sizes)
	}
	for i, tk := range got {
		if i < 20 && tk.ExternalID != fmt.Sprint("pre", i) {
			t.Errorf("ticket %d of the backup is %q", i, tk.ExternalID)
		}
	}

	if _, err := db.BackupFile(ctx, path); err == nil || !strings.Contains(err.Error(), "database file itself") {
		t.Errorf("backup onto the database file: error = %v", err)
	}
}

func TestBackupCancelledLeavesTargetAlone(t *testing.T) {
	db, _ := openTest(t)
	mustCreate(t, db, newTicket(triage.SourceWebhook, "a", t0), triage.Customer{})
	dst := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(dst, []byte("previous backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.BackupFile(ctx, dst); !errors.Is(err, context.Canceled) {
		t.Errorf("BackupFile error = %v, want context.Canceled", err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "previous backup" {
		t.Errorf("a cancelled backup replaced the target: %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
		t.Errorf("files left behind: %v", entries)
	}
	var buf bytes.Buffer
	n, err := db.Backup(context.Background(), &buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Errorf("Backup = %d, %v with %d bytes written", n, err, buf.Len())
	}
}

// TestRetentionKeepsTicketsThatNeedWork purges tickets received three years
// before the cutoff: those still open, or waiting for a follow-up or its
// rating, are kept and counted; only finished ones go.
func TestRetentionKeepsTicketsThatNeedWork(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	old := t0.AddDate(-3, 0, 0)
	cases := []struct {
		name string
		edit func(*triage.Ticket)
		kept bool
	}{
		{"received", func(x *triage.Ticket) { x.State = triage.StateReceived }, true},
		{"awaiting review", func(x *triage.Ticket) { x.State = triage.StateAwaitingReview }, true},
		{"escalated", func(x *triage.Ticket) { x.State = triage.StateEscalated }, true},
		{"reopened", func(x *triage.Ticket) { x.State = triage.StateReopened }, true},
		{"resolved, follow-up due", func(x *triage.Ticket) { x.State, x.FollowUpDue = triage.StateResolved, t0 }, true},
		{"followed up, no rating yet", func(x *triage.Ticket) {
			x.State, x.FollowUpDue, x.FollowUpSentAt = triage.StateFollowedUp, t0, t0
		}, true},
		{"resolved without follow-up", func(x *triage.Ticket) { x.State = triage.StateResolved }, false},
		{"rated", func(x *triage.Ticket) {
			x.State, x.FollowUpDue, x.FollowUpSentAt, x.Rating = triage.StateFollowedUp, t0, t0, 4
		}, false},
		{"closed", func(x *triage.Ticket) { x.State = triage.StateClosed }, false},
	}
	var want []string
	kept := 0
	for i, tc := range cases {
		tk := mustCreate(t, db, newTicket(triage.SourceWebhook, tc.name, old.Add(time.Duration(i)*time.Hour)),
			triage.Customer{Handle: tc.name})
		if _, err := db.Update(ctx, tk.ID, func(x *triage.Ticket) (triage.AuditEvent, error) {
			tc.edit(x)
			return triage.AuditEvent{Actor: "test", Action: tc.name}, nil
		}); err != nil {
			t.Fatal(err)
		}
		if tc.kept {
			want = append(want, tk.ID)
			kept++
		}
	}
	st, err := db.Purge(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tickets != len(cases)-kept || st.Kept != kept {
		t.Errorf("Purge stats = %+v, want %d deleted and %d kept", st, len(cases)-kept, kept)
	}
	if got := ids(allTickets(t, db)); !slices.Equal(got, want) {
		t.Errorf("tickets left = %v, want %v", got, want)
	}
	if st, err := db.Purge(ctx, t0); err != nil || st.Tickets != 0 || st.Kept != kept {
		t.Errorf("second Purge = %+v, %v; want %d kept again and nothing deleted", st, err, kept)
	}
}

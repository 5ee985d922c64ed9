package store

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casebot/casebot/triage"
)

func propose(t *testing.T, db *DB, rootCause, text string) triage.SOPUpdate {
	t.Helper()
	u, err := db.ProposeSOP(context.Background(), triage.SOPUpdate{RootCause: rootCause, Text: text, Author: "U0OPS"})
	if err != nil {
		t.Fatalf("ProposeSOP(%s): %v", rootCause, err)
	}
	return u
}

func TestSOPVersioning(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	a1 := propose(t, db, "carrier_delay", "Share tracking.")
	b1 := propose(t, db, "wrong_size", "Offer an exchange.")
	a2 := propose(t, db, "carrier_delay", "Share tracking; reship after 10 days.")
	a3 := propose(t, db, "carrier_delay", "Refund everything.")
	if a1.ID != "SOP-000001" || a2.ID != "SOP-000003" || a1.State != triage.SOPProposed || a1.Version != 0 || !a1.At.Equal(t0) {
		t.Fatalf("proposals: %+v, %+v", a1, a2)
	}

	steps := []struct {
		id, op      string
		wantVersion int
		wantState   triage.SOPState
		wantErr     error
	}{
		// Versions count per root cause, in order of acceptance.
		{a2.ID, "accept", 1, triage.SOPAccepted, nil},
		{b1.ID, "accept", 1, triage.SOPAccepted, nil},
		{a1.ID, "accept", 2, triage.SOPAccepted, nil},
		// A repeated click changes nothing.
		{a1.ID, "accept", 2, triage.SOPAccepted, nil},
		{a3.ID, "reject", 0, triage.SOPRejected, nil},
		{a3.ID, "reject", 0, triage.SOPRejected, nil},
		{a3.ID, "accept", 0, "", triage.ErrSOPDecided},
		{a1.ID, "reject", 0, "", triage.ErrSOPDecided},
		{"SOP-000099", "accept", 0, "", triage.ErrNotFound},
	}
	for _, s := range steps {
		decide := db.AcceptSOP
		if s.op == "reject" {
			decide = db.RejectSOP
		}
		u, err := decide(ctx, s.id, "U0LEAD")
		if s.wantErr != nil {
			if !errors.Is(err, s.wantErr) {
				t.Errorf("%s %s: error %v, want %v", s.op, s.id, err, s.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s %s: %v", s.op, s.id, err)
		}
		if u.Version != s.wantVersion || u.State != s.wantState || u.DecidedBy != "U0LEAD" || !u.DecidedAt.Equal(t0) {
			t.Errorf("%s %s: %+v, want version %d, state %s", s.op, s.id, u, s.wantVersion, s.wantState)
		}
	}

	all, err := db.SOPs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range all {
		got = append(got, u.ID+" "+u.RootCause+" "+string(u.State)+" v"+strconv.Itoa(u.Version))
	}
	want := []string{
		"SOP-000001 carrier_delay accepted v2",
		"SOP-000002 wrong_size accepted v1",
		"SOP-000003 carrier_delay accepted v1",
		"SOP-000004 carrier_delay rejected v0",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SOPs:\n got %q\nwant %q", got, want)
	}
	// The latest version per root cause is what briefs quote.
	ex := triage.PolicyExcerpt(all, triage.Ticket{Classification: triage.Classification{RootCauseGuess: "carrier_delay"}}, 500)
	if ex != "SOP carrier_delay v2: Share tracking." {
		t.Errorf("PolicyExcerpt = %q", ex)
	}
}

func TestSOPProposeValidates(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	if _, err := db.ProposeSOP(ctx, triage.SOPUpdate{RootCause: "x", Author: "U1"}); !errors.Is(err, triage.ErrInvalidSOP) {
		t.Errorf("proposal without text: %v, want ErrInvalidSOP", err)
	}
	// Fields the store owns are not taken from the caller.
	at := t0.Add(-time.Hour)
	u, err := db.ProposeSOP(ctx, triage.SOPUpdate{ID: "mine", RootCause: "x", Text: "t", Author: "U1", At: at,
		Version: 7, State: triage.SOPAccepted, DecidedBy: "U2"})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "SOP-000001" || u.Version != 0 || u.State != triage.SOPProposed || u.DecidedBy != "" || !u.At.Equal(at) {
		t.Errorf("proposal kept caller's fields: %+v", u)
	}
	if _, err := db.AcceptSOP(ctx, u.ID, ""); err == nil {
		t.Error("accepted by nobody")
	}
}

// TestSOPConcurrentAccepts accepts many proposals of one root cause at once:
// every version from 1 to n is given exactly once.
func TestSOPConcurrentAccepts(t *testing.T) {
	db, _ := openTest(t)
	const n = 12
	var ids []string
	for range n {
		ids = append(ids, propose(t, db, "damaged", "Ask for a photo.").ID)
	}
	versions := make([]int, n)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			u, err := db.AcceptSOP(context.Background(), id, "U0LEAD")
			if err != nil {
				t.Error(err)
				return
			}
			versions[i] = u.Version
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, v := range versions {
		seen[v] = true
	}
	for v := 1; v <= n; v++ {
		if !seen[v] {
			t.Errorf("version %d not given; versions %v", v, versions)
		}
	}
}

func TestSOPsSurviveReopen(t *testing.T) {
	db, path := openTest(t)
	u := propose(t, db, "damaged", "Ask for a photo.")
	if _, err := db.AcceptSOP(context.Background(), u.ID, "U0LEAD"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, err := db.SOPs(context.Background())
	if err != nil || len(all) != 1 || all[0].Version != 1 || all[0].State != triage.SOPAccepted {
		t.Errorf("after reopen: %+v, %v", all, err)
	}
}

func TestAlertsMarkedOnce(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	key := triage.AlertKey("carrier_delay", t0)
	other := triage.AlertKey("carrier_delay", t0.Add(time.Hour))
	check := func(db *DB, k string, want bool) {
		t.Helper()
		got, err := db.AlertSent(ctx, k)
		if err != nil || got != want {
			t.Errorf("AlertSent(%q) = %v, %v; want %v", k, got, err, want)
		}
	}
	check(db, key, false)
	if err := db.MarkAlertSent(ctx, key, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkAlertSent(ctx, key, t0.Add(time.Hour)); err != nil {
		t.Fatalf("marking again: %v", err)
	}
	check(db, key, true)
	check(db, other, false)
	if err := db.MarkAlertSent(ctx, "", t0); err == nil {
		t.Error("empty key marked")
	}
	if _, err := db.AlertSent(ctx, ""); err == nil {
		t.Error("empty key asked")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db, key, true)
	var at string
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		at = string(tx.Bucket(bucketAlerts).Get([]byte(key)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if at != t0.Format(time.RFC3339Nano) {
		t.Errorf("sent at %q, want the first time %s", at, t0.Format(time.RFC3339Nano))
	}
}

// TestPatternAlertsWithStore runs the alert rule against the store's record
// of sent alerts, as the scheduled job will: the third ticket alerts, later
// runs of the job do not alert again.
func TestPatternAlertsWithStore(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	var ts []triage.Ticket
	for i := range 5 {
		ts = append(ts, triage.Ticket{ID: string(rune('A' + i)), ReceivedAt: t0.Add(time.Duration(i) * 24 * time.Hour),
			Classification: triage.Classification{RootCauseGuess: "damaged"}})
	}
	var sent []string
	for i := range ts {
		now := ts[i].ReceivedAt.Add(time.Minute)
		for _, a := range triage.PatternAlerts(ts[:i+1], now, func(rc string, start time.Time) bool {
			ok, err := db.AlertSent(ctx, triage.AlertKey(rc, start))
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}) {
			sent = append(sent, a.Key)
			if err := db.MarkAlertSent(ctx, a.Key, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := []string{triage.AlertKey("damaged", t0)}; !reflect.DeepEqual(sent, want) {
		t.Errorf("sent %q, want %q", sent, want)
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// maintainStore writes a store with two customers, ann (two tickets, one
// received a year before the other) and bob (one), and returns its path and
// their customer IDs.
func maintainStore(t *testing.T) (path, ann, bob string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "casebot.db")
	db, err := store.Open(path, store.Options{Clock: reportClock{reportEnd}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for i, c := range []struct {
		email string
		at    time.Time
	}{
		{"ann@example.com", reportEnd.AddDate(-1, 0, 0)},
		{"bob@example.com", reportEnd.AddDate(0, 0, -1)},
		{"Ann@Example.com", reportEnd.AddDate(0, 0, -2)},
	} {
		tk := &triage.Ticket{Source: triage.SourceEmail, ExternalID: string(rune('a' + i)), Body: "help", ReceivedAt: c.at}
		if i == 0 {
			// Closed, so retention may delete it: it never deletes open tickets.
			tk.State = triage.StateClosed
		}
		got, err := db.Create(ctx, tk, triage.Customer{Email: c.email})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			ann = got.CustomerID
		}
		if i == 1 {
			bob = got.CustomerID
		}
	}
	return path, ann, bob
}

// ticketsOf returns the number of tickets each customer has in the store.
func ticketsOf(t *testing.T, path string, customers ...string) []int {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := make([]int, len(customers))
	for i, id := range customers {
		ts, err := db.CustomerTickets(context.Background(), id, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = len(ts)
	}
	return out
}

func TestBackupCommand(t *testing.T) {
	src, ann, bob := maintainStore(t)
	dst := filepath.Join(t.TempDir(), "copy.db")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"backup", dst, "--db", src}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr.String())
	}
	if want := "backed up " + src + " to " + dst; !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("stdout = %q, want it to start %q", stdout.String(), want)
	}
	if got := ticketsOf(t, dst, ann, bob); got[0] != 2 || got[1] != 1 {
		t.Errorf("the backup holds %v tickets of ann and bob, want [2 1]", got)
	}
}

func TestBackupAndEraseCommandErrors(t *testing.T) {
	src, ann, _ := maintainStore(t)
	missing := filepath.Join(t.TempDir(), "none.db")
	out := filepath.Join(t.TempDir(), "out.db")
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"backup without FILE", []string{"backup", "--db", src}, true, "one FILE"},
		{"backup two FILEs", []string{"backup", out, out, "--db", src}, true, "one FILE"},
		{"backup missing store", []string{"backup", out, "--db", missing}, false, "no store at " + missing},
		{"backup onto itself", []string{"backup", src, "--db", src}, false, "database file itself"},
		{"erase missing --customer", []string{"erase", "--db", src, "--yes"}, true, "--customer ID or --email"},
		{"erase both selectors", []string{"erase", "--customer", ann, "--email", "ann@example.com", "--db", src}, true, "one of"},
		{"erase argument", []string{"erase", ann, "--db", src}, true, "no arguments"},
		{"erase blank email", []string{"erase", "--email", " ", "--db", src, "--yes"}, true, "blank"},
		{"erase unknown customer", []string{"erase", "--customer", "CU-999999", "--db", src, "--yes"}, false, "no customer CU-999999"},
		{"erase unknown email", []string{"erase", "--email", "zed@example.com", "--db", src, "--yes"}, false, "no customer with email"},
		{"erase missing store", []string{"erase", "--customer", ann, "--db", missing, "--yes"}, false, "no store at"},
		{"erase without --yes off a terminal", []string{"erase", "--customer", ann, "--db", src}, false, "confirm with --yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, strings.NewReader("yes\n"), io.Discard, io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, errUsage) != tt.usage {
				t.Errorf("usage error = %v, want %v: %v", errors.Is(err, errUsage), tt.usage, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
	if got := ticketsOf(t, src, ann); got[0] != 2 {
		t.Errorf("a failed command erased tickets: ann has %d", got[0])
	}
}

// A store held by a running bot cannot be opened: the message says what to
// do instead.
func TestBackupAndEraseCommandLockedStore(t *testing.T) {
	src, ann, _ := maintainStore(t)
	held, err := store.Open(src, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, args := range [][]string{
		{"backup", filepath.Join(t.TempDir(), "b.db"), "--db", src},
		{"erase", "--customer", ann, "--yes", "--db", src},
	} {
		err := run(context.Background(), args, nil, io.Discard, io.Discard)
		if !errors.Is(err, store.ErrLocked) {
			t.Fatalf("%s: error = %v, want ErrLocked", args[0], err)
		}
		for _, want := range []string{"held by a running casebot", "stop the bot, run casebot " + args[0]} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", args[0], err, want)
			}
		}
	}
}

func TestEraseCommand(t *testing.T) {
	tests := []struct {
		name        string
		args        func(ann string) []string
		interactive bool
		answer      string
		erased      bool
	}{
		{"by ID with --yes", func(ann string) []string { return []string{"--customer", ann, "--yes"} }, false, "", true},
		{"by email with --yes", func(string) []string { return []string{"--email", " ANN@example.com", "--yes"} }, false, "", true},
		{"confirmed at a terminal", func(ann string) []string { return []string{"--customer", ann} }, true, "yes\n", true},
		{"declined at a terminal", func(ann string) []string { return []string{"--customer", ann} }, true, "n\n", false},
		{"no answer at a terminal", func(ann string) []string { return []string{"--customer", ann} }, true, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, ann, bob := maintainStore(t)
			var stdout, stderr bytes.Buffer
			args := append(tt.args(ann), "--db", path)
			err := erase(context.Background(), args, strings.NewReader(tt.answer), tt.interactive, &stdout, &stderr)
			if tt.erased != (err == nil) {
				t.Fatalf("erase: %v", err)
			}
			if tt.interactive && !strings.Contains(stderr.String(), "Erase customer "+ann+" and its 2 tickets for good?") {
				t.Errorf("prompt = %q", stderr.String())
			}
			want := []int{2, 1}
			if tt.erased {
				want[0] = 0
				if w := "erased customer " + ann + ": 2 tickets, 2 audit events, 0 pending posts, 1 identity keys\n"; stdout.String() != w {
					t.Errorf("stdout = %q, want %q", stdout.String(), w)
				}
			} else if !strings.Contains(err.Error(), "nothing was erased") {
				t.Errorf("error %q does not say nothing was erased", err)
			}
			if got := ticketsOf(t, path, ann, bob); got[0] != want[0] || got[1] != want[1] {
				t.Errorf("tickets of ann and bob = %v, want %v", got, want)
			}
		})
	}
}

// fakePurger records retention cutoffs and stops the loop after its first
// purge, whose error is then the shutdown's.
type fakePurger struct {
	cancel  context.CancelFunc
	befores []time.Time
}

func (f *fakePurger) Purge(_ context.Context, before time.Time) (store.PurgeStats, error) {
	f.befores = append(f.befores, before)
	f.cancel()
	return store.PurgeStats{}, context.Canceled
}

func TestRetentionLoopPurgesAtStartAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakePurger{cancel: cancel}
	var logs bytes.Buffer
	err := retentionLoop(ctx, f, 90, reportClock{reportEnd}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Errorf("retentionLoop = %v, want nil on shutdown", err)
	}
	if want := reportEnd.AddDate(0, 0, -90); len(f.befores) != 1 || !f.befores[0].Equal(want) {
		t.Errorf("purged before %v, want once before %v", f.befores, want)
	}
	if logs.Len() > 0 {
		t.Errorf("a purge cut short by shutdown was logged: %s", logs.String())
	}
}

func TestRetentionPurgesTheStore(t *testing.T) {
	path, ann, bob := maintainStore(t)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	retain(context.Background(), db, 30, reportClock{reportEnd}, logger)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ticketsOf(t, path, ann, bob); got[0] != 1 || got[1] != 1 {
		t.Errorf("after a 30-day retention ann and bob have %v tickets, want [1 1]", got)
	}
	if !strings.Contains(logs.String(), "retention purge") || !strings.Contains(logs.String(), "tickets=1") {
		t.Errorf("log = %q", logs.String())
	}

	failing := &errPurger{err: errors.New("disk full")}
	logs.Reset()
	retain(context.Background(), failing, 30, reportClock{reportEnd}, logger)
	if !strings.Contains(logs.String(), "retention purge failed") || !strings.Contains(logs.String(), "disk full") {
		t.Errorf("a failed purge was not logged: %q", logs.String())
	}
}

type errPurger struct{ err error }

func (e *errPurger) Purge(context.Context, time.Time) (store.PurgeStats, error) {
	return store.PurgeStats{}, e.err
}

// The running bot applies store.retention_days on start.
func TestRetentionRunsInTheBot(t *testing.T) {
	e := newE2E(t, slackfake.Options{})
	e.stop()
	db, err := store.Open(e.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, age := range []int{400, 1} {
		tk := &triage.Ticket{Source: triage.SourceWebhook, ExternalID: string(rune('a' + i)), Body: "where is my order?",
			ReceivedAt: now.AddDate(0, 0, -age), State: triage.StateClosed}
		if _, err := db.Create(context.Background(), tk, triage.Customer{Email: "ann@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	e.open()
	e.sys.Config.Store.RetentionDays = 365
	e.start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := e.sys.DB.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bot kept %d tickets; retention should leave the one from yesterday", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

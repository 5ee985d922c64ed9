package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// importedTickets opens the store at path and returns its tickets by
// external ID.
func importedTickets(t *testing.T, path string) map[string]triage.Ticket {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]triage.Ticket{}
	err = db.Window(context.Background(), time.Time{}, time.Now().Add(time.Hour), func(tk triage.Ticket) error {
		if _, dup := out[tk.ExternalID]; dup {
			t.Errorf("external ID %s stored twice", tk.ExternalID)
		}
		out[tk.ExternalID] = tk
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if chans, err := db.Channels(context.Background()); err != nil || len(chans) != 0 {
		t.Errorf("outbox channels with posts after import: %v, %v; want none (imports post no cards)", chans, err)
	}
	return out
}

func TestImport(t *testing.T) {
	tests := []struct {
		name, file string
		args       []string
		// summary lines the first run prints; the second run imports nothing.
		summary []string
		ids     []string
	}{
		{name: "jsonl", file: "import_tickets.jsonl",
			summary: []string{"imported 3, duplicates 0, rejected 0\n", "classified 3 (model 0, rules 3); no cards posted\n"},
			ids:     []string{"zd-1001", "zd-1002", "zd-1003"}},
		{name: "csv with bad lines", file: "import_tickets.csv",
			summary: []string{"imported 3, duplicates 0, rejected 2\n",
				"  line 4: invalid_field amount: must be a number such as 12.50\n",
				"  line 7: invalid_field channel: must be one of chat, social, review, email, other, slack\n",
				"classified 3 (model 0, rules 3); no cards posted\n"},
			ids: []string{"hd-1", "hd-2", "hd-4"}},
		{name: "evaluation format", file: "import_eval.jsonl", args: []string{"--format", "jsonl"},
			summary: []string{"imported 3, duplicates 0, rejected 0\n"},
			ids:     []string{"bitext-0", "ev-legal", "ev-review"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "casebot.db")
			args := append([]string{"import", filepath.Join("testdata", tc.file), "--db", db, "--classifier", "keyword"}, tc.args...)
			out, _, err := runCmd(t, "", args...)
			if err != nil {
				t.Fatalf("first import: %v\n%s", err, out)
			}
			for _, line := range tc.summary {
				if !strings.Contains(out, line) {
					t.Errorf("first import output lacks %q:\n%s", line, out)
				}
			}
			first := importedTickets(t, db)
			if got := slices.Sorted(maps.Keys(first)); !slices.Equal(got, tc.ids) {
				t.Errorf("stored external IDs %v, want %v", got, tc.ids)
			}
			for id, tk := range first {
				if tk.State != triage.StateClosed || tk.ClassifiedBy != "rules" || tk.Classification.Type == "" || tk.Route.Channel == "" {
					t.Errorf("%s: state %s by %q type %q route %q; want closed and classified", id, tk.State,
						tk.ClassifiedBy, tk.Classification.Type, tk.Route.Channel)
				}
			}

			out, _, err = runCmd(t, "", args...)
			if err != nil {
				t.Fatalf("second import: %v\n%s", err, out)
			}
			if want := "imported 0, duplicates 3, "; !strings.Contains(out, want) || !strings.Contains(out, "classified 0 ") {
				t.Errorf("second import output lacks %q and classified 0:\n%s", want, out)
			}
			if second := importedTickets(t, db); len(second) != len(first) {
				t.Errorf("second import left %d tickets, want %d", len(second), len(first))
			}
		})
	}
}

// TestImportHistory: imported tickets are what the repeat and legal rules
// read, as live ones would be.
func TestImportHistory(t *testing.T) {
	db := filepath.Join(t.TempDir(), "casebot.db")
	for _, f := range []string{"import_tickets.jsonl", "import_eval.jsonl"} {
		if out, _, err := runCmd(t, "", "import", filepath.Join("testdata", f), "--db", db); err != nil {
			t.Fatalf("%s: %v\n%s", f, err, out)
		}
	}
	got := importedTickets(t, db)
	tests := []struct {
		id   string
		flag triage.Flag
		want bool
	}{
		{"zd-1001", triage.FlagRepeat, false},
		{"zd-1003", triage.FlagRepeat, true}, // Ann's second within 30 days; the e-mail is normalised
		{"ev-legal", triage.FlagLegal, true},
		{"ev-review", triage.FlagLegal, false},
	}
	for _, tc := range tests {
		if has := slices.Contains(got[tc.id].Classification.Flags, tc.flag); has != tc.want {
			t.Errorf("%s has flag %s: %v, want %v (flags %v)", tc.id, tc.flag, has, tc.want, got[tc.id].Classification.Flags)
		}
	}
	if a, b := got["zd-1001"], got["zd-1003"]; a.CustomerID != b.CustomerID {
		t.Errorf("Ann's tickets have customers %s and %s, want one", a.CustomerID, b.CustomerID)
	}
}

// TestImportFinishesInterruptedRun: a ticket an earlier run stored but did
// not classify (the run was stopped) is classified by the next one.
func TestImportFinishesInterruptedRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "casebot.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := triage.NewTriager(DefaultConfig().Config, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Intake(context.Background(), triage.Inbound{Source: triage.SourceImport, ExternalID: "zd-1002",
		Customer: triage.Customer{Email: "bob@example.com"}, Body: "Thanks, the replacement arrived and works great!"}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out, _, err := runCmd(t, "", "import", filepath.Join("testdata", "import_tickets.jsonl"), "--db", path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "imported 2, duplicates 1, rejected 0\nclassified 3 "; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if tk := importedTickets(t, path)["zd-1002"]; tk.State != triage.StateClosed || tk.Classification.Type != triage.TypeFeedback {
		t.Errorf("interrupted ticket: state %s type %s, want closed feedback", tk.State, tk.Classification.Type)
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	noHeader := filepath.Join(dir, "empty.csv")
	if err := os.WriteFile(noHeader, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "casebot.db")
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no file", []string{"import", "--db", db}, true, "import takes one FILE"},
		{"two files", []string{"import", "a.jsonl", "b.jsonl", "--db", db}, true, "import takes one FILE"},
		{"bad format", []string{"import", "x.jsonl", "--format", "xml", "--db", db}, true, `--format "xml"`},
		{"bad classifier", []string{"import", "x.jsonl", "--classifier", "gpt", "--db", db}, true, `--classifier "gpt"`},
		{"missing file", []string{"import", filepath.Join(dir, "nope.jsonl"), "--db", db}, false, "no such file"},
		{"csv without header", []string{"import", noHeader, "--db", db}, false, "no header row"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCmd(t, "", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errUsage) != tc.usage {
				t.Errorf("err = %v; want one containing %q, usage error %v", err, tc.want, tc.usage)
			}
		})
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	off := newProgressBar(&buf, false)
	off.update(func() string { return "never drawn" })
	off.done()
	if buf.Len() != 0 {
		t.Errorf("a progress bar off the terminal wrote %q", buf.String())
	}
	on := newProgressBar(&buf, true)
	on.update(func() string { return "importing  50% line 2" })
	on.done()
	on.update(func() string { return "classifying 1/2" })
	on.done()
	want := "\rimporting  50% line 2\r" + strings.Repeat(" ", 21) + "\r" + "\rclassifying 1/2\r" + strings.Repeat(" ", 15) + "\r"
	if buf.String() != want {
		t.Errorf("progress output %q, want %q", buf.String(), want)
	}
	if writesToTerminal(&buf) {
		t.Error("a buffer is not a terminal")
	}
}

func TestPercent(t *testing.T) {
	tests := []struct {
		line, lines int
		want        string
	}{
		{0, 0, "    "},
		{0, 200, "  0%"},
		{100, 200, " 50%"},
		{201, 200, "100%"}, // never above 100
	}
	for _, tc := range tests {
		if got := percent(tc.line, tc.lines); got != tc.want {
			t.Errorf("percent(%d, %d) = %q, want %q", tc.line, tc.lines, got, tc.want)
		}
	}
}

func TestCountLines(t *testing.T) {
	tests := []struct {
		content string
		want    int
	}{
		{"", 0},
		{"a\n", 1},
		{"a\nb", 2},
		{"a\r\nb\r\n\r\n", 3},
		{strings.Repeat("x\n", 200000), 200000}, // more than one read
	}
	for _, tc := range tests {
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := countLines(f)
		if err != nil || got != tc.want {
			t.Errorf("countLines(%.10q) = %d, %v; want %d", tc.content, got, err, tc.want)
		}
		// The file is rewound for the import.
		if rest, _ := io.ReadAll(f); string(rest) != tc.content {
			t.Errorf("countLines(%.10q) did not rewind the file", tc.content)
		}
		f.Close()
	}
}

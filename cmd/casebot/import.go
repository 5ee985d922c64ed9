package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/casebot/casebot/intake"
	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// progressEvery is the least time between two redraws of the progress line.
const progressEvery = 100 * time.Millisecond

// cmdImport backfills history from a JSONL or CSV file (SPEC section 2).
//
// Tickets are stored by intake.Import, then each new one is classified with
// the same rules and classifier as live tickets, so metrics, patterns and the
// repeat rule see them. They are history handled elsewhere: no card is
// posted, nothing is drafted, and they are stored closed (see
// importClassify).
func cmdImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c commonFlags
	fs := newFlagSet("import", stderr, &c)
	format := fs.String("format", "", "jsonl or csv (default: from the file name's extension, jsonl unless .csv)")
	classifier := fs.String("classifier", "", "keyword or ollama (default: ollama when OLLAMA_HOST is set)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: import takes one FILE, got %d arguments", errUsage, len(pos))
	}
	if err := checkClassifier(*classifier); err != nil {
		return err
	}
	path := pos[0]
	if *format == "" {
		*format = intake.FormatJSONL
		if strings.EqualFold(filepath.Ext(path), ".csv") {
			*format = intake.FormatCSV
		}
	}
	if *format != intake.FormatJSONL && *format != intake.FormatCSV {
		return fmt.Errorf("%w: --format %q: use jsonl or csv", errUsage, *format)
	}
	cfg, err := loadConfig(fs, c)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer f.Close()

	dbPath := c.db
	if dbPath == "" {
		dbPath = defaultDB
	}
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	tr, err := triage.NewTriager(cfg.Config, db, nil)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	stopModel, err := attachModel(ctx, tr, cfg, *classifier, false, stderr)
	if err != nil {
		return err
	}
	defer stopModel()

	bar := newProgressBar(stderr, writesToTerminal(stderr))
	var lines int
	if bar.on {
		if lines, err = countLines(f); err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
	// Tickets are classified after the whole file is stored, so the repeat
	// rule of each sees every earlier ticket of its customer whatever the
	// order of the file.
	var todo []string
	collect := func(ctx context.Context, in triage.Inbound) (triage.Ticket, error) {
		t, err := tr.Intake(ctx, in)
		if err == nil || (errors.Is(err, triage.ErrDuplicate) && t.State == triage.StateReceived) {
			// A duplicate still received is one an interrupted import
			// stored but did not classify: this run finishes it.
			todo = append(todo, t.ID)
		}
		return t, err
	}
	sum, err := intake.Import(ctx, f, *format, collect, func(p intake.Progress) {
		bar.update(func() string {
			return fmt.Sprintf("importing %s line %d: %d imported, %d duplicates, %d rejected",
				percent(p.Line, lines), p.Line, p.Imported, p.Duplicates, p.Rejected)
		})
	})
	bar.done()
	printImportSummary(stdout, sum)
	if err != nil {
		return fmt.Errorf("import %s: %w (run the import again to continue: stored lines are skipped)", path, err)
	}

	byModel, err := importClassify(ctx, tr, todo, func(done int) {
		bar.update(func() string { return fmt.Sprintf("classifying %d/%d", done, len(todo)) })
	})
	bar.done()
	fmt.Fprintf(stdout, "classified %d (model %d, rules %d); no cards posted\n", len(todo), byModel, len(todo)-byModel)
	if err != nil {
		return fmt.Errorf("classify imported tickets: %w (run the import again to finish)", err)
	}
	return nil
}

// importClassify classifies stored, still received tickets as history. It
// uses the Triager's rules, classifier and routes, as a live ticket would
// get, and stores the result with an "imported" audit event that carries no
// post, moving the ticket from received straight to closed: the lifecycle
// has no such transition for live tickets, but an imported ticket was
// handled before casebot saw it. Closed keeps it off Slack, out of the
// pipeline's resume (which would post a card for a received ticket) and off
// the agents' open lists. It returns how many the model classified.
func importClassify(ctx context.Context, tr *triage.Triager, ids []string, progress func(done int)) (byModel int, err error) {
	for i, id := range ids {
		t, err := tr.Store.Get(ctx, id)
		if err != nil {
			return byModel, err
		}
		if t.State != triage.StateReceived {
			continue
		}
		t, err = tr.ClassifyImported(ctx, id)
		if err != nil {
			return byModel, err
		}
		if t.ClassifiedBy == "model" {
			byModel++
		}
		progress(i + 1)
	}
	return byModel, nil
}

// printImportSummary writes what was imported and each rejected line.
func printImportSummary(w io.Writer, sum intake.Summary) {
	rejected := len(sum.Rejected) + sum.MoreRejected
	fmt.Fprintf(w, "imported %d, duplicates %d, rejected %d\n", sum.Imported, sum.Duplicates, rejected)
	for _, r := range sum.Rejected {
		fmt.Fprintf(w, "  line %d: %s\n", r.Line, r.Reason)
	}
	if sum.MoreRejected > 0 {
		fmt.Fprintf(w, "  … and %d more rejected lines\n", sum.MoreRejected)
	}
}

// countLines counts the lines of f, for the progress percentage, and
// rewinds it. A file that cannot be rewound (a pipe) has no known length:
// 0.
func countLines(f *os.File) (int, error) {
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return 0, nil
	}
	buf := make([]byte, 256<<10)
	n, last := 0, byte('\n')
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if k > 0 {
			last = buf[k-1]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("count lines: %w", err)
		}
	}
	if last != '\n' {
		n++ // a last line without a line end
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("rewind: %w", err)
	}
	return n, nil
}

// percent is line/lines as a percentage, or blank when the number of
// lines is unknown.
func percent(line, lines int) string {
	if lines <= 0 {
		return "    "
	}
	return fmt.Sprintf("%3d%%", min(100, line*100/lines))
}

// writesToTerminal reports whether w is a terminal, where a progress line
// that redraws itself is welcome; a file or pipe gets only the summary.
func writesToTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar redraws one status line on a terminal, at most every
// progressEvery; when off it writes nothing.
type progressBar struct {
	w    io.Writer
	on   bool
	last time.Time
	// width is the length of the line drawn last, to blank it out.
	width int
}

func newProgressBar(w io.Writer, on bool) *progressBar { return &progressBar{w: w, on: on} }

// update redraws the line with line() unless it was drawn very recently;
// line is only called when drawing.
func (b *progressBar) update(line func() string) {
	if !b.on || time.Since(b.last) < progressEvery {
		return
	}
	b.last = time.Now()
	b.draw(line())
}

func (b *progressBar) draw(s string) {
	pad := max(0, b.width-len(s))
	fmt.Fprintf(b.w, "\r%s%s", s, strings.Repeat(" ", pad))
	b.width = len(s)
}

// done clears the line so the summary starts on a clean one.
func (b *progressBar) done() {
	if b.on && b.width > 0 {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", b.width))
	}
	b.width, b.last = 0, time.Time{}
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// retentionEvery is how often the running bot applies store.retention_days.
const retentionEvery = 24 * time.Hour

// purger is the part of the store retention needs.
type purger interface {
	Purge(ctx context.Context, before time.Time) (store.PurgeStats, error)
}

// retentionLoop deletes the tickets received more than days ago, at start
// and then daily, until ctx ends. A failed purge is logged and tried again
// the next day rather than stopping the bot: retention is housekeeping, and
// the batches already committed stay done.
func retentionLoop(ctx context.Context, db purger, days int, clock triage.Clock, logger *slog.Logger) error {
	tick := time.NewTicker(retentionEvery)
	defer tick.Stop()
	for {
		retain(ctx, db, days, clock, logger)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// retain runs one retention purge.
func retain(ctx context.Context, db purger, days int, clock triage.Clock, logger *slog.Logger) {
	before := clock.Now().AddDate(0, 0, -days)
	st, err := db.Purge(ctx, before)
	switch {
	case err != nil && ctx.Err() != nil:
	case err != nil:
		logger.Error("retention purge failed; retrying tomorrow", "before", before, "tickets_deleted", st.Tickets, "err", err)
	case st.Tickets > 0 || st.Kept > 0:
		// Kept tickets are older than retention_days but still need work.
		logger.Info("retention purge", "before", before, "tickets", st.Tickets, "customers", st.Customers,
			"audit_events", st.AuditEvents, "posts", st.Posts, "kept_needing_work", st.Kept)
	}
}

// openExisting opens the store at path for a maintenance command. A missing
// file is an error (opening it would create an empty store), and a file the
// running bot holds gets an explanation of what to do instead.
func openExisting(path, cmd string) (*store.DB, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, fmt.Errorf("no store at %s: give the bot's database file with --db FILE", path)
		}
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	db, err := store.Open(path, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%s is held by a running casebot: bbolt lets one process open its file, "+
			"so stop the bot, run casebot %s, then start the bot again: %w", path, cmd, err)
	}
	return db, err
}

// dbPath is --db, or the default store.
func dbPath(c commonFlags) string {
	if c.db == "" {
		return defaultDB
	}
	return c.db
}

// cmdBackup copies the store to FILE: a consistent copy, written to a
// temporary file and renamed into place, mode 0600.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c commonFlags
	fs := newFlagSet("backup", stderr, &c)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: backup takes one FILE to write, got %q", errUsage, pos)
	}
	src := dbPath(c)
	db, err := openExisting(src, "backup")
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := db.BackupFile(ctx, pos[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "backed up %s to %s (%d bytes)\n", src, pos[0], n)
	return err
}

// cmdErase erases one customer's data for a privacy request. Without --yes it
// asks for confirmation, which needs a terminal.
func cmdErase(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return erase(ctx, args, stdin, canAsk(stdin), stdout, stderr)
}

// canAsk reports whether r is a terminal someone can answer a question on.
func canAsk(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// erase is cmdErase with whether stdin is interactive decided by the caller.
func erase(ctx context.Context, args []string, stdin io.Reader, interactive bool, stdout, stderr io.Writer) error {
	var c commonFlags
	fs := newFlagSet("erase", stderr, &c)
	id := fs.String("customer", "", "the customer `ID` to erase, e.g. CU-000045")
	email := fs.String("email", "", "find the customer by email `ADDRESS` instead")
	yes := fs.Bool("yes", false, "erase without asking")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return fmt.Errorf("%w: erase takes no arguments, got %q", errUsage, pos)
	case (*id == "") == (*email == ""):
		return fmt.Errorf("%w: erase needs one of --customer ID or --email ADDRESS", errUsage)
	}
	path := dbPath(c)
	db, err := openExisting(path, "erase")
	if err != nil {
		return err
	}
	defer db.Close()
	cust, err := findCustomer(ctx, db, path, *id, *email)
	if err != nil {
		return err
	}
	tickets, err := db.CustomerTickets(ctx, cust.ID, time.Time{})
	if err != nil {
		return err
	}
	if !*yes {
		if !interactive {
			return fmt.Errorf("erasing customer %s cannot be undone: confirm with --yes when not at a terminal", cust.ID)
		}
		ok, err := confirm(stdin, stderr, fmt.Sprintf("Erase customer %s and its %d tickets for good? Type yes: ", cust.ID, len(tickets)))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("erase of customer %s cancelled: nothing was erased", cust.ID)
		}
	}
	st, err := db.EraseCustomer(ctx, cust.ID)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "erased customer %s: %d tickets, %d audit events, %d pending posts, %d identity keys\n",
		st.CustomerID, st.Tickets, st.AuditEvents, st.Posts, st.Identities)
	return err
}

// findCustomer looks the customer up by ID or by the identity key of an
// email address.
func findCustomer(ctx context.Context, db *store.DB, path, id, email string) (triage.Customer, error) {
	if id != "" {
		c, err := db.Customer(ctx, id)
		if errors.Is(err, triage.ErrNotFound) {
			return c, fmt.Errorf("no customer %s in %s", id, path)
		}
		return c, err
	}
	keys := triage.CustomerKey(email, "", "")
	if len(keys) == 0 {
		return triage.Customer{}, fmt.Errorf("%w: --email is blank", errUsage)
	}
	c, err := db.CustomerByKey(ctx, keys[0])
	if errors.Is(err, triage.ErrNotFound) {
		return c, fmt.Errorf("no customer with email %s in %s", strings.TrimSpace(email), path)
	}
	return c, err
}

// confirm asks question and reports whether the answer is yes.
func confirm(stdin io.Reader, w io.Writer, question string) (bool, error) {
	if _, err := io.WriteString(w, question); err != nil {
		return false, err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read answer: %w", err)
	}
	return strings.EqualFold(strings.TrimSpace(line), "yes"), nil
}

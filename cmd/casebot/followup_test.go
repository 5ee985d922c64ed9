package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot"
	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// TestFollowUpAfterRestartForTicketResolvedLongAfterArrival runs the bbolt
// store and the scheduler on one fake clock: a ticket resolved 60 days after
// it arrived gets its follow-up from a scheduler started after a restart,
// and its no-answer close from the next one.
func TestFollowUpAfterRestartForTicketResolvedLongAfterArrival(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "casebot.db")
	fake := slackfake.New(slackfake.Options{PostRate: -1})
	t.Cleanup(fake.Close)
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()))

	open := func() *store.DB {
		db, err := store.Open(path, store.Options{Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	tk, err := db.Create(ctx, &triage.Ticket{Source: triage.SourceSlack, ExternalID: "C0INTAKE/1",
		Body: "Where is my parcel?", ReplyTo: "C0INTAKE/1772618000.000100", ReceivedAt: clock.Now().AddDate(0, 0, -60)},
		triage.Customer{SlackUserID: "U0CUST001"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Update(ctx, tk.ID, func(x *triage.Ticket) (triage.AuditEvent, error) {
		x.State, x.Reviewed = triage.StateReplied, true
		x.Route = triage.Route{Channel: "C0QUEUE"}
		x.Slack = triage.SlackRef{Channel: "C0QUEUE", TS: "1772618400.000100"}
		return triage.AuditEvent{Actor: "test", Action: "fixture"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	tr, err := triage.NewTriager(triage.DefaultConfig(), db, clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Resolve(ctx, tk.ID, "U0AGENT01", triage.Resolution{Method: "information"}, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// run restarts casebot: a fresh store handle and scheduler, the clock
	// moved on by d, and waits for the scheduler's scan at the new time.
	run := func(d time.Duration) triage.Ticket {
		t.Helper()
		db := open()
		defer db.Close()
		s, err := bot.NewScheduler(bot.SchedulerConfig{API: api, Store: db, Clock: clock, OpsChannel: "C0OPS",
			FollowUpEnabled: true, FollowUpTemplate: "How did we do?"})
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if err := s.Start(sctx); err != nil {
			t.Fatal(err)
		}
		defer s.Shutdown()
		clock.Advance(d)
		now := clock.Now()
		// The deadline only stops a hung test.
		deadline := time.Now().Add(20 * time.Second)
		for s.Stats().LastFollowUpScan.Before(now) {
			if time.Now().After(deadline) {
				t.Fatal("no follow-up scan after the clock moved")
			}
			time.Sleep(time.Millisecond)
		}
		got, err := db.Get(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := run(48 * time.Hour); got.State != triage.StateFollowedUp {
		t.Fatalf("48 h after resolution and a restart: state %s, want followed_up", got.State)
	}
	if got := run(bot.DefaultNoAnswerAfter); got.State != triage.StateClosed {
		t.Errorf("7 days after the follow-up and a restart: state %s, want closed", got.State)
	}
}

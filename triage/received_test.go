package triage_test

import (
	"context"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
)

func TestReceivedTime(t *testing.T) {
	now := t0
	cases := []struct {
		name   string
		sender time.Time
		want   time.Time
	}{
		{"none", time.Time{}, now},
		{"a minute before", now.Add(-time.Minute), now.Add(-time.Minute)},
		{"just within the skew", now.Add(-triage.MaxSenderSkew), now.Add(-triage.MaxSenderSkew)},
		{"just past the skew", now.Add(-triage.MaxSenderSkew - time.Second), now},
		{"two years ago", now.AddDate(-2, 0, 0), now},
		{"in the future", now.Add(time.Second), now},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := triage.ReceivedTime(tc.sender, now); !got.Equal(tc.want) {
				t.Errorf("ReceivedTime(%s, %s) = %s, want %s", tc.sender, now, got, tc.want)
			}
		})
	}
}

// TestIntakeKeepsSenderTimeAndNeverTheFuture stores the sender's time as
// information and places no ticket ahead of casebot's clock.
func TestIntakeKeepsSenderTimeAndNeverTheFuture(t *testing.T) {
	cases := []struct {
		name               string
		received, sender   time.Time
		wantAt, wantSender time.Time
	}{
		{"zero is now", time.Time{}, t0.AddDate(-2, 0, 0), t0, t0.AddDate(-2, 0, 0)},
		{"past receipt kept", t0.Add(-time.Hour), time.Time{}, t0.Add(-time.Hour), time.Time{}},
		{"future receipt is now", t0.Add(time.Hour), t0.Add(time.Hour), t0, t0.Add(time.Hour)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			in := f.inbound(string(rune('a'+i)), "where is my parcel?", ann)
			in.ReceivedAt, in.SenderAt = tc.received, tc.sender
			tk, err := f.tr.Intake(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if !tk.ReceivedAt.Equal(tc.wantAt) || !tk.SenderAt.Equal(tc.wantSender) {
				t.Errorf("received %s, sender %s; want %s, %s", tk.ReceivedAt, tk.SenderAt, tc.wantAt, tc.wantSender)
			}
		})
	}
}

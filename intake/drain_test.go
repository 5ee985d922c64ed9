package intake

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

var (
	errTestDelivery = errors.New("test delivery failed")
	errTestRefused  = errors.New("test reply refused")
)

// TestDrainerClassify runs one drain over two replies to ticket a, whose
// first send fails, and one to ticket b: how the failure is classified
// decides whether a's reply is retried or parked, and a's second reply
// always waits behind its first. Only the reply that went out is told to
// onDelivered, at the drainer's clock.
func TestDrainerClassify(t *testing.T) {
	tests := []struct {
		name        string
		permanent   bool
		maxAttempts int
		wantSent    []string // texts sent, in order
		wantFailed  []string // texts reported through onFailed
		wantPending map[string]int
	}{
		{"retryable", false, 3, []string{"a1", "b1"}, nil, map[string]int{"a1": 1, "a2": 0}},
		{"permanent", true, 3, []string{"a1", "b1"}, []string{"a1", "a2"}, map[string]int{"a1": 0, "a2": 0}},
		{"last attempt", false, 1, []string{"a1", "b1"}, []string{"a1", "a2"}, map[string]int{"a1": 1, "a2": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			outbox := triagetest.NewTickets(nil)
			channel := triage.OutboundChannel(triage.SourceWebhook)
			for _, p := range []struct{ ticket, text string }{{"a", "a1"}, {"a", "a2"}, {"b", "b1"}} {
				if err := outbox.Enqueue(ctx, triage.Post{Kind: triage.PostCustomerReply, TicketID: p.ticket, Channel: channel, Text: p.text}); err != nil {
					t.Fatal(err)
				}
			}
			var sent, failed, delivered []string
			clock := triagetest.NewClock(t0)
			d := drainer{
				outbox: outbox, channel: channel, name: "test", maxAttempts: tt.maxAttempts,
				baseDelay: time.Hour, maxDelay: time.Hour, poll: time.Hour,
				errDelivery: errTestDelivery, errRefused: errTestRefused,
				onFailed: func(p triage.Post, err error) {
					if !errors.Is(err, errTestDelivery) && !errors.Is(err, errTestRefused) {
						t.Errorf("onFailed(%s) with %v, not a sentinel", p.Text, err)
					}
					failed = append(failed, p.Text)
				},
				send: func(_ context.Context, p triage.Post) error {
					sent = append(sent, p.Text)
					if p.TicketID == "a" {
						return errTestDelivery
					}
					return nil
				},
				onDelivered: func(p triage.Post, at time.Time) {
					if !at.Equal(clock.Now()) {
						t.Errorf("onDelivered(%s) at %v, want the clock's %v", p.Text, at, clock.Now())
					}
					delivered = append(delivered, p.Text)
				},
				clock:    clock,
				classify: func(error) (bool, time.Duration) { return tt.permanent, 0 },
				logSent:  "sent", logNotDone: "not done",
			}
			d.init(nil)
			d.drain(ctx)
			if !slices.Equal(sent, tt.wantSent) {
				t.Errorf("sent %q, want %q", sent, tt.wantSent)
			}
			if !slices.Equal(failed, tt.wantFailed) {
				t.Errorf("reported %q, want %q", failed, tt.wantFailed)
			}
			if !slices.Equal(delivered, []string{"b1"}) {
				t.Errorf("told delivered %q, want [b1]", delivered)
			}
			posts, err := outbox.Pending(ctx, channel, 10)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, p := range posts {
				got[p.Text] = p.Attempts
			}
			if !maps.Equal(got, tt.wantPending) {
				t.Errorf("pending %v, want %v", got, tt.wantPending)
			}
		})
	}
}

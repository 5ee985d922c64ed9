package triage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// TestRecoveryCSATKeepsEveryRating follows tickets through reopen and
// resolve cycles: a low rating reopens, resolving again starts a new
// follow-up, and the recovery CSAT still counts every follow-up sent and
// every rating given (issue 9: resolving again erased the low rating).
func TestRecoveryCSATKeepsEveryRating(t *testing.T) {
	tests := []struct {
		name    string
		ratings []int // one per follow-up cycle; 0 leaves it unanswered
		mean    *float64
		share   *float64
		rate    *float64
	}{
		{"one rating", []int{4}, ptrTo(4), ptrTo(1), ptrTo(1)},
		// 1 reopens; resolved again, rated 5: mean (1+5)/2, one of two 4-5.
		{"low then high", []int{1, 5}, ptrTo(3), ptrTo(0.5), ptrTo(1)},
		// 2 reopens; the second follow-up is not answered: 1 rating of 2 sent.
		{"low then silence", []int{2, 0}, ptrTo(2), ptrTo(0), ptrTo(0.5)},
		{"three cycles", []int{1, 2, 4}, ptrTo(7.0 / 3), ptrTo(1.0 / 3), ptrTo(1)},
	}
	res := triage.Resolution{RootCause: "carrier_delay", Method: "information"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", routine, draft)
			must := func(_ triage.Ticket, err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(f.tr.Approve(ctx, tk.ID, agent, f.version(tk.ID), draft))
			for _, r := range tc.ratings {
				must(f.tr.Resolve(ctx, tk.ID, agent, res, time.Hour))
				f.clock.Advance(time.Hour)
				must(f.tr.FollowedUp(ctx, tk.ID, ""))
				if r > 0 {
					must(f.tr.Rate(ctx, tk.ID, r))
				}
			}
			got := f.get(t, tk.ID)
			if len(got.FollowUps) != len(tc.ratings) {
				t.Fatalf("FollowUps %+v, want %d", got.FollowUps, len(tc.ratings))
			}
			for i, r := range tc.ratings {
				if fu := got.FollowUps[i]; fu.Rating != r || fu.SentAt.IsZero() || fu.RatedAt.IsZero() != (r == 0) {
					t.Errorf("follow-up %d = %+v, want rating %d", i, fu, r)
				}
			}
			m := triage.ComputeMetrics("30d", []triage.Ticket{got})
			c := m.RecoveryCSAT
			if !eqPtr(c.Mean, tc.mean) || !eqPtr(c.SatisfiedShare, tc.share) || !eqPtr(c.ResponseRate, tc.rate) {
				t.Errorf("csat mean %v share %v response %v, want %v %v %v", fmtPtr(c.Mean), fmtPtr(c.SatisfiedShare),
					fmtPtr(c.ResponseRate), fmtPtr(tc.mean), fmtPtr(tc.share), fmtPtr(tc.rate))
			}
		})
	}
}

// TestDraftAcceptanceCountsModelDrafts sends each draft unedited: only a
// model's draft is an AI draft; a template's counts nowhere (issue 9).
func TestDraftAcceptanceCountsModelDrafts(t *testing.T) {
	tests := []struct {
		by         string
		sent       bool
		acceptance *float64
	}{
		{triage.DraftByModel, true, ptrTo(1)},
		{triage.DraftByTemplate, false, nil},
		{"", false, nil},
	}
	for _, tc := range tests {
		t.Run("draft by "+tc.by, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", routine, draft)
			if _, err := f.store.Update(ctx, tk.ID, func(tk *triage.Ticket) (triage.AuditEvent, error) {
				tk.DraftBy = tc.by
				return triage.AuditEvent{TicketID: tk.ID, Actor: triage.ActorSystem, Action: "drafted", From: tk.State, To: tk.State}, nil
			}); err != nil {
				t.Fatal(err)
			}
			got, err := f.tr.Approve(ctx, tk.ID, agent, f.version(tk.ID), draft)
			if err != nil {
				t.Fatal(err)
			}
			if got.DraftSent != tc.sent {
				t.Errorf("DraftSent %v, want %v", got.DraftSent, tc.sent)
			}
			if m := triage.ComputeMetrics("30d", []triage.Ticket{got}); !eqPtr(m.DraftAcceptance, tc.acceptance) {
				t.Errorf("draft acceptance %v, want %v", fmtPtr(m.DraftAcceptance), fmtPtr(tc.acceptance))
			}
		})
	}
}

// TestFirstResponseWhenReplyLeaves checks that an approval alone is no
// first response: a queued reply counts once its sender delivered it, one
// with no way back once the agent marks it sent by hand, and the automatic
// acknowledgement never (issue 9).
func TestFirstResponseWhenReplyLeaves(t *testing.T) {
	tests := []struct {
		name   string
		source triage.Source
		// mark marks the reply sent by hand instead of a sender's delivery.
		mark    bool
		markErr error
	}{
		{"email reply delivered", triage.SourceEmail, false, nil},
		{"manual ticket marked sent", triage.SourceManual, true, nil},
		{"queued reply cannot be marked by hand", triage.SourceEmail, true, triage.ErrNoReplyPending},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			f.tr.Acknowledgement = "We got your message."
			in := f.inbound("m1", routine, ann)
			in.Source = tc.source
			tk := f.process(t, in)
			for _, p := range f.store.Posts() {
				if p.Kind == triage.PostCustomerReply && triage.IsReply(p) {
					t.Errorf("acknowledgement %+v counts as a reply", p)
				}
			}
			f.clock.Advance(10 * time.Minute)
			got, err := f.tr.Approve(ctx, tk.ID, agent, f.version(tk.ID), draft)
			if err != nil {
				t.Fatal(err)
			}
			if !got.FirstResponseAt.IsZero() {
				t.Fatalf("FirstResponseAt %v at the click, before the reply left", got.FirstResponseAt)
			}
			if triage.AwaitsHandSend(got) != (tc.source == triage.SourceManual) {
				t.Errorf("AwaitsHandSend %v for a %s ticket", triage.AwaitsHandSend(got), tc.source)
			}
			sent := f.clock.Advance(5 * time.Minute)
			if tc.mark {
				got, err = f.tr.MarkSent(ctx, tk.ID, agent)
			} else {
				got, err = f.tr.ReplyDelivered(ctx, tk.ID, sent)
			}
			if !errors.Is(err, tc.markErr) {
				t.Fatalf("err %v, want %v", err, tc.markErr)
			}
			if tc.markErr != nil {
				return
			}
			if !got.FirstResponseAt.Equal(sent) || !got.ReplySentAt.Equal(sent) || triage.AwaitsHandSend(got) {
				t.Errorf("FirstResponseAt %v ReplySentAt %v, want %v", got.FirstResponseAt, got.ReplySentAt, sent)
			}
			m := triage.ComputeMetrics("30d", []triage.Ticket{got})
			if !eqPtr(m.FirstResponseTime.P50, ptrTo(15*60)) {
				t.Errorf("first response p50 %v, want 900 s", fmtPtr(m.FirstResponseTime.P50))
			}
			if tc.mark {
				if _, err := f.tr.MarkSent(ctx, tk.ID, agent); !errors.Is(err, triage.ErrNoReplyPending) {
					t.Errorf("second MarkSent: err %v, want ErrNoReplyPending", err)
				}
			}
		})
	}
}

// TestIsReply tells an approved reply from the automatic customer messages.
func TestIsReply(t *testing.T) {
	tests := []struct {
		p    triage.Post
		want bool
	}{
		{triage.Post{Kind: triage.PostCustomerReply, Action: triage.ActionReply}, true},
		{triage.Post{Kind: triage.PostCustomerReply}, true}, // queued by an older casebot
		{triage.Post{Kind: triage.PostCustomerReply, Action: triage.ActionAcknowledged}, false},
		{triage.Post{Kind: triage.PostCustomerReply, Action: "follow_up"}, false},
		{triage.Post{Kind: triage.PostThread, Action: triage.ActionReply}, false},
	}
	for _, tc := range tests {
		if got := triage.IsReply(tc.p); got != tc.want {
			t.Errorf("IsReply(%+v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

// TestOverrideRateModelOnly overrides a type the keyword rules chose and
// one the model chose: only the model's counts (issue 9).
func TestOverrideRateModelOnly(t *testing.T) {
	tests := []struct {
		name  string
		model *triagetest.Classifier
		by    string
		rate  *float64
	}{
		{"model classified", &triagetest.Classifier{Result: calm}, "model", ptrTo(1)},
		{"rules classified", &triagetest.Classifier{Err: errors.New("model down")}, "rules", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.model)
			tk := f.process(t, f.inbound("m1", routine, ann))
			got, err := f.tr.Override(context.Background(), tk.ID, agent, "type", "billing")
			if err != nil {
				t.Fatal(err)
			}
			if got.ClassifiedBy != tc.by {
				t.Fatalf("classified by %q, want %q", got.ClassifiedBy, tc.by)
			}
			if m := triage.ComputeMetrics("30d", []triage.Ticket{got}); !eqPtr(m.HumanOverrideRate, tc.rate) {
				t.Errorf("override rate %v, want %v", fmtPtr(m.HumanOverrideRate), fmtPtr(tc.rate))
			}
		})
	}
}

func eqPtr(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return near(*a, *b)
}

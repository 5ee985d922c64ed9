package triage_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

const (
	agent    = "U0AGENT01" // not an approver in the default config
	approver = "U0LEAD001"
	routine  = "Where is my parcel? It was due on Monday."
	lawyer   = "My lawyer will hear about this parcel."
	draft    = "Hi Ann, I'm sorry your parcel is late. I've asked the carrier for an update and will write again tomorrow."
)

// ticketIn processes body from ann as a new ticket and writes draft reply as
// its draft (none when reply is empty).
func (f *fixture) ticketIn(t *testing.T, ext, body, reply string) triage.Ticket {
	t.Helper()
	tk := f.process(t, f.inbound(ext, body, ann))
	if reply == "" {
		return tk
	}
	f.tr.Drafter = &triagetest.Drafter{Result: triage.Draft{Brief: "brief", Reply: reply}}
	if _, err := f.tr.WriteDraft(context.Background(), tk.ID, ann, ""); err != nil {
		t.Fatal(err)
	}
	return f.byModel(t, tk.ID)
}

// byModel marks the draft of ticket id as the model's, as a model drafter
// records it.
func (f *fixture) byModel(t *testing.T, id string) triage.Ticket {
	t.Helper()
	tk, err := f.store.Update(context.Background(), id, func(tk *triage.Ticket) (triage.AuditEvent, error) {
		tk.DraftBy = triage.DraftByModel
		return triage.AuditEvent{TicketID: id, Actor: triage.ActorSystem, Action: "drafted", From: tk.State, To: tk.State}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// unchanged fails when a rejected action changed the ticket or its audit
// trail.
func (f *fixture) unchanged(t *testing.T, before triage.Ticket, audit []triage.AuditEvent) {
	t.Helper()
	if got := f.get(t, before.ID); !reflect.DeepEqual(got, before) {
		t.Errorf("rejected action changed the ticket:\n got %+v\nwant %+v", got, before)
	}
	if got := f.store.Audit(before.ID); len(got) != len(audit) {
		t.Errorf("rejected action recorded %+v", got[len(audit):])
	}
}

// errAny marks a table case that expects some error, whichever.
var errAny = errors.New("any error")

func lastEvent(f *fixture, id string) triage.AuditEvent {
	audit := f.store.Audit(id)
	return audit[len(audit)-1]
}

func TestCanApprove(t *testing.T) {
	cfg := triage.DefaultConfig()
	tests := []struct {
		actor    string
		approval bool
		want     bool
	}{
		{agent, false, true},
		{approver, false, true},
		{agent, true, false},
		{approver, true, true},
		{"", true, false},
	}
	for _, tc := range tests {
		if got := cfg.CanApprove(tc.actor, triage.Ticket{NeedsApproval: tc.approval}); got != tc.want {
			t.Errorf("CanApprove(%q, NeedsApproval %v) = %v, want %v", tc.actor, tc.approval, got, tc.want)
		}
	}
}

func TestApproveNeedsAuthority(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, &triagetest.Classifier{Result: calm})
	tk := f.ticketIn(t, "m1", lawyer, draft)
	if !tk.NeedsApproval {
		t.Fatal("legal ticket does not need approval")
	}
	audit := f.store.Audit(tk.ID)
	f.clock.Advance(5 * time.Minute)

	if _, err := f.tr.Approve(ctx, tk.ID, agent, f.version(tk.ID), draft); !errors.Is(err, triage.ErrNotAuthorized) {
		t.Fatalf("Approve by %s: err = %v, want ErrNotAuthorized", agent, err)
	}
	f.unchanged(t, tk, audit)

	got, err := f.tr.Approve(ctx, tk.ID, approver, f.version(tk.ID), draft)
	if err != nil {
		t.Fatal(err)
	}
	// Queued, not delivered yet: no first response.
	if got.State != triage.StateReplied || !got.FirstResponseAt.IsZero() || got.Sent != draft ||
		!got.Reviewed || got.Assignee != approver {
		t.Errorf("after approval: state %s first response %v sent %q reviewed %v assignee %q",
			got.State, got.FirstResponseAt, got.Sent, got.Reviewed, got.Assignee)
	}
	ev := lastEvent(f, tk.ID)
	if ev.Action != "approved" || ev.Actor != approver || ev.From != triage.StateEscalated || ev.To != triage.StateReplied {
		t.Errorf("audit event %+v", ev)
	}
}

func TestApproveDraftRevision(t *testing.T) {
	tests := []struct {
		name     string
		draft    string // "" for no model draft
		reply    string
		sent     bool
		min, max float64 // DraftRevision in [min, max]
		accepted bool    // counts as an accepted draft
	}{
		{"unchanged", draft, draft, true, 0, 0, true},
		{"light edit", draft, draft + " Best, Sam", true, 0.01, 0.19, true},
		{"rewritten", draft, "Your refund has been issued.", true, 0.2, 1, false},
		{"no draft", "", "Written by hand.", false, -1, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", routine, tc.draft)
			got, err := f.tr.Approve(context.Background(), tk.ID, agent, f.version(tk.ID), tc.reply)
			if err != nil {
				t.Fatal(err)
			}
			if got.DraftSent != tc.sent || got.DraftRevision < tc.min || got.DraftRevision > tc.max {
				t.Errorf("DraftSent %v DraftRevision %v, want %v in [%v, %v]", got.DraftSent, got.DraftRevision, tc.sent, tc.min, tc.max)
			}
			m := triage.ComputeMetrics("30d", []triage.Ticket{got})
			if tc.sent != (m.DraftAcceptance != nil) || (m.DraftAcceptance != nil && (*m.DraftAcceptance == 1) != tc.accepted) {
				t.Errorf("draft acceptance %v, want sent %v accepted %v", fmtPtr(m.DraftAcceptance), tc.sent, tc.accepted)
			}
		})
	}
}

func TestFirstResponseOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, &triagetest.Classifier{Result: calm})
	tk := f.ticketIn(t, "m1", routine, draft)
	f.clock.Advance(10 * time.Minute)
	if _, err := f.tr.Approve(ctx, tk.ID, agent, f.version(tk.ID), draft); err != nil {
		t.Fatal(err)
	}
	first := f.clock.Advance(time.Minute)
	if _, err := f.tr.ReplyDelivered(ctx, tk.ID, first); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.tr.Escalate(ctx, tk.ID, agent, "support", "customer wrote back"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	got, err := f.tr.Approve(ctx, tk.ID, agent, f.version(tk.ID), "Second answer.")
	if err != nil {
		t.Fatal(err)
	}
	if !got.ReplySentAt.IsZero() {
		t.Errorf("ReplySentAt %v right after the second approval, want zero until delivered", got.ReplySentAt)
	}
	second := f.clock.Advance(time.Minute)
	got, err = f.tr.ReplyDelivered(ctx, tk.ID, second)
	if err != nil {
		t.Fatal(err)
	}
	if !got.FirstResponseAt.Equal(first) || !got.ReplySentAt.Equal(second) || got.Sent != "Second answer." ||
		got.State != triage.StateReplied {
		t.Errorf("FirstResponseAt %v (want %v), ReplySentAt %v (want %v), sent %q, state %s",
			got.FirstResponseAt, first, got.ReplySentAt, second, got.Sent, got.State)
	}
}

func TestApproveEmptyReply(t *testing.T) {
	for _, reply := range []string{"", "  \n\t"} {
		f := newFixture(t, &triagetest.Classifier{Result: calm})
		tk := f.ticketIn(t, "m1", routine, draft)
		audit := f.store.Audit(tk.ID)
		if _, err := f.tr.Approve(context.Background(), tk.ID, agent, f.version(tk.ID), reply); err == nil {
			t.Errorf("Approve with reply %q succeeded", reply)
		}
		f.unchanged(t, tk, audit)
	}
}

func TestOverride(t *testing.T) {
	tests := []struct {
		name, field, value string
		wantErr            error // errAny: some error
		from               string
		override           bool // an Override is recorded
	}{
		{name: "type", field: "type", value: "refund", from: "delivery", override: true},
		{name: "urgency", field: "urgency", value: "high", from: "low", override: true},
		{name: "sentiment", field: "sentiment", value: "frustrated", from: "neutral", override: true},
		{name: "financial risk", field: "financial_risk", value: "medium", from: "low", override: true},
		{name: "same value", field: "type", value: "delivery", from: "delivery"},
		{name: "invalid value", field: "urgency", value: "urgent", wantErr: triage.ErrInvalidClassification},
		{name: "empty value", field: "type", value: "", wantErr: triage.ErrInvalidClassification},
		{name: "unknown field", field: "colour", value: "blue", wantErr: errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", routine, "")
			audit := f.store.Audit(tk.ID)
			now := f.clock.Advance(time.Minute)
			got, err := f.tr.Override(ctx, tk.ID, agent, tc.field, tc.value)
			if tc.wantErr != nil {
				if err == nil || (tc.wantErr != errAny && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				f.unchanged(t, tk, audit)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Reviewed {
				t.Error("Reviewed not set")
			}
			var want []triage.Override
			if tc.override {
				want = []triage.Override{{Field: tc.field, From: tc.from, To: tc.value, By: agent, At: now}}
			}
			if !reflect.DeepEqual(got.Overrides, want) {
				t.Errorf("overrides %+v, want %+v", got.Overrides, want)
			}
			if !reflect.DeepEqual(got.Original, tk.Original) {
				t.Errorf("override changed Original")
			}
			ev := lastEvent(f, tk.ID)
			if ev.Action != "classification_changed" || ev.Actor != agent || ev.From != tk.State || ev.To != tk.State {
				t.Errorf("audit event %+v", ev)
			}
			if !reflect.DeepEqual(got.Route, tk.Route) || got.State != tk.State {
				t.Errorf("override re-routed or moved the ticket")
			}
		})
	}
}

func TestEscalateTwice(t *testing.T) {
	tests := []struct {
		name, body string
		want       int
	}{
		{"routine ticket", routine, 2},
		{"escalated on arrival", lawyer, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", tc.body, "")
			var got triage.Ticket
			var err error
			for _, owner := range []string{"support", "legal"} {
				f.clock.Advance(time.Hour)
				if got, err = f.tr.Escalate(ctx, tk.ID, agent, owner, "needs judgment"); err != nil {
					t.Fatal(err)
				}
			}
			if got.Escalations != tc.want || got.State != triage.StateEscalated || !got.EscalatedAt.Equal(f.clock.Now()) ||
				got.Assignee != "legal" || !got.Reviewed {
				t.Errorf("escalations %d (want %d) state %s at %v assignee %q reviewed %v",
					got.Escalations, tc.want, got.State, got.EscalatedAt, got.Assignee, got.Reviewed)
			}
			ev := lastEvent(f, tk.ID)
			if ev.Action != "escalated" || ev.From != triage.StateEscalated || ev.To != triage.StateEscalated || ev.Actor != agent {
				t.Errorf("audit event %+v", ev)
			}
			if m := triage.ComputeMetrics("30d", []triage.Ticket{got}); *m.EscalationRate != 1 {
				t.Errorf("escalation rate %v, want 1: a ticket counts once", *m.EscalationRate)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name    string
		r       triage.Resolution
		after   time.Duration
		wantErr bool
	}{
		{"with root cause", triage.Resolution{RootCause: "carrier_delay", Method: "information", Note: "parcel found"}, 48 * time.Hour, false},
		{"no root cause, no follow-up", triage.Resolution{Method: "no_action"}, 0, false},
		{"root cause outside the taxonomy", triage.Resolution{RootCause: "aliens", Method: "refund"}, day, true},
		{"unknown method", triage.Resolution{RootCause: "carrier_delay", Method: "apology_cake"}, day, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", routine, "")
			audit := f.store.Audit(tk.ID)
			now := f.clock.Advance(3 * time.Hour)
			got, err := f.tr.Resolve(ctx, tk.ID, agent, tc.r, tc.after)
			if tc.wantErr {
				if err == nil {
					t.Fatal("Resolve succeeded")
				}
				f.unchanged(t, tk, audit)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var due time.Time
			if tc.after > 0 {
				due = now.Add(tc.after)
			}
			if got.State != triage.StateResolved || !got.ResolvedAt.Equal(now) || !got.FollowUpDue.Equal(due) ||
				got.RootCause != tc.r.RootCause || got.ResolutionMethod != tc.r.Method || got.ResolutionNote != tc.r.Note {
				t.Errorf("resolved: %s at %v due %v (want %v) root cause %q method %q", got.State, got.ResolvedAt,
					got.FollowUpDue, due, got.RootCause, got.ResolutionMethod)
			}
			if ev := lastEvent(f, tk.ID); ev.Action != "resolved" || ev.From != triage.StateAwaitingReview || ev.To != triage.StateResolved {
				t.Errorf("audit event %+v", ev)
			}
		})
	}
}

// resolved returns a ticket of f resolved with a follow-up due in a day.
func (f *fixture) resolved(t *testing.T, ext string) triage.Ticket {
	t.Helper()
	tk := f.ticketIn(t, ext, routine, "")
	tk, err := f.tr.Resolve(context.Background(), tk.ID, agent, triage.Resolution{RootCause: "carrier_delay", Method: "information"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestFollowedUpOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, &triagetest.Classifier{Result: calm})
	tk := f.resolved(t, "m1")
	sent := f.clock.Advance(24 * time.Hour)
	got, err := f.tr.FollowedUp(ctx, tk.ID, "check-in sent")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != triage.StateFollowedUp || !got.FollowUpSentAt.Equal(sent) {
		t.Fatalf("state %s sent at %v, want followed_up at %v", got.State, got.FollowUpSentAt, sent)
	}
	f.clock.Advance(time.Hour)
	audit := f.store.Audit(tk.ID)
	again, err := f.tr.FollowedUp(ctx, tk.ID, "check-in sent")
	if !errors.Is(err, triage.ErrDuplicate) {
		t.Fatalf("second FollowedUp: err = %v, want ErrDuplicate", err)
	}
	f.unchanged(t, got, audit)
	if again.State != triage.StateFollowedUp || !again.FollowUpSentAt.Equal(sent) {
		t.Errorf("second FollowedUp: state %s sent at %v, want unchanged", again.State, again.FollowUpSentAt)
	}
	var actions []string
	for _, ev := range f.store.Audit(tk.ID) {
		actions = append(actions, ev.Action)
	}
	if n := countOf(actions, "followed_up"); n != 1 {
		t.Errorf("audit %v has %d followed_up events, want 1", actions, n)
	}
	if m := triage.ComputeMetrics("30d", []triage.Ticket{again}); *m.RecoveryCSAT.ResponseRate != 0 {
		t.Errorf("response rate %v, want 0 of 1 follow-up", *m.RecoveryCSAT.ResponseRate)
	}
}

// TestFollowUpAfterReopen: a ticket reopened by a poor rating and resolved
// again gets a second follow-up, which must move it to followed_up like the
// first; otherwise a scheduler that sends follow-ups to resolved tickets
// past FollowUpDue sends it again on every run.
func TestFollowUpAfterReopen(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, &triagetest.Classifier{Result: calm})
	tk := f.resolved(t, "m1")
	f.clock.Advance(24 * time.Hour)
	if _, err := f.tr.FollowedUp(ctx, tk.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tr.Rate(ctx, tk.ID, 1); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.tr.Resolve(ctx, tk.ID, approver, triage.Resolution{RootCause: "carrier_delay", Method: "refund"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	second := f.clock.Advance(24 * time.Hour)
	got, err := f.tr.FollowedUp(ctx, tk.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != triage.StateFollowedUp || !got.FollowUpSentAt.Equal(second) {
		t.Errorf("second follow-up: state %s sent at %v, want followed_up at %v", got.State, got.FollowUpSentAt, second)
	}
}

// closeUnanswered closes a followed-up ticket without a rating, as the
// scheduler does when none comes in time.
func (f *fixture) closeUnanswered(t *testing.T, id string) triage.Ticket {
	t.Helper()
	tk, err := f.store.Update(context.Background(), id, func(tk *triage.Ticket) (triage.AuditEvent, error) {
		return triage.AuditEvent{Actor: triage.ActorSystem, Action: "closed_no_answer"}, tk.Transition(triage.StateClosed)
	})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestRate checks Rate's one rule: a rating counts once, after the
// follow-up, while the ticket waits for it or was closed for want of it.
func TestRate(t *testing.T) {
	tests := []struct {
		name   string
		steps  []string // from a resolved ticket: followup, rate4, rate1, noanswer, reopen
		rating int
		want   triage.State // "" when rejected
		err    error        // when rejected: the sentinel, or errAny
	}{
		{"waiting, 1 reopens", []string{"followup"}, 1, triage.StateReopened, nil},
		{"waiting, 2 reopens", []string{"followup"}, 2, triage.StateReopened, nil},
		{"waiting, 3 closes", []string{"followup"}, 3, triage.StateClosed, nil},
		{"waiting, 5 closes", []string{"followup"}, 5, triage.StateClosed, nil},
		{"waiting, 0", []string{"followup"}, 0, "", errAny},
		{"waiting, 6", []string{"followup"}, 6, "", errAny},
		{"no follow-up yet", nil, 5, "", triage.ErrInvalidTransition},
		{"no follow-up yet, low", nil, 1, "", triage.ErrInvalidTransition},
		{"closed unanswered, late 4 stays closed", []string{"followup", "noanswer"}, 4, triage.StateClosed, nil},
		{"closed unanswered, late 2 reopens", []string{"followup", "noanswer"}, 2, triage.StateReopened, nil},
		{"rated 4, then 1", []string{"followup", "rate4"}, 1, "", triage.ErrAlreadyRated},
		{"rated 4, then 5", []string{"followup", "rate4"}, 5, "", triage.ErrAlreadyRated},
		{"rated 1 and reopened, then 5", []string{"followup", "rate1"}, 5, "", triage.ErrAlreadyRated},
		{"reopened by a person after the follow-up", []string{"followup", "reopen"}, 5, "", triage.ErrInvalidTransition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.resolved(t, "m1")
			var err error
			for _, step := range tc.steps {
				switch step {
				case "followup":
					f.clock.Advance(24 * time.Hour)
					tk, err = f.tr.FollowedUp(ctx, tk.ID, "")
				case "rate4":
					tk, err = f.tr.Rate(ctx, tk.ID, 4)
				case "rate1":
					tk, err = f.tr.Rate(ctx, tk.ID, 1)
				case "noanswer":
					tk = f.closeUnanswered(t, tk.ID)
				case "reopen":
					tk, err = f.tr.Reopen(ctx, tk.ID, agent, "customer called")
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			audit := f.store.Audit(tk.ID)
			got, err := f.tr.Rate(ctx, tk.ID, tc.rating)
			if tc.want == "" {
				if err == nil || (tc.err != errAny && !errors.Is(err, tc.err)) {
					t.Errorf("Rate(%d): err = %v, want %v", tc.rating, err, tc.err)
				}
				f.unchanged(t, tk, audit)
				return
			}
			if err != nil {
				t.Fatalf("Rate(%d): %v", tc.rating, err)
			}
			if got.State != tc.want || got.Rating != tc.rating {
				t.Errorf("Rate(%d): state %s rating %d, want %s", tc.rating, got.State, got.Rating, tc.want)
			}
			if ev := lastEvent(f, tk.ID); ev.Action != "rated" || ev.Actor != triage.ActorCustomer || ev.From != tk.State || ev.To != tc.want {
				t.Errorf("audit event %+v", ev)
			}
		})
	}
}

// TestRateConcurrentClicks: of clicks at once on different ratings,
// exactly one counts and the others are told it was already recorded.
func TestRateConcurrentClicks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, &triagetest.Classifier{Result: calm})
	tk := f.resolved(t, "m1")
	f.clock.Advance(24 * time.Hour)
	if _, err := f.tr.FollowedUp(ctx, tk.ID, ""); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	for i := range 10 {
		go func() {
			_, err := f.tr.Rate(ctx, tk.ID, 1+i%5)
			errs <- err
		}()
	}
	var ok, already int
	for range 10 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, triage.ErrAlreadyRated):
			already++
		default:
			t.Errorf("Rate: %v", err)
		}
	}
	if ok != 1 || already != 9 {
		t.Errorf("%d ratings recorded and %d already recorded, want 1 and 9", ok, already)
	}
	var rated int
	for _, ev := range f.store.Audit(tk.ID) {
		if ev.Action == "rated" {
			rated++
		}
	}
	if rated != 1 {
		t.Errorf("%d rated events, want 1", rated)
	}
}

func TestInvalidTransitions(t *testing.T) {
	ctx := context.Background()
	res := triage.Resolution{RootCause: "carrier_delay", Method: "information"}
	tests := []struct {
		name  string
		state []string // actions that bring a routine ticket to the start state
		act   func(f *fixture, id string) (triage.Ticket, error)
	}{
		{"approve a closed ticket", []string{"resolve", "followup", "rate5"},
			func(f *fixture, id string) (triage.Ticket, error) {
				return f.tr.Approve(ctx, id, approver, f.version(id), "hello")
			}},
		{"approve a replied ticket", []string{"approve"},
			func(f *fixture, id string) (triage.Ticket, error) {
				return f.tr.Approve(ctx, id, approver, f.version(id), "hello again")
			}},
		{"resolve a closed ticket", []string{"resolve", "followup", "rate5"},
			func(f *fixture, id string) (triage.Ticket, error) { return f.tr.Resolve(ctx, id, agent, res, 0) }},
		{"resolve a resolved ticket", []string{"resolve"},
			func(f *fixture, id string) (triage.Ticket, error) { return f.tr.Resolve(ctx, id, agent, res, 0) }},
		{"escalate a resolved ticket", []string{"resolve"},
			func(f *fixture, id string) (triage.Ticket, error) {
				return f.tr.Escalate(ctx, id, agent, "legal", "late")
			}},
		{"follow up an open ticket", nil,
			func(f *fixture, id string) (triage.Ticket, error) { return f.tr.FollowedUp(ctx, id, "") }},
		{"rate an open ticket", nil,
			func(f *fixture, id string) (triage.Ticket, error) { return f.tr.Rate(ctx, id, 4) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", routine, "")
			var err error
			for _, step := range tc.state {
				switch step {
				case "approve":
					tk, err = f.tr.Approve(ctx, tk.ID, agent, f.version(tk.ID), "first reply")
				case "resolve":
					tk, err = f.tr.Resolve(ctx, tk.ID, agent, res, time.Hour)
				case "followup":
					f.clock.Advance(time.Hour)
					tk, err = f.tr.FollowedUp(ctx, tk.ID, "")
				case "rate5":
					tk, err = f.tr.Rate(ctx, tk.ID, 5)
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			audit := f.store.Audit(tk.ID)
			f.clock.Advance(time.Hour)
			if _, err := tc.act(f, tk.ID); !errors.Is(err, triage.ErrInvalidTransition) {
				t.Fatalf("err = %v, want ErrInvalidTransition", err)
			}
			f.unchanged(t, tk, audit)
		})
	}
}

func TestActionsUnknownTicket(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	acts := map[string]func() (triage.Ticket, error){
		"approve":    func() (triage.Ticket, error) { return f.tr.Approve(ctx, "T9", agent, f.version("T9"), "x") },
		"override":   func() (triage.Ticket, error) { return f.tr.Override(ctx, "T9", agent, "type", "refund") },
		"escalate":   func() (triage.Ticket, error) { return f.tr.Escalate(ctx, "T9", agent, "legal", "x") },
		"resolve":    func() (triage.Ticket, error) { return f.tr.Resolve(ctx, "T9", agent, triage.Resolution{}, 0) },
		"followedup": func() (triage.Ticket, error) { return f.tr.FollowedUp(ctx, "T9", "") },
		"rate":       func() (triage.Ticket, error) { return f.tr.Rate(ctx, "T9", 3) },
		"classify":   func() (triage.Ticket, error) { return f.tr.Classify(ctx, "T9", ann) },
	}
	for name, act := range acts {
		if _, err := act(); !errors.Is(err, triage.ErrNotFound) {
			t.Errorf("%s of an unknown ticket: err = %v, want ErrNotFound", name, err)
		}
	}
}

// TestActionsMetrics runs a small day of work through the actions and checks
// the section 7 metrics of the resulting tickets against counts by hand.
func TestActionsMetrics(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, &triagetest.Classifier{Result: calm})
	customers := []triage.Customer{
		{Email: "a@example.com"}, {Email: "b@example.com"}, {Email: "c@example.com"},
		{Email: "d@example.com"}, {Email: "a@example.com"},
	}
	bodies := []string{routine, lawyer, routine, routine, routine}
	ids := make([]string, len(bodies))
	for i, body := range bodies {
		tk := f.process(t, f.inbound(string(rune('a'+i)), body, customers[i]))
		ids[i] = tk.ID
		f.tr.Drafter = &triagetest.Drafter{Result: triage.Draft{Brief: "b", Reply: draft}}
		if _, err := f.tr.WriteDraft(ctx, tk.ID, customers[i], ""); err != nil {
			t.Fatal(err)
		}
		f.byModel(t, tk.ID)
		f.clock.Advance(10 * time.Minute)
	}
	must := func(_ triage.Ticket, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	res := triage.Resolution{RootCause: "carrier_delay", Method: "information"}
	// T1: draft sent unchanged 10 min after the last intake, resolved, rated 5.
	must(f.tr.Approve(ctx, ids[0], agent, f.version(ids[0]), draft))
	// T2 (legal, escalated on arrival): approver rewrites the reply,
	// resolved without a root cause, rated 2 (reopened).
	must(f.tr.Approve(ctx, ids[1], approver, f.version(ids[1]), "Our legal team will contact you today."))
	// Both replies are delivered at once.
	for _, id := range ids[:2] {
		must(f.tr.ReplyDelivered(ctx, id, f.clock.Now()))
	}
	// T3: a person overrides the type, then escalates.
	must(f.tr.Override(ctx, ids[2], agent, "type", "billing"))
	must(f.tr.Escalate(ctx, ids[2], agent, "support", "billing question"))
	// T4: resolved without a reply; follow-up sent, no rating.
	// T5: untouched (same customer as T1, same type: a repeat complaint).
	f.clock.Advance(50 * time.Minute)
	for _, id := range []string{ids[0], ids[3]} {
		must(f.tr.Resolve(ctx, id, agent, res, 48*time.Hour))
	}
	must(f.tr.Resolve(ctx, ids[1], approver, triage.Resolution{Method: "store_credit"}, 48*time.Hour))
	f.clock.Advance(48 * time.Hour)
	for _, id := range ids[:2] {
		must(f.tr.FollowedUp(ctx, id, ""))
	}
	must(f.tr.FollowedUp(ctx, ids[3], ""))
	must(f.tr.Rate(ctx, ids[0], 5))
	must(f.tr.Rate(ctx, ids[1], 2))

	var tickets []triage.Ticket
	err := f.store.Window(ctx, t0, f.clock.Now(), func(tk triage.Ticket) error {
		tickets = append(tickets, tk)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := triage.ComputeMetrics("30d", tickets)

	// Received at t0, +10, +20, +30, +40 min; the first two replies went out
	// at +50 min, both resolutions at +100 min.
	mins := func(n float64) float64 { return n * 60 }
	want := map[string]float64{
		"received":           5,
		"escalation rate":    2.0 / 5,   // T2 on arrival, T3 by hand
		"draft acceptance":   1.0 / 2,   // T1 unchanged, T2 rewritten
		"override rate":      1.0 / 3,   // reviewed: T1, T2, T3; overridden: T3
		"root cause":         2.0 / 3,   // resolved: T1, T2, T4; with cause: T1, T4
		"repeat complaint":   1.0 / 4,   // customers a, b, c, d; a twice with delivery
		"csat mean":          3.5,       // ratings 5 and 2
		"csat satisfied":     1.0 / 2,   // one of two ratings is 4-5
		"csat response":      2.0 / 3,   // three follow-ups, two ratings
		"first response p50": mins(40),  // T1 50, T2 40: nearest rank of [40, 50]
		"first response p90": mins(50),  //
		"resolution p50":     mins(90),  // T1 100, T2 90, T4 70: sorted [70, 90, 100]
		"resolution p90":     mins(100), //
	}
	got := map[string]*float64{
		"received":           ptrTo(float64(m.Received)),
		"escalation rate":    m.EscalationRate,
		"draft acceptance":   m.DraftAcceptance,
		"override rate":      m.HumanOverrideRate,
		"root cause":         m.RootCauseCoverage,
		"repeat complaint":   m.RepeatComplaint,
		"csat mean":          m.RecoveryCSAT.Mean,
		"csat satisfied":     m.RecoveryCSAT.SatisfiedShare,
		"csat response":      m.RecoveryCSAT.ResponseRate,
		"first response p50": m.FirstResponseTime.P50,
		"first response p90": m.FirstResponseTime.P90,
		"resolution p50":     m.ResolutionTime.P50,
		"resolution p90":     m.ResolutionTime.P90,
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g := got[k]; g == nil || !near(*g, want[k]) {
			t.Errorf("%s = %s, want %v", k, fmtPtr(g), want[k])
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func ptrTo(f float64) *float64 { return &f }

func fmtPtr(p *float64) any {
	if p == nil {
		return "null"
	}
	return *p
}

func countOf(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}

// postsOf lists "kind channel mentions" of the pending posts about id.
func postsOf(f *fixture, id string) []string {
	var out []string
	for _, p := range f.store.Posts() {
		if p.TicketID == id {
			out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s", p.Kind, p.Channel, strings.Join(p.Mentions, ","))))
		}
	}
	return out
}

// TestPosts follows a Slack-sourced legal ticket through its life and checks
// the outbox: one card, in the routed channel; no customer-facing message
// until a person approves, and then exactly what they approved (SPEC
// invariants 3 and 6).
func TestPosts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, &triagetest.Classifier{Result: calm})
	in := f.inbound("1700000000.000200", lawyer, ann)
	in.Source, in.ReplyTo = triage.SourceSlack, "C0INTAKE/1700000000.000200"
	tk := f.process(t, in)
	f.tr.Drafter = &triagetest.Drafter{Result: triage.Draft{Brief: "b", Reply: draft}}
	must := func(_ triage.Ticket, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.tr.WriteDraft(ctx, tk.ID, ann, ""))
	must(f.tr.Override(ctx, tk.ID, agent, "type", "refund"))
	if _, err := f.tr.Approve(ctx, tk.ID, agent, f.version(tk.ID), draft); !errors.Is(err, triage.ErrNotAuthorized) {
		t.Fatalf("Approve by %s: %v", agent, err)
	}
	for _, p := range f.store.Posts() {
		if p.Kind == triage.PostCustomerReply {
			t.Fatalf("customer reply queued before anyone approved: %+v", p)
		}
	}
	must(f.tr.Approve(ctx, tk.ID, approver, f.version(tk.ID), draft+" Sam"))
	must(f.tr.Escalate(ctx, tk.ID, approver, "legal", "threat of action"))
	must(f.tr.Resolve(ctx, tk.ID, approver, triage.Resolution{RootCause: "carrier_delay", Method: "refund"}, time.Hour))
	f.clock.Advance(time.Hour)
	must(f.tr.FollowedUp(ctx, tk.ID, "check-in sent"))
	must(f.tr.Rate(ctx, tk.ID, 1))

	want := []string{
		"card C0ESCALATE U0LEGAL01",   // triaged
		"card_update C0ESCALATE",      // drafted
		"card_update C0ESCALATE",      // classification changed
		"card_update C0ESCALATE",      // approved
		"thread C0ESCALATE",           //
		"customer_reply C0INTAKE",     //
		"card_update C0ESCALATE",      // escalated
		"thread C0ESCALATE legal",     //
		"escalation C0ESCALATE legal", //
		"card_update C0ESCALATE",      // resolved
		"thread C0ESCALATE",           //
		"card_update C0ESCALATE",      // followed up
		"thread C0ESCALATE",           //
		"card_update C0ESCALATE",      // rated 1: reopened
		"thread C0ESCALATE legal",     // the assignee is mentioned
	}
	if got := postsOf(f, tk.ID); !slices.Equal(got, want) {
		t.Errorf("posts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var replies []triage.Post
	for _, p := range f.store.Posts() {
		if p.Kind == triage.PostCustomerReply {
			replies = append(replies, p)
		}
	}
	if len(replies) != 1 || replies[0].Text != draft+" Sam" || replies[0].ThreadTS != "1700000000.000200" || replies[0].Actor != approver {
		t.Errorf("customer replies %+v, want the approved text in the customer's thread", replies)
	}
}

// TestCustomerReplyBySource: an approved reply goes back the way the ticket
// came; a ticket with no way back gets none, and the thread post tells the
// agent to copy the text.
func TestCustomerReplyBySource(t *testing.T) {
	tests := []struct {
		src     triage.Source
		replyTo string
		want    string // "channel thread", "" for no customer reply
	}{
		{triage.SourceWebhook, "", ""},
		{triage.SourceSlack, "C0INTAKE", ""},
		{triage.SourceSlack, "C0INTAKE/1700000000.000300", "C0INTAKE 1700000000.000300"},
		{triage.SourceEmail, "<abc@mail.example.com>", triage.OutboundChannel(triage.SourceEmail) + " <abc@mail.example.com>"},
		{triage.SourceWebhook, "https://shop.example.com/hook", triage.OutboundChannel(triage.SourceWebhook) + " https://shop.example.com/hook"},
		{triage.SourceManual, "", ""},
		{triage.SourceImport, "", ""},
	}
	for _, tc := range tests {
		t.Run(string(tc.src)+" "+tc.replyTo, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			in := f.inbound("m1", routine, ann)
			in.Source, in.ReplyTo = tc.src, tc.replyTo
			tk := f.process(t, in)
			if _, err := f.tr.Approve(context.Background(), tk.ID, agent, f.version(tk.ID), "On its way."); err != nil {
				t.Fatal(err)
			}
			var got []string
			copyNote := false
			for _, p := range f.store.Posts() {
				switch p.Kind {
				case triage.PostCustomerReply:
					got = append(got, p.Channel+" "+p.ThreadTS)
					if p.Text != "On its way." || p.Actor != agent || p.TicketID != tk.ID {
						t.Errorf("customer reply %+v", p)
					}
				case triage.PostThread:
					copyNote = p.Action == "approved" && p.Detail == triage.DetailNoReplyRoute
				}
			}
			if copyNote != (tc.want == "") {
				t.Errorf("thread post says copy the reply: %v, want %v", copyNote, tc.want == "")
			}
			var want []string
			if tc.want != "" {
				want = []string{tc.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("customer replies to %q, want %q", got, want)
			}
		})
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	res := triage.Resolution{RootCause: "carrier_delay", Method: "information"}
	tests := []struct {
		name  string
		steps []string
		ok    bool
	}{
		{"resolved", []string{"resolve"}, true},
		{"closed", []string{"resolve", "followup", "rate5"}, true},
		{"open", nil, false},
		{"already reopened", []string{"resolve", "followup", "rate1"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", routine, "")
			var err error
			for _, step := range tc.steps {
				switch step {
				case "resolve":
					tk, err = f.tr.Resolve(ctx, tk.ID, agent, res, 0)
				case "followup":
					tk, err = f.tr.FollowedUp(ctx, tk.ID, "")
				case "rate5":
					tk, err = f.tr.Rate(ctx, tk.ID, 5)
				case "rate1":
					tk, err = f.tr.Rate(ctx, tk.ID, 1)
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			audit := f.store.Audit(tk.ID)
			got, err := f.tr.Reopen(ctx, tk.ID, approver, "customer called")
			if !tc.ok {
				if !errors.Is(err, triage.ErrInvalidTransition) {
					t.Fatalf("err = %v, want ErrInvalidTransition", err)
				}
				f.unchanged(t, tk, audit)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ev := lastEvent(f, tk.ID)
			if got.State != triage.StateReopened || ev.Action != "reopened" || ev.Actor != approver || ev.From != tk.State {
				t.Errorf("state %s, event %+v", got.State, ev)
			}
		})
	}
}

func TestAppendEntry(t *testing.T) {
	ctx := context.Background()
	const day = 24 * time.Hour
	res := triage.Resolution{RootCause: "carrier_delay", Method: "information"}
	tests := []struct {
		name    string
		resolve bool
		close   bool
		after   time.Duration // since resolution (or intake)
		want    triage.State
	}{
		{"open ticket", false, false, time.Hour, triage.StateAwaitingReview},
		{"resolved, within the window", true, false, 3 * day, triage.StateReopened},
		{"closed, at the window's end", true, true, triage.ReopenWindow, triage.StateReopened},
		{"closed, after the window", true, true, triage.ReopenWindow + time.Minute, triage.StateClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", routine, "")
			var err error
			if tc.resolve {
				if tk, err = f.tr.Resolve(ctx, tk.ID, agent, res, 0); err != nil {
					t.Fatal(err)
				}
			}
			if tc.close {
				if _, err = f.tr.FollowedUp(ctx, tk.ID, ""); err != nil {
					t.Fatal(err)
				}
				if tk, err = f.tr.Rate(ctx, tk.ID, 4); err != nil {
					t.Fatal(err)
				}
			}
			at := f.clock.Advance(tc.after)
			got, err := f.tr.AppendEntry(ctx, tk.ID, triage.Entry{Author: "ann@example.com", Body: "Any news?"})
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.want {
				t.Errorf("state %s, want %s", got.State, tc.want)
			}
			want := []triage.Entry{{At: at, Author: "ann@example.com", Body: "Any news?"}}
			if !reflect.DeepEqual(got.Entries, want) {
				t.Errorf("entries %+v, want %+v", got.Entries, want)
			}
			if ev := lastEvent(f, tk.ID); ev.Action != "customer_wrote" || ev.Actor != triage.ActorCustomer ||
				ev.From != tk.State || ev.To != tc.want {
				t.Errorf("audit event %+v", ev)
			}
		})
	}
}

// TestAppendEntryBeforeRouting: a customer's thread reply that arrives
// while the ticket is stored but not yet classified must not be lost.
func TestAppendEntryBeforeRouting(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, &triagetest.Classifier{Result: calm})
	tk, err := f.tr.Intake(ctx, f.inbound("m1", routine, ann))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.tr.AppendEntry(ctx, tk.ID, triage.Entry{Author: "ann@example.com", Body: "Order 1042, by the way."}); err != nil {
		t.Fatalf("AppendEntry before routing: %v", err)
	}
	if got := f.get(t, tk.ID); len(got.Entries) != 1 {
		t.Errorf("entries %+v, want the reply kept", got.Entries)
	}
}

func TestFollowedUp(t *testing.T) {
	ctx := context.Background()
	checkIn := triage.Post{Kind: triage.PostCustomerReply, Channel: "out:email", ThreadTS: "<m1@example.com>", Text: "How did we do?"}
	tests := []struct {
		name  string
		setup func(f *fixture, id string) // from a ticket resolved with a follow-up due in a day
		err   error                       // nil when the follow-up is recorded
	}{
		{"due", func(f *fixture, _ string) { f.clock.Advance(24 * time.Hour) }, nil},
		{"overdue", func(f *fixture, _ string) { f.clock.Advance(72 * time.Hour) }, nil},
		{"not due yet", func(f *fixture, _ string) { f.clock.Advance(24*time.Hour - time.Minute) }, triage.ErrNotDue},
		{"already sent", func(f *fixture, id string) {
			f.clock.Advance(24 * time.Hour)
			if _, err := f.tr.FollowedUp(ctx, id, "first"); err != nil {
				panic(err)
			}
		}, triage.ErrDuplicate},
		{"reopened meanwhile", func(f *fixture, id string) {
			f.clock.Advance(24 * time.Hour)
			if _, err := f.tr.Reopen(ctx, id, agent, "customer called"); err != nil {
				panic(err)
			}
		}, triage.ErrInvalidTransition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.resolved(t, "m1")
			tc.setup(f, tk.ID)
			before := f.get(t, tk.ID)
			audit := f.store.Audit(tk.ID)
			posts := len(f.store.Posts())
			got, err := f.tr.FollowedUp(ctx, tk.ID, "check-in sent by email", checkIn)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				f.unchanged(t, before, audit)
				if n := len(f.store.Posts()); n != posts {
					t.Errorf("%d posts queued by a refused follow-up", n-posts)
				}
				if tc.err == triage.ErrDuplicate && !reflect.DeepEqual(got, before) {
					t.Errorf("duplicate returned %+v, want the ticket as stored", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.State != triage.StateFollowedUp || !got.FollowUpSentAt.Equal(f.clock.Now()) {
				t.Errorf("state %s sent at %v", got.State, got.FollowUpSentAt)
			}
			ev := lastEvent(f, tk.ID)
			if ev.Action != "followed_up" || ev.Actor != triage.ActorSystem || ev.Detail != "check-in sent by email" {
				t.Errorf("audit event %+v", ev)
			}
			var kinds []string
			for _, p := range f.store.Posts()[posts:] {
				kinds = append(kinds, string(p.Kind)+" "+p.Channel+" "+p.Detail+p.Text)
			}
			want := []string{"card_update C0QUEUE check-in sent by email", "thread C0QUEUE check-in sent by email",
				"customer_reply out:email How did we do?"}
			if !slices.Equal(kinds, want) {
				t.Errorf("posts %q, want %q", kinds, want)
			}
		})
	}
}

func TestResolveNeedsAuthority(t *testing.T) {
	ctx := context.Background()
	res := triage.Resolution{RootCause: "carrier_delay", Method: "information"}
	tests := []struct {
		name    string
		body    string
		replied bool // an approver sent a reply first
		actor   string
		err     error
	}{
		{"routine, agent", routine, false, agent, nil},
		{"legal, unanswered, agent", lawyer, false, agent, triage.ErrNotAuthorized},
		{"legal, unanswered, approver", lawyer, false, approver, nil},
		{"legal, answered by an approver, agent", lawyer, true, agent, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", tc.body, "")
			if tc.replied {
				var err error
				if tk, err = f.tr.Approve(ctx, tk.ID, approver, f.version(tk.ID), "We are looking into it."); err != nil {
					t.Fatal(err)
				}
			}
			audit := f.store.Audit(tk.ID)
			got, err := f.tr.Resolve(ctx, tk.ID, tc.actor, res, 48*time.Hour)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				f.unchanged(t, tk, audit)
				return
			}
			if err != nil || got.State != triage.StateResolved {
				t.Fatalf("Resolve: state %s, err %v", got.State, err)
			}
		})
	}
}

// TestAppendEntryRules: an appended message goes through the escalation
// rules with the rest of the ticket's text; what they find is added, and
// nothing is taken away.
func TestAppendEntryRules(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		body     string // the first message
		override string // urgency a person set before the reply, if any
		reply    string
		rules    []string // every trigger's rule after the reply
		flags    []triage.Flag
		urgency  triage.Level
		approval bool
		mentions []string // in the thread post
	}{
		{name: "routine reply", body: routine, reply: "Any news?", urgency: triage.LevelLow},
		{name: "chargeback threat", body: routine, reply: "I will file a chargeback dispute with my bank.",
			rules: []string{"legal"}, flags: []triage.Flag{triage.FlagLegal}, urgency: triage.LevelHigh,
			approval: true, mentions: []string{"U0LEGAL01"}},
		{name: "split across messages", body: "Still no parcel. Next stop is small", reply: "claims, I mean it.",
			rules: []string{"legal"}, flags: []triage.Flag{triage.FlagLegal}, urgency: triage.LevelHigh,
			approval: true, mentions: []string{"U0LEGAL01"}},
		{name: "review threat", body: routine, reply: "I am going to post a review on Trustpilot.",
			rules: []string{"reputation"}, flags: []triage.Flag{triage.FlagReputation}, urgency: triage.LevelMedium,
			mentions: []string{"U0BRAND01"}},
		{name: "legal again", body: lawyer, reply: "My lawyer says we go to court.", rules: []string{"legal"},
			flags: []triage.Flag{triage.FlagLegal}, urgency: triage.LevelHigh, approval: true},
		{name: "never lowered", body: routine, override: "high", reply: "I will post a review.",
			rules: []string{"reputation"}, flags: []triage.Flag{triage.FlagReputation}, urgency: triage.LevelHigh,
			mentions: []string{"U0BRAND01"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", tc.body, "")
			if tc.override != "" {
				if _, err := f.tr.Override(ctx, tk.ID, approver, "urgency", tc.override); err != nil {
					t.Fatal(err)
				}
			}
			posts := len(f.store.Posts())
			got, err := f.tr.AppendEntry(ctx, tk.ID, triage.Entry{Author: "ann@example.com", Body: tc.reply})
			if err != nil {
				t.Fatal(err)
			}
			var rules []string
			for _, tr := range got.Triggers {
				rules = append(rules, tr.Rule)
			}
			if !slices.Equal(rules, tc.rules) || !slices.Equal(got.Classification.Flags, tc.flags) {
				t.Errorf("rules %v flags %v, want %v %v", rules, got.Classification.Flags, tc.rules, tc.flags)
			}
			if got.Classification.Urgency != tc.urgency || got.NeedsApproval != tc.approval {
				t.Errorf("urgency %s needs approval %v, want %s %v", got.Classification.Urgency, got.NeedsApproval,
					tc.urgency, tc.approval)
			}
			if !reflect.DeepEqual(got.Route, tk.Route) {
				t.Errorf("route %+v, want it unchanged %+v", got.Route, tk.Route)
			}
			var mentions []string
			for _, p := range f.store.Posts()[posts:] {
				if p.Kind == triage.PostThread {
					mentions = p.Mentions
				}
			}
			if !slices.Equal(mentions, tc.mentions) {
				t.Errorf("thread mentions %v, want %v", mentions, tc.mentions)
			}
		})
	}
}

// TestAppendEntryLateTriggers: a new legal, safety or reputation trigger
// brings a ticket back to a person whatever its state and however long ago
// it was resolved, and a trigger configured to escalate escalates it: state
// escalated, the owners mentioned in the card's thread and in the
// escalation channel, as Escalate does.
func TestAppendEntryLateTriggers(t *testing.T) {
	ctx := context.Background()
	const day = 24 * time.Hour
	res := triage.Resolution{RootCause: "carrier_delay", Method: "information"}
	tests := []struct {
		name     string
		state    triage.State // where the ticket is before the reply
		after    time.Duration
		reply    string
		want     triage.State
		mentions []string // in the thread post
		escalate bool     // an escalation post mentioning the owners
	}{
		{"legal on a resolved ticket", triage.StateResolved, 30 * day, "I will sue you over this.",
			triage.StateEscalated, []string{"U0LEGAL01"}, true},
		{"legal on a closed ticket", triage.StateClosed, 60 * day, "My lawyer will take you to court.",
			triage.StateEscalated, []string{"U0LEGAL01"}, true},
		{"safety on a followed-up ticket", triage.StateFollowedUp, 20 * day, "My daughter was injured by the sharp edge.",
			triage.StateEscalated, []string{"U0SAFETY1"}, true},
		{"reputation on a closed ticket", triage.StateClosed, 60 * day, "I am going to post a review on Trustpilot.",
			triage.StateReopened, []string{"U0BRAND01"}, false},
		{"legal on an open ticket", triage.StateAwaitingReview, day, "I will sue you over this.",
			triage.StateEscalated, []string{"U0LEGAL01"}, true},
		{"reputation on an open ticket", triage.StateAwaitingReview, day, "I am going to post a review on Trustpilot.",
			triage.StateAwaitingReview, []string{"U0BRAND01"}, false},
		{"routine on a closed ticket", triage.StateClosed, 60 * day, "Thanks again.",
			triage.StateClosed, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", routine, "")
			var err error
			if tc.state != triage.StateAwaitingReview {
				if tk, err = f.tr.Resolve(ctx, tk.ID, agent, res, 0); err != nil {
					t.Fatal(err)
				}
			}
			if tc.state == triage.StateFollowedUp || tc.state == triage.StateClosed {
				if tk, err = f.tr.FollowedUp(ctx, tk.ID, ""); err != nil {
					t.Fatal(err)
				}
			}
			if tc.state == triage.StateClosed {
				if tk, err = f.tr.Rate(ctx, tk.ID, 4); err != nil {
					t.Fatal(err)
				}
			}
			if tk.State != tc.state {
				t.Fatalf("set-up left the ticket %s, want %s", tk.State, tc.state)
			}
			f.clock.Advance(tc.after)
			posts := len(f.store.Posts())
			got, err := f.tr.AppendEntry(ctx, tk.ID, triage.Entry{Author: "ann@example.com", Body: tc.reply})
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.want {
				t.Errorf("state %s, want %s", got.State, tc.want)
			}
			if ev := lastEvent(f, tk.ID); ev.From != tc.state || ev.To != tc.want {
				t.Errorf("audit event %s -> %s, want %s -> %s", ev.From, ev.To, tc.state, tc.want)
			}
			var thread, escalation []string
			escalations := 0
			for _, p := range f.store.Posts()[posts:] {
				switch p.Kind {
				case triage.PostThread:
					thread = p.Mentions
				case triage.PostEscalation:
					escalations++
					escalation = p.Mentions
					if p.Channel != "C0ESCALATE" {
						t.Errorf("escalation posted to %q, want the escalation channel", p.Channel)
					}
				}
			}
			if !slices.Equal(thread, tc.mentions) {
				t.Errorf("thread mentions %v, want %v", thread, tc.mentions)
			}
			wantEscalations := 0
			if tc.escalate {
				wantEscalations = 1
				if !slices.Equal(escalation, tc.mentions) {
					t.Errorf("escalation mentions %v, want %v", escalation, tc.mentions)
				}
				if got.Escalations != tk.Escalations+1 || !got.EscalatedAt.Equal(f.clock.Now()) {
					t.Errorf("escalations %d at %v, want %d at %v", got.Escalations, got.EscalatedAt,
						tk.Escalations+1, f.clock.Now())
				}
			}
			if escalations != wantEscalations {
				t.Errorf("%d escalation posts, want %d", escalations, wantEscalations)
			}
			if !tc.state.Open() && tc.want.Open() && (got.Draft != "" || !got.DraftWanted || !got.WantsDraft()) {
				t.Errorf("reopened with draft %q wanted %v: the old draft must go and a fresh one be wanted",
					got.Draft, got.DraftWanted)
			}
		})
	}
}

// TestClassifyRoutesRepliesReadMeanwhile: a reply that arrives while the
// model reads the first message is read by the rules too, and what they
// find routes and escalates the ticket as if it had been in the first
// message.
func TestClassifyRoutesRepliesReadMeanwhile(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	tk, err := f.tr.Intake(ctx, f.inbound("m1", routine, ann))
	if err != nil {
		t.Fatal(err)
	}
	f.tr.Model = &triagetest.Classifier{Func: func(ctx context.Context, _ triage.ClassifyRequest) (triage.Classification, error) {
		_, err := f.tr.AppendEntry(ctx, tk.ID, triage.Entry{Author: "ann@example.com", Body: "I will sue you over this."})
		return calm, err
	}}
	got, err := f.tr.Classify(ctx, tk.ID, ann)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != triage.StateEscalated || !got.Route.Escalate || got.Route.Channel != "C0ESCALATE" ||
		got.Escalations != 1 {
		t.Errorf("state %s route %+v escalations %d, want escalated through the legal route", got.State, got.Route,
			got.Escalations)
	}
	var card triage.Post
	for _, p := range f.store.Posts() {
		if p.Kind == triage.PostCard {
			card = p
		}
	}
	if card.Channel != "C0ESCALATE" || !slices.Contains(card.Mentions, "U0LEGAL01") {
		t.Errorf("card %+v, want it in the escalation route mentioning legal", card)
	}
}

// TestAppendEntryDuplicate: the same message delivered twice is one entry;
// the second AppendEntry writes nothing and says ErrDuplicate.
func TestAppendEntryDuplicate(t *testing.T) {
	ctx := context.Background()
	at := t0.Add(time.Hour)
	first := triage.Entry{At: at, Author: "ann@example.com", Body: "Any news?"}
	tests := []struct {
		name string
		e    triage.Entry
		dup  bool
	}{
		{"same message", first, true},
		{"same text, later", triage.Entry{At: at.Add(time.Second), Author: first.Author, Body: first.Body}, false},
		{"same time, other text", triage.Entry{At: at, Author: first.Author, Body: "Hello?"}, false},
		{"same time and text, other author", triage.Entry{At: at, Author: "bo@example.com", Body: first.Body}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", routine, "")
			tk, err := f.tr.AppendEntry(ctx, tk.ID, first)
			if err != nil {
				t.Fatal(err)
			}
			audit := f.store.Audit(tk.ID)
			got, err := f.tr.AppendEntry(ctx, tk.ID, tc.e)
			if !tc.dup {
				if err != nil || len(got.Entries) != 2 {
					t.Fatalf("entries %d, err %v; want 2 and none", len(got.Entries), err)
				}
				return
			}
			if !errors.Is(err, triage.ErrDuplicate) {
				t.Fatalf("err = %v, want ErrDuplicate", err)
			}
			if !reflect.DeepEqual(got, tk) {
				t.Errorf("returned %+v, want the ticket as stored", got)
			}
			f.unchanged(t, tk, audit)
		})
	}
}

func TestReplyRoute(t *testing.T) {
	email := map[triage.Source]bool{triage.SourceEmail: true}
	webhook := map[triage.Source]bool{triage.SourceWebhook: true}
	none := map[triage.Source]bool{}
	tests := []struct {
		src     triage.Source
		replyTo string
		senders map[triage.Source]bool
		want    string // "channel thread", "" for no route
	}{
		{triage.SourceSlack, "C0INTAKE/1700000000.000300", nil, "C0INTAKE 1700000000.000300"},
		{triage.SourceSlack, "C0INTAKE/1700000000.000300", none, "C0INTAKE 1700000000.000300"},
		{triage.SourceSlack, "C0INTAKE", nil, ""},
		{triage.SourceSlack, "", nil, ""},
		{triage.SourceEmail, "<abc@mail.example.com>", nil, "out:email <abc@mail.example.com>"},
		{triage.SourceEmail, "<abc@mail.example.com>", email, "out:email <abc@mail.example.com>"},
		{triage.SourceEmail, "<abc@mail.example.com>", webhook, ""},
		{triage.SourceEmail, "<abc@mail.example.com>", none, ""},
		{triage.SourceWebhook, "https://shop.example.com/hook", nil, "out:webhook https://shop.example.com/hook"},
		{triage.SourceWebhook, "https://shop.example.com/hook", webhook, "out:webhook https://shop.example.com/hook"},
		{triage.SourceWebhook, "https://shop.example.com/hook", email, ""},
		{triage.SourceWebhook, "", nil, ""},
		{triage.SourceManual, "", nil, ""},
		{triage.SourceManual, "C0INTAKE/1700000000.000300", nil, ""},
		{triage.SourceImport, "", nil, ""},
	}
	for _, tc := range tests {
		channel, thread, ok := triage.ReplyRoute(triage.Ticket{Source: tc.src, ReplyTo: tc.replyTo}, tc.senders)
		got := ""
		if ok {
			got = channel + " " + thread
		}
		if got != tc.want {
			t.Errorf("ReplyRoute(%s %q, %v) = %q, want %q", tc.src, tc.replyTo, tc.senders, got, tc.want)
		}
	}
}

// TestStaleDraft reproduces the Edit-send of issue 9: once a person has
// written and sent a reply, a late draft must not replace it, and a
// reopened ticket must not offer the old draft for Approve; an Approve
// carrying a version the ticket no longer has sends nothing.
func TestStaleDraft(t *testing.T) {
	ctx := context.Background()
	res := triage.Resolution{RootCause: "carrier_delay", Method: "information"}
	const edited = "Hi Ann, I checked myself: your parcel arrives tomorrow."
	tests := []struct {
		name   string
		reopen func(f *fixture, id string) error
	}{
		{"reopened by a person", func(f *fixture, id string) error {
			if _, err := f.tr.Resolve(ctx, id, agent, res, 0); err != nil {
				return err
			}
			_, err := f.tr.Reopen(ctx, id, agent, "customer called")
			return err
		}},
		{"customer wrote again", func(f *fixture, id string) error {
			if _, err := f.tr.Resolve(ctx, id, agent, res, 0); err != nil {
				return err
			}
			_, err := f.tr.AppendEntry(ctx, id, triage.Entry{Author: "ann", Body: "It did not arrive."})
			return err
		}},
		{"low rating", func(f *fixture, id string) error {
			if _, err := f.tr.Resolve(ctx, id, agent, res, 0); err != nil {
				return err
			}
			if _, err := f.tr.FollowedUp(ctx, id, ""); err != nil {
				return err
			}
			_, err := f.tr.Rate(ctx, id, 1)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			tk := f.ticketIn(t, "m1", routine, draft)
			shown := tk.DraftVersion
			if _, err := f.tr.Approve(ctx, tk.ID, agent, tk.DraftVersion, edited); err != nil {
				t.Fatal(err)
			}
			// The model's draft that was still running finishes now.
			f.tr.Drafter = &triagetest.Drafter{Result: triage.Draft{Brief: "late", Reply: "late model draft"}}
			if _, err := f.tr.WriteDraft(ctx, tk.ID, ann, ""); !errors.Is(err, triage.ErrStaleDraft) {
				t.Errorf("late draft after the Edit-send: err = %v, want ErrStaleDraft", err)
			}
			if got := f.get(t, tk.ID); got.Sent != edited || got.Draft == "late model draft" {
				t.Fatalf("late draft replaced the sent reply: draft %q, sent %q", got.Draft, got.Sent)
			}
			if err := tc.reopen(f, tk.ID); err != nil {
				t.Fatal(err)
			}
			got := f.get(t, tk.ID)
			if got.State != triage.StateReopened || got.Draft != "" || got.DraftBy != "" || !got.WantsDraft() {
				t.Fatalf("reopened: state %s, draft %q by %q, wants a draft %v; want the old draft gone and a fresh one wanted",
					got.State, got.Draft, got.DraftBy, got.WantsDraft())
			}
			// An Approve from the card that showed the old draft.
			before := len(f.store.Audit(tk.ID))
			if _, err := f.tr.Approve(ctx, tk.ID, agent, shown, draft); !errors.Is(err, triage.ErrStaleDraft) {
				t.Fatalf("Approve of version %d on a reopened ticket: err = %v, want ErrStaleDraft", shown, err)
			}
			after := f.get(t, tk.ID)
			if after.State != triage.StateReopened || after.Sent != edited {
				t.Errorf("stale Approve changed the ticket: state %s, sent %q", after.State, after.Sent)
			}
			audit := f.store.Audit(tk.ID)
			if len(audit) != before+1 || audit[before].Action != triage.ActionApproveRefused {
				t.Fatalf("stale Approve recorded %+v, want one %s event", audit[before:], triage.ActionApproveRefused)
			}
			for _, p := range audit[before].Posts {
				if p.Kind == triage.PostCustomerReply {
					t.Errorf("stale Approve queued a customer reply: %+v", p)
				}
			}
			// The fresh draft for the new message is offered with a new version.
			f.tr.Drafter = &triagetest.Drafter{Result: triage.Draft{Brief: "b2", Reply: "fresh draft"}}
			fresh, err := f.tr.WriteDraft(ctx, tk.ID, ann, "")
			if err != nil {
				t.Fatal(err)
			}
			if fresh.Draft != "fresh draft" || fresh.DraftVersion <= shown || fresh.DraftBy != triage.DraftByModel || fresh.WantsDraft() {
				t.Fatalf("fresh draft %q version %d by %q (wants %v)", fresh.Draft, fresh.DraftVersion, fresh.DraftBy, fresh.WantsDraft())
			}
			sent, err := f.tr.Approve(ctx, tk.ID, agent, fresh.DraftVersion, fresh.Draft)
			if err != nil || sent.Sent != "fresh draft" {
				t.Fatalf("Approve of the fresh draft: sent %q, err %v", sent.Sent, err)
			}
		})
	}
}

package bot

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// viewResponse decodes a view_submission ack's payload.
func viewResponse(t *testing.T, payload json.RawMessage) slack.ViewSubmissionResponse {
	t.Helper()
	var r slack.ViewSubmissionResponse
	if len(payload) == 0 {
		return r
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		t.Fatalf("%v: %s", err, payload)
	}
	return r
}

func closedView(h *appHarness, id string) bool {
	for _, v := range h.fake.Views() {
		if v.ID == id {
			return v.Closed
		}
	}
	return false
}

func TestApproveClick(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	tk := h.intake(customerUser, "My parcel for order 1001 hasn't arrived yet, can you check?")
	tk = h.drafted(tk.ID)
	if tk.NeedsApproval {
		t.Fatalf("fixture needs approval: %+v", tk.Triggers)
	}
	kicks := h.kicks.Load()
	h.click(tk.ID, ActionApprove, agentUser)
	h.waitFor("replied", func() bool { return h.get(tk.ID).State == triage.StateReplied })
	got := h.get(tk.ID)
	if got.Sent != tk.Draft || got.Assignee != agentUser || !got.DraftSent || got.DraftRevision != 0 {
		t.Errorf("after approve: sent %q, assignee %q, draft sent %v, revision %v", got.Sent, got.Assignee, got.DraftSent, got.DraftRevision)
	}
	h.waitFor("a kick after approve", func() bool { return h.kicks.Load() > kicks })
	if e := h.ephemeralsTo(agentUser); len(e) != 0 {
		t.Errorf("ephemerals = %+v", e)
	}
}

// TestApproveRefused: a ticket with legal language needs approval
// authority; an agent's click explains why and changes nothing, an
// approver's click sends.
func TestApproveRefused(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	tk := h.intake(customerUser, "Refund my order or my lawyer will sue you.")
	tk = h.drafted(tk.ID)
	if !tk.NeedsApproval {
		t.Fatalf("fixture does not need approval: %+v", tk.Triggers)
	}
	before := actions(h, tk.ID)
	h.click(tk.ID, ActionApprove, agentUser)
	h.waitFor("refusal", func() bool { return len(h.ephemeralsTo(agentUser)) == 1 })
	e := h.ephemeralsTo(agentUser)[0]
	for _, want := range []string{"needs approval authority", `"will sue"`, "<@U0LEAD001>", "<@U0LEGAL01>", "Nothing was sent"} {
		if !strings.Contains(e.Text, want) {
			t.Errorf("refusal %q lacks %q", e.Text, want)
		}
	}
	if e.Channel != tk.Route.Channel {
		t.Errorf("refusal in %s, want the card's channel %s", e.Channel, tk.Route.Channel)
	}
	// Edit is refused the same way, without a modal.
	h.click(tk.ID, ActionEdit, agentUser)
	h.waitFor("second refusal", func() bool { return len(h.ephemeralsTo(agentUser)) == 2 })
	if len(h.fake.Views()) != 0 {
		t.Errorf("views = %+v", h.fake.Views())
	}
	got := h.get(tk.ID)
	if got.State != tk.State || got.Sent != "" || !slices.Equal(actions(h, tk.ID), before) {
		t.Errorf("the refusal changed the ticket: state %s, audit %v", got.State, actions(h, tk.ID))
	}

	h.click(tk.ID, ActionApprove, approverUser)
	h.waitFor("replied", func() bool { return h.get(tk.ID).State == triage.StateReplied })
	if got := h.get(tk.ID); got.Assignee != approverUser {
		t.Errorf("assignee = %s", got.Assignee)
	}
}

// TestButtonFailures: clicks that cannot work explain themselves in plain
// words and never show an internal error.
func TestButtonFailures(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	tk := h.intake(customerUser, "Where is my order 1001?")
	cases := []struct {
		name, action string
		setup        func()
		want         string
	}{
		{"approve without a draft", ActionApprove, func() {}, "has no draft to send yet"},
		{"approve a draft longer than the card", ActionApprove, func() {
			h.change(tk.ID, func(x *triage.Ticket) { x.Draft = longDraftTicket().Draft })
		}, "is longer than its card shows. Nothing was sent: use *Edit*"},
		{"approve from a card without a draft version", "approve-unversioned", func() {
			h.change(tk.ID, func(x *triage.Ticket) { x.Draft = "Short draft." })
		}, "changed after you saw it"},
		{"reopen an open ticket", ActionReopen, func() {}, "is awaiting review, so it can't be reopened now"},
		{"resolve twice", ActionResolve, func() {
			if _, err := h.tr.Resolve(t.Context(), tk.ID, agentUser, triage.Resolution{}, 0); err != nil {
				t.Fatal(err)
			}
		}, "is resolved, so it can't be resolved now"},
	}
	// No subtests: the harness fails its own test.
	for i, tc := range cases {
		channel, ts := h.postCard(tk.ID)
		tc.setup()
		action, value := tc.action, tk.ID
		switch action {
		case ActionApprove:
			value = versioned(h.get(tk.ID))
		case "approve-unversioned":
			// A card rendered before Approve carried a version.
			action = ActionApprove
		}
		env, err := h.fake.SendEnvelope(slackfake.TypeInteractive, map[string]any{
			"type": "block_actions", "user": map[string]any{"id": agentUser},
			"trigger_id": h.fake.NewTriggerID(agentUser), "channel": map[string]any{"id": channel},
			"container": map[string]any{"type": "message", "channel_id": channel, "message_ts": ts},
			"actions":   []map[string]any{{"action_id": action, "block_id": "b", "value": value, "type": "button"}},
		}, false)
		if err != nil {
			t.Fatal(err)
		}
		h.ack(env)
		h.waitFor(tc.name, func() bool { return len(h.ephemeralsTo(agentUser)) == i+1 })
		text := h.ephemeralsTo(agentUser)[i].Text
		if !strings.Contains(text, tc.want) || strings.Contains(text, "invalid state transition") {
			t.Errorf("%s: answer = %q, want %q", tc.name, text, tc.want)
		}
	}
	if got := h.get(tk.ID); got.Sent != "" || got.FirstResponseAt != (time.Time{}) {
		t.Errorf("a refused click sent %q", got.Sent)
	}
}

func TestEditModal(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	tk := h.intake(customerUser, "My parcel for order 1001 hasn't arrived yet, can you check?")
	tk = h.drafted(tk.ID)
	h.click(tk.ID, ActionEdit, agentUser)
	v := h.modal(1)
	if v.CallbackID != CallbackEdit || v.PrivateMetadata != versioned(tk) || v.UserID != agentUser {
		t.Fatalf("modal = %+v", v)
	}
	var view slack.View
	if err := json.Unmarshal(v.JSON, &view); err != nil {
		t.Fatal(err)
	}
	draft := findInput(t, view, blockDraft)
	if draft.InitialValue != tk.Draft || !draft.Multiline || draft.MaxLength != maxInputValue {
		t.Errorf("draft input = %+v", draft)
	}

	// A person without authority who got hold of the form is refused on
	// submit, and nothing changes.
	edited := tk.Draft + "\nP.S. Use code SORRY10 for 10% off."
	values := map[string]map[string]slackfake.Input{
		blockDraft: {blockDraft: {Value: edited}},
		blockType:  {blockType: {Value: string(triage.TypeBilling)}},
	}
	h.change(tk.ID, func(tk *triage.Ticket) { tk.NeedsApproval = true })
	r := viewResponse(t, h.submit(slackfake.Submission{ViewID: v.ID, User: agentUser, Values: values}))
	if r.ResponseAction != slack.RAErrors || !strings.Contains(r.Errors[blockDraft], "Only approvers") {
		t.Errorf("unauthorized submit answered %+v", r)
	}
	if got := h.get(tk.ID); got.State != tk.State || len(got.Overrides) != 0 || got.Sent != "" {
		t.Errorf("the refused submit changed the ticket: %+v", got)
	}
	if closedView(h, v.ID) {
		t.Error("the modal closed on errors")
	}

	h.change(tk.ID, func(tk *triage.Ticket) { tk.NeedsApproval = false })
	kicks := h.kicks.Load()
	r = viewResponse(t, h.submit(slackfake.Submission{ViewID: v.ID, User: agentUser, Values: values}))
	if r.ResponseAction != "" {
		t.Errorf("submit answered %+v, want the modal closed", r)
	}
	got := h.get(tk.ID)
	if got.State != triage.StateReplied || got.Sent != edited || got.DraftRevision <= 0 {
		t.Errorf("after edit: state %s, sent %q, revision %v", got.State, got.Sent, got.DraftRevision)
	}
	want := []triage.Override{{Field: "type", From: string(tk.Classification.Type), To: "billing", By: agentUser, At: appT0}}
	if !slices.Equal(got.Overrides, want) {
		t.Errorf("overrides = %+v, want %+v", got.Overrides, want)
	}
	if !closedView(h, v.ID) {
		t.Error("the modal stayed open")
	}
	h.waitFor("a kick", func() bool { return h.kicks.Load() > kicks })
}

// failingApprove is a store that fails the update recording a reply as
// sent, after release is closed when it is set. The update is tried on a
// copy first, so that the store is not locked while it waits.
type failingApprove struct {
	*triagetest.Tickets
	release chan struct{}
}

func (f *failingApprove) Update(ctx context.Context, id string, fn func(*triage.Ticket) (triage.AuditEvent, error)) (triage.Ticket, error) {
	if t, err := f.Tickets.Get(ctx, id); err == nil {
		if ev, err := fn(&t); err == nil && ev.Action == "approved" {
			if f.release != nil {
				<-f.release
			}
			return triage.Ticket{}, errors.New("disk full")
		}
	}
	return f.Tickets.Update(ctx, id, fn)
}

// TestEditModalSendFails: a send that fails after the overrides says so,
// on the modal when it is open, else in a message quoting the reply back.
func TestEditModalSendFails(t *testing.T) {
	const reply = "Sorry <!channel> & co,\nwe refund you today."
	tests := []struct {
		name string
		// hold keeps the approval waiting until the modal was closed.
		hold     bool
		wantErrs map[string]string
		// recorded is whether the type change stays recorded.
		recorded bool
		// told are strings of the message sent after the modal closed.
		told []string
	}{
		{name: "modal open", recorded: true,
			wantErrs: map[string]string{blockDraft: "couldn't record that just now. The reply was not sent; " +
				"your change of type was recorded; please try again in a moment."}},
		{name: "modal closed", hold: true, recorded: true,
			told: []string{"Your form was closed before casebot could finish", "The reply was not sent; your change of type was recorded",
				"Here is the reply you wrote, to copy:\n> Sorry &lt;!channel&gt; &amp; co,\n> we refund you today."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &failingApprove{}
			if tc.hold {
				store.release = make(chan struct{})
			}
			h := newAppHarness(t, harnessOpts{wrap: func(s *triagetest.Tickets) triage.Tickets {
				store.Tickets = s
				return store
			}})
			tk := h.intake(customerUser, "My parcel for order 1001 hasn't arrived yet, can you check?")
			tk = h.drafted(tk.ID)
			h.change(tk.ID, func(x *triage.Ticket) { x.Slack = triage.SlackRef{Channel: x.Route.Channel, TS: "1772442000.000100"} })
			h.click(tk.ID, ActionEdit, agentUser)
			v := h.modal(1)
			values := map[string]map[string]slackfake.Input{
				blockDraft: {blockDraft: {Value: reply}},
				blockType:  {blockType: {Value: string(triage.TypeBilling)}},
			}
			if tc.hold {
				// The ack comes when the handler has taken too long.
				go func() {
					h.waitFor("modal closed", func() bool { return closedView(h, v.ID) })
					close(store.release)
				}()
			}
			r := viewResponse(t, h.submit(slackfake.Submission{ViewID: v.ID, User: agentUser, Values: values}))
			if tc.wantErrs != nil {
				if r.ResponseAction != slack.RAErrors || len(r.Errors) != len(tc.wantErrs) {
					t.Fatalf("submit answered %+v, want errors %v", r, tc.wantErrs)
				}
				for block, want := range tc.wantErrs {
					if !strings.Contains(r.Errors[block], want) {
						t.Errorf("error on %s = %q, want %q", block, r.Errors[block], want)
					}
				}
			}
			if tc.told != nil {
				if r.ResponseAction != "" {
					t.Errorf("submit answered %+v after the modal was closed", r)
				}
				h.waitFor("a message", func() bool { return len(h.ephemeralsTo(agentUser)) == 1 })
				e := h.ephemeralsTo(agentUser)[0]
				for _, want := range tc.told {
					if !strings.Contains(e.Text, want) {
						t.Errorf("message %q lacks %q", e.Text, want)
					}
				}
				if e.Channel != tk.Route.Channel {
					t.Errorf("message in %s, want the card's channel", e.Channel)
				}
			}
			got := h.get(tk.ID)
			if got.State != tk.State || got.Sent != "" {
				t.Errorf("state %s, sent %q: want the reply unsent", got.State, got.Sent)
			}
			if recorded := len(got.Overrides) == 1 && got.Classification.Type == triage.TypeBilling; recorded != tc.recorded ||
				len(got.Overrides) > 1 {
				t.Errorf("overrides %+v, want the type change recorded: %v", got.Overrides, tc.recorded)
			}
		})
	}
}

// TestClassificationChanges: the Edit modal's changes are read and checked
// before anything is written; one value that is not an option (a forged
// submission) rejects them all.
func TestClassificationChanges(t *testing.T) {
	c := refundTicket().Classification
	state := func(kv ...string) *slack.ViewState {
		st := &slack.ViewState{Values: map[string]map[string]slack.BlockAction{}}
		for i := 0; i < len(kv); i += 2 {
			st.Values[kv[i]] = map[string]slack.BlockAction{kv[i]: {SelectedOption: slack.OptionBlockObject{Value: kv[i+1]}}}
		}
		return st
	}
	tests := []struct {
		name string
		st   *slack.ViewState
		want []override
		errs map[string]string
	}{
		{"nothing chosen", state(), nil, nil},
		{"unchanged", state(blockType, string(c.Type), blockUrgency, string(c.Urgency)), nil, nil},
		{"two changes", state(blockRisk, "high", blockType, "billing", blockSentiment, string(c.Sentiment)),
			[]override{{blockType, "billing"}, {blockRisk, "high"}}, nil},
		{"forged value", state(blockType, "billing", blockUrgency, "urgent!!"), nil,
			map[string]string{blockUrgency: "Choose one of the options."}},
	}
	for _, tt := range tests {
		got, errs := classificationChanges(tt.st, c)
		if !slices.Equal(got, tt.want) || !maps.Equal(errs, tt.errs) {
			t.Errorf("%s: changes %v, errors %v; want %v, %v", tt.name, got, errs, tt.want, tt.errs)
		}
	}
}

// findInput returns the plain text input of a view's input block.
func findInput(t *testing.T, v slack.View, block string) *slack.PlainTextInputBlockElement {
	t.Helper()
	for _, b := range v.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok && in.BlockID == block {
			if el, ok := in.Element.(*slack.PlainTextInputBlockElement); ok {
				return el
			}
		}
	}
	t.Fatalf("no text input %q", block)
	return nil
}

func TestEscalateModal(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	tk := h.intake(customerUser, "Where is my order 1001? It's been two weeks.")
	h.click(tk.ID, ActionEscalate, agentUser)
	v := h.modal(1)
	if v.CallbackID != CallbackEscalate || v.PrivateMetadata != tk.ID {
		t.Fatalf("modal = %+v", v)
	}
	r := viewResponse(t, h.submit(slackfake.Submission{ViewID: v.ID, User: agentUser, Values: map[string]map[string]slackfake.Input{
		blockReason: {blockReason: {Value: "  "}},
		blockOwner:  {blockOwner: {Value: legalOwner}},
	}}))
	if r.ResponseAction != slack.RAErrors || r.Errors[blockReason] == "" {
		t.Errorf("blank reason answered %+v", r)
	}
	r = viewResponse(t, h.submit(slackfake.Submission{ViewID: v.ID, User: agentUser, Values: map[string]map[string]slackfake.Input{
		blockReason: {blockReason: {Value: "Customer mentions a chargeback"}},
		blockOwner:  {blockOwner: {Value: legalOwner}},
	}}))
	if r.ResponseAction != "" {
		t.Errorf("submit answered %+v", r)
	}
	got := h.get(tk.ID)
	if got.State != triage.StateEscalated || got.Assignee != legalOwner || got.Escalations != 1 {
		t.Errorf("after escalate: %s, assignee %s, escalations %d", got.State, got.Assignee, got.Escalations)
	}
	audit := h.store.Audit(tk.ID)
	last := audit[len(audit)-1]
	if last.Action != "escalated" || last.Actor != agentUser || last.Detail != "Customer mentions a chargeback" {
		t.Errorf("audit = %+v", last)
	}
}

func TestResolveModalAndReopen(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	tk := h.intake(customerUser, "My parcel for order 1001 hasn't arrived yet, can you check?")
	h.drafted(tk.ID)
	h.click(tk.ID, ActionApprove, agentUser)
	h.waitFor("replied", func() bool { return h.get(tk.ID).State == triage.StateReplied })
	h.click(tk.ID, ActionResolve, agentUser)
	v := h.modal(1)
	if v.CallbackID != CallbackResolve || v.PrivateMetadata != tk.ID {
		t.Fatalf("modal = %+v", v)
	}
	values := func(amount string) map[string]map[string]slackfake.Input {
		return map[string]map[string]slackfake.Input{
			blockRootCause: {blockRootCause: {Value: "carrier_delay"}},
			blockNote:      {blockNote: {Value: "Carrier lost the parcel; reshipped"}},
			blockMethod:    {blockMethod: {Value: "replacement"}},
			blockAmount:    {blockAmount: {Value: amount}},
		}
	}
	for _, bad := range []string{"abc", "-5", "12.345", "1e3", "$12"} {
		r := viewResponse(t, h.submit(slackfake.Submission{ViewID: v.ID, User: agentUser, Values: values(bad)}))
		if r.ResponseAction != slack.RAErrors || r.Errors[blockAmount] != errAmount {
			t.Errorf("amount %q answered %+v", bad, r)
		}
	}
	if got := h.get(tk.ID); got.State != triage.StateReplied {
		t.Fatalf("a bad amount changed the state to %s", got.State)
	}
	r := viewResponse(t, h.submit(slackfake.Submission{ViewID: v.ID, User: agentUser, Values: values("12,5")}))
	if r.ResponseAction != "" {
		t.Errorf("submit answered %+v", r)
	}
	got := h.get(tk.ID)
	wantAmount := triage.Money{Minor: 1250, Currency: "USD"}
	if got.State != triage.StateResolved || got.RootCause != "carrier_delay" || got.ResolutionMethod != "replacement" ||
		got.ResolutionAmount != wantAmount || got.ResolutionNote != "Carrier lost the parcel; reshipped" {
		t.Errorf("after resolve: %+v", got)
	}
	if want := appT0.Add(48 * time.Hour); !got.FollowUpDue.Equal(want) {
		t.Errorf("follow-up due %v, want %v", got.FollowUpDue, want)
	}

	h.click(tk.ID, ActionReopen, agentUser)
	h.waitFor("reopened", func() bool { return h.get(tk.ID).State == triage.StateReopened })
}

// TestShortcutTwice turns one message into a ticket twice: one ticket.
func TestShortcutTwice(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	env, ts := h.say(slackfake.UserMessage{Channel: otherChannel, User: customerUser,
		Text: "Customer called: order 1002 arrived broken &amp; they want a replacement"})
	h.ack(env)
	shortcut := func() {
		env, err := h.fake.SendEnvelope(slackfake.TypeInteractive, map[string]any{
			"type": "message_action", "callback_id": ShortcutCreateTicket,
			"trigger_id": h.fake.NewTriggerID(agentUser), "user": map[string]any{"id": agentUser},
			"channel":      map[string]any{"id": otherChannel},
			"message":      map[string]any{"type": "message", "ts": ts, "user": customerUser, "text": "Customer called: order 1002 arrived broken &amp; they want a replacement"},
			"message_ts":   ts,
			"response_url": h.fake.NewResponseURL(otherChannel, agentUser),
		}, false)
		if err != nil {
			t.Fatal(err)
		}
		h.ack(env)
	}
	var responses []slack.ViewSubmissionResponse
	for n := 1; n <= 2; n++ {
		shortcut()
		v := h.modal(n)
		if v.CallbackID != CallbackNew || v.PrivateMetadata != "shortcut/"+otherChannel+"/"+ts {
			t.Fatalf("modal = %+v", v)
		}
		var view slack.View
		if err := json.Unmarshal(v.JSON, &view); err != nil {
			t.Fatal(err)
		}
		text := findInput(t, view, blockText)
		if text.InitialValue != "Customer called: order 1002 arrived broken & they want a replacement" {
			t.Errorf("prefilled text = %q", text.InitialValue)
		}
		who := findInput(t, view, blockCustomer)
		if who.InitialValue != "<@"+customerUser+">" {
			t.Errorf("prefilled customer = %q", who.InitialValue)
		}
		responses = append(responses, viewResponse(t, h.submit(slackfake.Submission{ViewID: v.ID, User: agentUser,
			Values: map[string]map[string]slackfake.Input{
				blockSource:   {blockSource: {Value: "phone"}},
				blockCustomer: {blockCustomer: {Value: who.InitialValue}},
				blockText:     {blockText: {Value: text.InitialValue}},
			}})))
	}
	h.waitFor("the ticket classified", func() bool {
		all := h.store.All()
		return len(all) > 0 && all[0].State != triage.StateReceived
	})
	h.stop()
	all := h.store.All()
	if len(all) != 1 {
		t.Fatalf("%d tickets, want 1; answers %s", len(all), mustJSON(t, responses))
	}
	tk := all[0]
	if tk.Source != triage.SourceManual || tk.Channel != "phone" || tk.ExternalID != "shortcut/"+otherChannel+"/"+ts ||
		tk.State == triage.StateReceived {
		t.Errorf("ticket = %+v", tk)
	}
	for i, want := range []string{"Created ticket `" + tk.ID + "`", "already ticket `" + tk.ID + "`"} {
		r := responses[i]
		if r.ResponseAction != slack.RAUpdate || r.View == nil || !strings.Contains(string(mustJSON(t, r.View)), want) {
			t.Errorf("submission %d answered %s, want %q", i+1, mustJSON(t, r), want)
		}
	}
	if got := actions(h, tk.ID); countOf(got, "triaged") != 1 {
		t.Errorf("audit = %v", got)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHostileCustomerText sends customer text that tries to ping and link
// through every surface that shows it: the refusal, each modal, the ticket
// command, App Home.
func TestHostileCustomerText(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	tk := h.intake(customerUser, appHostile)
	if !strings.Contains(tk.Body, "<!here>") {
		t.Fatalf("body = %q, want Slack's entities decoded", tk.Body)
	}
	tk = h.drafted(tk.ID)
	if !tk.NeedsApproval {
		t.Fatalf("fixture does not need approval: %+v", tk.Triggers)
	}
	h.change(tk.ID, func(tk *triage.Ticket) { tk.Route.Mentions = append(tk.Route.Mentions, agentUser) })
	h.click(tk.ID, ActionApprove, agentUser)
	h.click(tk.ID, ActionEdit, approverUser)
	h.modal(1)
	h.click(tk.ID, ActionEscalate, agentUser)
	h.modal(2)
	if _, err := h.tr.Approve(t.Context(), tk.ID, approverUser, h.get(tk.ID).DraftVersion, "We're on it."); err != nil {
		t.Fatal(err)
	}
	h.click(tk.ID, ActionResolve, agentUser)
	h.modal(3)
	cmd, err := h.fake.SlashCommand(slackfake.Command{Command: "/casebot", Text: "ticket " + tk.ID, User: agentUser, Channel: otherChannel})
	if err != nil {
		t.Fatal(err)
	}
	h.ack(cmd)
	if _, err := h.fake.SlashCommand(slackfake.Command{Command: "/casebot", Text: "<!channel>", User: agentUser, Channel: otherChannel}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.fake.SendEvent(map[string]any{"type": "app_home_opened", "user": agentUser, "tab": "home"}); err != nil {
		t.Fatal(err)
	}
	// response_url answers show up as ephemerals too.
	h.waitFor("every answer", func() bool {
		return len(h.ephemeralsTo(agentUser)) == 3 && len(h.fake.ResponsePosts()) == 2 && len(h.fake.Views()) == 4
	})

	var docs [][]byte
	for _, e := range h.fake.Ephemerals() {
		docs = append(docs, mustJSON(t, map[string]any{"type": "mrkdwn", "text": e.Text}), e.Blocks)
	}
	for _, p := range h.fake.ResponsePosts() {
		docs = append(docs, mustJSON(t, map[string]any{"type": "mrkdwn", "text": p.Text}), p.Blocks)
	}
	for _, v := range h.fake.Views() {
		docs = append(docs, v.JSON)
	}
	texts := renderedTexts(t, docs...)
	checkNoHostile(t, "a reply to a person", texts)
	for _, want := range []string{"&lt;!channel&gt;", "&lt;http://evil|click&gt;", "&lt;!here&gt;"} {
		if !hasText(texts, want) {
			t.Errorf("no surface shows the escaped %q: the check would pass vacuously", want)
		}
	}
	for _, v := range h.fake.Views() {
		if v.Type == "home" && !strings.Contains(string(v.JSON), tk.ID) {
			t.Errorf("App Home lacks the ticket: %s", v.JSON)
		}
	}
}

// TestApproveSendsWhatTheCardShows reproduces issue 9 through Slack: after
// an Edit-send and a reopen, no card offers Approve of text it does not
// show, a click on a card rendered before sends nothing, an Edit form
// opened on an older draft does not silently send, and the fresh draft for
// the customer's new message is what Approve then sends.
func TestApproveSendsWhatTheCardShows(t *testing.T) {
	h := newAppHarness(t, harnessOpts{})
	ctx := t.Context()
	tk := h.intake(customerUser, "My parcel for order 1001 hasn't arrived yet, can you check?")
	tk = h.drafted(tk.ID)
	oldChannel, oldTS := h.postCard(tk.ID)

	const edited = "Hi, I called the carrier myself: your parcel arrives tomorrow."
	h.click(tk.ID, ActionEdit, agentUser)
	h.submit(slackfake.Submission{ViewID: h.modal(1).ID, User: agentUser,
		Values: map[string]map[string]slackfake.Input{blockDraft: {blockDraft: {Value: edited}}}})
	h.waitFor("the edited reply", func() bool { return h.get(tk.ID).Sent == edited })
	if _, err := h.tr.Resolve(ctx, tk.ID, agentUser, triage.Resolution{}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.tr.AppendEntry(ctx, tk.ID, triage.Entry{Author: customerUser, Body: "It still has not come."}); err != nil {
		t.Fatal(err)
	}
	if got := h.get(tk.ID); got.State != triage.StateReopened {
		t.Fatalf("state %s after the customer wrote again, want reopened", got.State)
	}

	// The reopened card offers no Approve: its only draft is still to come.
	blocks, err := json.Marshal(CardMessage(h.get(tk.ID), CardOptions{}).Blocks)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(blocks), `"action_id":"approve"`) {
		t.Errorf("the reopened card offers Approve; it shows:\n%s", blocks)
	}

	// Approve on the card posted before the Edit-send.
	seen := len(h.ephemeralsTo(agentUser))
	env, err := h.fake.Click(slackfake.Click{Channel: oldChannel, TS: oldTS, ActionID: ActionApprove, User: agentUser})
	if err != nil {
		t.Fatal(err)
	}
	h.ack(env)
	h.waitFor("the answer to the old card's Approve", func() bool { return len(h.ephemeralsTo(agentUser)) > seen })
	if text := h.ephemeralsTo(agentUser)[seen].Text; !strings.Contains(text, "nothing was sent") {
		t.Errorf("old card's Approve answered %q", text)
	}
	if got := h.get(tk.ID); got.State != triage.StateReopened || got.Sent != edited {
		t.Fatalf("old card's Approve sent %q (state %s), want nothing sent", got.Sent, got.State)
	}

	// An Edit form opened now, submitted after the fresh draft landed.
	h.click(tk.ID, ActionEdit, agentUser)
	v := h.modal(2)
	h.tr.Drafter = &triagetest.Drafter{Result: triage.Draft{Brief: "b", Reply: "Hi, I'm sorry it is still missing: a new parcel leaves today."}}
	fresh, err := h.tr.WriteDraft(ctx, tk.ID, triage.Customer{}, "")
	if err != nil {
		t.Fatal(err)
	}
	const typed = "Typed on the form before the new draft came."
	r := viewResponse(t, h.submit(slackfake.Submission{ViewID: v.ID, User: agentUser,
		Values: map[string]map[string]slackfake.Input{blockDraft: {blockDraft: {Value: typed}}}}))
	if r.ResponseAction != slack.RAErrors || !strings.Contains(r.Errors[blockDraft], "draft changed") {
		t.Errorf("Edit form on the older draft answered %+v", r)
	}
	if got := h.get(tk.ID); got.State != triage.StateReopened || got.Sent != edited {
		t.Fatalf("Edit form on the older draft sent %q (state %s)", got.Sent, got.State)
	}

	// The fresh card shows the fresh draft, and Approve sends exactly it;
	// a second click on that card sends nothing more.
	channel, ts := h.postCard(tk.ID)
	for i := range 2 {
		seen := len(h.ephemeralsTo(agentUser))
		env, err := h.fake.Click(slackfake.Click{Channel: channel, TS: ts, ActionID: ActionApprove, User: agentUser})
		if err != nil {
			t.Fatal(err)
		}
		h.ack(env)
		if i == 0 {
			h.waitFor("the fresh draft sent", func() bool { return h.get(tk.ID).State == triage.StateReplied })
			continue
		}
		h.waitFor("the answer to the second click", func() bool { return len(h.ephemeralsTo(agentUser)) > seen })
		if text := h.ephemeralsTo(agentUser)[seen].Text; !strings.Contains(text, "is replied, so it can't be approved now") {
			t.Errorf("second click answered %q", text)
		}
	}
	if got := h.get(tk.ID); got.Sent != fresh.Draft {
		t.Errorf("Approve sent %q, want the fresh draft %q", got.Sent, fresh.Draft)
	}
}

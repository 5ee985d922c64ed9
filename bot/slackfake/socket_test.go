package slackfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/casebot/casebot/bot/slackfake"
)

// startSocket runs a slack-go Socket Mode client against f until the test
// ends.
func startSocket(t *testing.T, f *slackfake.Fake) *socketmode.Client {
	t.Helper()
	api := slack.New(f.BotToken(), slack.OptionAppLevelToken(f.AppToken()), slack.OptionAPIURL(f.APIURL()))
	c := socketmode.New(api)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.RunContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

// nextEvent returns the client's next event of type typ, skipping the
// connection life-cycle events in between and any of the tolerated types.
func nextEvent(t *testing.T, c *socketmode.Client, typ socketmode.EventType, tolerate ...socketmode.EventType) socketmode.Event {
	t.Helper()
	ctx := testCtx(t)
	for {
		select {
		case ev := <-c.Events:
			switch {
			case ev.Type == typ:
				return ev
			case ev.Type == socketmode.EventTypeConnecting, ev.Type == socketmode.EventTypeConnected,
				ev.Type == socketmode.EventTypeHello, slices.Contains(tolerate, ev.Type):
			default:
				t.Fatalf("waiting for %s, got %s: %+v", typ, ev.Type, ev.Data)
			}
		case <-ctx.Done():
			t.Fatalf("no %s event", typ)
		}
	}
}

func TestSocketModeEvent(t *testing.T) {
	f := newFake(t, slackfake.Options{Clock: slackfake.NewManualClock(t0)})
	// Sent before any connection: queued, then delivered after hello.
	early, err := f.SendMessage(slackfake.UserMessage{Channel: "C-INTAKE", User: "U1", Text: "where is my order #1234?"})
	if err != nil {
		t.Fatal(err)
	}
	c := startSocket(t, f)
	nextEvent(t, c, socketmode.EventTypeHello)
	ev := nextEvent(t, c, socketmode.EventTypeEventsAPI)
	if ev.Request.EnvelopeID != early.ID || ev.Request.RetryAttempt != 0 || ev.Request.AcceptsResponsePayload {
		t.Errorf("envelope = %+v, want %s attempt 0", ev.Request, early.ID)
	}
	outer := ev.Data.(slackevents.EventsAPIEvent)
	cb, _ := outer.Data.(*slackevents.EventsAPICallbackEvent)
	if outer.Type != slackevents.CallbackEvent || cb == nil || cb.EventID != early.EventID || early.EventID == "" {
		t.Errorf("outer event = %+v", outer)
	}
	msg, isMsg := outer.InnerEvent.Data.(*slackevents.MessageEvent)
	if !isMsg || msg.Text != "where is my order #1234?" || msg.Channel != "C-INTAKE" || msg.User != "U1" || msg.TimeStamp == "" {
		t.Fatalf("inner event = %#v", outer.InnerEvent.Data)
	}
	if err := c.Ack(*ev.Request); err != nil {
		t.Fatal(err)
	}
	ack, err := f.WaitAck(testCtx(t), early.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Late || ack.Unknown || ack.Type != slackfake.TypeEventsAPI || ack.EventID != early.EventID {
		t.Errorf("ack = %+v", ack)
	}
	if m, found := f.Message("C-INTAKE", msg.TimeStamp); !found || m.User != "U1" || m.BotID != "" {
		t.Errorf("the person's message is in the channel: %+v %v", m, found)
	}
	if d := f.Deliveries(); len(d) != 1 || !d[0].Acked || d[0].Conn != 1 {
		t.Errorf("Deliveries() = %+v", d)
	}
}

func TestRedelivery(t *testing.T) {
	clock := slackfake.NewManualClock(t0)
	f := newFake(t, slackfake.Options{Clock: clock})
	c := startSocket(t, f)
	nextEvent(t, c, socketmode.EventTypeHello)

	env, err := f.SendMessage(slackfake.UserMessage{Channel: "C1", User: "U1", Text: "refund please"})
	if err != nil {
		t.Fatal(err)
	}
	first := nextEvent(t, c, socketmode.EventTypeEventsAPI)
	clock.Advance(3 * time.Second)
	f.Sweep()
	if d := f.Deliveries(); len(d) != 1 || d[0].TimedOut {
		t.Fatalf("at exactly the deadline nothing is redelivered: %+v", d)
	}
	clock.Advance(time.Millisecond)
	f.Sweep()
	second := nextEvent(t, c, socketmode.EventTypeEventsAPI)
	if second.Request.RetryAttempt != 1 || second.Request.RetryReason != "timeout" || second.Request.EnvelopeID == env.ID {
		t.Errorf("redelivery envelope = %+v", second.Request)
	}
	firstID := first.Data.(slackevents.EventsAPIEvent).Data.(*slackevents.EventsAPICallbackEvent).EventID
	secondID := second.Data.(slackevents.EventsAPIEvent).Data.(*slackevents.EventsAPICallbackEvent).EventID
	if firstID != secondID {
		t.Errorf("redelivery event_id %q, want the original %q", secondID, firstID)
	}

	if err := c.Ack(*first.Request); err != nil {
		t.Fatal(err)
	}
	late, err := f.WaitAck(testCtx(t), env.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !late.Late || late.RetryAttempt != 0 {
		t.Errorf("ack of the timed-out envelope = %+v, want Late", late)
	}
	if err := c.Ack(*second.Request); err != nil {
		t.Fatal(err)
	}
	onTime, err := f.WaitAck(testCtx(t), second.Request.EnvelopeID)
	if err != nil {
		t.Fatal(err)
	}
	if onTime.Late || onTime.RetryAttempt != 1 {
		t.Errorf("ack of the redelivery = %+v, want on time", onTime)
	}
	clock.Advance(time.Minute)
	f.Sweep()
	if d := f.Deliveries(); len(d) != 2 {
		t.Errorf("an acked event is not redelivered again: %d deliveries", len(d))
	}
}

func TestRedeliveryGivesUp(t *testing.T) {
	clock := slackfake.NewManualClock(t0)
	f := newFake(t, slackfake.Options{Clock: clock, MaxRetries: 2})
	c := startSocket(t, f)
	nextEvent(t, c, socketmode.EventTypeHello)
	if _, err := f.SendEvent(map[string]any{"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home"}); err != nil {
		t.Fatal(err)
	}
	for attempt := range 3 {
		ev := nextEvent(t, c, socketmode.EventTypeEventsAPI)
		if ev.Request.RetryAttempt != attempt {
			t.Errorf("delivery %d has retry_attempt %d", attempt, ev.Request.RetryAttempt)
		}
		clock.Advance(4 * time.Second)
		f.Sweep()
	}
	d := f.Deliveries()
	if len(d) != 3 {
		t.Fatalf("%d deliveries, want 1 + MaxRetries 2", len(d))
	}
	for _, x := range d {
		if !x.TimedOut || x.Acked {
			t.Errorf("delivery %+v should have timed out", x)
		}
	}

	// Interactive envelopes are not redelivered: the person sees an error.
	ts := postCard(t, f, "C1")
	env, err := f.Click(slackfake.Click{Channel: "C1", TS: ts, ActionID: "approve", User: "U1"})
	if err != nil {
		t.Fatal(err)
	}
	nextEvent(t, c, socketmode.EventTypeInteractive)
	clock.Advance(4 * time.Second)
	f.Sweep()
	d = f.Deliveries()
	if last := d[len(d)-1]; len(d) != 4 || last.ID != env.ID || !last.TimedOut {
		t.Errorf("interactive delivery = %+v of %d, want timed out and not redelivered", last, len(d))
	}
}

func TestReconnect(t *testing.T) {
	f := newFake(t, slackfake.Options{Clock: slackfake.NewManualClock(t0)})
	c := startSocket(t, f)
	nextEvent(t, c, socketmode.EventTypeHello)
	if n := f.Disconnect(); n != 1 {
		t.Fatalf("Disconnect() closed %d connections, want 1", n)
	}
	// slack-go closes its side on disconnect and may report its own
	// reader's error before it reconnects.
	nextEvent(t, c, socketmode.EventTypeHello, socketmode.EventTypeIncomingError)
	if got := f.ConnectionsOpened(); got != 2 {
		t.Errorf("ConnectionsOpened() = %d after a refresh, want 2", got)
	}
	env, err := f.SendMessage(slackfake.UserMessage{Channel: "C1", User: "U1", Text: "after refresh"})
	if err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, c, socketmode.EventTypeEventsAPI)
	if ev.Request.EnvelopeID != env.ID {
		t.Errorf("got envelope %s, want %s", ev.Request.EnvelopeID, env.ID)
	}
	if d := f.Deliveries(); d[0].Conn != 2 {
		t.Errorf("delivered on connection %d, want the new one (2)", d[0].Conn)
	}
	if err := c.Ack(*ev.Request); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitAck(testCtx(t), env.ID); err != nil {
		t.Fatal(err)
	}

	f.Drop()
	// slack-go reports the cut connection's read error before reconnecting.
	nextEvent(t, c, socketmode.EventTypeHello, socketmode.EventTypeIncomingError)
	if got := f.ConnectionsOpened(); got != 3 {
		t.Errorf("ConnectionsOpened() = %d after a drop, want 3", got)
	}
	ctx := testCtx(t)
	if err := f.Wait(ctx, func() bool { return f.OpenConnections() == 1 }); err != nil {
		t.Errorf("OpenConnections() = %d, want 1: %v", f.OpenConnections(), err)
	}
}

// TestRawSocket checks the wire protocol without slack-go: single-use
// tickets, hello first, pings answered, acks of unknown envelopes recorded.
func TestRawSocket(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	api := slack.New(f.BotToken(), slack.OptionAppLevelToken(f.AppToken()), slack.OptionAPIURL(f.APIURL()))
	ctx := testCtx(t)
	_, wsURL, err := api.StartSocketModeContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var hello struct {
		Type           string `json:"type"`
		NumConnections int    `json:"num_connections"`
	}
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" || hello.NumConnections != 1 {
		t.Fatalf("first frame = %+v, %v", hello, err)
	}
	if _, _, err := websocket.DefaultDialer.DialContext(ctx, wsURL, nil); err == nil {
		t.Error("a ticket must not open a second connection")
	}

	pong := make(chan string, 1)
	ws.SetPongHandler(func(data string) error {
		pong <- data
		return nil
	})
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if err := ws.WriteControl(websocket.PingMessage, []byte("casebot"), time.Now().Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-pong:
		if got != "casebot" {
			t.Errorf("pong carries %q, want the ping's data", got)
		}
	case <-ctx.Done():
		t.Fatal("no pong")
	}
	if err := ws.WriteJSON(map[string]string{"envelope_id": "no-such-envelope"}); err != nil {
		t.Fatal(err)
	}
	ack, err := f.WaitAck(ctx, "no-such-envelope")
	if err != nil || !ack.Unknown {
		t.Errorf("ack of an unknown envelope = %+v, %v", ack, err)
	}
}

// postCard posts a ticket card with Approve and Edit buttons and returns its
// ts.
func postCard(t *testing.T, f *slackfake.Fake, channel string) string {
	t.Helper()
	approve := slack.NewButtonBlockElement("approve", "T-1", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false))
	approve.Style = slack.StylePrimary
	edit := slack.NewButtonBlockElement("edit", "T-1", slack.NewTextBlockObject(slack.PlainTextType, "Edit", false, false))
	_, ts, err := botClient(f).PostMessageContext(testCtx(t), channel,
		slack.MsgOptionText("Ticket T-1", false),
		slack.MsgOptionBlocks(section("*Refund* for order 1234"), slack.NewActionBlock("ticket", approve, edit)))
	if err != nil {
		t.Fatalf("post card: %v", err)
	}
	return ts
}

func resolveModal() slack.ModalViewRequest {
	method := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, nil, "method_select",
		slack.NewOptionBlockObject("refund", slack.NewTextBlockObject(slack.PlainTextType, "Refund", false, false), nil),
		slack.NewOptionBlockObject("replacement", slack.NewTextBlockObject(slack.PlainTextType, "Replacement", false, false), nil))
	note := slack.NewPlainTextInputBlockElement(nil, "note_input")
	noteBlock := slack.NewInputBlock("note", slack.NewTextBlockObject(slack.PlainTextType, "Note", false, false), nil, note)
	noteBlock.Optional = true
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           slack.NewTextBlockObject(slack.PlainTextType, "Resolve T-1", false, false),
		Submit:          slack.NewTextBlockObject(slack.PlainTextType, "Resolve", false, false),
		CallbackID:      "resolve",
		PrivateMetadata: "T-1",
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock("method", slack.NewTextBlockObject(slack.PlainTextType, "Method", false, false), nil, method),
			noteBlock,
		}},
	}
}

func TestClickOpenSubmit(t *testing.T) {
	f := newFake(t, slackfake.Options{Clock: slackfake.NewManualClock(t0)})
	c := startSocket(t, f)
	api := botClient(f)
	ctx := testCtx(t)
	nextEvent(t, c, socketmode.EventTypeHello)
	ts := postCard(t, f, "C-QUEUE")

	if _, err := f.Click(slackfake.Click{Channel: "C-QUEUE", TS: ts, ActionID: "delete", User: "U1"}); !errors.Is(err, slackfake.ErrNotFound) {
		t.Errorf("clicking a button the card lacks: %v, want ErrNotFound", err)
	}
	click, err := f.Click(slackfake.Click{Channel: "C-QUEUE", TS: ts, ActionID: "approve", User: "U1"})
	if err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, c, socketmode.EventTypeInteractive)
	cb := ev.Data.(slack.InteractionCallback)
	if cb.Type != slack.InteractionTypeBlockActions || len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("callback = %+v", cb)
	}
	act := cb.ActionCallback.BlockActions[0]
	if act.ActionID != "approve" || act.Value != "T-1" || act.BlockID != "ticket" || act.Text.Text != "Approve" {
		t.Errorf("action = %+v", act)
	}
	if cb.TriggerID != click.TriggerID || cb.ResponseURL != click.ResponseURL || cb.User.ID != "U1" ||
		cb.Message.Timestamp != ts || cb.Container.ChannelID != "C-QUEUE" || cb.Channel.ID != "C-QUEUE" {
		t.Errorf("callback context = trigger %q url %q user %q msg %q container %+v channel %q",
			cb.TriggerID, cb.ResponseURL, cb.User.ID, cb.Message.Timestamp, cb.Container, cb.Channel.ID)
	}
	if err := c.Ack(*ev.Request); err != nil {
		t.Fatal(err)
	}

	resp, err := api.OpenViewContext(ctx, cb.TriggerID, resolveModal())
	if err != nil {
		t.Fatalf("views.open: %v", err)
	}
	if resp.ID == "" || resp.Hash == "" || resp.CallbackID != "resolve" || resp.PrivateMetadata != "T-1" {
		t.Errorf("opened view = %+v", resp.View)
	}
	views := f.Views()
	if len(views) != 1 || views[0].UserID != "U1" || views[0].Title != "Resolve T-1" || views[0].TriggerID != cb.TriggerID {
		t.Errorf("Views() = %+v", views)
	}

	values := map[string]map[string]slackfake.Input{"method": {"method_select": {Value: "refund"}}}
	if _, err := f.SubmitView(slackfake.Submission{ViewID: resp.ID, User: "U1", Values: map[string]map[string]slackfake.Input{"method": {"method_select": {Value: "voucher"}}}}); !errors.Is(err, slackfake.ErrNotFound) {
		t.Errorf("an option the select lacks: %v, want ErrNotFound", err)
	}
	if _, err := f.SubmitView(slackfake.Submission{ViewID: resp.ID, User: "U1"}); err == nil {
		t.Error("a submission without the required method must fail")
	}
	sub, err := f.SubmitView(slackfake.Submission{ViewID: resp.ID, User: "U1", Values: values})
	if err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, c, socketmode.EventTypeInteractive)
	cb = ev.Data.(slack.InteractionCallback)
	if cb.Type != slack.InteractionTypeViewSubmission || cb.View.ID != resp.ID || cb.View.CallbackID != "resolve" || cb.View.PrivateMetadata != "T-1" {
		t.Fatalf("submission = %+v", cb.View)
	}
	if got := cb.View.State.Values["method"]["method_select"].SelectedOption.Value; got != "refund" {
		t.Errorf("selected method = %q, want refund", got)
	}
	if !ev.Request.AcceptsResponsePayload {
		t.Error("view_submission envelopes accept a response payload")
	}
	if err := c.Ack(*ev.Request, slack.NewErrorsViewSubmissionResponse(map[string]string{"note": "say why"})); err != nil {
		t.Fatal(err)
	}
	ack, err := f.WaitAck(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ack.Payload), `"response_action":"errors"`) || f.Views()[0].Closed {
		t.Errorf("ack with errors: payload %s, view closed %v; want recorded and open", ack.Payload, f.Views()[0].Closed)
	}

	sub, err = f.SubmitView(slackfake.Submission{ViewID: resp.ID, User: "U1", Values: values})
	if err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, c, socketmode.EventTypeInteractive)
	if err := c.Ack(*ev.Request); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitAck(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	if !f.Views()[0].Closed {
		t.Error("a plain ack closes the modal")
	}
	if _, err := f.SubmitView(slackfake.Submission{ViewID: resp.ID, User: "U1", Values: values}); !errors.Is(err, slackfake.ErrNotFound) {
		t.Errorf("submitting a closed modal: %v, want ErrNotFound", err)
	}
}

func TestSlashCommand(t *testing.T) {
	f := newFake(t, slackfake.Options{Clock: slackfake.NewManualClock(t0)})
	c := startSocket(t, f)
	nextEvent(t, c, socketmode.EventTypeHello)
	env, err := f.SlashCommand(slackfake.Command{Command: "/casebot", Text: "metrics 7d", User: "U1", Channel: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, c, socketmode.EventTypeSlashCommand)
	cmd := ev.Data.(slack.SlashCommand)
	if cmd.Command != "/casebot" || cmd.Text != "metrics 7d" || cmd.UserID != "U1" || cmd.ChannelID != "C1" ||
		cmd.TriggerID != env.TriggerID || cmd.ResponseURL != env.ResponseURL || !ev.Request.AcceptsResponsePayload {
		t.Errorf("slash command = %+v", cmd)
	}
	if err := c.Ack(*ev.Request, map[string]string{"text": "working on it"}); err != nil {
		t.Fatal(err)
	}
	ack, err := f.WaitAck(testCtx(t), env.ID)
	if err != nil {
		t.Fatal(err)
	}
	var payload struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(ack.Payload, &payload); err != nil || payload.Text != "working on it" || ack.Type != slackfake.TypeSlashCommands {
		t.Errorf("ack = %+v (%v)", ack, err)
	}
}

func TestTriggerIDs(t *testing.T) {
	clock := slackfake.NewManualClock(t0)
	f := newFake(t, slackfake.Options{Clock: clock})
	api := botClient(f)
	ctx := testCtx(t)
	trigger := func() string {
		env, err := f.SlashCommand(slackfake.Command{Command: "/casebot", Text: "new", User: "U1", Channel: "C1"})
		if err != nil {
			t.Fatal(err)
		}
		return env.TriggerID
	}
	open := func(id string) error {
		_, err := api.OpenViewContext(ctx, id, resolveModal())
		return err
	}

	used := trigger()
	atDeadline := trigger()
	late := trigger()
	expiredByHand := trigger()
	if err := open(used); err != nil {
		t.Fatalf("fresh trigger: %v", err)
	}
	clock.Advance(3 * time.Second)
	if err := open(atDeadline); err != nil {
		t.Errorf("trigger at exactly 3s: %v", err)
	}
	clock.Advance(time.Millisecond)
	fresh := trigger()
	f.ExpireTriggers()
	tests := []struct {
		name, trigger, want string
	}{
		{"used twice", used, "exchanged_trigger_id"},
		{"past 3s", late, "expired_trigger_id"},
		{"ExpireTriggers", expiredByHand, "expired_trigger_id"},
		{"ExpireTriggers covers fresh ones", fresh, "expired_trigger_id"},
		{"never handed out", "123.456.abcdef", "invalid_trigger_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slackErr(open(tt.trigger)); got != tt.want {
				t.Errorf("views.open = %q, want %q", got, tt.want)
			}
		})
	}
	if got := len(f.Views()); got != 2 {
		t.Errorf("%d views opened, want 2", got)
	}
}

func TestViewsUpdateAndPublish(t *testing.T) {
	f := newFake(t, slackfake.Options{Clock: slackfake.NewManualClock(t0)})
	api := botClient(f)
	ctx := testCtx(t)
	env, err := f.SlashCommand(slackfake.Command{Command: "/casebot", Text: "new", User: "U1", Channel: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	m := resolveModal()
	m.ExternalID = "resolve-T-1"
	opened, err := api.OpenViewContext(ctx, env.TriggerID, m)
	if err != nil {
		t.Fatal(err)
	}
	m.Title = slack.NewTextBlockObject(slack.PlainTextType, "Resolved", false, false)
	updated, err := api.UpdateViewContext(ctx, m, "", opened.Hash, opened.ID)
	if err != nil {
		t.Fatalf("update with the current hash: %v", err)
	}
	if updated.Hash == opened.Hash || updated.Title.Text != "Resolved" {
		t.Errorf("updated view = %+v", updated.View)
	}
	if _, err := api.UpdateViewContext(ctx, m, "", opened.Hash, opened.ID); slackErr(err) != "hash_conflict" {
		t.Errorf("update with a stale hash: %v, want hash_conflict", err)
	}
	if _, err := api.UpdateViewContext(ctx, m, "resolve-T-1", "", ""); err != nil {
		t.Errorf("update by external_id: %v", err)
	}
	if _, err := api.UpdateViewContext(ctx, m, "", "", "V404"); slackErr(err) != "not_found" {
		t.Errorf("update of an unknown view: %v, want not_found", err)
	}
	if v := f.Views()[0]; v.Updates != 2 || v.Title != "Resolved" || v.ExternalID != "resolve-T-1" {
		t.Errorf("stored view = %+v", v)
	}

	home := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{section("*Your open tickets*: 3")}}}
	first, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U1", View: home})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	again, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U1", View: home})
	if err != nil || again.ID != first.ID {
		t.Fatalf("republish: %v, id %q want %q", err, again.ID, first.ID)
	}
	views := f.Views()
	if len(views) != 2 || views[1].Type != "home" || views[1].UserID != "U1" || views[1].Updates != 1 {
		t.Errorf("home view = %+v", views[1:])
	}
}

func TestResponseURL(t *testing.T) {
	clock := slackfake.NewManualClock(t0)
	f := newFake(t, slackfake.Options{Clock: clock})
	api := botClient(f)
	ctx := testCtx(t)
	reply := func(opts ...slack.MsgOption) error {
		_, _, err := api.PostMessageContext(ctx, "", opts...)
		return err
	}

	cmd, err := f.SlashCommand(slackfake.Command{Command: "/casebot", Text: "metrics", User: "U1", Channel: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := reply(slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeEphemeral), slack.MsgOptionText("p50 4m", false)); err != nil {
		t.Fatalf("ephemeral reply: %v", err)
	}
	if err := reply(slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeInChannel), slack.MsgOptionText("for all", false)); err != nil {
		t.Fatalf("in-channel reply: %v", err)
	}
	posts := f.ResponsePosts()
	if len(posts) != 2 || posts[0].Source != slackfake.TypeSlashCommands || posts[0].Text != "p50 4m" || posts[0].ResponseType != "ephemeral" || posts[0].URL != cmd.ResponseURL {
		t.Errorf("ResponsePosts() = %+v", posts)
	}
	if e := f.Ephemerals(); len(e) != 1 || e[0].User != "U1" || e[0].Channel != "C1" || e[0].Text != "p50 4m" {
		t.Errorf("ephemeral reply = %+v", e)
	}
	if m := f.Messages("C1"); len(m) != 1 || m[0].Text != "for all" {
		t.Errorf("in-channel reply = %+v", m)
	}

	ts := postCard(t, f, "C2")
	click, err := f.Click(slackfake.Click{Channel: "C2", TS: ts, ActionID: "approve", User: "U1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := reply(slack.MsgOptionReplaceOriginal(click.ResponseURL), slack.MsgOptionText("Approved by <@U1>", false)); err != nil {
		t.Fatalf("replace_original: %v", err)
	}
	if m, _ := f.Message("C2", ts); m.Text != "Approved by <@U1>" || m.Updates != 1 {
		t.Errorf("replaced card = %+v", m)
	}
	if err := reply(slack.MsgOptionDeleteOriginal(click.ResponseURL)); err != nil {
		t.Fatalf("delete_original: %v", err)
	}
	if m, _ := f.Message("C2", ts); !m.Deleted {
		t.Error("delete_original must delete the card")
	}

	limited := f.NewResponseURL("C1", "U2")
	for i := range 5 {
		if err := reply(slack.MsgOptionResponseURL(limited, slack.ResponseTypeEphemeral), slack.MsgOptionText("n", false)); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	expired := f.NewResponseURL("C1", "U2")
	tests := []struct {
		name    string
		url     string
		advance time.Duration
		want    string
	}{
		{"sixth use", limited, 0, "used_url"},
		{"never handed out", limited + "x", 0, "no_service"},
		{"after 30 minutes", expired, 30*time.Minute + time.Second, "expired_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Advance(tt.advance)
			err := reply(slack.MsgOptionResponseURL(tt.url, slack.ResponseTypeEphemeral), slack.MsgOptionText("n", false))
			var sc slack.StatusCodeError
			if !errors.As(err, &sc) || sc.Code != 404 {
				t.Errorf("post = %v, want 404", err)
			}
			posts := f.ResponsePosts()
			if last := posts[len(posts)-1]; last.Error != tt.want {
				t.Errorf("recorded post error %q, want %q", last.Error, tt.want)
			}
		})
	}
}

package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"time"
)

// verificationToken is the legacy token Slack still puts in payloads.
const verificationToken = "slackfake-verification-token"

// ErrNotFound is wrapped by the injection helpers when the message, view,
// button or input they are asked to act on does not exist.
var ErrNotFound = errors.New("slackfake: not found")

// responseURL is a response_url handed out in a payload.
type responseURL struct {
	url       string
	source    string
	channel   string
	user      string
	messageTS string
	issued    time.Time
	uses      int
}

// newResponseURL hands out a response_url; f.mu must be held.
func (f *Fake) newResponseURL(source, channel, user, messageTS string) string {
	id := fmt.Sprintf("%s-%d-%08x", f.opts.TeamID, f.nextID(), f.seq*2654435761%(1<<32))
	ru := &responseURL{
		url:       f.server.URL + "/hooks/" + id,
		source:    source,
		channel:   channel,
		user:      user,
		messageTS: messageTS,
		issued:    f.opts.Clock.Now(),
	}
	f.responseURLs[id] = ru
	return ru.url
}

// NewResponseURL hands out a response_url answering into channel for user,
// for payloads built by hand and sent with SendEnvelope.
func (f *Fake) NewResponseURL(channel, user string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newResponseURL("", channel, user, "")
}

// serveResponseURL takes posts to the response URLs the fake handed out, and
// does with them what Slack does: replace or delete the original message,
// post in the channel, or show an ephemeral message.
func (f *Fake) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	now := f.opts.Clock.Now()
	call := Call{Method: "response_url", At: now}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err == nil && json.Valid(body) {
		call.Body = body
	}
	if !f.preflight(w, r, &call) {
		return
	}
	var msg struct {
		Text            string          `json:"text"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		DeleteOriginal  bool            `json:"delete_original"`
		ThreadTS        string          `json:"thread_ts"`
		Blocks          json.RawMessage `json:"blocks"`
	}
	fields := map[string]json.RawMessage{}
	parseErr := json.Unmarshal(body, &msg)
	if parseErr == nil {
		parseErr = json.Unmarshal(body, &fields)
	}

	f.mu.Lock()
	ru := f.responseURLs[r.PathValue("id")]
	post := ResponsePost{
		URL:             f.server.URL + r.URL.Path,
		Text:            msg.Text,
		ResponseType:    msg.ResponseType,
		ReplaceOriginal: msg.ReplaceOriginal,
		DeleteOriginal:  msg.DeleteOriginal,
		Body:            call.Body,
		At:              now,
	}
	if string(msg.Blocks) != "null" {
		post.Blocks = compact(msg.Blocks)
	}
	var rep reply
	switch {
	case ru == nil:
		rep = fail("no_service")
		rep.status = http.StatusNotFound
	case now.Sub(ru.issued) > f.opts.ResponseURLTTL:
		rep = fail("expired_url")
		rep.status = http.StatusNotFound
	case ru.uses >= f.opts.ResponseURLUses:
		rep = fail("used_url")
		rep.status = http.StatusNotFound
	case err != nil || parseErr != nil:
		rep = fail("invalid_payload")
		rep.status = http.StatusBadRequest
	default:
		rep = f.respond(ru, &request{form: url.Values{}, fields: fields, now: now}, post)
	}
	if ru != nil {
		post.Source = ru.source
	}
	post.Error, _ = rep.body["error"].(string)
	f.responses = append(f.responses, post)
	f.mu.Unlock()
	f.answer(w, call, rep)
}

// respond applies one response_url post; f.mu must be held.
func (f *Fake) respond(ru *responseURL, q *request, post ResponsePost) reply {
	blocks, bad := checkMessage(q, !post.DeleteOriginal)
	if bad != nil {
		return *bad
	}
	ru.uses++
	original := f.findMessage(ru.channel, ru.messageTS)
	switch {
	case post.DeleteOriginal && original != nil:
		original.Deleted = true
	case post.ReplaceOriginal && original != nil:
		original.Text = post.Text
		original.Blocks = blocks
		original.Updates++
	case post.ResponseType == "in_channel":
		f.addMessage(&Message{
			Channel:  ru.channel,
			TS:       f.newTS(),
			ThreadTS: q.str("thread_ts"),
			User:     f.opts.BotUserID,
			BotID:    f.opts.BotID,
			Text:     post.Text,
			Blocks:   blocks,
			PostedAt: q.now,
		})
	default:
		f.ephemerals = append(f.ephemerals, Ephemeral{
			Channel:  ru.channel,
			User:     ru.user,
			TS:       f.newTS(),
			ThreadTS: q.str("thread_ts"),
			Text:     post.Text,
			Blocks:   blocks,
			At:       q.now,
		})
	}
	return ok(nil)
}

// userJSON is a user as payloads carry it; f.mu must be held.
func (f *Fake) userJSON(id string) map[string]any {
	name := id
	if u, known := f.users[id]; known && u.Name != "" {
		name = u.Name
	}
	return map[string]any{"id": id, "username": name, "name": name, "team_id": f.opts.TeamID}
}

func (f *Fake) teamJSON() map[string]any {
	return map[string]any{"id": f.opts.TeamID, "domain": "slackfake"}
}

// eventCallback wraps an Events API event; f.mu must be held.
func (f *Fake) eventCallback(event any) (json.RawMessage, string, error) {
	eventID := fmt.Sprintf("Ev%010d", f.nextID())
	raw, err := json.Marshal(map[string]any{
		"token":      verificationToken,
		"team_id":    f.opts.TeamID,
		"api_app_id": f.opts.AppID,
		"event":      event,
		"type":       "event_callback",
		"event_id":   eventID,
		"event_time": f.opts.Clock.Now().Unix(),
		"authorizations": []map[string]any{{
			"team_id": f.opts.TeamID, "user_id": f.opts.BotUserID, "is_bot": true,
		}},
		"is_ext_shared_channel": false,
	})
	if err != nil {
		return nil, "", fmt.Errorf("slackfake: event payload: %w", err)
	}
	return raw, eventID, nil
}

// UserMessage is a message a person writes in a channel.
type UserMessage struct {
	Channel string
	User    string
	Text    string
	// ThreadTS makes it a thread reply.
	ThreadTS string
}

// SendMessage adds a person's message to a channel and delivers it to the
// app as an events_api message event. The message's ts is in
// Envelope.Payload's event.ts and in Messages(channel).
func (f *Fake) SendMessage(m UserMessage) (Envelope, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sendMessage(&Message{Channel: m.Channel, ThreadTS: m.ThreadTS, User: m.User, Text: m.Text}, nil)
}

// AppMessage is a message another app posts in a channel: an integration
// such as Shopify Flow, Zapier or an email forwarder. An app posting with
// its bot token has a bot user; a legacy integration or incoming webhook
// has none, and Slack marks its post with the bot_message subtype.
type AppMessage struct {
	Channel string
	// BotID (B…) and AppID (A…) identify the posting app.
	BotID, AppID string
	// User is the app's bot user; empty for a bot_message post.
	User string
	// Username is the name the post shows.
	Username string
	Text     string
	// ThreadTS makes it a thread reply.
	ThreadTS string
}

// SendAppMessage adds an app's message to a channel and delivers it to the
// app under test as Slack does: with bot_id and bot_profile, and the
// bot_message subtype when m.User is empty. Sent with the fake's own BotID
// and BotUserID it is the echo of casebot's own post.
func (f *Fake) SendAppMessage(m AppMessage) (Envelope, error) {
	if m.BotID == "" {
		return Envelope{}, errors.New("slackfake: an app message needs a BotID")
	}
	extra := map[string]any{
		"bot_id":      m.BotID,
		"bot_profile": map[string]any{"id": m.BotID, "app_id": m.AppID, "name": m.Username, "team_id": f.opts.TeamID},
	}
	if m.AppID != "" {
		extra["app_id"] = m.AppID
	}
	if m.Username != "" {
		extra["username"] = m.Username
	}
	if m.User == "" {
		extra["subtype"] = "bot_message"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sendMessage(&Message{Channel: m.Channel, ThreadTS: m.ThreadTS, User: m.User, BotID: m.BotID, Text: m.Text}, extra)
}

// sendMessage stores msg with a fresh ts and delivers its message event,
// with extra fields added; f.mu must be held.
func (f *Fake) sendMessage(msg *Message, extra map[string]any) (Envelope, error) {
	if !f.channelExists(msg.Channel) {
		return Envelope{}, fmt.Errorf("channel %q: %w", msg.Channel, ErrNotFound)
	}
	if msg.ThreadTS != "" && f.findMessage(msg.Channel, msg.ThreadTS) == nil {
		return Envelope{}, fmt.Errorf("thread %s/%s: %w", msg.Channel, msg.ThreadTS, ErrNotFound)
	}
	msg.TS = f.newTS()
	msg.PostedAt = f.opts.Clock.Now()
	f.addMessage(msg)
	event := map[string]any{
		"type":         "message",
		"channel":      msg.Channel,
		"text":         msg.Text,
		"ts":           msg.TS,
		"event_ts":     msg.TS,
		"channel_type": "channel",
		"team":         f.opts.TeamID,
	}
	if msg.User != "" {
		event["user"] = msg.User
	}
	if msg.ThreadTS != "" {
		event["thread_ts"] = msg.ThreadTS
	}
	maps.Copy(event, extra)
	raw, eventID, err := f.eventCallback(event)
	if err != nil {
		return Envelope{}, err
	}
	return f.inject(&origin{typ: TypeEventsAPI, payload: raw, eventID: eventID}), nil
}

// SendEvent delivers any Events API event (app_home_opened,
// app_mention …), wrapped in an event_callback with a fresh event_id.
func (f *Fake) SendEvent(event any) (Envelope, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, eventID, err := f.eventCallback(event)
	if err != nil {
		return Envelope{}, err
	}
	return f.inject(&origin{typ: TypeEventsAPI, payload: raw, eventID: eventID}), nil
}

// Click is a person pressing a button on a message.
type Click struct {
	Channel string
	// TS is the message's ts.
	TS       string
	ActionID string
	User     string
}

// Click delivers a block_actions payload for the button with c.ActionID on
// the message as it is now, with a fresh trigger_id and response_url. It
// fails with ErrNotFound when the message has no such button.
func (f *Fake) Click(c Click) (Envelope, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.findMessage(c.Channel, c.TS)
	if m == nil || m.Deleted {
		return Envelope{}, fmt.Errorf("message %s/%s: %w", c.Channel, c.TS, ErrNotFound)
	}
	button, blockID := findButton(m.Blocks, c.ActionID)
	if button == nil {
		return Envelope{}, fmt.Errorf("button %q on message %s/%s: %w", c.ActionID, c.Channel, c.TS, ErrNotFound)
	}
	action := map[string]any{
		"type":      "button",
		"action_id": c.ActionID,
		"block_id":  blockID,
		"text":      button["text"],
		"action_ts": f.newTS(),
	}
	for _, k := range []string{"value", "style", "url"} {
		if v, has := button[k]; has {
			action[k] = v
		}
	}
	trigger := f.newTrigger(c.User)
	respURL := f.newResponseURL(TypeInteractive, c.Channel, c.User, c.TS)
	raw, err := json.Marshal(map[string]any{
		"type":       "block_actions",
		"user":       f.userJSON(c.User),
		"api_app_id": f.opts.AppID,
		"token":      verificationToken,
		"container": map[string]any{
			"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": false,
		},
		"trigger_id":            trigger,
		"team":                  f.teamJSON(),
		"is_enterprise_install": false,
		"channel":               map[string]any{"id": m.Channel, "name": m.Channel},
		"message":               messageJSON(m),
		"state":                 map[string]any{"values": map[string]any{}},
		"response_url":          respURL,
		"actions":               []any{action},
	})
	if err != nil {
		return Envelope{}, fmt.Errorf("slackfake: block_actions payload: %w", err)
	}
	return f.inject(&origin{typ: TypeInteractive, payload: raw, trigger: trigger, respURL: respURL}), nil
}

// findButton finds a button by action_id in actions blocks and section
// accessories.
func findButton(blocks json.RawMessage, actionID string) (map[string]any, string) {
	var list []map[string]any
	if json.Unmarshal(blocks, &list) != nil {
		return nil, ""
	}
	for _, b := range list {
		blockID, _ := b["block_id"].(string)
		candidates, _ := b["elements"].([]any)
		if acc, has := b["accessory"]; has {
			candidates = append(candidates, acc)
		}
		for _, e := range candidates {
			el, _ := e.(map[string]any)
			if el["type"] == "button" && el["action_id"] == actionID {
				return el, blockID
			}
		}
	}
	return nil, ""
}

// Input is what a person enters in one input element of a modal.
type Input struct {
	// Value is the text of a text input, the option value of a single
	// select or radio group, the user or conversation of a users or
	// conversations select, or the date of a datepicker.
	Value string
	// Values are the option values of a multi-select or checkbox group.
	Values []string
}

// Submission is a person pressing a modal's submit button.
type Submission struct {
	ViewID string
	User   string
	// Values maps block_id → action_id → what was entered.
	Values map[string]map[string]Input
}

// SubmitView delivers a view_submission payload for an open modal, with the
// view's state built from s.Values against the view's input blocks. It fails
// with ErrNotFound for an unknown or closed view, a value for an input the
// view lacks, or an option the select does not offer, and with an error for a
// missing required input (Slack's client would not submit).
func (f *Fake) SubmitView(s Submission) (Envelope, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.findView(s.ViewID, "")
	if v == nil || v.Type != "modal" || v.Closed {
		return Envelope{}, fmt.Errorf("open modal %q: %w", s.ViewID, ErrNotFound)
	}
	values, err := viewState(v.JSON, s.Values)
	if err != nil {
		return Envelope{}, err
	}
	view := f.viewJSON(v)
	view["state"] = map[string]any{"values": values}
	trigger := f.newTrigger(s.User)
	raw, err := json.Marshal(map[string]any{
		"type":                  "view_submission",
		"team":                  f.teamJSON(),
		"user":                  f.userJSON(s.User),
		"api_app_id":            f.opts.AppID,
		"token":                 verificationToken,
		"trigger_id":            trigger,
		"view":                  view,
		"response_urls":         []any{},
		"is_enterprise_install": false,
	})
	if err != nil {
		return Envelope{}, fmt.Errorf("slackfake: view_submission payload: %w", err)
	}
	return f.inject(&origin{typ: TypeInteractive, payload: raw, accepts: true, trigger: trigger, viewID: v.ID}), nil
}

// viewState builds state.values for a view's input blocks from entered
// values, the way Slack reports each element type.
func viewState(viewJSON json.RawMessage, entered map[string]map[string]Input) (map[string]any, error) {
	var view struct {
		Blocks []struct {
			Type     string         `json:"type"`
			BlockID  string         `json:"block_id"`
			Optional bool           `json:"optional"`
			Element  map[string]any `json:"element"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(viewJSON, &view); err != nil {
		return nil, fmt.Errorf("slackfake: stored view: %w", err)
	}
	used := 0
	values := map[string]any{}
	for i, b := range view.Blocks {
		if b.Type != "input" {
			continue
		}
		blockID := b.BlockID
		if blockID == "" {
			blockID = fmt.Sprintf("input-%d", i)
		}
		actionID, _ := b.Element["action_id"].(string)
		in, given := entered[blockID][actionID]
		if given {
			used++
		} else if !b.Optional {
			return nil, fmt.Errorf("slackfake: required input %s/%s has no value", blockID, actionID)
		}
		state, err := elementState(b.Element, in, given)
		if err != nil {
			return nil, fmt.Errorf("input %s/%s: %w", blockID, actionID, err)
		}
		values[blockID] = map[string]any{actionID: state}
	}
	total := 0
	for _, actions := range entered {
		total += len(actions)
	}
	if used != total {
		return nil, fmt.Errorf("values for inputs the view does not have: %w", ErrNotFound)
	}
	return values, nil
}

// elementState is one input element's entry in state.values.
func elementState(el map[string]any, in Input, given bool) (map[string]any, error) {
	typ, _ := el["type"].(string)
	state := map[string]any{"type": typ}
	switch typ {
	case "static_select", "radio_buttons":
		state["selected_option"] = nil
		if given && in.Value != "" {
			opt, err := findOption(el, in.Value)
			if err != nil {
				return nil, err
			}
			state["selected_option"] = opt
		}
	case "multi_static_select", "checkboxes":
		opts := []any{}
		for _, val := range in.Values {
			opt, err := findOption(el, val)
			if err != nil {
				return nil, err
			}
			opts = append(opts, opt)
		}
		state["selected_options"] = opts
	case "users_select":
		state["selected_user"] = nullable(in.Value)
	case "conversations_select":
		state["selected_conversation"] = nullable(in.Value)
	case "channels_select":
		state["selected_channel"] = nullable(in.Value)
	case "datepicker":
		state["selected_date"] = nullable(in.Value)
	default:
		state["value"] = nullable(in.Value)
	}
	return state, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func findOption(el map[string]any, value string) (any, error) {
	opts, _ := el["options"].([]any)
	if groups, isArr := el["option_groups"].([]any); isArr {
		for _, g := range groups {
			gm, _ := g.(map[string]any)
			more, _ := gm["options"].([]any)
			opts = append(opts, more...)
		}
	}
	for _, o := range opts {
		if om, _ := o.(map[string]any); om["value"] == value {
			return om, nil
		}
	}
	return nil, fmt.Errorf("option %q: %w", value, ErrNotFound)
}

// Command is a person running a slash command.
type Command struct {
	// Command is the command with its slash, e.g. "/casebot".
	Command string
	Text    string
	User    string
	Channel string
}

// SlashCommand delivers a slash_commands payload with a fresh trigger_id and
// response_url.
func (f *Fake) SlashCommand(c Command) (Envelope, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.channelExists(c.Channel) {
		return Envelope{}, fmt.Errorf("channel %q: %w", c.Channel, ErrNotFound)
	}
	trigger := f.newTrigger(c.User)
	respURL := f.newResponseURL(TypeSlashCommands, c.Channel, c.User, "")
	name := c.User
	if u, known := f.users[c.User]; known && u.Name != "" {
		name = u.Name
	}
	raw, err := json.Marshal(map[string]any{
		"token":                 verificationToken,
		"team_id":               f.opts.TeamID,
		"team_domain":           "slackfake",
		"channel_id":            c.Channel,
		"channel_name":          c.Channel,
		"user_id":               c.User,
		"user_name":             name,
		"command":               c.Command,
		"text":                  c.Text,
		"api_app_id":            f.opts.AppID,
		"is_enterprise_install": false,
		"response_url":          respURL,
		"trigger_id":            trigger,
	})
	if err != nil {
		return Envelope{}, fmt.Errorf("slackfake: slash command payload: %w", err)
	}
	return f.inject(&origin{typ: TypeSlashCommands, payload: raw, accepts: true, trigger: trigger, respURL: respURL}), nil
}

// WaitAck waits for the ack of one envelope (not its redeliveries).
func (f *Fake) WaitAck(ctx context.Context, envelopeID string) (Ack, error) {
	var found Ack
	err := f.Wait(ctx, func() bool {
		for _, a := range f.Acks() {
			if a.EnvelopeID == envelopeID {
				found = a
				return true
			}
		}
		return false
	})
	return found, err
}

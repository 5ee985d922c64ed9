package slackfake_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot/slackfake"
)

// apiAnswer is the part of a Web API answer the limit tests look at.
type apiAnswer struct {
	OK               bool   `json:"ok"`
	Error            string `json:"error"`
	ResponseMetadata struct {
		Messages []string `json:"messages"`
	} `json:"response_metadata"`
}

func postForm(t *testing.T, f *slackfake.Fake, method string, v url.Values) apiAnswer {
	t.Helper()
	v.Set("token", f.BotToken())
	resp, err := http.PostForm(f.APIURL()+method, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a apiAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func postJSON(t *testing.T, f *slackfake.Fake, method string, body any) apiAnswer {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, f.APIURL()+method, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+f.BotToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a apiAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type obj = map[string]any

func plain(s string) obj  { return obj{"type": "plain_text", "text": s} }
func mrkdwn(s string) obj { return obj{"type": "mrkdwn", "text": s} }

func sectionBlock(text string) obj { return obj{"type": "section", "text": mrkdwn(text)} }

func button(id, text, value string) obj {
	return obj{"type": "button", "action_id": id, "text": plain(text), "value": value}
}

func repeat(n int, f func(i int) any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestBlockLimits(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	// "é" is one character and two bytes: limits count characters.
	e := func(n int) string { return strings.Repeat("é", n) }
	tests := []struct {
		name    string
		method  string
		text    string
		blocks  any
		wantErr string
		wantMsg string
	}{
		{"section at limit", "", "", []any{sectionBlock(x(3000))}, "", ""},
		{"section counts characters", "", "", []any{sectionBlock(e(3000))}, "", ""},
		{"section over limit", "", "", []any{sectionBlock(x(3001))}, "invalid_blocks", "[json-pointer:/blocks/0/text/text]"},
		{"section needs text or fields", "", "", []any{obj{"type": "section"}}, "invalid_blocks", "must have text or fields"},
		{"section fields over 10", "", "", []any{obj{"type": "section", "fields": repeat(11, func(int) any { return mrkdwn("f") })}}, "invalid_blocks", "/blocks/0/fields"},
		{"section field over 2000", "", "", []any{obj{"type": "section", "fields": []any{mrkdwn(x(2001))}}}, "invalid_blocks", "/blocks/0/fields/0/text"},
		{"50 blocks", "", "", repeat(50, func(int) any { return obj{"type": "divider"} }), "", ""},
		{"51 blocks", "", "", repeat(51, func(int) any { return obj{"type": "divider"} }), "invalid_blocks", "at most 50 blocks"},
		{"header at limit", "", "", []any{obj{"type": "header", "text": plain(x(150))}}, "", ""},
		{"header over limit", "", "", []any{obj{"type": "header", "text": plain(x(151))}}, "invalid_blocks", "/blocks/0/text/text"},
		{"header must be plain_text", "", "", []any{obj{"type": "header", "text": mrkdwn("h")}}, "invalid_blocks", "must be plain_text"},
		{"context 10 elements", "", "", []any{obj{"type": "context", "elements": repeat(10, func(int) any { return mrkdwn(":fire: legal") })}}, "", ""},
		{"context 11 elements", "", "", []any{obj{"type": "context", "elements": repeat(11, func(int) any { return mrkdwn("x") })}}, "invalid_blocks", "at most 10 elements"},
		{"actions 25 elements", "", "", []any{obj{"type": "actions", "elements": repeat(25, func(i int) any { return button(fmt.Sprint("a", i), "b", "v") })}}, "", ""},
		{"actions 26 elements", "", "", []any{obj{"type": "actions", "elements": repeat(26, func(i int) any { return button(fmt.Sprint("a", i), "b", "v") })}}, "invalid_blocks", "at most 25 elements"},
		{"button text at limit", "", "", []any{obj{"type": "actions", "elements": []any{button("a", x(75), "v")}}}, "", ""},
		{"button text over limit", "", "", []any{obj{"type": "actions", "elements": []any{button("a", x(76), "v")}}}, "invalid_blocks", "/blocks/0/elements/0/text/text"},
		{"action_id over limit", "", "", []any{obj{"type": "actions", "elements": []any{button(x(256), "b", "v")}}}, "invalid_blocks", "/blocks/0/elements/0/action_id"},
		{"button value over limit", "", "", []any{obj{"type": "actions", "elements": []any{button("a", "b", x(2001))}}}, "invalid_blocks", "/blocks/0/elements/0/value"},
		{"button style", "", "", []any{obj{"type": "actions", "elements": []any{obj{"type": "button", "action_id": "a", "text": plain("b"), "style": "green"}}}}, "invalid_blocks", "primary or danger"},
		{"accessory button checked", "", "", []any{obj{"type": "section", "text": mrkdwn("t"), "accessory": button("a", x(76), "v")}}, "invalid_blocks", "/blocks/0/accessory/text/text"},
		{"duplicate action_id", "", "", []any{obj{"type": "actions", "elements": []any{button("a", "b", "v"), button("a", "c", "v")}}}, "invalid_blocks", "duplicate action_id"},
		{"duplicate block_id", "", "", []any{obj{"type": "divider", "block_id": "b"}, obj{"type": "divider", "block_id": "b"}}, "invalid_blocks", "duplicate block_id"},
		{"block_id over limit", "", "", []any{obj{"type": "divider", "block_id": x(256)}}, "invalid_blocks", "/blocks/0/block_id"},
		{"unknown block type", "", "", []any{obj{"type": "carousel"}}, "invalid_blocks", "unsupported block type"},
		{"image needs alt_text", "", "", []any{obj{"type": "image", "image_url": "https://example.com/a.png"}}, "invalid_blocks", "/blocks/0/alt_text"},
		{"select options over 100", "", "", []any{obj{"type": "actions", "elements": []any{obj{"type": "static_select", "action_id": "s", "options": repeat(101, func(i int) any { return obj{"text": plain("o"), "value": fmt.Sprint(i)} })}}}}, "invalid_blocks", "at most 100 options"},
		{"blocks not an array", "", "", obj{"type": "section"}, "invalid_blocks_format", ""},
		{"text at limit", "", x(40000), nil, "", ""},
		{"text over limit", "", x(40001), nil, "msg_too_long", ""},
		{"nothing to post", "", "", nil, "no_text", ""},
		{"update checks blocks", "chat.update", "", []any{sectionBlock(x(3001))}, "invalid_blocks", "/blocks/0/text/text"},
		{"ephemeral checks blocks", "chat.postEphemeral", "", []any{obj{"type": "header", "text": plain(x(151))}}, "invalid_blocks", "/blocks/0/text/text"},
	}
	f := newFake(t, slackfake.Options{PostRate: -1})
	_, ts, err := botClient(f).PostMessageContext(testCtx(t), "C1", slack.MsgOptionText("original", false))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "chat.postMessage"
			}
			v := url.Values{"channel": {"C1"}, "ts": {ts}, "user": {"U1"}}
			if tt.text != "" {
				v.Set("text", tt.text)
			}
			if tt.blocks != nil {
				v.Set("blocks", mustJSON(t, tt.blocks))
			}
			a := postForm(t, f, method, v)
			if a.Error != tt.wantErr || a.OK != (tt.wantErr == "") {
				t.Fatalf("answer = %+v, want error %q", a, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(strings.Join(a.ResponseMetadata.Messages, "\n"), tt.wantMsg) {
				t.Errorf("messages %q do not name %q", a.ResponseMetadata.Messages, tt.wantMsg)
			}
		})
	}
}

// TestInvalidBlocksThroughSlackGo checks what slack-go's caller sees.
func TestInvalidBlocksThroughSlackGo(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	_, _, err := botClient(f).PostMessageContext(testCtx(t), "C1", slack.MsgOptionBlocks(section(strings.Repeat("x", 3001))))
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "invalid_blocks" {
		t.Fatalf("oversized section: %v, want invalid_blocks", err)
	}
	if len(se.ResponseMetadata.Messages) != 1 || !strings.Contains(se.ResponseMetadata.Messages[0], "must be at most 3000 characters, got 3001 [json-pointer:/blocks/0/text/text]") {
		t.Errorf("response_metadata.messages = %q", se.ResponseMetadata.Messages)
	}
	if len(f.Messages("C1")) != 0 {
		t.Error("a refused message was stored")
	}
}

func modal(title string, blocks []any, extra obj) obj {
	v := obj{"type": "modal", "title": plain(title), "submit": plain("Save"), "blocks": blocks}
	for k, val := range extra {
		v[k] = val
	}
	return v
}

func textInput(blockID, actionID string) obj {
	return obj{"type": "input", "block_id": blockID, "label": plain("Note"), "element": obj{"type": "plain_text_input", "action_id": actionID}}
}

func TestViewLimits(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	input := []any{textInput("note", "note_input")}
	tests := []struct {
		name    string
		view    obj
		form    bool
		wantErr string
		wantMsg string
	}{
		{"valid", modal("Escalate ticket", input, nil), false, "", ""},
		{"valid as form-encoded string", modal("Escalate ticket", input, nil), true, "", ""},
		{"title at limit", modal(x(24), input, nil), false, "", ""},
		{"title over limit", modal(x(25), input, nil), false, "invalid_arguments", "/view/title/text"},
		{"100 blocks", modal("t", repeat(100, func(int) any { return obj{"type": "divider"} }), nil), false, "", ""},
		{"101 blocks", modal("t", repeat(101, func(int) any { return obj{"type": "divider"} }), nil), false, "invalid_arguments", "at most 100 blocks"},
		{"callback_id over limit", modal("t", input, obj{"callback_id": x(256)}), false, "invalid_arguments", "/view/callback_id"},
		{"private_metadata at limit", modal("t", input, obj{"private_metadata": x(3000)}), false, "", ""},
		{"private_metadata over limit", modal("t", input, obj{"private_metadata": x(3001)}), false, "invalid_arguments", "/view/private_metadata"},
		{"submit over limit", modal("t", input, obj{"submit": plain(x(25))}), false, "invalid_arguments", "/view/submit/text"},
		{"close over limit", modal("t", input, obj{"close": plain(x(25))}), false, "invalid_arguments", "/view/close/text"},
		{"input needs submit", obj{"type": "modal", "title": plain("t"), "blocks": input}, false, "invalid_arguments", "submit button"},
		{"no title", obj{"type": "modal", "blocks": []any{}}, false, "invalid_arguments", "/view/title"},
		{"home is not a modal", obj{"type": "home", "blocks": []any{}}, false, "invalid_arguments", "/view/type"},
		{"block limits apply inside", modal("t", []any{sectionBlock(x(3001))}, nil), false, "invalid_arguments", "/view/blocks/0/text/text"},
	}
	f := newFake(t, slackfake.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := f.SlashCommand(slackfake.Command{Command: "/casebot", Text: "new", User: "U1", Channel: "C1"})
			if err != nil {
				t.Fatal(err)
			}
			var a apiAnswer
			if tt.form {
				a = postForm(t, f, "views.open", url.Values{"trigger_id": {env.TriggerID}, "view": {mustJSON(t, tt.view)}})
			} else {
				a = postJSON(t, f, "views.open", obj{"trigger_id": env.TriggerID, "view": tt.view})
			}
			if a.Error != tt.wantErr || a.OK != (tt.wantErr == "") {
				t.Fatalf("answer = %+v, want error %q", a, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(strings.Join(a.ResponseMetadata.Messages, "\n"), tt.wantMsg) {
				t.Errorf("messages %q do not name %q", a.ResponseMetadata.Messages, tt.wantMsg)
			}
		})
	}
}

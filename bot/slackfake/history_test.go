package slackfake_test

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot/slackfake"
)

// historyTexts returns the texts of a history page, in the order answered.
func historyTexts(msgs []slack.Message) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.Text)
	}
	return out
}

func TestConversationsHistory(t *testing.T) {
	clock := slackfake.NewManualClock(t0)
	f := newFake(t, slackfake.Options{Clock: clock, PostRate: -1, Channels: []string{"C1", "C2"}})
	api := botClient(f)
	ctx := testCtx(t)

	meta := slack.SlackMetadata{EventType: "casebot_post", EventPayload: map[string]any{"post_id": "P7"}}
	var ts []string
	for i, text := range []string{"one", "two", "three", "four"} {
		opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
		if i == 2 {
			opts = append(opts, slack.MsgOptionMetadata(meta))
		}
		_, at, err := api.PostMessageContext(ctx, "C1", opts...)
		if err != nil {
			t.Fatalf("post %s: %v", text, err)
		}
		ts = append(ts, at)
		clock.Advance(time.Second)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts[0])); err != nil {
		t.Fatalf("thread reply: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("elsewhere", false)); err != nil {
		t.Fatalf("post C2: %v", err)
	}
	if m, _ := f.Message("C1", ts[2]); string(m.Metadata) != `{"event_type":"casebot_post","event_payload":{"post_id":"P7"}}` {
		t.Errorf("stored metadata %s", m.Metadata)
	}

	tests := []struct {
		name     string
		params   slack.GetConversationHistoryParameters
		want     []string
		hasMore  bool
		metadata bool
	}{
		{name: "all, newest first, no replies", params: slack.GetConversationHistoryParameters{},
			want: []string{"four", "three", "two", "one"}},
		{name: "limit", params: slack.GetConversationHistoryParameters{Limit: 2},
			want: []string{"four", "three"}, hasMore: true},
		{name: "with metadata", params: slack.GetConversationHistoryParameters{Limit: 2, IncludeAllMetadata: true},
			want: []string{"four", "three"}, hasMore: true, metadata: true},
		{name: "oldest exclusive", params: slack.GetConversationHistoryParameters{Oldest: ts[1]},
			want: []string{"four", "three"}},
		{name: "latest and oldest inclusive", params: slack.GetConversationHistoryParameters{Oldest: ts[1], Latest: ts[2], Inclusive: true},
			want: []string{"three", "two"}},
		{name: "latest exclusive", params: slack.GetConversationHistoryParameters{Latest: ts[1]},
			want: []string{"one"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.params
			p.ChannelID = "C1"
			res, err := api.GetConversationHistoryContext(ctx, &p)
			if err != nil {
				t.Fatalf("history: %v", err)
			}
			if got := historyTexts(res.Messages); !slices.Equal(got, tc.want) {
				t.Errorf("messages %q, want %q", got, tc.want)
			}
			if res.HasMore != tc.hasMore {
				t.Errorf("has_more %v, want %v", res.HasMore, tc.hasMore)
			}
			for _, m := range res.Messages {
				if m.BotID != slackfake.DefaultBotID || m.User != slackfake.DefaultBotUserID {
					t.Errorf("message %q by user %q bot %q, want the bot", m.Text, m.User, m.BotID)
				}
				hasMeta := m.Metadata.EventType != ""
				switch {
				case m.Text == "three" && tc.metadata && (m.Metadata.EventType != "casebot_post" || m.Metadata.EventPayload["post_id"] != "P7"):
					t.Errorf("metadata %+v, want casebot_post with post_id P7", m.Metadata)
				case m.Text == "three" && !tc.metadata && hasMeta:
					t.Errorf("metadata %+v without include_all_metadata", m.Metadata)
				case m.Text != "three" && hasMeta:
					t.Errorf("message %q has metadata %+v", m.Text, m.Metadata)
				}
			}
		})
	}

	t.Run("cursor pages through", func(t *testing.T) {
		var got []string
		p := slack.GetConversationHistoryParameters{ChannelID: "C1", Limit: 3}
		for range 5 {
			res, err := api.GetConversationHistoryContext(ctx, &p)
			if err != nil {
				t.Fatalf("history: %v", err)
			}
			got = append(got, historyTexts(res.Messages)...)
			if !res.HasMore {
				break
			}
			p.Cursor = res.ResponseMetaData.NextCursor
		}
		if want := []string{"four", "three", "two", "one"}; !slices.Equal(got, want) {
			t.Errorf("paged messages %q, want %q", got, want)
		}
	})

	errs := []struct {
		name   string
		params slack.GetConversationHistoryParameters
		want   string
	}{
		{"unknown channel", slack.GetConversationHistoryParameters{ChannelID: "C9"}, "channel_not_found"},
		{"bad cursor", slack.GetConversationHistoryParameters{ChannelID: "C1", Cursor: "!!"}, "invalid_cursor"},
		{"bad latest", slack.GetConversationHistoryParameters{ChannelID: "C1", Latest: "yesterday"}, "invalid_ts_latest"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := api.GetConversationHistoryContext(ctx, &tc.params)
			if got := slackErr(err); got != tc.want {
				t.Errorf("error %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMetadataValidation(t *testing.T) {
	f := newFake(t, slackfake.Options{PostRate: -1})
	api := botClient(f)
	ctx := testCtx(t)
	tests := []struct {
		name     string
		metadata string
		want     string
	}{
		{"valid", `{"event_type":"e","event_payload":{"k":"v"}}`, ""},
		{"not json", `{`, "invalid_metadata_format"},
		{"no event type", `{"event_payload":{}}`, "invalid_metadata_schema"},
		{"payload not an object", `{"event_type":"e","event_payload":[1]}`, "invalid_metadata_schema"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := postForm(t, f, "chat.postMessage", url.Values{"channel": {"C1"}, "text": {"x"}, "metadata": {tc.metadata}})
			if a.Error != tc.want || a.OK != (tc.want == "") {
				t.Errorf("answer ok %v error %q, want error %q", a.OK, a.Error, tc.want)
			}
		})
	}
	_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("y", false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "e", EventPayload: map[string]any{"n": 1}}))
	if err != nil {
		t.Fatalf("update with metadata: %v", err)
	}
	if m, _ := f.Message("C1", ts); string(m.Metadata) != `{"event_type":"e","event_payload":{"n":1}}` {
		t.Errorf("metadata after update %s", m.Metadata)
	}
}

func TestConversationsReplies(t *testing.T) {
	clock := slackfake.NewManualClock(t0)
	f := newFake(t, slackfake.Options{Clock: clock, PostRate: -1, Channels: []string{"C1"}})
	api := botClient(f)
	ctx := testCtx(t)

	post := func(text, thread string, opts ...slack.MsgOption) string {
		t.Helper()
		opts = append(opts, slack.MsgOptionText(text, false))
		if thread != "" {
			opts = append(opts, slack.MsgOptionTS(thread))
		}
		_, ts, err := api.PostMessageContext(ctx, "C1", opts...)
		if err != nil {
			t.Fatalf("post %s: %v", text, err)
		}
		clock.Advance(time.Second)
		return ts
	}
	parent := post("parent", "")
	other := post("other thread", "")
	var replies []string
	for i, text := range []string{"r1", "r2", "r3"} {
		var opts []slack.MsgOption
		if i == 1 {
			opts = append(opts, slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "casebot_post",
				EventPayload: map[string]any{"post_id": "P9"}}))
		}
		replies = append(replies, post(text, parent, opts...))
	}
	post("elsewhere", other)
	post("top level", "")

	tests := []struct {
		name     string
		params   slack.GetConversationRepliesParameters
		want     []string
		hasMore  bool
		metadata bool
	}{
		{name: "the thread, oldest first", want: []string{"parent", "r1", "r2", "r3"}},
		{name: "with metadata", params: slack.GetConversationRepliesParameters{IncludeAllMetadata: true},
			want: []string{"parent", "r1", "r2", "r3"}, metadata: true},
		{name: "limit", params: slack.GetConversationRepliesParameters{Limit: 2},
			want: []string{"parent", "r1"}, hasMore: true},
		{name: "oldest exclusive", params: slack.GetConversationRepliesParameters{Oldest: replies[0]},
			want: []string{"r2", "r3"}},
		{name: "latest inclusive", params: slack.GetConversationRepliesParameters{Latest: replies[1], Inclusive: true},
			want: []string{"parent", "r1", "r2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.params
			p.ChannelID, p.Timestamp = "C1", parent
			msgs, hasMore, _, err := api.GetConversationRepliesContext(ctx, &p)
			if err != nil {
				t.Fatalf("replies: %v", err)
			}
			if got := historyTexts(msgs); !slices.Equal(got, tc.want) {
				t.Errorf("messages %q, want %q", got, tc.want)
			}
			if hasMore != tc.hasMore {
				t.Errorf("has_more %v, want %v", hasMore, tc.hasMore)
			}
			for _, m := range msgs {
				hasMeta := m.Metadata.EventType != ""
				switch {
				case m.Text == "r2" && tc.metadata && m.Metadata.EventPayload["post_id"] != "P9":
					t.Errorf("metadata %+v, want post_id P9", m.Metadata)
				case m.Text == "r2" && !tc.metadata && hasMeta, m.Text != "r2" && hasMeta:
					t.Errorf("message %q has metadata %+v", m.Text, m.Metadata)
				}
				if m.Text != "parent" && m.ThreadTimestamp != parent {
					t.Errorf("reply %q in thread %q, want %q", m.Text, m.ThreadTimestamp, parent)
				}
			}
		})
	}

	t.Run("cursor pages through", func(t *testing.T) {
		var got []string
		p := slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: parent, Limit: 3}
		for range 5 {
			msgs, hasMore, cursor, err := api.GetConversationRepliesContext(ctx, &p)
			if err != nil {
				t.Fatalf("replies: %v", err)
			}
			got = append(got, historyTexts(msgs)...)
			if !hasMore {
				break
			}
			p.Cursor = cursor
		}
		if want := []string{"parent", "r1", "r2", "r3"}; !slices.Equal(got, want) {
			t.Errorf("paged messages %q, want %q", got, want)
		}
	})

	errs := []struct {
		name   string
		params slack.GetConversationRepliesParameters
		want   string
	}{
		{"unknown channel", slack.GetConversationRepliesParameters{ChannelID: "C9", Timestamp: parent}, "channel_not_found"},
		{"unknown thread", slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: "1.000001"}, "thread_not_found"},
		{"no ts", slack.GetConversationRepliesParameters{ChannelID: "C1"}, "invalid_arguments"},
		{"bad cursor", slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: parent, Cursor: "!!"}, "invalid_cursor"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := api.GetConversationRepliesContext(ctx, &tc.params)
			if got := slackErr(err); got != tc.want {
				t.Errorf("error %q, want %q", got, tc.want)
			}
		})
	}
}

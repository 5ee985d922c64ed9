package slackfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot/slackfake"
)

var t0 = time.Unix(1700000000, 0)

func newFake(t *testing.T, opts slackfake.Options) *slackfake.Fake {
	t.Helper()
	f := slackfake.New(opts)
	t.Cleanup(f.Close)
	return f
}

func botClient(f *slackfake.Fake) *slack.Client {
	return slack.New(f.BotToken(), slack.OptionAPIURL(f.APIURL()))
}

// testCtx bounds a test's waits generously; the fake answers in
// microseconds, so the bound only matters when something is broken.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// slackErr returns the Slack error code of err, or "" for none.
func slackErr(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func TestPostUpdateEcho(t *testing.T) {
	clock := slackfake.NewManualClock(t0)
	f := newFake(t, slackfake.Options{Clock: clock})
	api := botClient(f)
	ctx := testCtx(t)

	ch, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("fallback", false), slack.MsgOptionBlocks(section("*card*")))
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	if ch != "C1" || ts != "1700000000.000000" {
		t.Errorf("post answered channel %q ts %q, want C1 1700000000.000000", ch, ts)
	}
	_, ts2, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("second", false))
	if err != nil {
		t.Fatalf("second post: %v", err)
	}
	if ts2 != "1700000000.000100" {
		t.Errorf("second ts %q, want 1700000000.000100 (strictly increasing on a stopped clock)", ts2)
	}
	clock.Advance(2 * time.Second)
	_, ts3, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("third", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatalf("thread reply: %v", err)
	}
	if !regexp.MustCompile(`^1700000002\.\d{6}$`).MatchString(ts3) {
		t.Errorf("ts after 2s = %q, want 1700000002.xxxxxx", ts3)
	}

	msgs := f.Messages("C1")
	if len(msgs) != 3 {
		t.Fatalf("Messages(C1) has %d, want 3", len(msgs))
	}
	if m := msgs[0]; m.Text != "fallback" || !strings.Contains(string(m.Blocks), "*card*") || m.User != f.BotUserID() || m.BotID == "" {
		t.Errorf("stored message = %+v", m)
	}
	if msgs[2].ThreadTS != ts {
		t.Errorf("reply thread_ts = %q, want %q", msgs[2].ThreadTS, ts)
	}

	_, _, _, err = api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("approved by <@U1>", false))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	m, _ := f.Message("C1", ts)
	if m.Text != "approved by <@U1>" || m.Updates != 1 || !strings.Contains(string(m.Blocks), "*card*") {
		t.Errorf("after text-only update: %+v (blocks must be kept)", m)
	}
	_, _, _, err = api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionBlocks(section("*done*")))
	if err != nil {
		t.Fatalf("update blocks: %v", err)
	}
	if m, _ := f.Message("C1", ts); !strings.Contains(string(m.Blocks), "*done*") || m.Updates != 2 {
		t.Errorf("after blocks update: %+v", m)
	}

	calls := f.Calls("chat.postMessage")
	if len(calls) != 3 || calls[0].Param("channel") != "C1" || calls[0].Param("text") != "fallback" || !calls[0].OK {
		t.Errorf("recorded postMessage calls = %+v", calls)
	}
	if calls[0].Token != f.BotToken() || calls[0].Params.Get("token") != "" {
		t.Errorf("token should be recorded apart from params: %+v", calls[0])
	}
}

func TestChatErrors(t *testing.T) {
	f := newFake(t, slackfake.Options{Channels: []string{"C1"}})
	api := botClient(f)
	ctx := testCtx(t)
	_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
	if err != nil {
		t.Fatal(err)
	}
	userMsg, err := f.SendMessage(slackfake.UserMessage{Channel: "C1", User: "U1", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Event struct {
			TS string `json:"ts"`
		} `json:"event"`
	}
	if err := json.Unmarshal(userMsg.Payload, &ev); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"unknown channel", func() error {
			_, _, err := api.PostMessageContext(ctx, "C404", slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
		{"no text", func() error {
			_, _, err := api.PostMessageContext(ctx, "C1")
			return err
		}, "no_text"},
		{"unknown thread", func() error {
			_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false), slack.MsgOptionTS("1.000001"))
			return err
		}, "thread_not_found"},
		{"update unknown message", func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, "C1", "1.000001", slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"update a person's message", func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, "C1", ev.Event.TS, slack.MsgOptionText("x", false))
			return err
		}, "cant_update_message"},
		{"update own message", func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("y", false))
			return err
		}, ""},
		{"ephemeral", func() error {
			_, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("only you", false))
			return err
		}, ""},
		{"ephemeral without user", func() error {
			_, err := api.PostEphemeralContext(ctx, "C1", "", slack.MsgOptionText("x", false))
			return err
		}, "user_not_in_channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slackErr(tt.call()); got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
		})
	}
	if e := f.Ephemerals(); len(e) != 1 || e[0].User != "U1" || e[0].Text != "only you" {
		t.Errorf("Ephemerals() = %+v", e)
	}
}

func TestAuth(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	ctx := testCtx(t)
	tests := []struct {
		name     string
		botToken string
		appToken string
		socket   bool
		want     string
	}{
		{"bot token", f.BotToken(), "", false, ""},
		{"no token", "", "", false, "not_authed"},
		{"wrong bot token", "xoxb-0-wrong", "", false, "invalid_auth"},
		{"app token on web api", f.AppToken(), "", false, "invalid_auth"},
		{"app token opens socket", "", f.AppToken(), true, ""},
		{"bot token on apps.connections.open", "", f.BotToken(), true, "invalid_auth"},
		{"wrong app token", "", "xapp-0-wrong", true, "invalid_auth"},
		{"no app token", "", "", true, "not_authed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := slack.New(tt.botToken, slack.OptionAppLevelToken(tt.appToken), slack.OptionAPIURL(f.APIURL()))
			var err error
			if tt.socket {
				var wsURL string
				_, wsURL, err = api.StartSocketModeContext(ctx)
				if err == nil && !strings.HasPrefix(wsURL, "ws://") {
					t.Errorf("socket URL %q, want ws://", wsURL)
				}
			} else {
				var resp *slack.AuthTestResponse
				resp, err = api.AuthTestContext(ctx)
				if err == nil && (resp.UserID != f.BotUserID() || resp.BotID == "") {
					t.Errorf("auth.test = %+v", resp)
				}
			}
			if got := slackErr(err); got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name           string
		rate           float64
		burst          int
		wantRetryAfter time.Duration
	}{
		{"one per second, burst 1", 1, 1, time.Second},
		{"one per second, burst 3", 1, 3, time.Second},
		{"one per five seconds", 0.2, 2, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := slackfake.NewManualClock(t0)
			f := newFake(t, slackfake.Options{Clock: clock, PostRate: tt.rate, Burst: tt.burst})
			api := botClient(f)
			ctx := testCtx(t)
			post := func(ch string) error {
				_, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("x", false))
				return err
			}
			for i := range tt.burst {
				if err := post("C1"); err != nil {
					t.Fatalf("post %d within burst: %v", i, err)
				}
			}
			err := post("C1")
			var rl *slack.RateLimitedError
			if !errors.As(err, &rl) {
				t.Fatalf("post past burst: %v, want *slack.RateLimitedError", err)
			}
			if rl.RetryAfter != tt.wantRetryAfter {
				t.Errorf("RetryAfter = %v, want %v", rl.RetryAfter, tt.wantRetryAfter)
			}
			if err := post("C2"); err != nil {
				t.Errorf("another channel is limited separately: %v", err)
			}
			clock.Advance(tt.wantRetryAfter - time.Millisecond)
			if err := post("C1"); !errors.As(err, &rl) {
				t.Errorf("post just before Retry-After elapsed: %v, want rate limited", err)
			}
			clock.Advance(time.Millisecond)
			if err := post("C1"); err != nil {
				t.Errorf("post after Retry-After: %v", err)
			}
			if got := f.RateLimited(); got != 2 {
				t.Errorf("RateLimited() = %d, want 2", got)
			}
			if got := len(f.Messages("C1")); got != tt.burst+1 {
				t.Errorf("C1 has %d messages, want %d (no 429 posts)", got, tt.burst+1)
			}
			calls := f.Calls("chat.postMessage")
			if c := calls[tt.burst]; c.Status != http.StatusTooManyRequests || c.Error != "ratelimited" {
				t.Errorf("recorded 429 call = %+v", c)
			}
		})
	}
}

func TestRateLimitHeader(t *testing.T) {
	f := newFake(t, slackfake.Options{Clock: slackfake.NewManualClock(t0), Burst: 1})
	post := func() *http.Response {
		resp, err := http.PostForm(f.APIURL()+"chat.postMessage", url.Values{
			"token": {f.BotToken()}, "channel": {"C1"}, "text": {"x"},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := post(); resp.StatusCode != http.StatusOK {
		t.Fatalf("first post: %s", resp.Status)
	}
	resp := post()
	var body struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || body.OK || body.Error != "ratelimited" {
		t.Errorf("got %s Retry-After %q body %+v", resp.Status, resp.Header.Get("Retry-After"), body)
	}
}

func TestNoRateLimit(t *testing.T) {
	f := newFake(t, slackfake.Options{Clock: slackfake.NewManualClock(t0), PostRate: -1})
	api := botClient(f)
	for i := range 20 {
		if _, _, err := api.PostMessageContext(testCtx(t), "C1", slack.MsgOptionText("x", false)); err != nil {
			t.Fatalf("post %d with the limit off: %v", i, err)
		}
	}
}

func TestUsersInfo(t *testing.T) {
	f := newFake(t, slackfake.Options{Users: []slackfake.User{{ID: "U1", Name: "ana", RealName: "Ana Paz", Email: "ana@example.com", TZ: "Europe/Madrid"}}})
	api := botClient(f)
	ctx := testCtx(t)
	u, err := api.GetUserInfoContext(ctx, "U1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "ana" || u.RealName != "Ana Paz" || u.Profile.Email != "ana@example.com" || u.TZ != "Europe/Madrid" {
		t.Errorf("user = %+v", u)
	}
	if _, err := api.GetUserInfoContext(ctx, "U404"); slackErr(err) != "user_not_found" {
		t.Errorf("unknown user: %v", err)
	}
	f.AddUser(slackfake.User{ID: "U2", Name: "bo"})
	if u, err := api.GetUserInfoContext(ctx, "U2"); err != nil || u.Name != "bo" {
		t.Errorf("added user: %v %+v", err, u)
	}
}

func TestFilesUpload(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	api := botClient(f)
	ctx := testCtx(t)
	png := []byte("\x89PNG\r\n\x1a\nchart")
	sum, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
		Filename: "chart.png", FileSize: len(png), Reader: bytes.NewReader(png),
		Channel: "C-OPS", Title: "Weekly", InitialComment: "Monday patterns",
	})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	files := f.Files()
	if len(files) != 1 || files[0].ID != sum.ID || !bytes.Equal(files[0].Content, png) || !files[0].Completed || files[0].Channel != "C-OPS" || files[0].Title != "Weekly" {
		t.Errorf("Files() = %+v", files)
	}
	msgs := f.Messages("C-OPS")
	if len(msgs) != 1 || msgs[0].Text != "Monday patterns" || len(msgs[0].Files) != 1 || msgs[0].Files[0] != sum.ID {
		t.Errorf("file share message = %+v", msgs)
	}
	_, err = api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{Files: []slack.FileSummary{{ID: "F404"}}, Channel: "C-OPS"})
	if slackErr(err) != "file_not_found" {
		t.Errorf("completing an unknown file: %v", err)
	}
	if got := len(f.Calls("upload")); got != 1 {
		t.Errorf("upload calls = %d, want 1", got)
	}
}

func TestFaults(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	api := botClient(f)
	ctx := testCtx(t)

	f.FailNext("chat.postMessage", http.StatusServiceUnavailable)
	f.FailNext("chat.postMessage", http.StatusInternalServerError)
	for _, want := range []int{503, 500} {
		_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
		var sc slack.StatusCodeError
		if !errors.As(err, &sc) || sc.Code != want {
			t.Errorf("failed post: %v, want StatusCodeError %d", err, want)
		}
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("post after the failures: %v", err)
	}
	if len(f.Messages("C1")) != 1 {
		t.Errorf("failed posts must not be stored: %+v", f.Messages("C1"))
	}

	// A failure after the fact: the post is stored all the same.
	f.FailAfterNext("chat.postMessage", http.StatusGatewayTimeout)
	_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("stored", false))
	var sc slack.StatusCodeError
	if !errors.As(err, &sc) || sc.Code != http.StatusGatewayTimeout {
		t.Errorf("post failing after the fact: %v, want StatusCodeError 504", err)
	}
	if msgs := f.Messages("C1"); len(msgs) != 2 || msgs[1].Text != "stored" {
		t.Errorf("a post failing after the fact must be stored: %+v", msgs)
	}
	if calls := f.Calls("chat.postMessage"); calls[len(calls)-1].Status != http.StatusGatewayTimeout {
		t.Errorf("recorded call %+v, want status 504", calls[len(calls)-1])
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("post after the failure: %v", err)
	}

	f.Slow("auth.test", time.Hour)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := api.AuthTestContext(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slowed auth.test: %v, want deadline exceeded", err)
	}
	if err := f.Wait(ctx, func() bool { return len(f.Calls("auth.test")) == 1 }); err != nil {
		t.Fatalf("the abandoned call is recorded: %v", err)
	}
	f.Slow("auth.test", 0)
	if _, err := api.AuthTestContext(ctx); err != nil {
		t.Errorf("auth.test after Slow(0): %v", err)
	}
}

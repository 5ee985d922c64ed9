package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxMessageText is the longest chat text Slack accepts (msg_too_long).
const maxMessageText = 40000

// request is one parsed Web API call.
type request struct {
	method string
	token  string
	form   url.Values
	body   json.RawMessage
	fields map[string]json.RawMessage
	now    time.Time
}

// str returns a parameter as a string: a form value, a JSON string's
// content, or the JSON text of any other JSON value.
func (q *request) str(name string) string {
	if v, ok := q.form[name]; ok && len(v) > 0 {
		return v[0]
	}
	return rawString(q.fields[name])
}

// has reports whether a parameter was given at all.
func (q *request) has(name string) bool {
	if _, ok := q.form[name]; ok {
		return true
	}
	_, ok := q.fields[name]
	return ok
}

// rawString returns a JSON string's content, or the JSON text of any other
// value, or "" for no value or null.
func rawString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// reply is a Web API answer.
type reply struct {
	status     int
	retryAfter int
	body       map[string]any
}

func ok(fields map[string]any) reply {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["ok"] = true
	return reply{status: http.StatusOK, body: fields}
}

func fail(code string, messages ...string) reply {
	body := map[string]any{"ok": false, "error": code}
	if len(messages) > 0 {
		body["response_metadata"] = map[string]any{"messages": messages}
	}
	return reply{status: http.StatusOK, body: body}
}

// webMethods are the Web API methods the fake serves, by name.
var webMethods = map[string]func(*Fake, *request) reply{
	"auth.test":                    (*Fake).authTest,
	"apps.connections.open":        (*Fake).appsConnectionsOpen,
	"chat.postMessage":             (*Fake).chatPostMessage,
	"chat.update":                  (*Fake).chatUpdate,
	"chat.postEphemeral":           (*Fake).chatPostEphemeral,
	"conversations.history":        (*Fake).conversationsHistory,
	"conversations.replies":        (*Fake).conversationsReplies,
	"views.open":                   (*Fake).viewsOpen,
	"views.update":                 (*Fake).viewsUpdate,
	"views.publish":                (*Fake).viewsPublish,
	"users.info":                   (*Fake).usersInfo,
	"files.getUploadURLExternal":   (*Fake).filesGetUploadURL,
	"files.completeUploadExternal": (*Fake).filesCompleteUpload,
}

// preflight applies Slow and FailNext to a call; it reports false when it
// already answered (a failure, the client gave up while slowed, or the fake
// closed).
func (f *Fake) preflight(w http.ResponseWriter, r *http.Request, call *Call) bool {
	f.mu.Lock()
	delay := f.slow[call.Method]
	f.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-f.stop:
			t.Stop()
			http.Error(w, "slackfake closed", http.StatusServiceUnavailable)
			return false
		case <-r.Context().Done():
			t.Stop()
			call.Status = 499
			call.Error = "client_gone"
			f.record(*call)
			return false
		}
	}
	f.mu.Lock()
	queue := f.failNext[call.Method]
	if len(queue) == 0 {
		f.mu.Unlock()
		return true
	}
	status := queue[0]
	f.failNext[call.Method] = queue[1:]
	f.mu.Unlock()
	failHTML(w, call, status)
	f.record(*call)
	return false
}

func (f *Fake) record(c Call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	f.notify()
}

func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request) {
	q, err := parseRequest(r)
	method := r.PathValue("method")
	call := Call{Method: method, At: f.opts.Clock.Now()}
	if q != nil {
		q.method = method
		q.now = call.At
		call.Token, call.Params, call.Body = q.token, q.form, q.body
	}
	if !f.preflight(w, r, &call) {
		return
	}
	var rep reply
	handler, known := webMethods[method]
	switch {
	case err != nil:
		rep = fail("invalid_form_data", err.Error())
	case !known:
		rep = fail("unknown_method")
	default:
		rep = f.authorize(q)
		if rep.body == nil {
			rep = handler(f, q)
		}
	}
	if f.failAfter(w, &call) {
		return
	}
	f.answer(w, call, rep)
}

// failAfter applies FailAfterNext to a call that was handled: it answers
// the HTTP failure instead of the handler's reply and reports true.
func (f *Fake) failAfter(w http.ResponseWriter, call *Call) bool {
	f.mu.Lock()
	queue := f.failAfterNext[call.Method]
	if len(queue) == 0 {
		f.mu.Unlock()
		return false
	}
	status := queue[0]
	f.failAfterNext[call.Method] = queue[1:]
	f.mu.Unlock()
	failHTML(w, call, status)
	f.record(*call)
	return true
}

// failHTML answers an HTTP failure with an HTML body, as Slack's edge does
// on outages, and notes it on call.
func failHTML(w http.ResponseWriter, call *Call, status int) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html><body>%d %s</body></html>", status, http.StatusText(status))
	call.Status = status
	call.Error = http.StatusText(status)
}

// authorize checks the token; a zero reply means the call may proceed.
func (f *Fake) authorize(q *request) reply {
	want := f.opts.BotToken
	if q.method == "apps.connections.open" {
		want = f.opts.AppToken
	}
	switch q.token {
	case "":
		return fail("not_authed")
	case want:
		return reply{}
	default:
		return fail("invalid_auth")
	}
}

func (f *Fake) answer(w http.ResponseWriter, call Call, rep reply) {
	body, err := json.Marshal(rep.body)
	if err != nil {
		body = []byte(`{"ok":false,"error":"fatal_error"}`)
		rep.status = http.StatusInternalServerError
	}
	if rep.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(rep.retryAfter))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(rep.status)
	_, _ = w.Write(body)
	call.Status = rep.status
	call.OK, _ = rep.body["ok"].(bool)
	call.Error, _ = rep.body["error"].(string)
	call.Response = body
	f.record(call)
}

// parseRequest reads a call the way Slack does: form-encoded, multipart or
// JSON body, or query string; the token from the Authorization header or a
// "token" parameter.
func parseRequest(r *http.Request) (*request, error) {
	q := &request{form: url.Values{}, fields: map[string]json.RawMessage{}}
	for k, v := range r.URL.Query() {
		q.form[k] = v
	}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ctype {
	case "application/json":
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		if len(bytes.TrimSpace(body)) > 0 && string(bytes.TrimSpace(body)) != "null" {
			if err := json.Unmarshal(body, &q.fields); err != nil {
				return nil, fmt.Errorf("json body: %w", err)
			}
			q.body = body
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(4 << 20); err != nil {
			return nil, fmt.Errorf("multipart body: %w", err)
		}
		for k, v := range r.MultipartForm.Value {
			q.form[k] = v
		}
	default:
		if err := r.ParseForm(); err != nil {
			return nil, fmt.Errorf("form body: %w", err)
		}
		for k, v := range r.PostForm {
			q.form[k] = v
		}
	}
	if auth, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		q.token = strings.TrimSpace(auth)
	} else if t := q.form.Get("token"); t != "" {
		q.token = t
	} else {
		q.token = rawString(q.fields["token"])
	}
	q.form.Del("token")
	return q, nil
}

func (f *Fake) authTest(*request) reply {
	return ok(map[string]any{
		"url":     "https://slackfake.slack.com/",
		"team":    "Slackfake",
		"user":    "casebot",
		"team_id": f.opts.TeamID,
		"user_id": f.opts.BotUserID,
		"bot_id":  f.opts.BotID,
	})
}

// channelExists reports whether a channel ID is valid; f.mu must be held.
func (f *Fake) channelExists(id string) bool {
	if id == "" {
		return false
	}
	return len(f.channels) == 0 || f.channels[id]
}

// checkMessage validates text and blocks shared by the chat methods. It
// returns the blocks' JSON (nil when none were given) or a failure.
func checkMessage(q *request, needContent bool) (json.RawMessage, *reply) {
	text := q.str("text")
	if utf8.RuneCountInString(text) > maxMessageText {
		r := fail("msg_too_long", fmt.Sprintf("[ERROR] text must be at most %d characters", maxMessageText))
		return nil, &r
	}
	if q.str("blocks") == "" {
		if needContent && text == "" && q.str("attachments") == "" {
			r := fail("no_text")
			return nil, &r
		}
		return nil, nil
	}
	raw := json.RawMessage(q.str("blocks"))
	problems, err := checkBlocks(raw, maxMessageBlocks, "/blocks")
	if err != nil {
		r := fail("invalid_blocks_format", err.Error())
		return nil, &r
	}
	if len(problems) > 0 {
		r := fail("invalid_blocks", problems...)
		return nil, &r
	}
	if needContent && text == "" && isEmptyArray(raw) {
		r := fail("no_text")
		return nil, &r
	}
	return compact(raw), nil
}

func isEmptyArray(raw json.RawMessage) bool {
	var a []json.RawMessage
	return json.Unmarshal(raw, &a) == nil && len(a) == 0
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// messageJSON is a message as Slack echoes it, metadata included: Slack
// echoes the posting app's own metadata.
func messageJSON(m *Message) map[string]any {
	out := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "user": m.User}
	if m.BotID != "" {
		out["bot_id"] = m.BotID
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	if m.Metadata != nil {
		out["metadata"] = m.Metadata
	}
	if len(m.Files) > 0 {
		files := make([]map[string]string, 0, len(m.Files))
		for _, id := range m.Files {
			files = append(files, map[string]string{"id": id})
		}
		out["files"] = files
	}
	return out
}

func (f *Fake) chatPostMessage(q *request) reply {
	channel := q.str("channel")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.channelExists(channel) {
		return fail("channel_not_found")
	}
	if wait, allowed := f.allowPost(channel, q.now); !allowed {
		f.rateLimited++
		rep := fail("ratelimited")
		rep.status = http.StatusTooManyRequests
		rep.retryAfter = int(math.Max(1, math.Ceil(wait.Seconds())))
		return rep
	}
	blocks, bad := checkMessage(q, true)
	if bad != nil {
		return *bad
	}
	metadata, bad := checkMetadata(q)
	if bad != nil {
		return *bad
	}
	threadTS := q.str("thread_ts")
	if threadTS != "" && f.findMessage(channel, threadTS) == nil {
		return fail("thread_not_found")
	}
	m := &Message{
		Channel:  channel,
		TS:       f.newTS(),
		ThreadTS: threadTS,
		User:     f.opts.BotUserID,
		BotID:    f.opts.BotID,
		Text:     q.str("text"),
		Blocks:   blocks,
		Metadata: metadata,
		PostedAt: q.now,
	}
	f.addMessage(m)
	return ok(map[string]any{"channel": channel, "ts": m.TS, "message": messageJSON(m)})
}

func (f *Fake) chatUpdate(q *request) reply {
	channel, ts := q.str("channel"), q.str("ts")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.channelExists(channel) {
		return fail("channel_not_found")
	}
	m := f.findMessage(channel, ts)
	if m == nil || m.Deleted {
		return fail("message_not_found")
	}
	if m.User != f.opts.BotUserID {
		return fail("cant_update_message")
	}
	blocks, bad := checkMessage(q, false)
	if bad != nil {
		return *bad
	}
	metadata, bad := checkMetadata(q)
	if bad != nil {
		return *bad
	}
	if metadata != nil {
		m.Metadata = metadata
	}
	if q.has("text") {
		m.Text = q.str("text")
	}
	if blocks != nil {
		m.Blocks = blocks
	}
	m.Updates++
	return ok(map[string]any{"channel": channel, "ts": ts, "text": m.Text, "message": messageJSON(m)})
}

func (f *Fake) chatPostEphemeral(q *request) reply {
	channel, user := q.str("channel"), q.str("user")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.channelExists(channel) {
		return fail("channel_not_found")
	}
	if user == "" {
		return fail("user_not_in_channel")
	}
	blocks, bad := checkMessage(q, true)
	if bad != nil {
		return *bad
	}
	e := Ephemeral{
		Channel:  channel,
		User:     user,
		TS:       f.newTS(),
		ThreadTS: q.str("thread_ts"),
		Text:     q.str("text"),
		Blocks:   blocks,
		At:       q.now,
	}
	f.ephemerals = append(f.ephemerals, e)
	return ok(map[string]any{"message_ts": e.TS})
}

func (f *Fake) usersInfo(q *request) reply {
	f.mu.Lock()
	u, found := f.users[q.str("user")]
	f.mu.Unlock()
	if !found {
		return fail("user_not_found")
	}
	return ok(map[string]any{"user": map[string]any{
		"id":        u.ID,
		"team_id":   f.opts.TeamID,
		"name":      u.Name,
		"real_name": u.RealName,
		"tz":        u.TZ,
		"is_bot":    u.IsBot,
		"deleted":   false,
		"profile": map[string]any{
			"real_name":    u.RealName,
			"display_name": u.Name,
			"email":        u.Email,
		},
	}})
}

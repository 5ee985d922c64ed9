package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// maxUpload bounds what the upload URL reads, so a runaway client cannot
// exhaust memory.
const maxUpload = 32 << 20

func (f *Fake) findFile(id string) *File {
	for _, fl := range f.files {
		if fl.ID == id {
			return fl
		}
	}
	return nil
}

func (f *Fake) filesGetUploadURL(q *request) reply {
	name := q.str("filename")
	length, err := strconv.Atoi(q.str("length"))
	if name == "" || err != nil || length <= 0 {
		return fail("invalid_arguments", "[ERROR] filename and a positive length are required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := &File{ID: fmt.Sprintf("F%08d", f.nextID()), Name: name, Length: length}
	f.files = append(f.files, fl)
	return ok(map[string]any{
		"upload_url": f.server.URL + "/upload/" + fl.ID,
		"file_id":    fl.ID,
	})
}

// serveUpload is the URL files.getUploadURLExternal hands out. It takes the
// file as multipart field "file" (slack-go's way) or as the raw body, and
// answers in text as Slack's upload host does.
func (f *Fake) serveUpload(w http.ResponseWriter, r *http.Request) {
	call := Call{Method: "upload", At: f.opts.Clock.Now()}
	call.Token, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !f.preflight(w, r, &call) {
		return
	}
	content, err := readUpload(r)
	status, answer := http.StatusOK, ""
	f.mu.Lock()
	fl := f.findFile(r.PathValue("file"))
	switch {
	case r.Method != http.MethodPost:
		status, answer = http.StatusMethodNotAllowed, "method_not_allowed"
	case fl == nil:
		status, answer = http.StatusNotFound, "file_not_found"
	case err != nil:
		status, answer = http.StatusBadRequest, err.Error()
	default:
		fl.Content, fl.Uploaded = content, true
		answer = fmt.Sprintf("OK - %d", len(content))
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
	call.Status, call.OK = status, status == http.StatusOK
	if !call.OK {
		call.Error = answer
	}
	f.record(call)
}

func readUpload(r *http.Request) ([]byte, error) {
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ctype != "multipart/form-data" {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxUpload))
		if err != nil {
			return nil, fmt.Errorf("read upload: %w", err)
		}
		return b, nil
	}
	file, _, err := r.FormFile("file")
	if err != nil {
		return nil, fmt.Errorf("multipart upload: %w", err)
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxUpload))
	if err != nil {
		return nil, fmt.Errorf("read upload: %w", err)
	}
	return b, nil
}

func (f *Fake) filesCompleteUpload(q *request) reply {
	var summaries []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(q.str("files")), &summaries); err != nil || len(summaries) == 0 {
		return fail("invalid_arguments", "[ERROR] files must be a non-empty JSON array [json-pointer:/files]")
	}
	channel := q.str("channel_id")
	if channel == "" {
		channel, _, _ = strings.Cut(q.str("channels"), ",")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if channel != "" && !f.channelExists(channel) {
		return fail("channel_not_found")
	}
	var ids []string
	for _, s := range summaries {
		fl := f.findFile(s.ID)
		if fl == nil || !fl.Uploaded {
			return fail("file_not_found")
		}
		ids = append(ids, fl.ID)
	}
	out := make([]map[string]string, 0, len(summaries))
	for _, s := range summaries {
		fl := f.findFile(s.ID)
		fl.Title, fl.Completed = s.Title, true
		fl.Channel, fl.ThreadTS, fl.InitialComment = channel, q.str("thread_ts"), q.str("initial_comment")
		out = append(out, map[string]string{"id": fl.ID, "title": fl.Title})
	}
	if channel != "" {
		f.addMessage(&Message{
			Channel:  channel,
			TS:       f.newTS(),
			ThreadTS: q.str("thread_ts"),
			User:     f.opts.BotUserID,
			BotID:    f.opts.BotID,
			Text:     q.str("initial_comment"),
			Files:    ids,
			PostedAt: q.now,
		})
	}
	return ok(map[string]any{"files": out})
}

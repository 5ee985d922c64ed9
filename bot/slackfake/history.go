package slackfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"iter"
	"slices"
	"strconv"
	"strings"
)

// History limits of conversations.history: Slack answers 100 messages when
// no limit is given and at most 999 per page.
const (
	defaultHistoryLimit = 100
	maxHistoryLimit     = 999
	// defaultRepliesLimit and maxRepliesLimit are conversations.replies'.
	defaultRepliesLimit = 1000
	maxRepliesLimit     = 1000
	// maxMetadataBytes is the size above which Slack refuses metadata
	// (metadata_too_large).
	maxMetadataBytes = 8000
)

// checkMetadata validates a chat call's metadata parameter, as chat.postMessage
// and chat.update take it: a JSON object with a non-empty string event_type
// and an object event_payload. It returns the metadata compacted, nil when
// none was given, or a failure.
func checkMetadata(q *request) (json.RawMessage, *reply) {
	raw := q.str("metadata")
	if raw == "" {
		return nil, nil
	}
	if len(raw) > maxMetadataBytes {
		r := fail("metadata_too_large")
		return nil, &r
	}
	var m struct {
		EventType    *string         `json:"event_type"`
		EventPayload json.RawMessage `json:"event_payload"`
	}
	if json.Unmarshal([]byte(raw), &m) != nil {
		r := fail("invalid_metadata_format")
		return nil, &r
	}
	payload := bytes.TrimSpace(m.EventPayload)
	if m.EventType == nil || *m.EventType == "" || len(payload) == 0 || payload[0] != '{' {
		r := fail("invalid_metadata_schema")
		return nil, &r
	}
	return compact(json.RawMessage(raw)), nil
}

// tsMicros parses a message timestamp ("seconds.micros", the fraction
// optional and at most six digits) into microseconds.
func tsMicros(ts string) (int64, bool) {
	sec, frac, _ := strings.Cut(ts, ".")
	if len(frac) > 6 {
		return 0, false
	}
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s < 0 {
		return 0, false
	}
	var us int64
	if frac != "" {
		f, err := strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		if err != nil || f < 0 {
			return 0, false
		}
		us = f
	}
	return s*1_000_000 + us, true
}

// historyCursor encodes where the next page starts as Slack does: base64 of
// "next_ts:<ts>".
func historyCursor(ts string) string {
	return base64.StdEncoding.EncodeToString([]byte("next_ts:" + ts))
}

// historyBound parses a latest or oldest parameter; empty gives def.
func historyBound(q *request, name string, def int64) (int64, bool) {
	v := q.str(name)
	if v == "" {
		return def, true
	}
	return tsMicros(v)
}

// boolParam reads a Slack boolean parameter ("1", "true").
func boolParam(q *request, name string) bool {
	v := q.str(name)
	return v == "1" || v == "true"
}

// conversationsHistory answers a channel's top-level messages newest first,
// as Slack does: thread replies are left out, deleted messages too; latest
// and oldest bound the ts range (exclusive unless inclusive is set), limit
// and cursor page through it, and metadata is included only with
// include_all_metadata.
func (f *Fake) conversationsHistory(q *request) reply {
	channel := q.str("channel")
	pg, bad := readPage(q, defaultHistoryLimit, maxHistoryLimit)
	if bad != "" {
		return fail(bad)
	}
	if pg.cursor >= 0 {
		// The cursor names the first message of the next page, newest first.
		pg.latest, pg.latestIncl = pg.cursor, true
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.channelExists(channel) {
		return fail("channel_not_found")
	}
	messages, next := pg.collect(slices.Backward(f.messages), func(m *Message) bool {
		return m.Channel == channel && !m.Deleted && (m.ThreadTS == "" || m.ThreadTS == m.TS)
	})
	body := map[string]any{"messages": messages, "has_more": next != "", "pin_count": 0}
	if next != "" {
		body["response_metadata"] = map[string]any{"next_cursor": historyCursor(next)}
	}
	return ok(body)
}

// conversationsReplies answers a thread, oldest first as Slack does: the
// parent named by ts, then its replies; deleted messages are left out.
// latest and oldest bound the ts range (exclusive unless inclusive is set),
// limit and cursor page through it, and metadata is included only with
// include_all_metadata. A ts that names no message gives thread_not_found.
func (f *Fake) conversationsReplies(q *request) reply {
	channel, ts := q.str("channel"), q.str("ts")
	if ts == "" {
		return fail("invalid_arguments")
	}
	pg, bad := readPage(q, defaultRepliesLimit, maxRepliesLimit)
	if bad != "" {
		return fail(bad)
	}
	if pg.cursor >= 0 {
		// The cursor names the first message of the next page, oldest first.
		pg.oldest, pg.oldestIncl = pg.cursor, true
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.channelExists(channel) {
		return fail("channel_not_found")
	}
	if parent := f.findMessage(channel, ts); parent == nil || parent.Deleted {
		return fail("thread_not_found")
	}
	messages, next := pg.collect(slices.All(f.messages), func(m *Message) bool {
		return m.Channel == channel && !m.Deleted && (m.TS == ts || m.ThreadTS == ts)
	})
	body := map[string]any{"messages": messages, "has_more": next != ""}
	if next != "" {
		body["response_metadata"] = map[string]any{"next_cursor": historyCursor(next)}
	}
	return ok(body)
}

// page is the paging of conversations.history and conversations.replies:
// the ts bounds in microseconds, the limit, the cursor's ts (-1 for none)
// and whether metadata is included.
type page struct {
	latest, oldest         int64
	latestIncl, oldestIncl bool
	limit                  int
	cursor                 int64
	metadata               bool
}

// readPage reads the paging parameters both methods share, or the error
// Slack answers for a bad one.
func readPage(q *request, defLimit, maxLimit int) (page, string) {
	pg := page{limit: defLimit, cursor: -1, metadata: boolParam(q, "include_all_metadata")}
	if v := q.str("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return pg, "invalid_limit"
		}
		if n > 0 {
			pg.limit = min(n, maxLimit)
		}
	}
	var valid bool
	if pg.latest, valid = historyBound(q, "latest", 1<<62); !valid {
		return pg, "invalid_ts_latest"
	}
	if pg.oldest, valid = historyBound(q, "oldest", 0); !valid {
		return pg, "invalid_ts_oldest"
	}
	pg.oldestIncl = boolParam(q, "inclusive")
	pg.latestIncl = pg.oldestIncl
	if c := q.str("cursor"); c != "" {
		raw, err := base64.StdEncoding.DecodeString(c)
		ts, found := strings.CutPrefix(string(raw), "next_ts:")
		us, valid := tsMicros(ts)
		if err != nil || !found || !valid {
			return pg, "invalid_cursor"
		}
		pg.cursor = us
	}
	return pg, ""
}

// collect takes the messages of ms that keep accepts and that fall in the
// page's ts range, in the order ms gives, up to the limit; next is the ts
// of the first message past the limit, "" when there is none.
func (pg page) collect(ms iter.Seq2[int, *Message], keep func(*Message) bool) ([]map[string]any, string) {
	out := []map[string]any{}
	for _, m := range ms {
		if !keep(m) {
			continue
		}
		us, _ := tsMicros(m.TS)
		if us > pg.latest || us < pg.oldest || (!pg.latestIncl && us == pg.latest) || (!pg.oldestIncl && us == pg.oldest) {
			continue
		}
		if len(out) == pg.limit {
			return out, m.TS
		}
		j := messageJSON(m)
		if !pg.metadata {
			delete(j, "metadata")
		}
		out = append(out, j)
	}
	return out, ""
}

package slackfake

import (
	"encoding/json"
	"testing"
)

// FuzzCheckBlocks feeds arbitrary JSON to the Block Kit and view checkers:
// they read client input, so they must never panic, and they must refuse
// anything that is not a JSON array (blocks) or object (views).
func FuzzCheckBlocks(f *testing.F) {
	for _, seed := range []string{
		`[{"type":"section","text":{"type":"mrkdwn","text":"hi"}}]`,
		`[{"type":"actions","elements":[{"type":"button","action_id":"a","text":{"type":"plain_text","text":"Go"}},null,7]}]`,
		`[{"type":"context","elements":[null,{"type":"image"}]},{"type":"input","element":null}]`,
		`[{"type":"section","fields":[1,"x",{}],"accessory":{"type":"overflow","options":[null,{"text":5}]}}]`,
		`{"type":"modal","title":{"type":"plain_text","text":"t"},"blocks":[{"type":"input","label":{"type":"plain_text","text":"l"},"element":{"type":"static_select","option_groups":[{"options":[{}]},null]}}]}`,
		`null`, `[]`, `[null]`, `{"blocks":{}}`, `"text"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, err := checkBlocks(raw, maxMessageBlocks, "/blocks")
		var arr []any
		if err == nil && json.Unmarshal(raw, &arr) != nil {
			t.Errorf("checkBlocks accepted non-array %q", raw)
		}
		_, err = checkView(raw, "modal")
		var obj map[string]any
		if err == nil && json.Unmarshal(raw, &obj) != nil {
			t.Errorf("checkView accepted non-object %q", raw)
		}
	})
}

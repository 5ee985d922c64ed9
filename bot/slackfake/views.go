package slackfake

import (
	"encoding/json"
	"fmt"
	"time"
)

// trigger is a trigger_id handed out in an interactive or slash command
// payload: exchangeable once, within TriggerTTL.
type trigger struct {
	issued  time.Time
	user    string
	used    bool
	expired bool
}

// newTrigger hands out a trigger_id for user; f.mu must be held.
func (f *Fake) newTrigger(user string) string {
	n := f.nextID()
	id := fmt.Sprintf("%d.%d.%08x", f.opts.Clock.Now().Unix(), 1000000+n, n*2654435761%(1<<32))
	f.triggers[id] = &trigger{issued: f.opts.Clock.Now(), user: user}
	return id
}

// NewTriggerID hands out a trigger_id for user, for payloads built by hand
// and sent with SendEnvelope.
func (f *Fake) NewTriggerID(user string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newTrigger(user)
}

// exchange spends a trigger_id; f.mu must be held.
func (f *Fake) exchange(id string, now time.Time) (*trigger, *reply) {
	t := f.triggers[id]
	var r reply
	switch {
	case t == nil:
		r = fail("invalid_trigger_id")
	case t.used:
		r = fail("exchanged_trigger_id")
	case t.expired || now.Sub(t.issued) > f.opts.TriggerTTL:
		r = fail("expired_trigger_id")
	default:
		t.used = true
		return t, nil
	}
	return nil, &r
}

// viewFields are the parts of a view the fake keeps apart from its JSON.
type viewFields struct {
	Type            string `json:"type"`
	CallbackID      string `json:"callback_id"`
	PrivateMetadata string `json:"private_metadata"`
	ExternalID      string `json:"external_id"`
	Title           struct {
		Text string `json:"text"`
	} `json:"title"`
}

// parseView validates a view parameter and returns its compact JSON and
// fields, or the failure Slack gives.
func parseView(q *request, wantType string) (json.RawMessage, viewFields, *reply) {
	var vf viewFields
	raw := json.RawMessage(q.str("view"))
	if len(raw) == 0 {
		r := fail("invalid_arguments", "[ERROR] missing required field: view [json-pointer:/view]")
		return nil, vf, &r
	}
	problems, err := checkView(raw, wantType)
	if err != nil {
		r := fail("invalid_arguments", err.Error())
		return nil, vf, &r
	}
	if len(problems) > 0 {
		r := fail("invalid_arguments", problems...)
		return nil, vf, &r
	}
	if err := json.Unmarshal(raw, &vf); err != nil {
		r := fail("invalid_arguments", err.Error())
		return nil, vf, &r
	}
	return compact(raw), vf, nil
}

// setView applies a validated view to v and gives it a new hash; f.mu must
// be held.
func (f *Fake) setView(v *View, raw json.RawMessage, vf viewFields, now time.Time) {
	v.JSON = raw
	v.CallbackID = vf.CallbackID
	v.PrivateMetadata = vf.PrivateMetadata
	v.Title = vf.Title.Text
	if vf.ExternalID != "" {
		v.ExternalID = vf.ExternalID
	}
	v.Hash = fmt.Sprintf("%d.%08x", now.Unix(), f.nextID())
	v.At = now
}

// viewJSON is a view as Slack returns it.
func (f *Fake) viewJSON(v *View) map[string]any {
	out := map[string]any{}
	_ = json.Unmarshal(v.JSON, &out)
	out["id"] = v.ID
	out["team_id"] = f.opts.TeamID
	out["hash"] = v.Hash
	out["root_view_id"] = v.ID
	out["previous_view_id"] = nil
	out["app_id"] = f.opts.AppID
	out["bot_id"] = f.opts.BotID
	out["external_id"] = v.ExternalID
	out["private_metadata"] = v.PrivateMetadata
	out["callback_id"] = v.CallbackID
	out["state"] = map[string]any{"values": map[string]any{}}
	return out
}

// findView finds a view by ID or external ID; f.mu must be held.
func (f *Fake) findView(id, externalID string) *View {
	for _, v := range f.views {
		if (id != "" && v.ID == id) || (id == "" && externalID != "" && v.ExternalID == externalID) {
			return v
		}
	}
	return nil
}

func (f *Fake) viewsOpen(q *request) reply {
	raw, vf, bad := parseView(q, "modal")
	if bad != nil {
		return *bad
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if vf.ExternalID != "" && f.findView("", vf.ExternalID) != nil {
		return fail("duplicate_external_id")
	}
	t, bad := f.exchange(q.str("trigger_id"), q.now)
	if bad != nil {
		return *bad
	}
	v := &View{
		ID:        fmt.Sprintf("V%08d", f.nextID()),
		Type:      "modal",
		UserID:    t.user,
		TriggerID: q.str("trigger_id"),
	}
	f.setView(v, raw, vf, q.now)
	f.views = append(f.views, v)
	return ok(map[string]any{"view": f.viewJSON(v)})
}

func (f *Fake) viewsUpdate(q *request) reply {
	raw, vf, bad := parseView(q, "modal")
	if bad != nil {
		return *bad
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.findView(q.str("view_id"), q.str("external_id"))
	if v == nil || v.Type != "modal" {
		return fail("not_found")
	}
	if h := q.str("hash"); h != "" && h != v.Hash {
		return fail("hash_conflict")
	}
	f.setView(v, raw, vf, q.now)
	v.Updates++
	return ok(map[string]any{"view": f.viewJSON(v)})
}

func (f *Fake) viewsPublish(q *request) reply {
	user := q.str("user_id")
	if user == "" {
		return fail("invalid_arguments", "[ERROR] missing required field: user_id [json-pointer:/user_id]")
	}
	raw, vf, bad := parseView(q, "home")
	if bad != nil {
		return *bad
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, known := f.users[user]; !known && len(f.users) > 0 {
		return fail("user_not_found")
	}
	var v *View
	for _, existing := range f.views {
		if existing.Type == "home" && existing.UserID == user {
			v = existing
		}
	}
	if v != nil {
		if h := q.str("hash"); h != "" && h != v.Hash {
			return fail("hash_conflict")
		}
		v.Updates++
	} else {
		v = &View{ID: fmt.Sprintf("V%08d", f.nextID()), Type: "home", UserID: user}
		f.views = append(f.views, v)
	}
	f.setView(v, raw, vf, q.now)
	return ok(map[string]any{"view": f.viewJSON(v)})
}

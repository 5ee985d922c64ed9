package slackfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Socket Mode envelope types.
const (
	TypeEventsAPI     = "events_api"
	TypeInteractive   = "interactive"
	TypeSlashCommands = "slash_commands"
)

// conn is one Socket Mode WebSocket connection. Its fields other than ws,
// wake and done are guarded by Fake.mu.
type conn struct {
	n      int
	ws     *websocket.Conn
	wake   chan struct{}
	done   chan struct{}
	outbox [][]byte
	// ready: the connection takes envelopes (not closing, not closed).
	ready bool
	// closeAfter: close once the outbox is written (after a disconnect).
	closeAfter bool
}

// push queues a frame for the connection's writer; f.mu must be held.
func (c *conn) push(frame []byte) {
	c.outbox = append(c.outbox, frame)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// origin is what the redeliveries of one injected envelope share.
type origin struct {
	typ     string
	payload json.RawMessage
	accepts bool
	eventID string
	trigger string
	respURL string
	viewID  string
	acked   bool
}

// delivery is one attempt at sending an origin.
type delivery struct {
	id       string
	o        *origin
	attempt  int
	sentAt   time.Time
	conn     int
	acked    bool
	timedOut bool
}

func (d *delivery) envelope() Envelope {
	return Envelope{
		ID:          d.id,
		Type:        d.o.typ,
		EventID:     d.o.eventID,
		TriggerID:   d.o.trigger,
		ResponseURL: d.o.respURL,
		Payload:     d.o.payload,
	}
}

func (d *delivery) snapshot() Delivery {
	return Delivery{
		Envelope:     d.envelope(),
		RetryAttempt: d.attempt,
		SentAt:       d.sentAt,
		Conn:         d.conn,
		Acked:        d.acked,
		TimedOut:     d.timedOut,
	}
}

// frame is the envelope as sent on the wire.
func (d *delivery) frame() []byte {
	env := map[string]any{
		"envelope_id":              d.id,
		"type":                     d.o.typ,
		"payload":                  d.o.payload,
		"accepts_response_payload": d.o.accepts,
	}
	if d.o.typ == TypeEventsAPI {
		env["retry_attempt"] = d.attempt
		env["retry_reason"] = ""
		if d.attempt > 0 {
			env["retry_reason"] = "timeout"
		}
	}
	b, _ := json.Marshal(env)
	return b
}

func (f *Fake) appsConnectionsOpen(*request) reply {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nextID()
	ticket := fmt.Sprintf("%08x-%04x-4fa1-8c2e-slackfake", n*2654435761%(1<<32), n)
	f.tickets[ticket] = true
	u := "ws" + strings.TrimPrefix(f.server.URL, "http") + "/link/?ticket=" + ticket + "&app_id=" + f.opts.AppID
	return ok(map[string]any{"url": u})
}

var upgrader = websocket.Upgrader{
	// slack-go sends Origin https://api.slack.com, which is not this host.
	CheckOrigin: func(*http.Request) bool { return true },
}

// serveSocket is the Socket Mode endpoint: one connection per ticket from
// apps.connections.open, greeted with hello.
func (f *Fake) serveSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	f.mu.Lock()
	valid := f.tickets[ticket]
	delete(f.tickets, ticket)
	f.mu.Unlock()
	if !valid {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		ws.Close()
		return
	}
	f.connsOpened++
	c := &conn{n: f.connsOpened, ws: ws, wake: make(chan struct{}, 1), done: make(chan struct{}), ready: true}
	open := 1
	for _, other := range f.conns {
		if other.ready {
			open++
		}
	}
	hello, _ := json.Marshal(map[string]any{
		"type":            "hello",
		"num_connections": open,
		"debug_info": map[string]any{
			"host":                        fmt.Sprintf("slackfake-%d", c.n),
			"build_number":                1,
			"approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": f.opts.AppID},
	})
	c.push(hello)
	f.conns = append(f.conns, c)
	for _, d := range f.deliveries {
		if d.sentAt.IsZero() && !d.timedOut {
			f.send(d)
		}
	}
	f.wg.Add(2)
	go f.writeLoop(c)
	go f.readLoop(c)
	f.notify()
}

func (f *Fake) writeLoop(c *conn) {
	defer f.wg.Done()
	ping := time.NewTicker(f.opts.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
				c.ws.Close()
				return
			}
		case <-c.wake:
			f.mu.Lock()
			batch, closeAfter := c.outbox, c.closeAfter
			c.outbox = nil
			f.mu.Unlock()
			for _, frame := range batch {
				if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
					c.ws.Close()
					return
				}
			}
			if closeAfter {
				c.ws.Close()
				return
			}
		}
	}
}

func (f *Fake) readLoop(c *conn) {
	defer f.wg.Done()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			break
		}
		f.receive(data)
	}
	c.ws.Close()
	f.mu.Lock()
	c.ready = false
	close(c.done)
	f.notify()
	f.mu.Unlock()
}

// receive handles a frame from the client: an ack, optionally with payload.
func (f *Fake) receive(data []byte) {
	var msg struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(data, &msg) != nil || msg.EnvelopeID == "" {
		return
	}
	now := f.opts.Clock.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.notify()
	ack := Ack{EnvelopeID: msg.EnvelopeID, Payload: msg.Payload, At: now}
	var d *delivery
	for _, cand := range f.deliveries {
		if cand.id == msg.EnvelopeID {
			d = cand
		}
	}
	if d == nil {
		ack.Unknown = true
		f.acks = append(f.acks, ack)
		return
	}
	ack.Type, ack.EventID, ack.RetryAttempt = d.o.typ, d.o.eventID, d.attempt
	ack.Late = now.After(d.sentAt.Add(f.opts.AckTimeout))
	d.acked, d.o.acked = true, true
	f.acks = append(f.acks, ack)
	if d.o.viewID != "" && !ack.Late {
		f.applyViewResponse(d.o.viewID, msg.Payload, now)
	}
}

// applyViewResponse does what Slack does with a view_submission ack: no
// response_action (or "clear") closes the view, "update" replaces it,
// "errors" leaves it open; f.mu must be held.
func (f *Fake) applyViewResponse(viewID string, payload json.RawMessage, now time.Time) {
	v := f.findView(viewID, "")
	if v == nil {
		return
	}
	var resp struct {
		ResponseAction string          `json:"response_action"`
		View           json.RawMessage `json:"view"`
	}
	_ = json.Unmarshal(payload, &resp)
	switch resp.ResponseAction {
	case "", "clear":
		v.Closed = true
	case "update":
		problems, err := checkView(resp.View, "modal")
		var vf viewFields
		if err == nil && len(problems) == 0 && json.Unmarshal(resp.View, &vf) == nil {
			f.setView(v, compact(resp.View), vf, now)
			v.Updates++
		}
	}
}

// inject records a new envelope and sends it when a connection is up;
// f.mu must be held.
func (f *Fake) inject(o *origin) Envelope {
	d := &delivery{id: f.newEnvelopeID(), o: o}
	f.deliveries = append(f.deliveries, d)
	f.send(d)
	f.notify()
	return d.envelope()
}

func (f *Fake) newEnvelopeID() string {
	n := f.nextID()
	return fmt.Sprintf("%08x-%04x-4e5a-9b1c-%012x", n*2654435761%(1<<32), n%(1<<16), n)
}

// send hands a delivery to the newest ready connection, or leaves it
// pending; f.mu must be held.
func (f *Fake) send(d *delivery) {
	for i := len(f.conns) - 1; i >= 0; i-- {
		c := f.conns[i]
		if c.ready {
			d.sentAt = f.opts.Clock.Now()
			d.conn = c.n
			c.push(d.frame())
			return
		}
	}
}

// SendEnvelope injects a Socket Mode envelope of type typ (TypeEventsAPI,
// TypeInteractive, TypeSlashCommands …) with payload marshalled as JSON, for
// payloads the helpers do not build (message shortcuts, app_home_opened).
// Use NewTriggerID and NewResponseURL for the IDs such payloads carry.
func (f *Fake) SendEnvelope(typ string, payload any, acceptsResponsePayload bool) (Envelope, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Envelope{}, fmt.Errorf("slackfake: envelope payload: %w", err)
	}
	var ids struct {
		EventID     string `json:"event_id"`
		TriggerID   string `json:"trigger_id"`
		ResponseURL string `json:"response_url"`
	}
	_ = json.Unmarshal(raw, &ids)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inject(&origin{
		typ:     typ,
		payload: raw,
		accepts: acceptsResponsePayload,
		eventID: ids.EventID,
		trigger: ids.TriggerID,
		respURL: ids.ResponseURL,
	}), nil
}

// Sweep applies the ack deadline now, by the fake's clock: every sent
// envelope unacked for longer than AckTimeout is marked timed out, and an
// events_api one is redelivered with retry_attempt incremented (up to
// MaxRetries). A background loop calls it every SweepInterval; tests on a
// ManualClock may call it right after Advance.
func (f *Fake) Sweep() {
	now := f.opts.Clock.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := false
	// Redeliveries appended below get their own deadline; skip them here.
	sent := len(f.deliveries)
	for _, d := range f.deliveries[:sent] {
		if d.acked || d.timedOut || d.sentAt.IsZero() || !now.After(d.sentAt.Add(f.opts.AckTimeout)) {
			continue
		}
		d.timedOut, changed = true, true
		if d.o.typ == TypeEventsAPI && !d.o.acked && d.attempt < f.opts.MaxRetries {
			next := &delivery{id: f.newEnvelopeID(), o: d.o, attempt: d.attempt + 1}
			f.deliveries = append(f.deliveries, next)
			f.send(next)
		}
	}
	if changed {
		f.notify()
	}
}

// Disconnect asks every connected client to reconnect, as Slack does before
// it recycles a connection: it sends {"type":"disconnect","reason":
// "refresh_requested"} and then closes the connection. It returns how many
// connections it closed.
func (f *Fake) Disconnect() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.conns {
		if !c.ready {
			continue
		}
		frame, _ := json.Marshal(map[string]any{
			"type":       "disconnect",
			"reason":     "refresh_requested",
			"debug_info": map[string]any{"host": fmt.Sprintf("slackfake-%d", c.n)},
		})
		c.ready, c.closeAfter = false, true
		c.push(frame)
		n++
	}
	f.notify()
	return n
}

// Drop cuts every connection without a word, as a network failure would.
func (f *Fake) Drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.ready = false
		c.ws.Close()
	}
	f.notify()
}

// ConnectionsOpened counts the Socket Mode connections accepted so far.
func (f *Fake) ConnectionsOpened() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connsOpened
}

// OpenConnections counts the connections currently taking envelopes.
func (f *Fake) OpenConnections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.conns {
		if c.ready {
			n++
		}
	}
	return n
}

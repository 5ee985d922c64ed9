// Package slackfake is an in-process stand-in for Slack's Web API and Socket
// Mode, for tests and for `casebot demo`. Point slack-go at it with
// slack.OptionAPIURL(fake.APIURL()); it enforces the Slack behaviour casebot
// must cope with (auth, per-channel posting rate limits, Block Kit and modal
// limits, single-use expiring trigger IDs, the Socket Mode ack deadline with
// redelivery, disconnects) and records everything for assertions.
//
// It is written on net/http/httptest and gorilla/websocket rather than
// slack-go's slacktest, which serves the legacy RTM protocol from a
// process-global hub, checks no tokens and has no Socket Mode envelopes.
package slackfake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"
)

// Default tokens and identities; Options fields override them.
const (
	DefaultBotToken  = "xoxb-1-slackfake-bot"
	DefaultAppToken  = "xapp-1-slackfake-app"
	DefaultTeamID    = "T0SLACKFAKE"
	DefaultAppID     = "A0SLACKFAKE"
	DefaultBotUserID = "U0CASEBOT"
	DefaultBotID     = "B0CASEBOT"
)

// Clock tells the fake's time: trigger expiry, ack deadlines, rate-limit
// refill and message timestamps all read it. triage.Clock satisfies it.
type Clock interface {
	Now() time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that moves only when told, for deterministic tests.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock stopped at start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// User is a workspace member that users.info knows.
type User struct {
	ID       string
	Name     string
	RealName string
	Email    string
	TZ       string
	IsBot    bool
}

// Options configures a Fake. The zero value gives Slack's documented
// behaviour with the default tokens and the wall clock.
type Options struct {
	// BotToken is the only xoxb token the Web API accepts.
	BotToken string
	// AppToken is the only xapp token apps.connections.open accepts.
	AppToken string
	// TeamID, AppID, BotUserID and BotID identify the workspace and the app.
	TeamID, AppID, BotUserID, BotID string

	// Clock is the fake's time; default the wall clock.
	Clock Clock

	// PostRate is how many chat.postMessage calls per second one channel
	// accepts once its burst is spent; default 1 (Slack's "about one message
	// per second per channel"). Negative disables the limit, e.g. for a demo
	// on simulated time.
	PostRate float64
	// Burst is how many posts a quiet channel accepts at once; default 3.
	Burst int

	// AckTimeout is the Socket Mode ack deadline; default 3s.
	AckTimeout time.Duration
	// MaxRetries is how often an unacked events_api envelope is redelivered;
	// default 3, as Slack retries events; negative never redelivers.
	// Interactive and slash command envelopes are never redelivered: Slack
	// shows the person an error instead.
	MaxRetries int
	// TriggerTTL is how long a trigger_id may be exchanged; default 3s.
	TriggerTTL time.Duration
	// ResponseURLTTL is how long a response_url accepts posts; default 30m.
	ResponseURLTTL time.Duration
	// ResponseURLUses is how many posts a response_url accepts; default 5.
	ResponseURLUses int

	// PingInterval is how often, in real time, the Socket Mode server sends
	// WebSocket pings; slack-go reconnects when they stop. Default 5s.
	PingInterval time.Duration
	// SweepInterval is how often, in real time, overdue acks are looked for;
	// default 50ms. Tests on a ManualClock may call Sweep instead.
	SweepInterval time.Duration

	// Channels, when set, are the only channel IDs that exist; others give
	// channel_not_found. When empty every non-empty channel ID exists.
	Channels []string
	// Users are the members users.info knows; others give user_not_found.
	Users []User
}

func (o Options) withDefaults() Options {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.BotToken, DefaultBotToken)
	def(&o.AppToken, DefaultAppToken)
	def(&o.TeamID, DefaultTeamID)
	def(&o.AppID, DefaultAppID)
	def(&o.BotUserID, DefaultBotUserID)
	def(&o.BotID, DefaultBotID)
	if o.Clock == nil {
		o.Clock = wallClock{}
	}
	if o.PostRate == 0 {
		o.PostRate = 1
	}
	if o.Burst <= 0 {
		o.Burst = 3
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 3 * time.Second
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 3
	}
	if o.TriggerTTL <= 0 {
		o.TriggerTTL = 3 * time.Second
	}
	if o.ResponseURLTTL <= 0 {
		o.ResponseURLTTL = 30 * time.Minute
	}
	if o.ResponseURLUses <= 0 {
		o.ResponseURLUses = 5
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 5 * time.Second
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = 50 * time.Millisecond
	}
	return o
}

// Call is one recorded HTTP request to the fake: a Web API method, an upload
// (Method "upload") or a response_url post (Method "response_url").
type Call struct {
	Method string
	// Token is the token the call carried (header or form), if any.
	Token string
	// Params are the form or query values, without the token.
	Params url.Values
	// Body is the request body when it was JSON.
	Body json.RawMessage
	At   time.Time
	// Status is the HTTP status answered.
	Status int
	// OK and Error are the answer's "ok" and "error" fields.
	OK    bool
	Error string
	// Response is the JSON answered, when it was JSON.
	Response json.RawMessage
}

// Param returns a parameter whether it came as a form value or as a
// top-level field of a JSON body (objects and arrays as their JSON text).
func (c Call) Param(name string) string {
	if v, ok := c.Params[name]; ok && len(v) > 0 {
		return v[0]
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(c.Body, &m) != nil {
		return ""
	}
	return rawString(m[name])
}

// Message is a message in a channel: posted by the bot, shared with a file,
// or sent by a user through SendMessage.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string
	// User is the author: the bot's user ID for the bot's own messages.
	User string
	// BotID is set on the bot's own messages and on other apps' messages
	// (SendAppMessage).
	BotID  string
	Text   string
	Blocks json.RawMessage
	// Metadata is the message metadata the bot attached, as
	// {"event_type": …, "event_payload": {…}}; nil when none.
	Metadata json.RawMessage
	// Files are the IDs of files shared with the message.
	Files []string
	// Updates counts chat.update and replace_original edits.
	Updates  int
	Deleted  bool
	PostedAt time.Time
}

// Ephemeral is a message only one user sees.
type Ephemeral struct {
	Channel  string
	User     string
	TS       string
	ThreadTS string
	Text     string
	Blocks   json.RawMessage
	At       time.Time
}

// View is a modal opened with views.open or an App Home published with
// views.publish.
type View struct {
	ID string
	// Type is "modal" or "home".
	Type string
	// UserID is who sees it.
	UserID     string
	TriggerID  string
	ExternalID string
	CallbackID string
	// PrivateMetadata is the view's private_metadata.
	PrivateMetadata string
	Title           string
	Hash            string
	// JSON is the view as last sent by the client.
	JSON json.RawMessage
	// Updates counts views.update calls, republishes and response_action
	// updates.
	Updates int
	// Closed is set when a view_submission was acked without errors.
	Closed bool
	At     time.Time
}

// File is a file uploaded through files.getUploadURLExternal, the upload URL
// and files.completeUploadExternal.
type File struct {
	ID             string
	Name           string
	Length         int
	Title          string
	Content        []byte
	Uploaded       bool
	Completed      bool
	Channel        string
	ThreadTS       string
	InitialComment string
}

// ResponsePost is one post the client made to a response_url.
type ResponsePost struct {
	URL string
	// Source is the envelope type that handed the URL out:
	// "slash_commands" or "interactive".
	Source          string
	Text            string
	ResponseType    string
	ReplaceOriginal bool
	DeleteOriginal  bool
	Blocks          json.RawMessage
	Body            json.RawMessage
	At              time.Time
	// Error is set when the post was refused (expired_url, used_url).
	Error string
}

// Ack is one acknowledgement received over Socket Mode.
type Ack struct {
	EnvelopeID string
	// Type is the acked envelope's type ("" when Unknown).
	Type string
	// EventID is the Events API event_id of an events_api envelope.
	EventID string
	// RetryAttempt is the acked delivery's retry_attempt.
	RetryAttempt int
	Payload      json.RawMessage
	At           time.Time
	// Late is set when the ack came after the deadline.
	Late bool
	// Unknown is set when no envelope with that ID was sent.
	Unknown bool
}

// Delivery is one envelope sent, or queued to be sent, over Socket Mode.
type Delivery struct {
	Envelope
	RetryAttempt int
	// SentAt is zero while no connection has taken the envelope.
	SentAt time.Time
	// Conn is the 1-based number of the connection that carried it.
	Conn     int
	Acked    bool
	TimedOut bool
}

// Envelope identifies an envelope injected into Socket Mode.
type Envelope struct {
	ID   string
	Type string
	// EventID is set on events_api envelopes; redeliveries keep it.
	EventID string
	// TriggerID and ResponseURL are those handed out in the payload, if any.
	TriggerID   string
	ResponseURL string
	Payload     json.RawMessage
}

// Fake is a running Slack stand-in. Its methods are safe for concurrent use.
type Fake struct {
	opts   Options
	server *httptest.Server

	mu      sync.Mutex
	changed chan struct{}
	seq     int
	lastTS  int64

	calls        []Call
	messages     []*Message
	byTS         map[string]*Message
	ephemerals   []Ephemeral
	views        []*View
	files        []*File
	responses    []ResponsePost
	responseURLs map[string]*responseURL
	triggers     map[string]*trigger
	buckets      map[string]*bucket
	rateLimited  int
	failNext     map[string][]int
	// failAfterNext queues failures answered after the call took effect.
	failAfterNext map[string][]int
	slow          map[string]time.Duration
	users         map[string]User
	channels      map[string]bool

	tickets     map[string]bool
	conns       []*conn
	connsOpened int
	deliveries  []*delivery
	acks        []Ack

	// closed is set by Close; no connection is accepted after it.
	closed   bool
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New starts a Fake on a loopback port. Close it when done.
func New(opts Options) *Fake {
	f := &Fake{
		opts:          opts.withDefaults(),
		changed:       make(chan struct{}),
		byTS:          map[string]*Message{},
		responseURLs:  map[string]*responseURL{},
		triggers:      map[string]*trigger{},
		buckets:       map[string]*bucket{},
		failNext:      map[string][]int{},
		failAfterNext: map[string][]int{},
		slow:          map[string]time.Duration{},
		users:         map[string]User{},
		channels:      map[string]bool{},
		tickets:       map[string]bool{},
		stop:          make(chan struct{}),
	}
	for _, u := range f.opts.Users {
		f.users[u.ID] = u
	}
	for _, c := range f.opts.Channels {
		f.channels[c] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", f.serveAPI)
	mux.HandleFunc("/upload/{file}", f.serveUpload)
	mux.HandleFunc("/hooks/{id}", f.serveResponseURL)
	mux.HandleFunc("/link/", f.serveSocket)
	f.server = httptest.NewServer(mux)
	f.wg.Go(f.sweepLoop)
	return f
}

// Close disconnects every Socket Mode client and stops the server.
func (f *Fake) Close() {
	f.stopOnce.Do(func() {
		close(f.stop)
		f.mu.Lock()
		f.closed = true
		for _, c := range f.conns {
			c.ws.Close()
		}
		f.mu.Unlock()
		f.server.Close()
		f.wg.Wait()
	})
}

// APIURL is the Web API base URL, ending in "/api/", for slack.OptionAPIURL.
func (f *Fake) APIURL() string { return f.server.URL + "/api/" }

// BotToken is the bot token the fake accepts.
func (f *Fake) BotToken() string { return f.opts.BotToken }

// AppToken is the app-level token the fake accepts.
func (f *Fake) AppToken() string { return f.opts.AppToken }

// BotUserID is the bot's user ID, the author of its messages.
func (f *Fake) BotUserID() string { return f.opts.BotUserID }

// AddUser makes a member known to users.info.
func (f *Fake) AddUser(u User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[u.ID] = u
}

// Wait blocks until cond returns true, re-checking it after every change to
// the fake's records, or until ctx ends. cond may call the fake's getters.
func (f *Fake) Wait(ctx context.Context, cond func() bool) error {
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("slackfake: wait: %w", ctx.Err())
		}
	}
}

// notify wakes Wait; f.mu must be held.
func (f *Fake) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// nextID returns a process-unique sequence number; f.mu must be held.
func (f *Fake) nextID() int {
	f.seq++
	return f.seq
}

// newTS returns a message timestamp in Slack's "seconds.micros" form, taken
// from the clock and strictly increasing; f.mu must be held.
func (f *Fake) newTS() string {
	us := f.opts.Clock.Now().UnixMicro()
	if us <= f.lastTS {
		us = f.lastTS + 100
	}
	f.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

// Calls returns the recorded calls to method, or all calls when method is "".
func (f *Fake) Calls(method string) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Messages returns a channel's messages, thread replies included, oldest
// first. Deleted messages are included with Deleted set.
func (f *Fake) Messages(channel string) []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Message
	for _, m := range f.messages {
		if m.Channel == channel {
			out = append(out, *m)
		}
	}
	return out
}

// Message returns one message by channel and ts.
func (f *Fake) Message(channel, ts string) (Message, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.findMessage(channel, ts); m != nil {
		return *m, true
	}
	return Message{}, false
}

// findMessage finds a message by channel and ts; f.mu must be held.
func (f *Fake) findMessage(channel, ts string) *Message {
	return f.byTS[channel+"/"+ts]
}

// addMessage stores a new message; f.mu must be held.
func (f *Fake) addMessage(m *Message) {
	f.messages = append(f.messages, m)
	f.byTS[m.Channel+"/"+m.TS] = m
}

// Ephemerals returns every ephemeral message, oldest first.
func (f *Fake) Ephemerals() []Ephemeral {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Ephemeral(nil), f.ephemerals...)
}

// Views returns every view opened or published, in order of creation.
func (f *Fake) Views() []View {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]View, 0, len(f.views))
	for _, v := range f.views {
		out = append(out, *v)
	}
	return out
}

// Files returns every file whose upload was started.
func (f *Fake) Files() []File {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]File, 0, len(f.files))
	for _, fl := range f.files {
		c := *fl
		c.Content = append([]byte(nil), fl.Content...)
		out = append(out, c)
	}
	return out
}

// ResponsePosts returns every post made to a response_url, refused ones
// included.
func (f *Fake) ResponsePosts() []ResponsePost {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ResponsePost(nil), f.responses...)
}

// Acks returns every Socket Mode ack received, in arrival order.
func (f *Fake) Acks() []Ack {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Ack(nil), f.acks...)
}

// Deliveries returns every envelope sent or queued, redeliveries included.
func (f *Fake) Deliveries() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Delivery, 0, len(f.deliveries))
	for _, d := range f.deliveries {
		out = append(out, d.snapshot())
	}
	return out
}

// RateLimited counts the HTTP 429 answers given.
func (f *Fake) RateLimited() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rateLimited
}

// FailNext makes the next call to method (a Web API method, "upload" or
// "response_url") answer with HTTP status and an HTML body, as Slack does on
// outages. Calls queue: FailNext twice fails the next two calls.
func (f *Fake) FailNext(method string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[method] = append(f.failNext[method], status)
}

// FailAfterNext makes the next Web API call to method take effect (a post
// is stored, a view opened) and then answer with HTTP status and an HTML
// body, as when Slack's edge gives up on a call its backend completed: the
// client cannot tell whether the call worked. Calls queue like FailNext's,
// which fails a call before it takes effect.
func (f *Fake) FailAfterNext(method string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAfterNext[method] = append(f.failAfterNext[method], status)
}

// Slow delays every call to method by d of real time before it is handled,
// until Slow(method, 0). A client that gives up ends the wait.
func (f *Fake) Slow(method string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d <= 0 {
		delete(f.slow, method)
		return
	}
	f.slow[method] = d
}

// ExpireTriggers makes every trigger_id handed out so far expired.
func (f *Fake) ExpireTriggers() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.triggers {
		t.expired = true
	}
}

func (f *Fake) sweepLoop() {
	t := time.NewTicker(f.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.Sweep()
		}
	}
}

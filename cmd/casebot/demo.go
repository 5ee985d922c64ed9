package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/casebot/casebot/bot"
	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// samplesJSONL are the demo's built-in tickets, in the evaluation format with
// the optional customer and order fields of sampleRow.
//
//go:embed samples.jsonl
var samplesJSONL []byte

// demoStart is the simulated time the demo begins: a Monday morning.
var demoStart = time.Date(2026, 11, 16, 8, 0, 0, 0, time.UTC)

// Demo actors: an agent without approval authority, and the configured
// approver who steps in when authority is needed.
const (
	demoAgent    = "U0AGENT01"
	demoApprover = "U0LEAD001"
)

// sampleRow is one demo ticket: an evaluation row plus who wrote it and the
// order it concerns.
type sampleRow struct {
	evalRow
	Customer struct {
		Email  string   `json:"email"`
		Name   string   `json:"name"`
		Handle string   `json:"handle"`
		Slack  string   `json:"slack"`
		Tags   []string `json:"tags"`
	} `json:"customer"`
	Order    string  `json:"order"`
	Amount   float64 `json:"amount"`
	Currency string  `json:"currency"`
}

func (r sampleRow) inbound(currency string, at time.Time) triage.Inbound {
	if r.Currency != "" {
		currency = r.Currency
	}
	c := triage.Customer{Name: r.Customer.Name, Email: r.Customer.Email, Handle: r.Customer.Handle,
		SlackUserID: r.Customer.Slack, Tags: r.Customer.Tags}
	if c.Email == "" && c.Handle == "" && c.SlackUserID == "" {
		c.Handle = "demo-" + r.ID
	}
	return triage.Inbound{
		Source: sourceOf(r.Channel), Channel: r.Channel, ExternalID: r.ID, Customer: c,
		Body: r.Text, OrderRef: r.Order, ReceivedAt: at,
		OrderAmount: triage.Money{Minor: int64(math.Round(r.Amount * 100)), Currency: currency},
	}
}

// sourceOf maps an evaluation channel to the intake source it arrives by.
func sourceOf(channel string) triage.Source {
	switch channel {
	case "email":
		return triage.SourceEmail
	case "slack":
		return triage.SourceSlack
	}
	return triage.SourceWebhook
}

// demoClock is simulated time that the demo script moves forward.
type demoClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *demoClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// channelLog is the transcript of the channels the demo posted to.
type channelLog struct {
	order []string
	cards map[string][]string // channel → ticket IDs in posting order
	// thread holds the replies in each ticket's card thread.
	thread map[string][]string
}

func newChannelLog() *channelLog {
	return &channelLog{cards: map[string][]string{}, thread: map[string][]string{}}
}

func (l *channelLog) post(channel, ticketID string) {
	if _, ok := l.cards[channel]; !ok {
		l.order = append(l.order, channel)
	}
	l.cards[channel] = append(l.cards[channel], ticketID)
}

func (l *channelLog) reply(ticketID, format string, args ...any) {
	l.thread[ticketID] = append(l.thread[ticketID], fmt.Sprintf(format, args...))
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c commonFlags
	fs := newFlagSet("demo", stderr, &c)
	input := fs.String("input", "", "replay tickets from `FILE` (evaluation format) instead of the samples")
	transcript := fs.String("transcript", "", "write every posted message's Block Kit JSON to `FILE`, one per line")
	classifier := fs.String("classifier", "", "keyword or ollama (default: ollama when OLLAMA_HOST answers)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkClassifier(*classifier); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, c)
	if err != nil {
		return err
	}
	rows, err := readSamples(*input)
	if err != nil {
		return err
	}
	dbPath := c.db
	if dbPath == "" {
		dir, err := os.MkdirTemp("", "casebot-demo-")
		if err != nil {
			return fmt.Errorf("temporary directory: %w", err)
		}
		defer os.RemoveAll(dir)
		dbPath = filepath.Join(dir, "casebot.db")
	}
	clock := &demoClock{now: demoStart}
	db, err := store.Open(dbPath, store.Options{Clock: clock})
	if err != nil {
		return err
	}
	defer db.Close()
	tr, err := triage.NewTriager(cfg.Config, db, clock)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tr.Drafter = triage.TemplateDrafter{}
	cleanup, err := attachModel(ctx, tr, cfg, *classifier, false, stderr)
	if err != nil {
		return err
	}
	defer cleanup()

	d := &demo{cfg: cfg, tr: tr, db: db, clock: clock, log: newChannelLog(), last: map[string]bot.Decision{}, stderr: stderr}
	fmt.Fprintf(stdout, "casebot demo: %d tickets, classified by %s; store %s\n\n", len(rows), classifierName(tr), dbPath)
	if err := d.run(ctx, rows); err != nil {
		return err
	}
	if err := d.print(ctx, stdout); err != nil {
		return err
	}
	if *transcript != "" {
		if err := d.writeTranscript(ctx, *transcript); err != nil {
			return err
		}
	}
	m, err := computeMetrics(ctx, db, "30d", clock.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "== metrics, last 30 days ==")
	return printMetrics(stdout, m)
}

func classifierName(tr *triage.Triager) string {
	if tr.Model != nil {
		return "the Ollama model (keyword rules when it fails)"
	}
	return "the built-in keyword classifier (no model)"
}

// readSamples reads the demo tickets from path, or the embedded samples.
func readSamples(path string) ([]sampleRow, error) {
	data := samplesJSONL
	name := "built-in samples"
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read demo input: %w", err)
		}
		data, name = b, path
	}
	var rows []sampleRow
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), maxEvalLine)
	var problems []error
	for line := 1; sc.Scan(); line++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var r sampleRow
		if err := json.Unmarshal(raw, &r); err != nil {
			problems = append(problems, fmt.Errorf("%s:%d: %w", name, line, err))
			continue
		}
		if strings.TrimSpace(r.Text) == "" {
			problems = append(problems, fmt.Errorf("%s:%d: no text", name, line))
			continue
		}
		if r.ID == "" {
			r.ID = fmt.Sprintf("line-%d", line)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s has no tickets", name)
	}
	return rows, nil
}

// demo is one run of the scripted loop.
type demo struct {
	cfg   Config
	tr    *triage.Triager
	db    *store.DB
	clock *demoClock
	log   *channelLog
	ids   []string
	last  map[string]bot.Decision
	// stderr is where the demo reports what it worked around.
	stderr io.Writer
}

func (d *demo) run(ctx context.Context, rows []sampleRow) error {
	for _, r := range rows {
		d.clock.advance(7 * time.Minute)
		in := r.inbound(d.cfg.Thresholds.Currency, d.clock.Now())
		t, err := d.tr.Process(ctx, in)
		if errors.Is(err, triage.ErrDuplicate) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ticket %s: %w", r.ID, err)
		}
		d.log.post(t.Route.Channel, t.ID)
		if len(t.Route.Mentions) > 0 {
			d.log.reply(t.ID, "%s please take a look (%s)", mentions(t.Route.Mentions), reasons(t))
		}
		if _, err := d.tr.WriteDraft(ctx, t.ID, in.Customer, ""); err != nil {
			// The bot retries a failed draft later; the demo cannot wait, so
			// the agent starts from the template reply.
			fmt.Fprintf(d.stderr, "casebot demo: %v; using the template draft\n", err)
			model := d.tr.Drafter
			d.tr.Drafter = triage.TemplateDrafter{}
			_, err = d.tr.WriteDraft(ctx, t.ID, in.Customer, "")
			d.tr.Drafter = model
			if err != nil {
				return fmt.Errorf("ticket %s: %w", r.ID, err)
			}
		}
		d.ids = append(d.ids, t.ID)
	}
	for i, id := range d.ids {
		d.clock.advance(11 * time.Minute)
		if err := d.decide(ctx, i, id); err != nil {
			return err
		}
	}
	for i, id := range d.ids {
		d.clock.advance(37 * time.Minute)
		if i%9 == 8 {
			continue // left open: the queue is never empty on a real Monday
		}
		if err := d.resolve(ctx, i, id); err != nil {
			return err
		}
	}
	d.clock.advance(48 * time.Hour)
	return d.followUps(ctx)
}

// decide plays the agent on one ticket: approve, edit, escalate, or be
// refused and hand over to an approver.
func (d *demo) decide(ctx context.Context, i int, id string) error {
	t, err := d.db.Get(ctx, id)
	if err != nil {
		return err
	}
	if t.State == triage.StateEscalated {
		owner := demoApprover
		if len(t.Route.Mentions) > 0 && strings.HasPrefix(t.Route.Mentions[0], "U") {
			owner = t.Route.Mentions[0]
		}
		if !d.cfg.CanApprove(owner, t) {
			owner = demoApprover
		}
		return d.approve(ctx, id, owner, t.Draft+"\n\nI'm handling this personally and will update you within one business day.")
	}
	if t.NeedsApproval {
		if _, err := d.tr.Approve(ctx, id, demoAgent, t.Draft); errors.Is(err, triage.ErrNotAuthorized) {
			d.log.reply(id, "(only visible to %s) You can't approve this ticket: it needs approval authority (%s). Ask %s.",
				bot.Mention(demoAgent), reasons(t), mentions(d.cfg.Approvers))
		} else if err != nil {
			return err
		}
		return d.approve(ctx, id, demoApprover, t.Draft)
	}
	if t.Classification.HasFlag(triage.FlagReputation) {
		owner := d.cfg.Owners["reputation"]
		if len(owner) == 0 {
			owner = []string{demoApprover}
		}
		if _, err := d.tr.Escalate(ctx, id, demoAgent, owner[0], "customer threatens a public post"); err != nil {
			return err
		}
		d.record(id, demoAgent, "escalated")
		d.log.reply(id, "%s escalated to %s: customer threatens a public post", bot.Mention(demoAgent), bot.Mention(owner[0]))
		return d.approve(ctx, id, owner[0], t.Draft+" I've also passed your comments to our team lead.")
	}
	if i%6 == 2 {
		if _, err := d.tr.Override(ctx, id, demoAgent, "urgency", string(triage.LevelHigh)); err != nil {
			return err
		}
		d.log.reply(id, "%s changed urgency from %s to high", bot.Mention(demoAgent), t.Classification.Urgency)
	}
	reply := t.Draft
	if i%4 == 1 {
		reply = t.Draft + " Please reply here if anything else comes up."
		d.log.reply(id, "%s edited the draft before sending", bot.Mention(demoAgent))
	}
	return d.approve(ctx, id, demoAgent, reply)
}

func (d *demo) approve(ctx context.Context, id, actor, reply string) error {
	if _, err := d.tr.Approve(ctx, id, actor, reply); err != nil {
		return fmt.Errorf("approve %s: %w", id, err)
	}
	d.record(id, actor, "approved")
	d.log.reply(id, "%s approved; reply sent to the customer", bot.Mention(actor))
	return nil
}

func (d *demo) record(id, actor, action string) {
	d.last[id] = bot.Decision{Actor: actor, Action: action, At: d.clock.Now()}
}

// rootCauses gives the demo agent's root cause per type when the classifier
// had no guess.
var rootCauses = map[triage.Type]string{
	triage.TypeDelivery: "carrier_delay", triage.TypeRefund: "damaged_in_transit",
	triage.TypeProductDefect: "product_quality", triage.TypeBilling: "payment_failure",
	triage.TypeOrderChange: "customer_error", triage.TypeAccount: "account_access",
	triage.TypePolicyQuestion: "policy_unclear", triage.TypeFeedback: "other", triage.TypeOther: "website_bug",
}

var methods = map[triage.Type]string{
	triage.TypeRefund: "refund", triage.TypeProductDefect: "replacement", triage.TypeBilling: "refund",
	triage.TypeDelivery: "replacement",
}

func (d *demo) resolve(ctx context.Context, i int, id string) error {
	t, err := d.db.Get(ctx, id)
	if err != nil {
		return err
	}
	res := triage.Resolution{RootCause: t.Classification.RootCauseGuess, Method: methods[t.Classification.Type]}
	if res.RootCause == "" && i%7 != 3 { // one in seven resolved without a root cause logged
		res.RootCause = rootCauses[t.Classification.Type]
	}
	if res.Method == "" {
		res.Method = "information"
	}
	if res.Method == "refund" {
		res.Amount = t.Classification.Amount
	}
	actor := t.Assignee
	if actor == "" {
		actor = demoAgent
	}
	if _, err := d.tr.Resolve(ctx, id, actor, res, d.cfg.FollowUp.After); err != nil {
		return fmt.Errorf("resolve %s: %w", id, err)
	}
	d.record(id, actor, "resolved")
	cause := res.RootCause
	if cause == "" {
		cause = "none logged"
	}
	d.log.reply(id, "%s resolved it: %s, root cause %s", bot.Mention(actor), strings.ReplaceAll(res.Method, "_", " "), cause)
	return nil
}

// ratings are the customers' scripted answers to the follow-up; 0 is no
// answer.
var ratings = []int{5, 4, 5, 2, 0, 4, 5, 3, 0, 5, 1, 4}

func (d *demo) followUps(ctx context.Context) error {
	n := 0
	for _, id := range d.ids {
		t, err := d.db.Get(ctx, id)
		if err != nil {
			return err
		}
		if t.State != triage.StateResolved || t.FollowUpDue.After(d.clock.Now()) {
			continue
		}
		if _, err := d.tr.FollowedUp(ctx, id); err != nil {
			return err
		}
		d.log.reply(id, "Follow-up sent to the customer: how did we do? (1-5)")
		r := ratings[n%len(ratings)]
		n++
		if r == 0 {
			continue
		}
		t, err = d.tr.Rate(ctx, id, r)
		if err != nil {
			return err
		}
		if t.State == triage.StateReopened {
			owner := t.Assignee
			if owner == "" {
				owner = demoApprover
			}
			d.record(id, triage.ActorSystem, "reopened")
			d.log.reply(id, "Customer rated %d/5: ticket reopened. %s please follow up.", r, bot.Mention(owner))
		} else {
			d.log.reply(id, "Customer rated %d/5.", r)
		}
	}
	return nil
}

func (d *demo) card(ctx context.Context, id string) (bot.Message, error) {
	t, err := d.db.Get(ctx, id)
	if err != nil {
		return bot.Message{}, err
	}
	cust, err := d.db.Customer(ctx, t.CustomerID)
	if err != nil {
		return bot.Message{}, err
	}
	return bot.CardMessage(t, bot.CardOptions{Customer: cust, Last: d.last[id], Location: d.cfg.Location()}), nil
}

func (d *demo) print(ctx context.Context, w io.Writer) error {
	for _, ch := range d.log.order {
		ids := d.log.cards[ch]
		fmt.Fprintf(w, "━━━ #%s: %d ticket(s) ━━━\n\n", ch, len(ids))
		for _, id := range ids {
			msg, err := d.card(ctx, id)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, indent(bot.RenderText(msg.Blocks), "│ "))
			for _, r := range d.log.thread[id] {
				fmt.Fprintf(w, "   ↳ %s\n", r)
			}
			fmt.Fprintln(w)
		}
	}
	return nil
}

// writeTranscript writes each card's Block Kit JSON with its channel, one
// message per line.
func (d *demo) writeTranscript(ctx context.Context, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create transcript: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, ch := range d.log.order {
		for _, id := range d.log.cards[ch] {
			msg, err := d.card(ctx, id)
			if err != nil {
				f.Close()
				return err
			}
			line := struct {
				Channel string `json:"channel"`
				Ticket  string `json:"ticket"`
				bot.Message
			}{ch, id, msg}
			if err := enc.Encode(line); err != nil {
				f.Close()
				return fmt.Errorf("write transcript: %w", err)
			}
		}
	}
	return f.Close()
}

func mentions(ids []string) string {
	var out []string
	for _, id := range ids {
		if m := bot.Mention(id); m != "" {
			out = append(out, m)
		}
	}
	return strings.Join(out, " ")
}

func reasons(t triage.Ticket) string {
	var rs []string
	for _, tr := range t.Triggers {
		rs = append(rs, tr.Reason)
	}
	if len(rs) == 0 {
		return "routed by " + t.Route.Name
	}
	return strings.Join(rs, "; ")
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

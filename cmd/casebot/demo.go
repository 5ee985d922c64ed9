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
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot"
	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
)

// samplesJSONL are the demo's built-in tickets, in the evaluation format with
// the optional customer and order fields of sampleRow.
//
//go:embed samples.jsonl
var samplesJSONL []byte

// demoStart is the simulated time the demo begins: a Monday morning, just
// after the weekly pattern thread's 09:00 (the week before has no tickets).
var demoStart = time.Date(2026, 11, 16, 9, 30, 0, 0, time.UTC)

// Demo actors: an agent without approval authority, and the configured
// approver who steps in when authority is needed.
const (
	demoAgent    = "U0AGENT01"
	demoApprover = "U0LEAD001"
	// demoIntake is the Slack intake channel of the demo workspace.
	demoIntake = "C0INTAKE"
)

// demoSlow is how long a wait goes without its condition before the demo
// says on stderr what it is waiting for. It never ends a wait: on a loaded
// machine the bot is only slower, and a person stops a demo that hangs
// (the command's context).
const demoSlow = 30 * time.Second

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

// inbound is the sample as its source delivers it; replyURL gives a chat
// or social sample's reply_url (see replyChannels).
func (r sampleRow) inbound(currency string, at time.Time, replyURL func(ext string) string) triage.Inbound {
	if r.Currency != "" {
		currency = r.Currency
	}
	c := triage.Customer{Name: r.Customer.Name, Email: r.Customer.Email, Handle: r.Customer.Handle,
		SlackUserID: r.Customer.Slack, Tags: r.Customer.Tags}
	if c.Email == "" && c.Handle == "" && c.SlackUserID == "" {
		c.Handle = "demo-" + r.ID
	}
	in := triage.Inbound{
		Source: sourceOf(r.Channel), Channel: r.Channel, ExternalID: r.ID, Customer: c,
		Body: r.Text, OrderRef: r.Order, ReceivedAt: at,
		OrderAmount: triage.Money{Minor: int64(math.Round(r.Amount * 100)), Currency: currency},
	}
	switch {
	case in.Source == triage.SourceEmail:
		// An email ticket answers the customer's Message-ID.
		in.ReplyTo = r.ID + "@mail.demo.example"
	case replyChannels[r.Channel]:
		in.ReplyTo = replyURL(r.ID)
	}
	return in
}

// replyChannels are the webhook channels whose sender gives a reply_url
// (a chat widget, a social inbox). Other channels (a review site) have no
// way back, and their cards say to send by hand.
var replyChannels = map[string]bool{"chat": true, "social": true}

// sourceOf maps an evaluation channel to the intake source it arrives by.
func sourceOf(channel string) triage.Source {
	if channel == "email" {
		return triage.SourceEmail
	}
	return triage.SourceWebhook
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
	d, err := openDemo(ctx, cfg, dbPath, *classifier, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	return d.play(ctx, rows, stdout, *transcript)
}

// demoWebhookSecret signs the demo's webhook replies; its receiver checks it.
const demoWebhookSecret = "demo-webhook-secret"

// openDemo starts the real bot with every way back to a customer served in
// process: Slack threads by the Slack stand-in, email by a loopback SMTP
// server, chat and social replies by a loopback reply_url receiver, and
// rating links by the bot's own HTTP listener on loopback. Nothing leaves
// the machine, whatever the config names.
func openDemo(ctx context.Context, cfg Config, dbPath, classifier string, stderr io.Writer) (*demo, error) {
	cfg.Slack.IntakeChannels = append(cfg.Slack.IntakeChannels, demoIntake)
	mail, err := startDemoMail()
	if err != nil {
		return nil, err
	}
	replies, err := startDemoReplies([]byte(demoWebhookSecret))
	if err != nil {
		mail.close()
		return nil, err
	}
	cfg.Email.IMAPAddr, cfg.Email.SMTPAddr, cfg.Email.TLS = "", mail.Addr(), EmailTLSImplicit
	cfg.Email.From = "Demo Shop Support <support@shop.demo.example>"
	// The rating links' base is the HTTP listener's address, known once
	// the system is open (below); any value makes the links exist.
	cfg.HTTP.PublicURL = "http://127.0.0.1"
	// The demo's reply_url receiver is on loopback, which casebot refuses
	// unless the operator allows it, as here.
	cfg.HTTP.ReplyURLAllow = []string{demoReplyHost}

	// The Slack stand-in takes posts as fast as they come: the demo runs on
	// simulated time, and Slack's pace is the poster's tested job.
	// One simulated clock drives the domain, the scheduler's jobs and the
	// Slack stand-in, so follow-ups and the Monday thread come due as the
	// script moves time on.
	clock := clockwork.NewFakeClockAt(demoStart)
	fake := slackfake.New(slackfake.Options{PostRate: -1, Clock: clock})
	sys := &System{Config: cfg, DBPath: dbPath, SlackAPIURL: fake.APIURL(), Classifier: classifier,
		HTTPAddr: "127.0.0.1:0", MailTLS: mail.client,
		Secrets: Secrets{SlackBotToken: fake.BotToken(), SlackAppToken: fake.AppToken(), RatingSecret: "demo-rating-secret",
			WebhookSecret: demoWebhookSecret},
		Clock: clock, Stderr: stderr,
		Poster: bot.PosterOptions{PerChannelInterval: time.Millisecond, PollInterval: 20 * time.Millisecond, Backoff: 10 * time.Millisecond},
		Drafts: triage.PipelineOptions{DraftAttempts: 2, RetryDelay: 10 * time.Millisecond}}
	if err := sys.Open(ctx); err != nil {
		fake.Close()
		mail.close()
		replies.close()
		return nil, err
	}
	sys.Ratings.BaseURL = "http://" + sys.Addr()
	runCtx, stop := context.WithCancel(ctx)
	d := &demo{ctx: ctx, cfg: cfg, sys: sys, fake: fake, clock: clock, stderr: stderr, dbPath: dbPath,
		mail: mail, replies: replies, browser: &http.Client{}, rated: map[string]string{},
		stopped: make(chan struct{})}
	d.stop = stop
	go func() { d.runErr = sys.Run(runCtx); close(d.stopped) }()
	return d, nil
}

// close stops the bot, then what stood in for its counterparts.
func (d *demo) close() {
	d.stop()
	<-d.stopped
	d.sys.Close()
	d.replies.close()
	d.mail.close()
	d.fake.Close()
}

// play runs the script and prints the channels, the transcript file when
// asked, and the metrics read back from the store.
func (d *demo) play(ctx context.Context, rows []sampleRow, stdout io.Writer, transcript string) error {
	fmt.Fprintf(stdout, "casebot demo: %d tickets, classified by %s; store %s\n", len(rows), classifierName(d.sys.Triager), d.dbPath)
	fmt.Fprintf(stdout, "The real bot runs against an in-process Slack, mail server and reply_url receiver; "+
		"a scripted agent (%s) and approver (%s) click its buttons, and customers answer what reached them.\n\n",
		demoAgent, demoApprover)
	if err := d.run(ctx, rows); err != nil {
		return err
	}
	if err := d.print(stdout); err != nil {
		return err
	}
	if transcript != "" {
		if err := d.writeTranscript(transcript); err != nil {
			return err
		}
	}
	m, err := computeMetrics(ctx, d.sys.DB, "30d", d.clock.Now())
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
	cfg    Config
	sys    *System
	fake   *slackfake.Fake
	clock  *clockwork.FakeClock
	ids    []string
	stderr io.Writer
	dbPath string
	// mail and replies are the customers' ends of email and webhook
	// replies; browser opens the rating links they received. rated maps
	// each ticket a customer rated to how: "link" or "slack".
	mail    *demoMailServer
	replies *demoReplyServer
	browser *http.Client
	rated   map[string]string
	stop    context.CancelFunc
	// ctx is the command's: cancelling it ends every wait.
	ctx context.Context
	// stopped closes when the bot's Run returns, with runErr its error: a
	// bot that stops early ends the demo with its reason, not a timeout.
	stopped chan struct{}
	runErr  error
}

// run plays a day and two after: tickets arrive, the agent decides and
// resolves, follow-ups go out and customers rate.
func (d *demo) run(ctx context.Context, rows []sampleRow) error {
	for _, r := range rows {
		d.clock.Advance(7 * time.Minute)
		id, err := d.arrive(ctx, r)
		if err != nil {
			return fmt.Errorf("ticket %s: %w", r.ID, err)
		}
		if id != "" {
			d.ids = append(d.ids, id)
		}
	}
	for _, id := range d.ids {
		if err := d.waitCard(id, "drafted card", func(t triage.Ticket, blocks string) bool {
			return t.Draft != "" && strings.Contains(blocks, `"approve"`)
		}); err != nil {
			return err
		}
	}
	for i, id := range d.ids {
		d.clock.Advance(11 * time.Minute)
		if err := d.decide(ctx, i, id); err != nil {
			return fmt.Errorf("decide %s: %w", id, err)
		}
	}
	for i, id := range d.ids {
		d.clock.Advance(37 * time.Minute)
		if i%9 == 8 {
			continue // left open: the queue is never empty on a real Monday
		}
		if err := d.resolve(i, id); err != nil {
			return fmt.Errorf("resolve %s: %w", id, err)
		}
	}
	if d.cfg.FollowUp.Enabled {
		d.clock.Advance(d.cfg.FollowUp.After)
		if err := d.followUps(ctx); err != nil {
			return err
		}
	}
	if err := d.mondayThread(ctx); err != nil {
		return err
	}
	return d.settle(ctx)
}

// arrive brings one sample in: Slack samples as a message in the intake
// channel, the others as the webhook and email sources do (store, then
// hand to the pipeline).
func (d *demo) arrive(ctx context.Context, r sampleRow) (string, error) {
	if r.Channel == "slack" {
		user := r.Customer.Slack
		if user == "" {
			user = "U0CUST" + strconv.Itoa(len(d.ids)+100)
		}
		env, err := d.fake.SendMessage(slackfake.UserMessage{Channel: demoIntake, User: user, Text: r.Text})
		if err != nil {
			return "", err
		}
		var ev struct {
			Event struct {
				TS string `json:"ts"`
			} `json:"event"`
		}
		if err := json.Unmarshal(env.Payload, &ev); err != nil || ev.Event.TS == "" {
			return "", fmt.Errorf("read the message's ts from the envelope: %v", err)
		}
		var id string
		err = d.wait("the Slack message stored", func() bool {
			t, err := d.findExternal(ctx, triage.SourceSlack, demoIntake+"/"+ev.Event.TS)
			id = t.ID
			return err == nil
		})
		return id, err
	}
	t, err := d.sys.Triager.Intake(ctx, r.inbound(d.cfg.Thresholds.Currency, d.clock.Now(), d.replies.URL))
	if errors.Is(err, triage.ErrDuplicate) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	d.sys.Pipeline.Classify(t.ID)
	return t.ID, nil
}

// findExternal finds a ticket by source and external ID among today's.
func (d *demo) findExternal(ctx context.Context, src triage.Source, ext string) (triage.Ticket, error) {
	var found triage.Ticket
	err := d.sys.DB.Window(ctx, demoStart.Add(-time.Hour), d.clock.Now().Add(time.Hour), func(t triage.Ticket) error {
		if t.Source == src && t.ExternalID == ext {
			found = t
		}
		return nil
	})
	if err == nil && found.ID == "" {
		err = triage.ErrNotFound
	}
	return found, err
}

// wait polls cond whenever the Slack stand-in records something, and at
// least every 20 ms for changes that happen only in the store.
func (d *demo) wait(what string, cond func() bool) error {
	slow := time.Now().Add(demoSlow)
	for !cond() {
		select {
		case <-d.stopped:
			return fmt.Errorf("demo: the bot stopped while waiting for %s: %v", what, d.runErr)
		case <-d.ctx.Done():
			return fmt.Errorf("demo: stopped while waiting for %s: %w", what, d.ctx.Err())
		default:
		}
		if !slow.IsZero() && time.Now().After(slow) {
			fmt.Fprintf(d.stderr, "demo: still waiting for %s\n", what)
			slow = time.Time{}
		}
		ctx, cancel := context.WithTimeout(d.ctx, 20*time.Millisecond)
		d.fake.Wait(ctx, func() bool { return false })
		cancel()
	}
	return nil
}

// waitCard waits until a ticket and its posted card satisfy cond.
func (d *demo) waitCard(id, what string, cond func(triage.Ticket, string) bool) error {
	return d.wait(what+" of "+id, func() bool {
		t, err := d.sys.DB.Get(context.Background(), id)
		if err != nil || t.Slack.TS == "" {
			return false
		}
		m, ok := d.fake.Message(t.Slack.Channel, t.Slack.TS)
		return ok && cond(t, string(m.Blocks))
	})
}

func (d *demo) ticket(id string) triage.Ticket {
	t, _ := d.sys.DB.Get(context.Background(), id)
	return t
}

// click presses a button on a ticket's card.
func (d *demo) click(id, action, user string) error {
	t := d.ticket(id)
	if err := d.waitCard(id, action+" button", func(_ triage.Ticket, blocks string) bool {
		return strings.Contains(blocks, `"`+action+`"`)
	}); err != nil {
		return err
	}
	t = d.ticket(id)
	_, err := d.fake.Click(slackfake.Click{Channel: t.Slack.Channel, TS: t.Slack.TS, ActionID: action, User: user})
	return err
}

// openModal presses a button that opens a modal and fills the modal in.
func (d *demo) openModal(id, action, user, cb string, values map[string]string) error {
	seen := len(d.fake.Views())
	if err := d.click(id, action, user); err != nil {
		return err
	}
	return d.submit(seen, cb, user, values)
}

// submit fills in the first modal with callback cb opened for user after the
// first seen views.
func (d *demo) submit(seen int, cb, user string, values map[string]string) error {
	var view slackfake.View
	err := d.wait("the "+cb+" modal", func() bool {
		vs := d.fake.Views()
		for i := seen; i < len(vs); i++ {
			if vs[i].CallbackID == cb && vs[i].UserID == user {
				view = vs[i]
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	in := map[string]map[string]slackfake.Input{}
	for k, v := range values {
		in[k] = map[string]slackfake.Input{k: {Value: v}}
	}
	_, err = d.fake.SubmitView(slackfake.Submission{ViewID: view.ID, User: user, Values: in})
	return err
}

func (d *demo) waitState(id string, states ...triage.State) error {
	return d.wait(fmt.Sprintf("ticket %s to be %v", id, states), func() bool {
		return slices.Contains(states, d.ticket(id).State)
	})
}

// decide plays the agent on one ticket: approve, edit, escalate, or be
// refused and hand over to an approver.
func (d *demo) decide(ctx context.Context, i int, id string) error {
	t := d.ticket(id)
	switch {
	case t.NeedsApproval:
		// The agent tries first and is told, privately, who can approve.
		before := len(d.fake.Ephemerals())
		if err := d.click(id, bot.ActionApprove, demoAgent); err != nil {
			return err
		}
		if err := d.wait("the refusal", func() bool { return len(d.fake.Ephemerals()) > before }); err != nil {
			return err
		}
		approver := demoApprover
		if t.Classification.HasFlag(triage.FlagLegal) {
			approver = "U0LEGAL01"
		}
		if !d.cfg.CanApprove(approver, t) {
			approver = demoApprover
		}
		if err := d.openModal(id, bot.ActionEdit, approver, bot.CallbackEdit, map[string]string{
			"draft": t.Draft + " " + agentLine(t, lineHandling),
		}); err != nil {
			return err
		}
	case t.Classification.HasFlag(triage.FlagReputation):
		owner := demoApprover
		if o := d.cfg.Owners["reputation"]; len(o) > 0 && strings.HasPrefix(o[0], "U") {
			owner = o[0]
		}
		if err := d.openModal(id, bot.ActionEscalate, demoAgent, bot.CallbackEscalate, map[string]string{
			"reason": "The customer may post about this publicly.", "owner": owner,
		}); err != nil {
			return err
		}
		return d.waitState(id, triage.StateEscalated)
	case i%4 == 1:
		// The agent corrects the urgency and adds a line to the draft.
		if err := d.openModal(id, bot.ActionEdit, demoAgent, bot.CallbackEdit, map[string]string{
			"draft":   t.Draft + " " + agentLine(t, lineAnythingElse),
			"urgency": string(triage.LevelHigh),
		}); err != nil {
			return err
		}
	default:
		if err := d.click(id, bot.ActionApprove, demoAgent); err != nil {
			return err
		}
	}
	return d.waitState(id, triage.StateReplied)
}

// The lines the scripted agent adds to a draft it edits.
const (
	lineHandling = iota
	lineAnythingElse
)

// agentLines are those lines in each sample language: an agent writes to a
// customer in the customer's language.
var agentLines = map[string][2]string{
	"en": {"I'm handling this personally and will update you within one business day.",
		"Please reply here if anything else comes up."},
	"es": {"Me encargo personalmente de su caso y le daré novedades en un día hábil.",
		"Si surge cualquier otra cosa, responda a este mensaje."},
	"fr": {"Je m'occupe personnellement de votre dossier et reviens vers vous sous un jour ouvré.",
		"N'hésitez pas à répondre à ce message pour toute autre question."},
	"de": {"Ich kümmere mich persönlich darum und melde mich innerhalb eines Werktags.",
		"Antworten Sie gern auf diese Nachricht, falls noch etwas ist."},
}

// agentLine is line n in t's language (its primary subtag), English when
// the demo has no text in it.
func agentLine(t triage.Ticket, n int) string {
	lang, _, _ := strings.Cut(strings.ToLower(t.Classification.Language), "-")
	lines, ok := agentLines[lang]
	if !ok {
		lines = agentLines["en"]
	}
	return lines[n]
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

func (d *demo) resolve(i int, id string) error {
	t := d.ticket(id)
	actor := t.Assignee
	if actor == "" || !strings.HasPrefix(actor, "U") {
		actor = demoAgent
	}
	cause := t.Classification.RootCauseGuess
	if cause == "" {
		cause = rootCauses[t.Classification.Type]
	}
	if i%7 == 3 {
		cause = "other" // a busy agent's catch-all
	}
	method := methods[t.Classification.Type]
	if method == "" {
		method = "information"
	}
	values := map[string]string{"root_cause": cause, "method": method, "note": "Handled in the demo."}
	if method == "refund" && !t.Classification.Amount.IsZero() {
		values["amount"] = fmt.Sprintf("%.2f", float64(t.Classification.Amount.Minor)/100)
	}
	if err := d.openModal(id, bot.ActionResolve, actor, bot.CallbackResolve, values); err != nil {
		return err
	}
	return d.waitState(id, triage.StateResolved)
}

// ratings are the customers' scripted answers to the follow-up; 0 is no
// answer.
var ratings = []int{5, 4, 5, 2, 0, 4, 5, 3, 0, 5, 1, 4}

// followUps lets the follow-ups come due: the scheduler sends them (rating
// buttons in Slack threads, signed links by email and webhook) and the
// customers who received one answer it, by button or by link. A ticket
// with no way back gets no follow-up, so no rating.
func (d *demo) followUps(ctx context.Context) error {
	var due []string
	for _, id := range d.ids {
		if d.ticket(id).State == triage.StateResolved {
			due = append(due, id)
		}
	}
	// The scheduler's scan, each FollowUpPoll of its clock, sends every
	// follow-up due. Time moves on a minute only once the scan has run at
	// the current time, so the script follows the scheduler however slow
	// the machine is.
	if err := d.wait("the follow-ups", func() bool {
		for _, id := range due {
			if d.ticket(id).FollowUpSentAt.IsZero() {
				if !d.sys.Sched.Stats().LastFollowUpScan.Before(d.clock.Now()) {
					d.clock.Advance(time.Minute)
				}
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	if err := d.settle(ctx); err != nil {
		return err
	}
	n := 0
	for _, id := range due {
		t := d.ticket(id)
		if _, _, ok := triage.ReplyRoute(t, d.sys.Triager.Senders); !ok {
			continue
		}
		r := ratings[n%len(ratings)]
		n++
		if r == 0 {
			continue
		}
		how := "link"
		if t.Source == triage.SourceSlack {
			how = "slack"
			if err := d.rateInSlack(t, r); err != nil {
				return err
			}
		} else if err := d.rateByLink(t, r); err != nil {
			return fmt.Errorf("rate %s: %w", id, err)
		}
		if err := d.wait("the rating of "+id, func() bool { return d.ticket(id).Rating == r }); err != nil {
			return err
		}
		d.rated[id] = how
	}
	return nil
}

// rateInSlack clicks rating r on the follow-up in the customer's thread.
func (d *demo) rateInSlack(t triage.Ticket, r int) error {
	channel, thread, _ := triage.ParseSlackReplyTo(t.ReplyTo)
	action := bot.ActionRatePrefix + strconv.Itoa(r)
	var ts string
	if err := d.wait("the follow-up in "+t.ID+"'s thread", func() bool {
		for _, m := range d.fake.Messages(channel) {
			if m.ThreadTS == thread && strings.Contains(string(m.Blocks), `"`+action+`"`) {
				ts = m.TS
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	user := ""
	if c, err := d.sys.DB.Customer(context.Background(), t.CustomerID); err == nil {
		user = c.SlackUserID
	}
	_, err := d.fake.Click(slackfake.Click{Channel: channel, TS: ts, ActionID: action, User: user})
	return err
}

// rateByLink is the customer opening rating r's link in the follow-up that
// reached them: by mail at their address, or at the ticket's reply_url.
func (d *demo) rateByLink(t triage.Ticket, r int) error {
	var link string
	if err := d.wait("the follow-up of "+t.ID+" delivered", func() bool {
		for _, text := range d.delivered(t) {
			if l, ok := ratingLink(text, t.ID, r); ok {
				link = l
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	return clickRating(d.ctx, d.browser, link, r)
}

// delivered is every message that reached t's customer: mail at the
// ticket's customer address, replies POSTed to its reply_url, casebot's
// posts in its Slack thread (text and blocks).
func (d *demo) delivered(t triage.Ticket) []string {
	var out []string
	switch t.Source {
	case triage.SourceSlack:
		channel, thread, _ := triage.ParseSlackReplyTo(t.ReplyTo)
		for _, m := range d.fake.Messages(channel) {
			if m.ThreadTS == thread && m.BotID != "" {
				out = append(out, m.Text+string(m.Blocks))
			}
		}
	case triage.SourceEmail:
		c, err := d.sys.DB.Customer(context.Background(), t.CustomerID)
		if err != nil || c.Email == "" {
			return nil
		}
		for _, m := range d.mail.messages() {
			if slices.Contains(m.To, c.Email) {
				out = append(out, m.Body)
			}
		}
	case triage.SourceWebhook:
		for _, p := range d.replies.received() {
			if p.Reply.TicketID == t.ID {
				out = append(out, p.Reply.Text)
			}
		}
	}
	return out
}

// mondayThread moves time to the next Monday 09:00, when the scheduler
// posts the week's pattern thread to the ops channel.
func (d *demo) mondayThread(ctx context.Context) error {
	loc := d.cfg.Location()
	now := d.clock.Now().In(loc)
	days := (8 - int(now.Weekday())) % 7
	if days == 0 {
		days = 7
	}
	monday := time.Date(now.Year(), now.Month(), now.Day()+days, 9, 0, 30, 0, loc)
	d.clock.Advance(monday.Sub(d.clock.Now()))
	return d.wait("the Monday pattern thread", func() bool {
		for _, m := range d.fake.Messages(d.cfg.Slack.OpsChannel) {
			if len(m.Files) > 0 {
				return true
			}
		}
		return false
	})
}

// settle waits until the outbox is empty: every Slack post made, every
// email and webhook reply delivered.
func (d *demo) settle(ctx context.Context) error {
	return d.wait("the outbox to drain", func() bool {
		chans, err := d.sys.DB.Channels(ctx)
		if err != nil {
			return false
		}
		for _, ch := range chans {
			if ps, err := d.sys.DB.Pending(ctx, ch, 1); err != nil || len(ps) > 0 {
				return false
			}
		}
		return true
	})
}

// channelOrder lists the channels the bot posted to, routed channels first
// in config order.
func (d *demo) channelOrder() []string {
	var out []string
	add := func(ch string) {
		if ch != "" && !slices.Contains(out, ch) && len(d.fake.Messages(ch)) > 0 {
			out = append(out, ch)
		}
	}
	var walk func([]triage.RouteConf)
	walk = func(rs []triage.RouteConf) {
		for _, r := range rs {
			walk(r.Routes)
			add(r.Channel)
		}
	}
	walk(d.cfg.Routes)
	add(d.cfg.Slack.EscalationChannel)
	add(d.cfg.Slack.OpsChannel)
	add(demoIntake)
	return out
}

// print writes each channel's transcript: top-level messages with their
// thread replies, then what only one person saw.
func (d *demo) print(w io.Writer) error {
	for _, ch := range d.channelOrder() {
		msgs := d.fake.Messages(ch)
		var top []slackfake.Message
		replies := map[string][]slackfake.Message{}
		for _, m := range msgs {
			if m.ThreadTS != "" && m.ThreadTS != m.TS {
				replies[m.ThreadTS] = append(replies[m.ThreadTS], m)
			} else {
				top = append(top, m)
			}
		}
		fmt.Fprintf(w, "━━━ #%s: %d message(s) ━━━\n\n", ch, len(msgs))
		for _, m := range top {
			fmt.Fprintln(w, indent(renderMessage(m), "│ "))
			for _, r := range replies[m.TS] {
				fmt.Fprintln(w, indent(renderMessage(r), "   ↳ "))
			}
			fmt.Fprintln(w)
		}
	}
	if eph := d.fake.Ephemerals(); len(eph) > 0 {
		fmt.Fprintf(w, "━━━ only visible to one person: %d message(s) ━━━\n\n", len(eph))
		for _, m := range eph {
			fmt.Fprintf(w, "to %s in #%s:\n%s\n\n", m.User, m.Channel,
				indent(renderMessage(slackfake.Message{Text: m.Text, Blocks: m.Blocks}), "  "))
		}
	}
	return nil
}

// renderMessage renders a recorded message for the terminal: its blocks when
// it has some, its text otherwise, and its files; a person's own message is
// labelled with who wrote it.
func renderMessage(m slackfake.Message) string {
	var out string
	var blocks slack.Blocks
	switch {
	case len(m.Blocks) > 0 && json.Unmarshal(m.Blocks, &blocks) == nil && len(blocks.BlockSet) > 0:
		out = strings.TrimRight(bot.RenderText(blocks.BlockSet), "\n")
	case m.BotID == "" && m.User != "":
		out = "[" + m.User + "] " + m.Text
	default:
		// A plain-text message: show mentions and escapes as Slack would.
		out = strings.TrimRight(bot.RenderText([]slack.Block{slack.NewSectionBlock(
			slack.NewTextBlockObject(slack.MarkdownType, m.Text, false, false), nil, nil)}), "\n")
	}
	for _, f := range m.Files {
		out = strings.TrimSpace(out + "\n📎 file " + f)
	}
	return out
}

// writeTranscript writes every message posted, in every channel, as one
// JSON line with its Block Kit blocks.
func (d *demo) writeTranscript(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create transcript: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, ch := range d.channelOrder() {
		for _, m := range d.fake.Messages(ch) {
			if m.BotID == "" {
				continue
			}
			line := struct {
				Channel  string          `json:"channel"`
				TS       string          `json:"ts"`
				ThreadTS string          `json:"thread_ts,omitempty"`
				Text     string          `json:"text"`
				Blocks   json.RawMessage `json:"blocks,omitempty"`
				Files    []string        `json:"files,omitempty"`
			}{ch, m.TS, m.ThreadTS, m.Text, m.Blocks, m.Files}
			if err := enc.Encode(line); err != nil {
				f.Close()
				return fmt.Errorf("write transcript: %w", err)
			}
		}
	}
	return f.Close()
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

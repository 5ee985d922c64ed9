package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/triage"
)

// Limits of the pattern messages.
const (
	// maxThreadCauses bounds the root causes listed with a button, within
	// a message's 50 blocks.
	maxThreadCauses = 40
	// maxCauseIDs and maxAlertTickets bound the tickets named per pattern.
	maxCauseIDs     = 8
	maxAlertTickets = 20
	// maxPostAttempts bounds the tries of one Monday thread post that Slack
	// rate-limits.
	maxPostAttempts = 5
	// pendingAlertScan is how many pending ops channel posts are read to
	// find an alert enqueued by a run that stopped before marking it sent.
	pendingAlertScan = 500
)

// ActionPatternAlert marks the PostCustomerReply that carries a pattern
// alert to the ops channel: the poster renders it with PatternAlertMessage.
// Its Detail is the alert as JSON (alertDetail).
const ActionPatternAlert = "pattern_alert"

// WeeklyThread is the Monday pattern thread of one week: the parent
// message and its replies in posting order. The chart is uploaded after the
// replies.
type WeeklyThread struct {
	Parent  Message   `json:"parent"`
	Replies []Message `json:"replies"`
}

// mondayOf returns the midnight in loc that starts the Monday-to-Sunday
// week holding t.
func mondayOf(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	back := (int(t.Weekday()) + 6) % 7
	return time.Date(t.Year(), t.Month(), t.Day()-back, 0, 0, 0, 0, loc)
}

// postWeekly posts the pattern thread of the week before the current one,
// Monday to Sunday in the scheduler's Location.
func (s *Scheduler) postWeekly(ctx context.Context) error {
	weekStart := mondayOf(s.clock.Now(), s.loc).AddDate(0, 0, -7)
	var tickets []triage.Ticket
	err := s.store.Window(ctx, weekStart.AddDate(0, 0, -7), weekStart.AddDate(0, 0, 7), func(t triage.Ticket) error {
		tickets = append(tickets, t)
		return nil
	})
	if err != nil {
		return fmt.Errorf("weekly thread: tickets: %w", err)
	}
	r := triage.BuildWeeklyReport(tickets, tickets, weekStart, s.loc)
	if err := s.PostWeeklyThread(ctx, r); err != nil {
		return err
	}
	s.weekly.Add(1)
	return nil
}

// PostWeeklyThread posts the thread of r to the ops channel, message by
// message at ThreadInterval, then uploads the chart into it. A failed
// parent post stops it; a failed reply or chart is logged and the rest
// still goes out. These are not ticket posts, so they do not go through the
// outbox: a thread interrupted by a stop is not resumed.
func (s *Scheduler) PostWeeklyThread(ctx context.Context, r triage.WeeklyReport) error {
	th := WeeklyThreadMessages(r, s.loc)
	channel := s.cfg.OpsChannel
	ts, err := s.postDirect(ctx, channel, "", th.Parent)
	if err != nil {
		return fmt.Errorf("weekly thread of %s: %w", r.WeekStart.Format(time.DateOnly), err)
	}
	var errs []error
	for i, m := range th.Replies {
		if !sleep(ctx, s.cfg.ThreadInterval) {
			return ctx.Err()
		}
		if _, err := s.postDirect(ctx, channel, ts, m); err != nil {
			errs = append(errs, fmt.Errorf("reply %d: %w", i+1, err))
		}
	}
	png, err := WeeklyChart(r)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if !sleep(ctx, s.cfg.ThreadInterval) {
		return ctx.Err()
	}
	week := r.WeekStart.Format(time.DateOnly)
	_, err = s.cfg.API.UploadFileContext(ctx, slack.UploadFileParameters{
		Reader: bytes.NewReader(png), FileSize: len(png), Filename: "casebot-week-" + week + ".png",
		Title: "casebot week of " + week, AltTxt: "Tickets by issue type and day, and the daily median first response time",
		Channel: channel, ThreadTimestamp: ts,
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("chart upload: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("weekly thread of %s: %w", week, err)
	}
	return nil
}

// postDirect posts one message, in a thread when threadTS is set, waiting
// out Slack's rate limits a few times.
func (s *Scheduler) postDirect(ctx context.Context, channel, threadTS string, m Message) (string, error) {
	opts := []slack.MsgOption{
		slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...),
		slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl(),
		slack.MsgOptionParse(false), slack.MsgOptionLinkNames(false),
	}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, ts, err := s.cfg.API.PostMessageContext(cctx, channel, opts...)
		cancel()
		var limited *slack.RateLimitedError
		if errors.As(err, &limited) && attempt < maxPostAttempts {
			if !sleep(ctx, max(limited.RetryAfter, s.cfg.ThreadInterval)) {
				return "", ctx.Err()
			}
			continue
		}
		if err != nil {
			return "", fmt.Errorf("post to %s: %w", channel, err)
		}
		return ts, nil
	}
}

// WeeklyThreadMessages renders the Monday thread of r: the parent with the
// headline numbers, then the top issue types, the recurring root causes
// each with a "Propose SOP update" button, and the metrics against the
// prior week. Times are shown in loc.
func WeeklyThreadMessages(r triage.WeeklyReport, loc *time.Location) WeeklyThread {
	if loc == nil {
		loc = time.UTC
	}
	return WeeklyThread{
		Parent:  weeklyParent(r, loc),
		Replies: []Message{topTypesMessage(r), rootCausesMessage(r), weeklyMetricsMessage(r)},
	}
}

// weekRange is "Mon 2 Mar – Sun 8 Mar 2026".
func weekRange(r triage.WeeklyReport, loc *time.Location) string {
	start := r.WeekStart.In(loc)
	last := r.WeekEnd.In(loc).AddDate(0, 0, -1)
	return start.Format("Mon 2 Jan") + " – " + last.Format("Mon 2 Jan 2006")
}

// signed renders a change with its sign: "+3", "−2", "±0".
func signed(n int) string {
	switch {
	case n > 0:
		return fmt.Sprintf("+%d", n)
	case n < 0:
		return fmt.Sprintf("−%d", -n)
	}
	return "±0"
}

func weeklyParent(r triage.WeeklyReport, loc *time.Location) Message {
	prior := r.PriorMetrics.Received
	head := "📈 Weekly patterns · " + weekRange(r, loc)
	text := fmt.Sprintf("*%d* tickets received (%s vs %d the week before) · *%d* resolved · *%d* escalated · "+
		"first response p50 *%s* (was %s)", r.Received, signed(r.Received-prior), prior, r.Resolved, r.Escalated,
		duration(r.FirstResponseP50), duration(r.PriorMetrics.FirstResponseTime.P50))
	return Message{
		Text: Truncate(head+": "+strings.ReplaceAll(text, "*", ""), MaxMessageText),
		Blocks: []slack.Block{
			slack.NewHeaderBlock(plain(Truncate(head, MaxHeaderText))),
			section(text),
			slack.NewContextBlock("", mrkdwn("Tickets received Monday to Sunday. In the thread: top issue types, "+
				"recurring root causes, the metrics against the week before and a chart.")),
		},
	}
}

func topTypesMessage(r triage.WeeklyReport) Message {
	lines := []string{"*Top issue types*"}
	for _, tc := range r.TopTypes {
		change := signed(tc.Change)
		switch {
		case tc.New:
			change = "new this week"
		case tc.ChangePct != nil && tc.Change != 0:
			pct := fmt.Sprintf("%.0f%%", math.Abs(*tc.ChangePct))
			if *tc.ChangePct < 0 {
				change += ", −" + pct
			} else {
				change += ", +" + pct
			}
		}
		lines = append(lines, fmt.Sprintf("• %s: *%d* (%s; %d the week before)", fit(typeLabel(tc.Type), detailMax),
			tc.Count, change, tc.Prior))
	}
	if len(r.TopTypes) == 0 {
		lines = append(lines, "No classified ticket this week.")
	}
	text := strings.Join(lines, "\n")
	return Message{Text: Truncate(strings.ReplaceAll(text, "*", ""), MaxMessageText), Blocks: []slack.Block{section(text)}}
}

func rootCausesMessage(r triage.WeeklyReport) Message {
	head := fmt.Sprintf("*Recurring root causes* (on %d or more tickets this week)", triage.PatternMin)
	blocks := []slack.Block{section(head)}
	if len(r.RootCauses) == 0 {
		blocks[0] = section(head + "\nNone this week.")
		return Message{Text: "Recurring root causes: none this week", Blocks: blocks}
	}
	for i, rc := range r.RootCauses {
		if i == maxThreadCauses {
			blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("…and %d more",
				len(r.RootCauses)-maxThreadCauses))))
			break
		}
		text := fmt.Sprintf("`%s` · *%d* tickets (%d confirmed at resolution)\n%s", fit(rc.RootCause, detailMax),
			rc.Count, rc.Confirmed, ticketList(rc.TicketIDs, maxCauseIDs))
		blocks = append(blocks, patternSection(text, rc.RootCause, triage.AlertKey(rc.RootCause, r.WeekStart)))
	}
	return Message{Text: fmt.Sprintf("Recurring root causes: %d this week", len(r.RootCauses)), Blocks: blocks}
}

// ticketList renders up to n ticket IDs as code, "…" after.
func ticketList(ids []string, n int) string {
	out := make([]string, 0, min(len(ids), n))
	for _, id := range ids[:min(len(ids), n)] {
		out = append(out, "`"+fit(id, 20)+"`")
	}
	if len(ids) > n {
		out = append(out, fmt.Sprintf("and %d more", len(ids)-n))
	}
	return strings.Join(out, ", ")
}

// metricPair renders this week's figure with the prior week's.
func metricPair(now, before string) string {
	if now == before {
		return now + " (same as the week before)"
	}
	return now + " (was " + before + ")"
}

func weeklyMetricsMessage(r triage.WeeklyReport) Message {
	m, p := r.Metrics, r.PriorMetrics
	pcts := func(x triage.Percentiles) string { return "p50 " + duration(x.P50) + " · p90 " + duration(x.P90) }
	csat := func(c triage.CSAT) string {
		return "mean " + decimal(c.Mean) + " · 4–5: " + percent(c.SatisfiedShare) + " · answered " + percent(c.ResponseRate)
	}
	fields := [][2]string{
		{"Received", metricPair(fmt.Sprint(m.Received), fmt.Sprint(p.Received))},
		{"First response", metricPair(pcts(m.FirstResponseTime), pcts(p.FirstResponseTime))},
		{"Resolution", metricPair(pcts(m.ResolutionTime), pcts(p.ResolutionTime))},
		{"Escalation rate", metricPair(percent(m.EscalationRate), percent(p.EscalationRate))},
		{"AI draft acceptance", metricPair(percent(m.DraftAcceptance), percent(p.DraftAcceptance))},
		{"Human override rate", metricPair(percent(m.HumanOverrideRate), percent(p.HumanOverrideRate))},
		{"Repeat complaints", metricPair(percent(m.RepeatComplaint), percent(p.RepeatComplaint))},
		{"Recovery CSAT", metricPair(csat(m.RecoveryCSAT), csat(p.RecoveryCSAT))},
		{"Root cause coverage", metricPair(percent(m.RootCauseCoverage), percent(p.RootCauseCoverage))},
	}
	objs := make([]*slack.TextBlockObject, 0, len(fields))
	for _, f := range fields {
		objs = append(objs, mrkdwn("*"+f[0]+"*\n"+f[1]))
	}
	return Message{
		Text: fmt.Sprintf("Metrics this week: %d tickets received", m.Received),
		Blocks: []slack.Block{
			section("*Metrics* · this week against the week before"),
			slack.NewSectionBlock(nil, objs, nil),
			slack.NewContextBlock("", mrkdwn("Over the tickets received in each week; — means no data.")),
		},
	}
}

// alertDetail is a pattern alert as its post carries it, with each
// ticket's channel as it was when the alert was raised.
type alertDetail struct {
	Key       string        `json:"key"`
	RootCause string        `json:"root_cause"`
	Start     time.Time     `json:"start"`
	At        time.Time     `json:"at"`
	Tickets   []alertTicket `json:"tickets"`
}

type alertTicket struct {
	ID      string `json:"id"`
	Channel string `json:"channel,omitempty"`
}

// checkPatterns enqueues the pattern alerts due now that were neither sent
// nor waiting in the outbox, and marks each sent.
//
// The outbox and the alert record are separate transactions, so a stop can
// fall between the enqueue and the mark. Two things keep that from posting
// an alert twice. An alert still pending in the outbox is not enqueued
// again, only marked. An alert delivered before the mark was marked by the
// poster (PosterOptions.Alerts) before it left the outbox. The pending
// posts are read before the alert record for this: a post that leaves the
// outbox after the read was marked before it left, so the record read
// after shows it. The window that remains is the poster's own: an alert
// Slack took just before a stop, neither marked nor done, is found again
// only among the ops channel's latest historyLimit messages.
func (s *Scheduler) checkPatterns(ctx context.Context) error {
	now := s.clock.Now()
	tickets, err := s.window(ctx, now, triage.PatternLookback)
	if err != nil {
		return fmt.Errorf("pattern alerts: %w", err)
	}
	pending, err := s.pendingAlerts(ctx)
	if err != nil {
		return fmt.Errorf("pattern alerts: %w", err)
	}
	var errs []error
	alerts := triage.PatternAlerts(tickets, now, func(rc string, start time.Time) bool {
		sent, err := s.store.AlertSent(ctx, triage.AlertKey(rc, start))
		if err != nil {
			// Unknown: skip it this time rather than risk a duplicate.
			errs = append(errs, err)
			return true
		}
		return sent
	})
	if len(alerts) > 0 {
		byID := make(map[string]triage.Ticket, len(tickets))
		for _, t := range tickets {
			byID[t.ID] = t
		}
		for _, a := range alerts {
			if err := s.raise(ctx, a, byID, pending, now); err != nil {
				errs = append(errs, err)
			}
		}
		s.kick()
	}
	s.mu.Lock()
	s.lastAlertScan = now
	s.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pattern alerts: %w", err)
	}
	return nil
}

// raise enqueues one alert unless it is already pending, then marks it
// sent.
func (s *Scheduler) raise(ctx context.Context, a triage.PatternAlert, byID map[string]triage.Ticket,
	pending map[string]bool, now time.Time) error {
	if !pending[a.Key] {
		d := alertDetail{Key: a.Key, RootCause: a.RootCause, Start: a.Start, At: a.At}
		for _, id := range a.TicketIDs {
			t := byID[id]
			d.Tickets = append(d.Tickets, alertTicket{ID: id, Channel: firstOf(t.Slack.Channel, t.Route.Channel)})
		}
		detail, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("alert %s: %w", a.Key, err)
		}
		// The post is about the ticket that made the pattern; the poster
		// needs a ticket to read.
		about := a.TicketIDs[min(triage.PatternMin, len(a.TicketIDs))-1]
		err = s.store.Enqueue(ctx, triage.Post{Kind: triage.PostCustomerReply, TicketID: about,
			Channel: s.cfg.OpsChannel, Action: ActionPatternAlert, Actor: triage.ActorSystem,
			Detail: string(detail), CreatedAt: now})
		if err != nil {
			return fmt.Errorf("enqueue alert %s: %w", a.Key, err)
		}
		s.alerts.Add(1)
		s.log.Info("pattern alert", "root_cause", a.RootCause, "tickets", len(a.TicketIDs))
	}
	if err := s.store.MarkAlertSent(ctx, a.Key, now); err != nil {
		return fmt.Errorf("mark alert %s sent: %w", a.Key, err)
	}
	return nil
}

// pendingAlerts returns the keys of the alerts waiting in the ops
// channel's outbox.
func (s *Scheduler) pendingAlerts(ctx context.Context) (map[string]bool, error) {
	posts, err := s.store.Pending(ctx, s.cfg.OpsChannel, pendingAlertScan)
	if err != nil {
		return nil, fmt.Errorf("pending alerts: %w", err)
	}
	out := map[string]bool{}
	for _, p := range posts {
		if key := alertKeyOf(p); key != "" {
			out[key] = true
		}
	}
	return out, nil
}

// alertKeyOf returns the alert key of a pattern alert post, or "" for any
// other post.
func alertKeyOf(p triage.Post) string {
	var d alertDetail
	if p.Action != ActionPatternAlert || json.Unmarshal([]byte(p.Detail), &d) != nil {
		return ""
	}
	return d.Key
}

// PatternAlertMessage renders a pattern alert post for the ops channel: the
// root cause, each ticket with the channel its card is in, and a "Propose
// SOP update" button. Everything from the post is escaped; channels are
// linked only when they are channel IDs.
func PatternAlertMessage(p triage.Post) Message {
	var d alertDetail
	if err := json.Unmarshal([]byte(p.Detail), &d); err != nil || d.RootCause == "" {
		text := "🔁 Pattern alert (its details could not be read)"
		return Message{Text: text, Blocks: []slack.Block{section(text)}}
	}
	span := int(math.Round(triage.PatternSpan.Hours() / 24))
	head := fmt.Sprintf("🔁 *Pattern alert:* root cause `%s` on %d tickets within %d days", fit(d.RootCause, detailMax),
		len(d.Tickets), span)
	lines := []string{head}
	for i, t := range d.Tickets {
		if i == maxAlertTickets {
			lines = append(lines, fmt.Sprintf("…and %d more", len(d.Tickets)-maxAlertTickets))
			break
		}
		lines = append(lines, "• ticket `"+fit(t.ID, 20)+"` in "+channelRef(t.Channel))
	}
	text := Truncate(strings.Join(lines, "\n"), MaxTextObject)
	return Message{
		Text:   Truncate(fmt.Sprintf("Pattern alert: %s on %d tickets", fit(d.RootCause, detailMax), len(d.Tickets)), MaxMessageText),
		Blocks: []slack.Block{patternSection(text, d.RootCause, d.Key)},
	}
}

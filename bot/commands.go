package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/triage"
)

// Slash command settings.
const (
	// defaultMetricsWindow matches `casebot report`'s default.
	defaultMetricsWindow = "30d"
	// maxPatterns and maxPatternIDs keep the answer within one section.
	maxPatterns   = 20
	maxPatternIDs = 8
)

// patternDays is triage.PatternSpan in days, for the answers' wording.
const patternDays = int(triage.PatternSpan / (24 * time.Hour))

// metricsWindows are the windows `/casebot metrics` accepts.
var metricsWindows = map[string]time.Duration{
	"7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour, "90d": 90 * 24 * time.Hour,
}

// Reply is the answer to a slash command, posted to its response_url for
// the person alone.
type Reply struct {
	Text   string
	Blocks []slack.Block
}

// command answers an acknowledged `/casebot` command through its
// response_url. `new` opens a modal instead.
func (a *App) command(ctx context.Context, cmd slack.SlashCommand) {
	sub, arg := parseCommand(cmd.Text)
	if sub == "new" {
		view := NewTicketModal("", "", "")
		if _, err := a.api.OpenViewContext(ctx, cmd.TriggerID, view); err != nil {
			a.log.Warn("bot: views.open for /casebot new", "err", err)
			a.respond(ctx, cmd.ResponseURL, Reply{Text: "casebot couldn't open the form just now; please try again."})
		}
		return
	}
	a.respond(ctx, cmd.ResponseURL, a.answer(ctx, sub, arg))
}

// parseCommand splits a command's text into its lower-cased subcommand and
// the first argument.
func parseCommand(text string) (sub, arg string) {
	f := strings.Fields(text)
	if len(f) > 0 {
		sub = strings.ToLower(f[0])
	}
	if len(f) > 1 {
		arg = f[1]
	}
	return sub, arg
}

// answer computes the reply to a subcommand other than `new`.
func (a *App) answer(ctx context.Context, sub, arg string) Reply {
	switch sub {
	case "", "help":
		return helpReply("")
	case "metrics":
		window := strings.ToLower(arg)
		if window == "" {
			window = defaultMetricsWindow
		}
		d, ok := metricsWindows[window]
		if !ok {
			return Reply{Text: "Use `/casebot metrics 7d`, `30d` or `90d`."}
		}
		m, err := a.metrics(ctx, window, d)
		if err != nil {
			a.log.Error("bot: metrics", "window", window, "err", err)
			return Reply{Text: "casebot couldn't read the metrics just now; please try again."}
		}
		return MetricsReply(m)
	case "ticket":
		if arg == "" {
			return Reply{Text: "Use `/casebot ticket ID`, for example `/casebot ticket T1`."}
		}
		return a.ticketReply(ctx, arg)
	case "patterns":
		p, err := a.patterns(ctx)
		if err != nil {
			a.log.Error("bot: patterns", "err", err)
			return Reply{Text: "casebot couldn't read the patterns just now; please try again."}
		}
		return a.withSOPs(ctx, PatternsReply(p))
	}
	return helpReply("casebot doesn't know `" + fit(sub, actorMax) + "`.")
}

// respond posts a reply to a response_url, visible to the person alone.
func (a *App) respond(ctx context.Context, url string, r Reply) {
	msg := &slack.WebhookMessage{Text: r.Text, ResponseType: slack.ResponseTypeEphemeral}
	if len(r.Blocks) > 0 {
		msg.Blocks = &slack.Blocks{BlockSet: r.Blocks}
	}
	if err := slack.PostWebhookContext(ctx, url, msg); err != nil {
		a.log.Warn("bot: response_url post failed", "err", err)
	}
}

// helpReply lists the subcommands, after note when there is one.
func helpReply(note string) Reply {
	text := "*casebot* commands:\n" +
		"• `/casebot metrics [7d|30d|90d]`: the service metrics of the window (default 30d)\n" +
		"• `/casebot ticket ID`: one ticket's card\n" +
		"• `/casebot new`: a ticket by hand, for phone, in-store or social cases\n" +
		fmt.Sprintf("• `/casebot patterns`: root causes seen %d or more times in the last %d days\n",
			triage.PatternMin, patternDays) +
		"• `/casebot help`: this list"
	if note != "" {
		text = note + "\n" + text
	}
	return Reply{Text: text, Blocks: []slack.Block{section(text)}}
}

// metrics computes the section 7 metrics over the tickets received in the
// window ending now.
func (a *App) metrics(ctx context.Context, window string, d time.Duration) (triage.Metrics, error) {
	now := a.clock.Now()
	acc := triage.NewMetricsAccumulator(window)
	// The window's end is exclusive; include tickets received this instant.
	err := a.tr.Store.Window(ctx, now.Add(-d), now.Add(time.Nanosecond), func(t triage.Ticket) error {
		acc.Add(t)
		return nil
	})
	if err != nil {
		return triage.Metrics{}, fmt.Errorf("tickets of the last %s: %w", window, err)
	}
	return acc.Result(), nil
}

// MetricsReply renders the metrics as a compact summary: one header and the
// nine figures as section fields.
func MetricsReply(m triage.Metrics) Reply {
	c := m.RecoveryCSAT
	fields := [][2]string{
		{"Received", fmt.Sprint(m.Received)},
		{"First response", "p50 " + duration(m.FirstResponseTime.P50) + " · p90 " + duration(m.FirstResponseTime.P90)},
		{"Resolution", "p50 " + duration(m.ResolutionTime.P50) + " · p90 " + duration(m.ResolutionTime.P90)},
		{"Escalation rate", percent(m.EscalationRate)},
		{"AI draft acceptance", percent(m.DraftAcceptance)},
		{"Human override rate", percent(m.HumanOverrideRate)},
		{"Repeat complaints", percent(m.RepeatComplaint)},
		{"Recovery CSAT", "mean " + decimal(c.Mean) + " · 4–5: " + percent(c.SatisfiedShare) +
			" · answered " + percent(c.ResponseRate)},
		{"Root cause coverage", percent(m.RootCauseCoverage)},
	}
	var objs []*slack.TextBlockObject
	for _, f := range fields {
		objs = append(objs, mrkdwn("*"+f[0]+"*\n"+f[1]))
	}
	window := fit(m.Window, 10)
	return Reply{
		Text: fmt.Sprintf("casebot metrics, last %s: %d tickets received", window, m.Received),
		Blocks: []slack.Block{
			slack.NewHeaderBlock(plain("📊 Metrics · last " + window)),
			slack.NewSectionBlock(nil, objs, nil),
			slack.NewContextBlock("", mrkdwn("Over the tickets received in the window; — means no data yet.")),
		},
	}
}

// duration shows seconds as "45s", "12m", "5h 3m" or "2d 4h"; "—" for none.
func duration(s *float64) string {
	if s == nil {
		return "—"
	}
	d := time.Duration(math.Round(*s)) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

func percent(f *float64) string {
	if f == nil {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", *f*100)
}

func decimal(f *float64) string {
	if f == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f", *f)
}

// ticketReply renders one ticket's card.
func (a *App) ticketReply(ctx context.Context, id string) Reply {
	t, err := a.tr.Store.Get(ctx, id)
	if errors.Is(err, triage.ErrNotFound) {
		return Reply{Text: "There is no ticket `" + fit(id, fieldMax) + "`."}
	}
	if err != nil {
		a.log.Error("bot: ticket", "ticket", id, "err", err)
		return Reply{Text: "casebot couldn't read that ticket just now; please try again."}
	}
	opts := CardOptions{Location: a.loc}
	if c, err := a.customers.Customer(ctx, t.CustomerID); err == nil {
		opts.Customer = c
	}
	msg := CardMessage(t, opts)
	return Reply{Text: msg.Text, Blocks: msg.Blocks}
}

// Pattern is a root cause seen on several tickets.
type Pattern struct {
	RootCause string
	// Tickets are the IDs, oldest first.
	Tickets []string
}

// patterns finds the root causes (triage.RootCauseOf) of triage.PatternMin
// or more tickets received in the last triage.PatternSpan, most frequent
// first: the count and span of the pattern alerts.
func (a *App) patterns(ctx context.Context) ([]Pattern, error) {
	now := a.clock.Now()
	byCause := map[string][]string{}
	err := a.tr.Store.Window(ctx, now.Add(-triage.PatternSpan), now.Add(time.Nanosecond), func(t triage.Ticket) error {
		if rc := triage.RootCauseOf(t); rc != "" {
			byCause[rc] = append(byCause[rc], t.ID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tickets of the last %d days: %w", patternDays, err)
	}
	var out []Pattern
	for rc, ids := range byCause {
		if len(ids) >= triage.PatternMin {
			out = append(out, Pattern{RootCause: rc, Tickets: ids})
		}
	}
	slices.SortFunc(out, func(x, y Pattern) int {
		return cmp.Or(len(y.Tickets)-len(x.Tickets), strings.Compare(x.RootCause, y.RootCause))
	})
	return out, nil
}

// PatternsReply lists the patterns with their counts and tickets, or says
// there are none.
func PatternsReply(ps []Pattern) Reply {
	if len(ps) == 0 {
		text := fmt.Sprintf("No root cause was seen on %d or more tickets in the last %d days.", triage.PatternMin, patternDays)
		return Reply{Text: text, Blocks: []slack.Block{section(text)}}
	}
	var lines []string
	for i, p := range ps {
		if i == maxPatterns {
			lines = append(lines, fmt.Sprintf("…and %d more", len(ps)-maxPatterns))
			break
		}
		ids := make([]string, 0, maxPatternIDs)
		for _, id := range p.Tickets[:min(len(p.Tickets), maxPatternIDs)] {
			ids = append(ids, fit(id, 20))
		}
		more := ""
		if len(p.Tickets) > maxPatternIDs {
			more = ", …"
		}
		lines = append(lines, fmt.Sprintf("• `%s`: %d tickets (%s%s)", fit(p.RootCause, detailMax),
			len(p.Tickets), strings.Join(ids, ", "), more))
	}
	return Reply{
		Text: fmt.Sprintf("%d recurring root causes in the last %d days", len(ps), patternDays),
		Blocks: []slack.Block{
			slack.NewHeaderBlock(plain(fmt.Sprintf("🔁 Patterns · last %d days", patternDays))),
			section(Truncate(strings.Join(lines, "\n"), MaxTextObject)),
		},
	}
}

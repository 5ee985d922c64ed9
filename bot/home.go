package bot

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/triage"
)

// App Home settings.
const (
	homeLookback = 30 * 24 * time.Hour
	homeWeek     = 7 * 24 * time.Hour
	homeMax      = 20
	homeSnippet  = 200
)

// publishHome renders and publishes the App Home of user.
func (a *App) publishHome(ctx context.Context, user string) {
	view, err := a.home(ctx, user)
	if err != nil {
		a.log.Error("bot: app home", "user", user, "err", err)
		return
	}
	if _, err := a.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: view}); err != nil {
		a.log.Warn("bot: views.publish", "user", user, "err", err)
	}
}

// home reads, in one pass over the last 30 days, the viewer's open tickets
// and the week's numbers.
func (a *App) home(ctx context.Context, user string) (slack.HomeTabViewRequest, error) {
	now := a.clock.Now()
	week := triage.NewMetricsAccumulator("7d")
	weekStart := now.Add(-homeWeek)
	var mine []triage.Ticket
	// Window runs oldest first: keep the newest homeMax.
	err := a.tr.Store.Window(ctx, now.Add(-homeLookback), now.Add(time.Nanosecond), func(t triage.Ticket) error {
		if !t.ReceivedAt.Before(weekStart) {
			week.Add(t)
		}
		if t.State.Open() && (t.Assignee == user || slices.Contains(t.Route.Mentions, user)) {
			mine = append(mine, t)
			if len(mine) > homeMax {
				mine = slices.Delete(mine, 0, 1)
			}
		}
		return nil
	})
	if err != nil {
		return slack.HomeTabViewRequest{}, fmt.Errorf("tickets of the last 30 days: %w", err)
	}
	slices.Reverse(mine)
	return HomeView(mine, week.Result(), a.loc), nil
}

// HomeView renders App Home: the week's headline numbers and the viewer's
// open tickets, newest first. Customer text is escaped.
func HomeView(mine []triage.Ticket, week triage.Metrics, loc *time.Location) slack.HomeTabViewRequest {
	if loc == nil {
		loc = time.UTC
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain("This week")),
		slack.NewSectionBlock(nil, []*slack.TextBlockObject{
			mrkdwn(fmt.Sprintf("*Received*\n%d", week.Received)),
			mrkdwn("*Escalation rate*\n" + percent(week.EscalationRate)),
			mrkdwn("*First response p50*\n" + duration(week.FirstResponseTime.P50)),
		}, nil),
		slack.NewDividerBlock(),
		slack.NewHeaderBlock(plain("Your open tickets")),
	}
	if len(mine) == 0 {
		blocks = append(blocks, section("_Nothing is assigned to you or waiting on you._"))
	}
	for _, t := range mine {
		snippet := quote(fit(ticketText(t), homeSnippet))
		if snippet == "" {
			snippet = "_(no text)_"
		}
		blocks = append(blocks, section(fmt.Sprintf("*%s* · `%s` · %s\nReceived %s\n%s",
			headerText(t), fit(t.ID, fieldMax), fit(label(string(t.State)), fieldMax),
			formatTime(t.ReceivedAt, loc), Truncate(snippet, homeSnippet))))
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf(
		"Open tickets of the last 30 days assigned to you or mentioning you, newest first, at most %d.", homeMax))))
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

package slackfake_test

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot/slackfake"
)

// A bot's slack-go client pointed at the fake; the fake records what it
// posted.
func Example() {
	fake := slackfake.New(slackfake.Options{Clock: slackfake.NewManualClock(t0)})
	defer fake.Close()
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()))

	_, ts, err := api.PostMessageContext(context.Background(), "C-QUEUE", slack.MsgOptionText("Ticket T-1: refund", false))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range fake.Messages("C-QUEUE") {
		fmt.Println(m.TS == ts, m.TS, m.Text)
	}
	// Output: true 1700000000.000000 Ticket T-1: refund
}

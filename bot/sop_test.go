package bot

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// sopTickets is the bbolt store's shape in memory: tickets and SOP updates
// in one store.
type sopTickets struct {
	*triagetest.Tickets
	*memSOPs
}

// sopHarness is the Slack app over a store that keeps SOP updates, with a
// weekly root-cause message posted in the ops channel.
type sopHarness struct {
	*appHarness
	sops    *memSOPs
	pattern slackfake.Message
	key     string
}

func newSOPHarness(t *testing.T) *sopHarness {
	t.Helper()
	s := &sopHarness{}
	s.appHarness = newAppHarness(t, harnessOpts{wrap: func(tk *triagetest.Tickets) triage.Tickets {
		s.sops = &memSOPs{clock: triagetest.NewClock(appT0)}
		return sopTickets{tk, s.sops}
	}})
	weekStart := time.Date(2026, 2, 23, 0, 0, 0, 0, time.UTC)
	var ts []triage.Ticket
	for i := range 3 {
		ts = append(ts, triage.Ticket{ID: "CB-00000" + string(rune('1'+i)), ReceivedAt: weekStart.Add(time.Duration(i) * time.Hour),
			Classification: triage.Classification{Type: triage.TypeDelivery, RootCauseGuess: "carrier_delay"}})
	}
	r := triage.BuildWeeklyReport(ts, nil, weekStart, time.UTC)
	msg := rootCausesMessage(r)
	_, ts0, err := s.api.PostMessage(opsChannel, slack.MsgOptionText(msg.Text, false), slack.MsgOptionBlocks(msg.Blocks...))
	if err != nil {
		t.Fatal(err)
	}
	s.pattern, _ = s.fake.Message(opsChannel, ts0)
	s.key = triage.AlertKey("carrier_delay", weekStart)
	return s
}

// click presses a button on a message and waits for the ack.
func (s *sopHarness) press(m slackfake.Message, action, user string) {
	s.t.Helper()
	env, err := s.fake.Click(slackfake.Click{Channel: m.Channel, TS: m.TS, ActionID: action, User: user})
	if err != nil {
		s.t.Fatal(err)
	}
	s.ack(env)
}

// propose proposes an SOP update from the pattern and returns the proposal
// message in its thread.
func (s *sopHarness) propose(text, typ string) slackfake.Message {
	s.t.Helper()
	s.press(s.pattern, ActionProposeSOP, agentUser)
	v := s.modal(1)
	if v.CallbackID != CallbackSOP {
		s.t.Fatalf("modal %q opened", v.CallbackID)
	}
	var meta sopMeta
	if err := json.Unmarshal([]byte(v.PrivateMetadata), &meta); err != nil {
		s.t.Fatal(err)
	}
	if meta != (sopMeta{RootCause: "carrier_delay", Key: s.key, Channel: opsChannel, ThreadTS: s.pattern.TS}) {
		s.t.Errorf("modal metadata %+v", meta)
	}
	values := map[string]map[string]slackfake.Input{blockPolicy: {blockPolicy: {Value: text}}}
	if typ != "" {
		values[blockSOPType] = map[string]slackfake.Input{blockSOPType: {Value: typ}}
	}
	if payload := s.submit(slackfake.Submission{ViewID: v.ID, User: agentUser, Values: values}); len(payload) != 0 {
		s.t.Fatalf("submission answered %s", payload)
	}
	var proposal slackfake.Message
	s.waitFor("the proposal in the pattern's thread", func() bool {
		for _, m := range s.fake.Messages(opsChannel) {
			if m.ThreadTS == s.pattern.TS && strings.Contains(string(m.Blocks), ActionAcceptSOP) {
				proposal = m
				return true
			}
		}
		return false
	})
	return proposal
}

func TestSOPProposeAndAccept(t *testing.T) {
	s := newSOPHarness(t)
	text := "Reship at once when the carrier shows no scan for 5 days."
	proposal := s.propose(text, string(triage.TypeDelivery))
	ups, _ := s.sops.SOPs(t.Context())
	if len(ups) != 1 {
		t.Fatalf("%d SOP updates stored", len(ups))
	}
	u := ups[0]
	if u.RootCause != "carrier_delay" || u.PatternKey != s.key || u.Type != triage.TypeDelivery || u.Text != text ||
		u.Author != agentUser || u.State != triage.SOPProposed {
		t.Errorf("proposal %+v", u)
	}
	if !strings.Contains(shownText(t, proposal), Mention(approverUser)) {
		t.Errorf("proposal does not mention the approvers: %s", proposal.Blocks)
	}

	// An agent who is not an approver cannot accept it.
	s.press(proposal, ActionAcceptSOP, agentUser)
	s.waitFor("the refusal", func() bool { return len(s.ephemeralsTo(agentUser)) == 1 })
	if e := s.ephemeralsTo(agentUser)[0].Text; !strings.Contains(e, "Only") || !strings.Contains(e, Mention(approverUser)) {
		t.Errorf("refusal %q", e)
	}
	if ups, _ := s.sops.SOPs(t.Context()); ups[0].State != triage.SOPProposed {
		t.Fatalf("a non-approver decided it: %+v", ups[0])
	}

	s.press(proposal, ActionAcceptSOP, approverUser)
	s.waitFor("the acceptance", func() bool {
		m, _ := s.fake.Message(proposal.Channel, proposal.TS)
		return m.Updates > 0
	})
	m, _ := s.fake.Message(proposal.Channel, proposal.TS)
	if !strings.Contains(shownText(t, m), "accepted by "+Mention(approverUser)+" as v1") || strings.Contains(string(m.Blocks), ActionAcceptSOP) {
		t.Errorf("decided proposal %s", m.Blocks)
	}
	ups, _ = s.sops.SOPs(t.Context())
	if ups[0].State != triage.SOPAccepted || ups[0].Version != 1 || ups[0].DecidedBy != approverUser {
		t.Errorf("accepted update %+v", ups[0])
	}

	// /casebot patterns lists it, and briefs quote it from now on.
	got := answerTexts(t, s.command("patterns"))
	if !strings.Contains(got, "Accepted SOP updates") || !strings.Contains(got, "`carrier_delay` v1 by "+Mention(agentUser)+" · 2026-03-02") {
		t.Errorf("patterns answer lacks the accepted update:\n%s", got)
	}
	policy := PolicyExcerpts(s.sops, DefaultPolicyChars, nil)
	if got := policy(triage.Ticket{RootCause: "carrier_delay"}); got != "SOP carrier_delay v1: "+text {
		t.Errorf("policy excerpt %q", got)
	}
	if got := policy(triage.Ticket{Classification: triage.Classification{Type: triage.TypeDelivery, RootCauseGuess: "stock_out"}}); !strings.Contains(got, text) {
		t.Errorf("policy excerpt for a delivery ticket %q", got)
	}
	if got := policy(triage.Ticket{RootCause: "double_charge"}); got != "" {
		t.Errorf("policy excerpt for another root cause %q", got)
	}
}

func TestSOPRejectThenAcceptRefused(t *testing.T) {
	s := newSOPHarness(t)
	proposal := s.propose("Ask for a photo first.", "")
	s.press(proposal, ActionRejectSOP, approverUser)
	s.waitFor("the rejection", func() bool {
		m, _ := s.fake.Message(proposal.Channel, proposal.TS)
		return m.Updates > 0
	})
	m, _ := s.fake.Message(proposal.Channel, proposal.TS)
	if !strings.Contains(shownText(t, m), "rejected by "+Mention(approverUser)) {
		t.Errorf("rejected proposal %s", m.Blocks)
	}
	// The buttons are gone; a stale copy of them is refused.
	stale := SOPProposalMessage(triage.SOPUpdate{ID: "SOP-000001", RootCause: "carrier_delay", Author: agentUser, Text: "x"}, nil)
	_, ts, err := s.api.PostMessage(opsChannel, slack.MsgOptionBlocks(stale.Blocks...), slack.MsgOptionText(stale.Text, false))
	if err != nil {
		t.Fatal(err)
	}
	s.press(slackfake.Message{Channel: opsChannel, TS: ts}, ActionAcceptSOP, approverUser)
	s.waitFor("the refusal", func() bool { return len(s.ephemeralsTo(approverUser)) == 1 })
	if e := s.ephemeralsTo(approverUser)[0].Text; !strings.Contains(e, "already decided") {
		t.Errorf("accepting a rejected update answered %q", e)
	}
	if got := answerTexts(t, s.command("patterns")); strings.Contains(got, "Accepted SOP") {
		t.Errorf("a rejected update is listed:\n%s", got)
	}
}

func TestSOPProposalNeedsText(t *testing.T) {
	s := newSOPHarness(t)
	s.press(s.pattern, ActionProposeSOP, agentUser)
	v := s.modal(1)
	payload := s.submit(slackfake.Submission{ViewID: v.ID, User: agentUser,
		Values: map[string]map[string]slackfake.Input{blockPolicy: {blockPolicy: {Value: "   "}}}})
	if !strings.Contains(string(payload), "Write the policy text") {
		t.Errorf("empty proposal answered %s", payload)
	}
	if ups, _ := s.sops.SOPs(t.Context()); len(ups) != 0 {
		t.Errorf("an empty proposal was stored: %+v", ups)
	}
}

func TestSOPMessagesGolden(t *testing.T) {
	decided := time.Date(2026, 3, 9, 15, 4, 0, 0, time.UTC)
	base := triage.SOPUpdate{ID: "SOP-000007", RootCause: "carrier_delay", Type: triage.TypeDelivery,
		Text: "Reship at once when the carrier shows no scan for 5 days.", Author: "U0AGENT01", State: triage.SOPProposed}
	accepted := base
	accepted.State, accepted.Version, accepted.DecidedBy, accepted.DecidedAt = triage.SOPAccepted, 3, "U0LEAD001", decided
	hostile := triage.SOPUpdate{ID: "SOP-<!here>", RootCause: hostileText, Type: "<!channel>", Text: hostileText,
		Author: "<!channel>", State: triage.SOPRejected, DecidedBy: "<@U123>", DecidedAt: decided}
	cases := []struct {
		name string
		msg  Message
		live []string
	}{
		{"sop_proposed", SOPProposalMessage(base, []string{"U0LEAD001", "<!channel>"}), []string{"U0AGENT01", "U0LEAD001"}},
		{"sop_accepted", SOPDecidedMessage(accepted, nil), []string{"U0AGENT01", "U0LEAD001"}},
		{"sop_hostile", SOPDecidedMessage(hostile, nil), nil},
		{"sop_modal", Message{Blocks: SOPModal(hostileText, "{}").Blocks.BlockSet}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateBlocks(tc.msg.Blocks); err != nil {
				t.Fatalf("ValidateBlocks: %v", err)
			}
			got := marshalGolden(t, tc.msg)
			golden(t, filepath.Join("testdata", "weekly_"+tc.name+".golden.json"), got)
			checkLive(t, jsonStrings(t, got), tc.live, nil)
		})
	}
	r := WithAcceptedSOPs(Reply{Text: "patterns"}, []triage.SOPUpdate{base, accepted, hostile}, nil)
	got := answerTexts(t, slackfake.ResponsePost{Text: r.Text, Blocks: mustJSON(t, r.Blocks)})
	if !strings.Contains(got, "`carrier_delay` v3 by <@U0AGENT01> · 2026-03-09") || strings.Contains(got, "SOP-<") {
		t.Errorf("accepted list:\n%s", got)
	}
}

// shownText is the text a message shows, its blocks' texts decoded.
func shownText(t *testing.T, m slackfake.Message) string {
	t.Helper()
	return m.Text + "\n" + strings.Join(renderedTexts(t, m.Blocks), "\n")
}

package bot

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/casebot/casebot/triage"
)

// Action and callback IDs of the SOP flow (SPEC section 6): a pattern's
// "Propose SOP update" button opens the SOP modal; its proposal is posted
// in the pattern's thread with Accept and Reject buttons for an approver.
const (
	// ActionProposeSOP is the button on each pattern; its value is the root
	// cause and its block ID sopBlockPrefix + the pattern's key.
	ActionProposeSOP = "propose_sop"
	// ActionAcceptSOP and ActionRejectSOP decide a proposal; their value is
	// the SOP update's ID.
	ActionAcceptSOP = "accept_sop"
	ActionRejectSOP = "reject_sop"
	// CallbackSOP is the SOP modal.
	CallbackSOP = "sop"
)

// SOP flow settings.
const (
	// DefaultPolicyChars bounds the policy excerpt of a brief.
	DefaultPolicyChars = 1500
	// sopBlockPrefix starts the block ID of a pattern's section; the rest
	// is the pattern's key (triage.AlertKey), kept on the proposal.
	sopBlockPrefix = "sop|"
	blockPolicy    = "policy"
	blockSOPType   = "sop_type"
	// sopTextMax bounds the policy text of one update.
	sopTextMax = 3000
	// sopQuoteMax bounds the text quoted in a proposal message.
	sopQuoteMax = 2500
	// maxAcceptedListed bounds the accepted updates /casebot patterns lists.
	maxAcceptedListed = 20
	// maxMetadata is Slack's limit on a modal's private_metadata.
	maxMetadata = 3000
	// policyTimeout bounds the store read of a brief's policy excerpt.
	policyTimeout = 5 * time.Second
)

// patternSection is a pattern's section with its "Propose SOP update"
// button. A root cause or key too long for the button or block ID leaves
// the button or the key out rather than the pattern.
func patternSection(text, rootCause, key string) slack.Block {
	var acc *slack.Accessory
	if rootCause != "" && utf8.RuneCountInString(rootCause) <= MaxButtonValue {
		acc = slack.NewAccessory(button(ActionProposeSOP, "Propose SOP update", rootCause, slack.StyleDefault))
	}
	var opts []slack.SectionBlockOption
	if id := sopBlockPrefix + key; key != "" && utf8.RuneCountInString(id) <= MaxBlockID {
		opts = append(opts, slack.SectionBlockOptionBlockID(id))
	}
	return slack.NewSectionBlock(mrkdwn(text), nil, acc, opts...)
}

// sopMeta is what the SOP modal carries in its private_metadata: the
// pattern and the thread the proposal is posted in.
type sopMeta struct {
	RootCause string `json:"rc"`
	Key       string `json:"key,omitempty"`
	Channel   string `json:"ch,omitempty"`
	ThreadTS  string `json:"ts,omitempty"`
}

// typeOptions are the issue types an SOP update may also apply to.
func typeOptions() [][2]string {
	out := make([][2]string, 0, len(triage.Types))
	for _, t := range triage.Types {
		out = append(out, [2]string{string(t), typeLabel(t)})
	}
	return out
}

// SOPModal is the "Propose SOP update" form for a root cause: the policy
// text, and optionally an issue type it applies to as well. metadata is
// the modal's private_metadata.
func SOPModal(rootCause, metadata string) slack.ModalViewRequest {
	intro := "*Root cause* `" + fit(rootCause, detailMax) + "`\nWrite the procedure agents follow from now on. " +
		"Once an approver accepts it, the brief of every ticket with this root cause quotes it."
	return modal(CallbackSOP, "Propose SOP update", "Propose", metadata,
		section(intro),
		input(blockPolicy, "Policy text", textInput(blockPolicy,
			"e.g. Reship at once when the carrier shows no scan for 5 days.", true, sopTextMax), false),
		input(blockSOPType, "Also apply to issue type", staticSelect(blockSOPType, typeOptions(), ""), true),
	)
}

// openSOPModal opens the SOP modal for the pattern whose button was
// clicked; the proposal will be posted in that message's thread.
func (a *App) openSOPModal(ctx context.Context, cb slack.InteractionCallback, act *slack.BlockAction) {
	channel := firstOf(cb.Channel.ID, cb.Container.ChannelID)
	m := sopMeta{RootCause: act.Value, Channel: channel,
		ThreadTS: firstOf(cb.Message.ThreadTimestamp, cb.Message.Timestamp, cb.Container.MessageTs)}
	if key, ok := strings.CutPrefix(act.BlockID, sopBlockPrefix); ok {
		m.Key = key
	}
	meta, err := json.Marshal(m)
	if err == nil && len(meta) > maxMetadata {
		m.Key = ""
		meta, err = json.Marshal(m)
	}
	if err != nil || len(meta) > maxMetadata || strings.TrimSpace(m.RootCause) == "" {
		a.tell(ctx, channel, cb.User.ID, "casebot can't propose an update for this pattern.")
		return
	}
	a.openView(ctx, cb.TriggerID, channel, cb.User.ID, SOPModal(m.RootCause, string(meta)))
}

// sopStore returns the store of SOP updates. AppConfig has no field of its
// own for it: the bbolt store that holds the tickets holds the SOP updates
// too, so it is found there (or behind the customer lookup, also the store).
func (a *App) sopStore() (triage.SOPs, bool) {
	if s, ok := a.tr.Store.(triage.SOPs); ok {
		return s, true
	}
	s, ok := a.customers.(triage.SOPs)
	return s, ok
}

// proposeSOP applies the SOP modal: the proposal is stored, then posted in
// the pattern's thread for an approver.
func (s submission) proposeSOP(ctx context.Context) {
	var m sopMeta
	if err := json.Unmarshal([]byte(s.cb.View.PrivateMetadata), &m); err != nil || strings.TrimSpace(m.RootCause) == "" {
		s.reject(ctx, "", map[string]string{blockPolicy: "This form lost its pattern; click Propose SOP update again."})
		return
	}
	st := s.state()
	text := strings.TrimSpace(stateValue(st, blockPolicy))
	typ := triage.Type(stateOption(st, blockSOPType))
	switch {
	case text == "":
		s.reject(ctx, m.Channel, map[string]string{blockPolicy: "Write the policy text."})
		return
	case typ != "" && !typ.Valid():
		s.reject(ctx, m.Channel, map[string]string{blockSOPType: "Choose one of the issue types."})
		return
	}
	sops, ok := s.a.sopStore()
	if !ok {
		s.a.log.Error("bot: SOP proposal without an SOP store")
		s.reject(ctx, m.Channel, map[string]string{blockPolicy: "casebot can't store SOP updates in this setup."})
		return
	}
	u, err := sops.ProposeSOP(ctx, triage.SOPUpdate{RootCause: m.RootCause, PatternKey: m.Key, Type: typ,
		Text: text, Author: s.user()})
	if err != nil {
		msg := "casebot couldn't save the proposal just now; please try again."
		if errors.Is(err, triage.ErrInvalidSOP) {
			msg = "The proposal is incomplete: write the policy text."
		} else {
			s.a.log.Error("bot: propose SOP update", "root_cause", m.RootCause, "err", err)
		}
		s.reject(ctx, m.Channel, map[string]string{blockPolicy: msg})
		return
	}
	s.answer(nil)
	if m.Channel == "" {
		s.a.tell(ctx, "", s.user(), "SOP update `"+fit(u.ID, fieldMax)+"` is saved; an approver can accept it.")
		return
	}
	msg := SOPProposalMessage(u, s.a.tr.Config.Approvers)
	opts := []slack.MsgOption{slack.MsgOptionText(msg.Text, false), slack.MsgOptionBlocks(msg.Blocks...),
		slack.MsgOptionParse(false), slack.MsgOptionDisableLinkUnfurl()}
	if m.ThreadTS != "" {
		opts = append(opts, slack.MsgOptionTS(m.ThreadTS))
	}
	if _, _, err := s.a.api.PostMessageContext(ctx, m.Channel, opts...); err != nil {
		s.a.log.Warn("bot: post SOP proposal", "sop", u.ID, "err", err)
		s.a.tell(ctx, m.Channel, s.user(), "SOP update `"+fit(u.ID, fieldMax)+
			"` is saved, but casebot couldn't post it for approval here; ask an approver to accept it.")
	}
}

// SOPProposalMessage is a proposal in a pattern's thread: who proposed
// what for which root cause, the approvers mentioned, and Accept and Reject
// buttons whose value is the update's ID.
func SOPProposalMessage(u triage.SOPUpdate, approvers []string) Message {
	head := "📝 " + actorRef(u.Author) + " proposed an SOP update for `" + fit(u.RootCause, detailMax) + "`"
	if u.Type != "" {
		head += " (and " + fit(typeLabel(u.Type), detailMax) + " tickets)"
	}
	head += " · `" + fit(u.ID, fieldMax) + "`"
	blocks := []slack.Block{section(Truncate(head+"\n"+quote(fit(u.Text, sopQuoteMax)), MaxTextObject))}
	if who := mentionList(approvers); who != "" {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn("For an approver: "+who)))
	}
	blocks = append(blocks, slack.NewActionBlock("sop_decision",
		button(ActionAcceptSOP, "Accept", u.ID, slack.StylePrimary),
		button(ActionRejectSOP, "Reject", u.ID, slack.StyleDanger)))
	return Message{Text: Truncate("SOP update proposed for "+fit(u.RootCause, detailMax), MaxMessageText), Blocks: blocks}
}

// SOPDecidedMessage replaces a proposal once an approver decided it: who,
// when, and for an accepted update its version. It has no buttons.
func SOPDecidedMessage(u triage.SOPUpdate, loc *time.Location) Message {
	if loc == nil {
		loc = time.UTC
	}
	rc := "`" + fit(u.RootCause, detailMax) + "`"
	head := "❌ SOP update for " + rc + " rejected by " + actorRef(u.DecidedBy)
	if u.State == triage.SOPAccepted {
		head = fmt.Sprintf("✅ SOP update for %s accepted by %s as v%d", rc, actorRef(u.DecidedBy), u.Version)
	}
	head += " · " + formatTime(u.DecidedAt, loc)
	return Message{
		Text: Truncate(strings.ReplaceAll(head, "`", ""), MaxMessageText),
		Blocks: []slack.Block{
			section(Truncate(head+"\n"+quote(fit(u.Text, sopQuoteMax)), MaxTextObject)),
			slack.NewContextBlock("", mrkdwn("Proposed by "+actorRef(u.Author)+" · `"+fit(u.ID, fieldMax)+"`")),
		},
	}
}

// decideSOP applies an Accept or Reject click. Only configured approvers
// decide; the proposal message then shows the decision in place of its
// buttons. Accepting twice keeps the first version.
func (a *App) decideSOP(ctx context.Context, cb slack.InteractionCallback, act *slack.BlockAction, accept bool) {
	user := cb.User.ID
	channel := firstOf(cb.Channel.ID, cb.Container.ChannelID)
	if !slices.Contains(a.tr.Config.Approvers, user) {
		who := mentionList(a.tr.Config.Approvers)
		if who == "" {
			who = "the configured approvers (none are set in casebot.yml)"
		}
		a.tell(ctx, channel, user, "Only "+who+" can accept or reject SOP updates.")
		return
	}
	sops, ok := a.sopStore()
	if !ok {
		a.log.Error("bot: SOP decision without an SOP store")
		a.tell(ctx, channel, user, "casebot can't store SOP updates in this setup.")
		return
	}
	decide, done := sops.RejectSOP, "rejected"
	if accept {
		decide, done = sops.AcceptSOP, "accepted"
	}
	id := act.Value
	u, err := decide(ctx, id, user)
	switch {
	case errors.Is(err, triage.ErrSOPDecided):
		a.tell(ctx, channel, user, "SOP update `"+fit(id, fieldMax)+"` was already decided the other way, so it can't be "+done+" now.")
		return
	case errors.Is(err, triage.ErrNotFound):
		a.tell(ctx, channel, user, "SOP update `"+fit(id, fieldMax)+"` was not found.")
		return
	case err != nil:
		a.log.Error("bot: decide SOP update", "sop", id, "err", err)
		a.tell(ctx, channel, user, "casebot couldn't record that just now. Nothing was changed; please try again.")
		return
	}
	ts := firstOf(cb.Message.Timestamp, cb.Container.MessageTs)
	if channel == "" || ts == "" {
		return
	}
	msg := SOPDecidedMessage(u, a.loc)
	if _, _, _, err := a.api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText(msg.Text, false),
		slack.MsgOptionBlocks(msg.Blocks...), slack.MsgOptionParse(false)); err != nil {
		a.log.Warn("bot: show SOP decision", "sop", id, "err", err)
	}
}

// withSOPs adds the accepted SOP updates to the /casebot patterns answer,
// when the store has them.
func (a *App) withSOPs(ctx context.Context, r Reply) Reply {
	sops, ok := a.sopStore()
	if !ok {
		return r
	}
	ups, err := sops.SOPs(ctx)
	if err != nil {
		a.log.Error("bot: SOP updates", "err", err)
		return r
	}
	return WithAcceptedSOPs(r, ups, a.loc)
}

// WithAcceptedSOPs appends the accepted SOP updates to a reply, the most
// recently accepted first: root cause, version, author and date. A reply
// is unchanged when none is accepted.
func WithAcceptedSOPs(r Reply, ups []triage.SOPUpdate, loc *time.Location) Reply {
	if loc == nil {
		loc = time.UTC
	}
	var accepted []triage.SOPUpdate
	for _, u := range ups {
		if u.State == triage.SOPAccepted {
			accepted = append(accepted, u)
		}
	}
	if len(accepted) == 0 {
		return r
	}
	slices.SortStableFunc(accepted, func(x, y triage.SOPUpdate) int {
		return cmp.Or(y.DecidedAt.Compare(x.DecidedAt), strings.Compare(x.RootCause, y.RootCause))
	})
	lines := []string{"*Accepted SOP updates*"}
	for i, u := range accepted {
		if i == maxAcceptedListed {
			lines = append(lines, fmt.Sprintf("…and %d more", len(accepted)-maxAcceptedListed))
			break
		}
		lines = append(lines, fmt.Sprintf("• `%s` v%d by %s · %s", fit(u.RootCause, detailMax), u.Version,
			actorRef(u.Author), u.DecidedAt.In(loc).Format(time.DateOnly)))
	}
	out := Reply{Text: fmt.Sprintf("%s; %d accepted SOP updates", r.Text, len(accepted)),
		Blocks: slices.Clone(r.Blocks)}
	out.Blocks = append(out.Blocks, section(Truncate(strings.Join(lines, "\n"), MaxTextObject)))
	return out
}

// PolicyExcerpts returns the policy function of triage.PipelineOptions:
// the accepted SOP updates that apply to a ticket (triage.PolicyExcerpt),
// at most maxChars characters, read from sops at each draft so an update is
// used as soon as it is accepted. A failed read gives no excerpt, logged.
func PolicyExcerpts(sops triage.SOPs, maxChars int, log *slog.Logger) func(triage.Ticket) string {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(t triage.Ticket) string {
		ctx, cancel := context.WithTimeout(context.Background(), policyTimeout)
		defer cancel()
		ups, err := sops.SOPs(ctx)
		if err != nil {
			log.Warn("bot: SOP updates for a policy excerpt", "ticket", t.ID, "err", err)
			return ""
		}
		return triage.PolicyExcerpt(ups, t, maxChars)
	}
}

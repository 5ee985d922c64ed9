package triage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Sentinel errors of SOP updates that callers branch on.
var (
	// ErrInvalidSOP is returned when a proposed SOP update lacks its root
	// cause, text or author.
	ErrInvalidSOP = errors.New("invalid SOP update")
	// ErrSOPDecided is returned when an SOP update that was already
	// rejected is accepted, or one already accepted is rejected.
	ErrSOPDecided = errors.New("SOP update already decided")
)

// SOPState is where an SOP update is in its review.
type SOPState string

// The states of an SOP update.
const (
	SOPProposed SOPState = "proposed"
	SOPAccepted SOPState = "accepted"
	SOPRejected SOPState = "rejected"
)

// SOPUpdate is a change to standard operating procedure proposed from a
// pattern of the Monday thread (SPEC section 6). Once accepted it is versioned
// per root cause and quoted in the policy excerpt of briefs from then on.
type SOPUpdate struct {
	ID string `json:"id"`
	// RootCause is the root cause the update is for; PatternKey the pattern
	// alert or weekly pattern it was proposed from, when there was one.
	RootCause  string `json:"root_cause"`
	PatternKey string `json:"pattern_key,omitempty"`
	// Type is the issue type the update applies to as well; empty for any.
	Type Type   `json:"type,omitempty"`
	Text string `json:"text"`
	// Version numbers the accepted updates of one root cause from 1; it is 0
	// until the update is accepted.
	Version int       `json:"version"`
	Author  string    `json:"author"`
	At      time.Time `json:"at"`
	State   SOPState  `json:"state"`
	// DecidedBy and DecidedAt say who accepted or rejected the update, when.
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
}

// Validate checks a proposal, returning an error wrapping ErrInvalidSOP.
func (u SOPUpdate) Validate() error {
	var missing []string
	if strings.TrimSpace(u.RootCause) == "" {
		missing = append(missing, "root cause")
	}
	if strings.TrimSpace(u.Text) == "" {
		missing = append(missing, "text")
	}
	if strings.TrimSpace(u.Author) == "" {
		missing = append(missing, "author")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: no %s", ErrInvalidSOP, strings.Join(missing, ", "))
	}
	return nil
}

// SOPs stores SOP updates.
type SOPs interface {
	// ProposeSOP stores u as a new proposal, assigning its ID, and returns
	// it; a zero At becomes now. An invalid proposal fails with an error
	// wrapping ErrInvalidSOP.
	ProposeSOP(ctx context.Context, u SOPUpdate) (SOPUpdate, error)
	// AcceptSOP accepts the update with the given ID, giving it the next
	// version of its root cause. Accepting an accepted update returns it
	// unchanged (a repeated click does not bump the version); accepting a
	// rejected one fails with ErrSOPDecided; an unknown ID with ErrNotFound.
	AcceptSOP(ctx context.Context, id, by string) (SOPUpdate, error)
	// RejectSOP rejects a proposal, with the same rules as AcceptSOP.
	RejectSOP(ctx context.Context, id, by string) (SOPUpdate, error)
	// SOPs returns every update, oldest first.
	SOPs(ctx context.Context) ([]SOPUpdate, error)
}

// Alerts remembers which pattern alerts were sent, so each is sent once.
type Alerts interface {
	// AlertSent reports whether the alert with the given key (AlertKey) was
	// marked sent.
	AlertSent(ctx context.Context, key string) (bool, error)
	// MarkAlertSent records the alert as sent at the given time; marking it
	// again keeps the first time.
	MarkAlertSent(ctx context.Context, key string, at time.Time) error
}

// PolicyExcerpt returns the accepted SOP updates that apply to t, for the
// policy excerpt of its brief: the latest version of each root cause whose
// updates match t's root cause (RootCauseOf) or t's type. Updates for t's own
// root cause come first, then the rest by root cause. Each is one line
// "SOP <root cause> v<version>: <text>"; lines that do not fit within maxChars
// characters are left out, except that a first line too long on its own is
// cut to maxChars with an ellipsis. Empty when nothing applies or maxChars ≤ 0.
func PolicyExcerpt(updates []SOPUpdate, t Ticket, maxChars int) string {
	if maxChars <= 0 {
		return ""
	}
	rc, typ := RootCauseOf(t), t.Classification.Type
	latest := map[string]SOPUpdate{}
	for _, u := range updates {
		if u.State != SOPAccepted {
			continue
		}
		if cur, ok := latest[u.RootCause]; !ok || u.Version > cur.Version {
			latest[u.RootCause] = u
		}
	}
	var pick []SOPUpdate
	for _, u := range latest {
		if (rc != "" && u.RootCause == rc) || (typ != "" && u.Type == typ) {
			pick = append(pick, u)
		}
	}
	slices.SortFunc(pick, func(a, b SOPUpdate) int {
		if (a.RootCause == rc) != (b.RootCause == rc) {
			if a.RootCause == rc {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.RootCause, b.RootCause)
	})
	var b strings.Builder
	used := 0
	for i, u := range pick {
		line := fmt.Sprintf("SOP %s v%d: %s", u.RootCause, u.Version, strings.Join(strings.Fields(u.Text), " "))
		n := len([]rune(line))
		if i > 0 {
			n++ // the newline before it
		}
		if used+n > maxChars {
			if i == 0 {
				return string([]rune(line)[:maxChars-1]) + "…"
			}
			continue
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(line)
		used += n
	}
	return b.String()
}

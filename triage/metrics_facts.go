package triage

import "time"

// MetricFacts are the facts about one ticket that the metrics of SPEC section
// 7 are computed from, and nothing else. A store keeps them in a compact index
// so that a window's metrics need not decode whole tickets; the definitions
// stay here, in AddFacts, whether the facts come from a ticket or an index.
type MetricFacts struct {
	ReceivedAt time.Time
	// CustomerID and Type group tickets for the repeat complaint rule; an
	// empty CustomerID counts towards no customer.
	CustomerID string
	Type       Type
	// FirstResponse and Resolution are measured from ReceivedAt; each is
	// meaningful only when its flag is set.
	Responded     bool
	FirstResponse time.Duration
	Resolved      bool
	Resolution    time.Duration
	// RootCauseLogged is set when a confirmed root cause is recorded.
	RootCauseLogged bool
	Escalated       bool
	DraftSent       bool
	// DraftRevision is as in Ticket: negative when no model draft was sent.
	DraftRevision float64
	Reviewed      bool
	Overridden    bool
	FollowUpSent  bool
	// Rating is the follow-up rating, 1–5, or 0 when unanswered.
	Rating int
}

// FactsOf extracts the metric facts of t.
func FactsOf(t Ticket) MetricFacts {
	f := MetricFacts{
		ReceivedAt:      t.ReceivedAt,
		CustomerID:      t.CustomerID,
		Type:            t.Classification.Type,
		Responded:       !t.FirstResponseAt.IsZero(),
		Resolved:        !t.ResolvedAt.IsZero(),
		RootCauseLogged: t.RootCause != "",
		Escalated:       t.Escalations > 0,
		DraftSent:       t.DraftSent,
		DraftRevision:   t.DraftRevision,
		Reviewed:        t.Reviewed,
		Overridden:      len(t.Overrides) > 0,
		FollowUpSent:    !t.FollowUpSentAt.IsZero(),
		Rating:          t.Rating,
	}
	if f.Responded {
		f.FirstResponse = t.FirstResponseAt.Sub(t.ReceivedAt)
	}
	if f.Resolved {
		f.Resolution = t.ResolvedAt.Sub(t.ReceivedAt)
	}
	return f
}

// AddFacts counts one ticket received in the window, given by its facts.
func (a *MetricsAccumulator) AddFacts(f MetricFacts) {
	a.received++
	if f.Responded {
		a.firstResponse = append(a.firstResponse, f.FirstResponse.Seconds())
	}
	if f.Resolved {
		a.resolution = append(a.resolution, f.Resolution.Seconds())
		a.resolved++
		if f.RootCauseLogged {
			a.withRootCause++
		}
	}
	if f.Escalated {
		a.escalated++
	}
	if f.DraftSent {
		a.draftsSent++
		if f.DraftRevision >= 0 && f.DraftRevision < AcceptedRevision {
			a.draftsAccepted++
		}
	}
	if f.Reviewed {
		a.reviewed++
		if f.Overridden {
			a.overridden++
		}
	}
	if f.FollowUpSent {
		a.followUps++
		if f.Rating >= 1 && f.Rating <= 5 {
			a.ratings++
			a.ratingSum += f.Rating
			if f.Rating >= 4 {
				a.satisfied++
			}
		}
	}
	if f.CustomerID != "" {
		a.addComplaint(f.CustomerID, f.Type, f.ReceivedAt)
	}
}

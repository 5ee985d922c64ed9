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
	// DraftSent is set when a model's draft was sent (Ticket.DraftSent).
	DraftSent bool
	// DraftRevision is as in Ticket: negative when no model draft was sent.
	DraftRevision float64
	// Reviewed and Overridden are about the model's classification only:
	// a ticket the keyword rules classified counts in neither.
	Reviewed   bool
	Overridden bool
	// FollowUpsSent counts every follow-up sent, across reopens; Ratings
	// the ratings given (1–5), RatingSum their sum and Satisfied those of
	// 4 or 5.
	FollowUpsSent, Ratings, RatingSum, Satisfied int
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
	}
	// ClassifiedBy "model" (Assessment.By): an override of the keyword
	// rules' reading says nothing about the model.
	if t.ClassifiedBy == "model" {
		f.Reviewed, f.Overridden = t.Reviewed, len(t.Overrides) > 0
	}
	followUps := t.FollowUps
	if len(followUps) == 0 && !t.FollowUpSentAt.IsZero() {
		// Recorded before FollowUps existed: the current cycle is all there is.
		followUps = []FollowUp{{SentAt: t.FollowUpSentAt, Rating: t.Rating}}
	}
	for _, fu := range followUps {
		f.FollowUpsSent++
		if fu.Rating >= 1 && fu.Rating <= 5 {
			f.Ratings++
			f.RatingSum += fu.Rating
			if fu.Rating >= 4 {
				f.Satisfied++
			}
		}
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
	a.followUps += f.FollowUpsSent
	a.ratings += f.Ratings
	a.ratingSum += f.RatingSum
	a.satisfied += f.Satisfied
	if f.CustomerID != "" {
		a.addComplaint(f.CustomerID, f.Type, f.ReceivedAt)
	}
}

package triagetest

import (
	"context"
	"slices"
	"sync"

	"github.com/casebot/casebot/triage"
)

// Classifier is a scriptable triage.Classifier. It answers with Func when
// set, else with Err when set, else with Result. Set the fields before the
// classifier is shared; calls are counted safely from any goroutine.
type Classifier struct {
	Result triage.Classification
	Err    error
	// Func, when set, answers instead of Result and Err, e.g. to fail only
	// for some texts or to wait on the context.
	Func func(ctx context.Context, req triage.ClassifyRequest) (triage.Classification, error)

	mu       sync.Mutex
	requests []triage.ClassifyRequest
}

// Classify implements triage.Classifier.
func (c *Classifier) Classify(ctx context.Context, req triage.ClassifyRequest) (triage.Classification, error) {
	c.mu.Lock()
	c.requests = append(c.requests, req)
	c.mu.Unlock()
	if c.Func != nil {
		return c.Func(ctx, req)
	}
	if c.Err != nil {
		return triage.Classification{}, c.Err
	}
	// A fresh Flags slice, so a caller appending to the answer cannot change
	// the next one.
	out := c.Result
	out.Flags = slices.Clone(c.Result.Flags)
	return out, nil
}

// Calls returns how many times Classify was called.
func (c *Classifier) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.requests)
}

// Requests returns every request Classify received, in call order.
func (c *Classifier) Requests() []triage.ClassifyRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requests)
}

// Drafter is a scriptable triage.Drafter. It answers with Func when set,
// else with Err when set, else with Result. Set the fields before the
// drafter is shared; calls are counted safely from any goroutine.
type Drafter struct {
	Result triage.Draft
	Err    error
	// Func, when set, answers instead of Result and Err.
	Func func(ctx context.Context, req triage.DraftRequest) (triage.Draft, error)

	mu       sync.Mutex
	requests []triage.DraftRequest
}

// Draft implements triage.Drafter.
func (d *Drafter) Draft(ctx context.Context, req triage.DraftRequest) (triage.Draft, error) {
	d.mu.Lock()
	d.requests = append(d.requests, req)
	d.mu.Unlock()
	if d.Func != nil {
		return d.Func(ctx, req)
	}
	if d.Err != nil {
		return triage.Draft{}, d.Err
	}
	return d.Result, nil
}

// Calls returns how many times Draft was called.
func (d *Drafter) Calls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.requests)
}

// Requests returns every request Draft received, in call order.
func (d *Drafter) Requests() []triage.DraftRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.requests)
}

package triagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/casebot/casebot/triage"
)

// ErrWriteFailed is what a FailingTickets Update returns while it fails.
var ErrWriteFailed = errors.New("triagetest: write failed: no space left on device")

// FailingTickets wraps a triage.Tickets whose Update fails, as on a full
// disk, until it has failed the number of times it was told to; everything
// else goes to the wrapped store. A failed Update never reaches the wrapped
// store, so nothing of it is written. It is safe for concurrent use.
type FailingTickets struct {
	triage.Tickets

	mu       sync.Mutex
	failures int
	failed   int
}

// NewFailingTickets wraps store so that its next failures Updates fail.
func NewFailingTickets(store triage.Tickets, failures int) *FailingTickets {
	return &FailingTickets{Tickets: store, failures: failures}
}

// Update fails with ErrWriteFailed while failures remain, then writes to the
// wrapped store.
func (s *FailingTickets) Update(ctx context.Context, id string, fn func(*triage.Ticket) (triage.AuditEvent, error)) (triage.Ticket, error) {
	s.mu.Lock()
	if s.failures > 0 {
		s.failures--
		s.failed++
		s.mu.Unlock()
		return triage.Ticket{}, fmt.Errorf("update ticket %s: %w", id, ErrWriteFailed)
	}
	s.mu.Unlock()
	return s.Tickets.Update(ctx, id, fn)
}

// Failed returns how many Updates have failed so far.
func (s *FailingTickets) Failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Timer is one function a Timers holds until the test fires it.
type Timer struct {
	// Delay is the wait the caller asked for.
	Delay time.Duration
	fn    func()
}

// Fire runs the timer's function now.
func (t Timer) Fire() { t.fn() }

// Timers is a fake of time.AfterFunc (triage.PipelineOptions.After): it
// hands each scheduled function to the test, which fires it when it likes,
// so retries run without waiting on the wall clock. It holds up to 1024
// unfired timers; After blocks beyond that.
type Timers struct {
	ch chan Timer
}

// NewTimers returns a Timers holding nothing.
func NewTimers() *Timers { return &Timers{ch: make(chan Timer, 1024)} }

// After records f to run after d, when the test fires it.
func (t *Timers) After(d time.Duration, f func()) { t.ch <- Timer{Delay: d, fn: f} }

// Next waits until a function is scheduled and returns its timer, unfired,
// or ctx's error.
func (t *Timers) Next(ctx context.Context) (Timer, error) {
	select {
	case tm := <-t.ch:
		return tm, nil
	case <-ctx.Done():
		return Timer{}, fmt.Errorf("waiting for a timer: %w", context.Cause(ctx))
	}
}

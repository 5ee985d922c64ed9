package triage

import (
	"context"
	"time"
)

// ClassifyRequest is what a classifier sees of a ticket.
type ClassifyRequest struct {
	Text     string
	Channel  string
	Customer Customer
	// History is the customer's earlier tickets, newest first, for context.
	History []Ticket
}

// Classifier reads a customer message. Implementations: the built-in
// KeywordClassifier and the Ollama-backed one in package prompts.
type Classifier interface {
	Classify(ctx context.Context, req ClassifyRequest) (Classification, error)
}

// DraftRequest is what a drafter sees of a ticket.
type DraftRequest struct {
	Ticket   Ticket
	Customer Customer
	History  []Ticket
	// Policy is the excerpt of policy and accepted SOP updates that applies.
	Policy string
}

// Draft is the brief for the agent and the reply proposed to the customer.
type Draft struct {
	Brief string `json:"brief"`
	Reply string `json:"reply"`
}

// Drafter writes the brief and draft reply of a ticket.
type Drafter interface {
	Draft(ctx context.Context, req DraftRequest) (Draft, error)
}

// Tickets is the ticket store the domain needs.
type Tickets interface {
	// Create stores a new ticket (assigning its ID) with its audit event in
	// one transaction. A ticket whose source and external ID are already
	// stored is not stored again: the error wraps ErrDuplicate and the
	// returned ticket is the existing one.
	Create(ctx context.Context, t *Ticket, customer Customer) (Ticket, error)
	// Get returns one ticket or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (Ticket, error)
	// Update applies fn to the stored ticket and writes it with the audit
	// event fn returns, in one transaction.
	Update(ctx context.Context, id string, fn func(*Ticket) (AuditEvent, error)) (Ticket, error)
	// Customer returns one customer, merged across sources, or an error
	// wrapping ErrNotFound.
	Customer(ctx context.Context, id string) (Customer, error)
	// CustomerTickets returns a customer's tickets received at or after since,
	// newest first.
	CustomerTickets(ctx context.Context, customerID string, since time.Time) ([]Ticket, error)
	// Window calls fn for each ticket received in [from, to), oldest first.
	Window(ctx context.Context, from, to time.Time, fn func(Ticket) error) error
}

// Notifier tells people about tickets: posts cards, mentions owners.
type Notifier interface {
	// Notify is called after a ticket is triaged, routed and stored.
	Notify(ctx context.Context, t Ticket) error
}

// Clock tells the time; tests and the demo inject a fake one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

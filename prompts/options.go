// Package prompts is casebot's Ollama adapter: the embedded prompt templates,
// the model-backed triage.Classifier and triage.Drafter, strict parsing of
// what the model answers, and a priority queue that keeps classification
// ahead of drafting (SPEC sections 3.2, 3.4 and 3.5).
//
// Every failure is reported as one of the sentinel errors below so that the
// caller can fall back to the keyword classifier and mark the ticket "rules
// only"; nothing here decides routing or escalation.
package prompts

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/casebot/casebot/triage"
)

// Sentinel errors that callers branch on. Each also has a Kind method giving
// the short, non-sensitive reason a ticket card shows ("rules only: model
// unavailable").
var (
	// ErrUnavailable means Ollama could not be reached, answered with a 5xx
	// or 429, dropped the connection, or did not answer within the timeout.
	ErrUnavailable error = &modelError{"ollama unavailable", "unavailable"}
	// ErrModelNotFound means the configured model is not on the server.
	ErrModelNotFound error = &modelError{"ollama model not found", "model not found"}
	// ErrInvalidAnswer means the model answered something that is not exactly
	// one valid object of the requested schema.
	ErrInvalidAnswer error = &modelError{"invalid model answer", "invalid answer"}
	// ErrClosed is returned for jobs submitted to, queued in or running in a
	// Queue that is closed.
	ErrClosed error = &modelError{"prompts queue closed", "shutting down"}
)

// errTimeout is wrapped ahead of ErrUnavailable when an attempt runs out of
// time, so that its kind, "timeout", is the one a card shows.
var errTimeout error = &modelError{"no answer in time", "timeout"}

// modelError is a sentinel with a short kind for cards and audit logs.
type modelError struct{ msg, kind string }

func (e *modelError) Error() string { return e.msg }

// Kind returns the short reason shown on a ticket card.
func (e *modelError) Kind() string { return e.kind }

// Options configures the Ollama client and its queue. New fills every zero
// field with the default documented on it.
type Options struct {
	// Host is the Ollama base URL; default http://127.0.0.1:11434. A bare
	// host:port gets the http scheme, as OLLAMA_HOST does.
	Host string
	// Model is the model tag; default qwen2.5:3b (small, multilingual, and
	// reliable with schema-constrained output).
	Model string
	// Timeout bounds one classification attempt and the start-up check;
	// default 30s (a 3B model on CPU, including a cold load).
	Timeout time.Duration
	// DraftTimeout bounds one brief-and-draft attempt; default 2m.
	DraftTimeout time.Duration
	// KeepAlive is how long Ollama keeps the model loaded after a call;
	// default 30m, so that tickets arriving minutes apart do not pay a load.
	KeepAlive time.Duration
	// NumCtx is the context window of both calls; default 4096. One value
	// for both, because Ollama reloads the model when num_ctx changes.
	NumCtx int
	// Seed makes answers reproducible; 0 is a valid fixed seed.
	Seed int
	// Parallel is how many requests the Queue keeps in flight; default 1,
	// matching OLLAMA_NUM_PARALLEL's default of 1 in Ollama v0.17 (older
	// releases chose 1 or 4 by memory). Set it to the server's value.
	Parallel int
	// Retries is how many more attempts follow a failed one (unavailable or
	// invalid answer); 0 means the default 1, negative means none.
	Retries int
	// Backoff is the first retry delay, doubled per retry with jitter and
	// capped at 10s; default 500ms.
	Backoff time.Duration
	// RootCauses is the taxonomy root_cause_guess must come from; default
	// triage.DefaultRootCauses.
	RootCauses []string
	// Languages are the languages customers usually write in, named in the
	// prompt as a hint; default those of triage.DefaultConfig.
	Languages []string
}

// maxBackoff caps the retry delay.
const maxBackoff = 10 * time.Second

func (o Options) withDefaults() Options {
	if o.Host == "" {
		o.Host = "http://127.0.0.1:11434"
	}
	if o.Model == "" {
		o.Model = "qwen2.5:3b"
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.DraftTimeout == 0 {
		o.DraftTimeout = 2 * time.Minute
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 30 * time.Minute
	}
	if o.NumCtx == 0 {
		o.NumCtx = 4096
	}
	if o.Parallel == 0 {
		o.Parallel = 1
	}
	switch {
	case o.Retries == 0:
		o.Retries = 1
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Backoff == 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if len(o.RootCauses) == 0 {
		o.RootCauses = triage.DefaultRootCauses
	}
	if len(o.Languages) == 0 {
		o.Languages = triage.DefaultConfig().Languages
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.Timeout < 0 || o.DraftTimeout < 0 || o.Backoff < 0 {
		errs = append(errs, errors.New("timeouts and backoff must not be negative"))
	}
	if o.Parallel < 1 {
		errs = append(errs, fmt.Errorf("parallel %d must be at least 1", o.Parallel))
	}
	if o.NumCtx < 512 {
		errs = append(errs, fmt.Errorf("num_ctx %d is below 512", o.NumCtx))
	}
	for _, rc := range o.RootCauses {
		if rc == "" || strings.TrimSpace(rc) != rc {
			errs = append(errs, fmt.Errorf("root cause %q is empty or padded", rc))
		}
	}
	return errors.Join(errs...)
}

// baseURL parses Host, accepting a bare host:port as OLLAMA_HOST does.
func baseURL(host string) (*url.URL, error) {
	if !strings.Contains(host, "://") {
		host = "http://" + host
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("ollama host %q: %w", host, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("ollama host %q: want http(s)://host:port", host)
	}
	return u, nil
}

package prompts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/casebot/casebot/triage"
)

// Client is the Ollama-backed classifier and drafter. Its Classify and Draft
// call the server directly, with retries; a Queue puts the same calls behind
// a priority queue. Safe for concurrent use.
type Client struct {
	opts      Options
	host      string
	api       *api.Client
	system    string          // classification system prompt, rendered once
	schema    json.RawMessage // classification format
	keepAlive *api.Duration
}

var (
	_ triage.Classifier = (*Client)(nil)
	_ triage.Drafter    = (*Client)(nil)
)

// New returns a client for the Ollama server and model in opts, with its own
// http.Client (the library's default has no timeout). It does not contact
// the server; call Check at start-up.
func New(opts Options) (*Client, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("prompts options: %w", err)
	}
	base, err := baseURL(opts.Host)
	if err != nil {
		return nil, err
	}
	system, err := classifySystem(opts)
	if err != nil {
		return nil, err
	}
	schema, err := classifySchema(opts.RootCauses)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	transport.TLSHandshakeTimeout = 5 * time.Second
	hc := &http.Client{
		Transport: truncationTransport{transport},
		// A backstop only: each call has its own, shorter context deadline.
		Timeout: max(opts.Timeout, opts.DraftTimeout) + 10*time.Second,
	}
	return &Client{
		opts:      opts,
		host:      base.Redacted(),
		api:       api.NewClient(base, hc),
		system:    system,
		schema:    schema,
		keepAlive: &api.Duration{Duration: opts.KeepAlive},
	}, nil
}

// Check verifies at start-up that the configured model is on the server
// (POST /api/show). A missing model gives an error wrapping ErrModelNotFound
// that says which `ollama pull` to run; an unreachable server gives one
// wrapping ErrUnavailable.
func (c *Client) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	_, err := c.api.Show(ctx, &api.ShowRequest{Model: c.opts.Model})
	if err == nil {
		return nil
	}
	var se api.StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: model %q is not on the Ollama server at %s; run: ollama pull %s",
			ErrModelNotFound, c.opts.Model, c.host, c.opts.Model)
	}
	if unavailable(err) {
		return fmt.Errorf("%w: Ollama at %s: %w", ErrUnavailable, c.host, err)
	}
	return fmt.Errorf("check model %q at %s: %w", c.opts.Model, c.host, err)
}

// ClassifyPromptSize renders the classification prompt for text and returns
// its size in bytes and a token estimate (bytes/4), for budgets and logs.
func (c *Client) ClassifyPromptSize(req triage.ClassifyRequest) (bytes, tokens int, err error) {
	user, err := classifyUser(req)
	if err != nil {
		return 0, 0, err
	}
	bytes, tokens = prompt{System: c.system, User: user}.size()
	return bytes, tokens, nil
}

// runner runs one attempt: directly, or through a Queue at the job's
// priority.
type runner func(ctx context.Context, kind jobKind, attempt func(context.Context) error) error

func direct(ctx context.Context, _ jobKind, attempt func(context.Context) error) error {
	return attempt(ctx)
}

// Classify asks the model to classify req. Errors wrap ErrUnavailable,
// ErrModelNotFound or ErrInvalidAnswer (after the configured retries), or
// the context's error; the caller then uses the keyword classifier.
func (c *Client) Classify(ctx context.Context, req triage.ClassifyRequest) (triage.Classification, error) {
	return c.classify(ctx, req, direct)
}

// Draft asks the model for the brief and draft reply of a ticket, with the
// same errors as Classify.
func (c *Client) Draft(ctx context.Context, req triage.DraftRequest) (triage.Draft, error) {
	return c.draft(ctx, req, direct)
}

func (c *Client) classify(ctx context.Context, req triage.ClassifyRequest, run runner) (triage.Classification, error) {
	user, err := classifyUser(req)
	if err != nil {
		return triage.Classification{}, err
	}
	chat := c.chatRequest(prompt{System: c.system, User: user}, c.schema, map[string]any{
		"temperature": 0, "num_predict": classifyPredict,
	})
	var out triage.Classification
	err = c.retry(ctx, func(ctx context.Context) error {
		return run(ctx, kindClassify, func(ctx context.Context) error {
			content, err := c.chat(ctx, c.opts.Timeout, chat)
			if err != nil {
				return err
			}
			out, err = parseClassification(content, c.opts.RootCauses)
			return err
		})
	})
	if err != nil {
		return triage.Classification{}, fmt.Errorf("classify with %s: %w", c.opts.Model, err)
	}
	return out, nil
}

func (c *Client) draft(ctx context.Context, req triage.DraftRequest, run runner) (triage.Draft, error) {
	p, err := draftPrompt(req)
	if err != nil {
		return triage.Draft{}, err
	}
	// A little temperature reads better in prose; the seed still makes it
	// reproducible.
	chat := c.chatRequest(p, draftSchema, map[string]any{"temperature": 0.3, "num_predict": draftPredict})
	var out triage.Draft
	err = c.retry(ctx, func(ctx context.Context) error {
		return run(ctx, kindDraft, func(ctx context.Context) error {
			content, err := c.chat(ctx, c.opts.DraftTimeout, chat)
			if err != nil {
				return err
			}
			out, err = parseDraft(content)
			return err
		})
	})
	if err != nil {
		return triage.Draft{}, fmt.Errorf("draft ticket %s with %s: %w", req.Ticket.ID, c.opts.Model, err)
	}
	return out, nil
}

func (c *Client) chatRequest(p prompt, format json.RawMessage, options map[string]any) *api.ChatRequest {
	stream := false
	options["seed"] = c.opts.Seed
	options["num_ctx"] = c.opts.NumCtx
	return &api.ChatRequest{
		Model: c.opts.Model,
		Messages: []api.Message{
			{Role: "system", Content: p.System},
			{Role: "user", Content: p.User},
		},
		Stream:    &stream,
		Format:    format,
		KeepAlive: c.keepAlive,
		Options:   options,
		Think:     &api.ThinkValue{Value: false},
	}
}

// errAttemptTimeout is the cause of an attempt's own deadline, told apart
// from the caller's cancellation.
var errAttemptTimeout = errors.New("attempt timed out")

// chat makes one call and returns the answer's content, or an error wrapping
// one of the sentinels (or the cause of ctx's cancellation).
func (c *Client) chat(ctx context.Context, timeout time.Duration, req *api.ChatRequest) (string, error) {
	actx, cancel := context.WithTimeoutCause(ctx, timeout, errAttemptTimeout)
	defer cancel()
	var trunc truncation
	actx = context.WithValue(actx, truncationKey{}, &trunc)
	var (
		content string
		got     bool
	)
	err := c.api.Chat(actx, req, func(r api.ChatResponse) error {
		content += r.Message.Content
		got = true
		return nil
	})
	if err == nil && trunc.err == nil && got {
		return content, nil
	}
	switch {
	case ctx.Err() != nil:
		return "", context.Cause(ctx)
	case context.Cause(actx) == errAttemptTimeout:
		return "", fmt.Errorf("%w within %s: %w", errTimeout, timeout, ErrUnavailable)
	case err != nil:
		return "", c.mapError(err, trunc.err)
	case trunc.err != nil:
		return "", fmt.Errorf("%w: response cut off: %w", ErrUnavailable, trunc.err)
	}
	return "", fmt.Errorf("%w: empty response", ErrInvalidAnswer)
}

// mapError sorts a failed call into the sentinels. The library reports a
// response body it cannot parse as a plain error holding the body, so a body
// cut off in transit is told apart by the truncation the transport saw.
func (c *Client) mapError(err, truncated error) error {
	var se api.StatusError
	switch {
	case errors.As(err, &se) && se.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %q on %s: %s; run: ollama pull %s", ErrModelNotFound, c.opts.Model, c.host, se.ErrorMessage, c.opts.Model)
	case unavailable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.As(err, &se):
		return fmt.Errorf("ollama rejected the request: %w", err)
	case truncated != nil:
		return fmt.Errorf("%w: response cut off: %w", ErrUnavailable, truncated)
	}
	return fmt.Errorf("%w: malformed response: %w", ErrInvalidAnswer, err)
}

// unavailable reports whether err means the server is down, overloaded or
// unreachable: a transport error, a 5xx, or 429.
func unavailable(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.StatusCode >= 500 || se.StatusCode == http.StatusTooManyRequests
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// retryable reports whether another attempt may succeed.
func retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidAnswer)
}

// retry runs attempt once and up to Retries more times while it fails with a
// retryable error, sleeping an exponential back-off with jitter between
// attempts. It stops early when ctx is done.
func (c *Client) retry(ctx context.Context, attempt func(context.Context) error) error {
	for i := 0; ; i++ {
		err := attempt(ctx)
		if err == nil || !retryable(err) || i >= c.opts.Retries {
			return err
		}
		t := time.NewTimer(backoff(c.opts.Backoff, i))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retry abandoned: %w)", err, context.Cause(ctx))
		}
	}
}

// backoff returns the delay before retry n (0-based): base·2ⁿ capped at
// maxBackoff, of which a random half is jitter so that callers failing
// together do not retry together.
func backoff(base time.Duration, n int) time.Duration {
	d := base << min(n, 16)
	if d <= 0 || d > maxBackoff {
		d = maxBackoff
	}
	half := d / 2
	return half + rand.N(half+1)
}

// truncation records a response body that ended in an error rather than at
// its end; the ollama client ignores read errors after the first bytes.
type truncation struct{ err error }

type truncationKey struct{}

// truncationTransport wraps response bodies so that a read error (a dropped
// connection, a short body) is recorded in the request's truncation.
type truncationTransport struct{ next http.RoundTripper }

func (t truncationTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if tr, ok := req.Context().Value(truncationKey{}).(*truncation); ok {
		resp.Body = &recordingBody{ReadCloser: resp.Body, trunc: tr}
	}
	return resp, nil
}

type recordingBody struct {
	io.ReadCloser
	trunc *truncation
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.trunc.err == nil {
		b.trunc.err = err
	}
	return n, err
}

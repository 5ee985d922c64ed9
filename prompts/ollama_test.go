package prompts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/casebot/casebot/prompts/ollamafake"
	"github.com/casebot/casebot/triage"
)

const testModel = "casebot-test:1b"

const validDraft = `{"brief":"Lid shattered in transit; second contact this month.","reply":"Sorry about the lid. Could you send a photo?"}`

// newFake starts a stand-in holding testModel and a client for it with fast
// back-off, so that retries do not slow the tests.
func newFake(t testing.TB, o Options) (*ollamafake.Server, *Client) {
	t.Helper()
	fake := ollamafake.New(testModel)
	t.Cleanup(fake.Close)
	o.Host = fake.URL
	if o.Model == "" {
		o.Model = testModel
	}
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	return fake, mustNew(t, o)
}

func isDraft(req api.ChatRequest) bool { return bytes.Contains(req.Format, []byte(`"brief"`)) }

var classifyReq = triage.ClassifyRequest{Text: sampleText, Channel: "email", History: history}

// Every failure mode of the stand-in gives the right sentinel after the
// configured number of attempts.
func TestClassifyFailureModes(t *testing.T) {
	half := ollamafake.Reply{Content: validAnswer, HalfBody: true}
	tests := []struct {
		name      string
		opts      Options
		replies   []ollamafake.Reply
		want      error // nil: success
		wantCalls int
	}{
		{"valid", Options{}, []ollamafake.Reply{{Content: validAnswer}}, nil, 1},
		{"slow past timeout", Options{Timeout: 300 * time.Millisecond}, []ollamafake.Reply{{Content: validAnswer, Latency: time.Minute}}, ErrUnavailable, 2},
		{"500", Options{}, []ollamafake.Reply{{Status: 500, Error: "runner crashed"}}, ErrUnavailable, 2},
		{"503 busy", Options{}, []ollamafake.Reply{{Status: 503, Error: "server busy, please try again"}}, ErrUnavailable, 2},
		{"429", Options{}, []ollamafake.Reply{{Status: 429, Error: "too many requests"}}, ErrUnavailable, 2},
		{"404 model", Options{}, []ollamafake.Reply{{Status: 404, Error: `model "x" not found, try pulling it first`}}, ErrModelNotFound, 1},
		{"unknown model", Options{Model: "missing:7b"}, []ollamafake.Reply{{Content: validAnswer}}, ErrModelNotFound, 1},
		{"invalid JSON body", Options{}, []ollamafake.Reply{{Body: "<html>502 Bad Gateway</html>"}}, ErrInvalidAnswer, 2},
		{"half a body", Options{}, []ollamafake.Reply{half}, ErrUnavailable, 2},
		{"schema-invalid answer", Options{}, []ollamafake.Reply{{Content: strings.Replace(validAnswer, `"high"`, `"critical"`, 1)}}, ErrInvalidAnswer, 2},
		{"unknown fields", Options{}, []ollamafake.Reply{{Content: strings.TrimSuffix(validAnswer, "}") + `,"approve_refund":true}`}}, ErrInvalidAnswer, 2},
		{"wrapped in prose", Options{}, []ollamafake.Reply{{Content: "Sure! Here is the classification:\n" + validAnswer}}, ErrInvalidAnswer, 2},
		{"markdown fence", Options{}, []ollamafake.Reply{{Content: "```json\n" + validAnswer + "\n```"}}, ErrInvalidAnswer, 2},
		{"empty content", Options{}, []ollamafake.Reply{{Content: ""}}, ErrInvalidAnswer, 2},
		{"root cause outside taxonomy", Options{RootCauses: []string{"carrier_delay"}}, []ollamafake.Reply{{Content: validAnswer}}, ErrInvalidAnswer, 2},
		{"recovers on retry", Options{}, []ollamafake.Reply{{Content: "nonsense"}, {Content: validAnswer}}, nil, 2},
		{"recovers after half a body", Options{}, []ollamafake.Reply{half, {Content: validAnswer}}, nil, 2},
		{"three retries", Options{Retries: 3}, []ollamafake.Reply{{Status: 503}}, ErrUnavailable, 4},
		{"no retries", Options{Retries: -1}, []ollamafake.Reply{{Status: 503}}, ErrUnavailable, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, c := newFake(t, tt.opts)
			fake.OnChat(ollamafake.Sequence(tt.replies...))
			got, err := c.Classify(context.Background(), classifyReq)
			if calls := fake.Count("/api/chat"); calls != tt.wantCalls {
				t.Errorf("%d chat requests, want %d", calls, tt.wantCalls)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if err := got.Validate(); err != nil || got.Type != triage.TypeProductDefect {
					t.Errorf("classification %+v (%v)", got, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrUnavailable, ErrModelNotFound, ErrInvalidAnswer} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("err = %v also wraps %v", err, other)
				}
			}
		})
	}
}

// A request Ollama rejects (400) is not retried and is none of the
// sentinels: retrying cannot help and the caller still falls back.
func TestClassifyRejectedRequest(t *testing.T) {
	fake, c := newFake(t, Options{})
	fake.OnChat(ollamafake.Sequence(ollamafake.Reply{Status: 400, Error: "invalid format"}))
	_, err := c.Classify(context.Background(), classifyReq)
	if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidAnswer) || errors.Is(err, ErrModelNotFound) {
		t.Fatalf("err = %v, want a plain rejection", err)
	}
	if n := fake.Count("/api/chat"); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestClassifyUnreachable(t *testing.T) {
	fake, c := newFake(t, Options{})
	fake.Close()
	_, err := c.Classify(context.Background(), classifyReq)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// The caller's cancellation ends the call at once and is not retried.
func TestClassifyCallerCancelled(t *testing.T) {
	fake, c := newFake(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	fake.OnChat(func(api.ChatRequest) ollamafake.Reply {
		cancel()
		return ollamafake.Reply{Content: validAnswer, Latency: time.Minute}
	})
	_, err := c.Classify(ctx, classifyReq)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := fake.Count("/api/chat"); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// The request carries what SPEC 3.2 asks for: schema format, no streaming,
// temperature 0, fixed seed, no thinking, keep_alive and num_ctx.
func TestClassifyRequestShape(t *testing.T) {
	fake, c := newFake(t, Options{Seed: 7, NumCtx: 2048, KeepAlive: 10 * time.Minute})
	fake.OnChat(ollamafake.Sequence(ollamafake.Reply{Content: validAnswer}))
	if _, err := c.Classify(context.Background(), classifyReq); err != nil {
		t.Fatal(err)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0].Chat
	if r.Model != testModel || r.Stream == nil || *r.Stream || r.Think == nil || r.Think.Bool() || len(r.Tools) != 0 {
		t.Errorf("model %q, stream %v, think %v, tools %v", r.Model, r.Stream, r.Think, r.Tools)
	}
	if r.KeepAlive == nil || r.KeepAlive.Duration != 10*time.Minute {
		t.Errorf("keep_alive = %v", r.KeepAlive)
	}
	if !bytes.Equal(r.Format, c.schema) || !json.Valid(r.Format) {
		t.Errorf("format = %s", r.Format)
	}
	for k, want := range map[string]float64{"temperature": 0, "seed": 7, "num_ctx": 2048} {
		if got, ok := r.Options[k].(float64); !ok || got != want {
			t.Errorf("options[%s] = %v, want %v", k, r.Options[k], want)
		}
	}
	if len(r.Messages) != 2 || r.Messages[0].Role != "system" || r.Messages[1].Role != "user" ||
		!strings.Contains(r.Messages[1].Content, fenceOpen) {
		t.Errorf("messages = %+v", r.Messages)
	}
}

func TestDraft(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		replies   []ollamafake.Reply
		want      error
		wantCalls int
	}{
		{"valid", Options{}, []ollamafake.Reply{{Content: validDraft}}, nil, 1},
		{"503 then valid", Options{}, []ollamafake.Reply{{Status: 503}, {Content: validDraft}}, nil, 2},
		{"slow past timeout", Options{DraftTimeout: 300 * time.Millisecond}, []ollamafake.Reply{{Content: validDraft, Latency: time.Minute}}, ErrUnavailable, 2},
		{"unknown field", Options{}, []ollamafake.Reply{{Content: `{"brief":"b","reply":"r","send_now":true}`}}, ErrInvalidAnswer, 2},
		{"404 model", Options{}, []ollamafake.Reply{{Status: 404, Error: "model not found"}}, ErrModelNotFound, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, c := newFake(t, tt.opts)
			fake.OnChat(ollamafake.Sequence(tt.replies...))
			d, err := c.Draft(context.Background(), triage.DraftRequest{Ticket: triage.Ticket{ID: "T-1", Body: "where is my parcel?"}})
			if n := fake.Count("/api/chat"); n != tt.wantCalls {
				t.Errorf("%d requests, want %d", n, tt.wantCalls)
			}
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Brief == "" || d.Reply == "" {
				t.Errorf("draft %+v", d)
			}
			r := fake.Requests()[0].Chat
			if !isDraft(*r) || r.Options["temperature"] != 0.3 {
				t.Errorf("draft request format %s options %v", r.Format, r.Options)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Run("model present", func(t *testing.T) {
		fake, c := newFake(t, Options{})
		if err := c.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		if r := fake.Requests(); len(r) != 1 || r[0].Path != "/api/show" || r[0].Show.Model != testModel {
			t.Errorf("requests %+v", r)
		}
	})
	t.Run("model missing", func(t *testing.T) {
		_, c := newFake(t, Options{Model: "llama3.2:3b"})
		err := c.Check(context.Background())
		if !errors.Is(err, ErrModelNotFound) {
			t.Fatalf("err = %v, want ErrModelNotFound", err)
		}
		if !strings.Contains(err.Error(), "run: ollama pull llama3.2:3b") {
			t.Errorf("error %q does not say what to pull", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		fake, c := newFake(t, Options{})
		fake.Close()
		if err := c.Check(context.Background()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
}

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"defaults", Options{}, true},
		{"bare host", Options{Host: "127.0.0.1:11434"}, true},
		{"bad scheme", Options{Host: "ftp://x"}, false},
		{"negative timeout", Options{Timeout: -time.Second}, false},
		{"negative parallel", Options{Parallel: -1}, false},
		{"tiny context", Options{NumCtx: 100}, false},
		{"padded root cause", Options{RootCauses: []string{" x"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); (err == nil) != tt.ok {
				t.Errorf("New(%+v) err = %v, want ok %v", tt.opts, err, tt.ok)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	base := 100 * time.Millisecond
	for n, want := range []time.Duration{100, 200, 400, 800} {
		want *= time.Millisecond
		for range 50 {
			if d := backoff(base, n); d < want/2 || d > want {
				t.Fatalf("backoff(%v, %d) = %v, want in [%v, %v]", base, n, d, want/2, want)
			}
		}
	}
	if d := backoff(base, 60); d > maxBackoff || d < maxBackoff/2 {
		t.Errorf("backoff after many retries = %v, want capped at %v", d, maxBackoff)
	}
}

// Back-off waits stop when the caller gives up.
func TestRetryBackoffHonoursContext(t *testing.T) {
	c := mustNew(t, Options{Backoff: time.Hour, Retries: 5})
	ctx, cancel := context.WithCancel(context.Background())
	attempts := 0
	err := c.retry(ctx, func(context.Context) error {
		attempts++
		cancel() // the caller gives up during the first attempt
		return fmt.Errorf("%w: 503", ErrUnavailable)
	})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrUnavailable and context.Canceled", err)
	}
	if attempts != 1 {
		t.Errorf("%d attempts, want 1", attempts)
	}
}

// Errors carry the short kind that triage shows on a "rules only" card.
func TestErrorKinds(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		reply ollamafake.Reply
		want  string
	}{
		{"timeout", Options{Timeout: 300 * time.Millisecond, Retries: -1}, ollamafake.Reply{Latency: time.Minute}, "timeout"},
		{"busy", Options{Retries: -1}, ollamafake.Reply{Status: 503}, "unavailable"},
		{"invalid", Options{Retries: -1}, ollamafake.Reply{Content: "low priority, no flags"}, "invalid answer"},
		{"model", Options{Model: "other:1b"}, ollamafake.Reply{Content: validAnswer}, "model not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, c := newFake(t, tt.opts)
			fake.OnChat(ollamafake.Sequence(tt.reply))
			_, err := c.Classify(context.Background(), classifyReq)
			var k interface{ Kind() string }
			if !errors.As(err, &k) || k.Kind() != tt.want {
				t.Fatalf("err = %v, want kind %q", err, tt.want)
			}
		})
	}
}

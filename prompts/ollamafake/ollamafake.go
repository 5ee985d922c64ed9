// Package ollamafake is an Ollama stand-in for tests and benchmarks: an
// httptest server that speaks /api/chat and /api/show with the types of
// github.com/ollama/ollama/api, answers as each test scripts it (content,
// latency, HTTP status, malformed or cut-off bodies) and records every
// request for assertions.
package ollamafake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/ollama/ollama/api"
)

// Reply scripts one answer to a chat request.
type Reply struct {
	// Content is the assistant message's content.
	Content string
	// Latency delays the answer; it is cut short when the client goes away,
	// as Ollama stops generating when its caller disconnects.
	Latency time.Duration
	// Status, when not 0 or 200, answers with that status and a body
	// {"error": Error}, as Ollama does (404 unknown model, 503 busy).
	Status int
	// Error is the error message of a non-200 answer.
	Error string
	// Body, when set, is sent verbatim with status 200 instead of a
	// ChatResponse (an invalid JSON body).
	Body string
	// HalfBody sends the first half of the encoded ChatResponse, announcing
	// the full length, and then drops the connection.
	HalfBody bool
}

// Request is one request the server received.
type Request struct {
	// Path is "/api/chat" or "/api/show".
	Path string
	// Chat is set for /api/chat, Show for /api/show.
	Chat *api.ChatRequest
	Show *api.ShowRequest
	// At is when the request arrived.
	At time.Time
}

// Server is a running stand-in. Its zero value is not usable; call New.
type Server struct {
	// URL is the base URL to configure as the Ollama host.
	URL string

	srv    *httptest.Server
	mu     sync.Mutex
	models []string
	chat   func(api.ChatRequest) Reply
	reqs   []Request
}

// New starts a stand-in that has the given models (as /api/show and
// /api/chat see them) and answers every chat with an empty object until
// OnChat scripts it. Close it when done.
func New(models ...string) *Server {
	s := &Server{models: models, chat: func(api.ChatRequest) Reply { return Reply{Content: "{}"} }}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/chat", s.handleChat)
	mux.HandleFunc("POST /api/show", s.handleShow)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down, waiting for requests in progress.
func (s *Server) Close() { s.srv.Close() }

// OnChat sets the function that scripts the answer to each chat request. It
// is called concurrently when requests overlap.
func (s *Server) OnChat(fn func(req api.ChatRequest) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chat = fn
}

// Sequence returns a script answering with replies in order, repeating the
// last one once they run out.
func Sequence(replies ...Reply) func(api.ChatRequest) Reply {
	var (
		mu sync.Mutex
		n  int
	)
	return func(api.ChatRequest) Reply {
		mu.Lock()
		defer mu.Unlock()
		r := replies[min(n, len(replies)-1)]
		n++
		return r
	}
}

// Requests returns a copy of the requests received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// Count returns how many requests to path arrived so far.
func (s *Server) Count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.reqs {
		if r.Path == path {
			n++
		}
	}
	return n
}

func (s *Server) handleShow(w http.ResponseWriter, r *http.Request) {
	var req api.ShowRequest
	if !decode(w, r, &req) {
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, Request{Path: r.URL.Path, Show: &req, At: time.Now()})
	known := slices.Contains(s.models, req.Model)
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	writeJSON(w, http.StatusOK, api.ShowResponse{
		Details:    api.ModelDetails{Format: "gguf", Family: "fake"},
		ModelInfo:  map[string]any{"general.architecture": "fake"},
		ModifiedAt: time.Unix(0, 0).UTC(),
	})
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	var req api.ChatRequest
	if !decode(w, r, &req) {
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, Request{Path: r.URL.Path, Chat: &req, At: time.Now()})
	known := slices.Contains(s.models, req.Model)
	script := s.chat
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", req.Model))
		return
	}
	reply := script(req)
	if reply.Latency > 0 {
		t := time.NewTimer(reply.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch {
	case reply.Status != 0 && reply.Status != http.StatusOK:
		writeError(w, reply.Status, reply.Error)
	case reply.Body != "":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(reply.Body))
	default:
		resp := api.ChatResponse{
			Model:      req.Model,
			CreatedAt:  time.Now().UTC(),
			Message:    api.Message{Role: "assistant", Content: reply.Content},
			Done:       true,
			DoneReason: "stop",
		}
		if !reply.HalfBody {
			writeJSON(w, http.StatusOK, resp)
			return
		}
		body, err := json.Marshal(resp)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		// Drops the connection without logging, leaving the body short.
		panic(http.ErrAbortHandler)
	}
}

// decode reads the request strictly, so that a field the client misspells
// fails the test instead of being ignored.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "decode request: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

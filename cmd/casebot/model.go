package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/casebot/casebot/prompts"
	"github.com/casebot/casebot/triage"
)

// Classifier names accepted by --classifier.
const (
	classifierKeyword = "keyword"
	classifierOllama  = "ollama"
)

// attachModel gives tr the Ollama classifier and drafter when asked for or
// configured. With no --classifier, OLLAMA_HOST decides: set and answering
// means the model, anything else the keyword classifier with a warning.
// --classifier ollama insists: a server that does not answer or lacks the
// model is an error. The returned function stops the model's queue.
//
// keepWhenDown is for the long-running bot: a server that does not answer at
// start stays attached, every ticket falls back to the rules until it answers.
func attachModel(ctx context.Context, tr *triage.Triager, cfg Config, name string, keepWhenDown bool, stderr io.Writer) (func(), error) {
	noop := func() {}
	if err := checkClassifier(name); err != nil {
		return nil, err
	}
	host := os.Getenv(EnvOllamaHost)
	if name == classifierKeyword || (name == "" && host == "") {
		return noop, nil
	}
	client, err := prompts.New(prompts.Options{
		Host: host, Model: cfg.Ollama.Model, Timeout: cfg.Ollama.Timeout, DraftTimeout: cfg.Ollama.DraftTimeout,
		KeepAlive: cfg.Ollama.KeepAlive, NumCtx: cfg.Ollama.NumCtx, Parallel: cfg.Ollama.Parallel,
		Retries: cfg.Ollama.Retries, RootCauses: cfg.RootCauses, Languages: cfg.Languages,
	})
	if err != nil {
		return nil, fmt.Errorf("ollama: %w", err)
	}
	if err := client.Check(ctx); err != nil {
		switch {
		case errors.Is(err, prompts.ErrModelNotFound), name == classifierOllama && !keepWhenDown:
			return nil, err
		case !keepWhenDown:
			fmt.Fprintf(stderr, "casebot: warning: %v; classifying with the built-in keyword rules\n", err)
			return noop, nil
		}
		fmt.Fprintf(stderr, "casebot: warning: %v; triaging by rules until it answers\n", err)
	}
	q := prompts.NewQueue(client)
	tr.Model = q.Classifier()
	tr.Drafter = q.Drafter()
	return q.Close, nil
}

// checkClassifier rejects a --classifier value before any work is done.
func checkClassifier(name string) error {
	switch name {
	case "", classifierKeyword, classifierOllama:
		return nil
	}
	return fmt.Errorf("%w: --classifier %q: use keyword or ollama", errUsage, name)
}

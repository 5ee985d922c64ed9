package main

import (
	"context"
	"fmt"
	"io"

	"github.com/casebot/casebot/triage"
)

// newAssessor builds a Triager without a store, for eval and triage: the
// rules, the router and the named classifier ("" means as configured).
func newAssessor(ctx context.Context, cfg Config, classifier string, stderr io.Writer) (*triage.Triager, func(), error) {
	tr, err := triage.NewTriager(cfg.Config, nil, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	cleanup, err := attachModel(ctx, tr, cfg, classifier, false, stderr)
	if err != nil {
		return nil, nil, err
	}
	return tr, cleanup, nil
}

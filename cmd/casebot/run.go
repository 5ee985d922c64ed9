package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c commonFlags
	fs := newFlagSet("run", stderr, &c)
	classifier := fs.String("classifier", "", "keyword or ollama (default: ollama when OLLAMA_HOST is set)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkClassifier(*classifier); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, c)
	if err != nil {
		return err
	}
	secrets := SecretsFromEnv(os.Getenv)
	var missing []string
	if secrets.SlackBotToken == "" {
		missing = append(missing, EnvSlackBotToken+" (xoxb-…, OAuth & Permissions)")
	}
	if secrets.SlackAppToken == "" {
		missing = append(missing, EnvSlackAppToken+" (xapp-… with connections:write, Basic Information)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("casebot run needs %s in the environment; see README \"Connect to Slack\"", strings.Join(missing, " and "))
	}
	dbPath := c.db
	if dbPath == "" {
		dbPath = "casebot.db"
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	s := &System{Config: cfg, Secrets: secrets, DBPath: dbPath, HTTPAddr: cfg.HTTP.Addr,
		Classifier: *classifier, KeepModelWhenDown: true, Logger: logger, Stderr: stderr}
	if err := s.Open(ctx); err != nil {
		return err
	}
	defer s.Close()
	logger.Info("casebot running", "db", dbPath, "http", s.Addr(), "intake_channels", len(cfg.Slack.IntakeChannels),
		"webhook", secrets.WebhookSecret != "", "secrets", secrets)
	return s.Run(ctx)
}

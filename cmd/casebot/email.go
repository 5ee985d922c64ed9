package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/casebot/casebot/intake"
	"github.com/casebot/casebot/triage"
)

// emailParts are the System's email intake and reply sender; each is nil
// when casebot.yml leaves its server out.
type emailParts struct {
	mailbox *intake.Mailbox
	mailer  *intake.Mailer
}

// openEmail builds what the email section asks for. It runs in Open after
// the store, the Triager and the Pipeline exist.
func (s *System) openEmail() error {
	cfg := s.Config.Email
	if cfg.IMAPAddr == "" && cfg.SMTPAddr == "" {
		return nil
	}
	mode, err := emailTLSMode(cfg.TLS)
	if err != nil {
		return err
	}
	if cfg.IMAPAddr != "" {
		if s.Secrets.IMAPUsername == "" || s.Secrets.IMAPPassword == "" {
			return fmt.Errorf("email.imap_addr is set, so %s and %s must be set in the environment",
				EnvIMAPUsername, EnvIMAPPassword)
		}
		mb, err := intake.NewMailbox(intake.MailboxOptions{
			Addr: cfg.IMAPAddr, Username: s.Secrets.IMAPUsername, Password: s.Secrets.IMAPPassword,
			Mailbox: cfg.Mailbox, TLS: mode, TLSConfig: s.MailTLS, PollInterval: cfg.PollInterval,
			Intake: s.Triager.Intake, Append: s.appendEmail, FindThread: s.findEmailThread,
			Ticket: s.DB.Get, Customer: s.DB.Customer, Enqueue: s.Pipeline.Classify,
			Clock: s.Clock, Logger: s.Logger,
		})
		if err != nil {
			return fmt.Errorf("email intake: %w", err)
		}
		s.email.mailbox = mb
	}
	if cfg.SMTPAddr != "" {
		// Without a username the mailer submits without logging in; a
		// password alone is a mistake that would otherwise go unnoticed.
		if s.Secrets.SMTPUsername == "" && s.Secrets.SMTPPassword != "" {
			return fmt.Errorf("%s is set without %s", EnvSMTPPassword, EnvSMTPUsername)
		}
		ml, err := intake.NewMailer(intake.MailerOptions{
			Outbox: s.DB, Addr: cfg.SMTPAddr, Username: s.Secrets.SMTPUsername, Password: s.Secrets.SMTPPassword,
			From: cfg.From, TLS: mode, TLSConfig: s.MailTLS,
			Ticket: s.DB.Get, Customer: s.DB.Customer, OnFailed: s.replyFailed, OnDelivered: s.replyDelivered,
			Clock: s.Clock, Logger: s.Logger,
		})
		if err != nil {
			return fmt.Errorf("email replies: %w", err)
		}
		s.email.mailer = ml
	}
	return nil
}

// emailTLSMode maps email.tls to the intake mode. The insecure mode has no
// configuration value: it would send the mailbox password in clear.
func emailTLSMode(mode string) (intake.TLSMode, error) {
	switch mode {
	case EmailTLSImplicit:
		return intake.TLSImplicit, nil
	case EmailTLSStartTLS:
		return intake.TLSStartTLS, nil
	}
	return 0, fmt.Errorf("email.tls: unknown mode %q", mode)
}

// appendEmail adds a customer's reply to their ticket and wakes the poster,
// which updates the card and posts the reply in its thread.
func (s *System) appendEmail(ctx context.Context, ticketID string, e triage.Entry) error {
	if _, err := s.Triager.AppendEntry(ctx, ticketID, e); err != nil {
		return err
	}
	s.kick()
	return nil
}

// findEmailThread returns the ticket one of messageIDs (nearest first)
// started. It reads only the store's external index, with no scan: an
// email ticket's ReplyTo is its own Message-ID, the same as its
// ExternalID, so the index finds a ticket by either. A customer answering
// casebot's reply names casebot's Message-ID in In-Reply-To, which no
// ticket has, but their mail client keeps the thread's root Message-ID in
// References, and that one is found; thread detection relies on it.
func (s *System) findEmailThread(ctx context.Context, messageIDs []string) (string, bool, error) {
	for _, id := range messageIDs {
		t, err := s.DB.TicketByExternal(ctx, triage.SourceEmail, id)
		switch {
		case err == nil:
			return t.ID, true, nil
		case !errors.Is(err, triage.ErrNotFound):
			return "", false, err
		}
	}
	return "", false, nil
}

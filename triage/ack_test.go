package triage_test

import (
	"testing"

	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// The acknowledgement goes out once, on triage, and only where a reply can
// reach the customer.
func TestAcknowledgement(t *testing.T) {
	const ack = "We got your message."
	tests := []struct {
		name    string
		in      func(f *fixture) triage.Inbound
		senders map[triage.Source]bool
		text    string
		want    bool
	}{
		{"slack thread", func(f *fixture) triage.Inbound {
			in := f.inbound("C1/1700000000.000100", "where is my order?", ann)
			in.Source, in.ReplyTo = triage.SourceSlack, triage.SlackReplyTo("C1", "1700000000.000100")
			return in
		}, nil, ack, true},
		{"email with SMTP", func(f *fixture) triage.Inbound {
			in := f.inbound("m1@x", "where is my order?", ann)
			in.ReplyTo = "m1@x"
			return in
		}, map[triage.Source]bool{triage.SourceEmail: true}, ack, true},
		{"email without SMTP", func(f *fixture) triage.Inbound {
			in := f.inbound("m1@x", "where is my order?", ann)
			in.ReplyTo = "m1@x"
			return in
		}, map[triage.Source]bool{triage.SourceSlack: true}, ack, false},
		{"manual entry", func(f *fixture) triage.Inbound {
			in := f.inbound("man-1", "phoned about a late order", ann)
			in.Source = triage.SourceManual
			return in
		}, nil, ack, false},
		{"switched off", func(f *fixture) triage.Inbound {
			in := f.inbound("C1/1700000000.000100", "where is my order?", ann)
			in.Source, in.ReplyTo = triage.SourceSlack, triage.SlackReplyTo("C1", "1700000000.000100")
			return in
		}, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, &triagetest.Classifier{Result: calm})
			f.tr.Senders, f.tr.Acknowledgement = tt.senders, tt.text
			f.process(t, tt.in(f))
			var acks []triage.Post
			for _, p := range f.store.Posts() {
				if p.Kind == triage.PostCustomerReply && p.Action == triage.ActionAcknowledged {
					acks = append(acks, p)
				}
			}
			if got := len(acks) == 1; got != tt.want || len(acks) > 1 {
				t.Fatalf("%d acknowledgements, want one: %v", len(acks), tt.want)
			}
			if tt.want && acks[0].Text != ack {
				t.Errorf("text %q", acks[0].Text)
			}
		})
	}
}

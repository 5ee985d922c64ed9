package triage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/casebot/casebot/triage"
)

func TestSOPValidate(t *testing.T) {
	tests := []struct {
		name string
		u    triage.SOPUpdate
		want string // missing fields named in the error; empty for valid
	}{
		{"valid", triage.SOPUpdate{RootCause: "carrier_delay", Text: "Offer tracking.", Author: "U1"}, ""},
		{"nothing", triage.SOPUpdate{}, "no root cause, text, author"},
		{"blank text", triage.SOPUpdate{RootCause: "x", Text: " \n\t", Author: "U1"}, "no text"},
		{"no author", triage.SOPUpdate{RootCause: "x", Text: "t"}, "no author"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.u.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, triage.ErrInvalidSOP) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidSOP naming %q", err, tt.want)
			}
		})
	}
}

func TestPolicyExcerpt(t *testing.T) {
	sop := func(rc string, typ triage.Type, v int, state triage.SOPState, text string) triage.SOPUpdate {
		return triage.SOPUpdate{RootCause: rc, Type: typ, Version: v, State: state, Text: text}
	}
	updates := []triage.SOPUpdate{
		sop("carrier_delay", triage.TypeDelivery, 1, triage.SOPAccepted, "Share the tracking link."),
		sop("carrier_delay", triage.TypeDelivery, 3, triage.SOPAccepted, "Share tracking;\n  offer a reship after 10 days."),
		sop("carrier_delay", triage.TypeDelivery, 2, triage.SOPAccepted, "Share tracking and apologise."),
		sop("carrier_delay", triage.TypeDelivery, 0, triage.SOPProposed, "Refund everything at once."),
		sop("address_typo", triage.TypeDelivery, 1, triage.SOPAccepted, "Confirm the address before reshipping."),
		sop("wrong_size", triage.TypeRefund, 1, triage.SOPAccepted, "Offer an exchange first."),
		sop("wrong_size", triage.TypeRefund, 0, triage.SOPRejected, "Never refund."),
		sop("damaged", "", 1, triage.SOPAccepted, "Ask for a photo."),
	}
	ticket := func(typ triage.Type, guess, cause string) triage.Ticket {
		return triage.Ticket{RootCause: cause, Classification: triage.Classification{Type: typ, RootCauseGuess: guess}}
	}
	const (
		delay3  = "SOP carrier_delay v3: Share tracking; offer a reship after 10 days."
		typo1   = "SOP address_typo v1: Confirm the address before reshipping."
		size1   = "SOP wrong_size v1: Offer an exchange first."
		damaged = "SOP damaged v1: Ask for a photo."
	)
	tests := []struct {
		name string
		t    triage.Ticket
		max  int
		want string
	}{
		{"own root cause first, then the type's, latest version only", ticket(triage.TypeDelivery, "carrier_delay", ""), 1000, delay3 + "\n" + typo1},
		{"the same by type alone, by root cause", ticket(triage.TypeDelivery, "", ""), 1000, typo1 + "\n" + delay3},
		{"a confirmed root cause beats the guess", ticket(triage.TypeDelivery, "wrong_size", "address_typo"), 1000, typo1 + "\n" + delay3},
		{"an update without a type applies by root cause", ticket(triage.TypeProductDefect, "damaged", ""), 1000, damaged},
		{"proposed and rejected updates never apply", ticket(triage.TypeBilling, "", ""), 1000, ""},
		{"a line that does not fit is left out", ticket(triage.TypeDelivery, "carrier_delay", ""), len([]rune(delay3)) + 5, delay3},
		{"exactly enough for two lines", ticket(triage.TypeDelivery, "carrier_delay", ""), len([]rune(delay3)) + 1 + len(typo1), delay3 + "\n" + typo1},
		{"a first line too long is cut", ticket(triage.TypeRefund, "wrong_size", ""), 12, "SOP wrong_s…"},
		{"no room", ticket(triage.TypeRefund, "wrong_size", ""), 0, ""},
		{"one character", ticket(triage.TypeRefund, "wrong_size", ""), 1, "…"},
		{"refund", ticket(triage.TypeRefund, "", ""), 1000, size1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := triage.PolicyExcerpt(updates, tt.t, tt.max)
			if got != tt.want {
				t.Errorf("PolicyExcerpt:\n got %q\nwant %q", got, tt.want)
			}
			if n := len([]rune(got)); n > tt.max && tt.max >= 0 {
				t.Errorf("%d characters, over the limit %d", n, tt.max)
			}
		})
	}
}

package triage

import (
	"context"
	"fmt"
	"strings"
)

// TemplateDrafter writes a brief from the ticket's facts and a reply from
// canned, per-type openings in the customer's language. It is what the demo
// and a model-less install use; a person still approves every reply.
type TemplateDrafter struct{}

// replyOpenings holds one opening per type and language; "" keys the
// fallback for types without their own line.
var replyOpenings = map[string]map[Type]string{
	"en": {
		TypeRefund:         "I'm sorry about this. I've looked into your refund and will confirm the next step below.",
		TypeDelivery:       "I'm sorry your order hasn't reached you as expected. I've checked its status with our carrier.",
		TypeProductDefect:  "I'm sorry the product let you down. We'll make this right, starting with a replacement or refund, whichever you prefer.",
		TypeBilling:        "Thanks for flagging this charge. I've reviewed your billing details.",
		TypeOrderChange:    "Thanks for letting us know. I've checked whether your order can still be changed.",
		TypeAccount:        "Thanks for reaching out about your account. Here is how we can sort it out.",
		TypePolicyQuestion: "Good question. Here is what our policy says.",
		TypeFeedback:       "Thank you for taking the time to tell us this. It has been shared with the team.",
		"":                 "Thanks for getting in touch. We're looking into this now.",
	},
	"es": {
		TypeRefund:   "Lamentamos lo ocurrido. Hemos revisado su reembolso y le confirmamos el siguiente paso.",
		TypeDelivery: "Lamentamos que su pedido no haya llegado como esperaba. Hemos consultado su estado con el transportista.",
		"":           "Gracias por escribirnos. Estamos revisando su caso.",
	},
	"fr": {
		TypeRefund:   "Nous sommes désolés. Nous avons vérifié votre remboursement et vous confirmons la prochaine étape.",
		TypeDelivery: "Nous sommes désolés que votre commande ne soit pas arrivée comme prévu. Nous avons vérifié son statut auprès du transporteur.",
		"":           "Merci de nous avoir contactés. Nous examinons votre demande.",
	},
	"de": {
		TypeRefund:   "Das tut uns leid. Wir haben Ihre Erstattung geprüft und bestätigen Ihnen den nächsten Schritt.",
		TypeDelivery: "Es tut uns leid, dass Ihre Bestellung nicht wie erwartet angekommen ist. Wir haben den Status beim Versanddienst geprüft.",
		"":           "Danke für Ihre Nachricht. Wir prüfen Ihr Anliegen.",
	},
}

// Draft implements Drafter.
func (TemplateDrafter) Draft(_ context.Context, req DraftRequest) (Draft, error) {
	t := req.Ticket
	c := t.Classification
	var b strings.Builder
	fmt.Fprintf(&b, "%s issue, customer %s", strings.ReplaceAll(string(c.Type), "_", " "), c.Sentiment)
	if !c.Amount.IsZero() {
		fmt.Fprintf(&b, ", %s at stake (%s risk)", c.Amount, c.FinancialRisk)
	}
	b.WriteString(". ")
	switch n := len(req.History); n {
	case 0:
		b.WriteString("No earlier tickets from this customer in the last 30 days.")
	default:
		fmt.Fprintf(&b, "%d earlier ticket(s) in the last 30 days, the latest about %s.", n,
			strings.ReplaceAll(string(req.History[0].Classification.Type), "_", " "))
	}
	if len(t.Triggers) > 0 {
		reasons := make([]string, len(t.Triggers))
		for i, tr := range t.Triggers {
			reasons[i] = tr.Reason
		}
		fmt.Fprintf(&b, " Rules: %s.", strings.Join(reasons, "; "))
	}
	if req.Policy != "" {
		fmt.Fprintf(&b, " Policy: %s", req.Policy)
	}
	return Draft{Brief: b.String(), Reply: opening(c.Language, c.Type)}, nil
}

// draftBy names who writes d's drafts, for Ticket.DraftBy: the template
// or, for any other drafter, the model.
func draftBy(d Drafter) string {
	switch d.(type) {
	case TemplateDrafter, *TemplateDrafter:
		return DraftByTemplate
	}
	return DraftByModel
}

func opening(lang string, typ Type) string {
	lines, ok := replyOpenings[strings.ToLower(strings.SplitN(lang, "-", 2)[0])]
	if !ok {
		lines = replyOpenings["en"]
	}
	if s, ok := lines[typ]; ok {
		return s
	}
	return lines[""]
}

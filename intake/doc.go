// Package intake brings customer messages into casebot from outside Slack and
// sends approved replies back out (SPEC section 2): the HTTP webhook
// (POST /v1/tickets), the JSONL/CSV importer, and the outbound webhook sender;
// email, read from an IMAP mailbox (Mailbox) and answered by SMTP (Mailer)
// with In-Reply-To and References so threads stay threads. It normalises
// every source into a triage.Inbound and leaves storing, deduplication and
// classification to the triage.Triager.
//
// # Signing
//
// Requests to the webhook and the replies casebot POSTs back are signed the
// same way, like Slack's request signing. The sender takes the current unix
// time in seconds as a decimal string ts and computes
//
//	v1=hex(HMAC-SHA256(secret, ts + "." + body))
//
// over the exact bytes of the request body, then sends
//
//	X-Casebot-Timestamp: <ts>
//	X-Casebot-Signature: v1=<64 lower-case hex digits>
//
// The receiver recomputes the MAC in constant time and refuses a timestamp
// more than five minutes from its own clock, either way, so a captured
// request cannot be replayed later. A replay inside the window is harmless:
// tickets are idempotent on external_id. The secret is CASEBOT_WEBHOOK_SECRET
// (at least 32 random bytes recommended); Sign computes the header value.
//
// # Webhook responses
//
// Every response body is JSON. Success:
//
//	202 {"ticket_id": "T…", "duplicate": false}  the ticket is stored (committed)
//	200 {"ticket_id": "T…", "duplicate": true}   external_id was already stored;
//	                                              ticket_id is the original ticket
//
// A repeat delivery is answered 200 rather than 202 so a sender can tell "you
// already sent this" from "accepted now"; both mean stop retrying. Errors are
// {"error": code, "field": path (when one field is at fault), "detail": text}:
//
//	400 invalid_body (unreadable), invalid_json, invalid_utf8, unknown_field, duplicate_field,
//	    missing_field, invalid_field   (field names the dotted path, e.g. customer.email)
//	401 missing_signature, invalid_timestamp, stale_timestamp, invalid_signature
//	405 method_not_allowed             (only POST)
//	413 body_too_large                 (256 KB by default)
//	415 unsupported_media_type         (Content-Type must be application/json)
//	503 unavailable                    (not stored; retry after Retry-After
//	                                    seconds, safe because of idempotency)
//
// # Webhook body
//
// See WebhookTicket for the fields. external_id, text (or its alias body) and
// a customer with at least one of email, handle or id are required; unknown
// fields, repeated fields, invalid UTF-8 and wrong types are refused so a
// sender's mistake shows up at once instead of as a silently empty ticket.
//
// # Outbound replies
//
// When a ticket carried reply_url, the reply a person approved is POSTed
// there as {"ticket_id", "external_id", "text", "sent_at"} with the same two
// signature headers, plus X-Casebot-Delivery naming the outbox post so the
// receiver can drop a repeat delivery (a reply whose success response was
// lost is sent again). A reply_url may not target an internal address
// (loopback, private, link-local, localhost and the like) unless the
// operator allows it (ReplyURLAllow); the webhook refuses one with 400 and
// the Outbound checks again on every connection.
package intake

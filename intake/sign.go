package intake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Header names of the signing scheme described in the package doc.
const (
	HeaderTimestamp = "X-Casebot-Timestamp"
	HeaderSignature = "X-Casebot-Signature"
	// HeaderDelivery carries the outbox post ID of an outbound reply, the
	// same on every retry of that reply.
	HeaderDelivery = "X-Casebot-Delivery"
)

// signatureVersion prefixes the hex MAC so the scheme can change later
// without ambiguity.
const signatureVersion = "v1="

// Sign returns the X-Casebot-Signature value for body sent at unix time ts.
func Sign(secret []byte, ts int64, body []byte) string {
	return signatureVersion + hex.EncodeToString(mac(secret, strconv.FormatInt(ts, 10), body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// verifySignature checks header against the MAC of ts and body in constant
// time. The timestamp string is MACed as received, so "0123" and "123" sign
// differently, as they would for a sender that formats it itself.
func verifySignature(secret []byte, ts, header string, body []byte) bool {
	hexMAC, ok := strings.CutPrefix(strings.TrimSpace(header), signatureVersion)
	return ok && equalHexMAC(hexMAC, mac(secret, ts, body))
}

// equalHexMAC reports in constant time whether got is want in the one form
// casebot writes and documents, lower-case hex: a signature has exactly one
// spelling, so a signed value cannot be varied and still verify.
func equalHexMAC(got string, want []byte) bool {
	return hmac.Equal([]byte(got), []byte(hex.EncodeToString(want)))
}

// checkTimestamp parses a unix-seconds timestamp and reports whether it is
// within window of now, either way.
func checkTimestamp(ts string, now time.Time, window time.Duration) (ok, parsed bool) {
	sec, err := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
	if err != nil {
		return false, false
	}
	// Bounds in seconds around now cannot overflow, whatever sec is.
	limit := int64(window / time.Second)
	return sec >= now.Unix()-limit && sec <= now.Unix()+limit, true
}

package store

import (
	"bytes"
	"testing"

	"github.com/casebot/casebot/triage"
)

func FuzzDecodeRecord(f *testing.F) {
	seed, err := encodeRecord(*benchTicket("1", t0))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(seed),
		`{"v":1,"data":{"id":"CB-000001"}}`,
		`{"data":{"id":"CB-000001"},"v":1}`,
		`{"v":1,"data":{"id":"CB-000001"},"extra":{"a":[1,2]}}`,
		`{"v":2,"data":{}}`,
		`{"v":1,"data":null}`,
		`{"v":-1,"data":{}}`,
		"\x00\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var tk triage.Ticket
		if err := decodeRecord(raw, &tk); err != nil {
			return
		}
		// Whatever decodes must survive a round trip unchanged.
		once, err := encodeRecord(tk)
		if err != nil {
			t.Fatalf("encode of a decoded record: %v", err)
		}
		var again triage.Ticket
		if err := decodeRecord(once, &again); err != nil {
			t.Fatalf("decode of a re-encoded record: %v", err)
		}
		twice, err := encodeRecord(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("round trip changed the record:\n%s\n%s", once, twice)
		}
	})
}

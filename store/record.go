package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// recordVersion is the envelope version written by this package. Adding a
// field to a domain type needs no new version: decoding leaves missing fields
// zero and ignores unknown ones. A new version is only for a change old code
// would misread.
const recordVersion = 1

// envelope wraps every stored record.
type envelope struct {
	V    *int            `json:"v"`
	Data json.RawMessage `json:"data"`
}

// currentPrefix opens every envelope this version writes. Records that start
// with it are decoded without parsing the envelope first, which would scan
// and copy the payload an extra time.
var currentPrefix = fmt.Appendf(nil, `{"v":%d,"data":`, recordVersion)

// encodeRecord marshals v into the versioned envelope.
func encodeRecord(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(currentPrefix)+len(data)+1)
	out = append(out, currentPrefix...)
	out = append(out, data...)
	return append(out, '}'), nil
}

// decodeRecord unmarshals a versioned envelope into v. The error wraps
// ErrCorrupt when raw is not a readable record.
func decodeRecord(raw []byte, v any) error {
	if data, ok := bytes.CutPrefix(raw, currentPrefix); ok && len(data) > 1 && data[len(data)-1] == '}' {
		// A payload that is not one JSON value after all (the envelope has
		// more keys) falls through to the full parse below.
		data = data[:len(data)-1]
		var syntax *json.SyntaxError
		switch err := json.Unmarshal(data, v); {
		case bytes.Equal(data, []byte("null")) || errors.As(err, &syntax):
		case err != nil:
			return fmt.Errorf("%w: data: %w", ErrCorrupt, err)
		default:
			return nil
		}
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%w: envelope: %w", ErrCorrupt, err)
	}
	switch {
	case env.V == nil:
		return fmt.Errorf("%w: no version", ErrCorrupt)
	case *env.V > recordVersion:
		return fmt.Errorf("record version %d is newer than this casebot supports (%d)", *env.V, recordVersion)
	case *env.V < 1:
		return fmt.Errorf("%w: unknown record version %d", ErrCorrupt, *env.V)
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return fmt.Errorf("%w: no data", ErrCorrupt)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		return fmt.Errorf("%w: data: %w", ErrCorrupt, err)
	}
	return nil
}

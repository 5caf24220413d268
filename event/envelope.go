package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Stream entry field names. They are flat strings so that
// `redis-cli XRANGE` shows a person what happened.
const (
	FieldEventID     = "event_id"
	FieldType        = "type"
	FieldSagaID      = "saga_id"
	FieldSagaMode    = "saga_mode"
	FieldSagaVersion = "saga_version"
	FieldCausationID = "causation_id"
	FieldOccurredAt  = "occurred_at"
	FieldData        = "data"
)

// ErrMalformed marks an entry that cannot be decoded into an Envelope. Such an
// entry is poison: it goes to the dead-letter stream without a retry.
var ErrMalformed = errors.New("malformed entry")

// maxIDLen bounds identifiers read off a stream; ids the product generates
// are 36 characters.
const maxIDLen = 64

// Envelope is one stream entry.
type Envelope struct {
	EventID  string
	Type     string
	SagaID   string
	SagaMode string
	// SagaVersion is the saga hash version this message was published at. The
	// transition that consumes it applies only while the hash still has that
	// version, which fences duplicates, stale redeliveries and zombie workers.
	SagaVersion int64
	CausationID string
	OccurredAt  time.Time
	Data        json.RawMessage
}

// Fields returns the envelope as flat XADD field/value pairs.
func (e *Envelope) Fields() []any {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return []any{
		FieldEventID, e.EventID,
		FieldType, e.Type,
		FieldSagaID, e.SagaID,
		FieldSagaMode, e.SagaMode,
		FieldSagaVersion, strconv.FormatInt(e.SagaVersion, 10),
		FieldCausationID, e.CausationID,
		FieldOccurredAt, e.OccurredAt.UTC().Format(time.RFC3339Nano),
		FieldData, string(data),
	}
}

// Decode parses the fields of a stream entry. A nil map is an entry whose
// body was trimmed away while it was still pending.
func Decode(values map[string]any) (*Envelope, error) {
	if values == nil {
		return nil, fmt.Errorf("%w: entry has no body (trimmed while pending?)", ErrMalformed)
	}
	str := func(name string) (string, error) {
		v, ok := values[name]
		if !ok {
			return "", fmt.Errorf("%w: missing field %q", ErrMalformed, name)
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%w: field %q is not a string", ErrMalformed, name)
		}
		return s, nil
	}
	var env Envelope
	var err error
	if env.EventID, err = str(FieldEventID); err != nil {
		return nil, err
	}
	if env.Type, err = str(FieldType); err != nil {
		return nil, err
	}
	if env.SagaID, err = str(FieldSagaID); err != nil {
		return nil, err
	}
	for name, v := range map[string]string{FieldEventID: env.EventID, FieldType: env.Type, FieldSagaID: env.SagaID} {
		if v == "" || len(v) > maxIDLen {
			return nil, fmt.Errorf("%w: field %q is empty or too long", ErrMalformed, name)
		}
	}
	if env.SagaMode, err = str(FieldSagaMode); err != nil {
		return nil, err
	}
	if env.SagaMode != ModeChoreography && env.SagaMode != ModeOrchestration {
		return nil, fmt.Errorf("%w: unknown saga_mode", ErrMalformed)
	}
	version, err := str(FieldSagaVersion)
	if err != nil {
		return nil, err
	}
	if env.SagaVersion, err = strconv.ParseInt(version, 10, 64); err != nil || env.SagaVersion < 0 {
		return nil, fmt.Errorf("%w: saga_version is not a non-negative integer", ErrMalformed)
	}
	// causation_id is empty on the first event of a saga.
	if v, ok := values[FieldCausationID].(string); ok {
		env.CausationID = v
	}
	occurred, err := str(FieldOccurredAt)
	if err != nil {
		return nil, err
	}
	if env.OccurredAt, err = time.Parse(time.RFC3339Nano, occurred); err != nil {
		return nil, fmt.Errorf("%w: occurred_at is not RFC 3339", ErrMalformed)
	}
	data, err := str(FieldData)
	if err != nil {
		return nil, err
	}
	if !json.Valid([]byte(data)) || len(data) == 0 || data[0] != '{' {
		return nil, fmt.Errorf("%w: data is not a JSON object", ErrMalformed)
	}
	env.Data = json.RawMessage(data)
	return &env, nil
}

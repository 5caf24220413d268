package event_test

import (
	"errors"
	"testing"

	"github.com/streamsaga/streamsaga/event"
)

// Any stream entry either decodes into an envelope that encodes back to the
// same fields, or is refused as malformed (it then goes to the dead
// letters); nothing panics.
func FuzzDecodeEntry(f *testing.F) {
	f.Add("e-1", "order.created", "s-1", event.ModeChoreography, "1", "", "2026-01-02T03:04:05.000000006Z", `{"order":{}}`, true)
	f.Add("", "", "", "", "", "", "", "", false)
	f.Add("e", "t", "s", event.ModeOrchestration, "-1", "c", "yesterday", "[1]", true)
	f.Add("e", "t", "s", "sideways", "99999999999999999999", "c", "2026-01-02T03:04:05Z", `{"a":`, true)
	f.Fuzz(func(t *testing.T, id, typ, sagaID, mode, version, causation, occurred, data string, withCausation bool) {
		values := map[string]any{
			event.FieldEventID: id, event.FieldType: typ, event.FieldSagaID: sagaID, event.FieldSagaMode: mode,
			event.FieldSagaVersion: version, event.FieldOccurredAt: occurred, event.FieldData: data,
		}
		if withCausation {
			values[event.FieldCausationID] = causation
		}
		env, err := event.Decode(values)
		if err != nil {
			if !errors.Is(err, event.ErrMalformed) {
				t.Fatalf("refusal not marked malformed: %v", err)
			}
			return
		}
		if env.SagaVersion < 0 || env.EventID == "" || env.SagaID == "" || len(env.Data) == 0 || env.Data[0] != '{' {
			t.Fatalf("accepted an invalid envelope: %+v", env)
		}
		// Round trip: the fields it would publish decode to the same.
		f := env.Fields()
		again := map[string]any{}
		for i := 0; i+1 < len(f); i += 2 {
			again[f[i].(string)] = f[i+1]
		}
		env2, err := event.Decode(again)
		if err != nil {
			t.Fatalf("re-encoded envelope refused: %v", err)
		}
		if env2.EventID != env.EventID || env2.Type != env.Type || env2.SagaID != env.SagaID || env2.SagaMode != env.SagaMode ||
			env2.SagaVersion != env.SagaVersion || env2.CausationID != env.CausationID ||
			string(env2.Data) != string(env.Data) || !env2.OccurredAt.Equal(env.OccurredAt) {
			t.Fatalf("round trip changed the envelope: %+v → %+v", env, env2)
		}
	})
}

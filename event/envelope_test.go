package event

import (
	"errors"
	"testing"
	"time"
)

func fieldsMap(e *Envelope) map[string]any {
	f := e.Fields()
	m := map[string]any{}
	for i := 0; i < len(f); i += 2 {
		m[f[i].(string)] = f[i+1]
	}
	return m
}

func TestEnvelopeRoundTrip(t *testing.T) {
	in := &Envelope{EventID: "e1", Type: "order.created", SagaID: "s1", SagaMode: ModeChoreography, SagaVersion: 7,
		CausationID: "c0", OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Data: []byte(`{"a":1}`)}
	out, err := Decode(fieldsMap(in))
	if err != nil {
		t.Fatal(err)
	}
	if out.EventID != in.EventID || out.Type != in.Type || out.SagaID != in.SagaID || out.SagaMode != in.SagaMode ||
		out.SagaVersion != 7 || out.CausationID != "c0" || !out.OccurredAt.Equal(in.OccurredAt) || string(out.Data) != `{"a":1}` {
		t.Fatalf("round trip: %+v", out)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	good := func() map[string]any {
		return fieldsMap(&Envelope{EventID: "e", Type: "t", SagaID: "s", SagaMode: ModeOrchestration, SagaVersion: 1,
			OccurredAt: time.Now(), Data: []byte(`{}`)})
	}
	cases := map[string]func(map[string]any){
		"nil body":         nil,
		"no event_id":      func(m map[string]any) { delete(m, FieldEventID) },
		"empty saga_id":    func(m map[string]any) { m[FieldSagaID] = "" },
		"long saga_id":     func(m map[string]any) { m[FieldSagaID] = string(make([]byte, 65)) },
		"bad mode":         func(m map[string]any) { m[FieldSagaMode] = "x" },
		"bad version":      func(m map[string]any) { m[FieldSagaVersion] = "1.5" },
		"negative version": func(m map[string]any) { m[FieldSagaVersion] = "-1" },
		"bad time":         func(m map[string]any) { m[FieldOccurredAt] = "yesterday" },
		"data not json":    func(m map[string]any) { m[FieldData] = "{" },
		"data an array":    func(m map[string]any) { m[FieldData] = "[]" },
		"data missing":     func(m map[string]any) { delete(m, FieldData) },
		"non-string field": func(m map[string]any) { m[FieldType] = 5 },
	}
	for name, mutate := range cases {
		var m map[string]any
		if mutate != nil {
			m = good()
			mutate(m)
		}
		if _, err := Decode(m); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/streamsaga/streamsaga/saga"
)

// writeSaga is show's table. It prints whatever saga.State marshals to,
// walked in its JSON order, so that a field added to the state (a step's
// compensation, a first reason) shows without a change here: the saga's
// own fields, its context, each step's fields (nested objects as dotted
// keys: result.payment_id, compensation.status), then its timeline.
func writeSaga(w io.Writer, st *saga.State) {
	top, err := flattenJSON(st)
	if err != nil {
		fmt.Fprintf(w, "saga\t%s\n(cannot render: %v; use --json)\n", st.SagaID, err)
		return
	}
	var ctxFields []field
	for _, f := range top {
		switch {
		case f.key == "steps" || f.key == "history" || f.key == "context":
		case strings.HasPrefix(f.key, "context."):
			ctxFields = append(ctxFields, field{strings.TrimPrefix(f.key, "context."), f.value})
		case f.key == "currentStep":
			fmt.Fprintf(w, "%s\t%s (%s)\n", f.key, f.value, stepName(st))
		default:
			fmt.Fprintf(w, "%s\t%s\n", f.key, f.value)
		}
	}
	if len(ctxFields) > 0 {
		fmt.Fprintln(w, "\nCONTEXT\tVALUE")
		for _, f := range ctxFields {
			fmt.Fprintf(w, "%s\t%s\n", f.key, f.value)
		}
	}
	fmt.Fprintln(w, "\nSTEP\tFIELD\tVALUE")
	for i, step := range st.Steps {
		fields, err := flattenJSON(step)
		if err != nil {
			fmt.Fprintf(w, "%d %s\t(cannot render: %v)\t\n", i, step.Name, err)
			continue
		}
		label := fmt.Sprintf("%d %s", i, step.Name)
		for _, f := range fields {
			if f.key == "name" {
				continue
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", label, f.key, f.value)
			label = ""
		}
	}
	fmt.Fprintln(w, "\nTIMELINE\tVERSION\tMESSAGE")
	for _, h := range st.History {
		fmt.Fprintf(w, "+%s\t%d\t%s\n", h.At.Sub(st.CreatedAt).Round(time.Microsecond), h.Version, h.Type)
	}
}

// field is one leaf of a JSON document: its dotted path and its value.
type field struct{ key, value string }

// flattenJSON marshals v and lists its leaves in document order. Objects
// are walked (a.b); arrays stay one compact JSON value, as they are lists
// of records (items) that read best whole.
func flattenJSON(v any) ([]field, error) {
	doc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out []field
	if err := walk(dec, "", &out); err != nil {
		return nil, fmt.Errorf("flatten: %w", err)
	}
	return out, nil
}

// cellSafe keeps a value on one table row.
var cellSafe = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

func walk(dec *json.Decoder, path string, out *[]field) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	leaf := func(s string) { *out = append(*out, field{path, cellSafe.Replace(s)}) }
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return walkArray(dec, leaf)
		}
		return walkObject(dec, path, out, leaf)
	case string:
		leaf(t)
	case json.Number:
		leaf(t.String())
	case bool:
		leaf(strconv.FormatBool(t))
	case nil:
		leaf("-")
	}
	return nil
}

func walkObject(dec *json.Decoder, path string, out *[]field, leaf func(string)) error {
	n := 0
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := kt.(string)
		if !ok {
			return errors.New("object key is not a string")
		}
		if path != "" {
			key = path + "." + key
		}
		if err := walk(dec, key, out); err != nil {
			return err
		}
		n++
	}
	if _, err := dec.Token(); err != nil { // '}'
		return err
	}
	if n == 0 && path != "" {
		leaf("{}")
	}
	return nil
}

func walkArray(dec *json.Decoder, leaf func(string)) error {
	items := []json.RawMessage{}
	for dec.More() {
		var item json.RawMessage
		if err := dec.Decode(&item); err != nil {
			return err
		}
		items = append(items, item)
	}
	if _, err := dec.Token(); err != nil { // ']'
		return err
	}
	compact, err := json.Marshal(items)
	if err != nil {
		return err
	}
	leaf(string(compact))
	return nil
}

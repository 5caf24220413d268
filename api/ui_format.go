package api

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// kv is one row of a key–value table: a path into a JSON value ("items[0].sku")
// and the scalar there, rendered as text. Kind (string, number, bool, null,
// empty, raw) lets the page style it; the template escapes both.
type kv struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Kind  string `json:"kind"`
}

// Bounds of a flattened value: a context is small, but a result or a dead
// letter's payload is whatever a service or a forger wrote.
const (
	kvMaxRows  = 200
	kvMaxDepth = 6
	kvMaxValue = 2000
)

// flatten turns a JSON value into key–value rows: objects by key (sorted),
// arrays by index, nested values joined with dots; past kvMaxDepth a value
// is shown as compact JSON. A value that is not JSON is one raw row.
func flatten(raw json.RawMessage) []kv {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return []kv{}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // amounts stay exact
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return []kv{{Key: "(not JSON)", Value: clip(string(raw)), Kind: "raw"}}
	}
	f := flattener{rows: []kv{}}
	f.walk("", v, 0)
	if f.dropped > 0 {
		f.rows = append(f.rows, kv{Key: "…", Value: strconv.Itoa(f.dropped) + " more values not shown", Kind: "empty"})
	}
	return f.rows
}

// flattenField is one stream field as rows: a JSON object or array (an
// event's data) flattened under the field's name, anything else as is.
func flattenField(name, value string) []kv {
	t := strings.TrimSpace(value)
	if strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
		if rows := flatten(json.RawMessage(t)); len(rows) > 0 && rows[0].Kind != "raw" {
			for i := range rows {
				rows[i].Key = joinKey(name, rows[i].Key)
			}
			return rows
		}
	}
	return []kv{{Key: name, Value: clip(value), Kind: "string"}}
}

func joinKey(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	case strings.HasPrefix(key, "["):
		return prefix + key
	default:
		return prefix + "." + key
	}
}

type flattener struct {
	rows    []kv
	dropped int
}

func (f *flattener) add(key, value, kind string) {
	if len(f.rows) >= kvMaxRows {
		f.dropped++
		return
	}
	if key == "" {
		key = "(value)"
	}
	f.rows = append(f.rows, kv{Key: key, Value: clip(value), Kind: kind})
}

func (f *flattener) walk(key string, v any, depth int) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			f.add(key, "{}", "empty")
			return
		}
		if depth >= kvMaxDepth {
			f.add(key, compact(x), "raw")
			return
		}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			f.walk(joinKey(key, k), x[k], depth+1)
		}
	case []any:
		if len(x) == 0 {
			f.add(key, "[]", "empty")
			return
		}
		if depth >= kvMaxDepth || allScalars(x) {
			f.add(key, compact(x), "raw")
			return
		}
		for i, e := range x {
			f.walk(key+"["+strconv.Itoa(i)+"]", e, depth+1)
		}
	case string:
		f.add(key, x, "string")
	case json.Number:
		f.add(key, x.String(), "number")
	case bool:
		f.add(key, strconv.FormatBool(x), "bool")
	case nil:
		f.add(key, "null", "null")
	}
}

func allScalars(xs []any) bool {
	for _, x := range xs {
		switch x.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

// compact is v as one line of JSON; the page escapes it, so JSON's own
// HTML escaping would only garble it.
func compact(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "?"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// clip bounds a shown value, on a rune boundary.
func clip(s string) string {
	if len(s) <= kvMaxValue {
		return s
	}
	cut := kvMaxValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// timeline is a saga's history drawn one row per message: its label and
// time offset in columns on the left, a mark on a shared time axis on the
// right, and a bar from the previous message's mark. Labels sit in their
// own rows, so they never overlap, however close in time two messages are.
type timeline struct {
	Width, Height                  int
	OffsetX, TrackLeft, TrackRight int
	AxisY, AxisLabelY              int
	Span                           string
	Rows                           []timelineRow
}

type timelineRow struct {
	Y, TextY, X, PrevX, BarW int
	Label, Full, Offset      string
	Back                     bool
}

const (
	tlWidth      = 900
	tlRowH       = 24
	tlTop        = 16
	tlOffsetX    = 300
	tlTrackLeft  = 320
	tlTrackRight = 880
	tlLabelRunes = 34
)

func layoutTimeline(created, updated time.Time, history []uiHistory) timeline {
	span := updated.Sub(created)
	for _, h := range history {
		span = max(span, h.At.Sub(created))
	}
	t := timeline{Width: tlWidth, OffsetX: tlOffsetX, TrackLeft: tlTrackLeft, TrackRight: tlTrackRight, Span: shortDuration(span)}
	prev := tlTrackLeft
	for i, h := range history {
		x := tlTrackLeft
		if span > 0 {
			x += int(float64(tlTrackRight-tlTrackLeft) * float64(h.At.Sub(created)) / float64(span))
		}
		x = min(max(x, tlTrackLeft), tlTrackRight)
		y := tlTop + i*tlRowH
		label := h.Type
		if utf8.RuneCountInString(label) > tlLabelRunes {
			label = string([]rune(label)[:tlLabelRunes-1]) + "…"
		}
		t.Rows = append(t.Rows, timelineRow{Y: y, TextY: y + 4, X: x, PrevX: min(prev, x), BarW: max(x-prev, 0),
			Label: label, Full: h.Type, Offset: h.Offset, Back: h.Back})
		prev = x
	}
	t.AxisY = tlTop + len(history)*tlRowH
	t.AxisLabelY = t.AxisY + 16
	t.Height = t.AxisLabelY + 10
	return t
}

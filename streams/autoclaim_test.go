package streams

import (
	"reflect"
	"testing"
)

// XAUTOCLAIM's reply, parsed by hand to keep what go-redis's typed command
// throws away: entries whose body is gone (nil) and the third element's
// deleted ids are both reported as deleted, never handed over as entries.
func TestParseAutoClaim(t *testing.T) {
	for _, tc := range []struct {
		name    string
		raw     []any
		cursor  string
		ids     []string
		deleted []string
		err     bool
	}{
		{"redis 7 reply", []any{"0-0",
			[]any{[]any{"1-0", []any{"k", "v"}}, []any{"2-0", nil}},
			[]any{"3-0", "4-0"}}, "0-0", []string{"1-0"}, []string{"2-0", "3-0", "4-0"}, false},
		{"redis 6.2 reply, no deleted ids", []any{"5-0", []any{[]any{"1-0", []any{"a", "1", "b", "2"}}}},
			"5-0", []string{"1-0"}, nil, false},
		{"empty", []any{"0-0", []any{}, []any{}}, "0-0", nil, nil, false},
		{"malformed entries are skipped", []any{"0-0", []any{"junk", []any{"1-0"}, []any{"2-0", []any{"k", "v"}}}},
			"0-0", []string{"2-0"}, nil, false},
		{"too short", []any{"0-0"}, "", nil, nil, true},
		{"cursor not a string", []any{42, []any{}}, "", nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := parseAutoClaim(tc.raw)
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			if err != nil {
				return
			}
			var ids []string
			for _, m := range res.messages {
				ids = append(ids, m.ID)
				if len(m.Values) == 0 {
					t.Errorf("entry %s handed over without its fields", m.ID)
				}
			}
			if res.cursor != tc.cursor || !reflect.DeepEqual(ids, tc.ids) || !reflect.DeepEqual(res.deleted, tc.deleted) {
				t.Errorf("got cursor %q entries %v deleted %v, want %q %v %v", res.cursor, ids, res.deleted, tc.cursor, tc.ids, tc.deleted)
			}
		})
	}
	res, _ := parseAutoClaim([]any{"0-0", []any{[]any{"1-0", []any{"a", "1", "b", "2"}}}})
	if want := map[string]any{"a": "1", "b": "2"}; !reflect.DeepEqual(res.messages[0].Values, want) {
		t.Errorf("fields %v, want %v", res.messages[0].Values, want)
	}
}

package redislog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

// go-redis's Printf-style lines come out as one JSON object each, at WARN,
// marked as go-redis's, without the trailing newline go-redis puts there.
func TestLinesBecomeJSON(t *testing.T) {
	var buf bytes.Buffer
	l := logger{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	l.Printf(context.Background(), "redis: %s:%d: connection pool: failed to dial\n", "127.0.0.1", 6390)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON object: %q: %v", buf.String(), err)
	}
	if rec["level"] != "WARN" || rec["component"] != "go-redis" || rec["msg"] != "redis: 127.0.0.1:6390: connection pool: failed to dial" {
		t.Fatalf("record %v", rec)
	}
}

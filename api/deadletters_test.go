package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/internal/sagatest"
)

type deadLetterJSON struct {
	Partition int               `json:"partition"`
	ID        string            `json:"id"`
	At        time.Time         `json:"at"`
	Fields    map[string]string `json:"fields"`
}

// GET /deadletters merges the partitions newest first (ids compared as
// numbers, not strings) and cuts at limit; GET /deadletters/{id} finds one in
// any partition; a replay publishes the original fields on their stream
// again and removes the dead letter.
func TestDeadLetterEndpoints(t *testing.T) {
	s := sagatest.New(t, srv, map[string]string{"SAGA_PARTITIONS": "2"})
	s.StartAPI(nil)
	ctx := context.Background()
	source := s.KS.Stream(1, "order.created")
	for _, d := range []struct {
		partition int
		id        string
	}{{0, "999-0"}, {1, "5-0"}, {1, "1000-0"}, {0, "1000-1"}} {
		err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: s.KS.DeadLetter(d.partition), ID: d.id, Values: map[string]any{
			"group": "payment", "error": "boom", "deliveries": "5", "source_stream": s.KS.Stream(d.partition, "order.created"),
			"source_id": "1-1", "type": "order.created", "orig_error": "original " + d.id}}).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
	var list struct{ Deadletters []deadLetterJSON }
	if code, err := s.Do(http.MethodGet, "/deadletters?limit=3", nil, nil, &list); err != nil || code != 200 {
		t.Fatalf("GET /deadletters: %d %v", code, err)
	}
	var got []string
	for _, d := range list.Deadletters {
		got = append(got, d.ID)
	}
	if want := []string{"1000-1", "1000-0", "999-0"}; !slices.Equal(got, want) {
		t.Errorf("dead letters %v, want %v (newest first over both partitions)", got, want)
	}
	if first := list.Deadletters[0]; first.Partition != 0 || !first.At.Equal(time.UnixMilli(1000)) || first.Fields["error"] != "boom" {
		t.Errorf("first dead letter %+v", first)
	}
	var one deadLetterJSON
	if code, err := s.Do(http.MethodGet, "/deadletters/5-0", nil, nil, &one); err != nil || code != 200 || one.Partition != 1 {
		t.Fatalf("GET /deadletters/5-0: %d %+v %v", code, one, err)
	}
	var replayed struct{ Replayed, Stream, ID string }
	if code, err := s.Do(http.MethodPost, "/deadletters/1000-0/replay", nil, nil, &replayed); err != nil || code != 200 {
		t.Fatalf("replay: %d %v", code, err)
	}
	if replayed.Replayed != "1000-0" || replayed.Stream != source {
		t.Errorf("replay answered %+v", replayed)
	}
	entries, err := s.RDB.XRange(ctx, source, replayed.ID, replayed.ID).Result()
	if err != nil || len(entries) != 1 || entries[0].Values["type"] != "order.created" || entries[0].Values["error"] != "original 1000-0" ||
		entries[0].Values["group"] != nil {
		t.Errorf("replayed entry %v %v: want the original fields only", entries, err)
	}
	if n := s.RDB.XLen(ctx, s.KS.DeadLetter(1)).Val(); n != 1 {
		t.Errorf("partition 1 holds %d dead letters after the replay, want 1", n)
	}
}

// Entry ids are unique only within one partition's stream: an id two
// partitions hold is 409 ambiguous_id (nothing replayed) until ?partition=
// names one, and then that one is read or replayed, not the other; a
// partition outside 0..SAGA_PARTITIONS-1 is 400; a dead letter whose copy
// was cut is never replayed (409 cannot_replay).
func TestDeadLetterPartitionsAndRefusals(t *testing.T) {
	s := sagatest.New(t, srv, map[string]string{"SAGA_PARTITIONS": "2"})
	s.StartAPI(nil)
	ctx := context.Background()
	for _, d := range []struct {
		partition int
		id        string
		truncated bool
	}{{0, "7-0", false}, {1, "7-0", false}, {1, "9-0", true}} {
		values := map[string]any{"group": "payment", "error": "boom", "deliveries": "5",
			"source_stream": s.KS.Stream(d.partition, "order.created"), "source_id": "1-1", "type": "order.created"}
		if d.truncated {
			values["truncated"] = "1 fields dropped or cut"
		}
		if err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: s.KS.DeadLetter(d.partition), ID: d.id, Values: values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	type apiError struct {
		Error struct{ Code, Message string }
	}
	published := func() int64 {
		return s.RDB.XLen(ctx, s.KS.Stream(0, "order.created")).Val() + s.RDB.XLen(ctx, s.KS.Stream(1, "order.created")).Val()
	}

	for _, path := range []string{"/deadletters/7-0", "/deadletters/7-0/replay"} {
		method := http.MethodGet
		if strings.HasSuffix(path, "/replay") {
			method = http.MethodPost
		}
		var e apiError
		code, err := s.Do(method, path, nil, nil, &e)
		if err != nil || code != http.StatusConflict || e.Error.Code != "ambiguous_id" ||
			!strings.Contains(e.Error.Message, "partitions 0, 1") || !strings.Contains(e.Error.Message, "?partition=") {
			t.Errorf("%s %s: %d %+v %v, want 409 ambiguous_id naming partitions 0, 1 and ?partition=", method, path, code, e, err)
		}
		for _, bad := range []string{"2", "-1", "one", ""} {
			var e apiError
			if code, err := s.Do(method, path+"?partition="+bad, nil, nil, &e); err != nil || code != http.StatusBadRequest || e.Error.Code != "invalid_partition" {
				t.Errorf("%s %s?partition=%s: %d %+v %v, want 400 invalid_partition", method, path, bad, code, e, err)
			}
		}
	}
	if n := published(); n != 0 {
		t.Fatalf("refused replays published %d entries", n)
	}

	var one deadLetterJSON
	if code, err := s.Do(http.MethodGet, "/deadletters/7-0?partition=1", nil, nil, &one); err != nil || code != 200 || one.Partition != 1 {
		t.Errorf("GET /deadletters/7-0?partition=1: %d %+v %v", code, one, err)
	}
	var replayed struct{ Replayed, Stream, ID string }
	if code, err := s.Do(http.MethodPost, "/deadletters/7-0/replay?partition=1", nil, nil, &replayed); err != nil || code != 200 {
		t.Fatalf("replay ?partition=1: %d %v", code, err)
	}
	if replayed.Stream != s.KS.Stream(1, "order.created") {
		t.Errorf("replayed on %s, want partition 1's stream", replayed.Stream)
	}
	if n := s.RDB.XLen(ctx, s.KS.DeadLetter(0)).Val(); n != 1 {
		t.Errorf("partition 0's 7-0 was touched by partition 1's replay")
	}
	// Only partition 0 holds 7-0 now: no partition needed.
	if code, err := s.Do(http.MethodGet, "/deadletters/7-0", nil, nil, &one); err != nil || code != 200 || one.Partition != 0 {
		t.Errorf("GET /deadletters/7-0 once unique: %d %+v %v", code, one, err)
	}

	var e apiError
	if code, err := s.Do(http.MethodPost, "/deadletters/9-0/replay", nil, nil, &e); err != nil || code != http.StatusConflict ||
		e.Error.Code != "cannot_replay" || !strings.Contains(e.Error.Message, "cut") {
		t.Errorf("replay of a truncated dead letter: %d %+v %v, want 409 cannot_replay", code, e, err)
	}
	if n := published(); n != 1 {
		t.Errorf("%d entries published, want only the one replay", n)
	}
	if n := s.RDB.XLen(ctx, s.KS.DeadLetter(1)).Val(); n != 1 {
		t.Errorf("partition 1 holds %d dead letters, want the truncated one kept", n)
	}
}

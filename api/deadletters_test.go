package api_test

import (
	"context"
	"net/http"
	"slices"
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

// Package deadletter reads the dead-letter streams and replays their entries.
// sagactl and the API's admin endpoints share it, so that a replay from the
// console and one from the shell do the same thing.
package deadletter

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/saga"
)

// ErrNotFound: no dead letter has this id.
var ErrNotFound = errors.New("no such dead letter")

// ErrBadID: the id is not a stream entry id.
var ErrBadID = errors.New("not a stream entry id")

// idRE is a complete stream entry id: dead letters are always named in full.
var idRE = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// ValidID reports whether id is a complete stream entry id.
func ValidID(id string) bool { return idRE.MatchString(id) }

// Letter is one dead-letter entry: the failing group, error and delivery
// count beside the original entry's fields (prefixed orig_).
type Letter struct {
	Partition int               `json:"partition"`
	ID        string            `json:"id"`
	Fields    map[string]string `json:"fields"`
}

// Replayed names the entry a replay published.
type Replayed struct {
	Replayed string `json:"replayed"`
	Stream   string `json:"stream"`
	ID       string `json:"id"`
}

func toStrings(v map[string]any) map[string]string {
	out := make(map[string]string, len(v))
	for k, x := range v {
		out[k] = fmt.Sprint(x)
	}
	return out
}

// List returns up to limit dead letters of each partition, newest first.
func List(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys, limit int) ([]Letter, error) {
	out := []Letter{}
	for p := range ks.Partitions {
		msgs, err := rdb.XRevRangeN(ctx, ks.DeadLetter(p), "+", "-", int64(limit)).Result()
		if err != nil {
			return nil, fmt.Errorf("read dead letters: %w", err)
		}
		for _, m := range msgs {
			out = append(out, Letter{Partition: p, ID: m.ID, Fields: toStrings(m.Values)})
		}
	}
	return out, nil
}

// Find returns a dead letter by id, looked up in every partition.
func Find(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys, id string) (*Letter, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	for p := range ks.Partitions {
		msgs, err := rdb.XRangeN(ctx, ks.DeadLetter(p), id, id, 1).Result()
		if err != nil {
			return nil, fmt.Errorf("read dead letter: %w", err)
		}
		if len(msgs) == 1 {
			return &Letter{Partition: p, ID: id, Fields: toStrings(msgs[0].Values)}, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
}

// Replay publishes a dead letter's original entry on its stream again and
// removes it from the dead-letter stream, in one script. The engine's fences
// still judge the replayed entry: a replay can never apply a transition its
// saga no longer waits for.
func Replay(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys, id string) (*Replayed, error) {
	d, err := Find(ctx, rdb, ks, id)
	if err != nil {
		return nil, err
	}
	source := d.Fields["source_stream"]
	if ks.PartitionOfKey(source) != d.Partition {
		return nil, fmt.Errorf("dead letter %s names no stream of its partition", id)
	}
	var fields []any
	for k, v := range d.Fields {
		switch k {
		case "group", "error", "deliveries", "source_stream", "source_id", "truncated":
			continue
		}
		fields = append(fields, strings.TrimPrefix(k, "orig_"), v)
	}
	newID, err := replayScript.Run(ctx, rdb, []string{ks.DeadLetter(d.Partition), source}, append([]any{id}, fields...)...).Text()
	if err != nil {
		if strings.Contains(err.Error(), "no such dead letter") {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return nil, fmt.Errorf("replay: %w", err)
	}
	return &Replayed{Replayed: id, Stream: source, ID: newID}, nil
}

//go:embed replay.lua
var replaySource string

var replayScript = redis.NewScript(replaySource)

package deadletter

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/saga"
)

// ErrNotFound: no dead letter has this id.
var ErrNotFound = errors.New("no such dead letter")

// ErrBadID: the id is not a stream entry id.
var ErrBadID = errors.New("not a stream entry id")

// ErrBadPartition: the partition is not one of 0..SAGA_PARTITIONS-1.
var ErrBadPartition = errors.New("no such partition")

// ErrAmbiguous: the id names a dead letter in more than one partition.
// Entry ids are unique only within one stream: two dead letters written in
// the same millisecond on two partitions share <ms>-0.
var ErrAmbiguous = errors.New("ambiguous")

// ErrCannotReplay: the dead letter cannot be published again as it is (its
// copy was cut, or it names no stream of its partition); nothing changed.
var ErrCannotReplay = errors.New("cannot be replayed")

// AnyPartition makes Find look a dead letter up in every partition.
const AnyPartition = -1

// idRE is a complete stream entry id: dead letters are always named in full.
var idRE = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// ValidID reports whether id is a complete stream entry id.
func ValidID(id string) bool { return idRE.MatchString(id) }

// splitID reads a stream entry id's milliseconds and sequence (0 for a
// part that does not parse).
func splitID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}

// CompareIDs orders stream entry ids by time, then sequence, as numbers:
// "999-0" is older than "1000-0".
func CompareIDs(a, b string) int {
	am, as := splitID(a)
	bm, bs := splitID(b)
	return cmp.Or(cmp.Compare(am, bm), cmp.Compare(as, bs))
}

// IDTime is when Redis added an entry, from its id (zero for an id that is
// not a stream entry id).
func IDTime(id string) time.Time {
	if !ValidID(id) {
		return time.Time{}
	}
	ms, _ := splitID(id)
	return time.UnixMilli(int64(ms)).UTC()
}

// Letter is one dead-letter entry: the failing group, error and delivery
// count beside the original entry's fields (prefixed orig_ where a name
// clashes), and when it was dead-lettered (the time its id carries).
type Letter struct {
	Partition int               `json:"partition"`
	ID        string            `json:"id"`
	At        time.Time         `json:"at"`
	Fields    map[string]string `json:"fields"`
}

func letterOf(p int, m redis.XMessage) Letter {
	fields := make(map[string]string, len(m.Values))
	for k, x := range m.Values {
		fields[k] = fmt.Sprint(x)
	}
	return Letter{Partition: p, ID: m.ID, At: IDTime(m.ID), Fields: fields}
}

// Replayed names the entry a replay published.
type Replayed struct {
	Replayed string `json:"replayed"`
	Stream   string `json:"stream"`
	ID       string `json:"id"`
}

// List returns the newest dead letters over every partition, newest first,
// at most limit of them.
func List(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys, limit int) ([]Letter, error) {
	if limit < 1 {
		return []Letter{}, nil
	}
	pipe := rdb.Pipeline()
	ranges := make([]*redis.XMessageSliceCmd, ks.Partitions)
	for p := range ranges {
		ranges[p] = pipe.XRevRangeN(ctx, ks.DeadLetter(p), "+", "-", int64(limit))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out := []Letter{}
	for p, r := range ranges {
		for _, m := range r.Val() {
			out = append(out, letterOf(p, m))
		}
	}
	// Each partition gave its own newest: merge them. Twins (one id on
	// two partitions) keep partition order, so the list is stable.
	slices.SortStableFunc(out, func(x, y Letter) int { return CompareIDs(y.ID, x.ID) })
	return out[:min(limit, len(out))], nil
}

// Find returns the dead letter id of partition p, or with AnyPartition the
// one dead letter of that id in any partition: ErrAmbiguous when more than
// one partition holds the id.
func Find(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys, id string, p int) (*Letter, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%w: %q", ErrBadID, id)
	}
	partitions := []int{p}
	switch {
	case p == AnyPartition:
		partitions = make([]int, ks.Partitions)
		for i := range partitions {
			partitions[i] = i
		}
	case p < 0 || p >= ks.Partitions:
		return nil, fmt.Errorf("%w: %d is not in 0..%d (SAGA_PARTITIONS is %d)", ErrBadPartition, p, ks.Partitions-1, ks.Partitions)
	}
	pipe := rdb.Pipeline()
	ranges := make([]*redis.XMessageSliceCmd, len(partitions))
	for i, q := range partitions {
		ranges[i] = pipe.XRangeN(ctx, ks.DeadLetter(q), id, id, 1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read dead letter: %w", err)
	}
	var found []Letter
	var in []string
	for i, r := range ranges {
		if msgs := r.Val(); len(msgs) == 1 {
			found = append(found, letterOf(partitions[i], msgs[0]))
			in = append(in, strconv.Itoa(partitions[i]))
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	case 1:
		return &found[0], nil
	default:
		return nil, fmt.Errorf("dead letter %s is %w: partitions %s each hold one with that id", id, ErrAmbiguous, strings.Join(in, ", "))
	}
}

// Replay publishes a dead letter's original entry on its stream again and
// removes it from the dead-letter stream, in one script; d is the letter as
// Find returned it. It refuses (ErrCannotReplay) a letter whose copy was
// cut, which would publish a partial entry, and one that names no stream
// of its partition (only a hand-written one can). The engine's fences still
// judge the replayed entry: a replay can never apply a transition its saga
// no longer waits for.
func Replay(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys, d *Letter) (*Replayed, error) {
	if cut, ok := d.Fields["truncated"]; ok {
		return nil, fmt.Errorf("dead letter %s %w: its copy of the entry was cut (%s), and replaying it would publish a partial entry",
			d.ID, ErrCannotReplay, cut)
	}
	source := d.Fields["source_stream"]
	if ks.PartitionOfKey(source) != d.Partition {
		return nil, fmt.Errorf("dead letter %s %w: it names no stream of its partition (source_stream %q)", d.ID, ErrCannotReplay, source)
	}
	var fields []any
	for k, v := range d.Fields {
		switch k {
		case "group", "error", "deliveries", "source_stream", "source_id":
			continue
		}
		fields = append(fields, strings.TrimPrefix(k, "orig_"), v)
	}
	newID, err := replayScript.Run(ctx, rdb, []string{ks.DeadLetter(d.Partition), source}, append([]any{d.ID}, fields...)...).Text()
	if err != nil {
		if strings.Contains(err.Error(), "no such dead letter") {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, d.ID)
		}
		return nil, fmt.Errorf("replay: %w", err)
	}
	return &Replayed{Replayed: d.ID, Stream: source, ID: newID}, nil
}

//go:embed replay.lua
var replaySource string

var replayScript = redis.NewScript(replaySource)

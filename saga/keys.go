package saga

import (
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Keys builds every key name in one place. Keys of one saga share the
// partition hash tag {N}, so one script can touch them all on Redis Cluster;
// state shared by many sagas has a tag of its own (Shared).
type Keys struct {
	Prefix     string
	Partitions int
}

// NewKeys returns the key names under prefix; partitions below 1 count as 1.
func NewKeys(prefix string, partitions int) Keys {
	if partitions < 1 {
		partitions = 1
	}
	return Keys{Prefix: prefix, Partitions: partitions}
}

// PartitionOf is the stable partition of a saga or order id.
func (k Keys) PartitionOf(id string) int {
	return int(crc32.ChecksumIEEE([]byte(id)) % uint32(k.Partitions))
}

// NewID returns a UUIDv7 whose partition is p, so that ids created together
// (an order and its saga, an Idempotency-Key's records) share one slot.
func (k Keys) NewID(p int) (string, error) {
	for {
		id, err := uuid.NewV7()
		if err != nil {
			return "", fmt.Errorf("new uuid: %w", err)
		}
		s := id.String()
		if k.PartitionOf(s) == p {
			return s, nil
		}
	}
}

func (k Keys) base(p int) string {
	return k.Prefix + ":{" + strconv.Itoa(p) + "}:"
}

// Stream is the stream of one event or command type.
func (k Keys) Stream(p int, typ string) string { return k.base(p) + typ }

// Saga is a saga's state hash.
func (k Keys) Saga(p int, sagaID string) string { return k.base(p) + "saga:" + sagaID }

// Record is a domain record kept in the saga's slot (the order).
func (k Keys) Record(p int, kind, id string) string { return k.base(p) + kind + ":" + id }

// Idempotency is the record of an API Idempotency-Key, by its digest.
func (k Keys) Idempotency(p int, digest string) string { return k.base(p) + "idem:" + digest }

// Index is the sorted set of the sagas in one status, scored by update time.
func (k Keys) Index(p int, status string) string { return k.base(p) + "index:" + status }

// Deadlines is the sorted set of saga ids scored by their step deadline.
func (k Keys) Deadlines(p int) string { return k.base(p) + "deadlines" }

// Retries is the sorted set of saga ids scored by when to re-send their
// current command (a compensation's back-off).
func (k Keys) Retries(p int) string { return k.base(p) + "retries" }

// Records maps the ids of the partition's unfinished sagas to their
// records ("<kind>:<id>"), so that a saga whose hash is lost can still mark
// its record failed.
func (k Keys) Records(p int) string { return k.base(p) + "records" }

// missingCode marks a saga whose hash was found gone, so that its loss is
// alerted once.
func (k Keys) Missing(p int, sagaID string) string { return k.base(p) + "missing:" + sagaID }

// DeadLetter is the partition's dead-letter stream.
func (k Keys) DeadLetter(p int) string { return k.base(p) + "deadletter" }

// Alerts is the partition's stream of problems an operator must look at.
func (k Keys) Alerts(p int) string { return k.base(p) + "alerts" }

// InPartition is a key of partition p, e.g. counters kept per partition
// (see the write key InPartition).
func (k Keys) InPartition(p int, name string) string { return k.base(p) + name }

// Shared is a key of state many sagas share, in a slot of its own:
// Shared("inventory", "available") is "saga:{inventory}:available".
func (k Keys) Shared(tag, name string) string { return k.Prefix + ":{" + tag + "}:" + name }

// Barrier is a saga's barrier in a shared slot: which of its steps' writes
// on that slot were applied (see effect.lua).
func (k Keys) Barrier(tag, sagaID string) string { return k.Shared(tag, "barrier:"+sagaID) }

// PartitionOfKey returns the partition of a key built by this Keyspace, or
// -1 when it has none.
func (k Keys) PartitionOfKey(key string) int {
	rest, ok := strings.CutPrefix(key, k.Prefix+":{")
	if !ok {
		return -1
	}
	end := strings.IndexByte(rest, '}')
	if end < 0 {
		return -1
	}
	p, err := strconv.Atoi(rest[:end])
	if err != nil {
		return -1
	}
	return p
}

// ValidID reports whether id is a saga or record id in the canonical form
// the engine issues (a lower-case UUID): only such ids may reach a key name.
func ValidID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

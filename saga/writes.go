package saga

import (
	"fmt"
	"slices"
	"strconv"
)

// Write is one Redis write of an operation's effect, applied by the engine:
// with the saga's transition in one script when it touches only the saga's
// partition, else once behind a barrier in the other slot before the
// transition. Either way an effect is applied once per step of a saga,
// however often its message is delivered, and never for a message its saga
// does not wait for.
type Write struct {
	op     string // hset, hincrby, take
	key    Key
	field  string
	value  string
	reason string // take: the step's failure when the field holds too little
}

// Key names a hash an operation writes, relative to the engine's prefix.
type Key struct {
	own       bool // the saga's own hash
	partition bool // in the saga's partition
	tag, name string
}

// Shared names a hash of state that many sagas share, in a slot of its own:
// "<prefix>:{<tag>}:<name>", e.g. Shared("inventory", "available"). Its
// writes are applied before the transition, once, behind the saga's barrier
// in that slot. One outcome may write Shared hashes of one tag only (two
// slots cannot be written all or nothing), and a step whose execution
// writes them must have a Finally operation.
func Shared(tag, name string) Key { return Key{tag: tag, name: name} }

// InPartition names a hash in the saga's partition, "<prefix>:{N}:<name>"
// (e.g. counters kept per partition): written with the transition.
func InPartition(name string) Key { return Key{partition: true, name: name} }

// Set writes a field of the saga's own record of this step's service: the
// field "<service>.<name>" of the saga's hash. It is the service's per-saga
// state (a shipment id, a status), kept and expired with the saga, shown by
// redis-cli HGETALL, and read back by Call.Field in compensations.
func Set(name string, value any) Write {
	return Write{op: "hset", key: Key{own: true}, field: name, value: str(value)}
}

// HSet sets a field of a hash.
func HSet(key Key, field string, value any) Write {
	return Write{op: "hset", key: key, field: field, value: str(value)}
}

// HIncrBy adds n to a field of a hash.
func HIncrBy(key Key, field string, n int64) Write {
	return Write{op: "hincrby", key: key, field: field, value: strconv.FormatInt(n, 10)}
}

// Take subtracts n from a field of a hash, all or nothing: when any Take of
// an outcome finds its field holding less than its n, none of the outcome's
// writes is applied and the step fails with that Take's reason (e.g. a
// reservation of stock: Take(Shared("inventory", "available"), sku, qty,
// "stock insufficient: "+sku)).
func Take(key Key, field string, n int64, reason string) Write {
	return Write{op: "take", key: key, field: field, value: strconv.FormatInt(n, 10), reason: reason}
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// resolve names a write's key for one saga.
func (k Key) resolve(keys Keys, p int, sagaKey string) string {
	switch {
	case k.own:
		return sagaKey
	case k.partition:
		return keys.InPartition(p, k.name)
	}
	return keys.Shared(k.tag, k.name)
}

// writeSet is an outcome's writes grouped for the scripts: those on the
// saga's partition, applied with the transition, and those on each other
// slot, applied behind a barrier first.
type writeSet struct {
	local  []resolvedWrite
	shared map[string][]resolvedWrite // by tag
}

type resolvedWrite struct {
	Write
	key string
}

func (e *Engine) splitWrites(ws []Write, service string, p int, sagaKey string) writeSet {
	var set writeSet
	for _, w := range ws {
		r := resolvedWrite{Write: w, key: w.key.resolve(e.keys, p, sagaKey)}
		if w.key.own {
			r.field = service + "." + w.field
		}
		if w.key.own || w.key.partition {
			set.local = append(set.local, r)
			continue
		}
		if set.shared == nil {
			set.shared = map[string][]resolvedWrite{}
		}
		set.shared[w.key.tag] = append(set.shared[w.key.tag], r)
	}
	return set
}

// writeArgs appends writes to a script's KEYS and ARGV: ARGV gets the
// number of writes, then per write its op, the index of its key in KEYS,
// its field and its value (a take's reason follows in ARGV as a fifth).
func writeArgs(keys []string, args []any, ws []resolvedWrite) ([]string, []any) {
	args = append(args, len(ws))
	for _, w := range ws {
		idx := slices.Index(keys, w.key)
		if idx < 0 {
			keys = append(keys, w.key)
			idx = len(keys) - 1
		}
		args = append(args, w.op, idx+1, w.field, w.value, w.reason)
	}
	return keys, args
}

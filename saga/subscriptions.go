package saga

import (
	"slices"

	"github.com/streamsaga/streamsaga/streams"
)

// Groups maps every consumer group of the engine's saga types (their
// services, and the orchestrator) to the message types it reads, derived
// from the declarations.
func (e *Engine) Groups() map[string][]string {
	out := map[string][]string{Orchestrator: {ReplyType}}
	for key := range e.routes {
		group, typ := cutRoute(key)
		if !slices.Contains(out[group], typ) {
			out[group] = append(out[group], typ)
		}
	}
	for _, types := range out {
		slices.Sort(types)
	}
	return out
}

func cutRoute(key string) (group, typ string) {
	i := len(key) - 1
	for ; i >= 0 && key[i] != '|'; i-- {
	}
	return key[:i], key[i+1:]
}

// Services lists the services of the engine's saga types, and the
// orchestrator, sorted.
func (e *Engine) Services() []string {
	var out []string
	for g := range e.Groups() {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// MessageTypes lists every message type that has a stream: each saga
// type's events and commands, and the replies (to trim and to show).
func (e *Engine) MessageTypes() []string {
	out := []string{ReplyType}
	for _, d := range e.defs {
		for _, typ := range d.types() {
			if !slices.Contains(out, typ) {
				out = append(out, typ)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Subscriptions returns, per partition, the subscription of every group
// (all: every worker creates every group at start, so that messages wait
// for a service that is not running yet) and of the groups of services on
// partitions this worker reads (run; every service and partition when
// empty).
func (e *Engine) Subscriptions(services []string, partitions []int) (all, run []streams.Subscription) {
	groups := e.Groups()
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	for _, group := range names {
		for p := range e.keys.Partitions {
			sub := streams.Subscription{Group: group, Partition: p}
			for _, typ := range groups[group] {
				sub.Streams = append(sub.Streams, e.keys.Stream(p, typ))
			}
			all = append(all, sub)
			if (len(services) == 0 || slices.Contains(services, group)) && (len(partitions) == 0 || slices.Contains(partitions, p)) {
				run = append(run, sub)
			}
		}
	}
	return all, run
}

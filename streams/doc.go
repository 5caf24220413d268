// Package streams is streamsaga's Redis Streams transport: the
// consumer-group runner (batched XREADGROUP on a client of its own, bounded
// concurrency, XAUTOCLAIM reclaim), the batching of concurrent callers'
// commands into pipelines, dead-letter hand-off and safe trimming.
//
// It knows nothing about sagas or the order domain (key names are the saga
// package's): a Handler commits what it consumed (the saga engine does that
// with one atomic script), and a DeadLetterer decides what happens to
// poison. It imports only the event envelope and go-redis.
package streams

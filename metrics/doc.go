// Package metrics exposes streamsaga's Prometheus metrics on a private
// registry: saga outcomes by type and style, handler outcomes and
// durations, claims, dead letters, sweeper actions, per stream and group
// length, lag, pending entries and the age of the oldest one, Redis
// connection pool statistics, and the API's requests by route and status
// code. The binaries serve it at /metrics.
package metrics

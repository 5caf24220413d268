// Package redislog sends go-redis's own log lines (reconnects, pool and
// cluster notices) through slog, so that a binary's stderr stays one JSON
// object per line. go-redis keeps its logger in a process-wide variable:
// each binary calls Use once, in main, before it connects.
package redislog

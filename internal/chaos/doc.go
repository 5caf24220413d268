// Package chaos is the fault-injection harness behind cmd/chaos: it runs
// the real API and worker binaries against a redis-server with AOF, drives
// a load that keeps a ledger of every acknowledged order (retrying unknown
// outcomes with the same Idempotency-Key), injects one kind of fault per
// scenario (SIGKILL, SIGSTOP, restarts, a hostile TCP proxy, duplicate
// deliveries, poison entries, trimming under paused consumers…) and then
// checks the invariants C1–C8 of RELIABILITY.md (b).
package chaos

// Package worker wires one worker process of the product: the saga engine
// with the order saga from the configuration, a saga.Worker running the
// services of WORKER_SERVICES (reading, reclaiming, sweeping deadlines,
// re-sending compensations), the stream trimmers and the metrics server.
// cmd/worker and cmd/dev call Run.
//
// Shutdown order: stop reading (blocked reads are woken with CLIENT
// UNBLOCK), drain the handlers in flight, stop the sweeper and trimmers,
// close Redis.
package worker

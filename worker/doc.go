// Package worker wires one worker process of the product: the saga engine
// with the order saga from the configuration, a saga.Worker running the
// services of WORKER_SERVICES (reading, reclaiming, sweeping deadlines,
// re-sending compensations), the stream trimmers and, on
// WORKER_METRICS_ADDR, an HTTP server of /metrics, /healthz (liveness) and
// /readyz (set up, reading, Redis answers). cmd/worker calls Run; cmd/dev
// calls Serve with a listener of its own for each of its workers.
//
// Shutdown order: stop reading (blocked reads are woken with CLIENT
// UNBLOCK), drain the handlers in flight, stop the sweeper and trimmers,
// close Redis.
package worker

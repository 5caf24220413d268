// Package worker wires one worker process: the consumer groups of the
// services it runs, the reclaimer and the stream trimmer, on top of the saga
// engine and the order domain. cmd/worker and cmd/dev call Run.
//
// Shutdown order: stop reading (the blocking-read client is closed so no
// BLOCK is waited on), drain the handlers in flight, stop the trimmer, close
// Redis.
package worker

// Package api is streamsaga's HTTP layer (SPEC section 7): strict request
// decoding and validation, JSON errors, Idempotency-Key handling and the
// server's timeouts and size limits. It calls the order service and the saga
// engine; it never builds a Redis key from user input.
package api

// Package api is streamsaga's HTTP layer (SPEC section 7): strict request
// decoding and validation, JSON errors, Idempotency-Key handling and the
// server's timeouts and size limits. Every request gets an X-Request-Id, one
// access log line and its request metrics (by route pattern, never by raw
// path); the admin actions (saga retry, stock, dead-letter replay) require
// the ADMIN_TOKEN bearer token when one is configured. It calls the order
// service, the saga engine and the dead-letter store; it never builds a
// Redis key from user input. openapi.yaml describes every answer, and its
// test holds the API to it.
package api

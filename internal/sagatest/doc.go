// Package sagatest helps tests run the real product against a real
// redis-server: it builds configurations, runs workers and the API
// in-process, and checks the invariants of SPEC section 9.
//
// The Checker is independent of the product on purpose: it imports nothing
// of it, computes what must hold from what the test itself placed (its own
// orders, items and initial stock) and reads Redis with raw commands, so a
// bug in the product's bookkeeping or decoding cannot hide from it. Product
// gives tests the product's own read paths for looking at sagas in flight;
// invariants are never checked through it.
package sagatest

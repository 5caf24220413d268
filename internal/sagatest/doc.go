// Package sagatest helps tests run the real product against a real
// redis-server: it builds configurations, runs workers in-process and checks
// the invariants of SPEC section 9 (terminal states, stock and money
// conservation, empty pending lists).
package sagatest

// Package handlers is the order domain, written only against the public
// API of package saga: the ORDER_SAGA declaration (order → payment →
// inventory → shipping) and each service's business operations.
//
// The services' effects reach Redis three ways, one per kind of state:
//   - shipping keeps its per-saga record in the saga's own hash (saga.Set),
//     written with the saga's transition in one script;
//   - inventory's stock is shared by every saga, in a slot of its own
//     ({inventory}): reservations are saga.Take writes that the engine
//     applies once behind a barrier, all or nothing;
//   - payment calls a (fake) external gateway with the saga's idempotency
//     key: a checked step, which the engine checks before calling and whose
//     late charges it refunds.
//
// The fake gateway keeps a ledger per saga and running totals, which tests
// reconcile. Nothing here routes a message, checks a version or commits a
// transition: the engine does.
package handlers

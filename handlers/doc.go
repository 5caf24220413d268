// Package handlers is the order domain: the order, payment, inventory and
// shipping services, their own data ("databases") in Redis, and the
// ORDER_SAGA definition that ties their events together.
//
// Each service changes its own data idempotently, keyed by saga id and step,
// with a script that is also the step's barrier (a repeated call returns the
// first decision; a compensation that arrives before its action leaves a
// tombstone that blocks the action). Only then does it commit the saga
// transition through the engine. A crash in between is repaired by
// redelivery, never by a double effect.
package handlers

// Package saga is streamsaga's saga engine: saga definitions, the saga state
// hash (SPEC section 6) and the atomic Lua scripts that start a saga and
// commit each transition (state change + next message + deadline + XACK in
// one script, fenced on the saga's version).
//
// The engine is generic: it does not know the order domain. A Definition
// lists a saga type's steps and, for choreography, what publishing each event
// does to the saga. It sits between the domain (package handlers) and the
// transport (package streams).
package saga

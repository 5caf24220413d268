// Package event is the wire vocabulary of streamsaga: the flat stream-entry
// envelope every message travels in, its field names and its decoding.
//
// It is the leaf of the dependency graph and imports only the standard
// library. It knows nothing of any saga type: a message's type string names
// the stream it travels on, so renaming one is a data migration, and the
// saga types that declare them own those names.
package event

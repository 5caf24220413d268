// Package event is the vocabulary of streamsaga: event and command type names,
// the flat stream-entry envelope and the order domain's payloads.
//
// It is the leaf of the dependency graph and imports only the standard
// library. An event's type string is a wire contract: it names the stream the
// event travels on, so renaming one is a data migration, not a refactor.
package event

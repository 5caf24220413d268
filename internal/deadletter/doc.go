// Package deadletter reads the dead-letter streams and replays their entries.
// sagactl and the API's admin endpoints share it, so that a replay from the
// console and one from the shell do the same thing. An entry id is unique
// only within one stream, so a dead letter is named by its partition and
// id. Its stream-id helpers (CompareIDs, IDTime) also order and date the
// console's alert pages.
package deadletter

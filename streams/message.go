package streams

import (
	"context"
	"time"

	"github.com/streamsaga/streamsaga/event"
)

// Message is one stream entry delivered to a consumer group.
type Message struct {
	Stream    string
	ID        string
	Group     string
	Partition int
	// Values are the raw fields; nil when the entry was deleted while pending.
	Values map[string]any
	// Env is the decoded envelope, nil when DecodeErr is set.
	Env       *event.Envelope
	DecodeErr error
	// Deliveries counts how often the entry was delivered, this time included.
	Deliveries int64
	// ReadAt is when this delivery was read: the entry's idle time, which a
	// reclaim by another worker is judged on, runs from here.
	ReadAt time.Time
}

// Handler handles one message. On success it must have acknowledged the
// entry, normally inside the script that commits the saga transition. An
// error leaves the entry pending: it is reclaimed after CLAIM_MIN_IDLE and
// retried, then dead-lettered after MAX_DELIVERIES.
type Handler interface {
	Handle(ctx context.Context, m *Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m *Message) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, m *Message) error { return f(ctx, m) }

// DeadLetterer takes an entry that cannot be handled: undecodable, deleted
// while pending, or failed too often. It must move the entry to the
// dead-letter stream and acknowledge it in one step.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, m *Message, reason string) error
}

// NewMessage builds the Message the runner delivers for one entry read
// through a group: its envelope decoded (or the decoding error kept), one
// delivery, read now.
func NewMessage(stream, group string, partition int, id string, values map[string]any) *Message {
	m := &Message{Stream: stream, ID: id, Group: group, Partition: partition, Values: values, Deliveries: 1, ReadAt: time.Now()}
	m.Env, m.DecodeErr = event.Decode(values)
	return m
}

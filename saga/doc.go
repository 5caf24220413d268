// Package saga is streamsaga's saga library: declare a saga type once, and
// the engine runs every hop of it on Redis Streams, in both styles
// (choreography and orchestration), with stateless workers.
//
// A saga type is declared with Define and Step: its steps in order, the
// service (consumer group) that performs each, and each step's execute and
// compensate operations. From that one declaration the engine derives the
// consumer groups, the streams to read and to trim, the routing of every
// event and command, and the orchestration plan:
//
//	trip := saga.Define("TRIP",
//		saga.Step("reserveFlight", "flights", flights.Reserve, flights.Cancel),
//		saga.Step("bookHotel", "hotels", hotels.Book, hotels.Cancel),
//	)
//
// An Operation is business code only. It gets a Call — the saga's id, the
// step, the saga's context decoded into the user's type, an idempotency
// key — and returns an Outcome: OK with a result, or Fail with a reason,
// plus the Redis writes of its effect (Set, HSet, HIncrBy, Take). The engine
// owns everything else (Engine.Handle): the check that a message is the one
// its saga waits for (the version fence and the message's identity),
// applying the writes exactly once with the saga's transition, the next
// event or command, deadlines and the timeout sweeper, retries with
// back-off, dead letters, and undoing an effect that lands after its saga
// gave up on the step. A participant never calls back into the engine.
//
// A hop is one script where it can be: the fence, the operation's writes
// (on one Redis also those on another slot, such as shared stock), the
// transition, the next message, the deadline and the acknowledgement. The
// last step's success completes the saga in the same way, with every
// step's Finally operation. The commands of the hops a worker runs at once
// reach Redis together, in pipelines (streams.Batcher).
//
// Where things live:
//   - define.go: the public declaration (Define, Step, Call, Outcome);
//     writes.go: the writes an operation returns;
//   - definition.go: the untyped definition and the routes derived from it;
//     subscriptions.go: the groups and streams a worker reads;
//   - engine.go: Engine, its options, starting a saga;
//   - hop.go: one message's hop (choreography, and what both styles share);
//     orchestrator.go: the orchestrator, its replies and retries;
//   - sweeper.go: deadlines; deadletter.go: dead letters; fence.go: the
//     fence, refusals and lost sagas;
//   - patch.go: a transition, typed; lua/: the scripts that apply them, one
//     per kind of transition, each validating before it writes;
//   - keys.go: every key name; state.go: a saga as GET /sagas/{id} shows it.
//
// The package depends on streams (the transport) and event (the envelope),
// never on a domain: the order saga (package handlers) and the examples are
// users of this API like any other.
package saga

package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/streamsaga/streamsaga/streams"
)

// Operation is the business code of one step: its execution, its
// compensation or its finalisation. It gets the saga's context decoded into
// the user's type and returns what happened: OK with a result, or a
// business failure with its reason, plus the Redis writes of its effect,
// which the engine applies atomically with the saga's transition. An error
// is not a business outcome: the message is delivered again later (after
// MAX_DELIVERIES it is dead-lettered and the saga compensated).
//
// Operations must be deterministic in their writes for one saga and step:
// a message can be handled more than once, and the engine applies the
// writes of one of those runs, exactly once. Calls to systems outside Redis
// must be idempotent under Call.IdempotencyKey (see StepDef.Checked).
type Operation[T any] func(ctx context.Context, c *Call[T]) (Outcome, error)

// Phase says which operation of a step runs.
type Phase string

// Phases of a step.
const (
	Execute    Phase = "execute"
	Compensate Phase = "compensate"
	// Finalize runs a step's Finally operation once its saga completed.
	Finalize Phase = "finalize"
)

// Call is one run of an operation.
type Call[T any] struct {
	// SagaID is the saga's id.
	SagaID string
	// Step is the step's name; Phase says which of its operations runs.
	Step  string
	Phase Phase
	// Data is the saga's context, as it was started.
	Data T
	// IdempotencyKey names this step of this saga ("<saga id>:<step>") for
	// systems outside Redis: a repeated call with the same key must not
	// repeat the effect, and a compensation under the key of an execution
	// that never happened must block it (see StepDef.Checked).
	IdempotencyKey string
	fields         map[string]string
}

// Field returns a field this step's service wrote on the saga with Set.
// Only compensations and finalisations see them: an execution runs before
// anything is read of the saga.
func (c *Call[T]) Field(name string) string { return c.fields[name] }

// Outcome is what an operation decided.
type Outcome struct {
	ok     bool
	reason string
	result any
	writes []Write
}

// OK is a success with a result (stored as the step's result, shown by
// GET /sagas/{id}; nil for none) and the writes of its effect.
func OK(result any, writes ...Write) Outcome {
	return Outcome{ok: true, result: result, writes: writes}
}

// Fail is a business failure: the step did not take effect, and the saga
// compensates the steps before it. For a compensation, Fail means "not now":
// it is retried with back-off, then the saga becomes FAILED with an alert.
// Writes given with a failure are applied too (a record of the refusal).
func Fail(reason string, writes ...Write) Outcome {
	return Outcome{reason: reason, writes: writes}
}

// With adds writes to an outcome.
func (o Outcome) With(writes ...Write) Outcome {
	o.writes = append(append([]Write(nil), o.writes...), writes...)
	return o
}

// OK reports whether the outcome is a success.
func (o Outcome) OK() bool { return o.ok }

// Reason is a failure's reason.
func (o Outcome) Reason() string { return o.reason }

// Saga is a saga type, declared once with Define: its steps, the service
// that performs each of their operations, and the events (choreography)
// and commands (orchestration) that connect them. Consumer groups, the
// streams to read and trim, the routing of every message and the
// orchestration plan are derived from it.
type Saga[T any] struct {
	name                   string
	steps                  []*StepDef[T]
	started                string
	completed, compensated string
	owner                  string
	validate               func(*T) error
}

// StepDef is one step of a saga type, made by Step.
type StepDef[T any] struct {
	name, service                  string
	execute, compensate, finally   Operation[T]
	completed, failed, compensated string
	abandoned                      string
	executeCmd, compensateCmd      string
	checked                        bool
}

// Define declares a saga type: name (e.g. "TRIP_SAGA") and its steps, run in
// order. In choreography each step's service reacts to the event of the
// step before; in orchestration a stateless orchestrator sends each step's
// command. When a step fails, the steps before it that have a compensation
// are compensated in reverse order. The first step's service owns the saga:
// in choreography it completes it.
//
// A definition is checked when an Engine is made with it; errors name the
// problem.
func Define[T any](name string, steps ...*StepDef[T]) *Saga[T] {
	s := &Saga[T]{name: name, steps: steps, started: name + ".started",
		completed: name + ".completed", compensated: name + ".compensated"}
	if len(steps) > 0 && steps[0] != nil {
		s.owner = steps[0].service
	}
	return s
}

// Step declares a step: its name, the service (consumer group) that
// performs its operations, and its execute and compensate operations.
//
// A nil execute makes the step done by whoever starts the saga (its effect
// is created with the saga, e.g. an order record); only the first step may
// have one. A nil compensate means the step cannot be undone: a failure
// after it compensates the steps before it only.
//
// Event and command names are derived from the step's name
// ("<step>.completed", "<step>.failed", "<step>.compensated",
// "cmd.<step>", "cmd.<step>.compensate"); Events and Commands name them
// otherwise. Every name is a stream: renaming one is a migration.
func Step[T any](name, service string, execute, compensate Operation[T]) *StepDef[T] {
	return &StepDef[T]{name: name, service: service, execute: execute, compensate: compensate,
		completed: name + ".completed", failed: name + ".failed", compensated: name + ".compensated",
		abandoned: name + ".abandoned", executeCmd: "cmd." + name, compensateCmd: "cmd." + name + ".compensate"}
}

// Events names the step's choreography events: published when it
// completed, failed, and was compensated.
func (s *StepDef[T]) Events(completed, failed, compensated string) *StepDef[T] {
	s.completed, s.failed, s.compensated = completed, failed, compensated
	return s
}

// Abandoned names the event the engine publishes, in choreography, to make
// the last step's service compensate it when its outcome is unknown (its
// message was dead-lettered, or every step completed and the saga's end
// stalled). Default "<step>.abandoned".
func (s *StepDef[T]) Abandoned(event string) *StepDef[T] {
	s.abandoned = event
	return s
}

// Commands names the step's orchestration commands.
func (s *StepDef[T]) Commands(execute, compensate string) *StepDef[T] {
	s.executeCmd, s.compensateCmd = execute, compensate
	return s
}

// Checked declares that the step's operations reach outside Redis (an HTTP
// call): the engine checks that the message is the one its saga waits for
// before calling them, and undoes an effect that landed after the saga gave
// up on the step by calling the compensation. Such operations must be
// idempotent under Call.IdempotencyKey, and a compensation that comes
// first must block a late execution (a null compensation with a barrier).
// Steps whose effects are only Redis writes need none of this: their
// writes are applied with the transition, exactly once.
func (s *StepDef[T]) Checked() *StepDef[T] {
	s.checked = true
	return s
}

// Finally adds an operation that runs, once, when the saga completes: it
// makes the step's effect final (e.g. reserved units leave the stock). Its
// writes apply with the transition that completes the saga (on a Redis
// Cluster, in a hop of its own right after it). A
// step whose execution writes Shared state must have one: the record of
// that write is kept until the step is finalised or compensated.
func (s *StepDef[T]) Finally(op Operation[T]) *StepDef[T] {
	s.finally = op
	return s
}

// Started names the choreography event that starts the saga (consumed by
// the first step's service). Default "<name>.started". When the first step
// is done by whoever starts the saga, its completed event starts it instead.
func (s *Saga[T]) Started(event string) *Saga[T] {
	s.started = event
	return s
}

// Ends names the events published when a saga of this type ends: completed
// (on a Redis Cluster the steps that have a Finally operation react to it)
// and compensated.
// Defaults "<name>.completed" and "<name>.compensated".
func (s *Saga[T]) Ends(completed, compensated string) *Saga[T] {
	s.completed, s.compensated = completed, compensated
	return s
}

// Validate declares a check of the saga's context, run on every message
// before an operation sees it: a context that fails it is poison, and the
// message is dead-lettered at once (its saga compensates, like after any
// dead letter).
func (s *Saga[T]) Validate(check func(*T) error) *Saga[T] {
	s.validate = check
	return s
}

// Name is the saga type's name.
func (s *Saga[T]) Name() string { return s.name }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// spec turns the declaration into the engine's untyped definition,
// checking it.
func (s *Saga[T]) spec() (*definition, error) {
	d := &definition{Type: s.name, Started: s.started, Completed: s.completed, Compensated: s.compensated,
		Owner: s.owner}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(s.name+": "+format, args...)) }
	if !nameRE.MatchString(s.name) {
		bad("a saga name is 1-64 characters of [A-Za-z0-9._-]")
	}
	if len(s.steps) == 0 {
		bad("no steps")
	}
	seen := map[string]bool{}
	for i, st := range s.steps {
		if st == nil {
			bad("step %d is nil", i)
			continue
		}
		if !nameRE.MatchString(st.name) || !nameRE.MatchString(st.service) {
			bad("step %d: step and service names are 1-64 characters of [A-Za-z0-9._-] (%q, %q)", i, st.name, st.service)
		}
		if seen[st.name] {
			bad("two steps named %s", st.name)
		}
		seen[st.name] = true
		if st.execute == nil && (i > 0 || len(s.steps) == 1) {
			bad("step %s has no execute operation (only the first of several steps may be done by the starter)", st.name)
		}
		d.Steps = append(d.Steps, stepSpec{
			Name: st.name, Service: st.service, Execute: st.executeCmd, Compensate: st.compensateCmd,
			Completed: st.completed, Failed: st.failed, Compensated: st.compensated, Abandoned: st.abandoned,
			CanExecute: st.execute != nil, CanCompensate: st.compensate != nil, HasFinally: st.finally != nil,
			Checked: st.checked,
		})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := d.derive(); err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	return d, nil
}

// run calls the operation of step i in phase p on data. The context is
// decoded once per hop: dc keeps it for the hop's other operations (nil:
// decode for this call only).
func (s *Saga[T]) run(ctx context.Context, i int, p Phase, sagaID string, data json.RawMessage, fields map[string]string, dc *decoded) (Outcome, error) {
	st := s.steps[i]
	var op Operation[T]
	switch p {
	case Execute:
		op = st.execute
	case Compensate:
		op = st.compensate
	case Finalize:
		op = st.finally
	}
	if op == nil {
		return OK(nil), nil // nothing to do: the starter did it, or nothing undoes it
	}
	c := &Call[T]{SagaID: sagaID, Step: st.name, Phase: p, IdempotencyKey: sagaID + ":" + st.name, fields: fields}
	if v, ok := dc.get(data).(*T); ok {
		c.Data = *v
	} else {
		if err := json.Unmarshal(data, &c.Data); err != nil {
			return Outcome{}, streams.Permanent(fmt.Errorf("decode the context of saga %s: %w", sagaID, err))
		}
		if s.validate != nil {
			if err := s.validate(&c.Data); err != nil {
				return Outcome{}, streams.Permanent(fmt.Errorf("the context of saga %s: %w", sagaID, err))
			}
		}
		v := c.Data
		dc.put(data, &v)
	}
	return op(ctx, c)
}

// decoded keeps a saga's context decoded (and validated) for the operations
// of one hop: decoding it is the larger part of an operation's cost. Each
// operation gets a copy of the value; operations must not modify what it
// points to (slices, maps).
type decoded struct {
	data json.RawMessage
	v    any
}

func (dc *decoded) get(data json.RawMessage) any {
	if dc == nil || dc.v == nil || string(dc.data) != string(data) {
		return nil
	}
	return dc.v
}

func (dc *decoded) put(data json.RawMessage, v any) {
	if dc != nil {
		dc.data, dc.v = data, v
	}
}

// definer is what an Engine needs of a Saga of any context type.
type definer interface {
	spec() (*definition, error)
	run(ctx context.Context, step int, p Phase, sagaID string, data json.RawMessage, fields map[string]string, dc *decoded) (Outcome, error)
}

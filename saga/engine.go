package saga

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/streams"
)

//go:embed lua/*.lua
var luaFS embed.FS

// The scripts that change a saga share prelude.lua (writes, the fence, the
// transition); it is prepended to each when it is loaded.
var (
	startScript      = luaScript("start.lua", false)
	hopScript        = luaScript("hop.lua", true)
	replyScript      = luaScript("reply.lua", true)
	sweepScript      = luaScript("sweep.lua", true)
	redriveScript    = luaScript("redrive.lua", true)
	retryScript      = luaScript("retry.lua", true)
	deadLetterScript = luaScript("deadletter.lua", true)
	onceScript       = luaScript("once.lua", true)
	triedScript      = luaScript("tried.lua", true)
	effectScript     = luaScript("effect.lua", true)
	forwardScript    = luaScript("forward.lua", false)
	missingScript    = luaScript("missing.lua", false)
)

func luaScript(name string, prelude bool) *redis.Script {
	src, err := fs.ReadFile(luaFS, "lua/"+name)
	if err != nil {
		panic(fmt.Sprintf("embedded script %s: %v", name, err)) // a build defect
	}
	if prelude {
		pre, err := fs.ReadFile(luaFS, "lua/prelude.lua")
		if err != nil {
			panic(fmt.Sprintf("embedded script prelude.lua: %v", err))
		}
		src = append(append(pre, '\n'), src...)
	}
	return redis.NewScript(string(src))
}

// Saga styles, chosen per saga when it starts.
const (
	ModeChoreography  = event.ModeChoreography
	ModeOrchestration = event.ModeOrchestration
)

// Saga statuses (SPEC section 6). FAILED is not final: an operator can
// drive such a saga again.
const (
	StatusInProgress   = "IN_PROGRESS"
	StatusCompensating = "COMPENSATING"
	StatusCompleted    = "COMPLETED"
	StatusCompensated  = "COMPENSATED"
	StatusFailed       = "FAILED"
)

// Statuses lists every saga status.
var Statuses = []string{StatusInProgress, StatusCompensating, StatusCompleted, StatusCompensated, StatusFailed}

// Step statuses as State shows them. A step is PENDING until its forward
// action ran; then COMPLETED, or FAILED (the action failed, or the saga
// gave up on it: dead letter, timeout); COMPENSATED once the effect of a
// COMPLETED step was undone; COMPENSATION_FAILED when its compensation
// failed for good (the saga is FAILED and the step's effect may remain).
// The saga hash keeps the forward outcome in step.<i>.status and the
// compensation's in step.<i>.compensation: COMPENSATION_FAILED is only
// shown.
const (
	StepPending            = "PENDING"
	StepCompleted          = "COMPLETED"
	StepCompensated        = "COMPENSATED"
	StepFailed             = "FAILED"
	StepCompensationFailed = "COMPENSATION_FAILED"
)

// Record statuses the engine writes on a saga's record when it ends.
const (
	RecordCompleted = "COMPLETED"
	RecordCancelled = "CANCELLED"
	RecordFailed    = "FAILED"
)

// Sentinel errors.
var (
	// ErrNotFound: no saga (or record) with that id.
	ErrNotFound = errors.New("not found")
	// ErrIdempotencyMismatch: an idempotency key was reused with another request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrNotFailed: only a FAILED saga can be retried.
	ErrNotFailed = errors.New("saga is not FAILED")
	// ErrCannotRetry: nothing in the saga's definition can undo what is left.
	ErrCannotRetry = errors.New("saga cannot be re-driven")
)

// Defaults of Options.
const (
	DefaultPrefix               = "saga"
	DefaultStepTimeout          = 30 * time.Second
	DefaultRetention            = 168 * time.Hour
	DefaultIdempotencyTTL       = 24 * time.Hour
	DefaultCompensationAttempts = 5
	DefaultBackoff              = 200 * time.Millisecond
	DefaultBackoffMax           = 30 * time.Second
)

// pipelinesOnTheWire bounds an engine's pipelines in flight at once: one
// being answered while the next fills is enough to keep a connection busy.
const pipelinesOnTheWire = 2

// Options configure an Engine. Zero values take the defaults above.
type Options struct {
	// Prefix starts every key. Default "saga".
	Prefix string
	// Partitions is the number of partition hash tags {N}; sagas spread
	// over them by a hash of their id. Default 1.
	Partitions int
	// StepTimeout is each step's deadline.
	StepTimeout time.Duration
	// SagaTimeout, when set, is the whole saga's deadline, which bounds
	// every forward step's.
	SagaTimeout time.Duration
	// Retention is how long a finished saga is kept (and a barrier of its
	// writes on another slot: a saga must end within it).
	Retention time.Duration
	// IdempotencyTTL is how long a start's idempotency key is remembered.
	IdempotencyTTL time.Duration
	// CompensationAttempts is how often a compensation is tried (or
	// re-sent after its deadline) before the saga becomes FAILED.
	CompensationAttempts int
	// Backoff is the wait before the first retry of a refused compensation;
	// it doubles on each retry up to BackoffMax.
	Backoff, BackoffMax time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnStatus, when set, is told about every saga status change this
	// process commits ("started" for a new saga): a metrics hook.
	OnStatus func(sagaType, mode, status string)
	// Clock is this process's clock, used only for the occurred_at of the
	// messages it publishes: deadlines are judged by Redis server time.
	// Default time.Now.
	Clock func() time.Time
}

func (o *Options) withDefaults() {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = DefaultStepTimeout
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.IdempotencyTTL <= 0 {
		o.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if o.CompensationAttempts <= 0 {
		o.CompensationAttempts = DefaultCompensationAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.BackoffMax < o.Backoff {
		o.BackoffMax = max(DefaultBackoffMax, o.Backoff)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
}

// Declaration is a saga type made by Define, of any context type.
type Declaration interface {
	definer
}

// Engine runs sagas: it starts them, runs every hop of their messages
// (Handle), sweeps their deadlines, re-drives refused compensations and
// reads them back. It keeps nothing in memory between messages, so any
// number of engines (workers) can run the same sagas at once.
type Engine struct {
	rdb    redis.UniversalClient
	keys   Keys
	defs   map[string]*definition
	impl   map[string]definer
	routes map[string]route
	opts   Options
	stats  counters
	// batch sends the hot path's commands of concurrent hops in pipelines.
	batch *streams.Batcher
	// split is set on a Redis Cluster: writes on a slot other than the
	// saga's cannot join its transition's script and go behind barriers.
	split bool
	// beforeReplyCommit, set by tests only, runs between the orchestrator's
	// read of a saga and its commit: where a sweeper can overtake it.
	beforeReplyCommit func()
}

// New makes an Engine for the given saga types, checking each declaration;
// an error names every problem found.
func New(rdb redis.UniversalClient, opts Options, sagas ...Declaration) (*Engine, error) {
	opts.withDefaults()
	e := &Engine{rdb: rdb, keys: NewKeys(opts.Prefix, opts.Partitions), defs: map[string]*definition{},
		impl: map[string]definer{}, routes: map[string]route{}, opts: opts}
	_, e.split = rdb.(*redis.ClusterClient)
	e.batch = streams.NewBatcher(rdb, pipelinesOnTheWire)
	var errs []error
	owner := map[string]string{} // message type → saga type
	for _, s := range sagas {
		d, err := s.spec()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := e.defs[d.Type]; dup {
			errs = append(errs, fmt.Errorf("saga type %s declared twice", d.Type))
			continue
		}
		e.defs[d.Type], e.impl[d.Type] = d, s
		for _, typ := range d.types() {
			if other, ok := owner[typ]; ok {
				errs = append(errs, fmt.Errorf("message type %s belongs to both %s and %s", typ, other, d.Type))
			}
			owner[typ] = d.Type
		}
		for k, r := range d.routes {
			e.routes[k] = r
		}
		if e.split {
			for k, r := range d.finalizers() {
				if _, dup := e.routes[k]; dup {
					errs = append(errs, fmt.Errorf("%s: group %s would read %s for two purposes", d.Type, r.def.Steps[r.step].Service, d.Completed))
				}
				e.routes[k] = r
			}
		}
	}
	if len(e.defs) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no saga type declared"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("saga definitions: %w", err)
	}
	return e, nil
}

// Keys returns the engine's key names.
func (e *Engine) Keys() Keys { return e.keys }

// LoadScripts loads every script into Redis so that they run by SHA. A
// pipeline does not fall back to EVAL on NOSCRIPT, so this also runs after
// Redis restarts without persistence (callers retry on NOSCRIPT).
func (e *Engine) LoadScripts(ctx context.Context) error {
	return streams.LoadScripts(ctx, e.rdb, startScript, hopScript, replyScript, sweepScript, redriveScript,
		retryScript, deadLetterScript, onceScript, triedScript, effectScript, forwardScript, missingScript)
}

// counters are what the engine did beyond plain hops, for logs and metrics.
type counters struct {
	stale, rejected, missing, deadLettered, aborted, failed atomic.Int64
	sweptCompensated, sweptResent, sweptFailed, undone      atomic.Int64
}

// Stats is a snapshot of what an engine refused, diverted and repaired.
type Stats struct {
	Stale            int64 // messages its saga had moved past (duplicates, late redeliveries)
	Rejected         int64 // entries the saga never published, dead-lettered with an alert
	Missing          int64 // messages, deadlines and retries whose saga hash is gone
	DeadLettered     int64 // entries moved to the dead-letter stream
	Aborted          int64 // sagas sent to compensation by a dead letter
	Failed           int64 // sagas that became FAILED
	SweptCompensated int64 // sagas in progress compensated after their deadline
	SweptResent      int64 // compensations sent again after their deadline
	SweptFailed      int64 // sagas FAILED after too many deadlines
	Undone           int64 // late effects of abandoned steps compensated
}

// Stats returns what the engine counted so far.
func (e *Engine) Stats() Stats {
	c := &e.stats
	return Stats{Stale: c.stale.Load(), Rejected: c.rejected.Load(), Missing: c.missing.Load(),
		DeadLettered: c.deadLettered.Load(), Aborted: c.aborted.Load(), Failed: c.failed.Load(),
		SweptCompensated: c.sweptCompensated.Load(), SweptResent: c.sweptResent.Load(),
		SweptFailed: c.sweptFailed.Load(), Undone: c.undone.Load()}
}

// Record is a domain record kept in the saga's slot, created with it (the
// order of the order saga): a hash keyed by kind and id, which the engine
// marks with the saga's end.
type Record struct {
	Kind   string
	ID     string
	Fields map[string]string
}

// StartOptions say how a saga starts.
type StartOptions struct {
	// Mode is ModeChoreography (the default) or ModeOrchestration.
	Mode string
	// Partition and SagaID come from NewIDs; a new id is made when empty.
	Partition int
	SagaID    string
	// Record, when set, is created with the saga in its slot.
	Record *Record
	// IdempotencyKey, when set, makes a retried start return Answer of the
	// first start (Fingerprint identifies the request's content: the same
	// key with another fingerprint is ErrIdempotencyMismatch).
	IdempotencyKey string
	Fingerprint    string
	Answer         json.RawMessage
}

// Started says whether a saga was created, or an earlier one is answered.
type Started struct {
	SagaID  string
	Created bool
	// Answer is what StartOptions.Answer held when the saga was created.
	Answer json.RawMessage
}

// NewIDs returns a partition, a saga id and a record id that share it. With
// an idempotency key the partition is derived from the key, so its record
// and the saga's keys sit in one slot and one script can check and create
// them.
func (e *Engine) NewIDs(idempotencyKey string) (partition int, sagaID, recordID string, err error) {
	if idempotencyKey != "" {
		partition = e.keys.PartitionOf(digest(idempotencyKey))
	} else {
		partition = e.keys.PartitionOf(uuid.NewString())
	}
	if sagaID, err = e.keys.NewID(partition); err != nil {
		return 0, "", "", err
	}
	if recordID, err = e.keys.NewID(partition); err != nil {
		return 0, "", "", err
	}
	return partition, sagaID, recordID, nil
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// Start starts a saga of this type with data as its context: its hash, its
// record, its deadline and its first message (the first step's command or
// event), in one script.
func (s *Saga[T]) Start(ctx context.Context, e *Engine, data T, o StartOptions) (Started, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Started{}, fmt.Errorf("start %s: encode context: %w", s.name, err)
	}
	return e.start(ctx, s.name, raw, o)
}

func (e *Engine) start(ctx context.Context, sagaType string, sagaContext json.RawMessage, o StartOptions) (Started, error) {
	def, ok := e.defs[sagaType]
	if !ok {
		return Started{}, fmt.Errorf("start saga: unknown type %q", sagaType)
	}
	if o.Mode == "" {
		o.Mode = ModeChoreography
	}
	if o.Mode != ModeChoreography && o.Mode != ModeOrchestration {
		return Started{}, fmt.Errorf("start saga: unknown mode %q", o.Mode)
	}
	if o.SagaID == "" {
		var err error
		if o.Partition, o.SagaID, _, err = e.NewIDs(o.IdempotencyKey); err != nil {
			return Started{}, err
		}
	}
	p := o.Partition
	idemKey := e.keys.Idempotency(p, "-")
	fingerprint := ""
	if o.IdempotencyKey != "" {
		idemKey = e.keys.Idempotency(p, digest(o.IdempotencyKey))
		fingerprint = o.Fingerprint
		if fingerprint == "" {
			fingerprint = "-"
		}
	}
	first := def.first(o.Mode)
	data := sagaContext
	// The hash holds what differs between sagas: the id is its key's end,
	// step names come from the definition, a step without a status is
	// PENDING.
	fields := []any{"type", sagaType, "mode", o.Mode, "status", StatusInProgress,
		"current_step", "0", "context", string(sagaContext)}
	if !def.Steps[0].CanExecute {
		fields = append(fields, stepField(0, "status"), StepCompleted) // done by the starter, with the saga
	}
	if o.Mode == ModeOrchestration {
		step := 0
		if !def.Steps[0].CanExecute {
			step = 1
			fields = append(fields, "current_step", "1")
		}
		var err error
		if data, err = commandPayload(sagaContext, step, string(Execute)); err != nil {
			return Started{}, err
		}
	} else if !def.Steps[0].CanExecute {
		fields = append(fields, "current_step", "1")
	}
	recordKey := e.keys.Saga(p, o.SagaID)
	var record []any
	ref := ""
	if o.Record != nil {
		recordKey = e.keys.Record(p, o.Record.Kind, o.Record.ID)
		for k, v := range o.Record.Fields {
			record = append(record, k, v)
		}
		ref = o.Record.Kind + ":" + o.Record.ID
		fields = append(fields, "record", ref)
	}
	env := &event.Envelope{EventID: newEventID(), Type: first, SagaID: o.SagaID, SagaMode: o.Mode,
		SagaVersion: 1, OccurredAt: e.opts.Clock(), Data: data}
	keys := []string{idemKey, e.keys.Saga(p, o.SagaID), recordKey, e.keys.Stream(p, first),
		e.keys.Deadlines(p), e.keys.Index(p, StatusInProgress), e.keys.Records(p)}
	timeouts := strconv.FormatInt(e.opts.StepTimeout.Milliseconds(), 10)
	if e.opts.SagaTimeout > 0 {
		timeouts += ":" + strconv.FormatInt(e.opts.SagaTimeout.Milliseconds(), 10)
	}
	args := []any{fingerprint, int64(e.opts.IdempotencyTTL.Seconds()), timeouts,
		o.SagaID, string(o.Answer), first + "|" + env.EventID, ref}
	args = appendCounted(args, fields)
	args = appendCounted(args, record)
	args = appendCounted(args, env.Fields())
	res, err := e.batch.Eval(ctx, startScript, keys, args...).StringSlice()
	if err != nil {
		return Started{}, fmt.Errorf("start saga: %w", err)
	}
	if len(res) != 2 {
		return Started{}, fmt.Errorf("start saga: unexpected reply %q", res)
	}
	switch res[0] {
	case "OK":
		if e.opts.OnStatus != nil {
			e.opts.OnStatus(sagaType, o.Mode, "started")
		}
		return Started{SagaID: o.SagaID, Created: true, Answer: json.RawMessage(res[1])}, nil
	case "DUP":
		return Started{Answer: json.RawMessage(res[1])}, nil
	case "MISMATCH":
		return Started{Answer: json.RawMessage(res[1])}, ErrIdempotencyMismatch
	}
	return Started{}, fmt.Errorf("start saga: unexpected reply %q", res[0])
}

func newEventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func stepField(i int, name string) string { return "step." + strconv.Itoa(i) + "." + name }

func appendCounted(args []any, pairs []any) []any {
	args = append(args, len(pairs)/2)
	return append(args, pairs...)
}

// CommandData is the data of an orchestration command: the saga's context
// with the step and phase added, so that a service needs nothing else.
func commandPayload(sagaContext json.RawMessage, step int, phase string) (json.RawMessage, error) {
	// The context is a JSON object the engine wrote: the two fields are
	// appended to it rather than the object decoded and encoded again. A
	// decoder keeps the last of two equal names, so they win over the
	// context's own.
	ctx := bytes.TrimSpace(sagaContext)
	if len(ctx) == 0 {
		ctx = []byte("{}")
	}
	if ctx[0] != '{' || ctx[len(ctx)-1] != '}' {
		return nil, fmt.Errorf("saga context: not a JSON object")
	}
	out := make([]byte, 0, len(ctx)+32)
	out = append(out, ctx[:len(ctx)-1]...)
	if len(bytes.TrimSpace(ctx[1:len(ctx)-1])) > 0 {
		out = append(out, ',')
	}
	out = append(out, `"step":`...)
	out = strconv.AppendInt(out, int64(step), 10)
	out = append(out, `,"phase":`...)
	out = strconv.AppendQuote(out, phase)
	return append(out, '}'), nil
}

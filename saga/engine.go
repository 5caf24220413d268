package saga

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

var (
	startScript      = streams.MustScript(luaFS, "lua/start.lua")
	transitionScript = streams.MustScript(luaFS, "lua/transition.lua")
	forwardScript    = streams.MustScript(luaFS, "lua/forward.lua")
	missingScript    = streams.MustScript(luaFS, "lua/missing.lua")
)

// Sentinel errors.
var (
	// ErrNotFound: no saga (or record) with that id.
	ErrNotFound = errors.New("not found")
	// ErrIdempotencyMismatch: an Idempotency-Key was reused with another request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
)

// Options configure an Engine.
type Options struct {
	// StepTimeout is each step's deadline. Default 30s.
	StepTimeout time.Duration
	// SagaTimeout, when set, is the whole saga's deadline, which bounds
	// every step's.
	SagaTimeout time.Duration
	// Retention is how long a finished saga's hash is kept. Default 168h.
	Retention time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered. Default 24h.
	IdempotencyTTL time.Duration
	// CompensationAttempts is how often an orchestrated compensation is
	// tried before the saga becomes FAILED. Default 5.
	CompensationAttempts int
	// Backoff is the wait before the first retry of a failed compensation;
	// it doubles on each retry up to BackoffMax. Defaults 200ms and 30s.
	Backoff, BackoffMax time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnStatus, when set, is told about every committed saga status
	// change ("started" for a new saga); a metrics hook.
	OnStatus func(sagaType, mode, status string)
	// Clock is this process's clock, used only for the occurred_at of the
	// messages it publishes: deadlines are judged by Redis server time, so a
	// skewed worker clock cannot time anything out early or twice. Default
	// time.Now.
	Clock func() time.Time
}

// Stats count what the engine refused or diverted, for logs and metrics.
type Stats struct {
	Stale        atomic.Int64 // transitions refused by the version fence
	Rejected     atomic.Int64 // entries the saga never published, dead-lettered
	Missing      atomic.Int64 // messages, deadlines and retries whose saga hash is gone
	DeadLettered atomic.Int64 // entries moved to the dead-letter stream
	Aborted      atomic.Int64 // sagas sent to compensation by a dead letter
	Failed       atomic.Int64 // sagas that became FAILED
}

// Engine starts sagas and commits their transitions.
type Engine struct {
	rdb     redis.UniversalClient
	ks      streams.Keyspace
	defs    map[string]*Definition
	byEvent map[string]*Definition
	opts    Options
	Stats   Stats
	Sweeps  SweepStats
	// beforeReplyCommit, set by tests only, runs between HandleReply's read
	// of the saga and its commit: where a sweeper can overtake it.
	beforeReplyCommit func()
}

// New makes an Engine for the given saga definitions.
func New(rdb redis.UniversalClient, ks streams.Keyspace, opts Options, defs ...*Definition) (*Engine, error) {
	if opts.StepTimeout <= 0 {
		opts.StepTimeout = 30 * time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = 168 * time.Hour
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.CompensationAttempts <= 0 {
		opts.CompensationAttempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 200 * time.Millisecond
	}
	if opts.BackoffMax < opts.Backoff {
		opts.BackoffMax = max(30*time.Second, opts.Backoff)
	}
	e := &Engine{rdb: rdb, ks: ks, defs: map[string]*Definition{}, byEvent: map[string]*Definition{}, opts: opts}
	for _, d := range defs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("saga definition: %w", err)
		}
		e.defs[d.Type] = d
		for typ := range d.Events {
			if other, dup := e.byEvent[typ]; dup {
				return nil, fmt.Errorf("event %s defined by both %s and %s", typ, other.Type, d.Type)
			}
			e.byEvent[typ] = d
		}
	}
	return e, nil
}

// Keyspace returns the engine's key names.
func (e *Engine) Keyspace() streams.Keyspace { return e.ks }

// LoadScripts loads every script into Redis so that they run by SHA. A
// pipeline does not fall back to EVAL on NOSCRIPT, so this also runs after
// Redis restarts without persistence (callers retry on NOSCRIPT).
func (e *Engine) LoadScripts(ctx context.Context) error {
	return streams.LoadScripts(ctx, e.rdb, startScript, transitionScript, forwardScript, missingScript)
}

// StartRequest is everything needed to start a saga.
type StartRequest struct {
	Type string
	Mode string
	// Partition, SagaID and the record's id come from Engine.NewIDs.
	Partition int
	SagaID    string
	// Context is the saga's context, a JSON object.
	Context json.RawMessage
	// Record, when set, is created with the saga in its slot.
	Record *Record
	// Event is the first event or command and its data.
	Event string
	Data  json.RawMessage
	// IdempotencyKey, when set, makes a retried start return Answer of the
	// first start. Fingerprint identifies the request's content.
	IdempotencyKey string
	Fingerprint    string
	// Answer is what a retry with the same key gets back.
	Answer json.RawMessage
}

// Record is a domain record kept in the saga's slot and written by its
// transitions (the order).
type Record struct {
	Kind   string
	ID     string
	Fields map[string]string
}

// StartResult says whether the saga was created or a previous one is reused.
type StartResult struct {
	Created bool
	Answer  json.RawMessage
}

// NewIDs returns a partition, a saga id and a record id that share it. With
// an Idempotency-Key the partition is derived from the key, so its record and
// the saga's keys sit in one slot and one script can check and create them.
func (e *Engine) NewIDs(idempotencyKey string) (partition int, sagaID, recordID string, err error) {
	if idempotencyKey != "" {
		partition = e.ks.PartitionOf(digest(idempotencyKey))
	} else {
		partition = e.ks.PartitionOf(uuid.NewString())
	}
	if sagaID, err = e.ks.NewID(partition); err != nil {
		return 0, "", "", err
	}
	if recordID, err = e.ks.NewID(partition); err != nil {
		return 0, "", "", err
	}
	return partition, sagaID, recordID, nil
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// Start creates a saga and publishes its first message in one script.
func (e *Engine) Start(ctx context.Context, r StartRequest) (StartResult, error) {
	def, ok := e.defs[r.Type]
	if !ok {
		return StartResult{}, fmt.Errorf("start saga: unknown type %q", r.Type)
	}
	p := r.Partition
	idemKey := e.ks.Idempotency(p, "-")
	fingerprint := ""
	if r.IdempotencyKey != "" {
		idemKey = e.ks.Idempotency(p, digest(r.IdempotencyKey))
		fingerprint = r.Fingerprint
		if fingerprint == "" {
			fingerprint = "-"
		}
	}
	env := &event.Envelope{
		EventID: newEventID(), Type: r.Event, SagaID: r.SagaID, SagaMode: r.Mode,
		SagaVersion: 1, OccurredAt: e.opts.Clock(), Data: r.Data,
	}
	saga := []any{"saga_id", r.SagaID, "type", r.Type, "mode", r.Mode, "status", event.StatusInProgress,
		"current_step", "0", "context", string(r.Context)}
	for i, s := range def.Steps {
		saga = append(saga, stepField(i, "name"), s.Name, stepField(i, "status"), event.StepPending)
	}
	if eff, ok := def.Events[r.Event]; ok {
		saga = append(saga, effectFields(def, eff, nil, "")...)
	}
	recordKey := e.ks.Saga(p, r.SagaID)
	var record []any
	ref := ""
	if r.Record != nil {
		recordKey = e.ks.Record(p, r.Record.Kind, r.Record.ID)
		record = mapPairs(r.Record.Fields)
		ref = r.Record.Kind + ":" + r.Record.ID
		saga = append(saga, "record", ref)
	}
	keys := []string{idemKey, e.ks.Saga(p, r.SagaID), recordKey, e.ks.Stream(p, r.Event),
		e.ks.Deadlines(p), e.ks.Index(p, event.StatusInProgress), e.ks.Records(p)}
	timeouts := strconv.FormatInt(e.opts.StepTimeout.Milliseconds(), 10)
	if e.opts.SagaTimeout > 0 {
		timeouts += ":" + strconv.FormatInt(e.opts.SagaTimeout.Milliseconds(), 10)
	}
	args := []any{fingerprint, int64(e.opts.IdempotencyTTL.Seconds()), timeouts,
		r.SagaID, string(r.Answer), r.Event + "|" + env.EventID, ref}
	args = appendCounted(args, saga)
	args = appendCounted(args, record)
	args = appendCounted(args, env.Fields())
	res, err := startScript.Run(ctx, e.rdb, keys, args...).StringSlice()
	if err != nil {
		return StartResult{}, fmt.Errorf("start saga: %w", err)
	}
	if len(res) != 2 {
		return StartResult{}, fmt.Errorf("start saga: unexpected reply %q", res)
	}
	switch res[0] {
	case "OK":
		if e.opts.OnStatus != nil {
			e.opts.OnStatus(r.Type, r.Mode, "started")
		}
		return StartResult{Created: true, Answer: json.RawMessage(res[1])}, nil
	case "DUP":
		return StartResult{Answer: json.RawMessage(res[1])}, nil
	case "MISMATCH":
		return StartResult{Answer: json.RawMessage(res[1])}, ErrIdempotencyMismatch
	}
	return StartResult{}, fmt.Errorf("start saga: unexpected reply %q", res[0])
}

func newEventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func stepField(i int, name string) string { return "step." + strconv.Itoa(i) + "." + name }

// effectFields are the saga hash fields an effect sets.
func effectFields(def *Definition, eff Effect, result json.RawMessage, reason string) []any {
	var f []any
	if eff.Step != NoStep {
		f = append(f, stepField(eff.Step, "status"), eff.StepStatus)
		if len(result) > 0 {
			f = append(f, stepField(eff.Step, "result"), string(result))
		}
		cur := eff.Step
		switch {
		case eff.StepStatus == event.StepCompleted:
			cur = min(eff.Step+1, len(def.Steps)-1)
		case eff.Step > 0:
			cur = eff.Step - 1
		}
		f = append(f, "current_step", strconv.Itoa(cur))
	}
	if eff.Status != "" {
		f = append(f, "status", eff.Status)
	}
	if reason != "" {
		f = append(f, "reason", reason)
	}
	return f
}

func mapPairs(m map[string]string) []any {
	out := make([]any, 0, 2*len(m))
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

func appendCounted(args []any, pairs []any) []any {
	args = append(args, len(pairs)/2)
	return append(args, pairs...)
}

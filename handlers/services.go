package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// Services are the four services of the order domain. The business code of
// each step is one operation, served in both styles: choreography maps its
// outcome to the next event, orchestration to a reply. One value serves
// every group; the runner only delivers the groups a worker runs.
type Services struct {
	engine    *saga.Engine
	inventory *Inventory
	gateway   *Gateway
	shipping  *Shipping
	log       *slog.Logger
	// Routing tables, built once: keyed "group/type".
	reactionOf map[string]reaction
	commandOf  map[string]operation
	// undoOf maps an execute command to its compensation.
	undoOf map[string]operation
}

// NewServices wires the services.
func NewServices(rdb redis.UniversalClient, engine *saga.Engine, opts Options, log *slog.Logger) *Services {
	ks := engine.Keyspace()
	if log == nil {
		log = slog.Default()
	}
	s := &Services{
		engine:    engine,
		inventory: NewInventory(rdb, ks, opts),
		gateway:   NewGateway(rdb, ks, opts),
		shipping:  NewShipping(rdb, ks, opts),
		log:       log,
	}
	s.reactionOf, s.commandOf, s.undoOf = s.reactions(), s.commands(), s.commandUndo()
	return s
}

// Gateway returns the fake payment gateway (tests reconcile its ledger).
func (s *Services) Gateway() *Gateway { return s.gateway }

// Inventory returns the inventory store.
func (s *Services) Inventory() *Inventory { return s.inventory }

// outcome is what a step's business code decided.
type outcome struct {
	ok     bool
	result map[string]any
	reason string
}

// operation is the business code of one step or compensation, the same in
// both styles. It must be idempotent per saga.
type operation func(ctx context.Context, sagaID string, d *event.OrderData) (outcome, error)

// reaction is a choreography reaction: an operation and the events its
// outcome publishes. An empty onFail makes a failure an error, retried by
// redelivery (compensations must not give up).
type reaction struct {
	op           operation
	onOK, onFail string
	record       string // order status to write, for the order service
	// finalizer only settles the service's records of a completed saga and
	// acknowledges; it acts only on the saga's real final event.
	finalizer bool
	// fenced: op has no effect of its own, so the commit's fence (version
	// and message identity) is the whole check and the separate read is
	// skipped (a round trip saved on every hop of the order service).
	fenced       bool
	compensation bool
	// undo compensates op's effect when it lands after the saga gave up
	// on the step (a hanging step).
	undo operation
}

func (s *Services) reactions() map[string]reaction {
	return map[string]reaction{
		event.ServicePayment + "/" + event.OrderCreated:       {op: s.charge, onOK: event.PaymentCompleted, onFail: event.PaymentFailed, undo: s.refund},
		event.ServicePayment + "/" + event.StockInsufficient:  {op: s.refund, onOK: event.PaymentRefunded, compensation: true},
		event.ServicePayment + "/" + event.StockReleased:      {op: s.refund, onOK: event.PaymentRefunded, compensation: true},
		event.ServicePayment + "/" + event.OrderCompleted:     {op: s.settle, finalizer: true},
		event.ServiceInventory + "/" + event.PaymentCompleted: {op: s.reserve, onOK: event.StockReserved, onFail: event.StockInsufficient, undo: s.release},
		event.ServiceInventory + "/" + event.ShipmentFailed:   {op: s.release, onOK: event.StockReleased, compensation: true},
		event.ServiceInventory + "/" + event.OrderCompleted:   {op: s.consume, finalizer: true},
		event.ServiceShipping + "/" + event.StockReserved:     {op: s.ship, onOK: event.ShipmentCreated, onFail: event.ShipmentFailed, undo: s.cancelShipment},
		event.ServiceShipping + "/" + event.ShipmentAbandoned: {op: s.cancelShipment, onOK: event.ShipmentFailed, compensation: true},
		event.ServiceShipping + "/" + event.OrderCompleted:    {op: s.closeShipment, finalizer: true},
		event.ServiceOrder + "/" + event.ShipmentCreated:      {op: s.noop, onOK: event.OrderCompleted, record: event.OrderStatusCompleted, fenced: true},
		event.ServiceOrder + "/" + event.PaymentFailed:        {op: s.noop, onOK: event.OrderCancelled, record: event.OrderStatusCancelled, fenced: true},
		event.ServiceOrder + "/" + event.PaymentRefunded:      {op: s.noop, onOK: event.OrderCancelled, record: event.OrderStatusCancelled, fenced: true},
	}
}

func (s *Services) commands() map[string]operation {
	return map[string]operation{
		event.ServiceOrder + "/" + event.CmdOrderCreate:       s.noop,
		event.ServiceOrder + "/" + event.CmdOrderCancel:       s.noop,
		event.ServicePayment + "/" + event.CmdPaymentCharge:   s.charge,
		event.ServicePayment + "/" + event.CmdPaymentRefund:   s.refund,
		event.ServiceInventory + "/" + event.CmdStockReserve:  s.reserve,
		event.ServiceInventory + "/" + event.CmdStockRelease:  s.release,
		event.ServiceShipping + "/" + event.CmdShipmentCreate: s.ship,
		event.ServiceShipping + "/" + event.CmdShipmentCancel: s.cancelShipment,
	}
}

// Handle implements streams.Handler for every group, the orchestrator's
// included.
func (s *Services) Handle(ctx context.Context, m *streams.Message) error {
	env := m.Env
	if !strings.HasSuffix(m.Stream, ":"+env.Type) {
		return streams.Permanent(fmt.Errorf("event type %q does not belong on stream %s", env.Type, m.Stream))
	}
	if m.Group == event.ServiceOrchestrator {
		return s.engine.HandleReply(ctx, m)
	}
	var d event.OrderData
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return streams.Permanent(fmt.Errorf("decode %s data: %w", env.Type, err))
	}
	if d.Order.OrderID == "" || len(d.Order.Items) == 0 {
		return streams.Permanent(fmt.Errorf("%s data carries no order", env.Type))
	}
	key := m.Group + "/" + env.Type
	react, isReaction := s.reactionOf[key]
	op, isCommand := s.commandOf[key]
	if !isReaction && !isCommand {
		return streams.Permanent(fmt.Errorf("group %s does not handle %s", m.Group, env.Type))
	}
	var cmd event.Command
	if isCommand {
		if err := json.Unmarshal(env.Data, &cmd); err != nil || (cmd.Phase != event.PhaseExecute &&
			cmd.Phase != event.PhaseCompensate && cmd.Phase != event.PhaseUndo) {
			return streams.Permanent(fmt.Errorf("%s carries no step and phase", env.Type))
		}
		if cmd.Phase == event.PhaseUndo {
			// An undo is sent without a transition: it is the saga's while
			// the saga has abandoned the step (compensations are idempotent
			// and a no-op when nothing took effect).
			standing, why, err := s.engine.UndoStanding(ctx, m, cmd.Step)
			if err != nil {
				return err
			}
			if done, err := s.refused(ctx, m, standing, why); done {
				return err
			}
			if err := s.undo(ctx, m, op, &d); err != nil {
				return err
			}
			return s.engine.Ack(ctx, m)
		}
	}
	if isReaction && react.fenced {
		// The order service's reactions have no effect outside their
		// commit, whose fence is the whole check: a round trip saved.
		return s.react(ctx, m, react, &d)
	}
	// Before any charge, reservation or shipment: is this the message its
	// saga waits for? A duplicate or late redelivery gets no effect (the
	// barriers in each service and the fence in the commit cover the races
	// this check cannot); a forged or misrouted one is dead-lettered.
	standing, why, err := s.engine.Check(ctx, m, isReaction && react.finalizer)
	if err != nil {
		return err
	}
	if standing == saga.Late {
		switch {
		case isCommand && cmd.Phase == event.PhaseExecute:
			return s.stale(ctx, m, s.undoOf[env.Type], cmd.Step, &d)
		case isCommand:
			return s.stale(ctx, m, nil, cmd.Step, &d)
		}
		return s.stale(ctx, m, react.undo, s.engine.StepOf(react.onOK), &d)
	}
	if done, err := s.refused(ctx, m, standing, why); done {
		return err
	}
	if isCommand {
		return s.reply(ctx, m, op, cmd, &d)
	}
	return s.react(ctx, m, react, &d)
}

// refused deals with a message its saga refuses: a foreign one is
// dead-lettered with an alert, one whose saga is gone too (the loss is
// alerted once per saga). It reports whether m was dealt with.
func (s *Services) refused(ctx context.Context, m *streams.Message, standing saga.Standing, why string) (bool, error) {
	switch standing {
	case saga.Foreign:
		return true, s.engine.Reject(ctx, m, why)
	case saga.Gone:
		return true, s.engine.SagaMissing(ctx, m, why)
	}
	return false, nil
}

// commandUndo maps an execute command to the operation that compensates it.
func (s *Services) commandUndo() map[string]operation {
	return map[string]operation{
		event.CmdPaymentCharge:  s.refund,
		event.CmdStockReserve:   s.release,
		event.CmdShipmentCreate: s.cancelShipment,
	}
}

// stale deals with a message its saga has moved past, then acknowledges
// it. Usually that is all: a duplicate or a late redelivery. But when the
// saga gave up on this message's step (its deadline passed), this step's
// effect may have landed — by this delivery, or by an earlier one that
// crashed before committing — and nobody else will compensate it: undo runs
// the step's compensation, which is idempotent and a no-op (a tombstone that
// blocks the effect) when nothing landed.
func (s *Services) stale(ctx context.Context, m *streams.Message, undo operation, step int, d *event.OrderData) error {
	if undo != nil && step != saga.NoStep {
		gone, err := s.engine.Abandoned(ctx, m.Env.SagaID, step)
		if err != nil {
			return err
		}
		if gone {
			if err := s.undo(ctx, m, undo, d); err != nil {
				return err
			}
		}
	}
	return s.engine.Ack(ctx, m)
}

// undo runs the compensation of a step its saga abandoned. A refusal (the
// gateway said no) is an error: the entry stays pending and is retried, so
// the late effect is not left in place.
func (s *Services) undo(ctx context.Context, m *streams.Message, undo operation, d *event.OrderData) error {
	s.log.InfoContext(ctx, "effect of an abandoned step: compensating it", "saga_id", m.Env.SagaID,
		"event_type", m.Env.Type, "group", m.Group)
	out, err := undo(ctx, m.Env.SagaID, d)
	if err != nil {
		return err
	}
	if !out.ok {
		return fmt.Errorf("undo %s: %s", m.Env.Type, out.reason)
	}
	s.engine.Sweeps.Undone.Add(1)
	return nil
}

// react runs a choreography reaction and publishes the event its outcome
// calls for.
func (s *Services) react(ctx context.Context, m *streams.Message, r reaction, d *event.OrderData) error {
	out, err := r.op(ctx, m.Env.SagaID, d)
	if err != nil {
		return err
	}
	if r.finalizer {
		return s.engine.Ack(ctx, m)
	}
	emit := r.onOK
	if !out.ok {
		if r.onFail == "" {
			return fmt.Errorf("%s: %s", m.Env.Type, out.reason) // retried, then dead-lettered
		}
		emit = r.onFail
		d.Reason = out.reason
	}
	var record map[string]string
	if r.record != "" {
		if d.Reason == "" && r.record == event.OrderStatusCancelled {
			d.Reason = "cancelled"
		}
		record = map[string]string{"status": r.record}
		if d.Reason != "" {
			record["reason"] = d.Reason
		}
	}
	// A forward step keeps its entry when the saga has moved on: the entry
	// is acknowledged only after a possibly orphaned effect is undone.
	res, err := s.commit(ctx, m, emit, d, out.result, record, r.undo != nil)
	if err != nil {
		return err
	}
	switch res.Code {
	case saga.Rejected:
		return s.engine.Reject(ctx, m, res.Reason)
	case saga.Missing:
		return s.engine.SagaMissing(ctx, m, "the commit")
	case saga.Stale:
		if r.undo != nil {
			return s.stale(ctx, m, r.undo, s.engine.StepOf(r.onOK), d)
		}
	}
	return nil
}

// reply runs a command's operation and answers the orchestrator.
func (s *Services) reply(ctx context.Context, m *streams.Message, op operation, cmd event.Command, d *event.OrderData) error {
	out, err := op(ctx, m.Env.SagaID, d)
	if err != nil {
		return err
	}
	r := event.ReplyData{Command: m.Env.Type, Step: cmd.Step, Phase: cmd.Phase, OK: out.ok, Reason: out.reason}
	if out.result != nil {
		if r.Result, err = json.Marshal(out.result); err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
	}
	return s.engine.Reply(ctx, m, r)
}

// commit publishes the next choreography event. A saga that moved on is not
// an error (the entry was a duplicate); a refused or missing one is left to
// the caller, with the entry still pending.
func (s *Services) commit(ctx context.Context, m *streams.Message, emit string, d *event.OrderData, result map[string]any, record map[string]string, keep bool) (saga.Result, error) {
	data, err := json.Marshal(d)
	if err != nil {
		return saga.Result{}, fmt.Errorf("encode %s: %w", emit, err)
	}
	t := saga.Transition{Emit: emit, Data: data, Reason: d.Reason, KeepOnRefusal: keep}
	if result != nil {
		if t.StepResult, err = json.Marshal(result); err != nil {
			return saga.Result{}, fmt.Errorf("encode step result: %w", err)
		}
	}
	if record != nil {
		t.Record = &saga.Record{Kind: recordOrder, ID: d.Order.OrderID, Fields: record}
	}
	res, err := s.engine.Commit(ctx, m, t)
	if err != nil {
		return saga.Result{}, err
	}
	if res.Code == saga.Stale {
		s.log.DebugContext(ctx, "duplicate or late message ignored", "saga_id", m.Env.SagaID,
			"event_type", m.Env.Type, "group", m.Group, "saga_version", res.Version)
	}
	return res, nil
}

// The operations. Each is idempotent per saga through its service's script.

func (s *Services) noop(context.Context, string, *event.OrderData) (outcome, error) {
	return outcome{ok: true}, nil
}

func (s *Services) charge(ctx context.Context, sagaID string, d *event.OrderData) (outcome, error) {
	decision, detail, err := s.gateway.charge(ctx, sagaID, d.Order.TotalCents)
	if err != nil {
		return outcome{}, err
	}
	if decision == "charged" {
		d.PaymentID = detail
		return outcome{ok: true, result: map[string]any{"payment_id": detail, "amount_cents": d.Order.TotalCents}}, nil
	}
	return outcome{reason: "payment " + decision + ": " + detail, result: map[string]any{"decision": decision, "reason": detail}}, nil
}

func (s *Services) refund(ctx context.Context, sagaID string, _ *event.OrderData) (outcome, error) {
	decision, cents, err := s.gateway.refund(ctx, sagaID)
	if err != nil {
		return outcome{}, err
	}
	if decision == "refused" {
		return outcome{reason: "the gateway refused the refund"}, nil
	}
	return outcome{ok: true, result: map[string]any{"refund": decision, "refunded_cents": cents}}, nil
}

func (s *Services) reserve(ctx context.Context, sagaID string, d *event.OrderData) (outcome, error) {
	decision, sku, err := s.inventory.reserve(ctx, sagaID, d.Order.Items)
	if err != nil {
		return outcome{}, err
	}
	if decision == "reserved" {
		return outcome{ok: true, result: map[string]any{"reserved_units": d.Order.Units()}}, nil
	}
	reason := "stock " + decision
	if sku != "" {
		reason += ": " + sku
	}
	return outcome{reason: reason, result: map[string]any{"decision": decision, "sku": sku}}, nil
}

func (s *Services) release(ctx context.Context, sagaID string, _ *event.OrderData) (outcome, error) {
	decision, err := s.inventory.release(ctx, sagaID)
	if err != nil {
		return outcome{}, err
	}
	return outcome{ok: true, result: map[string]any{"release": decision}}, nil
}

func (s *Services) ship(ctx context.Context, sagaID string, d *event.OrderData) (outcome, error) {
	decision, detail, err := s.shipping.ship(ctx, sagaID, d.Order.Units())
	if err != nil {
		return outcome{}, err
	}
	if decision == "created" {
		d.ShipmentID = detail
		return outcome{ok: true, result: map[string]any{"shipment_id": detail}}, nil
	}
	return outcome{reason: "shipment " + decision + ": " + detail, result: map[string]any{"decision": decision, "reason": detail}}, nil
}

func (s *Services) cancelShipment(ctx context.Context, sagaID string, _ *event.OrderData) (outcome, error) {
	decision, err := s.shipping.cancel(ctx, sagaID)
	if err != nil {
		return outcome{}, err
	}
	return outcome{ok: true, result: map[string]any{"cancel": decision}}, nil
}

// consume turns a completed saga's reservation into shipped units.
func (s *Services) consume(ctx context.Context, sagaID string, _ *event.OrderData) (outcome, error) {
	_, err := s.inventory.consume(ctx, sagaID)
	return outcome{ok: true}, err
}

// settle lets a completed saga's ledger expire: the charge is final.
func (s *Services) settle(ctx context.Context, sagaID string, _ *event.OrderData) (outcome, error) {
	return outcome{ok: true}, s.gateway.settle(ctx, sagaID)
}

// closeShipment lets a completed saga's shipment record expire.
func (s *Services) closeShipment(ctx context.Context, sagaID string, _ *event.OrderData) (outcome, error) {
	return outcome{ok: true}, s.shipping.close(ctx, sagaID)
}

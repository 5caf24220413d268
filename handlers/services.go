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

// Services are the four services of the order domain, reacting to the
// choreography's events. One value serves every group; the runner only
// delivers the groups a worker was told to run.
type Services struct {
	engine    *saga.Engine
	inventory *Inventory
	gateway   *Gateway
	shipping  *Shipping
	log       *slog.Logger
}

// NewServices wires the services.
func NewServices(rdb redis.UniversalClient, engine *saga.Engine, opts Options, log *slog.Logger) *Services {
	ks := engine.Keyspace()
	if log == nil {
		log = slog.Default()
	}
	return &Services{
		engine:    engine,
		inventory: NewInventory(rdb, ks, opts),
		gateway:   NewGateway(rdb, ks, opts),
		shipping:  NewShipping(rdb, ks, opts),
		log:       log,
	}
}

// Gateway returns the fake payment gateway (tests reconcile its ledger).
func (s *Services) Gateway() *Gateway { return s.gateway }

// Inventory returns the inventory store.
func (s *Services) Inventory() *Inventory { return s.inventory }

type reaction func(ctx context.Context, m *streams.Message, d *event.OrderData) error

// Handle implements streams.Handler.
func (s *Services) Handle(ctx context.Context, m *streams.Message) error {
	env := m.Env
	if !strings.HasSuffix(m.Stream, ":"+env.Type) {
		return streams.Permanent(fmt.Errorf("event type %q does not belong on stream %s", env.Type, m.Stream))
	}
	var d event.OrderData
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return streams.Permanent(fmt.Errorf("decode %s data: %w", env.Type, err))
	}
	if d.Order.OrderID == "" || len(d.Order.Items) == 0 {
		return streams.Permanent(fmt.Errorf("%s data carries no order", env.Type))
	}
	react := s.reaction(m.Group, env.Type)
	if react == nil {
		return streams.Permanent(fmt.Errorf("group %s does not handle %s", m.Group, env.Type))
	}
	// A message its saga has moved past (a duplicate, a late redelivery, a
	// replay after the saga expired) gets no effect at all: acknowledged
	// here, before any charge or reservation. The barriers in each service
	// and the fence in the commit cover the races this check cannot.
	live, err := s.engine.Live(ctx, m)
	if err != nil || !live {
		return err
	}
	return react(ctx, m, &d)
}

func (s *Services) reaction(group, typ string) reaction {
	switch group + "/" + typ {
	case event.ServicePayment + "/" + event.OrderCreated:
		return s.charge
	case event.ServicePayment + "/" + event.StockInsufficient, event.ServicePayment + "/" + event.StockReleased:
		return s.refund
	case event.ServiceInventory + "/" + event.PaymentCompleted:
		return s.reserve
	case event.ServiceInventory + "/" + event.ShipmentFailed:
		return s.release
	case event.ServiceInventory + "/" + event.OrderCompleted:
		return s.consume
	case event.ServiceShipping + "/" + event.StockReserved:
		return s.ship
	case event.ServicePayment + "/" + event.OrderCompleted:
		return s.settle
	case event.ServiceShipping + "/" + event.OrderCompleted:
		return s.closeShipment
	case event.ServiceOrder + "/" + event.ShipmentCreated:
		return s.complete
	case event.ServiceOrder + "/" + event.PaymentFailed, event.ServiceOrder + "/" + event.PaymentRefunded:
		return s.cancel
	}
	return nil
}

// commit publishes the next event. A stale or missing saga is not an error:
// the entry was a duplicate and is acknowledged.
func (s *Services) commit(ctx context.Context, m *streams.Message, emit string, d *event.OrderData, result any, record map[string]string) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode %s: %w", emit, err)
	}
	t := saga.Transition{Emit: emit, Data: data, Reason: d.Reason}
	if result != nil {
		if t.StepResult, err = json.Marshal(result); err != nil {
			return fmt.Errorf("encode step result: %w", err)
		}
	}
	if record != nil {
		t.Record = &saga.Record{Kind: recordOrder, ID: d.Order.OrderID, Fields: record}
	}
	res, err := s.engine.Commit(ctx, m, t)
	if err != nil {
		return err
	}
	if res.Code != saga.Applied {
		s.log.InfoContext(ctx, "duplicate or late message ignored", "saga_id", m.Env.SagaID,
			"event_type", m.Env.Type, "group", m.Group, "code", string(res.Code), "saga_version", res.Version)
	}
	return nil
}

func (s *Services) charge(ctx context.Context, m *streams.Message, d *event.OrderData) error {
	decision, detail, err := s.gateway.charge(ctx, m.Env.SagaID, d.Order.TotalCents)
	if err != nil {
		return err
	}
	if decision == "charged" {
		d.PaymentID = detail
		return s.commit(ctx, m, event.PaymentCompleted, d,
			map[string]any{"payment_id": detail, "amount_cents": d.Order.TotalCents}, nil)
	}
	d.Reason = "payment " + decision + ": " + detail
	return s.commit(ctx, m, event.PaymentFailed, d, map[string]any{"decision": decision, "reason": detail}, nil)
}

func (s *Services) refund(ctx context.Context, m *streams.Message, d *event.OrderData) error {
	decision, cents, err := s.gateway.refund(ctx, m.Env.SagaID)
	if err != nil {
		return err
	}
	return s.commit(ctx, m, event.PaymentRefunded, d, map[string]any{"refund": decision, "refunded_cents": cents}, nil)
}

func (s *Services) reserve(ctx context.Context, m *streams.Message, d *event.OrderData) error {
	decision, sku, err := s.inventory.reserve(ctx, m.Env.SagaID, d.Order.Items)
	if err != nil {
		return err
	}
	if decision == "reserved" {
		return s.commit(ctx, m, event.StockReserved, d, map[string]any{"reserved_units": d.Order.Units()}, nil)
	}
	d.Reason = "stock " + decision
	if sku != "" {
		d.Reason += ": " + sku
	}
	return s.commit(ctx, m, event.StockInsufficient, d, map[string]any{"decision": decision, "sku": sku}, nil)
}

func (s *Services) release(ctx context.Context, m *streams.Message, d *event.OrderData) error {
	decision, err := s.inventory.release(ctx, m.Env.SagaID)
	if err != nil {
		return err
	}
	return s.commit(ctx, m, event.StockReleased, d, map[string]any{"release": decision}, nil)
}

// consume is not a saga step: the saga is already COMPLETED; inventory only
// turns the reservation into shipped units and acknowledges.
func (s *Services) consume(ctx context.Context, m *streams.Message, _ *event.OrderData) error {
	if _, err := s.inventory.consume(ctx, m.Env.SagaID); err != nil {
		return err
	}
	return s.engine.Ack(ctx, m)
}

// settle is not a saga step: the saga is COMPLETED; payment lets the
// charge's ledger expire.
func (s *Services) settle(ctx context.Context, m *streams.Message, _ *event.OrderData) error {
	if err := s.gateway.settle(ctx, m.Env.SagaID); err != nil {
		return err
	}
	return s.engine.Ack(ctx, m)
}

// closeShipment is not a saga step: shipping lets the shipment record of a
// completed saga expire.
func (s *Services) closeShipment(ctx context.Context, m *streams.Message, _ *event.OrderData) error {
	if err := s.shipping.close(ctx, m.Env.SagaID); err != nil {
		return err
	}
	return s.engine.Ack(ctx, m)
}

func (s *Services) ship(ctx context.Context, m *streams.Message, d *event.OrderData) error {
	decision, detail, err := s.shipping.ship(ctx, m.Env.SagaID, d.Order.Units())
	if err != nil {
		return err
	}
	if decision == "created" {
		d.ShipmentID = detail
		return s.commit(ctx, m, event.ShipmentCreated, d, map[string]any{"shipment_id": detail}, nil)
	}
	d.Reason = "shipment " + decision + ": " + detail
	return s.commit(ctx, m, event.ShipmentFailed, d, map[string]any{"decision": decision, "reason": detail}, nil)
}

func (s *Services) complete(ctx context.Context, m *streams.Message, d *event.OrderData) error {
	return s.commit(ctx, m, event.OrderCompleted, d, nil, map[string]string{"status": event.OrderStatusCompleted})
}

func (s *Services) cancel(ctx context.Context, m *streams.Message, d *event.OrderData) error {
	if d.Reason == "" {
		d.Reason = "cancelled"
	}
	return s.commit(ctx, m, event.OrderCancelled, d, nil,
		map[string]string{"status": event.OrderStatusCancelled, "reason": d.Reason})
}

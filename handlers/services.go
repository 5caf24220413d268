package handlers

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/saga"
)

// Services are the order domain's business operations: one method per
// operation of each step. They decide and return their effects; the engine
// does the rest.
type Services struct {
	gateway   *Gateway
	inventory *Inventory
	opts      Options
	log       *slog.Logger
}

// NewServices wires the services. prefix is the engine's key prefix (the
// gateway and the stock live under it).
func NewServices(rdb redis.UniversalClient, keys saga.Keys, opts Options, log *slog.Logger) *Services {
	if log == nil {
		log = slog.Default()
	}
	return &Services{gateway: NewGateway(rdb, keys, opts), inventory: NewInventory(rdb, keys), opts: opts, log: log}
}

// Gateway returns the fake payment gateway (tests reconcile its ledger).
func (s *Services) Gateway() *Gateway { return s.gateway }

// Inventory returns the inventory store.
func (s *Services) Inventory() *Inventory { return s.inventory }

// cancelOrder compensates createOrder: the engine marks the order
// CANCELLED as the saga ends; nothing else to undo.
func (s *Services) cancelOrder(context.Context, *saga.Call[Order]) (saga.Outcome, error) {
	return saga.OK(nil), nil
}

// charge charges the order's total at the gateway, once per saga.
func (s *Services) charge(ctx context.Context, c *saga.Call[Order]) (saga.Outcome, error) {
	decision, detail, err := s.gateway.charge(ctx, c.SagaID, c.Data.TotalCents)
	if err != nil {
		return saga.Outcome{}, err
	}
	if decision == "charged" {
		return saga.OK(map[string]any{"payment_id": detail, "amount_cents": c.Data.TotalCents},
			saga.Set("payment_id", detail)), nil
	}
	return saga.Fail("payment " + decision + ": " + detail), nil
}

// refund refunds the saga's charge (a no-op that blocks a late charge when
// there was none).
func (s *Services) refund(ctx context.Context, c *saga.Call[Order]) (saga.Outcome, error) {
	decision, cents, err := s.gateway.refund(ctx, c.SagaID)
	if err != nil {
		return saga.Outcome{}, err
	}
	if decision == "refused" {
		return saga.Fail("the gateway refused the refund"), nil
	}
	return saga.OK(map[string]any{"refund": decision, "refunded_cents": cents}), nil
}

// settle lets a completed saga's ledger expire: the charge is final.
func (s *Services) settle(ctx context.Context, c *saga.Call[Order]) (saga.Outcome, error) {
	return saga.OK(nil), s.gateway.settle(ctx, c.SagaID)
}

// reserve takes every item from the stock, all or nothing.
func (s *Services) reserve(_ context.Context, c *saga.Call[Order]) (saga.Outcome, error) {
	var ws []saga.Write
	for _, it := range c.Data.Items {
		ws = append(ws, saga.Take(stockAvailable, it.SKU, it.Quantity, "stock insufficient: "+it.SKU),
			saga.HIncrBy(stockReserved, it.SKU, it.Quantity))
	}
	return saga.OK(map[string]any{"reserved_units": c.Data.Units()}, ws...), nil
}

// release gives the reserved units back.
func (s *Services) release(_ context.Context, c *saga.Call[Order]) (saga.Outcome, error) {
	var ws []saga.Write
	for _, it := range c.Data.Items {
		ws = append(ws, saga.HIncrBy(stockAvailable, it.SKU, it.Quantity), saga.HIncrBy(stockReserved, it.SKU, -it.Quantity))
	}
	return saga.OK(map[string]any{"released_units": c.Data.Units()}, ws...), nil
}

// consume turns a completed saga's reservation into shipped units.
func (s *Services) consume(_ context.Context, c *saga.Call[Order]) (saga.Outcome, error) {
	var ws []saga.Write
	for _, it := range c.Data.Items {
		ws = append(ws, saga.HIncrBy(stockReserved, it.SKU, -it.Quantity))
	}
	return saga.OK(nil, ws...), nil
}

// shippingTotals counts shipments per partition.
var shippingTotals = saga.InPartition("shipping.totals")

// ship creates the order's shipment: its record is fields of the saga.
func (s *Services) ship(ctx context.Context, c *saga.Call[Order]) (saga.Outcome, error) {
	sleep(ctx, s.opts.ShippingLatency)
	units := c.Data.Units()
	reason := ""
	switch {
	case units > s.opts.ShippingMaxUnits:
		reason = "too many units for one shipment"
	case s.opts.ShippingFailureRate > 0 && rand.Float64() < s.opts.ShippingFailureRate:
		reason = "carrier refused the shipment"
	}
	if reason != "" {
		return saga.Fail("shipment failed: "+reason, saga.Set("status", "failed"), saga.Set("reason", reason)), nil
	}
	id := "shp-" + uuid.NewString()
	return saga.OK(map[string]any{"shipment_id": id},
		saga.Set("status", "created"), saga.Set("shipment_id", id), saga.Set("units", strconv.FormatInt(units, 10)),
		saga.HIncrBy(shippingTotals, "shipments", 1)), nil
}

// cancelShipment cancels the shipment (the engine applies it only if the
// shipment was created).
func (s *Services) cancelShipment(context.Context, *saga.Call[Order]) (saga.Outcome, error) {
	return saga.OK(map[string]any{"cancel": "cancelled"},
		saga.Set("status", "cancelled"), saga.HIncrBy(shippingTotals, "cancellations", 1)), nil
}

package handlers

import (
	"context"
	"testing"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/streams"
)

// The services' scripts are their own barrier: whatever gets past the
// version check twice (two consumers racing on a duplicate), the second call
// of every effect and compensation changes nothing, and a compensation that
// came first blocks its action.
func TestEffectsApplyOnce(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{})
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	ks := streams.NewKeyspace(redistest.Prefix(), 1)
	opts := Options{PaymentLimitCents: 100000, ShippingMaxUnits: 1000}
	inv, gw, sh := NewInventory(rdb, ks, opts), NewGateway(rdb, ks, opts), NewShipping(rdb, ks, opts)
	if err := inv.Set(ctx, "a", 10); err != nil {
		t.Fatal(err)
	}
	items := []event.Item{{SKU: "a", Quantity: 3, UnitPriceCents: 100}}
	stock := func() Stock { s, _ := inv.Get(ctx, "a"); return s }
	totals := func() Totals { tt, _ := gw.Totals(ctx); return tt }

	// Forward effects, twice each.
	for range 2 {
		if d, _, err := gw.charge(ctx, "s1", 300); err != nil || d != "charged" {
			t.Fatalf("charge: %s %v", d, err)
		}
		if d, _, err := inv.reserve(ctx, "s1", items); err != nil || d != "reserved" {
			t.Fatalf("reserve: %s %v", d, err)
		}
		if d, _, err := sh.ship(ctx, "s1", 3); err != nil || d != "created" {
			t.Fatalf("ship: %s %v", d, err)
		}
	}
	if s := stock(); s.Available != 7 || s.Reserved != 3 {
		t.Fatalf("after two reservations: %+v", s)
	}
	if tt := totals(); tt.Charges != 1 || tt.ChargedCents != 300 {
		t.Fatalf("after two charges: %+v", tt)
	}
	// Compensations, twice each.
	for range 2 {
		if d, _, err := gw.refund(ctx, "s1"); err != nil || (d != "refunded") {
			t.Fatalf("refund: %s %v", d, err)
		}
		if d, err := inv.release(ctx, "s1"); err != nil || (d != "released") {
			t.Fatalf("release: %s %v", d, err)
		}
	}
	if s := stock(); s.Available != 10 || s.Reserved != 0 {
		t.Fatalf("after two releases: %+v", s)
	}
	if tt := totals(); tt.Refunds != 1 || tt.RefundedCents != 300 {
		t.Fatalf("after two refunds: %+v", tt)
	}
	// A reservation consumed twice leaves the stock once.
	inv.reserve(ctx, "s2", items)
	for range 2 {
		if _, err := inv.consume(ctx, "s2"); err != nil {
			t.Fatal(err)
		}
	}
	if s := stock(); s.Available != 7 || s.Reserved != 0 {
		t.Fatalf("after two consumptions: %+v", s)
	}
	// Null compensation: refund and release before the action leave no
	// effect and block the late action (no hanging).
	if d, cents, _ := gw.refund(ctx, "s3"); d != "null" || cents != 0 {
		t.Fatalf("refund of nothing: %s %d", d, cents)
	}
	if d, _, _ := gw.charge(ctx, "s3", 500); d != "blocked" {
		t.Fatalf("charge after its refund: %s", d)
	}
	if d, _ := inv.release(ctx, "s3"); d != "null" {
		t.Fatalf("release of nothing: %s", d)
	}
	if d, _, _ := inv.reserve(ctx, "s3", items); d != "released" {
		t.Fatalf("reservation after its release: %s", d)
	}
	if s := stock(); s.Available != 7 || s.Reserved != 0 {
		t.Fatalf("null compensations moved stock: %+v", s)
	}
	if tt := totals(); tt.Charges != 1 || tt.Refunds != 1 {
		t.Fatalf("null compensations moved money: %+v", tt)
	}
	// The shipment too: a cancel before the shipment leaves a tombstone
	// that refuses the late shipment; a real shipment is cancelled once.
	shipments := func() map[string]string {
		return rdb.HGetAll(ctx, ks.Domain("{shipping}", "totals")).Val()
	}
	if d, err := sh.cancel(ctx, "s3"); err != nil || d != "null" {
		t.Fatalf("cancel of no shipment: %s %v", d, err)
	}
	if d, _, err := sh.ship(ctx, "s3", 3); err != nil || d == "created" {
		t.Fatalf("shipment after its cancel: %s %v", d, err)
	}
	for range 2 {
		if d, err := sh.cancel(ctx, "s1"); err != nil || d != "cancelled" {
			t.Fatalf("cancel of a shipment: %s %v", d, err)
		}
	}
	if got := shipments(); got["shipments"] != "1" || got["cancellations"] != "1" {
		t.Fatalf("shipping totals %v: want s1 shipped and cancelled once, s3 never shipped", got)
	}
	// Decisions are recorded: a declined charge stays declined.
	if d, _, _ := gw.charge(ctx, "s4", 200000); d != "declined" {
		t.Fatalf("charge over the limit: %s", d)
	}
	if d, _, _ := gw.charge(ctx, "s4", 1); d != "declined" {
		t.Fatalf("a repeated charge changed its decision: %s", d)
	}
}

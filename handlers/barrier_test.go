package handlers

import (
	"context"
	"testing"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/saga"
)

// The fake gateway is an external system with the contract the engine
// requires of a checked step: each call idempotent under the saga's key, a
// refund that comes first leaves a tombstone that blocks a late charge, and
// a decision once taken stays.
func TestGatewayIsIdempotentWithABarrier(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{})
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	gw := NewGateway(rdb, saga.NewKeys(redistest.Prefix(), 1), Options{PaymentLimitCents: 100000})
	totals := func() Totals { tt, _ := gw.Totals(ctx); return tt }
	for range 2 {
		if d, _, err := gw.charge(ctx, "s1", 300); err != nil || d != "charged" {
			t.Fatalf("charge: %s %v", d, err)
		}
	}
	if tt := totals(); tt.Charges != 1 || tt.ChargedCents != 300 {
		t.Fatalf("after two charges: %+v", tt)
	}
	for range 2 {
		if d, _, err := gw.refund(ctx, "s1"); err != nil || d != "refunded" {
			t.Fatalf("refund: %s %v", d, err)
		}
	}
	if tt := totals(); tt.Refunds != 1 || tt.RefundedCents != 300 {
		t.Fatalf("after two refunds: %+v", tt)
	}
	// Null compensation: a refund before the charge leaves no effect and
	// blocks the late charge (no hanging).
	if d, cents, _ := gw.refund(ctx, "s3"); d != "null" || cents != 0 {
		t.Fatalf("refund of nothing: %s %d", d, cents)
	}
	if d, _, _ := gw.charge(ctx, "s3", 500); d != "blocked" {
		t.Fatalf("charge after its refund: %s", d)
	}
	if tt := totals(); tt.Charges != 1 || tt.Refunds != 1 {
		t.Fatalf("null compensations moved money: %+v", tt)
	}
	// Decisions are recorded: a declined charge stays declined.
	if d, _, _ := gw.charge(ctx, "s4", 200000); d != "declined" {
		t.Fatalf("charge over the limit: %s", d)
	}
	if d, _, _ := gw.charge(ctx, "s4", 1); d != "declined" {
		t.Fatalf("a repeated charge changed its decision: %s", d)
	}
}

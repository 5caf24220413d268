package handlers

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

//go:embed lua/*.lua
var luaFS embed.FS

var (
	chargeScript = streams.MustScript(luaFS, "lua/charge.lua")
	refundScript = streams.MustScript(luaFS, "lua/refund.lua")
)

// LoadScripts loads the gateway's scripts so that they run by SHA.
func LoadScripts(ctx context.Context, rdb redis.UniversalClient) error {
	return streams.LoadScripts(ctx, rdb, chargeScript, refundScript)
}

// Gateway is a fake payment gateway: the one external system of the demo
// domain, called like one (each call its own round trip, idempotent under
// the saga's key, PAYMENT_LATENCY long). It keeps a ledger per saga in its
// own slot ({payment}) and running totals that tests reconcile against the
// ledgers.
type Gateway struct {
	rdb   redis.UniversalClient
	batch *streams.Batcher // the calls of concurrent hops share round trips
	keys  saga.Keys
	opts  Options
}

// NewGateway returns the fake gateway.
func NewGateway(rdb redis.UniversalClient, keys saga.Keys, opts Options) *Gateway {
	return &Gateway{rdb: rdb, batch: streams.NewBatcher(rdb, 2), keys: keys, opts: opts}
}

func (g *Gateway) ledgerKey(sagaID string) string { return g.keys.Shared("payment", "ledger:"+sagaID) }
func (g *Gateway) totalsKey() string              { return g.keys.Shared("payment", "totals") }

// charge charges a saga's order once. Decisions: charged (detail: payment
// id), declined or blocked (detail: reason).
func (g *Gateway) charge(ctx context.Context, sagaID string, amount int64) (string, string, error) {
	sleep(ctx, g.opts.PaymentLatency)
	random := "0"
	if g.opts.PaymentFailureRate > 0 && rand.Float64() < g.opts.PaymentFailureRate {
		random = "1"
	}
	res, err := g.batch.Eval(ctx, chargeScript, []string{g.ledgerKey(sagaID), g.totalsKey()},
		amount, g.opts.PaymentLimitCents, random, "pay-"+uuid.NewString(), g.opts.ttlSeconds()).StringSlice()
	if err != nil {
		return "", "", fmt.Errorf("charge: %w", err)
	}
	return res[0], res[1], nil
}

// refund refunds a saga's charge once; without a charge it is a no-op that
// blocks a late charge. Decisions: refunded or null, with the cents refunded,
// or refused when the gateway said no (RefundFailures).
func (g *Gateway) refund(ctx context.Context, sagaID string) (string, int64, error) {
	sleep(ctx, g.opts.PaymentLatency)
	if g.opts.RefundFailures > 0 {
		n, err := g.rdb.HIncrBy(ctx, g.ledgerKey(sagaID), "refund_attempts", 1).Result()
		if err != nil {
			return "", 0, fmt.Errorf("refund: %w", err)
		}
		if n <= int64(g.opts.RefundFailures) {
			return "refused", 0, nil
		}
	}
	res, err := g.batch.Eval(ctx, refundScript, []string{g.ledgerKey(sagaID), g.totalsKey()}, g.opts.ttlSeconds()).StringSlice()
	if err != nil {
		return "", 0, fmt.Errorf("refund: %w", err)
	}
	cents, _ := strconv.ParseInt(res[1], 10, 64)
	return res[0], cents, nil
}

// settle lets a completed saga's ledger expire: the charge is final.
func (g *Gateway) settle(ctx context.Context, sagaID string) error {
	if err := g.batch.Do(ctx, redis.NewBoolCmd(ctx, "expire", g.ledgerKey(sagaID), g.opts.ttlSeconds())); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	return nil
}

// Ledger is one saga's charges and refunds.
type Ledger struct {
	Charge        string // charged, declined, blocked or empty
	ChargedCents  int64
	Refund        string // refunded, null or empty
	RefundedCents int64
}

// Ledger reads one saga's ledger.
func (g *Gateway) Ledger(ctx context.Context, sagaID string) (Ledger, error) {
	h, err := g.rdb.HGetAll(ctx, g.ledgerKey(sagaID)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Ledger{}, fmt.Errorf("read ledger: %w", err)
	}
	l := Ledger{Charge: h["charge"], Refund: h["refund"]}
	l.ChargedCents, _ = strconv.ParseInt(h["charged_cents"], 10, 64)
	l.RefundedCents, _ = strconv.ParseInt(h["refunded_cents"], 10, 64)
	return l, nil
}

// Totals are the gateway's running totals.
type Totals struct {
	Charges, ChargedCents, Refunds, RefundedCents int64
}

// Totals reads the gateway's running totals.
func (g *Gateway) Totals(ctx context.Context) (Totals, error) {
	h, err := g.rdb.HGetAll(ctx, g.totalsKey()).Result()
	if err != nil {
		return Totals{}, fmt.Errorf("read totals: %w", err)
	}
	var t Totals
	t.Charges, _ = strconv.ParseInt(h["charges"], 10, 64)
	t.ChargedCents, _ = strconv.ParseInt(h["charged_cents"], 10, 64)
	t.Refunds, _ = strconv.ParseInt(h["refunds"], 10, 64)
	t.RefundedCents, _ = strconv.ParseInt(h["refunded_cents"], 10, 64)
	return t, nil
}

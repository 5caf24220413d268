package handlers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/streams"
)

// Shipping is the shipping service's data: one shipment record per saga.
type Shipping struct {
	rdb  redis.UniversalClient
	ks   streams.Keyspace
	opts Options
}

// NewShipping returns the shipping store.
func NewShipping(rdb redis.UniversalClient, ks streams.Keyspace, opts Options) *Shipping {
	return &Shipping{rdb: rdb, ks: ks, opts: opts}
}

func (s *Shipping) shipmentKey(sagaID string) string {
	return s.ks.Domain("{shipping}", "shipment", sagaID)
}

// close lets a completed saga's shipment record expire.
func (s *Shipping) close(ctx context.Context, sagaID string) error {
	if err := s.rdb.Expire(ctx, s.shipmentKey(sagaID), time.Duration(s.opts.ttlSeconds())*time.Second).Err(); err != nil {
		return fmt.Errorf("close shipment: %w", err)
	}
	return nil
}

// cancel cancels a saga's shipment once (or leaves a tombstone). Decisions:
// cancelled, null, or the earlier outcome.
func (s *Shipping) cancel(ctx context.Context, sagaID string) (string, error) {
	res, err := cancelScript.Run(ctx, s.rdb, []string{s.shipmentKey(sagaID), s.ks.Domain("{shipping}", "totals")}, s.opts.ttlSeconds()).Text()
	if err != nil {
		return "", fmt.Errorf("cancel shipment: %w", err)
	}
	return res, nil
}

// ship creates a saga's shipment once. Decisions: created (detail: shipment
// id) or failed (detail: reason).
func (s *Shipping) ship(ctx context.Context, sagaID string, units int64) (string, string, error) {
	sleep(ctx, s.opts.ShippingLatency)
	random := "0"
	if s.opts.ShippingFailureRate > 0 && rand.Float64() < s.opts.ShippingFailureRate {
		random = "1"
	}
	res, err := shipScript.Run(ctx, s.rdb, []string{s.shipmentKey(sagaID), s.ks.Domain("{shipping}", "totals")},
		units, s.opts.ShippingMaxUnits, random, "shp-"+uuid.NewString(), s.opts.ttlSeconds()).StringSlice()
	if err != nil {
		return "", "", fmt.Errorf("ship: %w", err)
	}
	return res[0], res[1], nil
}

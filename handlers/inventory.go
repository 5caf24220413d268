package handlers

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/streams"
)

// Inventory is the inventory service's data: units available and reserved
// per SKU, in two hashes on one slot (so a reservation of many SKUs is one
// script on Redis Cluster too), and one reservation record per saga. SKUs
// are hash fields, never part of a key name.
type Inventory struct {
	rdb redis.UniversalClient
	ks  streams.Keyspace
	ttl int64
}

// NewInventory returns the inventory store.
func NewInventory(rdb redis.UniversalClient, ks streams.Keyspace, opts Options) *Inventory {
	return &Inventory{rdb: rdb, ks: ks, ttl: opts.ttlSeconds()}
}

func (inv *Inventory) availableKey() string { return inv.ks.Domain("{inventory}", "available") }
func (inv *Inventory) reservedKey() string  { return inv.ks.Domain("{inventory}", "reserved") }
func (inv *Inventory) reservationKey(sagaID string) string {
	return inv.ks.Domain("{inventory}", "reservation", sagaID)
}

// Stock is one SKU's stock.
type Stock struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
}

// Set sets the units available of a SKU.
func (inv *Inventory) Set(ctx context.Context, sku string, available int64) error {
	if err := inv.rdb.HSet(ctx, inv.availableKey(), sku, available).Err(); err != nil {
		return fmt.Errorf("set stock: %w", err)
	}
	return nil
}

// Get reads a SKU's stock; an unknown SKU has none.
func (inv *Inventory) Get(ctx context.Context, sku string) (Stock, error) {
	pipe := inv.rdb.Pipeline()
	a := pipe.HGet(ctx, inv.availableKey(), sku)
	r := pipe.HGet(ctx, inv.reservedKey(), sku)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Stock{}, fmt.Errorf("read stock: %w", err)
	}
	s := Stock{SKU: sku}
	s.Available, _ = strconv.ParseInt(a.Val(), 10, 64)
	s.Reserved, _ = strconv.ParseInt(r.Val(), 10, 64)
	return s, nil
}

// reserve reserves all items of a saga's order or none. It returns the
// decision and, for insufficient, the SKU that was short.
func (inv *Inventory) reserve(ctx context.Context, sagaID string, items []event.Item) (string, string, error) {
	args := []any{inv.ttl}
	for _, it := range items {
		args = append(args, it.SKU, it.Quantity)
	}
	res, err := reserveScript.Run(ctx, inv.rdb, []string{inv.availableKey(), inv.reservedKey(), inv.reservationKey(sagaID)}, args...).StringSlice()
	if err != nil {
		return "", "", fmt.Errorf("reserve stock: %w", err)
	}
	return res[0], res[1], nil
}

// release gives a saga's reserved units back (or leaves a tombstone).
func (inv *Inventory) release(ctx context.Context, sagaID string) (string, error) {
	res, err := releaseScript.Run(ctx, inv.rdb, []string{inv.availableKey(), inv.reservedKey(), inv.reservationKey(sagaID)}, inv.ttl).Text()
	if err != nil {
		return "", fmt.Errorf("release stock: %w", err)
	}
	return res, nil
}

// consume turns a completed saga's reservation into shipped units.
func (inv *Inventory) consume(ctx context.Context, sagaID string) (string, error) {
	res, err := consumeScript.Run(ctx, inv.rdb, []string{inv.reservedKey(), inv.reservationKey(sagaID)}, inv.ttl).Text()
	if err != nil {
		return "", fmt.Errorf("consume reservation: %w", err)
	}
	return res, nil
}

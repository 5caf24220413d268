package handlers

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/saga"
)

// The stock: units available and reserved per SKU, two hashes in the
// {inventory} slot (so that a reservation of many SKUs is applied all or
// nothing, on Redis Cluster too). SKUs are hash fields, never key names.
var (
	stockAvailable = saga.Shared("inventory", "available")
	stockReserved  = saga.Shared("inventory", "reserved")
)

// Inventory reads and sets the stock for the API.
type Inventory struct {
	rdb                 redis.UniversalClient
	available, reserved string
}

// NewInventory returns the inventory store.
func NewInventory(rdb redis.UniversalClient, keys saga.Keys) *Inventory {
	return &Inventory{rdb: rdb, available: keys.Shared("inventory", "available"), reserved: keys.Shared("inventory", "reserved")}
}

// Stock is one SKU's stock.
type Stock struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
}

// Set sets the units available of a SKU.
func (inv *Inventory) Set(ctx context.Context, sku string, available int64) error {
	if err := inv.rdb.HSet(ctx, inv.available, sku, available).Err(); err != nil {
		return fmt.Errorf("set stock: %w", err)
	}
	return nil
}

// Get reads a SKU's stock; an unknown SKU has none.
func (inv *Inventory) Get(ctx context.Context, sku string) (Stock, error) {
	pipe := inv.rdb.Pipeline()
	a := pipe.HGet(ctx, inv.available, sku)
	r := pipe.HGet(ctx, inv.reserved, sku)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Stock{}, fmt.Errorf("read stock: %w", err)
	}
	s := Stock{SKU: sku}
	s.Available, _ = strconv.ParseInt(a.Val(), 10, 64)
	s.Reserved, _ = strconv.ParseInt(r.Val(), 10, 64)
	return s, nil
}

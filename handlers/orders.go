package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/saga"
)

// recordOrder is the kind of the order record kept in the saga's slot.
const recordOrder = "order"

// Orders is the order service's entry point: it places orders (starting
// their sagas) and reads them back.
type Orders struct {
	rdb    redis.UniversalClient
	engine *saga.Engine
	saga   *saga.Saga[Order]
	mode   string
}

// NewOrders returns the order service; mode is the style of new sagas.
func NewOrders(rdb redis.UniversalClient, engine *saga.Engine, orderSaga *saga.Saga[Order], mode string) *Orders {
	return &Orders{rdb: rdb, engine: engine, saga: orderSaga, mode: mode}
}

// PlaceRequest is a validated order.
type PlaceRequest struct {
	CustomerID string
	Items      []Item
	// IdempotencyKey, when set, makes a retry return the first answer.
	IdempotencyKey string
	// Fingerprint identifies the request's content, so that a key reused
	// with another body is refused.
	Fingerprint string
}

// Placed is the answer to a placed order.
type Placed struct {
	OrderID string `json:"order_id"`
	SagaID  string `json:"saga_id"`
	// Created is false when an earlier request with the same key placed it.
	Created bool `json:"-"`
}

// ErrIdempotencyMismatch: the Idempotency-Key was used with another body.
var ErrIdempotencyMismatch = saga.ErrIdempotencyMismatch

// ErrNotFound: no such order.
var ErrNotFound = saga.ErrNotFound

// Place creates the order and starts its saga, atomically.
func (o *Orders) Place(ctx context.Context, r PlaceRequest) (Placed, error) {
	p, sagaID, orderID, err := o.engine.NewIDs(r.IdempotencyKey)
	if err != nil {
		return Placed{}, err
	}
	order := Order{OrderID: orderID, CustomerID: r.CustomerID, Items: r.Items}
	for _, it := range r.Items {
		order.TotalCents += it.Quantity * it.UnitPriceCents
	}
	items, _ := json.Marshal(order.Items)
	answer, _ := json.Marshal(Placed{OrderID: orderID, SagaID: sagaID})
	res, err := o.saga.Start(ctx, o.engine, order, saga.StartOptions{
		Mode: o.mode, Partition: p, SagaID: sagaID,
		Record: &saga.Record{Kind: recordOrder, ID: orderID, Fields: map[string]string{
			"order_id": orderID, "saga_id": sagaID, "customer_id": r.CustomerID,
			"items": string(items), "total_cents": strconv.FormatInt(order.TotalCents, 10),
			"status": OrderStatusPending,
		}},
		IdempotencyKey: r.IdempotencyKey, Fingerprint: r.Fingerprint, Answer: answer,
	})
	if err != nil && !errors.Is(err, saga.ErrIdempotencyMismatch) {
		return Placed{}, err
	}
	var placed Placed
	if jerr := json.Unmarshal(res.Answer, &placed); jerr != nil {
		return Placed{}, fmt.Errorf("decode stored answer: %w", jerr)
	}
	placed.Created = res.Created
	return placed, err
}

// OrderView is an order as GET /orders/{id} shows it.
type OrderView struct {
	OrderID    string    `json:"order_id"`
	SagaID     string    `json:"saga_id"`
	Status     string    `json:"status"`
	CustomerID string    `json:"customer_id"`
	Items      []Item    `json:"items"`
	TotalCents int64     `json:"total_cents"`
	Reason     string    `json:"reason"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Get reads an order. Its status is the one the engine wrote as its saga
// ended, except that an order whose saga FAILED shows FAILED: an operator
// must act.
func (o *Orders) Get(ctx context.Context, orderID string) (*OrderView, error) {
	keys := o.engine.Keys()
	h, err := o.rdb.HGetAll(ctx, keys.Record(keys.PartitionOf(orderID), recordOrder, orderID)).Result()
	if err != nil {
		return nil, fmt.Errorf("read order: %w", err)
	}
	if len(h) == 0 {
		return nil, ErrNotFound
	}
	v := &OrderView{OrderID: h["order_id"], SagaID: h["saga_id"], Status: h["status"], CustomerID: h["customer_id"], Reason: h["reason"]}
	_ = json.Unmarshal([]byte(h["items"]), &v.Items)
	v.TotalCents, _ = strconv.ParseInt(h["total_cents"], 10, 64)
	v.CreatedAt = saga.ParseMillis(h["created_at"])
	v.UpdatedAt = saga.ParseMillis(h["updated_at"])
	if v.Status == OrderStatusPending {
		st, err := o.engine.Get(ctx, v.SagaID)
		if err == nil && st.Status == saga.StatusFailed {
			v.Status = OrderStatusFailed
			v.Reason = st.Reason
			v.UpdatedAt = st.UpdatedAt
		}
	}
	return v, nil
}

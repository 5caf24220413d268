package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// recordOrder is the kind of the order record kept in the saga's slot.
const recordOrder = "order"

// Orders is the order service's entry point: it places orders (starting
// their sagas) and reads them back.
type Orders struct {
	rdb    redis.UniversalClient
	engine *saga.Engine
	ks     streams.Keyspace
	mode   string
	def    *saga.Definition
}

// NewOrders returns the order service; mode is the style of new sagas.
func NewOrders(rdb redis.UniversalClient, engine *saga.Engine, mode string) *Orders {
	return &Orders{rdb: rdb, engine: engine, ks: engine.Keyspace(), mode: mode, def: OrderSaga()}
}

// PlaceRequest is a validated order.
type PlaceRequest struct {
	CustomerID string
	Items      []event.Item
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

// Place creates the order and starts its saga, atomically.
func (o *Orders) Place(ctx context.Context, r PlaceRequest) (Placed, error) {
	p, sagaID, orderID, err := o.engine.NewIDs(r.IdempotencyKey)
	if err != nil {
		return Placed{}, err
	}
	order := event.Order{OrderID: orderID, CustomerID: r.CustomerID, Items: r.Items}
	for _, it := range r.Items {
		order.TotalCents += it.Quantity * it.UnitPriceCents
	}
	data, err := json.Marshal(event.OrderData{Order: order})
	if err != nil {
		return Placed{}, fmt.Errorf("encode order: %w", err)
	}
	items, _ := json.Marshal(order.Items)
	answer, _ := json.Marshal(Placed{OrderID: orderID, SagaID: sagaID})
	first, firstData := event.OrderCreated, data
	if o.mode == event.ModeOrchestration {
		first = o.def.Steps[0].Execute
		if firstData, err = saga.CommandData(data, 0, event.PhaseExecute); err != nil {
			return Placed{}, err
		}
	}
	res, err := o.engine.Start(ctx, saga.StartRequest{
		Type: event.OrderSaga, Mode: o.mode, Partition: p, SagaID: sagaID,
		Context: data, // the order is the saga's context
		Record: &saga.Record{Kind: recordOrder, ID: orderID, Fields: map[string]string{
			"order_id": orderID, "saga_id": sagaID, "customer_id": r.CustomerID,
			"items": string(items), "total_cents": strconv.FormatInt(order.TotalCents, 10),
			"status": event.OrderStatusPending,
		}},
		Event: first, Data: firstData,
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
	OrderID    string       `json:"order_id"`
	SagaID     string       `json:"saga_id"`
	Status     string       `json:"status"`
	CustomerID string       `json:"customer_id"`
	Items      []event.Item `json:"items"`
	TotalCents int64        `json:"total_cents"`
	Reason     string       `json:"reason"`
	CreatedAt  time.Time    `json:"created_at"`
	UpdatedAt  time.Time    `json:"updated_at"`
}

// ErrNotFound: no such order.
var ErrNotFound = saga.ErrNotFound

// Get reads an order. Its status is the order service's, except that an
// order whose saga FAILED shows FAILED: an operator must act.
func (o *Orders) Get(ctx context.Context, orderID string) (*OrderView, error) {
	p := o.ks.PartitionOf(orderID)
	h, err := o.rdb.HGetAll(ctx, o.ks.Record(p, recordOrder, orderID)).Result()
	if err != nil {
		return nil, fmt.Errorf("read order: %w", err)
	}
	if len(h) == 0 {
		return nil, ErrNotFound
	}
	v := &OrderView{OrderID: h["order_id"], SagaID: h["saga_id"], Status: h["status"], CustomerID: h["customer_id"], Reason: h["reason"]}
	_ = json.Unmarshal([]byte(h["items"]), &v.Items)
	v.TotalCents, _ = strconv.ParseInt(h["total_cents"], 10, 64)
	v.CreatedAt = msTime(h["created_at"])
	v.UpdatedAt = msTime(h["updated_at"])
	if v.Status == event.OrderStatusPending {
		st, err := o.engine.Get(ctx, v.SagaID)
		if err == nil && st.Status == event.StatusFailed {
			v.Status = event.OrderStatusFailed
			v.Reason = st.Reason
			v.UpdatedAt = st.UpdatedAt
		}
	}
	return v, nil
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

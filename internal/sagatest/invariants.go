package sagatest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// Placed is an order a test placed, as the API answered it.
type Placed struct {
	OrderID string
	SagaID  string
}

// Report is what Check found.
type Report struct {
	ByStatus map[string]int // order status → count
	Problems []string
}

// Err returns the problems as one error, or nil.
func (r *Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(r.Problems, "\n"))
}

func (r *Report) fail(format string, args ...any) {
	if len(r.Problems) < 50 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Checker verifies SPEC section 9 over a set of orders.
type Checker struct {
	RDB     redis.UniversalClient
	KS      streams.Keyspace
	Engine  *saga.Engine
	Orders  *handlers.Orders
	Gateway *handlers.Gateway
	Stock   *handlers.Inventory
}

// NewChecker builds a checker on the product's own read paths.
func NewChecker(rdb redis.UniversalClient, ks streams.Keyspace) (*Checker, error) {
	engine, err := saga.New(rdb, ks, saga.Options{}, handlers.OrderSaga())
	if err != nil {
		return nil, err
	}
	opts := handlers.Options{}
	return &Checker{
		RDB: rdb, KS: ks, Engine: engine,
		Orders:  handlers.NewOrders(rdb, engine, event.ModeChoreography),
		Gateway: handlers.NewGateway(rdb, ks, opts),
		Stock:   handlers.NewInventory(rdb, ks, opts),
	}, nil
}

// Terminal reports how many of the orders are not yet in a final state.
func (c *Checker) Unfinished(ctx context.Context, orders []Placed) (int, error) {
	n := 0
	for _, o := range orders {
		v, err := c.Orders.Get(ctx, o.OrderID)
		if err != nil {
			return 0, err
		}
		if v.Status == event.OrderStatusPending {
			n++
		}
	}
	return n, nil
}

// Check verifies, at rest, for the given orders and the stock each SKU was
// set to before they were placed:
//   - every order is COMPLETED, CANCELLED or FAILED, and agrees with its saga;
//   - stock: available + units of COMPLETED orders = initial; reserved = 0;
//   - money: charged − refunded = total if COMPLETED, 0 if CANCELLED; the
//     gateway's running totals equal the sums over the ledgers (a charge or
//     refund applied twice would show there);
//   - every consumer group's pending list is empty.
//
// It assumes these orders are the only ones under the keyspace's prefix.
func (c *Checker) Check(ctx context.Context, orders []Placed, initial map[string]int64) (*Report, error) {
	r := &Report{ByStatus: map[string]int{}}
	completedUnits := map[string]int64{}
	var charges, chargedCents, refunds, refundedCents int64
	for _, o := range orders {
		v, err := c.Orders.Get(ctx, o.OrderID)
		if err != nil {
			return nil, fmt.Errorf("order %s: %w", o.OrderID, err)
		}
		st, err := c.Engine.Get(ctx, o.SagaID)
		if err != nil {
			return nil, fmt.Errorf("saga %s: %w", o.SagaID, err)
		}
		r.ByStatus[v.Status]++
		want := map[string]string{
			event.OrderStatusCompleted: event.StatusCompleted,
			event.OrderStatusCancelled: event.StatusCompensated,
			event.OrderStatusFailed:    event.StatusFailed,
		}[v.Status]
		if want == "" {
			r.fail("order %s is %s (saga %s), not terminal", o.OrderID, v.Status, st.Status)
			continue
		}
		if st.Status != want {
			r.fail("order %s is %s but its saga is %s", o.OrderID, v.Status, st.Status)
		}
		l, err := c.Gateway.Ledger(ctx, o.SagaID)
		if err != nil {
			return nil, err
		}
		if l.Charge == "charged" {
			charges++
			chargedCents += l.ChargedCents
		}
		if l.Refund == "refunded" {
			refunds++
			refundedCents += l.RefundedCents
		}
		net := l.ChargedCents - l.RefundedCents
		switch v.Status {
		case event.OrderStatusCompleted:
			if net != v.TotalCents {
				r.fail("order %s COMPLETED: charged-refunded = %d, total %d", o.OrderID, net, v.TotalCents)
			}
			for _, it := range v.Items {
				completedUnits[it.SKU] += it.Quantity
			}
		case event.OrderStatusCancelled:
			if net != 0 {
				r.fail("order %s CANCELLED: charged-refunded = %d, want 0", o.OrderID, net)
			}
		}
	}
	t, err := c.Gateway.Totals(ctx)
	if err != nil {
		return nil, err
	}
	if t.Charges != charges || t.ChargedCents != chargedCents || t.Refunds != refunds || t.RefundedCents != refundedCents {
		r.fail("gateway totals %+v differ from the ledgers (charges %d/%d¢, refunds %d/%d¢): an effect was applied twice",
			t, charges, chargedCents, refunds, refundedCents)
	}
	for sku, init := range initial {
		s, err := c.Stock.Get(ctx, sku)
		if err != nil {
			return nil, err
		}
		if s.Available+completedUnits[sku] != init {
			r.fail("sku %s: available %d + completed %d != initial %d", sku, s.Available, completedUnits[sku], init)
		}
		if s.Reserved != 0 {
			r.fail("sku %s: %d units still reserved at rest", sku, s.Reserved)
		}
		if s.Available < 0 {
			r.fail("sku %s: available is negative (%d)", sku, s.Available)
		}
	}
	pending, err := c.Pending(ctx)
	if err != nil {
		return nil, err
	}
	for where, n := range pending {
		r.fail("%s: %d entries pending at rest", where, n)
	}
	return r, nil
}

// Pending returns the non-empty pending lists of every group of every
// stream, keyed "stream/group".
func (c *Checker) Pending(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for p := range c.KS.Partitions {
		for _, typ := range handlers.Streams() {
			stream := c.KS.Stream(p, typ)
			groups, err := c.RDB.XInfoGroups(ctx, stream).Result()
			if err != nil {
				if strings.Contains(err.Error(), "no such key") {
					continue
				}
				return nil, fmt.Errorf("xinfo groups %s: %w", stream, err)
			}
			for _, g := range groups {
				if g.Pending > 0 {
					out[stream+"/"+g.Name] = g.Pending
				}
			}
		}
	}
	return out, nil
}

package sagatest

import (
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// Product is the product's own read paths, for tests that look at a saga
// in flight the way the API shows it. Invariants are never checked through
// it: that is the independent Checker's job.
type Product struct {
	Engine  *saga.Engine
	Orders  *handlers.Orders
	Gateway *handlers.Gateway
	Stock   *handlers.Inventory
}

// NewProduct builds the product's read paths on rdb.
func NewProduct(rdb redis.UniversalClient, ks streams.Keyspace) (*Product, error) {
	engine, err := saga.New(rdb, ks, saga.Options{}, handlers.OrderSaga())
	if err != nil {
		return nil, err
	}
	opts := handlers.Options{}
	return &Product{
		Engine:  engine,
		Orders:  handlers.NewOrders(rdb, engine, event.ModeChoreography),
		Gateway: handlers.NewGateway(rdb, ks, opts),
		Stock:   handlers.NewInventory(rdb, ks, opts),
	}, nil
}

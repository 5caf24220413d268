package sagatest

import (
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/wiring"
	"github.com/streamsaga/streamsaga/saga"
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

// NewProduct builds the product's read paths on rdb, as the binaries do.
func NewProduct(rdb redis.UniversalClient, cfg *config.Config) (*Product, error) {
	p, err := wiring.New(rdb, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return nil, err
	}
	return &Product{Engine: p.Engine, Orders: p.Orders, Gateway: p.Services.Gateway(), Stock: p.Services.Inventory()}, nil
}

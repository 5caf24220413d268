// Package wiring turns the configuration into the saga engine with the order
// saga, and the order domain's options, in one place for every binary.
package wiring

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/saga"
)

// Product is the engine running the order saga, and the order domain's
// services and order entry point.
type Product struct {
	Engine   *saga.Engine
	Services *handlers.Services
	Saga     *saga.Saga[handlers.Order]
	Orders   *handlers.Orders
}

// New builds the engine with the order saga; onStatus (may be nil) is told
// about every saga status change.
func New(rdb redis.UniversalClient, cfg *config.Config, log *slog.Logger, onStatus func(sagaType, mode, status string)) (*Product, error) {
	services := handlers.NewServices(rdb, saga.NewKeys(cfg.Prefix, cfg.Partitions), Domain(cfg), log)
	orderSaga := services.Saga()
	engine, err := saga.New(rdb, Options(cfg, log, onStatus), orderSaga)
	if err != nil {
		return nil, err
	}
	if _, err := WorkerServices(cfg, engine); err != nil {
		return nil, err
	}
	return &Product{Engine: engine, Services: services, Saga: orderSaga,
		Orders: handlers.NewOrders(rdb, engine, orderSaga, cfg.Mode)}, nil
}

// WorkerServices resolves WORKER_SERVICES against the services the saga
// types declare ("all" runs every one); an unknown one is a configuration
// error (every binary refuses it, as it refuses any bad variable).
func WorkerServices(cfg *config.Config, engine *saga.Engine) ([]string, error) {
	known := engine.Services()
	if len(cfg.Services) == 1 && cfg.Services[0] == "all" {
		return known, nil
	}
	for _, s := range cfg.Services {
		if !slices.Contains(known, s) {
			return nil, fmt.Errorf("%w: WORKER_SERVICES: unknown service %q (known: all, %s)", config.ErrInvalid, s, strings.Join(known, ","))
		}
	}
	return cfg.Services, nil
}

// Options are the engine's options from the configuration.
func Options(cfg *config.Config, log *slog.Logger, onStatus func(sagaType, mode, status string)) saga.Options {
	return saga.Options{
		Prefix: cfg.Prefix, Partitions: cfg.Partitions,
		StepTimeout: cfg.StepTimeout, SagaTimeout: cfg.SagaTimeout, Retention: cfg.SagaRetention, IdempotencyTTL: cfg.IdempotencyTTL,
		CompensationAttempts: cfg.CompensationAttempts, Backoff: cfg.CompensationBackoff,
		BackoffMax: cfg.CompensationBackoffMax, Logger: log,
		Clock:    func() time.Time { return time.Now().Add(cfg.ClockOffset) },
		OnStatus: onStatus,
	}
}

// Streams lists every stream of every partition: the event, command and
// reply streams, then the dead letters and alerts.
func Streams(engine *saga.Engine) (events, operator []string) {
	keys := engine.Keys()
	for p := range keys.Partitions {
		for _, typ := range engine.MessageTypes() {
			events = append(events, keys.Stream(p, typ))
		}
		operator = append(operator, keys.DeadLetter(p), keys.Alerts(p))
	}
	return events, operator
}

// Domain are the order domain's options.
func Domain(cfg *config.Config) handlers.Options {
	return handlers.Options{
		PaymentLimitCents: cfg.PaymentLimitCents, ShippingMaxUnits: cfg.ShippingMaxUnits,
		PaymentFailureRate: cfg.PaymentFailureRate, ShippingFailureRate: cfg.ShippingFailureRate,
		PaymentLatency: cfg.PaymentLatency, ShippingLatency: cfg.ShippingLatency,
		RefundFailures: cfg.RefundFailures, RecordTTL: cfg.SagaRetention,
	}
}

// Shape returns an engine of the order saga that only describes it — its
// groups, streams and key names — for tools that read Redis without running
// sagas (the benchmark, the chaos harness). It must not run anything.
func Shape(prefix string, partitions int) *saga.Engine {
	cfg := &config.Config{Prefix: prefix, Partitions: partitions, Services: []string{"all"}}
	p, err := New(nil, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		panic(err) // the order saga's declaration is wrong: a build defect
	}
	return p.Engine
}

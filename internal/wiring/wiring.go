// Package wiring turns the configuration into the options of the saga engine
// and the order domain, in one place for every binary.
package wiring

import (
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// Engine builds the saga engine with the order saga; onStatus (may be nil)
// is told about every saga status change.
func Engine(rdb redis.UniversalClient, cfg *config.Config, log *slog.Logger, onStatus func(sagaType, mode, status string)) (*saga.Engine, error) {
	ks := streams.NewKeyspace(cfg.Prefix, cfg.Partitions)
	return saga.New(rdb, ks, saga.Options{
		StepTimeout: cfg.StepTimeout, SagaTimeout: cfg.SagaTimeout, Retention: cfg.SagaRetention, IdempotencyTTL: cfg.IdempotencyTTL,
		CompensationAttempts: cfg.CompensationAttempts, Backoff: cfg.CompensationBackoff,
		BackoffMax: cfg.CompensationBackoffMax, Logger: log,
		Clock:    func() time.Time { return time.Now().Add(cfg.ClockOffset) },
		OnStatus: onStatus,
	}, handlers.OrderSaga())
}

// Streams lists every stream of every partition: the event, command and
// reply streams, then the dead letters and alerts.
func Streams(cfg *config.Config) (events, operator []string) {
	ks := streams.NewKeyspace(cfg.Prefix, cfg.Partitions)
	for p := range ks.Partitions {
		for _, typ := range handlers.Streams() {
			events = append(events, ks.Stream(p, typ))
		}
		operator = append(operator, ks.DeadLetter(p), ks.Alerts(p))
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

package handlers

import "time"

// Options are the demo domain's business rules and chaos knobs (SPEC
// section 4).
type Options struct {
	// PaymentLimitCents: the gateway declines larger charges.
	PaymentLimitCents int64
	// ShippingMaxUnits: larger orders fail to ship.
	ShippingMaxUnits int64
	// PaymentFailureRate is the share of charges declined at random (0..1).
	PaymentFailureRate float64
	// ShippingFailureRate is the share of shipments failed at random (0..1).
	ShippingFailureRate float64
	// PaymentLatency is added to every gateway call.
	PaymentLatency time.Duration
	// ShippingLatency is added to every shipment.
	ShippingLatency time.Duration
	// RefundFailures makes the gateway refuse the first N refund attempts
	// of every saga (to exercise compensation retries).
	RefundFailures int
	// RecordTTL is how long the services keep their per-saga records (the
	// idempotency records of charges, reservations and shipments). It must
	// outlive any redelivery; the saga retention is a good value.
	RecordTTL time.Duration
}

func (o Options) ttlSeconds() int64 {
	if o.RecordTTL <= 0 {
		return int64((168 * time.Hour).Seconds())
	}
	return int64(o.RecordTTL.Seconds())
}

// sleep waits for d unless ctx ends first.
func sleep(ctx interface{ Done() <-chan struct{} }, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

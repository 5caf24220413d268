package handlers

import (
	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/saga"
)

// Step indexes of ORDER_SAGA.
const (
	stepCreateOrder = iota
	stepChargePayment
	stepReserveStock
	stepCreateShipment
)

// OrderSaga is the definition of ORDER_SAGA: the design notes' four steps
// and what each choreography event does to the saga.
func OrderSaga() *saga.Definition {
	return &saga.Definition{
		Type: event.OrderSaga,
		Steps: []saga.Step{
			{Name: "createOrder"},
			// A charge whose outcome is unknown is compensated by a refund,
			// which is a no-op (and a barrier) when nothing was charged.
			{Name: "chargePayment", Abort: event.StockInsufficient},
			// Likewise a reservation by a release.
			{Name: "reserveStock", Abort: event.ShipmentFailed},
			// The choreography has no "cancel shipment" event: a shipment
			// whose outcome is unknown makes the saga FAILED for an operator.
			{Name: "createShipment"},
		},
		Events: map[string]saga.Effect{
			event.OrderCreated:      {Step: stepCreateOrder, StepStatus: event.StepCompleted},
			event.PaymentCompleted:  {Step: stepChargePayment, StepStatus: event.StepCompleted},
			event.PaymentFailed:     {Step: stepChargePayment, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			event.StockReserved:     {Step: stepReserveStock, StepStatus: event.StepCompleted},
			event.StockInsufficient: {Step: stepReserveStock, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			event.ShipmentCreated:   {Step: stepCreateShipment, StepStatus: event.StepCompleted},
			event.ShipmentFailed:    {Step: stepCreateShipment, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			event.StockReleased:     {Step: stepReserveStock, StepStatus: event.StepCompensated},
			event.PaymentRefunded:   {Step: stepChargePayment, StepStatus: event.StepCompensated},
			event.OrderCompleted:    {Step: saga.NoStep, Status: event.StatusCompleted},
			event.OrderCancelled:    {Step: stepCreateOrder, StepStatus: event.StepCompensated, Status: event.StatusCompensated},
		},
	}
}

// Subscriptions maps each service (consumer group) to the event types it
// consumes. Every worker creates all of these groups, whatever services it
// runs, so that events wait for a service that is not running yet.
//
// Besides the choreography of SPEC section 4, payment, inventory and
// shipping also consume order.completed, to finalise their own records of a
// completed saga (reserved units leave the stock; the live charge,
// reservation and shipment records get their TTL). Records of a saga that
// is still running never expire, so a compensation never finds one gone.
func Subscriptions() map[string][]string {
	return map[string][]string{
		event.ServicePayment:   {event.OrderCreated, event.StockInsufficient, event.StockReleased, event.OrderCompleted},
		event.ServiceInventory: {event.PaymentCompleted, event.ShipmentFailed, event.OrderCompleted},
		event.ServiceShipping:  {event.StockReserved, event.OrderCompleted},
		event.ServiceOrder:     {event.PaymentFailed, event.ShipmentCreated, event.PaymentRefunded},
	}
}

// Streams lists every event type that has a stream, for trimming.
func Streams() []string {
	return []string{
		event.OrderCreated, event.PaymentCompleted, event.PaymentFailed, event.StockReserved,
		event.StockInsufficient, event.ShipmentCreated, event.ShipmentFailed, event.StockReleased,
		event.PaymentRefunded, event.OrderCompleted, event.OrderCancelled,
	}
}

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
		// Abort (choreography) is the event that compensates a step whose
		// outcome is unknown and those before it: a refund, a release or a
		// shipment cancel is a no-op (and a barrier that blocks the late
		// action) when nothing was charged, reserved or shipped.
		Steps: []saga.Step{
			{Name: "createOrder", Execute: event.CmdOrderCreate, Compensate: event.CmdOrderCancel, Abort: event.PaymentFailed},
			{Name: "chargePayment", Execute: event.CmdPaymentCharge, Compensate: event.CmdPaymentRefund,
				Abort: event.StockInsufficient, Fail: event.PaymentFailed},
			{Name: "reserveStock", Execute: event.CmdStockReserve, Compensate: event.CmdStockRelease,
				Abort: event.ShipmentFailed, Fail: event.StockInsufficient},
			{Name: "createShipment", Execute: event.CmdShipmentCreate, Compensate: event.CmdShipmentCancel,
				Abort: event.ShipmentAbandoned, Fail: event.ShipmentFailed},
		},
		// An orchestrated saga ends with the same events as a choreographed
		// one, so the services finalise their records the same way.
		Completed:   saga.Final{Event: event.OrderCompleted, Record: map[string]string{"status": event.OrderStatusCompleted}},
		Compensated: saga.Final{Event: event.OrderCancelled, Record: map[string]string{"status": event.OrderStatusCancelled}},
		Events: map[string]saga.Effect{
			event.OrderCreated:      {Step: stepCreateOrder, StepStatus: event.StepCompleted},
			event.PaymentCompleted:  {Step: stepChargePayment, StepStatus: event.StepCompleted},
			event.PaymentFailed:     {Step: stepChargePayment, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			event.StockReserved:     {Step: stepReserveStock, StepStatus: event.StepCompleted},
			event.StockInsufficient: {Step: stepReserveStock, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			event.ShipmentCreated:   {Step: stepCreateShipment, StepStatus: event.StepCompleted},
			event.ShipmentFailed:    {Step: stepCreateShipment, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			event.ShipmentAbandoned: {Step: stepCreateShipment, StepStatus: event.StepFailed, Status: event.StatusCompensating},
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
		event.ServicePayment: {event.OrderCreated, event.StockInsufficient, event.StockReleased, event.OrderCompleted,
			event.CmdPaymentCharge, event.CmdPaymentRefund},
		event.ServiceInventory: {event.PaymentCompleted, event.ShipmentFailed, event.OrderCompleted,
			event.CmdStockReserve, event.CmdStockRelease},
		event.ServiceShipping: {event.StockReserved, event.ShipmentAbandoned, event.OrderCompleted, event.CmdShipmentCreate, event.CmdShipmentCancel},
		event.ServiceOrder:    {event.PaymentFailed, event.ShipmentCreated, event.PaymentRefunded, event.CmdOrderCreate, event.CmdOrderCancel},
		// The orchestrator reads the services' replies to its commands.
		event.ServiceOrchestrator: {event.Reply},
	}
}

// Streams lists every event type that has a stream, for trimming.
func Streams() []string {
	return []string{
		event.OrderCreated, event.PaymentCompleted, event.PaymentFailed, event.StockReserved,
		event.StockInsufficient, event.ShipmentCreated, event.ShipmentFailed, event.StockReleased,
		event.PaymentRefunded, event.OrderCompleted, event.OrderCancelled, event.ShipmentAbandoned,
		event.CmdOrderCreate, event.CmdOrderCancel, event.CmdPaymentCharge, event.CmdPaymentRefund,
		event.CmdStockReserve, event.CmdStockRelease, event.CmdShipmentCreate, event.CmdShipmentCancel,
		event.Reply,
	}
}

package handlers

import (
	"errors"

	"github.com/streamsaga/streamsaga/saga"
)

// OrderSaga is the saga type's name.
const OrderSaga = "ORDER_SAGA"

// Services, which are also the consumer group names.
const (
	ServiceOrder     = "order"
	ServicePayment   = "payment"
	ServiceInventory = "inventory"
	ServiceShipping  = "shipping"
)

// Choreography events of the order saga (SPEC section 4). Each names a
// stream: renaming one is a migration.
const (
	OrderCreated      = "order.created"
	PaymentCompleted  = "payment.completed"
	PaymentFailed     = "payment.failed"
	StockReserved     = "stock.reserved"
	StockInsufficient = "stock.insufficient"
	ShipmentCreated   = "shipment.created"
	ShipmentFailed    = "shipment.failed"
	StockReleased     = "stock.released"
	PaymentRefunded   = "payment.refunded"
	OrderCompleted    = "order.completed"
	OrderCancelled    = "order.cancelled"
	// ShipmentAbandoned is published by the engine when the shipment's
	// outcome is unknown (its message was dead-lettered, or the saga's end
	// stalled): shipping cancels whatever it may have shipped.
	ShipmentAbandoned = "shipment.abandoned"
	// ShipmentCancelled follows: inventory releases, and so on back.
	ShipmentCancelled = "shipment.cancelled"
)

// Orchestration commands of the order saga; the services answer on the
// saga.reply stream.
const (
	CmdOrderCancel    = "cmd.order.cancel"
	CmdPaymentCharge  = "cmd.payment.charge"
	CmdPaymentRefund  = "cmd.payment.refund"
	CmdStockReserve   = "cmd.stock.reserve"
	CmdStockRelease   = "cmd.stock.release"
	CmdShipmentCreate = "cmd.shipment.create"
	CmdShipmentCancel = "cmd.shipment.cancel"
)

// Order statuses as the API reports them (SPEC section 7).
const (
	OrderStatusPending   = "PENDING"
	OrderStatusCompleted = saga.RecordCompleted
	OrderStatusCancelled = saga.RecordCancelled
	OrderStatusFailed    = saga.RecordFailed
)

// Item is one line of an order.
type Item struct {
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// Order is the order saga's context: the order as placed, which every
// step reads.
type Order struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Items      []Item `json:"items"`
	TotalCents int64  `json:"total_cents"`
}

// Units is the number of units over all items.
func (o *Order) Units() int64 {
	var n int64
	for _, it := range o.Items {
		n += it.Quantity
	}
	return n
}

// Saga declares ORDER_SAGA: the design notes' four steps, the service of
// each, and the names of SPEC section 4. createOrder is done by the API,
// which creates the order with the saga; its compensation only lets the
// engine mark the order CANCELLED.
func (s *Services) Saga() *saga.Saga[Order] {
	return saga.Define(OrderSaga,
		saga.Step("createOrder", ServiceOrder, nil, s.cancelOrder).
			Events(OrderCreated, "order.failed", OrderCancelled).
			Commands("cmd.order.create", CmdOrderCancel),
		saga.Step("chargePayment", ServicePayment, s.charge, s.refund).Checked().Finally(s.settle).
			Events(PaymentCompleted, PaymentFailed, PaymentRefunded).
			Commands(CmdPaymentCharge, CmdPaymentRefund),
		saga.Step("reserveStock", ServiceInventory, s.reserve, s.release).Finally(s.consume).
			Events(StockReserved, StockInsufficient, StockReleased).
			Commands(CmdStockReserve, CmdStockRelease),
		saga.Step("createShipment", ServiceShipping, s.ship, s.cancelShipment).
			Events(ShipmentCreated, ShipmentFailed, ShipmentCancelled).Abandoned(ShipmentAbandoned).
			Commands(CmdShipmentCreate, CmdShipmentCancel),
	).Ends(OrderCompleted, OrderCancelled).Validate(validOrder)
}

// validOrder refuses a context that is not an order (a forged or corrupted
// message): its message is dead-lettered before any step acts on it.
func validOrder(o *Order) error {
	if o.OrderID == "" || len(o.Items) == 0 {
		return errors.New("the saga's context carries no order")
	}
	return nil
}

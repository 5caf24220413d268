package event

// Item is one line of an order.
type Item struct {
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// Order is the order as it travels through a saga.
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

// OrderData is the data of every order saga event: the order itself (events
// carry the state their consumers need, so no consumer reads another
// service's data) plus what the steps so far produced.
type OrderData struct {
	Order      Order  `json:"order"`
	PaymentID  string `json:"payment_id,omitempty"`
	ShipmentID string `json:"shipment_id,omitempty"`
	// Reason says why the saga is being compensated.
	Reason string `json:"reason,omitempty"`
}

package event

// Saga types.
const (
	// OrderSaga is the order → payment → inventory → shipping saga.
	OrderSaga = "ORDER_SAGA"
)

// Saga styles, recorded on each saga when it starts.
const (
	ModeChoreography  = "choreography"
	ModeOrchestration = "orchestration"
)

// Choreography events of the order saga (SPEC section 4). Each names a stream.
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
)

// Services, which are also the consumer group names.
const (
	ServiceOrder        = "order"
	ServicePayment      = "payment"
	ServiceInventory    = "inventory"
	ServiceShipping     = "shipping"
	ServiceOrchestrator = "orchestrator"
)

// Services lists every service a worker can run, in a stable order.
var Services = []string{ServiceOrder, ServicePayment, ServiceInventory, ServiceShipping, ServiceOrchestrator}

// Saga statuses (SPEC section 6).
const (
	StatusInProgress   = "IN_PROGRESS"
	StatusCompensating = "COMPENSATING"
	StatusCompleted    = "COMPLETED"
	StatusCompensated  = "COMPENSATED"
	StatusFailed       = "FAILED"
)

// SagaStatuses lists every saga status.
var SagaStatuses = []string{StatusInProgress, StatusCompensating, StatusCompleted, StatusCompensated, StatusFailed}

// Step statuses (SPEC section 6).
const (
	StepPending     = "PENDING"
	StepCompleted   = "COMPLETED"
	StepCompensated = "COMPENSATED"
	StepFailed      = "FAILED"
)

// Order statuses as the API reports them (SPEC section 7).
const (
	OrderStatusPending   = "PENDING"
	OrderStatusCompleted = "COMPLETED"
	OrderStatusCancelled = "CANCELLED"
	OrderStatusFailed    = "FAILED"
)

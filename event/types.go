package event

import "encoding/json"

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
	// ShipmentAbandoned is published by the saga engine (not a service) when
	// the shipment step's outcome is unknown (its deadline passed, or its
	// entry was dead-lettered): shipping cancels whatever it may have
	// shipped, then the saga compensates like after shipment.failed.
	ShipmentAbandoned = "shipment.abandoned"
)

// Orchestration commands of the order saga: the orchestrator sends them to
// the services, which answer on the Reply stream. Each names a stream.
const (
	CmdOrderCreate    = "cmd.order.create"
	CmdOrderCancel    = "cmd.order.cancel"
	CmdPaymentCharge  = "cmd.payment.charge"
	CmdPaymentRefund  = "cmd.payment.refund"
	CmdStockReserve   = "cmd.stock.reserve"
	CmdStockRelease   = "cmd.stock.release"
	CmdShipmentCreate = "cmd.shipment.create"
	CmdShipmentCancel = "cmd.shipment.cancel"
)

// Reply is the type (and stream) of the services' answers to commands,
// which the orchestrator group reads.
const Reply = "saga.reply"

// Command phases.
const (
	PhaseExecute    = "execute"
	PhaseCompensate = "compensate"
	// PhaseUndo compensates a late effect of a step its saga gave up on. It
	// is sent without a saga transition and answered by no reply.
	PhaseUndo = "undo"
)

// Command is what the orchestrator adds to a command's data, beside the
// saga's context.
type Command struct {
	Step  int    `json:"step"`
	Phase string `json:"phase"`
}

// ReplyData is the data of a Reply.
type ReplyData struct {
	Command string          `json:"command"`
	Step    int             `json:"step"`
	Phase   string          `json:"phase"`
	OK      bool            `json:"ok"`
	Result  json.RawMessage `json:"result,omitempty"`
	Reason  string          `json:"reason,omitempty"`
}

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

package event

// Saga styles, recorded on each saga when it starts and on each message.
const (
	ModeChoreography  = "choreography"
	ModeOrchestration = "orchestration"
)

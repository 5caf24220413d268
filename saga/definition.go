package saga

import (
	"errors"
	"fmt"

	"github.com/streamsaga/streamsaga/event"
)

// Definition describes one saga type: the design notes' orchestrator made
// data. Orchestration runs Steps in order, sending each step's Execute
// command and, when a step fails, the Compensate commands of the completed
// steps in reverse order. Choreography uses Events instead: what each event
// a service publishes does to the saga.
type Definition struct {
	// Type is the saga type name, e.g. ORDER_SAGA.
	Type string
	// Steps are the saga's steps in execution order.
	Steps []Step
	// Events maps each choreography event to what publishing it does to the
	// saga. Event types are unique across all definitions.
	Events map[string]Effect
	// Completed and Compensated say what the orchestrator publishes, and
	// writes on the saga's record, when an orchestrated saga ends.
	Completed, Compensated Final
}

// Final is the end of an orchestrated saga.
type Final struct {
	// Event is published with the saga's context as data; empty for none.
	Event string
	// Record fields set on the saga's record (the saga's reason is added).
	Record map[string]string
}

// Step is one step of a saga.
type Step struct {
	// Name is the step's name, e.g. chargePayment.
	Name string
	// Execute is the orchestration command that performs the step.
	Execute string
	// Compensate is the orchestration command that undoes it; empty when
	// there is nothing to undo.
	Compensate string
	// Abort is the choreography event that starts compensating this step
	// (and those before it) when its outcome is unknown: its entry was
	// dead-lettered, or its deadline passed. The compensations it triggers
	// must be safe when the step never took effect (null compensation).
	// Empty means the step cannot be compensated: the saga becomes FAILED.
	Abort string
	// Fail is the choreography event that reports this step failed: it
	// compensates the steps before it without the step's own service, which
	// may be down when the step's deadline passes. That service compensates
	// its own late effect when it finds its saga gave up on the step.
	Fail string
}

// Effect is what publishing an event does to its saga.
type Effect struct {
	// Step is the index of the step the event reports on; -1 for none.
	Step int
	// StepStatus is the step's new status.
	StepStatus string
	// Status is the saga's new status; empty leaves it.
	Status string
}

// NoStep marks an Effect that concerns no step.
const NoStep = -1

// Validate checks a definition's internal consistency.
func (d *Definition) Validate() error {
	var errs []error
	if d.Type == "" {
		errs = append(errs, errors.New("definition has no type"))
	}
	if len(d.Steps) == 0 {
		errs = append(errs, fmt.Errorf("%s: no steps", d.Type))
	}
	for typ, eff := range d.Events {
		if eff.Step != NoStep && (eff.Step < 0 || eff.Step >= len(d.Steps)) {
			errs = append(errs, fmt.Errorf("%s: event %s names step %d of %d", d.Type, typ, eff.Step, len(d.Steps)))
		}
		if eff.Status != "" && !isStatus(eff.Status) {
			errs = append(errs, fmt.Errorf("%s: event %s has unknown status %q", d.Type, typ, eff.Status))
		}
	}
	for i, s := range d.Steps {
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("%s: step %d has no name", d.Type, i))
		}
		if _, ok := d.Events[s.Abort]; s.Abort != "" && !ok {
			errs = append(errs, fmt.Errorf("%s: step %d abort event %s is not defined", d.Type, i, s.Abort))
		}
		if _, ok := d.Events[s.Fail]; s.Fail != "" && !ok {
			errs = append(errs, fmt.Errorf("%s: step %d fail event %s is not defined", d.Type, i, s.Fail))
		}
	}
	return errors.Join(errs...)
}

func isStatus(s string) bool {
	for _, v := range event.SagaStatuses {
		if v == s {
			return true
		}
	}
	return false
}

// terminal reports whether a saga in this status is finished for good
// (FAILED is not: an operator can drive it again).
func terminal(status string) bool {
	return status == event.StatusCompleted || status == event.StatusCompensated
}

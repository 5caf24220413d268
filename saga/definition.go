package saga

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// definition is a saga type as the engine runs it: the declaration made
// untyped, and the routing derived from it.
type definition struct {
	Type                            string
	Steps                           []stepSpec
	Started, Completed, Compensated string
	Owner                           string
	// routes maps "<group>|<message type>" to what handling it means.
	routes map[string]route
}

// stepSpec is one step of a definition.
type stepSpec struct {
	Name, Service                             string
	Execute, Compensate                       string // orchestration commands
	Completed, Failed, Compensated, Abandoned string // choreography events
	CanExecute, CanCompensate, HasFinally     bool
	Checked                                   bool
}

// ReplyType is the type (and stream) of the services' answers to the
// orchestrator's commands, read by the orchestrator group.
const ReplyType = "saga.reply"

// Orchestrator is the consumer group of the stateless orchestrator.
const Orchestrator = "orchestrator"

type routeKind int

const (
	// routeStep runs a step's operation, then commits the saga's transition
	// (choreography) or answers the orchestrator (a command).
	routeStep routeKind = iota
	// routeComplete: the owner completes a choreographed saga whose last
	// step completed.
	routeComplete
	// routeFinalize runs a step's Finally operation once its saga completed,
	// as a hop of its own (on a Redis Cluster only: see finalizers).
	routeFinalize
	// routeReply: the orchestrator advances a saga by a service's reply.
	routeReply
)

type route struct {
	def     *definition
	kind    routeKind
	step    int
	phase   Phase
	command bool // an orchestration command: answered by a reply
}

// derive builds the routes of every message type to the group that reads
// it, and checks that the declaration is consistent.
func (d *definition) derive() error {
	d.routes = map[string]route{}
	var errs []error
	add := func(group, typ string, r route) {
		r.def = d
		if !nameRE.MatchString(typ) {
			errs = append(errs, fmt.Errorf("message type %q: 1-64 characters of [A-Za-z0-9._-]", typ))
			return
		}
		key := group + "|" + typ
		if _, dup := d.routes[key]; dup {
			errs = append(errs, fmt.Errorf("group %s would read %s for two purposes (rename an event or a command)", group, typ))
			return
		}
		d.routes[key] = r
	}
	last := len(d.Steps) - 1
	// Choreography: each step reacts to the event of the step before; a
	// failure or a compensation makes the nearest earlier step that can be
	// undone compensate; the owner completes the saga.
	if d.Steps[0].CanExecute {
		add(d.Steps[0].Service, d.Started, route{kind: routeStep, step: 0, phase: Execute})
	}
	for k := range last {
		add(d.Steps[k+1].Service, d.Steps[k].Completed, route{kind: routeStep, step: k + 1, phase: Execute})
	}
	add(d.Owner, d.Steps[last].Completed, route{kind: routeComplete, step: last})
	for k, s := range d.Steps {
		if j := d.prevCompensable(k); j >= 0 {
			add(d.Steps[j].Service, s.Failed, route{kind: routeStep, step: j, phase: Compensate})
			if s.CanCompensate {
				add(d.Steps[j].Service, s.Compensated, route{kind: routeStep, step: j, phase: Compensate})
			}
		}
	}
	if d.Steps[last].CanCompensate {
		add(d.Steps[last].Service, d.Steps[last].Abandoned, route{kind: routeStep, step: last, phase: Compensate})
	}
	// Orchestration: commands to the services, replies to the orchestrator.
	for k, s := range d.Steps {
		if s.CanExecute {
			add(s.Service, s.Execute, route{kind: routeStep, step: k, phase: Execute, command: true})
		}
		if s.CanCompensate {
			add(s.Service, s.Compensate, route{kind: routeStep, step: k, phase: Compensate, command: true})
		}
	}
	if slices.Contains(d.groups(), Orchestrator) {
		errs = append(errs, fmt.Errorf("a step's service may not be named %s", Orchestrator))
	}
	return errors.Join(errs...)
}

// finalizers are the routes of the steps' Finally operations as hops of
// their own, reading the saga's completed event. On one Redis the Finally
// operations run in the transition that completes the saga; on a Redis
// Cluster their writes on another slot cannot join it, and applying them
// before it could race a sweeper that compensates the saga instead, so they
// run after it, here.
func (d *definition) finalizers() map[string]route {
	out := map[string]route{}
	for k, s := range d.Steps {
		if s.HasFinally {
			out[s.Service+"|"+d.Completed] = route{def: d, kind: routeFinalize, step: k, phase: Finalize}
		}
	}
	return out
}

// prevCompensable is the step before k, nearest first, that has a
// compensation, or -1.
func (d *definition) prevCompensable(k int) int {
	for j := k - 1; j >= 0; j-- {
		if d.Steps[j].CanCompensate {
			return j
		}
	}
	return -1
}

// compensatedBy is the step whose compensation runs on the message typ (a
// choreography event its service compensates on, or an orchestration
// compensation command), or -1.
func (d *definition) compensatedBy(typ string) int {
	for key, r := range d.routes {
		if r.kind == routeStep && r.phase == Compensate && strings.HasSuffix(key, "|"+typ) {
			return r.step
		}
	}
	return -1
}

// groups lists the consumer groups of the services of the saga type.
func (d *definition) groups() []string {
	var out []string
	for _, s := range d.Steps {
		if !slices.Contains(out, s.Service) {
			out = append(out, s.Service)
		}
	}
	return out
}

// first is the type of the message that starts a saga in mode.
func (d *definition) first(mode string) string {
	switch {
	case mode == ModeOrchestration && d.Steps[0].CanExecute:
		return d.Steps[0].Execute
	case mode == ModeOrchestration:
		return d.Steps[1].Execute
	case d.Steps[0].CanExecute:
		return d.Started
	}
	return d.Steps[0].Completed
}

// abort is the choreography event that gives up on step k of a saga in
// progress: on a timeout of a step not known to have completed, its
// failure event (the steps before it are compensated without its service,
// which may be down; it undoes its own late effect if one lands); else the
// event that makes its own service compensate it first (a no-op when it
// never took effect). "" means the saga ends compensated at once.
func (d *definition) abort(k int, timeout, completed bool) string {
	s := d.Steps[k]
	switch {
	case timeout && !completed, !s.CanCompensate:
		if d.prevCompensable(k) < 0 {
			return ""
		}
		return s.Failed
	case k < len(d.Steps)-1:
		return d.Steps[k+1].Failed
	}
	return s.Abandoned
}

// isCompensation reports whether a message type belongs to a saga's way
// back (for pictures and logs).
func (d *definition) isCompensation(typ string) bool {
	if typ == d.Compensated {
		return true
	}
	for _, s := range d.Steps {
		if typ == s.Failed || typ == s.Compensated || typ == s.Abandoned || typ == s.Compensate {
			return true
		}
	}
	return false
}

// types lists every message type a saga of this type may publish.
func (d *definition) types() []string {
	out := []string{d.Completed, d.Compensated}
	if d.Steps[0].CanExecute {
		out = append(out, d.Started)
	}
	for _, s := range d.Steps {
		out = append(out, s.Completed)
		if s.CanExecute {
			out = append(out, s.Failed)
		}
		if s.CanCompensate {
			out = append(out, s.Compensated)
		}
		if s.CanExecute {
			out = append(out, s.Execute)
		}
		if s.CanCompensate {
			out = append(out, s.Compensate)
		}
	}
	if last := d.Steps[len(d.Steps)-1]; last.CanCompensate {
		out = append(out, last.Abandoned)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

package saga

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/streamsaga/streamsaga/event"
)

// A model of one orchestrated saga on a hostile transport: every command
// and reply can be duplicated, delayed and reordered, the step in flight
// can time out or be dead-lettered at any moment, and the services answer
// with outcomes rapid chooses. The orchestrator's real decisions (advance,
// giveUp, abandoned) drive it; the model supplies what Redis would: the
// version fence on the message the saga waits for, and idempotent services
// with a barrier. Whatever happens, the saga ends in one terminal state
// that agrees with the services' effects.
func TestOrchestratorDecisionsReachOneOutcome(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m := newModel(t, rt)
		for range rapid.IntRange(0, 60).Draw(rt, "steps") {
			m.act(rapid.IntRange(0, 4).Draw(rt, "action"))
		}
		m.drain()
		m.check()
	})
}

type message struct {
	typ, id, causation string
	command            string // a reply's command type
	version            int64
	step               int
	phase              string
	reply              bool
	ok                 bool
}

// service is one step's service: idempotent per saga, with a barrier (a
// compensation that comes first blocks the execution).
type service struct {
	executeOK   bool // the business outcome of the step
	refusals    int  // how often its compensation is refused before it works
	compensated int  // compensation attempts so far
	effect      bool // the step's effect is in place
	tombstone   bool // compensated before any effect: a late execution is blocked
	undone      bool
	executed    bool
}

type model struct {
	t         *testing.T
	rt        *rapid.T
	e         *Engine
	def       *definition
	st        *State
	history   map[int64]string // version → "type|id" the saga waits for
	queue     []message
	services  []*service
	scheduled int64 // version a compensation retry was scheduled at, 0 = none
	ids       int
	// deadCompensation: a compensation command was dead-lettered, which
	// makes the saga FAILED.
	deadCompensation bool
}

func newModel(t *testing.T, rt *rapid.T) *model {
	e, d := testEngine(t)
	m := &model{t: t, rt: rt, e: e, def: d, history: map[int64]string{}}
	m.st = sagaAt(event.ModeOrchestration, StatusInProgress, 0)
	m.st.Version = 1
	for i := range m.def.Steps {
		m.services = append(m.services, &service{
			executeOK: rapid.Float64Range(0, 1).Draw(rt, fmt.Sprint("ok", i)) < 0.8,
			refusals:  rapid.IntRange(0, 3).Draw(rt, fmt.Sprint("refusals", i)),
		})
	}
	first := m.command(m.def.Steps[0].Execute, 0, string(Execute), 1)
	m.history[1] = first.typ + "|" + first.id
	return m
}

func (m *model) command(typ string, step int, phase string, version int64) message {
	m.ids++
	c := message{typ: typ, id: "e" + strconv.Itoa(m.ids), version: version, step: step, phase: phase}
	m.queue = append(m.queue, c)
	return c
}

// live is the fence: the saga's version and the identity of the message it
// waits for at that version.
func (m *model) live(version int64, typ, id string) bool {
	return version == m.st.Version && m.history[version] == typ+"|"+id
}

func (m *model) act(action int) {
	switch action {
	case 0, 1: // deliver any message, out of order
		if len(m.queue) > 0 {
			m.deliver(rapid.IntRange(0, len(m.queue)-1).Draw(m.rt, "deliver"))
		}
	case 2: // duplicate one
		if len(m.queue) > 0 {
			m.queue = append(m.queue, m.queue[rapid.IntRange(0, len(m.queue)-1).Draw(m.rt, "duplicate")])
		}
	case 3: // the step in flight times out
		if m.st.Status == StatusInProgress {
			c := newPatch(m.st.Type, m.st.SagaID, m.st.Mode, 0, m.st.Status)
			m.must(m.e.giveUp(c, m.def, m.st, "timed out", "deadline", "deadline", true))
			m.apply(c)
		}
	case 4: // a message is dead-lettered (its handler kept failing)
		if len(m.queue) > 0 {
			i := rapid.IntRange(0, len(m.queue)-1).Draw(m.rt, "deadletter")
			msg := m.queue[i]
			live := m.live(msg.version, msg.typ, msg.id)
			if msg.reply {
				live = m.live(msg.version, msg.command, msg.causation)
			}
			// Only the message a saga waits on is modelled failing for
			// good: handling any other is an acknowledgement or an undo.
			if live {
				m.queue = append(m.queue[:i], m.queue[i+1:]...)
				// The saga gives up on the step in flight; a compensation
				// dead-lettered makes it FAILED with an alert.
				c := newPatch(m.st.Type, m.st.SagaID, m.st.Mode, 0, m.st.Status)
				if m.st.Status == StatusInProgress {
					m.must(m.e.giveUp(c, m.def, m.st, "dead-lettered", msg.typ, msg.id, false))
				} else {
					m.deadCompensation = true
					c.compensationFailed(m.def, m.st, m.st.compensating, 1, "dead-lettered", msg.typ, "dead-lettered")
				}
				m.apply(c)
			}
		}
	}
	if m.scheduled != 0 && m.scheduled == m.st.Version && rapid.Bool().Draw(m.rt, "redrive") {
		m.redrive()
	}
}

func (m *model) must(err error) {
	if err != nil {
		m.rt.Fatal(err)
	}
}

func (m *model) deliver(i int) {
	msg := m.queue[i]
	m.queue = append(m.queue[:i], m.queue[i+1:]...)
	if msg.reply {
		m.orchestrate(msg)
		return
	}
	svc := m.services[msg.step]
	if msg.phase != phaseUndo && !m.live(msg.version, msg.typ, msg.id) {
		// A command its saga moved past gets no effect; the late effect
		// of an abandoned step is undone.
		if msg.phase == string(Execute) && abandoned(m.st, msg.step) && m.def.Steps[msg.step].CanCompensate {
			svc.compensate(true)
		}
		return
	}
	ok := true
	switch msg.phase {
	case string(Execute):
		ok = svc.execute()
	case string(Compensate):
		ok = svc.compensate(false)
	case phaseUndo:
		svc.compensate(true)
		return // an undo is answered by no reply
	}
	m.queue = append(m.queue, message{typ: ReplyType, causation: msg.id, version: msg.version, step: msg.step,
		phase: msg.phase, reply: true, ok: ok, command: msg.typ})
}

func (s *service) execute() bool {
	switch {
	case s.tombstone:
		return false // blocked: its compensation came first
	case s.executed:
		return s.effect || !s.executeOK
	}
	s.executed = true
	s.effect = s.executeOK
	return s.executeOK
}

// compensate undoes the effect once; undo bypasses refusals (it is retried
// until it works in the product).
func (s *service) compensate(undo bool) bool {
	if !undo {
		s.compensated++
		if s.compensated <= s.refusals {
			return false
		}
	}
	switch {
	case s.effect:
		s.effect, s.undone = false, true
	case !s.executed:
		s.tombstone = true
	}
	return true
}

// orchestrate is HandleReply: the fence, then advance; a stale reply of an
// effect whose step was abandoned is undone.
func (m *model) orchestrate(r message) {
	data := replyData{Command: r.command, Step: r.step, Phase: r.phase, OK: r.ok}
	if !m.live(r.version, r.command, r.causation) {
		if r.phase == string(Execute) && r.ok && abandoned(m.st, r.step) && m.def.Steps[r.step].CanCompensate {
			m.command(m.def.Steps[r.step].Compensate, r.step, phaseUndo, m.st.Version)
		}
		return
	}
	c := newPatch(m.st.Type, m.st.SagaID, m.st.Mode, 0, m.st.Status)
	m.must(m.e.advance(c, m.def, m.st, data, r.causation))
	m.apply(c)
}

func (m *model) redrive() {
	j := m.st.compensating
	c := newPatch(m.st.Type, m.st.SagaID, m.st.Mode, 0, m.st.Status)
	m.must(c.command(m.e, m.def.Steps[j].Compensate, m.st.Context, j, Compensate, "retry"))
	m.apply(c)
}

// apply commits c to the model's saga as the scripts would.
func (m *model) apply(c *patch) {
	for i := 0; i+1 < len(c.fields); i += 2 {
		k, v := fmt.Sprint(c.fields[i]), fmt.Sprint(c.fields[i+1])
		switch {
		case k == "status":
			m.st.Status = v
		case k == "current_step":
			m.st.CurrentStep, _ = strconv.Atoi(v)
		case k == "compensating_step":
			m.st.compensating, _ = strconv.Atoi(v)
		case strings.HasPrefix(k, "step."):
			parts := strings.Split(k, ".")
			n, _ := strconv.Atoi(parts[1])
			s := &m.st.Steps[n]
			if s.Compensation == nil && parts[2] != "status" && parts[2] != "result" {
				s.Compensation = &Compensation{}
			}
			switch parts[2] {
			case "status":
				s.Status = v
			case "compensation":
				s.Compensation.Status = v
			case "attempts":
				s.Compensation.Attempts, _ = strconv.Atoi(v)
			case "redriven":
				s.redriven, _ = strconv.Atoi(v)
			}
		}
	}
	m.st.Version++
	if c.status != "" {
		m.st.Status = c.status
	}
	m.scheduled = 0
	if c.retry > 0 {
		m.scheduled = m.st.Version
	}
	if c.msg == nil {
		m.history[m.st.Version] = c.history
		return
	}
	m.history[m.st.Version] = c.msg.Type + "|" + c.msg.EventID
	if !strings.HasPrefix(c.msg.Type, "cmd.") {
		return // the final event
	}
	var cmd commandData
	m.must(json.Unmarshal(c.msg.Data, &cmd))
	m.queue = append(m.queue, message{typ: c.msg.Type, id: c.msg.EventID, version: m.st.Version, step: cmd.Step, phase: cmd.Phase})
}

// drain delivers everything in order, re-driving scheduled retries, and
// times out a saga left waiting, until nothing moves.
func (m *model) drain() {
	for range 1000 {
		switch {
		case len(m.queue) > 0:
			m.deliver(0)
		case m.scheduled != 0 && m.scheduled == m.st.Version:
			m.redrive()
		case m.st.Status == StatusInProgress:
			m.act(3) // its message was dead-lettered: only the deadline is left
		default:
			return
		}
	}
	m.rt.Fatalf("the saga never settles: %+v", m.st)
}

func (m *model) check() {
	switch m.st.Status {
	case StatusCompleted:
		for i, s := range m.services {
			if !s.effect || s.undone {
				m.rt.Fatalf("COMPLETED but step %d's effect is not in place (%+v)", i, *s)
			}
		}
	case StatusCompensated:
		for i, s := range m.services {
			if s.effect && m.def.Steps[i].CanCompensate {
				m.rt.Fatalf("COMPENSATED but step %d's effect is still in place (%+v)", i, *s)
			}
		}
	case StatusFailed:
		failing := m.deadCompensation
		for _, s := range m.services {
			failing = failing || (s.refusals >= m.e.opts.CompensationAttempts && s.compensated >= m.e.opts.CompensationAttempts)
		}
		if !failing {
			m.rt.Fatalf("FAILED although no compensation failed: %+v", m.st)
		}
	default:
		m.rt.Fatalf("the saga ended %s, not terminal", m.st.Status)
	}
}

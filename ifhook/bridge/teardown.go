package bridge

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
)

// ErrHasPorts is wrapped when teardown refuses a bridge that still has
// guests' ports.
var ErrHasPorts = errors.New("still has ports")

// handoff passes the duty of putting a forwarding sysctl back to another
// bridge of ifhook's that still routes that family.
type handoff struct {
	key, old, to string
}

// Other is what teardown needs to know of another bridge ifhook made.
type Other struct {
	Bridge string
	Routes map[string]bool // the forwarding keys of the families it routes
	Owes   map[string]bool // the sysctls its record puts back
}

// others describes every bridge record but name's.
func (m *Manager) others(name string) ([]Other, error) {
	recs, err := m.State.ListBridges()
	var out []Other
	for _, r := range recs {
		if r.Bridge == name {
			continue
		}
		steps, derr := decodeSteps(r.Done())
		if derr != nil {
			continue
		}
		out = append(out, describeOther(r, steps))
	}
	return out, err
}

func describeOther(r *state.BridgeRecord, steps []plan.Recorded) Other {
	o := Other{Bridge: r.Bridge, Routes: map[string]bool{}, Owes: map[string]bool{}}
	routes := policy.Model(r.Model).Routes()
	for _, s := range steps {
		switch s := s.(type) {
		case *plan.AddAddr:
			if routes && s.Link.Name == r.Bridge {
				if s.Addr.Prefix.Addr().Is4() {
					o.Routes[kernel.IPv4Forward] = true
				} else {
					o.Routes[kernel.IPv6Forward] = true
				}
			}
		case *plan.SetSysctl:
			o.Owes[s.Key] = true
		}
	}
	return o
}

// ports returns the links ifhook itself made ports of the bridge (the
// bridged model's uplink): the rest are guests'.
func ours(bridge string, steps []plan.Recorded) []string {
	var out []string
	for _, s := range steps {
		if sl, ok := s.(*plan.SetLink); ok && sl.To.Master != nil && sl.To.Master.Name == bridge {
			out = append(out, sl.Link.Name)
		}
	}
	return out
}

// teardownQuery is what undoing a record reads from the kernel.
func teardownQuery(bridge string, steps []plan.Recorded) kernel.Query {
	q := kernel.Query{Links: []string{bridge}, Ports: []string{bridge}}
	for _, s := range steps {
		s.Needs(&q)
	}
	return q
}

// PlanTeardown plans undoing what a bridge's record says ifhook did (done,
// its decoded steps), last step first, given what the kernel holds now (m)
// and the other bridges ifhook made: a forwarding sysctl another of them
// still needs stays on, and that bridge's record takes over putting it
// back. A bridge with ports other than those ifhook made is refused
// unless force: those are running guests. It is pure: m is not changed.
func PlanTeardown(rec *state.BridgeRecord, done []plan.Recorded, m *kernel.Model, others []Other, force bool) (*Plan, error) {
	p := &Plan{Op: "teardown", Bridge: rec.Bridge, Model: policy.Model(rec.Model), record: rec, force: force,
		Where: "record from " + rec.Since.Local().Format(time.RFC3339)}
	br, err := m.LinkByName(rec.Bridge)
	if err != nil && !kernel.IsNotFound(err) {
		return p, err
	}
	if br != nil && br.IsBridge() {
		ports, err := m.Ports(br.Index)
		if err != nil {
			return p, err
		}
		mine := ours(rec.Bridge, done)
		var guests []string
		for _, port := range ports {
			if !slices.Contains(mine, port.Name) {
				guests = append(guests, escape.String(port.Name))
			}
		}
		if len(guests) > 0 {
			if !force {
				return p, exit.New(exit.Unavailable, "%s %w %s (guests running?); stop them first, or use --force", rec.Bridge, ErrHasPorts, strings.Join(guests, ", "))
			}
			p.Notes = append(p.Notes, plan.Notef(plan.Warning, "detaches the guests' ports %s (--force)", strings.Join(guests, ", ")))
		}
	} else if br == nil {
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "%s is already gone", rec.Bridge))
	}
	keep := make([]plan.Recorded, 0, len(done))
	for _, s := range done {
		if sc, ok := s.(*plan.SetSysctl); ok {
			if to := routedBy(others, sc.Key); to != "" {
				p.Notes = append(p.Notes, plan.Notef(plan.Info, "%s stays on: %s still routes, and puts it back when it goes", sc.Key, to))
				p.handoffs = append(p.handoffs, handoff{key: sc.Key, old: sc.Old, to: to})
				continue
			}
		}
		keep = append(keep, s)
	}
	steps, err := plan.Undoing(keep, m.Clone())
	if err != nil {
		return p, err
	}
	p.Steps = steps
	if br != nil && !slices.ContainsFunc(done, func(s plan.Recorded) bool { _, ok := s.(*plan.AddBridge); return ok }) {
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "%s existed before ifhook set it up: it stays", rec.Bridge))
	}
	return p, nil
}

// routedBy names another bridge that routes the family key forwards, or "".
func routedBy(others []Other, key string) string {
	for _, o := range others {
		if o.Routes[key] {
			return o.Bridge
		}
	}
	return ""
}

// teardownJournal: the record is the journal. It stays until teardown
// completes, and teardown of what is left is always safe to run again (each
// step is judged against the kernel then); a kill leaves the inflight note
// so the next ifhook finishes it.
type teardownJournal struct {
	m      *Manager
	p      *Plan
	handed bool
}

func (j *teardownJournal) what() string {
	w := "teardown " + j.p.Bridge
	if j.p.force {
		w += " force"
	}
	return w
}

// handOff writes each handoff into the record of the bridge taking it,
// before this record (which owes it now) goes: for a moment both owe it,
// which is harmless; neither owing it would not be.
func (j *teardownJournal) handOff() error {
	if j.handed {
		return nil
	}
	for _, h := range j.p.handoffs {
		other, err := j.m.State.ReadBridge(h.to)
		if err != nil {
			return err
		}
		if other == nil {
			continue
		}
		steps, err := decodeSteps(other.Done())
		if err != nil || describeOther(other, steps).Owes[h.key] {
			continue
		}
		line := (&plan.SetSysctl{Key: h.key, Value: "1", Old: h.old}).Encode(nil)
		other.Steps = append([]state.StepLine{{Line: line}}, other.Steps...)
		if err := j.m.State.WriteBridge(other); err != nil {
			return err
		}
	}
	j.handed = true
	return nil
}

func (j *teardownJournal) Ahead() error {
	if err := j.m.State.MarkInflight(j.what()); err != nil {
		return err
	}
	return j.handOff()
}

func (j *teardownJournal) Commit(*plan.Refs) error {
	if err := j.handOff(); err != nil {
		return err
	}
	if err := j.m.State.RemoveBridge(j.p.Bridge); err != nil {
		return err
	}
	j.m.Log.Change("teardown %s: removed the record", j.p.Bridge)
	return j.m.State.ClearInflight()
}

func (j *teardownJournal) Abort(bool) error {
	// The record stays, with everything it still owes: teardown again
	// finishes the job. A failure is reported, not retried by every ifup.
	return j.m.State.ClearInflight()
}

// Teardown removes what ifhook made for the named bridges (all it made,
// with none). A bridge already torn down, or never made, is a note, not an
// error: the state asked for is reached.
func (m *Manager) Teardown(force bool, names ...string) ([]*Plan, error) {
	end, err := m.begin("teardown", "tear down bridges")
	if err != nil {
		return nil, err
	}
	defer end()
	if len(names) == 0 {
		recs, err := m.State.ListBridges()
		if err != nil {
			return nil, exit.Op("teardown", "", err)
		}
		for _, r := range recs {
			names = append(names, r.Bridge)
		}
	}
	var plans []*Plan
	var errs []error
	for _, name := range names {
		p, err := m.teardownOne(name, force, false)
		if p != nil {
			plans = append(plans, p)
		}
		if err != nil {
			err = exit.Op("teardown", name, err)
			m.Log.Failure(err)
			errs = append(errs, err)
		}
	}
	return plans, exit.Join(errs...)
}

// ExplainTeardown returns the plans Teardown would apply, changing nothing.
func (m *Manager) ExplainTeardown(force bool, names ...string) ([]*Plan, error) {
	if len(names) == 0 {
		recs, err := m.State.ListBridges()
		if err != nil {
			return nil, exit.Op("explain", "", err)
		}
		for _, r := range recs {
			names = append(names, r.Bridge)
		}
	}
	var plans []*Plan
	for _, name := range names {
		p, err := m.teardownOne(name, force, true)
		plans = append(plans, p)
		if err != nil {
			return plans, exit.Op("explain", name, err)
		}
	}
	return plans, nil
}

// teardownOne plans and (unless dry) applies one bridge's teardown; the
// caller holds the lock.
func (m *Manager) teardownOne(name string, force, dry bool) (*Plan, error) {
	p := &Plan{Op: "teardown", Bridge: name}
	if err := policy.ValidIfName(name); err != nil {
		return p, exit.New(exit.Usage, "%s: %v", escape.Quote(name), err)
	}
	rec, done, pending, err := m.readRecord(name)
	if err != nil {
		return p, err
	}
	if rec == nil {
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "ifhook has no record of %s (never made, or torn down already): nothing to do", name))
		return p, nil
	}
	if len(pending) > 0 {
		// An interrupted plan: its steps are undone with the rest.
		done = append(done, pending...)
	}
	obs, err := kernel.Observe(m.Kernel, teardownQuery(name, done))
	if err != nil {
		return p, exit.Sys(err, "observe %s", name)
	}
	others, err := m.others(name)
	if err != nil {
		return p, err
	}
	p, err = PlanTeardown(rec, done, obs, others, force)
	if err != nil || dry {
		return p, err
	}
	return p, m.applier().BestEffort("teardown "+name, p.Steps, &teardownJournal{m: m, p: p})
}

// RemoveIfEmpty tears down a bridge whose policy says remove_when_empty
// once its last guest port has left; the caller holds the lock.
func (m *Manager) RemoveIfEmpty(bridge string) error {
	spec := m.Policy.Spec(bridge)
	if bridge == "" || spec == nil || !spec.RemoveWhenEmpty {
		return nil
	}
	if rec, err := m.State.ReadBridge(bridge); err != nil || rec == nil {
		return err // not ours to remove
	}
	m.Signals.Catch()
	_, err := m.teardownOne(bridge, false, false)
	if errors.Is(err, ErrHasPorts) {
		return nil // not empty yet
	}
	return err
}

// Recover finishes or undoes a bridge plan a killed ifhook left, if any:
// one system call when there is none, so every ifup can afford to ask. The
// caller holds the lock.
func (m *Manager) Recover() error { return m.recover() }

func (m *Manager) recover() error {
	if !m.State.Inflight() {
		return nil
	}
	m.Signals.Catch()
	what, err := m.State.InflightPlan()
	if err != nil {
		return err
	}
	f := strings.Fields(what)
	if len(f) >= 2 && policy.ValidIfName(f[1]) == nil {
		switch f[0] {
		case "setup":
			err = m.undoPending(f[1])
		case "teardown":
			_, err = m.teardownOne(f[1], len(f) > 2 && f[2] == "force", false)
			if err == nil {
				m.Log.Notice("teardown %s: finished a teardown that was interrupted", f[1])
			}
		}
	}
	if err != nil {
		return fmt.Errorf("recovering the interrupted %q: %w", what, err)
	}
	return m.State.ClearInflight()
}

// RecoverAll undoes the pending steps of every bridge record (gc): plans
// that were killed, whatever the inflight note says.
func (m *Manager) RecoverAll() error {
	m.Signals.Catch()
	if err := m.recover(); err != nil {
		return err
	}
	recs, err := m.State.ListBridges()
	for _, r := range recs {
		if len(r.Pending()) > 0 {
			err = exit.Join(err, m.undoPending(r.Bridge))
		}
	}
	return err
}

// recoverJournal keeps the done steps of a record whose pending ones were
// undone.
type recoverJournal struct {
	m   *Manager
	rec *state.BridgeRecord
}

func (j *recoverJournal) Ahead() error { return nil }

func (j *recoverJournal) Commit(*plan.Refs) error {
	r := *j.rec
	r.Steps = nil
	for _, l := range j.rec.Steps {
		if !l.Pending {
			r.Steps = append(r.Steps, l)
		}
	}
	if len(r.Steps) == 0 {
		return j.m.State.RemoveBridge(r.Bridge)
	}
	return j.m.State.WriteBridge(&r)
}

func (j *recoverJournal) Abort(bool) error { return nil }

// undoPending undoes the steps a killed plan left pending in a bridge's
// record, judged against the kernel now: what the plan got to do is
// undone, what it did not is left alone.
func (m *Manager) undoPending(name string) error {
	rec, _, pending, err := m.readRecord(name)
	if err != nil || rec == nil || len(pending) == 0 {
		return err
	}
	obs, err := kernel.Observe(m.Kernel, teardownQuery(name, pending))
	if err != nil {
		return exit.Sys(err, "observe %s", name)
	}
	steps, err := plan.Undoing(pending, obs)
	if err != nil {
		return err
	}
	if err := m.applier().BestEffort("recover "+name, steps, &recoverJournal{m: m, rec: rec}); err != nil {
		return err
	}
	m.Log.Notice("recover %s: undid an interrupted change (%d of its %d steps had to be undone)", name, len(steps), len(pending))
	return nil
}

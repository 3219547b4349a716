// Package bridge makes, completes, repairs and removes the bridges a policy
// describes ([bridges.NAME]): the network models isolated, routed, nat and
// bridged.
//
// Each model is a list of features (link.go: the bridge itself; uplink.go:
// the bridged model's NIC, its addresses and routes; addrs.go: the bridge's
// own addresses; forwarding.go: the forwarding sysctls; nat.go: ifhook's
// NAT rule). A feature says what it needs observed, plans its steps from
// that observation (pure: no kernel call, so every plan has table tests
// without root), and reports its status and doctor's findings. A new
// feature is one file and one line in the features table.
//
// What setup applies is recorded as it is applied (a write-ahead record:
// pending before the first change, done after the last), and teardown
// undoes the record, last step first, judged against what the kernel holds
// then. A plan killed at any point leaves pending steps, which the next
// ifhook undoes before anything else (Recover).
package bridge

import (
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook/dnsmasq"
	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
)

// Log is where the manager reports.
type Log interface {
	plan.Log
	Notice(format string, args ...any)
	Debug(format string, args ...any)
}

// Manager makes and removes the policy's bridges in one kernel, recording
// what it did in a state directory. Its exported methods take the state
// lock themselves; the lower-case ones expect it held.
type Manager struct {
	Policy *policy.Policy
	Kernel kernel.Kernel
	State  *state.Dir
	Log    Log
	// Lock takes the state lock (the Hook's: its timeout and messages).
	Lock func() (*state.Lock, error)
	// NeedAdmin refuses, before anything is read or locked, a change the
	// caller has no right to make (nil: no check).
	NeedAdmin func(what string) error
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Signals says what SIGTERM, SIGINT and SIGHUP do while a change is
	// applied (nil: nothing; see plan.Signals). The manager's plans are
	// many steps: they are stopped between two.
	Signals *plan.Signals
	// DHCP reads what status shows of the bridges' dnsmasqs beyond the
	// kernel's model (sockets, log); nil: status shows less.
	DHCP *dnsmasq.Runner
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) needAdmin(what string) error {
	if m.NeedAdmin == nil {
		return nil
	}
	return m.NeedAdmin(what)
}

func (m *Manager) applier() *plan.Applier {
	return &plan.Applier{Kernel: m.Kernel, Log: m.Log, Stop: m.Signals.Stop}
}

// Plan is what setting up, tearing down or recovering one bridge takes.
type Plan struct {
	Op     string // "setup", "teardown", "recover"
	Bridge string
	Model  policy.Model
	Where  string // "bridges.NAME at FILE:LINE", or "record from TIME"
	Steps  []plan.Step
	Notes  []plan.Note

	// For setup: what the bridge is once the plan is applied.
	Makes bool // the plan creates the bridge
	MTU   int
	STP   bool
	// ForwardDelay is the bridge's STP forward delay, in seconds.
	ForwardDelay int

	record   *state.BridgeRecord // as it was before the plan; nil: none
	handoffs []handoff           // teardown: forwarding duties other bridges take over
	force    bool
}

// Lines returns the steps as the commands they stand for.
func (p *Plan) Lines() []string { return plan.Lines(p.Steps) }

// Text renders the plan for people, as `setup --dry-run` and -v print it.
func (p *Plan) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", p.Op, escape.String(p.Bridge))
	if p.Model != "" {
		fmt.Fprintf(&b, "  model:  %s\n", p.Model)
	}
	if p.Where != "" {
		fmt.Fprintf(&b, "  from:   %s\n", escape.String(p.Where))
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "  note:   %s\n", escape.String(n.Text))
	}
	if len(p.Steps) == 0 {
		b.WriteString("  nothing to do\n")
		return b.String()
	}
	b.WriteString("  steps:\n")
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "    %d. %s\n", i+1, s)
	}
	return b.String()
}

// where names a bridge's table in the policy: "bridges.br0 at FILE:LINE".
func where(pol *policy.Policy, spec *policy.BridgeSpec) string {
	return fmt.Sprintf("bridges.%s at %s:%d", spec.Name, pol.File, spec.Line)
}

// StableMAC is the MAC ifhook gives a bridge it makes: locally
// administered, derived from the name, so guests keep their gateway's ARP
// entry when the bridge is re-made, and fixed, so the bridge never takes
// its ports' MACs as TAPs come and go.
func StableMAC(name string) net.HardwareAddr {
	h := fnv.New64a()
	h.Write([]byte("ifhook bridge " + name))
	sum := h.Sum64()
	return net.HardwareAddr{0x02, byte(sum >> 32), byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)}
}

// decodeSteps reads a record's step lines as steps. A line that does not
// parse makes the whole record untrusted.
func decodeSteps(lines []string) ([]plan.Recorded, error) {
	out := make([]plan.Recorded, 0, len(lines))
	for i, l := range lines {
		s, err := plan.Decode(l)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", i+1, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// readRecord reads a bridge's record and decodes its steps; a record whose
// steps do not decode is moved aside (reported) and read as none.
func (m *Manager) readRecord(name string) (*state.BridgeRecord, []plan.Recorded, []plan.Recorded, error) {
	rec, err := m.State.ReadBridge(name)
	if err != nil || rec == nil {
		return nil, nil, nil, err
	}
	done, err := decodeSteps(rec.Done())
	if err == nil {
		var pending []plan.Recorded
		if pending, err = decodeSteps(rec.Pending()); err == nil {
			return rec, done, pending, nil
		}
	}
	m.State.QuarantineBridge(name, fmt.Errorf("%w: %w", state.ErrCorrupt, err))
	return nil, nil, nil, nil
}

// setupJournal is a setup plan's write-ahead record: before the first
// change, the bridge's record lists the plan's steps as pending; after the
// last, as done.
type setupJournal struct {
	m    *Manager
	p    *Plan
	base state.BridgeRecord
}

func (m *Manager) journal(p *Plan) *setupJournal {
	j := &setupJournal{m: m, p: p}
	if p.record != nil {
		j.base = *p.record
		j.base.Steps = append([]state.StepLine(nil), p.record.Steps...)
	} else {
		j.base = state.BridgeRecord{Bridge: p.Bridge, Model: string(p.Model), Since: m.now().UTC().Truncate(time.Second)}
	}
	j.base.Model = string(p.Model)
	return j
}

func (j *setupJournal) with(pending bool, refs *plan.Refs) *state.BridgeRecord {
	r := j.base
	r.Steps = append([]state.StepLine(nil), j.base.Steps...)
	for _, s := range j.p.Steps {
		line := s.(plan.Recorded).Encode(refs)
		if !pending && slices.ContainsFunc(j.base.Steps, func(l state.StepLine) bool { return !l.Pending && l.Line == line }) {
			// Done before (a dead dnsmasq started again): once is enough
			// for teardown, and the record stays its size.
			continue
		}
		r.Steps = append(r.Steps, state.StepLine{Pending: pending, Line: line})
	}
	return &r
}

func (j *setupJournal) Ahead() error {
	if err := j.m.State.MarkInflight("setup " + j.p.Bridge); err != nil {
		return err
	}
	return j.m.State.WriteBridge(j.with(true, nil))
}

func (j *setupJournal) Commit(refs *plan.Refs) error {
	if len(j.p.Steps) == 0 {
		return nil
	}
	if err := j.m.State.WriteBridge(j.with(false, refs)); err != nil {
		return err
	}
	return j.m.State.ClearInflight()
}

func (j *setupJournal) Abort(undone bool) error {
	if !undone {
		// What could not be undone stays pending, for Recover.
		return nil
	}
	var err error
	if j.p.record == nil {
		err = j.m.State.RemoveBridge(j.p.Bridge)
	} else {
		err = j.m.State.WriteBridge(&j.base)
	}
	return exit.Join(err, j.m.State.ClearInflight())
}

// begin starts a change of bridges (op names it in errors; what, in the
// refusal without CAP_NET_ADMIN): the exclusive lock taken, signals caught
// so they stop the plan between two steps, and what a killed run left
// finished or undone. end lets go of both.
func (m *Manager) begin(op, what string) (end func(), err error) {
	if err := m.needAdmin(what); err != nil {
		return nil, exit.Op(op, "", err)
	}
	lock, err := m.Lock()
	if err != nil {
		return nil, exit.Op(op, "", err)
	}
	m.Signals.Catch()
	end = func() {
		m.Signals.Release()
		lock.Unlock()
	}
	ok := false
	defer func() {
		if !ok { // an error, or a panic, in the recovery
			end()
		}
	}()
	if err := m.recover(); err != nil {
		return nil, exit.Op(op, "", err)
	}
	ok = true
	return end, nil
}

// Setup makes the policy's bridges now (all when names is empty), or
// completes those that exist, all or nothing per bridge. It returns the
// plans it applied.
func (m *Manager) Setup(names ...string) ([]*Plan, error) {
	specs, err := m.specs(names)
	if err != nil {
		return nil, exit.Op("setup", "", err)
	}
	end, err := m.begin("setup", "set up bridges")
	if err != nil {
		return nil, err
	}
	defer end()
	var plans []*Plan
	for _, spec := range specs {
		p, err := m.setupOne(spec)
		if p != nil {
			plans = append(plans, p)
		}
		if err != nil {
			err = exit.Op("setup", spec.Name, err)
			m.Log.Failure(err)
			return plans, err
		}
	}
	return plans, nil
}

func (m *Manager) setupOne(spec *policy.BridgeSpec) (*Plan, error) {
	p, err := m.planSetup(spec, true)
	if err != nil {
		return p, err
	}
	return p, m.applier().All("setup "+spec.Name, p.Steps, m.journal(p))
}

// planSetup observes what spec needs and plans it.
func (m *Manager) planSetup(spec *policy.BridgeSpec, repair bool) (*Plan, error) {
	obs, err := kernel.Observe(m.Kernel, setupQuery(spec))
	if err != nil {
		return &Plan{Op: "setup", Bridge: spec.Name, Model: spec.Model}, observeErr(err, spec, m.Policy)
	}
	rec, _, _, err := m.readRecord(spec.Name)
	if err != nil {
		return &Plan{Op: "setup", Bridge: spec.Name, Model: spec.Model}, err
	}
	return PlanSetup(m.Policy, spec, obs, rec, repair)
}

// ExplainSetup returns the plans Setup would apply, changing nothing.
func (m *Manager) ExplainSetup(names ...string) ([]*Plan, error) {
	specs, err := m.specs(names)
	if err != nil {
		return nil, exit.Op("explain", "", err)
	}
	var plans []*Plan
	for _, spec := range specs {
		p, err := m.planSetup(spec, true)
		plans = append(plans, p)
		if err != nil {
			return plans, exit.Op("explain", spec.Name, err)
		}
	}
	return plans, nil
}

// Ensure plans making the bridge spec describes when it is missing, for an
// ifup that needs it (nil when it exists: ifup joins a bridge as it is;
// setup completes one). The caller holds the lock, applies the steps with
// its own and journals them with Journal.
func (m *Manager) Ensure(spec *policy.BridgeSpec) (*Plan, error) {
	return m.planSetup(spec, false)
}

// Journal returns the write-ahead record of a setup plan from Ensure.
func (m *Manager) Journal(p *Plan) plan.Journal { return m.journal(p) }

// specs returns the policy's bridge specs by name (all when none given).
func (m *Manager) specs(names []string) ([]*policy.BridgeSpec, error) {
	if len(names) == 0 {
		names = m.Policy.BridgeNames()
	}
	var out []*policy.BridgeSpec
	for _, name := range names {
		if err := policy.ValidIfName(name); err != nil {
			return nil, exit.New(exit.Usage, "%s: %v", escape.Quote(name), err)
		}
		spec := m.Policy.Spec(name)
		if spec == nil {
			return nil, exit.New(exit.Usage, "%s has no [bridges.%s] table in %s", name, name, escape.String(m.Policy.File))
		}
		out = append(out, spec)
	}
	return out, nil
}

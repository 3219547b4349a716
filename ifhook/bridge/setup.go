package bridge

import (
	"errors"
	"fmt"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nftable"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
)

// A feature is one part of what a network model makes of a bridge.
type feature interface {
	// query adds to q what the feature needs observed for spec.
	query(spec *policy.BridgeSpec, q *kernel.Query)
	// plan adds the feature's steps to the plan, or says why it cannot be
	// had. It reads only the planner's model.
	plan(p *planner) error
	// status reports on the feature in st, from what m holds.
	status(spec *policy.BridgeSpec, m *kernel.Model, st *Status)
}

// features are applied in this order: the bridge, its uplink (which moves
// the NIC's addresses before the bridge's own are added), forwarding, the
// bridge's own addresses, NAT, and last the DHCP and DNS server, which
// serves the addresses (and teardown stops first). Forwarding goes before
// the addresses: an IPv6 address added just before forwarding is turned
// on can have its subnet-router anycast address joined twice (once as
// forwarding starts, once when the address's deferred notification runs),
// and then left once, so undoing the plan would leave an anycast route.
var features = []feature{linkFeature{}, uplinkFeature{}, forwardingFeature{}, addrsFeature{}, natFeature{}, dhcpFeature{}}

// planner is the state of one setup plan being made.
type planner struct {
	pol  *policy.Policy
	spec *policy.BridgeSpec
	// m is the observation, changed as each planned step would change the
	// kernel: a later feature sees what the earlier ones planned, and a
	// step the kernel would refuse is caught before anything is applied.
	m    *kernel.Model
	br   *kernel.Link // the bridge as observed; nil: missing
	ref  plan.LinkRef // the bridge, for the steps
	refs *plan.Refs   // the links made in m
	p    *Plan
	// repair: setup completes what exists (an ifup takes it as it is).
	repair bool
}

func (pl *planner) where() string { return where(pl.pol, pl.spec) }

// add appends a step to the plan once the model accepts it.
func (pl *planner) add(s plan.Step) error {
	if err := s.Do(pl.m, pl.refs); err != nil {
		return fmt.Errorf("%w (%s)", err, pl.where())
	}
	pl.p.Steps = append(pl.p.Steps, s)
	return nil
}

// bridgeIndex is the bridge's index in the model (made or observed).
func (pl *planner) bridgeIndex() int {
	if pl.br != nil {
		return pl.br.Index
	}
	i, _ := pl.refs.Get(pl.spec.Name)
	return i
}

// setupQuery is what planning spec's setup reads from the kernel.
func setupQuery(spec *policy.BridgeSpec) kernel.Query {
	var q kernel.Query
	for _, f := range features {
		f.query(spec, &q)
	}
	return q
}

// PlanSetup plans making the bridge spec describes, given what the kernel
// holds (m) and the bridge's record (nil: none), or, with repair, completing
// one that exists: its addresses, forwarding, NAT rule, uplink, up state.
// Without repair, an existing bridge is taken as it is (an ifup joins it).
// It is pure: m is not changed.
func PlanSetup(pol *policy.Policy, spec *policy.BridgeSpec, m *kernel.Model, rec *state.BridgeRecord, repair bool) (*Plan, error) {
	p := &Plan{Op: "setup", Bridge: spec.Name, Model: spec.Model, Where: where(pol, spec), record: rec,
		STP: spec.STP, ForwardDelay: spec.ForwardDelay, MTU: spec.MTU}
	m = m.Clone()
	br, err := m.LinkByName(spec.Name)
	if err != nil && !kernel.IsNotFound(err) {
		return p, err
	}
	pl := &planner{pol: pol, spec: spec, m: m, br: br, refs: &plan.Refs{}, p: p, repair: repair}
	if br != nil {
		pl.ref = plan.Ref(br)
		p.MTU, p.STP, p.ForwardDelay = br.MTU, br.STP, br.ForwardDelay/100
		if !repair && br.IsBridge() {
			return p, nil
		}
	} else {
		pl.ref = plan.New(spec.Name)
	}
	for _, f := range features {
		if err := f.plan(pl); err != nil {
			p.Steps = nil
			return p, err
		}
	}
	if br != nil && !hasAddBridge(rec) {
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "%s existed before ifhook set it up: teardown leaves it", spec.Name))
	}
	return p, nil
}

// hasAddBridge reports whether a record says ifhook made its bridge.
func hasAddBridge(rec *state.BridgeRecord) bool {
	if rec == nil {
		return false
	}
	for _, l := range rec.Steps {
		if s, err := plan.Decode(l.Line); err == nil {
			if _, ok := s.(*plan.AddBridge); ok {
				return true
			}
		}
	}
	return false
}

// observeErr classifies a failure to observe what a plan needs.
func observeErr(err error, spec *policy.BridgeSpec, pol *policy.Policy) error {
	if errors.Is(err, nftable.ErrUnavailable) {
		return exit.New(exit.Unavailable, "bridge %s needs NAT, and nftables is unavailable: %w (%s)", spec.Name, err, where(pol, spec))
	}
	return exit.Sys(err, "observe %s", spec.Name)
}

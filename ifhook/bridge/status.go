package bridge

import (
	"fmt"
	"sort"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/policy"
)

// Status is what `ifhook status` reports about one policy bridge.
type Status struct {
	Name         string            `json:"name"`
	Model        string            `json:"model"`
	Exists       bool              `json:"exists"`
	Up           bool              `json:"up"`
	MadeByIfhook bool              `json:"made_by_ifhook"`
	STP          bool              `json:"stp"`
	MTU          int               `json:"mtu,omitempty"`
	Ports        []string          `json:"ports"`
	Addresses    []string          `json:"addresses"`
	Uplink       string            `json:"uplink,omitempty"`
	NAT          string            `json:"nat,omitempty"`        // "present", "missing"; "" when not a nat bridge
	DHCP         *DHCPStatus       `json:"dhcp,omitempty"`       // its DHCP and DNS server, when the policy gives it one
	Forwarding   map[string]string `json:"forwarding,omitempty"` // sysctl -> value, for routed and nat
	Problems     []string          `json:"problems,omitempty"`   // what is wrong with it now
	Missing      []string          `json:"missing,omitempty"`    // what `ifhook setup` would do
	Interrupted  bool              `json:"interrupted"`          // a change to it was killed; the next ifhook undoes it
}

// Status reports on the policy's bridges (all when names is empty). It
// changes nothing.
func (m *Manager) Status(names ...string) ([]Status, error) {
	specs, err := m.specs(names)
	if err != nil {
		return nil, exit.Op("status", "", err)
	}
	var out []Status
	for _, spec := range specs {
		st, err := m.status(spec)
		if err != nil {
			return out, exit.Op("status", spec.Name, err)
		}
		out = append(out, st)
	}
	return out, nil
}

func (m *Manager) status(spec *policy.BridgeSpec) (Status, error) {
	st := Status{Name: spec.Name, Model: string(spec.Model), Ports: []string{}, Addresses: []string{}}
	rec, done, pending, err := m.readRecord(spec.Name)
	if err != nil {
		return st, err
	}
	q := setupQuery(spec)
	if rec != nil {
		st.Interrupted = len(pending) > 0
		for _, s := range done {
			s.Needs(&q)
		}
	}
	obs, err := kernel.Observe(m.Kernel, q)
	if err != nil {
		if exit.KindOf(observeErr(err, spec, m.Policy)) == exit.Unavailable {
			st.NAT = "unavailable: " + err.Error()
			st.Problems = append(st.Problems, err.Error())
			return st, nil
		}
		return st, observeErr(err, spec, m.Policy)
	}
	for _, f := range features {
		f.status(spec, obs, &st)
	}
	if st.DHCP != nil && m.DHCP != nil {
		if ds, err := m.DHCP.Status(spec.Name); err == nil {
			st.DHCP.Listening = ds.Listening
			if !ds.Running {
				st.DHCP.Log = ds.Log
			}
		}
	}
	sort.Strings(st.Ports)
	if rec != nil && st.Exists {
		st.MadeByIfhook = madeBy(done, obs, spec.Name)
	}
	// What setup would do is the plan for the bridge as it is.
	if p, err := PlanSetup(m.Policy, spec, obs, rec, true); err == nil {
		st.Missing = p.Lines()
	} else {
		st.Missing = append(st.Missing, fmt.Sprintf("cannot be set up: %v", err))
	}
	if st.Interrupted {
		st.Problems = append(st.Problems, "a change to it was interrupted; the next ifhook run undoes it")
	}
	return st, nil
}

// CheckBridges checks the policy's bridges against the host: what would
// make setting one up fail (a missing or enslaved uplink, an address some
// other link holds, no nftables for NAT). It changes nothing; `ifhook
// check` reports these beside the policy's own problems.
func (m *Manager) CheckBridges() []error {
	var errs []error
	for _, name := range m.Policy.BridgeNames() {
		spec := m.Policy.Spec(name)
		if _, err := m.planSetup(spec, true); err != nil {
			errs = append(errs, fmt.Errorf("bridges.%s: %w", spec.Name, err))
		}
	}
	return errs
}

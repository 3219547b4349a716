package bridge

import (
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nftable"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
)

// natFeature is a nat bridge's source NAT: one rule per IPv4 subnet in
// ifhook's own nftables table.
type natFeature struct{}

func natRules(spec *policy.BridgeSpec) []nftable.NAT {
	var out []nftable.NAT
	for _, subnet := range spec.NATSubnets() {
		out = append(out, nftable.NAT{Bridge: spec.Name, Subnet: subnet, OutIf: spec.Uplink, SNATTo: spec.SNATTo})
	}
	return out
}

func (natFeature) query(spec *policy.BridgeSpec, q *kernel.Query) {
	if spec.Model == policy.NAT {
		q.NAT = true
	}
}

func hasRule(m *kernel.Model, r nftable.NAT) (bool, error) {
	rules, err := m.NATRules(r.Bridge)
	for _, x := range rules {
		if x.Comment() == r.Comment() {
			return true, nil
		}
	}
	return false, err
}

func (natFeature) plan(pl *planner) error {
	for _, r := range natRules(pl.spec) {
		has, err := hasRule(pl.m, r)
		if err != nil {
			return err
		}
		if has {
			continue
		}
		table, err := pl.m.HasNATTable()
		if err != nil {
			return err
		}
		if err := pl.add(&plan.AddNAT{Rule: r, MakesTable: !table}); err != nil {
			return err
		}
	}
	return nil
}

func (natFeature) status(spec *policy.BridgeSpec, m *kernel.Model, st *Status) {
	rules := natRules(spec)
	if len(rules) == 0 {
		return
	}
	st.NAT = "present"
	for _, r := range rules {
		if has, err := hasRule(m, r); err != nil {
			st.NAT = "unavailable: " + err.Error()
		} else if !has {
			st.NAT = "missing"
			st.Problems = append(st.Problems, "the NAT rule for "+r.Subnet.String()+" is missing: guests cannot reach past the host")
		}
	}
}

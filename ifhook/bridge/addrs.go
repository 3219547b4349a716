package bridge

import (
	"fmt"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"golang.org/x/sys/unix"
)

// addrsFeature is the bridge's own addresses (routed, nat): the guests'
// gateway. An address some other link holds is refused: taking it would
// cut that link's traffic.
type addrsFeature struct{}

func (addrsFeature) query(spec *policy.BridgeSpec, q *kernel.Query) {
	if len(spec.Addresses) > 0 {
		q.AllAddrs = true
	}
}

func (addrsFeature) plan(pl *planner) error {
	spec := pl.spec
	if len(spec.Addresses) == 0 {
		return nil
	}
	all, err := pl.m.Addrs(0)
	if err != nil {
		return err
	}
	br := pl.bridgeIndex()
	for _, want := range spec.Addresses {
		mine := false
		for _, a := range all {
			if a.Prefix.Addr() != want.Addr() {
				continue
			}
			if a.Index == br {
				mine = true
				continue
			}
			other := fmt.Sprintf("index %d", a.Index)
			if l, err := pl.m.LinkByIndex(a.Index); err == nil {
				other = l.Name
			}
			return exit.New(exit.Unavailable, "address %s of bridge %s is already on %s (%s)", want, spec.Name, other, pl.where())
		}
		if mine {
			continue
		}
		a := kernel.Addr{Prefix: want}
		if want.Addr().Is6() {
			// The guests' gateway: usable now, not after duplicate
			// address detection.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := pl.add(&plan.AddAddr{Link: pl.ref, Addr: a}); err != nil {
			return err
		}
	}
	return nil
}

func (addrsFeature) status(spec *policy.BridgeSpec, m *kernel.Model, st *Status) {
	if !st.Exists {
		return
	}
	br, _ := m.LinkByName(spec.Name)
	for _, want := range spec.Addresses {
		if has, _ := hasPrefix(m, br.Index, want.String()); !has {
			st.Problems = append(st.Problems, "address "+want.String()+" is missing")
		}
	}
}

func hasPrefix(m *kernel.Model, index int, prefix string) (bool, error) {
	addrs, err := m.Addrs(index)
	for _, a := range addrs {
		if a.Prefix.String() == prefix {
			return true, nil
		}
	}
	return false, err
}

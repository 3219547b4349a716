package bridge

import (
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
)

// linkFeature is the bridge itself: made down with its STP settings, MTU and
// MAC in one message, then set up.
type linkFeature struct{}

func (linkFeature) query(spec *policy.BridgeSpec, q *kernel.Query) {
	q.Links = append(q.Links, spec.Name)
	q.Addrs = append(q.Addrs, spec.Name)
	q.Routes = append(q.Routes, spec.Name)
	q.Ports = append(q.Ports, spec.Name)
}

func (linkFeature) plan(pl *planner) error {
	spec := pl.spec
	if br := pl.br; br != nil {
		if !br.IsBridge() {
			return exit.New(exit.Unavailable, "%s is %s, not a bridge (%s)", spec.Name, br.Describe(), pl.where())
		}
		if !br.Up {
			return pl.add(&plan.SetLink{Link: pl.ref, To: plan.Attrs{Up: plan.Flag(true)}, From: plan.Attrs{Up: plan.Flag(false)}})
		}
		return nil
	}
	opts := kernel.BridgeOptions{STP: spec.STP, ForwardDelay: spec.ForwardDelay, MTU: spec.MTU, MAC: StableMAC(spec.Name)}
	if spec.Model == policy.Bridged {
		// The bridge takes the uplink's place on the LAN: the same MAC (DHCP
		// leases and neighbours' ARP caches stay valid), the same MTU.
		if up, err := pl.m.LinkByName(spec.Uplink); err == nil {
			opts.MAC = up.MAC
			if opts.MTU == 0 {
				opts.MTU = up.MTU
			}
		}
	}
	if opts.MTU == 0 {
		opts.MTU = 1500
	}
	pl.p.Makes, pl.p.MTU = true, opts.MTU
	if err := pl.add(&plan.AddBridge{Name: spec.Name, Opts: opts}); err != nil {
		return err
	}
	return pl.add(&plan.SetLink{Link: pl.ref, To: plan.Attrs{Up: plan.Flag(true)}, From: plan.Attrs{Up: plan.Flag(false)}})
}

func (linkFeature) status(spec *policy.BridgeSpec, m *kernel.Model, st *Status) {
	br, err := m.LinkByName(spec.Name)
	if err != nil {
		return
	}
	st.Exists, st.Up, st.STP, st.MTU = true, br.Up, br.STP, br.MTU
	if !br.IsBridge() {
		st.Problems = append(st.Problems, spec.Name+" is "+br.Describe()+", not a bridge")
		return
	}
	ports, _ := m.Ports(br.Index)
	for _, p := range ports {
		st.Ports = append(st.Ports, p.Name)
	}
	addrs, _ := m.Addrs(br.Index)
	for _, a := range addrs {
		st.Addresses = append(st.Addresses, a.Prefix.String())
	}
}

package bridge

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"golang.org/x/sys/unix"
)

// uplinkFeature is the bridged model's NIC: enslaved to the bridge, its
// addresses and routes moved to the bridge, which takes its place on the
// LAN. Its routes leave first and arrive last (a route needs its gateway
// reachable), and the NIC is enslaved between, so teardown, which undoes
// in reverse, frees the NIC before its addresses come back.
type uplinkFeature struct{}

func (uplinkFeature) query(spec *policy.BridgeSpec, q *kernel.Query) {
	if spec.Uplink == "" {
		return
	}
	q.Links = append(q.Links, spec.Uplink)
	q.Addrs = append(q.Addrs, spec.Uplink)
	q.Routes = append(q.Routes, spec.Uplink)
	q.Wireless = append(q.Wireless, spec.Uplink)
}

// movedRoute reports whether a route of the uplink moves to the bridge:
// routes the kernel makes for an address come back with it, and router
// advertisements make their own again.
func movedRoute(r kernel.Route) bool {
	return r.Protocol != unix.RTPROT_KERNEL && r.Protocol != unix.RTPROT_RA && r.Table != unix.RT_TABLE_LOCAL
}

// onBridge is an uplink's address as the bridge carries it: with the
// bridge's name in its label, and IPv6 usable at once (the address is the
// host's, already checked for duplicates on this LAN).
func onBridge(a kernel.Addr, uplink, bridge string) kernel.Addr {
	if a.Label != "" {
		a.Label = bridge + strings.TrimPrefix(a.Label, uplink)
		if len(a.Label) > 15 {
			a.Label = bridge
		}
	}
	if a.Prefix.Addr().Is6() {
		a.Flags |= unix.IFA_F_NODAD
	}
	return a
}

func (uplinkFeature) plan(pl *planner) error {
	spec := pl.spec
	if spec.Model != policy.Bridged {
		return nil
	}
	up, err := pl.m.LinkByName(spec.Uplink)
	if kernel.IsNotFound(err) {
		return exit.New(exit.Unavailable, "uplink %s of bridge %s does not exist (%s)", spec.Uplink, spec.Name, pl.where())
	}
	if err != nil {
		return err
	}
	if up.IsBridge() {
		return exit.New(exit.Policy, "uplink %s of bridge %s is itself a bridge (%s)", spec.Uplink, spec.Name, pl.where())
	}
	br := pl.bridgeIndex()
	if up.Master == br {
		return nil // already moved
	}
	if up.Master != 0 {
		other := fmt.Sprintf("index %d", up.Master)
		if m, err := pl.m.LinkByIndex(up.Master); err == nil {
			other = m.Name
		}
		return exit.New(exit.Unavailable, "uplink %s of bridge %s is already a port of %s (%s)", spec.Uplink, spec.Name, other, pl.where())
	}
	addrs, err := pl.m.Addrs(up.Index)
	if err != nil {
		return err
	}
	routes, err := pl.m.Routes(up.Index)
	if err != nil {
		return err
	}
	var moved []kernel.Route
	for _, r := range routes {
		if movedRoute(r) {
			moved = append(moved, r)
		}
	}
	// Direct routes before routes via a gateway, which may need them.
	sort.SliceStable(moved, func(i, j int) bool { return !moved[i].Gw.IsValid() && moved[j].Gw.IsValid() })
	upRef := plan.Ref(up)
	for i := len(moved) - 1; i >= 0; i-- {
		if err := pl.add(&plan.DelRoute{Link: upRef, Route: moved[i]}); err != nil {
			return err
		}
	}
	for _, a := range addrs {
		if err := pl.add(&plan.DelAddr{Link: upRef, Addr: a}); err != nil {
			return err
		}
	}
	to := plan.Attrs{Master: &pl.ref}
	from := plan.Attrs{Master: &plan.LinkRef{}}
	if !up.Up {
		to.Up, from.Up = plan.Flag(true), plan.Flag(false)
	}
	if err := pl.add(&plan.SetLink{Link: upRef, To: to, From: from}); err != nil {
		return err
	}
	for _, a := range addrs {
		if err := pl.add(&plan.AddAddr{Link: pl.ref, Addr: onBridge(a, up.Name, spec.Name)}); err != nil {
			return err
		}
	}
	for _, r := range moved {
		if err := pl.add(&plan.AddRoute{Link: pl.ref, Route: r}); err != nil {
			return err
		}
	}
	return nil
}

func (uplinkFeature) status(spec *policy.BridgeSpec, m *kernel.Model, st *Status) {
	if spec.Uplink == "" {
		return
	}
	st.Uplink = spec.Uplink
	if spec.Model != policy.Bridged {
		return
	}
	up, err := m.LinkByName(spec.Uplink)
	switch {
	case err != nil:
		st.Problems = append(st.Problems, "uplink "+spec.Uplink+" does not exist")
	case st.Exists && !isPortOf(m, up, spec.Name):
		st.Problems = append(st.Problems, "uplink "+spec.Uplink+" is not a port of "+spec.Name)
	}
}

func isPortOf(m *kernel.Model, l *kernel.Link, bridge string) bool {
	if l.Master == 0 {
		return false
	}
	br, err := m.LinkByIndex(l.Master)
	return err == nil && br.Name == bridge
}

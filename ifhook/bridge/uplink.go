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
	if spec.Model == policy.Bridged {
		q.Managers = append(q.Managers, spec.Uplink)
	}
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
	if err := pl.checkUnmanaged(up, addrs); err != nil {
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

// checkUnmanaged refuses an uplink something else configures: a DHCP
// client renews its lease on the NIC, which as a bridge port can no longer
// use it (the address sits on a port, ARP for it is never answered), and a
// network manager puts back what it configured; either way the host loses
// the LAN. What to do instead depends on who it is, and the refusal says
// exactly that, on one line: the bridge made by that manager (which ifhook
// then joins as any other bridge), or a nat bridge.
func (pl *planner) checkUnmanaged(up *kernel.Link, addrs []kernel.Addr) error {
	ms, err := pl.m.Managers(up)
	if err != nil {
		return err
	}
	var dynamic []string
	for _, a := range addrs {
		if a.Dynamic {
			dynamic = append(dynamic, a.Prefix.String())
		}
	}
	if len(ms) == 0 && len(dynamic) == 0 {
		return nil
	}
	spec := pl.spec
	var why []string
	for _, m := range ms {
		why = append(why, "is configured by "+m.String())
	}
	if len(dynamic) > 0 {
		why = append(why, "has the dynamic address "+strings.Join(dynamic, ", ")+" (a DHCP lease or SLAAC, renewed where it is)")
	}
	return exit.New(exit.Unavailable, "uplink %s of bridge %s %s: as a port of %s it could not renew or use it, and the host would lose the LAN, so nothing was changed; instead, %s; or use model = \"nat\" with uplink = %q (%s)",
		up.Name, spec.Name, strings.Join(why, " and "), spec.Name, instead(ms, up.Name, spec.Name), up.Name, pl.where())
}

// instead says how to bridge a managed uplink the way its manager wants.
func instead(ms []kernel.Manager, uplink, bridge string) string {
	join := fmt.Sprintf("then drop [bridges.%s] from the policy and set bridge = %q, and ifhook joins it", bridge, bridge)
	for _, m := range ms {
		switch m.Name {
		case "NetworkManager":
			return fmt.Sprintf("let NetworkManager make the bridge: nmcli connection add type bridge ifname %[2]s con-name %[2]s bridge.stp no; nmcli connection add type bridge-slave ifname %[1]s master %[2]s; nmcli connection up %[2]s; %[3]s", uplink, bridge, join)
		case "systemd-networkd":
			return fmt.Sprintf("let systemd-networkd make the bridge: /etc/systemd/network/%[2]s.netdev with [NetDev] Name=%[2]s Kind=bridge, %[2]s.network with [Match] Name=%[2]s [Network] DHCP=yes, and in %[1]s's .network [Network] Bridge=%[2]s instead of DHCP=; networkctl reload; %[3]s", uplink, bridge, join)
		case "ifupdown":
			return fmt.Sprintf("let ifupdown make the bridge: in /etc/network/interfaces, iface %[1]s inet manual, and auto %[2]s / iface %[2]s inet dhcp / bridge_ports %[1]s (package bridge-utils); ifdown %[1]s; ifup %[2]s; %[3]s", uplink, bridge, join)
		}
	}
	for _, m := range ms {
		return fmt.Sprintf("stop %[3]s on %[1]s and release its lease (dhclient -r %[1]s, kill -USR2 then kill %[4]d for udhcpc), run ifhook setup %[2]s, then run the client on %[2]s (dhclient %[2]s, udhcpc -i %[2]s)", uplink, bridge, m.Name, m.PID)
	}
	return fmt.Sprintf("give %[1]s a static address (or let whatever configures it make %[2]s itself and join that)", uplink, bridge)
}

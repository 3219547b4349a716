package guest

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ifhook/ifhook/ifhook/nstest"
)

// The guest's DHCP, SLAAC and name lookups, proved against a real dnsmasq
// on br0 in the test's namespace. One boot checks as much as it can: each
// costs seconds under TCG.

var (
	bridge4   = netip.MustParseAddr("192.168.77.1")
	subnet4   = netip.MustParsePrefix("192.168.77.0/24")
	dhcpRange = "--dhcp-range=192.168.77.100,192.168.77.150,1h"
	bridge6   = netip.MustParseAddr("fd00:42::1")
	subnet6   = netip.MustParsePrefix("fd00:42::/64")
	// SLAAC only: a prefix for every address on br0, nothing stateful.
	raOnly = []string{"--enable-ra", "--dhcp-range=::,constructor:br0,ra-only"}
)

// dhcpNS makes a namespace with br0 (up, MTU mtu) at 192.168.77.1/24 and
// fd00:42::1/64. Its link-local address keeps duplicate address detection,
// as a real bridge's does: the guest must cope with a first router
// solicitation that goes unanswered.
func dhcpNS(t *testing.T, mtu int) *nstest.NS {
	t.Helper()
	ns := nstest.New(t)
	br := ns.AddBridge(t, "br0")
	if err := ns.Handle.LinkSetMTU(br, mtu); err != nil {
		t.Fatal(err)
	}
	ns.AddAddrs(t, "br0", "192.168.77.1/24", "fd00:42::1/64")
	return ns
}

// TestDHCPSLAACResolve: one guest gets a lease (address in the range,
// router, DNS server, domain, MTU option 26), a SLAAC address with the RA's
// MTU and default router, resolves a name the server has, the name it sent
// as its host name, and not one nobody has, then pings the bridge over both.
func TestDHCPSLAACResolve(t *testing.T) {
	t.Parallel()
	img := Build(t)
	ns := dhcpNS(t, 1400)
	d := startDnsmasq(t, ns, "br0", append([]string{
		// --no-ping: dnsmasq would otherwise hold the offer back 3 s
		// to ping the address first (TestDHCPNoRouter keeps that).
		dhcpRange, "--no-ping", "--dhcp-option=option:mtu,1400",
		"--domain=vm", "--local=/vm/", "--host-record=first.vm,192.168.77.10",
		// An RA MTU below the DHCP one: the guest must keep the RA's,
		// which arrives after the DHCP MTU has been set.
		"--ra-param=br0,mtu:1280,60",
	}, raOnly...)...)

	start := time.Now()
	g := img.Start(t, ns, Options{
		Name:         "first",
		TAP:          "gtap0",
		Script:       bridgeScript(t),
		DHCP:         true,
		DHCPHostname: "tester",
		SLAAC:        true,
		Resolve:      []string{"first.vm", "tester.vm", "nope.vm"},
		ResolveWait:  3 * time.Second, // all of it spent on nope.vm
		Ping:         []string{bridge4.String(), bridge6.String()},
	})
	res, err := g.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s guest: ready after %v, done after %v (test %v): lease %+v, slaac %+v, lookups %+v, pings %+v",
		g.Accel, res.Ready, res.Done, time.Since(start).Round(time.Millisecond), res.DHCP, res.SLAAC, res.Lookups, res.Pings)

	l := res.DHCP
	if !l.OK {
		t.Fatalf("no DHCP lease")
	}
	if lo, hi := netip.MustParseAddr("192.168.77.100"), netip.MustParseAddr("192.168.77.150"); l.IP.Bits() != 24 || l.IP.Addr().Less(lo) || hi.Less(l.IP.Addr()) {
		t.Errorf("lease %v: want an address of 192.168.77.100-150 /24", l.IP)
	}
	if l.Router != bridge4 || res.Via4 != bridge4 {
		t.Errorf("router %v, default route via %v: want %v, from the lease", l.Router, res.Via4, bridge4)
	}
	if !slices.Equal(l.DNS, []netip.Addr{bridge4}) || l.Server != bridge4 {
		t.Errorf("DNS %v, server %v: want %v", l.DNS, l.Server, bridge4)
	}
	if l.MTU != 1400 || l.Lease != time.Hour || l.Domain != "vm" {
		t.Errorf("MTU %d, lease %v, domain %q: want 1400, 1h, vm", l.MTU, l.Lease, l.Domain)
	}
	if f := d.lease(t, g.MAC); f == nil || f[2] != l.IP.Addr().String() || f[3] != "tester" {
		t.Errorf("dnsmasq's lease for %s is %q: want %v with host name tester", g.MAC, f, l.IP.Addr())
	}

	a := res.SLAAC
	if !a.OK || a.IP.Bits() != 64 || !subnet6.Contains(a.IP.Addr()) {
		t.Errorf("SLAAC address %v (ok %v): want one in %v", a.IP, a.OK, subnet6)
	}
	if !a.Router.IsLinkLocalUnicast() || res.Via6 != a.Router {
		t.Errorf("SLAAC router %v, default route via %v: want the bridge's link-local address", a.Router, res.Via6)
	}
	if a.MTU != 1280 {
		t.Errorf("IPv6 MTU %d: want the RA's 1280", a.MTU)
	}

	for name, want := range map[string][]netip.Addr{
		"first.vm":  {netip.MustParseAddr("192.168.77.10")},
		"tester.vm": {l.IP.Addr()},
	} {
		if got := res.Resolved(name); !slices.Equal(got, want) {
			t.Errorf("%s resolved to %v: want %v", name, got, want)
		}
	}
	if n := res.Lookups[2]; n.OK || n.Err != "NXDOMAIN" {
		t.Errorf("nope.vm: %+v: want NXDOMAIN", n)
	}
	for _, p := range res.Pings {
		if !p.OK {
			t.Errorf("guest could not ping the bridge at %s", p.Target)
		}
	}
}

// TestDHCPNoRouter: an isolated bridge's server, with an empty router
// option and a router lifetime of 0, gives addresses but no default route,
// of either family; the RA's MTU still comes through. The bridge answers
// on its own subnet, and the name server given explicitly.
func TestDHCPNoRouter(t *testing.T) {
	t.Parallel()
	img := Build(t)
	ns := dhcpNS(t, 1500)
	d := startDnsmasq(t, ns, "br0", append([]string{
		dhcpRange, "--dhcp-option=3", "--local=/vm/", "--host-record=first.vm,192.168.77.10",
		"--ra-param=br0,mtu:1400,60,0",
	}, raOnly...)...)

	g := img.Start(t, ns, Options{
		TAP:       "gtap0",
		Script:    bridgeScript(t),
		DHCP:      true,
		SLAAC:     true,
		Resolve:   []string{"first.vm"},
		DNSServer: bridge4.String(),
		Ping:      []string{bridge4.String(), bridge6.String()},
	})
	res, err := g.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s guest: ready after %v, done after %v: lease %+v, slaac %+v, lookups %+v, pings %+v",
		g.Accel, res.Ready, res.Done, res.DHCP, res.SLAAC, res.Lookups, res.Pings)

	if l := res.DHCP; !l.OK || !subnet4.Contains(l.IP.Addr()) || l.Router.IsValid() || l.MTU != 0 {
		t.Errorf("lease %+v: want an address in %v, no router, no MTU", l, subnet4)
	}
	if a := res.SLAAC; !a.OK || !subnet6.Contains(a.IP.Addr()) || a.Router.IsValid() || a.MTU != 1400 {
		t.Errorf("SLAAC %+v: want an address in %v, no router, the RA's MTU 1400", a, subnet6)
	}
	if res.Via4.IsValid() || res.Via6.IsValid() {
		t.Errorf("default routes via %v and %v: want none", res.Via4, res.Via6)
	}
	// The host name is the server's to give: the guest sends none.
	if f := d.lease(t, g.MAC); f == nil || f[3] != "*" {
		t.Errorf("dnsmasq's lease for %s is %q: want one without a host name", g.MAC, f)
	}
	if got := res.Resolved("first.vm"); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.168.77.10")}) {
		t.Errorf("first.vm resolved to %v", got)
	}
	for _, p := range res.Pings {
		if !p.OK {
			t.Errorf("guest could not ping the bridge at %s", p.Target)
		}
	}
}

// TestDHCPNobody: with no server at all, DHCP, SLAAC and a lookup each
// report failure once their wait is over, rather than hang; nothing gives
// the guest an address or a route.
func TestDHCPNobody(t *testing.T) {
	t.Parallel()
	img := Build(t)
	ns := dhcpNS(t, 1500)
	g := img.Start(t, ns, Options{
		TAP:         "gtap0",
		Script:      bridgeScript(t),
		DHCP:        true,
		SLAAC:       true,
		NetWait:     3 * time.Second,
		Resolve:     []string{"first.vm"},
		DNSServer:   bridge4.String(),
		ResolveWait: 2 * time.Second,
	})
	res, err := g.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s guest: ready after %v, done after %v: lease %+v, slaac %+v, lookups %+v",
		g.Accel, res.Ready, res.Done, res.DHCP, res.SLAAC, res.Lookups)
	if res.DHCP.OK || res.SLAAC.OK || res.Via4.IsValid() || res.Via6.IsValid() {
		t.Errorf("lease %+v, SLAAC %+v, routes via %v and %v: want nothing", res.DHCP, res.SLAAC, res.Via4, res.Via6)
	}
	if l := res.Lookups[0]; l.OK || l.Err == "" {
		t.Errorf("lookup %+v: want a failure with a reason", l)
	}
}

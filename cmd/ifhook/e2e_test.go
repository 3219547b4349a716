package main

// End-to-end proof of the four network models (issue 3): real QEMU guests
// whose TAPs QEMU hands to the binDir symlinks (script=/downscript=), so
// every bridge, address, forwarding sysctl and NAT rule below is made by
// the ifhook binary from the policy alone, at the first ifup that needs it,
// and removed by `ifhook teardown`. The host, the LAN and the outside peers
// are namespaces made by the test, joined by veth pairs; nothing reaches
// the machine's own network.
//
// Each scenario ends with its own teardown check: stop the guests (QEMU
// runs qemu-ifdown), run `ifhook teardown --all` in the host namespace, and
// compare the namespace (links, addresses, routes, forwarding sysctls,
// nftables) with a snapshot taken before the first guest started.
//
// The guests boot under KVM when it works and TCG otherwise
// (IFHOOK_GUEST_ACCEL=tcg skips the probe); -short skips them.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/ifhook/ifhook/ifhook/nstest/guest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// e2eImage returns the guest image, skipping under -short (every guest
// costs seconds of boot) and without root.
func e2eImage(t *testing.T) *guest.Image {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU guests; skipped with -short")
	}
	nstest.RequireRoot(t)
	return guest.Build(t)
}

// startGuest boots a guest in the test's (host) namespace whose TAP QEMU
// gives to our qemu-ifup and qemu-ifdown, with the test's policy and state
// directory in QEMU's environment, which QEMU passes to both scripts.
func (e *testEnv) startGuest(img *guest.Image, o guest.Options) *guest.Guest {
	e.t.Helper()
	o.Script = filepath.Join(binDir, "qemu-ifup")
	o.DownScript = filepath.Join(binDir, "qemu-ifdown")
	o.Env = append(o.Env, e.environ()...)
	return img.Start(e.t, e.ns, o)
}

// peerNS makes a namespace joined to host by a veth pair: hostIf stays in
// host, peerIf moves into the new namespace; both get their addresses and
// are set up.
func peerNS(t *testing.T, host *nstest.NS, hostIf string, hostAddrs []string, peerIf string, peerAddrs []string) *nstest.NS {
	t.Helper()
	p := nstest.New(t)
	host.AddVeth(t, hostIf, peerIf)
	if err := host.Handle.LinkSetNsFd(host.Link(t, peerIf), p.FD()); err != nil {
		t.Fatalf("move %s into the peer namespace: %v", peerIf, err)
	}
	linkUpWith(t, host, hostIf, hostAddrs...)
	linkUpWith(t, p, peerIf, peerAddrs...)
	return p
}

// linkUpWith gives a link addresses and sets it up.
func linkUpWith(t *testing.T, ns *nstest.NS, name string, addrs ...string) {
	t.Helper()
	ns.AddAddrs(t, name, addrs...)
	ns.SetUp(t, name)
}

// addRoute adds a route to dst ("default" or a CIDR) via gw.
func addRoute(t *testing.T, ns *nstest.NS, dst, gw string) {
	t.Helper()
	r := &netlink.Route{Gw: net.ParseIP(gw)}
	if dst != "default" {
		_, n, err := net.ParseCIDR(dst)
		if err != nil {
			t.Fatal(err)
		}
		r.Dst = n
	}
	if err := ns.Handle.RouteAdd(r); err != nil {
		t.Fatalf("ip route add %s via %s: %v", dst, gw, err)
	}
}

// echoWatch records the source addresses of the ICMP echo requests that
// reach one address of a namespace: a raw socket sees a copy of each, so
// it shows what source a peer actually gets, translated or not, whether
// or not the peer can answer.
type echoWatch struct {
	mu   sync.Mutex
	srcs map[string]int
}

func watchEchoes(t *testing.T, ns *nstest.NS, addr string) *echoWatch {
	t.Helper()
	var conn net.PacketConn
	err := ns.Do(func() error {
		// Made on a thread inside ns, the socket belongs to ns for good.
		var err error
		conn, err = net.ListenPacket("ip4:icmp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("raw ICMP socket on %s: %v", addr, err)
	}
	w := &echoWatch{srcs: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			// An ip4:icmp socket hands over the ICMP message without
			// the IPv4 header, and the header's source as from.
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if n > 0 && buf[0] == 8 { // echo request
				w.mu.Lock()
				w.srcs[from.String()]++
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return w
}

// sources returns the distinct sources seen so far, sorted.
func (w *echoWatch) sources() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.srcs))
	for s := range w.srcs {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// hostPing pings addr from inside ns with busybox (which the guests need
// anyway), trying a few times: true once a reply came.
func hostPing(t *testing.T, ns *nstest.NS, addr string) (bool, string) {
	t.Helper()
	var out strings.Builder
	for range 3 {
		cmd := exec.Command("/bin/busybox", "ping", "-c", "1", "-W", "2", addr)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := ns.Run(cmd)
		if err == nil {
			return true, out.String()
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run busybox ping: %v", err)
		}
	}
	return false, out.String()
}

// nftIfhook lists the rules of ifhook's own nftables table ("ifhook", any
// family) in ns, by comment: whether the table exists, and its rules.
func nftIfhook(t *testing.T, ns *nstest.NS) (bool, []string) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(ns.FD()))
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatalf("nftables: list tables: %v", err)
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatalf("nftables: list chains: %v", err)
	}
	exists := false
	var rules []string
	for _, tb := range tables {
		if tb.Name != "ifhook" {
			continue
		}
		exists = true
		for _, ch := range chains {
			if ch.Table.Name != tb.Name || ch.Table.Family != tb.Family {
				continue
			}
			rs, err := c.GetRules(tb, ch)
			if err != nil {
				t.Fatalf("nftables: rules of %s: %v", ch.Name, err)
			}
			for _, r := range rs {
				comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
				rules = append(rules, fmt.Sprintf("%s %q", ch.Name, comment))
			}
		}
	}
	return exists, rules
}

// netState describes everything in ns that ifhook could change: links
// (kind, master, up, MTU, MAC), global addresses, the main routing table,
// the forwarding sysctls and every nftables table with its rules. Sorted
// lines, so two snapshots compare with cmp.Diff.
func netState(t *testing.T, ns *nstest.NS) []string {
	t.Helper()
	links, err := ns.Handle.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	name := map[int]string{}
	for _, l := range links {
		name[l.Attrs().Index] = l.Attrs().Name
	}
	var out []string
	for _, l := range links {
		a := l.Attrs()
		out = append(out, fmt.Sprintf("link %s type=%s master=%s up=%v mtu=%d mac=%s",
			a.Name, l.Type(), name[a.MasterIndex], a.Flags&net.FlagUp != 0, a.MTU, a.HardwareAddr))
	}
	addrs, err := ns.Handle.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.Scope == unix.RT_SCOPE_UNIVERSE {
			out = append(out, fmt.Sprintf("addr %s dev %s", a.IPNet, name[a.LinkIndex]))
		}
	}
	routes, err := ns.Handle.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		dst := "default"
		if r.Dst != nil {
			dst = r.Dst.String()
		}
		if dst == "fe80::/64" && r.Protocol == unix.RTPROT_KERNEL {
			// The kernel's route for a link's IPv6 link-local address,
			// which comes and goes with it, when the kernel sees fit
			// (it appears a moment after a link goes up).
			continue
		}
		s := fmt.Sprintf("route %s dev %s proto %d scope %d metric %d", dst, name[r.LinkIndex], r.Protocol, r.Scope, r.Priority)
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		if r.Src != nil {
			s += " src " + r.Src.String()
		}
		out = append(out, s)
	}
	for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		out = append(out, "sysctl "+k+"="+ns.Sysctl(t, k))
	}
	c, err := nftables.New(nftables.WithNetNSFd(ns.FD()))
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatalf("nftables: %v", err)
	}
	for _, tb := range tables {
		out = append(out, fmt.Sprintf("nft table %d %s", tb.Family, tb.Name))
		for _, ch := range chains {
			if ch.Table.Name == tb.Name && ch.Table.Family == tb.Family {
				rs, _ := c.GetRules(tb, ch)
				out = append(out, fmt.Sprintf("nft chain %d %s %s: %d rules", tb.Family, tb.Name, ch.Name, len(rs)))
			}
		}
	}
	sort.Strings(out)
	return out
}

// defaultRoute describes the IPv4 default route, "via GW dev DEV" ("" when
// there is none).
func defaultRoute(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	routes, err := ns.Handle.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			dev := fmt.Sprintf("index %d", r.LinkIndex)
			if l, err := ns.Handle.LinkByIndex(r.LinkIndex); err == nil {
				dev = l.Attrs().Name
			}
			return fmt.Sprintf("via %s dev %s", r.Gw, dev)
		}
	}
	return ""
}

// bridgeRecorded reports whether the state directory has a record of a
// bridge ifhook made.
func (e *testEnv) bridgeRecorded(name string) bool {
	_, err := os.Stat(filepath.Join(e.state, "bridges", name))
	return err == nil
}

// dirEntries lists a directory of the state dir (none when it is absent).
func (e *testEnv) dirEntries(sub string) []string {
	e.t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.state, sub))
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	return out
}

// wantAttached checks a guest's TAP is a port of bridge, set up by ifup.
func (e *testEnv) wantAttached(tap, bridge string) {
	e.t.Helper()
	if got := e.link(tap); got.master != bridge || !got.up || !strings.HasPrefix(got.mac, "fe:54:00:") {
		e.t.Errorf("TAP %s while its guest runs: %+v, want a port of %s, up, with ifhook's fe:54:00 MAC", tap, got, bridge)
	}
}

// stopAndTeardown is the teardown scenario, run at the end of each model's
// scenario: stop the guests (QEMU runs qemu-ifdown, which must remove
// every TAP record), run `ifhook teardown --all` in the host namespace, and
// require the namespace to be exactly as it was before the first guest:
// no bridge, address, route, forwarding or nftables rule of ifhook's left,
// and what ifhook moved (a bridged uplink's addresses and routes) back.
func (e *testEnv) stopAndTeardown(before []string, bridges []string, guests ...*guest.Guest) {
	e.t.Helper()
	for _, g := range guests {
		g.Stop()
	}
	if recs := e.dirEntries("taps"); len(recs) > 0 {
		e.t.Errorf("TAP records left after the guests stopped (qemu-ifdown did not run or did not clean up): %v", recs)
	}
	for _, b := range bridges {
		if !e.bridgeRecorded(b) {
			e.t.Errorf("no record of bridge %s before teardown", b)
		}
	}
	r := e.mustRun(0, "ifhook", "teardown", "--all")
	if r.stderr != "" {
		e.t.Errorf("teardown is not silent: %q", r.stderr)
	}
	for _, b := range bridges {
		if e.ns.HasLink(b) {
			e.t.Errorf("bridge %s still exists after teardown", b)
		}
	}
	if recs := e.dirEntries("bridges"); len(recs) > 0 {
		e.t.Errorf("bridge records left after teardown: %v", recs)
	}
	if exists, rules := nftIfhook(e.t, e.ns); len(rules) > 0 {
		e.t.Errorf("nftables rules of ifhook left after teardown (table present: %v): %v", exists, rules)
	}
	if diff := cmp.Diff(before, netState(e.t, e.ns)); diff != "" {
		e.t.Errorf("the host namespace after teardown differs from before the guests (-before +after):\n%s", diff)
	}
}

// TestE2EIsolated: two isolated bridges made from policy alone. Guests on
// br-iso reach each other; a guest on br-iso2 reaches its neighbour there
// (the control that its network works) but neither guest on br-iso.
func TestE2EIsolated(t *testing.T) {
	t.Parallel()
	img := e2eImage(t)
	e := newEnv(t, `bridge = ""

[[rule]]
tap = "iso1-*"
bridge = "br-iso"

[[rule]]
tap = "iso2-*"
bridge = "br-iso2"

[bridges.br-iso]
model = "isolated"

[bridges.br-iso2]
model = "isolated"
`)
	before := netState(t, e.ns)
	for _, b := range []string{"br-iso", "br-iso2"} {
		if e.ns.HasLink(b) {
			t.Fatalf("%s exists before any guest", b)
		}
	}

	// A and C only serve; B pings A, retrying while A boots (a success
	// ends the wait at once). A and B start together, so their ifups race
	// for br-iso: one makes it, the other joins it.
	a := e.startGuest(img, guest.Options{TAP: "iso1-a", Addrs: []string{"192.0.2.11/24"}, Hold: guest.Forever})
	b := e.startGuest(img, guest.Options{TAP: "iso1-b", Addrs: []string{"192.0.2.12/24"},
		Ping: []string{"192.0.2.11"}, PingWait: 90 * time.Second, Hold: guest.Forever})
	c := e.startGuest(img, guest.Options{TAP: "iso2-c", Addrs: []string{"192.0.2.13/24"}, Hold: guest.Forever})
	for _, g := range []*guest.Guest{a, b, c} {
		if err := g.WaitReady(0); err != nil {
			t.Fatal(err)
		}
	}
	e.wantAttached("iso1-a", "br-iso")
	e.wantAttached("iso1-b", "br-iso")
	e.wantAttached("iso2-c", "br-iso2")
	res, err := b.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest B on br-iso: %+v", res.Pings)
	if !res.OK("192.0.2.11") {
		t.Errorf("guest B could not ping guest A on the same isolated bridge br-iso")
	}

	// D on br-iso2, once A, B and C answer: C first (the control), then
	// A and B, which must stay silent. Each failure costs PingWait.
	d := e.startGuest(img, guest.Options{TAP: "iso2-d", Addrs: []string{"192.0.2.14/24"},
		Ping: []string{"192.0.2.13", "192.0.2.11", "192.0.2.12"}, PingWait: 5 * time.Second})
	if err := d.WaitReady(0); err != nil {
		t.Fatal(err)
	}
	e.wantAttached("iso2-d", "br-iso2")
	res, err = d.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest D on br-iso2: %+v", res.Pings)
	if !res.OK("192.0.2.13") {
		t.Errorf("control failed: guest D could not ping guest C on its own bridge br-iso2")
	}
	for _, target := range []string{"192.0.2.11", "192.0.2.12"} {
		if res.OK(target) {
			t.Errorf("guest D on br-iso2 reached %s on br-iso: the isolated bridges are not isolated", target)
		}
	}
	if err := d.WaitExit(30 * time.Second); err != nil {
		t.Errorf("guest D did not power off: %v", err)
	}

	for _, br := range []string{"br-iso", "br-iso2"} {
		if got := e.ns.Addrs(t, br, netlink.FAMILY_V4); len(got) > 0 {
			t.Errorf("isolated bridge %s has addresses %v", br, got)
		}
		if !e.bridgeRecorded(br) {
			t.Errorf("ifhook made %s but did not record it", br)
		}
	}
	if got, want := e.ns.Sysctl(t, "net.ipv4.ip_forward"), "0"; got != want {
		t.Errorf("net.ipv4.ip_forward = %s with isolated bridges only, want %s", got, want)
	}
	if exists, rules := nftIfhook(t, e.ns); exists || len(rules) > 0 {
		t.Errorf("isolated bridges made nftables state: table %v, rules %v", exists, rules)
	}

	e.stopAndTeardown(before, []string{"br-iso", "br-iso2"}, a, b, c, d)
}

// TestE2ERouted: a routed bridge holds the guests' gateway and the host
// forwards. The outside peer, which has a route back, answers and sees the
// guest's own address. The control: a second outside peer without a route
// back gets the same untranslated echo requests and cannot answer, which
// is what routed (no NAT) means, and what makes the NAT test meaningful.
func TestE2ERouted(t *testing.T) {
	t.Parallel()
	img := e2eImage(t)
	e := newEnv(t, `bridge = ""

[[rule]]
tap = "rt-*"
bridge = "br-rt"

[bridges.br-rt]
model = "routed"
address = "192.0.2.1/24"
`)
	outside := peerNS(t, e.ns, "up0", []string{"198.51.100.1/24"}, "out0", []string{"198.51.100.2/24"})
	addRoute(t, outside, "192.0.2.0/24", "198.51.100.1")
	dark := peerNS(t, e.ns, "up1", []string{"203.0.113.1/24"}, "dark0", []string{"203.0.113.2/24"})
	seen := watchEchoes(t, outside, "198.51.100.2")
	seenDark := watchEchoes(t, dark, "203.0.113.2")
	before := netState(t, e.ns)
	fwdBefore := e.ns.Sysctl(t, "net.ipv4.ip_forward")

	g := e.startGuest(img, guest.Options{TAP: "rt-a", Addrs: []string{"192.0.2.10/24"}, Gateway: "192.0.2.1",
		Ping: []string{"198.51.100.2", "203.0.113.2"}, PingWait: 8 * time.Second, Hold: guest.Forever})
	if err := g.WaitReady(0); err != nil {
		t.Fatal(err)
	}
	e.wantAttached("rt-a", "br-rt")
	res, err := g.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest on br-rt: %+v; 198.51.100.2 saw %v, 203.0.113.2 saw %v", res.Pings, seen.sources(), seenDark.sources())
	if !res.OK("198.51.100.2") {
		t.Errorf("guest on the routed bridge could not ping the outside peer 198.51.100.2, which has a route back")
	}
	if got, want := seen.sources(), []string{"192.0.2.10"}; !cmp.Equal(got, want) {
		t.Errorf("outside peer saw echo requests from %v, want only the guest's own address %v", got, want)
	}
	if res.OK("203.0.113.2") {
		t.Errorf("control failed: the peer without a route back answered, so something translated the guest's address on a routed bridge")
	}
	if got, want := seenDark.sources(), []string{"192.0.2.10"}; !cmp.Equal(got, want) {
		t.Errorf("peer without a route back saw echo requests from %v, want %v (forwarded, untranslated)", got, want)
	}

	if got, want := e.ns.Addrs(t, "br-rt", netlink.FAMILY_V4), []string{"192.0.2.1/24"}; !cmp.Equal(got, want) {
		t.Errorf("br-rt has addresses %v, want %v", got, want)
	}
	if got := e.ns.Sysctl(t, "net.ipv4.ip_forward"); got != "1" {
		t.Errorf("net.ipv4.ip_forward = %s with a routed bridge, want 1", got)
	}
	if exists, rules := nftIfhook(t, e.ns); exists || len(rules) > 0 {
		t.Errorf("a routed bridge made nftables state: table %v, rules %v", exists, rules)
	}

	e.stopAndTeardown(before, []string{"br-rt"}, g)
	if got := e.ns.Sysctl(t, "net.ipv4.ip_forward"); got != fwdBefore {
		t.Errorf("net.ipv4.ip_forward = %s after teardown, want %s as before", got, fwdBefore)
	}
}

// TestE2ENAT: a nat bridge; the outside peer has no route back (the routed
// test shows such a peer cannot answer untranslated traffic), yet the
// guest's pings come back, and the peer sees the host's address: the
// uplink's primary address with masquerade, snat_to's with it. The uplink
// has both addresses in both cases, so only the policy tells them apart.
func TestE2ENAT(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, snatTo, want string
	}{
		{"masquerade", "", "198.51.100.1"},
		{"snat_to", "198.51.100.3", "198.51.100.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := e2eImage(t)
			pol := `bridge = ""

[[rule]]
tap = "nat-*"
bridge = "br-nat"

[bridges.br-nat]
model = "nat"
address = "192.0.2.1/24"
uplink = "up0"
`
			if tc.snatTo != "" {
				pol += fmt.Sprintf("snat_to = %q\n", tc.snatTo)
			}
			e := newEnv(t, pol)
			outside := peerNS(t, e.ns, "up0", []string{"198.51.100.1/24", "198.51.100.3/24"}, "out0", []string{"198.51.100.2/24"})
			seen := watchEchoes(t, outside, "198.51.100.2")
			before := netState(t, e.ns)
			fwdBefore := e.ns.Sysctl(t, "net.ipv4.ip_forward")

			// No Hold: the guest powers off after its ping, QEMU exits
			// by itself and runs qemu-ifdown.
			g := e.startGuest(img, guest.Options{TAP: "nat-a", Addrs: []string{"192.0.2.10/24"}, Gateway: "192.0.2.1",
				Ping: []string{"198.51.100.2"}, PingWait: 10 * time.Second})
			if err := g.WaitReady(0); err != nil {
				t.Fatal(err)
			}
			e.wantAttached("nat-a", "br-nat")
			// While the bridge exists (it outlives the guest): its
			// address, forwarding and the NAT rule in ifhook's table.
			if got, want := e.ns.Addrs(t, "br-nat", netlink.FAMILY_V4), []string{"192.0.2.1/24"}; !cmp.Equal(got, want) {
				t.Errorf("br-nat has addresses %v, want %v", got, want)
			}
			if got := e.ns.Sysctl(t, "net.ipv4.ip_forward"); got != "1" {
				t.Errorf("net.ipv4.ip_forward = %s with a nat bridge, want 1", got)
			}
			if exists, rules := nftIfhook(t, e.ns); !exists || len(rules) != 1 || !strings.Contains(rules[0], `"ifhook:br-nat 192.0.2.0/24"`) {
				t.Errorf("ifhook's nftables table: present %v, rules %v; want one rule \"ifhook:br-nat 192.0.2.0/24\"", exists, rules)
			}
			st := e.mustRun(0, "ifhook", "status", "br-nat")
			if !strings.Contains(st.stdout, "NAT rule:") || !strings.Contains(st.stdout, "made by ifhook") {
				t.Errorf("ifhook status br-nat shows no NAT rule made by ifhook:\n%s", st.stdout)
			}

			res, err := g.Wait(0)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("guest on br-nat (%s): %+v; the peer saw %v", tc.name, res.Pings, seen.sources())
			if !res.OK("198.51.100.2") {
				t.Errorf("guest on the nat bridge could not ping the outside peer, which has no route back: no working NAT")
			}
			if got, want := seen.sources(), []string{tc.want}; !cmp.Equal(got, want) {
				t.Errorf("outside peer saw echo requests from %v, want only %v", got, want)
			}
			if err := g.WaitExit(30 * time.Second); err != nil {
				t.Errorf("guest did not power off: %v", err)
			}

			e.stopAndTeardown(before, []string{"br-nat"}, g)
			if exists, _ := nftIfhook(t, e.ns); exists {
				t.Errorf("ifhook's nftables table is still there, empty, after its last rule went")
			}
			if got := e.ns.Sysctl(t, "net.ipv4.ip_forward"); got != fwdBefore {
				t.Errorf("net.ipv4.ip_forward = %s after teardown, want %s as before", got, fwdBefore)
			}
		})
	}
}

// TestE2EBridged: the host's NIC eth0 is enslaved to br-lan and its address
// and default route move there; a guest on br-lan sits on the LAN and pings
// the LAN peer, which sees the guest's own address; the host keeps its
// address and default route (now through br-lan) and can still ping the
// LAN. Teardown gives eth0 both back.
func TestE2EBridged(t *testing.T) {
	t.Parallel()
	img := e2eImage(t)
	e := newEnv(t, `bridge = ""

[[rule]]
tap = "lan-*"
bridge = "br-lan"

[bridges.br-lan]
model = "bridged"
uplink = "eth0"
`)
	lan := peerNS(t, e.ns, "eth0", []string{"203.0.113.5/24"}, "lan0", []string{"203.0.113.1/24"})
	addRoute(t, e.ns, "default", "203.0.113.1")
	seen := watchEchoes(t, lan, "203.0.113.1")
	if ok, out := hostPing(t, e.ns, "203.0.113.1"); !ok {
		t.Fatalf("control failed: the host cannot ping the LAN before any guest:\n%s", out)
	}
	before := netState(t, e.ns)
	if got, want := defaultRoute(t, e.ns), "via 203.0.113.1 dev eth0"; got != want {
		t.Fatalf("default route before: %q, want %q", got, want)
	}

	g := e.startGuest(img, guest.Options{TAP: "lan-a", Addrs: []string{"203.0.113.10/24"},
		Ping: []string{"203.0.113.1"}, PingWait: 10 * time.Second, Hold: guest.Forever})
	if err := g.WaitReady(0); err != nil {
		t.Fatal(err)
	}
	e.wantAttached("lan-a", "br-lan")
	res, err := g.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest on br-lan: %+v", res.Pings)
	if !res.OK("203.0.113.1") {
		t.Errorf("guest on the bridged bridge could not ping the LAN peer 203.0.113.1")
	}

	if got := e.ns.MasterName(t, "eth0"); got != "br-lan" {
		t.Errorf("eth0's master is %q, want br-lan", got)
	}
	if got, want := e.ns.Addrs(t, "br-lan", netlink.FAMILY_V4), []string{"203.0.113.5/24"}; !cmp.Equal(got, want) {
		t.Errorf("br-lan has addresses %v, want the host's %v", got, want)
	}
	if got := e.ns.Addrs(t, "eth0", netlink.FAMILY_V4); len(got) > 0 {
		t.Errorf("eth0 kept addresses %v as a bridge port", got)
	}
	if got, want := defaultRoute(t, e.ns), "via 203.0.113.1 dev br-lan"; got != want {
		t.Errorf("default route with the guest up: %q, want %q", got, want)
	}
	if ok, out := hostPing(t, e.ns, "203.0.113.1"); !ok {
		t.Errorf("the host cannot ping the LAN through br-lan:\n%s", out)
	}
	if got, want := seen.sources(), []string{"203.0.113.10", "203.0.113.5"}; !cmp.Equal(got, want) {
		t.Errorf("the LAN peer saw echo requests from %v, want the guest's and the host's own addresses %v", got, want)
	}
	if got := e.ns.Sysctl(t, "net.ipv4.ip_forward"); got != "0" {
		t.Errorf("net.ipv4.ip_forward = %s with a bridged bridge, want 0 (nothing routes)", got)
	}

	e.stopAndTeardown(before, []string{"br-lan"}, g)
	if got, want := e.ns.Addrs(t, "eth0", netlink.FAMILY_V4), []string{"203.0.113.5/24"}; !cmp.Equal(got, want) {
		t.Errorf("eth0 after teardown has %v, want %v", got, want)
	}
	if got, want := defaultRoute(t, e.ns), "via 203.0.113.1 dev eth0"; got != want {
		t.Errorf("default route after teardown: %q, want %q", got, want)
	}
	if ok, out := hostPing(t, e.ns, "203.0.113.1"); !ok {
		t.Errorf("the host cannot ping the LAN through eth0 after teardown:\n%s", out)
	}
}

package ifhook

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/ifhook/ifhook/ifhook/bridge"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nftable"
	"github.com/ifhook/ifhook/ifhook/nstest"
	planpkg "github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/vishvananda/netlink"
)

// newModelHook is newTestHook for the network models.
func newModelHook(t *testing.T, ns *nstest.NS, policyText string, wrap ...func(kernel.Kernel) kernel.Kernel) *Hook {
	t.Helper()
	h, _ := newTestHook(t, ns, policyText, wrap...)
	return h
}

// routes lists the routes through a link, as text, sorted.
func routes(t *testing.T, ns *nstest.NS, dev string) []string {
	t.Helper()
	list, err := ns.Handle.RouteList(ns.Link(t, dev), netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range list {
		if r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, r.String()[strings.Index(r.String(), "Dst:"):])
	}
	slices.Sort(out)
	return out
}

func natHas(t *testing.T, ns *nstest.NS, bridge string) bool {
	t.Helper()
	tb, err := nftable.Open(ns.FD())
	if err != nil {
		t.Fatal(err)
	}
	rules, err := tb.List(bridge)
	if err != nil {
		t.Fatal(err)
	}
	return len(rules) > 0
}

const natPolicy = `
bridge = "br-nat"
[bridges.br-nat]
model = "nat"
address = "192.0.2.1/24"
uplink = "up0"
`

func natHost(t *testing.T) *nstest.NS {
	ns := nstest.New(t)
	ns.AddVeth(t, "up0", "peer0")
	ns.AddAddrs(t, "up0", "198.51.100.1/24")
	ns.SetUp(t, "up0")
	ns.AddTAP(t, "vnet0")
	ns.AddTAP(t, "vnet1")
	return ns
}

func TestModelNAT(t *testing.T) {
	ns := natHost(t)
	h := newModelHook(t, ns, natPolicy)
	fwd := ns.Sysctl(t, "net.ipv4.ip_forward")

	plan, err := h.Up("vnet0")
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	steps := strings.Join(plan.Lines(), "\n")
	for _, w := range []string{"ip link add name br-nat", "ip addr add 192.0.2.1/24 dev br-nat", "sysctl -w net.ipv4.ip_forward=1", "masquerade", "master br-nat"} {
		if !strings.Contains(steps, w) {
			t.Errorf("plan lacks %q:\n%s", w, steps)
		}
	}
	if got := ns.MasterName(t, "vnet0"); got != "br-nat" {
		t.Fatalf("vnet0 on %q", got)
	}
	if got := ns.Addrs(t, "br-nat", netlink.FAMILY_ALL); !slices.Equal(got, []string{"192.0.2.1/24"}) {
		t.Errorf("br-nat addresses %v", got)
	}
	if ns.Sysctl(t, "net.ipv4.ip_forward") != "1" || !natHas(t, ns, "br-nat") {
		t.Fatal("forwarding or NAT rule missing")
	}
	if mac := ns.Link(t, "br-nat").Attrs().HardwareAddr; !bytes.Equal(mac, bridge.StableMAC("br-nat")) {
		t.Errorf("bridge MAC %s, want the stable %s", mac, bridge.StableMAC("br-nat"))
	}

	// The next TAP only attaches; setup finds nothing to do.
	plan, err = h.Up("vnet1")
	if err != nil || len(plan.Steps) != 3 {
		t.Fatalf("second Up: %q, %v", plan.Lines(), err)
	}
	plans, err := h.Bridges.Setup()
	if err != nil || len(plans) != 1 || len(plans[0].Steps) != 0 {
		t.Fatalf("Setup of a complete bridge: %+v, %v", plans, err)
	}

	// Teardown refuses while guests are attached.
	_, err = h.Bridges.Teardown(false, "br-nat")
	if exit.Code(err) != 69 || !strings.Contains(err.Error(), "vnet0, vnet1") {
		t.Fatalf("Teardown with ports: %v", err)
	}
	for _, tap := range []string{"vnet0", "vnet1"} {
		if _, err := h.Down(tap); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Bridges.Teardown(false, "br-nat"); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if ns.HasLink("br-nat") || natHas(t, ns, "br-nat") || ns.Sysctl(t, "net.ipv4.ip_forward") != fwd {
		t.Fatal("teardown left the bridge, the NAT rule or forwarding behind")
	}
	if rec, _ := h.State.ReadBridge("br-nat"); rec != nil {
		t.Fatal("teardown left the record")
	}
	// The state asked for is reached: a second teardown succeeds, saying
	// there was nothing to do.
	plans, err = h.Bridges.Teardown(false, "br-nat")
	if err != nil || len(plans) != 1 || len(plans[0].Steps) != 0 || !strings.Contains(plans[0].Notes[0].Text, "nothing to do") {
		t.Fatalf("second teardown: %+v, %v; want success with a note", plans, err)
	}
}

func TestModelRollback(t *testing.T) {
	ns := natHost(t)
	h := newModelHook(t, ns, natPolicy, failWith(failing{failNAT: true}))
	before := observe(t, ns, "vnet0")
	fwd := ns.Sysctl(t, "net.ipv4.ip_forward")

	_, err := h.Up("vnet0")
	if !errors.Is(err, errInjected) {
		t.Fatalf("Up: %v, want the injected failure", err)
	}
	if ns.HasLink("br-nat") {
		t.Error("the bridge made before the failure is still there")
	}
	if ns.Sysctl(t, "net.ipv4.ip_forward") != fwd {
		t.Error("forwarding not put back")
	}
	if observe(t, ns, "vnet0") != before {
		t.Error("the TAP was changed")
	}
	if rec, _ := h.State.ReadBridge("br-nat"); rec != nil {
		t.Error("a record of the failed bridge")
	}
}

func TestModelBridged(t *testing.T) {
	ns := nstest.New(t)
	ns.AddVeth(t, "eth0", "lan0")
	ns.AddAddrs(t, "eth0", "203.0.113.5/24", "2001:db8::5/64")
	ns.SetUp(t, "eth0", "lan0")
	eth0 := ns.Link(t, "eth0")
	if err := ns.Handle.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP("203.0.113.1")}); err != nil {
		t.Fatal(err)
	}
	ns.AddTAP(t, "vnet0")
	beforeAddrs, beforeRoutes := ns.Addrs(t, "eth0", netlink.FAMILY_ALL), routes(t, ns, "eth0")
	policyText := "bridge = \"br-lan\"\n[bridges.br-lan]\nmodel = \"bridged\"\nuplink = \"eth0\"\n"

	t.Run("rollback", func(t *testing.T) {
		h := newModelHook(t, ns, policyText, failWith(failing{failRoute: true}))
		if _, err := h.Up("vnet0"); !errors.Is(err, errInjected) {
			t.Fatalf("Up: %v, want the injected failure", err)
		}
		if ns.HasLink("br-lan") || ns.MasterName(t, "eth0") != "" {
			t.Fatal("bridge or enslaved uplink left")
		}
		if got := ns.Addrs(t, "eth0", netlink.FAMILY_ALL); !slices.Equal(got, beforeAddrs) {
			t.Fatalf("eth0 addresses %v, want %v", got, beforeAddrs)
		}
		if got := routes(t, ns, "eth0"); !slices.Equal(got, beforeRoutes) {
			t.Fatalf("eth0 routes %v, want %v", got, beforeRoutes)
		}
	})

	h := newModelHook(t, ns, policyText)
	if _, err := h.Up("vnet0"); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if ns.MasterName(t, "eth0") != "br-lan" || ns.MasterName(t, "vnet0") != "br-lan" {
		t.Fatal("eth0 or vnet0 not on br-lan")
	}
	if got := ns.Addrs(t, "br-lan", netlink.FAMILY_ALL); !slices.Equal(got, beforeAddrs) {
		t.Errorf("br-lan addresses %v, want eth0's %v", got, beforeAddrs)
	}
	if got := ns.Addrs(t, "eth0", netlink.FAMILY_ALL); len(got) != 0 {
		t.Errorf("eth0 kept %v", got)
	}
	if got := strings.Join(routes(t, ns, "br-lan"), "\n"); !strings.Contains(got, "Gw: 203.0.113.1") {
		t.Errorf("default route not on br-lan: %s", got)
	}
	if !bytes.Equal(ns.Link(t, "br-lan").Attrs().HardwareAddr, eth0.Attrs().HardwareAddr) {
		t.Error("br-lan does not have eth0's MAC")
	}
	if _, err := h.Down("vnet0"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Bridges.Teardown(false); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if ns.HasLink("br-lan") || ns.MasterName(t, "eth0") != "" {
		t.Fatal("bridge left, or eth0 still enslaved")
	}
	if got := ns.Addrs(t, "eth0", netlink.FAMILY_ALL); !slices.Equal(got, beforeAddrs) {
		t.Errorf("eth0 addresses after teardown %v, want %v", got, beforeAddrs)
	}
	if got := routes(t, ns, "eth0"); !slices.Equal(got, beforeRoutes) {
		t.Errorf("eth0 routes after teardown %v, want %v", got, beforeRoutes)
	}
}

func TestModelBadInput(t *testing.T) {
	ns := nstest.New(t)
	ns.AddTAP(t, "vnet0")
	ns.AddBridge(t, "br-other")
	ns.AddVeth(t, "eth0", "peer0")
	ns.AddVeth(t, "eth1", "peer1")
	if err := ns.Handle.LinkSetMaster(ns.Link(t, "eth1"), ns.Link(t, "br-other")); err != nil {
		t.Fatal(err)
	}
	ns.AddAddrs(t, "eth0", "192.0.2.1/24")
	for _, tc := range []struct {
		name, policy string
		natErr       error
		want         string
	}{
		{"missing uplink", "[bridges.b]\nmodel = \"bridged\"\nuplink = \"eth9\"\n", nil, "uplink eth9 of bridge b does not exist"},
		{"uplink enslaved elsewhere", "[bridges.b]\nmodel = \"bridged\"\nuplink = \"eth1\"\n", nil, "already a port of br-other"},
		{"uplink is a bridge", "[bridges.b]\nmodel = \"bridged\"\nuplink = \"br-other\"\n", nil, "is itself a bridge"},
		{"address taken", "[bridges.b]\nmodel = \"routed\"\naddress = \"192.0.2.1/24\"\n", nil, "192.0.2.1/24 of bridge b is already on eth0"},
		{"nftables unavailable", "[bridges.b]\nmodel = \"nat\"\naddress = \"198.51.100.1/24\"\n", fmt.Errorf("%w: no nf_tables", nftable.ErrUnavailable), "nftables is unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wrap []func(kernel.Kernel) kernel.Kernel
			if tc.natErr != nil {
				wrap = append(wrap, failWith(failing{natErr: tc.natErr}))
			}
			h := newModelHook(t, ns, "bridge = \"b\"\n"+tc.policy, wrap...)
			before := observe(t, ns, "vnet0")
			_, err := h.Up("vnet0")
			if code := exit.Code(err); (code != 69 && code != 78) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Up: exit %d, %v; want 69/78 and %q", code, err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message not one line: %q", err)
			}
			if ns.HasLink("b") || observe(t, ns, "vnet0") != before {
				t.Fatal("something was left behind")
			}
		})
	}
}

func TestModelRemoveWhenEmpty(t *testing.T) {
	ns := nstest.New(t)
	ns.AddTAP(t, "vnet0")
	ns.AddTAP(t, "vnet1")
	h := newModelHook(t, ns, "bridge = \"br-iso\"\n[bridges.br-iso]\nmodel = \"isolated\"\nremove_when_empty = true\n")
	for _, tap := range []string{"vnet0", "vnet1"} {
		if _, err := h.Up(tap); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Down("vnet0"); err != nil {
		t.Fatal(err)
	}
	if !ns.HasLink("br-iso") {
		t.Fatal("removed while a port remained")
	}
	if _, err := h.Down("vnet1"); err != nil {
		t.Fatal(err)
	}
	if ns.HasLink("br-iso") {
		t.Fatal("not removed when its last port left")
	}
	if rec, _ := h.State.ReadBridge("br-iso"); rec != nil {
		t.Fatal("record left")
	}
}

func TestModelForwardingShared(t *testing.T) {
	ns := nstest.New(t)
	h := newModelHook(t, ns, `
[bridges.r1]
model = "routed"
address = "192.0.2.1/24"
[bridges.r2]
model = "routed"
address = "198.51.100.1/24"
`)
	fwd := ns.Sysctl(t, "net.ipv4.ip_forward")
	if _, err := h.Bridges.Setup(); err != nil {
		t.Fatal(err)
	}
	if ns.Sysctl(t, "net.ipv4.ip_forward") != "1" {
		t.Fatal("forwarding off")
	}
	if _, err := h.Bridges.Teardown(false, "r1"); err != nil {
		t.Fatal(err)
	}
	if ns.Sysctl(t, "net.ipv4.ip_forward") != "1" {
		t.Fatal("forwarding turned off while r2 still routes")
	}
	if _, err := h.Bridges.Teardown(false, "r2"); err != nil {
		t.Fatal(err)
	}
	if ns.Sysctl(t, "net.ipv4.ip_forward") != fwd {
		t.Fatal("forwarding not put back after the last routed bridge")
	}
}

func TestSetupRepairsAndStatus(t *testing.T) {
	ns := natHost(t)
	h := newModelHook(t, ns, natPolicy)
	sts, err := h.Bridges.Status()
	if err != nil || len(sts) != 1 || sts[0].Exists || len(sts[0].Missing) == 0 {
		t.Fatalf("Status before setup: %+v, %v", sts, err)
	}
	if _, err := h.Bridges.Setup("br-nat"); err != nil {
		t.Fatal(err)
	}
	sts, err = h.Bridges.Status("br-nat")
	if err != nil || !sts[0].Exists || !sts[0].MadeByIfhook || sts[0].NAT != "present" || len(sts[0].Missing) != 0 {
		t.Fatalf("Status after setup: %+v, %v", sts, err)
	}
	// Someone flushes the ruleset; status shows it and setup repairs it.
	tb, _ := nftable.Open(ns.FD())
	if err := tb.Delete(nftable.NAT{Bridge: "br-nat", Subnet: netip.MustParsePrefix("192.0.2.0/24")}); err != nil {
		t.Fatal(err)
	}
	sts, _ = h.Bridges.Status("br-nat")
	if sts[0].NAT != "missing" || len(sts[0].Missing) != 1 || !strings.Contains(sts[0].Missing[0], "masquerade") {
		t.Fatalf("Status after the rule went: %+v", sts[0])
	}
	if _, err := h.Bridges.Setup("br-nat"); err != nil {
		t.Fatal(err)
	}
	if !natHas(t, ns, "br-nat") {
		t.Fatal("setup did not put the NAT rule back")
	}
	if _, err := h.Bridges.Setup("nosuch"); exit.Code(err) != 64 {
		t.Fatalf("Setup of a bridge the policy lacks: %v", err)
	}
}

func TestDoctor(t *testing.T) {
	ns := nstest.New(t)
	h := newModelHook(t, ns, "[bridges.br-rt]\nmodel = \"routed\"\naddress = \"192.0.2.1/24\"\n")
	findings, err := h.Bridges.Doctor()
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 0 {
		t.Fatalf("clean host: %v", findings)
	}
	if _, err := h.Bridges.Setup(); err != nil {
		t.Fatal(err)
	}
	// Trap 1: forwarding turned off behind ifhook's back.
	if err := h.Kernel.SetSysctl(kernel.IPv4Forward, "0"); err != nil {
		t.Fatal(err)
	}
	// Trap 2: a bridge with STP and the kernel's 15 s forward delay, whose
	// MAC follows its port, which has a lower MTU.
	ns.AddBridge(t, "br-stp")
	if err := ns.Conn.DeleteLink(ns.Link(t, "br-stp").Attrs().Index); err != nil {
		t.Fatal(err)
	}
	if err := ns.Conn.CreateBridge("br-stp", kernel.BridgeOptions{STP: true, ForwardDelay: 15}); err != nil {
		t.Fatal(err)
	}
	ns.AddVeth(t, "p0", "p1")
	if err := ns.Handle.LinkSetMTU(ns.Link(t, "p0"), 1400); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle.LinkSetMaster(ns.Link(t, "p0"), ns.Link(t, "br-stp")); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle.LinkSetMTU(ns.Link(t, "br-stp"), 1500); err != nil {
		t.Fatal(err)
	}
	findings, err = h.Bridges.Doctor()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range findings {
		got[f.Bridge+" "+f.Check] = f.String()
	}
	for _, want := range []string{"br-rt forwarding", "br-stp stp", "br-stp mtu", "br-stp mac"} {
		if got[want] == "" {
			t.Errorf("no %q finding; got %v", want, findings)
		}
	}
	for _, f := range findings {
		if f.Fix == "" || f.Problem == "" {
			t.Errorf("finding without problem or fix: %+v", f)
		}
	}
	if fs, err := h.Bridges.Doctor("br-rt"); err != nil || len(fs) != 1 {
		t.Errorf("Doctor(br-rt): %v, %v", fs, err)
	}
}

// TestWaitForwarding attaches a TAP that QEMU would hold open (so it has
// carrier) to an STP bridge: ifup returns once the port forwards.
func TestWaitForwarding(t *testing.T) {
	ns := nstest.New(t)
	var fds []*os.File
	err := ns.Do(func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "vnet0"
		tap := &netlink.Tuntap{LinkAttrs: attrs, Mode: netlink.TUNTAP_MODE_TAP, NonPersist: true, Queues: 1}
		if err := netlink.LinkAdd(tap); err != nil {
			return err
		}
		fds = tap.Fds
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range fds {
			f.Close()
		}
	}()
	h := newModelHook(t, ns, "bridge = \"br-stp\"\n[bridges.br-stp]\nmodel = \"isolated\"\nstp = true\nforward_delay = 2\n")
	plan, err := h.Up("vnet0")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(plan.Notes, func(n planpkg.Note) bool { return strings.Contains(n.Text, "to forward (STP") }) {
		t.Errorf("plan does not say it waits: %q", plan.Notes)
	}
	l, err := ns.Conn.LinkByName("vnet0")
	if err != nil {
		t.Fatal(err)
	}
	if l.PortState != rtnl.PortForwarding {
		t.Fatalf("ifup returned with the port %s, want forwarding", rtnl.PortStateName(l.PortState))
	}
}

// TestDoctorNetfilter: with br_netfilter passing bridged frames to a
// forward chain that drops by default (Docker's FORWARD policy), doctor
// says so; without the drop policy, it does not.
func TestDoctorNetfilter(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0")
	h := newModelHook(t, ns, "")
	if _, err := h.Kernel.Sysctl("net.bridge.bridge-nf-call-iptables"); err != nil {
		t.Skipf("this kernel has no br_netfilter in the namespace (%v); loading it would change the host", err)
	}
	if err := h.Kernel.SetSysctl("net.bridge.bridge-nf-call-iptables", "1"); err != nil {
		t.Fatal(err)
	}
	conn, err := nftables.New(nftables.WithNetNSFd(ns.FD()))
	if err != nil {
		t.Fatal(err)
	}
	table := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "filter"})
	policy := nftables.ChainPolicyAccept
	chain := conn.AddChain(&nftables.Chain{Name: "FORWARD", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	has := func() bool {
		fs, err := h.Bridges.Doctor()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Check == "br_netfilter" {
				return strings.Contains(f.Problem, "ip filter FORWARD")
			}
		}
		return false
	}
	if has() {
		t.Fatal("finding with an accepting FORWARD chain")
	}
	drop := nftables.ChainPolicyDrop
	chain.Policy = &drop
	conn.AddChain(chain)
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	if !has() {
		t.Fatal("no br_netfilter finding with FORWARD policy drop")
	}
}

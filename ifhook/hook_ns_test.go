package ifhook

import (
	"bytes"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nftable"
	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { nstest.GuardRootNS(m) }

// newTestHook returns a Hook over ns with the policy text, a temporary
// state directory and a log captured in buf; wrap, when given, stands
// between the Hook and the namespace's kernel (to inject failures).
func newTestHook(t *testing.T, ns *nstest.NS, policyText string, wrap ...func(kernel.Kernel) kernel.Kernel) (*Hook, *bytes.Buffer) {
	t.Helper()
	pol, err := policy.Parse([]byte(policyText), "test.toml")
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	var k kernel.Kernel = kernel.New(ns.Conn)
	for _, w := range wrap {
		k = w(k)
	}
	var buf bytes.Buffer
	h, err := Open(Config{Policy: pol, Kernel: k, StateDir: filepath.Join(t.TempDir(), "state"), Log: &Log{Stderr: &buf}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, &buf
}

// failing is a kernel that fails chosen changes, after making the rest of
// them, as the kernel does when a later attribute of a message fails.
type failing struct {
	kernel.Kernel
	failMaster, failNAT, failRoute bool
	natErr                         error
}

var errInjected = errors.New("injected failure")

func (f *failing) SetLink(index int, ch kernel.Change) error {
	if f.failMaster && ch.Master != nil && *ch.Master != 0 {
		f.failMaster = false // once: the rollback's own change goes through
		partial := ch
		partial.Master, partial.Up = nil, nil
		if err := f.Kernel.SetLink(index, partial); err != nil {
			return err
		}
		return errInjected
	}
	return f.Kernel.SetLink(index, ch)
}

func (f *failing) AddNAT(r nftable.NAT) error {
	if f.failNAT {
		return errInjected
	}
	return f.Kernel.AddNAT(r)
}

func (f *failing) NATRules(bridge string) ([]nftable.NAT, error) {
	if f.natErr != nil {
		return nil, f.natErr
	}
	return f.Kernel.NATRules(bridge)
}

func (f *failing) HasNATTable() (bool, error) {
	if f.natErr != nil {
		return false, f.natErr
	}
	return f.Kernel.HasNATTable()
}

func (f *failing) AddRoute(r kernel.Route) error {
	if f.failRoute {
		if l, err := f.LinkByIndex(r.Index); err == nil && l.IsBridge() {
			return errInjected
		}
	}
	return f.Kernel.AddRoute(r)
}

func failWith(f failing) func(kernel.Kernel) kernel.Kernel {
	return func(k kernel.Kernel) kernel.Kernel { f.Kernel = k; return &f }
}

// linkState is what a test compares before and after.
type linkState struct {
	master int
	up     bool
	mtu    int
	mac    string
}

func observe(t *testing.T, ns *nstest.NS, name string) linkState {
	t.Helper()
	a := ns.Link(t, name).Attrs()
	return linkState{master: a.MasterIndex, up: a.Flags&net.FlagUp != 0, mtu: a.MTU, mac: a.HardwareAddr.String()}
}

func TestUpDownInNamespace(t *testing.T) {
	ns := nstest.New(t)
	br := ns.AddBridge(t, "br0")
	if err := ns.Handle.LinkSetMTU(br, 1400); err != nil {
		t.Fatal(err)
	}
	ns.AddTAP(t, "vnet0")
	before := observe(t, ns, "vnet0")
	h, logs := newTestHook(t, ns, `bridge = "br0"`)

	plan, err := h.Up("vnet0")
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if got := len(plan.Steps); got != 4 {
		t.Errorf("first Up took %d steps, want 4 (MAC, MTU, master, up): %q", got, plan.Lines())
	}
	after := observe(t, ns, "vnet0")
	want := linkState{master: br.Index, up: true, mtu: 1400, mac: policy.HostTAPMAC(policy.DefaultMACPrefix, "vnet0").String()}
	if after != want {
		t.Fatalf("after Up: %+v, want %+v", after, want)
	}
	if logs.Len() != 0 {
		t.Errorf("Up is not silent: %q", logs.String())
	}

	// Idempotent: the second run observes the finished state.
	plan, err = h.Up("vnet0")
	if err != nil || len(plan.Steps) != 0 {
		t.Fatalf("second Up: steps %q, err %v; want none", plan.Lines(), err)
	}

	if _, err := h.Down("vnet0"); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if got := observe(t, ns, "vnet0"); got != before {
		t.Fatalf("after Down: %+v, want it as before Up: %+v", got, before)
	}
	if rec, _ := h.State.Read("vnet0"); rec != nil {
		t.Errorf("record left after Down: %+v", rec)
	}
	if _, err := h.Down("vnet0"); err != nil {
		t.Fatalf("second Down: %v", err)
	}
}

func TestUpRollsBackOnFailure(t *testing.T) {
	ns := nstest.New(t)
	br := ns.AddBridge(t, "br0")
	if err := ns.Handle.LinkSetMTU(br, 1400); err != nil {
		t.Fatal(err)
	}
	ns.AddBridge(t, "br1")
	ns.AddTAP(t, "vnet0")
	if err := ns.Handle.LinkSetMaster(ns.Link(t, "vnet0"), ns.Link(t, "br1")); err != nil {
		t.Fatal(err)
	}
	before := observe(t, ns, "vnet0")
	h, _ := newTestHook(t, ns, `bridge = "br0"`, failWith(failing{failMaster: true}))

	_, err := h.Up("vnet0")
	if !errors.Is(err, errInjected) {
		t.Fatalf("Up: %v, want the injected failure", err)
	}
	if got := observe(t, ns, "vnet0"); got != before {
		t.Fatalf("after failed Up: %+v, want as before: %+v", got, before)
	}
	if rec, _ := h.State.Read("vnet0"); rec != nil {
		t.Errorf("failed Up left a record: %+v", rec)
	}
	if !strings.Contains(err.Error(), "up vnet0:") || strings.Contains(err.Error(), "\n") {
		t.Errorf("message %q is not one line naming the op and TAP", err)
	}
}

func TestUpRefusesNonTAPs(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0")
	ns.AddVeth(t, "veth0", "veth1")
	ns.AddTUN(t, "tun0")
	h, _ := newTestHook(t, ns, `bridge = "br0"`)
	for _, tc := range []struct{ dev, want string }{
		{"veth0", "is a veth, not a TAP"},
		{"tun0", "is a TUN device"},
		{"br0", "is a bridge, not a TAP"},
		{"lo", "is the loopback device, not a TAP"},
		{"nosuch0", "no such device"},
	} {
		t.Run(tc.dev, func(t *testing.T) {
			var before linkState
			exists := ns.HasLink(tc.dev)
			if exists {
				before = observe(t, ns, tc.dev)
			}
			_, err := h.Up(tc.dev)
			if exit.Code(err) != 65 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Up(%s): exit %d, %v; want 65 and %q", tc.dev, exit.Code(err), err, tc.want)
			}
			if exists && observe(t, ns, tc.dev) != before {
				t.Fatalf("%s was touched", tc.dev)
			}
			_, err = h.Down(tc.dev)
			if tc.dev == "nosuch0" {
				if err != nil {
					t.Fatalf("Down of a missing device: %v, want success", err)
				}
			} else if exit.Code(err) != 65 {
				t.Fatalf("Down(%s): exit %d, %v; want 65", tc.dev, exit.Code(err), err)
			}
		})
	}
}

func TestAutoBridge(t *testing.T) {
	ns := nstest.New(t)
	ns.AddTAP(t, "vnet0")
	h, _ := newTestHook(t, ns, `bridge = "auto"`)

	_, err := h.ExplainUp("vnet0")
	if exit.Code(err) != 69 || !strings.Contains(err.Error(), "has none") {
		t.Fatalf("no bridges: %v (exit %d), want 69", err, exit.Code(err))
	}
	ns.AddBridge(t, "br0")
	plan, err := h.ExplainUp("vnet0")
	if err != nil || plan.Bridge != "br0" || !strings.Contains(plan.Reason, "only bridge") {
		t.Fatalf("one bridge: %+v, %v", plan, err)
	}
	ns.AddBridge(t, "br1")
	_, err = h.ExplainUp("vnet0")
	if exit.Code(err) != 69 || !strings.Contains(err.Error(), "(br0, br1)") {
		t.Fatalf("two bridges: %v, want 69 listing both", err)
	}
	// A default route through br1 decides.
	br1 := ns.Link(t, "br1")
	addr, _ := netlink.ParseAddr("192.0.2.1/24")
	if err := ns.Handle.AddrAdd(br1, addr); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle.RouteAdd(&netlink.Route{LinkIndex: br1.Attrs().Index, Gw: net.ParseIP("192.0.2.254")}); err != nil {
		t.Fatal(err)
	}
	plan, err = h.ExplainUp("vnet0")
	if err != nil || plan.Bridge != "br1" || !strings.Contains(plan.Reason, "IPv4 default route") {
		t.Fatalf("default route via br1: %+v, %v", plan, err)
	}
}

func TestAutoBridgeIPv6(t *testing.T) {
	ns := nstest.New(t)
	ns.AddTAP(t, "vnet0")
	ns.AddBridge(t, "br0")
	br1 := ns.AddBridge(t, "br1")
	// Without DAD the address is usable at once.
	addr, _ := netlink.ParseAddr("2001:db8::1/64")
	addr.Flags = unix.IFA_F_NODAD
	if err := ns.Handle.AddrAdd(br1, addr); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle.RouteAdd(&netlink.Route{LinkIndex: br1.Index, Gw: net.ParseIP("2001:db8::ff")}); err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHook(t, ns, `bridge = "auto"`)
	plan, err := h.ExplainUp("vnet0")
	if err != nil || plan.Bridge != "br1" || !strings.Contains(plan.Reason, "IPv6") {
		t.Fatalf("IPv6 default route via br1: %+v, %v", plan, err)
	}
}

func TestDownWithoutCapability(t *testing.T) {
	ns := nstest.New(t)
	br := ns.AddBridge(t, "br0")
	ns.AddTAP(t, "vnet0")
	h, logs := newTestHook(t, ns, `bridge = "br0"`)
	if _, err := h.Up("vnet0"); err != nil {
		t.Fatal(err)
	}
	h.cfg.HasNetAdmin = func() bool { return false }
	if _, err := h.Down("vnet0"); err != nil {
		t.Fatalf("Down without CAP_NET_ADMIN: %v, want success", err)
	}
	if got := observe(t, ns, "vnet0"); got.master != br.Index {
		t.Errorf("Down without CAP_NET_ADMIN changed the TAP: %+v", got)
	}
	if rec, _ := h.State.Read("vnet0"); rec == nil {
		t.Error("record removed; want it left for gc")
	}
	if logs.Len() != 0 {
		t.Errorf("not silent without -v: %q", logs.String())
	}
	_, err := h.Up("vnet1")
	if exit.Code(err) != 77 {
		t.Errorf("Up without CAP_NET_ADMIN: exit %d (%v), want 77", exit.Code(err), err)
	}
}

func TestGCRemovesRecordsOfVanishedTAPs(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0")
	ns.AddTAP(t, "vnet0")
	ns.AddTAP(t, "vnet1")
	h, _ := newTestHook(t, ns, `bridge = "br0"`)
	for _, tap := range []string{"vnet0", "vnet1"} {
		if _, err := h.Up(tap); err != nil {
			t.Fatal(err)
		}
	}
	// QEMU killed with SIGKILL: no downscript, and the kernel removes its
	// (non-persistent) TAP.
	if err := ns.Handle.LinkDel(ns.Link(t, "vnet0")); err != nil {
		t.Fatal(err)
	}
	removed, err := h.GC()
	if err != nil || len(removed) != 1 || removed[0] != "vnet0" {
		t.Fatalf("GC: removed %q, %v; want [vnet0]", removed, err)
	}
	list, err := h.List()
	if err != nil || len(list) != 1 || list[0].TAP != "vnet1" || !list[0].Present {
		t.Fatalf("List after GC: %+v, %v", list, err)
	}
}

func TestUpSweepsStaleRecordsWhenDue(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0")
	ns.AddTAP(t, "vnet0")
	ns.AddTAP(t, "vnet1")
	h, _ := newTestHook(t, ns, `bridge = "br0"`)
	if _, err := h.Up("vnet0"); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle.LinkDel(ns.Link(t, "vnet0")); err != nil {
		t.Fatal(err)
	}
	// Not yet due: the record stays.
	if _, err := h.Up("vnet1"); err != nil {
		t.Fatal(err)
	}
	if rec, _ := h.State.Read("vnet0"); rec == nil {
		t.Fatal("swept before the interval passed")
	}
	// Due: the next ifup sweeps.
	h.cfg.SweepEvery = 1
	if _, err := h.Down("vnet1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Up("vnet1"); err != nil {
		t.Fatal(err)
	}
	if rec, _ := h.State.Read("vnet0"); rec != nil {
		t.Fatal("stale record not swept by ifup")
	}
}

func TestRecordOfReusedNameIsIgnored(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0")
	ns.AddTAP(t, "vnet0")
	h, _ := newTestHook(t, ns, `bridge = "br0"`)
	if _, err := h.Up("vnet0"); err != nil {
		t.Fatal(err)
	}
	old, _ := h.State.Read("vnet0")
	// The VM died; another made a TAP with the same name.
	if err := ns.Handle.LinkDel(ns.Link(t, "vnet0")); err != nil {
		t.Fatal(err)
	}
	ns.AddTAP(t, "vnet0")
	fresh := observe(t, ns, "vnet0")
	if _, err := h.Up("vnet0"); err != nil {
		t.Fatal(err)
	}
	rec, _ := h.State.Read("vnet0")
	if rec == nil || rec.Index == old.Index || rec.Prev.MAC != fresh.mac {
		t.Fatalf("record %+v still describes the old device (%+v)", rec, old)
	}
}

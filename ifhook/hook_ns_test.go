package ifhook

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { nstest.GuardRootNS(m) }

// newTestHook returns a Hook over ns with the policy text, a temporary
// state directory and a log captured in buf.
func newTestHook(t *testing.T, ns *nstest.NS, policyText string) (*Hook, *bytes.Buffer) {
	t.Helper()
	pol, err := policy.Parse([]byte(policyText), "test.toml")
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	return &Hook{Policy: pol, Links: ns.Conn, State: dir, Log: &Log{Stderr: &buf}}, &buf
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
		t.Errorf("first Up took %d steps, want 4 (MAC, MTU, master, up): %q", got, plan.StepStrings())
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
		t.Fatalf("second Up: steps %q, err %v; want none", plan.StepStrings(), err)
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

// failingLinks makes SetLink fail for changes that set a master, after
// applying the rest of the change, as the kernel does when the last
// attribute of an RTM_NEWLINK fails.
type failingLinks struct {
	Links
	failMaster bool
	calls      []rtnl.Change
}

var errInjected = errors.New("injected failure")

func (f *failingLinks) SetLink(index int, ch rtnl.Change) error {
	f.calls = append(f.calls, ch)
	if f.failMaster && ch.Master != nil && *ch.Master != 0 {
		partial := ch
		partial.Master, partial.Up = nil, nil
		if err := f.Links.SetLink(index, partial); err != nil {
			return err
		}
		return errInjected
	}
	return f.Links.SetLink(index, ch)
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
	h, _ := newTestHook(t, ns, `bridge = "br0"`)
	fl := &failingLinks{Links: ns.Conn, failMaster: true}
	h.Links = fl

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
		{"lo", "is a physical device, not a TAP"},
		{"nosuch0", "no such device"},
	} {
		t.Run(tc.dev, func(t *testing.T) {
			var before linkState
			exists := ns.HasLink(tc.dev)
			if exists {
				before = observe(t, ns, tc.dev)
			}
			_, err := h.Up(tc.dev)
			if Exit(err) != 65 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Up(%s): exit %d, %v; want 65 and %q", tc.dev, Exit(err), err, tc.want)
			}
			if exists && observe(t, ns, tc.dev) != before {
				t.Fatalf("%s was touched", tc.dev)
			}
			_, err = h.Down(tc.dev)
			if tc.dev == "nosuch0" {
				if err != nil {
					t.Fatalf("Down of a missing device: %v, want success", err)
				}
			} else if Exit(err) != 65 {
				t.Fatalf("Down(%s): exit %d, %v; want 65", tc.dev, Exit(err), err)
			}
		})
	}
}

func TestAutoBridge(t *testing.T) {
	ns := nstest.New(t)
	ns.AddTAP(t, "vnet0")
	h, _ := newTestHook(t, ns, `bridge = "auto"`)

	_, err := h.Explain("vnet0")
	if Exit(err) != 69 || !strings.Contains(err.Error(), "has none") {
		t.Fatalf("no bridges: %v (exit %d), want 69", err, Exit(err))
	}
	ns.AddBridge(t, "br0")
	plan, err := h.Explain("vnet0")
	if err != nil || plan.Bridge != "br0" || !strings.Contains(plan.Reason, "only bridge") {
		t.Fatalf("one bridge: %+v, %v", plan, err)
	}
	ns.AddBridge(t, "br1")
	_, err = h.Explain("vnet0")
	if Exit(err) != 69 || !strings.Contains(err.Error(), "(br0, br1)") {
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
	plan, err = h.Explain("vnet0")
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
	plan, err := h.Explain("vnet0")
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
	h.HasNetAdmin = func() bool { return false }
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
	if Exit(err) != 77 {
		t.Errorf("Up without CAP_NET_ADMIN: exit %d (%v), want 77", Exit(err), err)
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
	h.SweepEvery = 1
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

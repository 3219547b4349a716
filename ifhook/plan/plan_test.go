package plan

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nftable"
	"golang.org/x/sys/unix"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// TestTwoNewLinksInOnePlan is the batching bug: two links made in one plan
// both have index 0 until they are made, and grouping steps by index before
// applying merged "set vx0 up" and "set br0 up" into one message for vx0.
func TestTwoNewLinksInOnePlan(t *testing.T) {
	steps := []Step{
		&AddBridge{Name: "br-a"},
		&AddBridge{Name: "br-b"},
		&SetLink{Link: New("br-a"), To: Attrs{Up: Flag(true)}, From: Attrs{Up: Flag(false)}},
		&SetLink{Link: New("br-b"), To: Attrs{Up: Flag(true)}, From: Attrs{Up: Flag(false)}},
	}
	if n := len(Batches(steps)); n != 4 {
		t.Fatalf("%d batches, want 4 (the two links are different links)", n)
	}
	m := kernel.NewModel()
	if err := (&Applier{Kernel: m}).All("test", steps, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"br-a", "br-b"} {
		if l, err := m.LinkByName(name); err != nil || !l.Up {
			t.Errorf("%s: %+v, %v; want up", name, l, err)
		}
	}
}

func TestBatchesAndDescribe(t *testing.T) {
	tap := LinkRef{Name: "vnet0", Index: 7}
	steps := []Step{
		&SetLink{Link: tap, To: Attrs{MAC: mac("fe:54:00:00:00:01")}},
		&SetLink{Link: tap, To: Attrs{MTU: 9000}},
		&SetLink{Link: tap, To: Attrs{Master: &LinkRef{Name: "br0", Index: 3}}},
		&SetLink{Link: tap, To: Attrs{Up: Flag(true)}},
		&SetSysctl{Key: kernel.IPv4Forward, Value: "1", Old: "0"},
		&SetLink{Link: LinkRef{Name: "vnet1", Index: 8}, To: Attrs{Master: &LinkRef{}}},
	}
	bs := Batches(steps)
	var got []string
	for _, b := range bs {
		got = append(got, Describe(b))
	}
	want := []string{
		"ip link set dev vnet0 address fe:54:00:00:00:01 mtu 9000 master br0 up",
		"sysctl -w net.ipv4.ip_forward=1",
		"ip link set dev vnet1 nomaster",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("batches (-want +got):\n%s", diff)
	}
}

// failing is a Model that fails chosen changes.
type failing struct {
	*kernel.Model
	setLink func(index int, ch kernel.Change) error
	addAddr error
}

func (f *failing) SetLink(index int, ch kernel.Change) error {
	if f.setLink != nil {
		if err := f.setLink(index, ch); err != nil {
			return err
		}
	}
	return f.Model.SetLink(index, ch)
}

func (f *failing) AddAddr(a kernel.Addr) error {
	if f.addAddr != nil {
		return f.addAddr
	}
	return f.Model.AddAddr(a)
}

type journal struct{ calls []string }

func (j *journal) Ahead() error         { j.calls = append(j.calls, "ahead"); return nil }
func (j *journal) Commit(r *Refs) error { j.calls = append(j.calls, "commit"); return nil }
func (j *journal) Abort(undone bool) error {
	j.calls = append(j.calls, fmt.Sprintf("abort(%v)", undone))
	return nil
}

func TestAllRollsBack(t *testing.T) {
	m := kernel.NewModel()
	tap := m.AddLink(kernel.Link{Name: "vnet0", Kind: "tun", TunType: 2, MTU: 1500, MAC: mac("aa:00:00:00:00:01")})
	before := m.Clone()
	f := &failing{Model: m, addAddr: unix.EBUSY}
	steps := []Step{
		&AddBridge{Name: "br0", Opts: kernel.BridgeOptions{MAC: mac("02:00:00:00:00:09")}},
		&SetLink{Link: New("br0"), To: Attrs{Up: Flag(true)}, From: Attrs{Up: Flag(false)}},
		&SetLink{Link: LinkRef{Name: "vnet0", Index: tap}, To: Attrs{MTU: 9000}, From: Attrs{MTU: 1500}},
		&SetLink{Link: LinkRef{Name: "vnet0", Index: tap}, To: Attrs{Master: &LinkRef{Name: "br0"}}, From: Attrs{Master: &LinkRef{}}},
		&AddAddr{Link: New("br0"), Addr: kernel.Addr{Prefix: netip.MustParsePrefix("192.0.2.1/24")}},
	}
	j := &journal{}
	err := (&Applier{Kernel: f}).All("setup br0", steps, j)
	if exit.Code(err) != 71 || !strings.Contains(err.Error(), "ip addr add 192.0.2.1/24 dev br0") {
		t.Fatalf("All = %v (exit %d), want the address step's failure, 71", err, exit.Code(err))
	}
	if diff := cmp.Diff([]string{"ahead", "abort(true)"}, j.calls); diff != "" {
		t.Errorf("journal calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before.Links(), m.Links()); diff != "" {
		t.Errorf("rollback left (-before +after):\n%s", diff)
	}
}

// TestAllRollsBackAPartialBatch: the kernel applies an RTM_NEWLINK's
// attributes in order and keeps those done when a later one fails (here
// the MTU went in, the master did not); the rollback restores all.
func TestAllRollsBackAPartialBatch(t *testing.T) {
	m := kernel.NewModel()
	br, _ := m.CreateBridge("br0", kernel.BridgeOptions{})
	tap := m.AddLink(kernel.Link{Name: "vnet0", Kind: "tun", TunType: 2, MTU: 1500})
	f := &failing{Model: m, setLink: func(index int, ch kernel.Change) error {
		if ch.Master != nil && *ch.Master == br {
			m.SetLink(index, kernel.Change{MTU: ch.MTU})
			return unix.EBUSY
		}
		return nil
	}}
	ref := LinkRef{Name: "vnet0", Index: tap}
	steps := []Step{
		&SetLink{Link: ref, To: Attrs{MTU: 9000}, From: Attrs{MTU: 1500}},
		&SetLink{Link: ref, To: Attrs{Master: &LinkRef{Name: "br0", Index: br}}, From: Attrs{Master: &LinkRef{}}},
	}
	if err := (&Applier{Kernel: f}).All("up vnet0", steps, nil); err == nil {
		t.Fatal("All succeeded")
	}
	if l, _ := m.LinkByIndex(tap); l.MTU != 1500 || l.Master != 0 {
		t.Fatalf("after rollback: %+v", l)
	}
}

func TestAllStopsOnSignal(t *testing.T) {
	m := kernel.NewModel()
	calls := 0
	stop := func() string {
		calls++
		if calls == 2 {
			return "SIGTERM"
		}
		return ""
	}
	steps := []Step{
		&AddBridge{Name: "br0"},
		&SetLink{Link: New("br0"), To: Attrs{Up: Flag(true)}, From: Attrs{Up: Flag(false)}},
		&SetSysctl{Key: kernel.IPv4Forward, Value: "1", Old: "0"},
		&AddNAT{Rule: nftable.NAT{Bridge: "br0", Subnet: netip.MustParsePrefix("192.0.2.0/24")}},
	}
	j := &journal{}
	err := (&Applier{Kernel: m, Stop: stop}).All("setup br0", steps, j)
	if exit.Code(err) != 75 || !strings.Contains(err.Error(), "interrupted by SIGTERM after 2 of 4 changes") || !strings.Contains(err.Error(), "undone") {
		t.Fatalf("All = %v", err)
	}
	if _, err := m.LinkByName("br0"); !kernel.IsNotFound(err) {
		t.Fatalf("br0 left behind: %v", err)
	}
	if diff := cmp.Diff([]string{"ahead", "abort(true)"}, j.calls); diff != "" {
		t.Errorf("journal calls (-want +got):\n%s", diff)
	}
}

func TestBestEffort(t *testing.T) {
	m := kernel.NewModel()
	tap := m.AddLink(kernel.Link{Name: "vnet0", Kind: "tun", TunType: 2, MTU: 1500, Up: true})
	ref := LinkRef{Name: "vnet0", Index: tap}
	steps := []Step{
		&DelAddr{Link: ref, Addr: kernel.Addr{Prefix: netip.MustParsePrefix("192.0.2.1/24")}}, // gone: fine
		&SetLink{Link: ref, To: Attrs{MTU: 1}},                                                // refused
		&SetLink{Link: ref, To: Attrs{Up: Flag(false)}},
		&DelLink{Link: LinkRef{Name: "gone", Index: 99}},
	}
	j := &journal{}
	err := (&Applier{Kernel: m}).BestEffort("down vnet0", steps, j)
	if err == nil || exit.Code(err) != 71 {
		t.Fatalf("BestEffort = %v", err)
	}
	if l, _ := m.LinkByIndex(tap); l.Up {
		t.Error("the step after a failing one in the same batch was not tried")
	}
	if diff := cmp.Diff([]string{"ahead", "abort(false)"}, j.calls); diff != "" {
		t.Errorf("journal calls (-want +got):\n%s", diff)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	refs := &Refs{}
	refs.Made("br0", 12)
	steps := []Recorded{
		&AddBridge{Name: "br0", Opts: kernel.BridgeOptions{MAC: mac("02:11:22:33:44:55"), MTU: 1500, STP: true, ForwardDelay: 2}},
		&SetLink{Link: LinkRef{Name: "eth0", Index: 2}, To: Attrs{Master: &LinkRef{Name: "br0"}, Up: Flag(true)}, From: Attrs{Master: &LinkRef{}, Up: Flag(false)}},
		&SetLink{Link: New("br0"), To: Attrs{MAC: mac("02:00:00:00:00:01"), MTU: 9000}, From: Attrs{MAC: mac("02:00:00:00:00:02"), MTU: 1500}},
		&DelAddr{Link: LinkRef{Name: "eth0", Index: 2}, Addr: kernel.Addr{Prefix: netip.MustParsePrefix("198.51.100.7/24"), Broadcast: netip.MustParseAddr("198.51.100.255"), Label: "eth0:1", Flags: unix.IFA_F_NOPREFIXROUTE}},
		&AddAddr{Link: New("br0"), Addr: kernel.Addr{Prefix: netip.MustParsePrefix("2001:db8::1/64"), Flags: unix.IFA_F_NODAD}},
		&DelRoute{Link: LinkRef{Name: "eth0", Index: 2}, Route: kernel.Route{Gw: netip.MustParseAddr("198.51.100.1"), Metric: 100, Table: 254, Protocol: 3}},
		&AddRoute{Link: New("br0"), Route: kernel.Route{Dst: netip.MustParsePrefix("2001:db8:1::/48"), Gw: netip.MustParseAddr("2001:db8::2"), Table: 200, IPv6: true, Flags: unix.RTNH_F_ONLINK}},
		&SetSysctl{Key: kernel.IPv6Forward, Value: "1", Old: "0"},
		&AddNAT{Rule: nftable.NAT{Bridge: "br0", Subnet: netip.MustParsePrefix("192.0.2.0/24"), OutIf: "eth0", SNATTo: netip.MustParseAddr("198.51.100.7")}},
	}
	for _, s := range steps {
		line := s.Encode(refs)
		got, err := Decode(line)
		if err != nil {
			t.Fatalf("Decode(%q): %v", line, err)
		}
		if again := got.Encode(nil); again != line && !strings.Contains(line, "br0#12") && !strings.Contains(line, "index=12") {
			t.Errorf("round trip:\n%s\n%s", line, again)
		}
		if got.String() != s.String() && !strings.Contains(line, "#12") {
			t.Errorf("decoded %q as %q", s.String(), got.String())
		}
	}
	if line := steps[0].Encode(refs); !strings.HasSuffix(line, "index=12") {
		t.Errorf("the made bridge's index is not recorded: %s", line)
	}
}

func TestDecodeRefusesWhatIfhookNeverWrites(t *testing.T) {
	for _, line := range []string{
		"",
		"rm -rf /",
		"sysctl key=net.ipv4.tcp_syncookies value=0 old=1",
		"sysctl key=net.ipv4.ip_forward value=1",
		"sysctl key=net.ipv4.ip_forward value=1 old=0 extra=1",
		"sysctl key=../../etc/passwd value=1 old=0",
		"link-set dev=../../x index=2 up=1 from.up=0",
		"link-set dev=eth0 index=2",
		"link-set dev=eth0 index=-1 up=1",
		"link-set dev=eth0 index=2 master=br0#x up=1",
		"addr-add dev=eth0 index=2 addr=nonsense",
		"addr-add dev=eth0 index=2 addr=192.0.2.1/24 label=\"a b\"",
		"addr-add dev=eth0 index=2 addr=2001:db8::1/64 brd=192.0.2.255",
		"route-add dev=eth0 index=2 dst=default gw=2001:db8::1 ipv6=0",
		"route-add dev=eth0 index=2 dst=default flags=5",
		"nat-add bridge=br0 subnet=192.0.2.1/24",
		"nat-add bridge=br0 subnet=2001:db8::/64",
		"bridge-add name=br0 mtu=70000",
		"bridge-add name=br0 name=br1",
		"bridge-add name=\"br0",
		strings.Repeat("x", 2000),
	} {
		if s, err := Decode(line); err == nil || !errors.Is(err, ErrBadRecord) {
			t.Errorf("Decode(%q) = %v, %v; want ErrBadRecord", line, s, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("sysctl key=net.ipv4.ip_forward value=1 old=0")
	f.Add(`addr-add dev=eth0 index=2 addr=192.0.2.1/24 label="eth0:1"`)
	f.Add("link-set dev=eth0 index=2 master=br0#3 from.master=- up=1 from.up=0")
	f.Add("route-del dev=eth0 index=2 dst=default gw=198.51.100.1 metric=0 table=254 proto=3 scope=0 flags=0 ipv6=0")
	f.Fuzz(func(t *testing.T, line string) {
		s, err := Decode(line)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("Decode(%q): %v does not wrap ErrBadRecord", line, err)
			}
			return
		}
		// What decodes, encodes to a line that decodes to the same step.
		again, err := Decode(s.Encode(nil))
		if err != nil {
			t.Fatalf("re-decode of %q: %v", s.Encode(nil), err)
		}
		if again.Encode(nil) != s.Encode(nil) {
			t.Fatalf("not stable: %q vs %q", s.Encode(nil), again.Encode(nil))
		}
		if ss, ok := s.(*SetSysctl); ok && !kernel.OwnedSysctl(ss.Key) {
			t.Fatalf("decoded a sysctl ifhook does not own: %q", line)
		}
	})
}

package rtnl

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// linkMsg builds an RTM_NEWLINK payload as the kernel sends it.
func linkMsg(index int32, flags uint32, build func(m *msg)) []byte {
	m := &msg{}
	m.ifinfo(index, flags, 0)
	if build != nil {
		build(m)
	}
	return m.b
}

func TestParseLink(t *testing.T) {
	p := linkMsg(7, unix.IFF_UP, func(m *msg) {
		m.str(unix.IFLA_IFNAME, "vnet0")
		m.u32(unix.IFLA_MTU, 1400)
		m.u32(unix.IFLA_MASTER, 3)
		m.attr(unix.IFLA_ADDRESS, []byte{0xfe, 0x54, 0, 1, 2, 3})
		m.attr(unix.IFLA_CARRIER, []byte{1})
		info := m.nest(unix.IFLA_LINKINFO)
		m.attr(unix.IFLA_INFO_KIND, []byte("tun"))
		data := m.nest(unix.IFLA_INFO_DATA)
		m.attr(unix.IFLA_TUN_TYPE, []byte{TunTypeTAP})
		m.end(data)
		m.attr(unix.IFLA_INFO_SLAVE_KIND, []byte("bridge"))
		sd := m.nest(unix.IFLA_INFO_SLAVE_DATA)
		m.attr(unix.IFLA_BRPORT_STATE, []byte{PortLearning})
		m.end(sd)
		m.end(info)
	})
	l, err := parseLink(p)
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "vnet0" || l.Index != 7 || !l.Up || l.MTU != 1400 || l.Master != 3 || l.MAC.String() != "fe:54:00:01:02:03" ||
		!l.Carrier || !l.IsTAP() || l.PortState != PortLearning || l.Describe() != "a TAP" {
		t.Fatalf("parseLink = %+v", l)
	}
	br, err := parseLink(linkMsg(3, 0, func(m *msg) {
		info := m.nest(unix.IFLA_LINKINFO)
		m.attr(unix.IFLA_INFO_KIND, []byte("bridge"))
		data := m.nest(unix.IFLA_INFO_DATA)
		m.u32(unix.IFLA_BR_STP_STATE, 1)
		m.u32(unix.IFLA_BR_FORWARD_DELAY, 1500)
		m.end(data)
		m.end(info)
	}))
	if err != nil || !br.IsBridge() || !br.STP || br.ForwardDelay != 1500 || br.PortState != -1 {
		t.Fatalf("bridge: %+v, %v", br, err)
	}
	if _, err := parseLink([]byte{1, 2, 3}); err == nil {
		t.Error("a short message parsed")
	}
	// Truncated attributes are ignored, not read past.
	trunc := append(linkMsg(1, 0, nil), 0xff, 0x00, 0x03, 0x00)
	if _, err := parseLink(trunc); err != nil {
		t.Errorf("truncated attribute: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		l    Link
		want string
	}{
		{Link{Kind: "tun", TunType: TunTypeTUN}, "a TUN device (layer 3)"},
		{Link{}, "a physical device"},
		{Link{Kind: "veth"}, "a veth"},
		{Link{Kind: "wireguard"}, `a "wireguard" device`},
		{Link{Type: unix.ARPHRD_LOOPBACK}, "the loopback device"},
		{Link{Type: unix.ARPHRD_ETHER}, "a physical device"},
		{Link{Type: unix.ARPHRD_IPGRE}, "a device of hardware type 778"},
	} {
		if got := c.l.Describe(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.l, got, c.want)
		}
	}
}

func TestDefaultRouteLinks(t *testing.T) {
	route := func(dstLen, table, typ byte, build func(m *msg)) []byte {
		m := &msg{}
		m.b = append(m.b, unix.AF_INET, dstLen, 0, 0, table, unix.RTPROT_BOOT, 0, typ, 0, 0, 0, 0)
		if build != nil {
			build(m)
		}
		return m.b
	}
	oif := func(i uint32) func(m *msg) { return func(m *msg) { m.u32(unix.RTA_OIF, i) } }
	for _, c := range []struct {
		name string
		p    []byte
		want []int
	}{
		{"default via dev 4", route(0, unix.RT_TABLE_MAIN, unix.RTN_UNICAST, oif(4)), []int{4}},
		{"not default", route(24, unix.RT_TABLE_MAIN, unix.RTN_UNICAST, oif(4)), nil},
		{"other table", route(0, 100, unix.RTN_UNICAST, oif(4)), nil},
		{"table in RTA_TABLE", route(0, unix.RT_TABLE_COMPAT, unix.RTN_UNICAST, func(m *msg) { m.u32(unix.RTA_TABLE, unix.RT_TABLE_MAIN); m.u32(unix.RTA_OIF, 5) }), []int{5}},
		{"unreachable", route(0, unix.RT_TABLE_MAIN, unix.RTN_UNREACHABLE, oif(4)), nil},
		{"multipath", route(0, unix.RT_TABLE_MAIN, unix.RTN_UNICAST, func(m *msg) {
			nh := func(i uint32) []byte {
				b := make([]byte, unix.SizeofRtNexthop)
				ne.PutUint16(b[0:], unix.SizeofRtNexthop)
				ne.PutUint32(b[4:], i)
				return b
			}
			m.attr(unix.RTA_MULTIPATH, append(nh(6), nh(7)...))
		}), []int{6, 7}},
	} {
		got := defaultRouteLinks(c.p)
		if len(got) != len(c.want) || (len(got) > 0 && (got[0] != c.want[0] || got[len(got)-1] != c.want[len(c.want)-1])) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAckError(t *testing.T) {
	payload := make([]byte, 4)
	ne.PutUint32(payload, uint32(0))
	if err := ackError(payload, 0); err != nil {
		t.Errorf("errno 0: %v", err)
	}
	e := int32(-int32(unix.EBUSY))
	ne.PutUint32(payload, uint32(e))
	if err := ackError(payload, 0); !errors.Is(err, unix.EBUSY) {
		t.Errorf("EBUSY: %v", err)
	}
	// Extended ACK: the echoed header (capped), then NLMSGERR_ATTR_MSG.
	m := &msg{b: append(append([]byte{}, payload...), make([]byte, unix.SizeofNlMsghdr)...)}
	m.str(unix.NLMSGERR_ATTR_MSG, "Device is busy")
	err := ackError(m.b, unix.NLM_F_ACK_TLVS|unix.NLM_F_CAPPED)
	if !errors.Is(err, unix.EBUSY) || err.Error() != "device or resource busy (Device is busy)" {
		t.Errorf("extended ACK: %v", err)
	}
}

// TestConnInNamespace checks the requests against a real kernel, in a
// namespace (root).
func TestConnInNamespace(t *testing.T) {
	if unix.Geteuid() != 0 {
		// nstest cannot be used here (it imports this package).
		if os.Getenv("CI") != "" {
			t.Fatal("needs root to make a network namespace, and CI is set")
		}
		t.Skip("needs root to make a network namespace; run as root")
	}
	var fd netns.NsHandle
	done := make(chan error, 1)
	go func() {
		// A throwaway thread: unshare moves it, and it is never reused.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		var err error
		fd, err = netns.Get()
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	c, err := OpenAt(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateBridge("br0", BridgeOptions{STP: true, ForwardDelay: 4, MTU: 1400}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateBridge("br0", BridgeOptions{}); !errors.Is(err, unix.EEXIST) {
		t.Errorf("second CreateBridge: %v, want EEXIST", err)
	}
	br, err := c.LinkByName("br0")
	if err != nil || !br.IsBridge() || !br.STP || br.ForwardDelay != 400 || br.MTU != 1400 {
		t.Fatalf("br0: %+v, %v", br, err)
	}
	h, err := c.Handle()
	if err != nil {
		t.Fatal(err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "v0"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "v1"}); err != nil {
		t.Fatal(err)
	}
	v0, err := c.LinkByName("v0")
	if err != nil {
		t.Fatal(err)
	}
	master, up := br.Index, true
	if err := c.SetLink(v0.Index, Change{MTU: 1300, Master: &master, Up: &up}); err != nil {
		t.Fatal(err)
	}
	if ports, err := c.Ports(br.Index); err != nil || len(ports) != 1 || ports[0].Name != "v0" || ports[0].MTU != 1300 || !ports[0].Up {
		t.Fatalf("Ports = %+v, %v", ports, err)
	}
	if brs, err := c.Bridges(); err != nil || len(brs) != 1 {
		t.Fatalf("Bridges = %+v, %v", brs, err)
	}
	if links, err := c.Links(); err != nil || len(links) != 4 { // lo, br0, v0, v1
		t.Fatalf("Links = %d, %v", len(links), err)
	}
	if _, err := c.LinkByName("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LinkByName(nosuch): %v", err)
	}
	if err := c.SetLink(9999, Change{Up: &up}); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetLink(9999): %v", err)
	}
	if err := c.DeleteLink(br.Index); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteLink(br.Index); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteLink: %v", err)
	}
}

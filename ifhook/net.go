package ifhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/ifhook/ifhook/ifhook/nat"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Net is the kernel as bridge provisioning sees it: links, addresses,
// routes, sysctls and ifhook's NAT table, all in one network namespace.
// NewNet returns the real one; tests wrap it to inject failures.
type Net interface {
	Links
	Ports(master int) ([]*rtnl.Link, error)
	CreateBridge(name string, o rtnl.BridgeOptions) error
	DeleteLink(index int) error
	Addrs(index int) ([]Addr, error) // index 0: every link's
	AddAddr(a Addr) error
	DelAddr(a Addr) error
	Routes(index int) ([]Route, error)
	AddRoute(r Route) error
	DelRoute(r Route) error
	Sysctl(key string) (string, error)
	SetSysctl(key, value string) error
	NAT() (NATTable, error)
	// ForwardDropChains names the nftables chains on the forward hook
	// whose policy is drop ("ip filter FORWARD"), as Docker leaves them.
	ForwardDropChains() ([]string, error)
	// IsWireless reports whether the link is a Wi-Fi interface.
	IsWireless(name string) bool
}

// NATTable is ifhook's nftables table (package nat).
type NATTable interface {
	HasBridge(bridge string) (bool, error)
	Has(r nat.Rule) (bool, error)
	Ensure(r nat.Rule) (bool, error)
	Delete(bridge string) (bool, error)
}

// Addr is an address on a link.
type Addr struct {
	Index  int
	Prefix netip.Prefix // the address with its prefix length: 192.168.1.1/24
	// Dynamic addresses (DHCP leases with lifetimes, SLAAC) are not ours
	// to move: their owner renews them where they are.
	Dynamic bool
}

// Route is a route through a link, as much of it as moving it takes.
type Route struct {
	Index    int
	Dst      netip.Prefix // invalid: the default route
	Gw       netip.Addr
	Src      netip.Addr
	Metric   int
	Table    int
	Protocol int
	Scope    int
	IPv6     bool
}

// String renders the route as ip(8) shows it.
func (r Route) String() string {
	var b strings.Builder
	if r.Dst.IsValid() {
		b.WriteString(r.Dst.String())
	} else {
		b.WriteString("default")
	}
	if r.Gw.IsValid() {
		fmt.Fprintf(&b, " via %s", r.Gw)
	}
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " src %s", r.Src)
	}
	if r.Protocol != 0 && r.Protocol != unix.RTPROT_BOOT {
		fmt.Fprintf(&b, " proto %d", r.Protocol)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	return b.String()
}

// Encode renders the route for a state record: fields "key=value" joined
// by spaces.
func (r Route) Encode() string {
	f := []string{"dst=default"}
	if r.Dst.IsValid() {
		f[0] = "dst=" + r.Dst.String()
	}
	if r.Gw.IsValid() {
		f = append(f, "gw="+r.Gw.String())
	}
	if r.Src.IsValid() {
		f = append(f, "src="+r.Src.String())
	}
	f = append(f, "metric="+strconv.Itoa(r.Metric), "table="+strconv.Itoa(r.Table),
		"proto="+strconv.Itoa(r.Protocol), "scope="+strconv.Itoa(r.Scope), "ipv6="+strconv.FormatBool(r.IPv6))
	return strings.Join(f, " ")
}

// DecodeRoute parses Encode's output.
func DecodeRoute(s string) (Route, error) {
	var r Route
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		var err error
		switch k {
		case "dst":
			if v != "default" {
				r.Dst, err = netip.ParsePrefix(v)
			}
		case "gw":
			r.Gw, err = netip.ParseAddr(v)
		case "src":
			r.Src, err = netip.ParseAddr(v)
		case "metric":
			r.Metric, err = strconv.Atoi(v)
		case "table":
			r.Table, err = strconv.Atoi(v)
		case "proto":
			r.Protocol, err = strconv.Atoi(v)
		case "scope":
			r.Scope, err = strconv.Atoi(v)
		case "ipv6":
			r.IPv6, err = strconv.ParseBool(v)
		}
		if err != nil {
			return r, fmt.Errorf("route %q: %s: %w", s, k, err)
		}
	}
	return r, nil
}

// kernelNet is the real Net: an rtnl.Conn, the vishvananda/netlink Handle
// in the same namespace for addresses and routes, /proc/sys read and
// written on a thread in the namespace, and nftables opened on first use.
type kernelNet struct {
	*rtnl.Conn
	nat *nat.Table
}

// NewNet returns the kernel behind conn as a Net.
func NewNet(conn *rtnl.Conn) Net { return &kernelNet{Conn: conn} }

func (k *kernelNet) handle() (*netlink.Handle, error) { return k.Conn.Handle() }

func toAddr(a netlink.Addr, index int) (Addr, bool) {
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return Addr{}, false
	}
	ip = ip.Unmap()
	ones, _ := a.Mask.Size()
	return Addr{Index: index, Prefix: netip.PrefixFrom(ip, ones),
		Dynamic: a.Flags&unix.IFA_F_PERMANENT == 0}, true
}

func (k *kernelNet) Addrs(index int) ([]Addr, error) {
	h, err := k.handle()
	if err != nil {
		return nil, err
	}
	var link netlink.Link
	if index != 0 {
		link = &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
	}
	list, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	var out []Addr
	for _, a := range list {
		if a.Scope != unix.RT_SCOPE_UNIVERSE {
			continue // link-local and host addresses stay where they are
		}
		if ad, ok := toAddr(a, a.LinkIndex); ok {
			out = append(out, ad)
		}
	}
	return out, nil
}

func nlAddr(a Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), a.Prefix.Addr().BitLen())}}
}

func device(index int) netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
}

func (k *kernelNet) AddAddr(a Addr) error {
	h, err := k.handle()
	if err != nil {
		return err
	}
	na := nlAddr(a)
	if a.Prefix.Addr().Is6() {
		// The address moves or is the guests' gateway: usable now, not
		// after duplicate address detection.
		na.Flags = unix.IFA_F_NODAD
	}
	return h.AddrAdd(device(a.Index), na)
}

func (k *kernelNet) DelAddr(a Addr) error {
	h, err := k.handle()
	if err != nil {
		return err
	}
	return h.AddrDel(device(a.Index), nlAddr(a))
}

func (k *kernelNet) Routes(index int) ([]Route, error) {
	h, err := k.handle()
	if err != nil {
		return nil, err
	}
	filter := &netlink.Route{LinkIndex: index, Table: unix.RT_TABLE_UNSPEC}
	list, err := h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, err
	}
	var out []Route
	for _, r := range list {
		if r.Type != unix.RTN_UNICAST {
			continue
		}
		rt := Route{Index: r.LinkIndex, Metric: r.Priority, Table: r.Table, Protocol: int(r.Protocol), Scope: int(r.Scope), IPv6: r.Family == unix.AF_INET6}
		if r.Dst != nil {
			ip, _ := netip.AddrFromSlice(r.Dst.IP)
			ones, _ := r.Dst.Mask.Size()
			rt.Dst = netip.PrefixFrom(ip.Unmap(), ones)
			if ones == 0 {
				rt.Dst = netip.Prefix{}
			}
		}
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			rt.Gw = gw.Unmap()
		}
		if src, ok := netip.AddrFromSlice(r.Src); ok {
			rt.Src = src.Unmap()
		}
		out = append(out, rt)
	}
	return out, nil
}

func nlRoute(r Route) *netlink.Route {
	nr := &netlink.Route{LinkIndex: r.Index, Priority: r.Metric, Table: r.Table, Protocol: netlink.RouteProtocol(r.Protocol), Scope: netlink.Scope(r.Scope)}
	if r.Dst.IsValid() {
		nr.Dst = &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())}
	} else if r.IPv6 {
		nr.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	if r.Gw.IsValid() {
		nr.Gw = r.Gw.AsSlice()
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.IPv6 {
		nr.Family = unix.AF_INET6
	} else {
		nr.Family = unix.AF_INET
	}
	return nr
}

func (k *kernelNet) AddRoute(r Route) error {
	h, err := k.handle()
	if err != nil {
		return err
	}
	return h.RouteAdd(nlRoute(r))
}

func (k *kernelNet) DelRoute(r Route) error {
	h, err := k.handle()
	if err != nil {
		return err
	}
	return h.RouteDel(nlRoute(r))
}

func sysctlPath(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

// Sysctl reads /proc/sys/KEY (dotted) from inside the namespace: /proc/sys/net
// answers for the namespace of the thread that opens it.
func (k *kernelNet) Sysctl(key string) (string, error) {
	var v string
	err := k.Conn.Do(func() error {
		b, err := os.ReadFile(sysctlPath(key))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

func (k *kernelNet) SetSysctl(key, value string) error {
	return k.Conn.Do(func() error {
		return os.WriteFile(sysctlPath(key), []byte(value+"\n"), 0o644)
	})
}

func (k *kernelNet) nsFD() int {
	if ns := k.Conn.Namespace(); ns.IsOpen() {
		return int(ns)
	}
	return -1
}

func (k *kernelNet) ForwardDropChains() ([]string, error) {
	return nat.ForwardDropChains(k.nsFD())
}

// siocgiwname is SIOCGIWNAME from linux/wireless.h.
const siocgiwname = 0x8B01

// IsWireless asks the wireless extensions for the link's protocol name
// (SIOCGIWNAME), which only Wi-Fi drivers answer; sysfs would tell too, but
// sysfs shows the namespace it was mounted in, not ours.
func (k *kernelNet) IsWireless(name string) bool {
	wireless := false
	_ = k.Conn.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		// struct iwreq is an ifreq-sized union; the name comes back in it.
		wireless = unix.IoctlIfreq(fd, siocgiwname, ifr) == nil
		return nil
	})
	return wireless
}

func (k *kernelNet) NAT() (NATTable, error) {
	if k.nat != nil {
		return k.nat, nil
	}
	t, err := nat.Open(k.nsFD())
	if err != nil {
		return nil, err
	}
	k.nat = t
	return t, nil
}

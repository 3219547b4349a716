package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/ifhook/ifhook/ifhook/dhcp"
	"github.com/ifhook/ifhook/ifhook/dnsmasq"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"github.com/ifhook/ifhook/ifhook/nftable"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// maxDumpAttempts bounds the retries of a dump the kernel reports as
// interrupted (the table changed while it was read): a partial list of the
// uplink's routes would silently leave routes behind when they move.
const maxDumpAttempts = 5

// Real is the kernel of one network namespace.
type Real struct {
	conn    *rtnl.Conn
	own     bool // Close closes conn
	nat     *nftable.Table
	servers *dnsmasq.Runner
}

// SetServers gives the kernel the runner of the bridges' DHCP and DNS
// servers; it starts them inside the kernel's namespace.
func (k *Real) SetServers(r *dnsmasq.Runner) {
	r.InNS = k.conn.Do
	k.servers = r
}

func (k *Real) runner() (*dnsmasq.Runner, error) {
	if k.servers == nil {
		return nil, ErrNoServers
	}
	return k.servers, nil
}

func (k *Real) DHCPEnv() DHCPEnv {
	r, err := k.runner()
	if err != nil {
		return DHCPEnv{Missing: err}
	}
	env := DHCPEnv{Layout: r.Layout, User: r.UserName()}
	if r.Binary == "" {
		if bin, err := dnsmasq.Find(); err != nil {
			env.Missing = err
		} else {
			r.Binary = bin
		}
	}
	return env
}

func (k *Real) DHCPServer(bridge string, full bool) (Server, error) {
	r, err := k.runner()
	if err != nil {
		return Server{Bridge: bridge}, err
	}
	return r.Observe(bridge, full)
}

// StartDHCPServer and StopDHCPServer are changes like any other: the
// killpoint build can stop the process before or after each.
func (k *Real) StartDHCPServer(bridge string, conf []byte) error {
	r, err := k.runner()
	if err != nil {
		return err
	}
	return k.change(func() error { return r.Start(bridge, conf) })
}

func (k *Real) StopDHCPServer(bridge string) error {
	r, err := k.runner()
	if err != nil {
		return err
	}
	return k.change(func() error { return r.Stop(bridge) })
}

func (k *Real) DHCPHost(bridge, tap string) (dhcp.Entry, bool, error) {
	r, err := k.runner()
	if err != nil {
		return dhcp.Entry{}, false, err
	}
	return r.Host(bridge, tap)
}

func (k *Real) SetDHCPHost(bridge, tap string, e dhcp.Entry) error {
	r, err := k.runner()
	if err != nil {
		return err
	}
	return k.change(func() error { return r.SetHost(bridge, tap, e) })
}

func (k *Real) DelDHCPHost(bridge, tap string) error {
	r, err := k.runner()
	if err != nil {
		return err
	}
	return k.change(func() error { return r.DelHost(bridge, tap) })
}

func (k *Real) DHCPHosts(bridge string) (map[string]dhcp.Entry, error) {
	r, err := k.runner()
	if err != nil {
		return nil, err
	}
	hosts, _, err := r.Hosts(bridge)
	return hosts, err
}

func (k *Real) DHCPLeases(bridge string) ([]dhcp.Lease, []string, error) {
	r, err := k.runner()
	if err != nil {
		return nil, nil, err
	}
	return r.Leases(bridge)
}

func (k *Real) ReleaseDHCP(bridge string, rel Release) error {
	r, err := k.runner()
	if err != nil {
		return err
	}
	return r.Release(bridge, rel)
}

var _ Kernel = (*Real)(nil)

// Open returns the kernel of the calling process's network namespace.
func Open() (*Real, error) { return OpenAt(netns.None()) }

// OpenAt returns the kernel of namespace ns, which the caller keeps open.
func OpenAt(ns netns.NsHandle) (*Real, error) {
	conn, err := rtnl.OpenAt(ns)
	if err != nil {
		return nil, err
	}
	return &Real{conn: conn, own: true}, nil
}

// New returns the kernel behind an open rtnl connection, which the caller
// keeps and closes.
func New(conn *rtnl.Conn) *Real { return &Real{conn: conn} }

// Close releases the connections.
func (k *Real) Close() {
	if k.own {
		k.conn.Close()
	}
}

// Conn returns the rtnl connection (for tests and the bench).
func (k *Real) Conn() *rtnl.Conn { return k.conn }

// change runs one change to the kernel. The killpoint build adds a hook
// here, so tests can kill the process before or after each change in turn.
func (k *Real) change(f func() error) error {
	if killpoint != nil {
		killpoint(false)
	}
	err := f()
	if killpoint != nil && err == nil {
		killpoint(true)
	}
	return err
}

func (k *Real) LinkByName(name string) (*Link, error)       { return k.conn.LinkByName(name) }
func (k *Real) LinkByIndex(index int) (*Link, error)        { return k.conn.LinkByIndex(index) }
func (k *Real) Bridges() ([]*Link, error)                   { return k.conn.Bridges() }
func (k *Real) Ports(master int) ([]*Link, error)           { return k.conn.Ports(master) }
func (k *Real) DefaultRouteLinks(family int) ([]int, error) { return k.conn.DefaultRouteLinks(family) }

// LearnedMACs dumps the namespace's bridge forwarding entries and keeps
// master's dynamic ones (netlink.Handle has no master filter for the
// request; the kernel reports each entry's master).
func (k *Real) LearnedMACs(master int) ([]FDBEntry, error) {
	h, err := k.handle()
	if err != nil {
		return nil, err
	}
	list, err := retry(func() ([]netlink.Neigh, error) { return h.NeighList(0, unix.AF_BRIDGE) })
	if err != nil {
		return nil, err
	}
	var out []FDBEntry
	for _, n := range list {
		if n.MasterIndex != master || n.LinkIndex == master || n.State&(unix.NUD_PERMANENT|unix.NUD_NOARP) != 0 || len(n.HardwareAddr) != 6 {
			continue
		}
		out = append(out, FDBEntry{MAC: slices.Clone(n.HardwareAddr), Port: n.LinkIndex})
	}
	return out, nil
}

func (k *Real) SetLink(index int, ch Change) error {
	return k.change(func() error { return k.conn.SetLink(index, ch) })
}

func (k *Real) CreateBridge(name string, o BridgeOptions) (int, error) {
	if err := k.change(func() error { return k.conn.CreateBridge(name, o) }); err != nil {
		return 0, err
	}
	l, err := k.conn.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("look up new bridge %s: %w", name, err)
	}
	return l.Index, nil
}

func (k *Real) DeleteLink(index int) error {
	return k.change(func() error { return k.conn.DeleteLink(index) })
}

func (k *Real) handle() (*netlink.Handle, error) { return k.conn.Handle() }

// retry runs a dump until the kernel does not report it interrupted.
func retry[T any](dump func() ([]T, error)) ([]T, error) {
	var err error
	for range maxDumpAttempts {
		var list []T
		list, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return list, err
		}
	}
	return nil, fmt.Errorf("%w %d times in a row", err, maxDumpAttempts)
}

func toAddr(a netlink.Addr) (Addr, bool) {
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return Addr{}, false
	}
	ip = ip.Unmap()
	ones, _ := a.Mask.Size()
	out := Addr{Index: a.LinkIndex, Prefix: netip.PrefixFrom(ip, ones), Flags: uint32(a.Flags), Scope: a.Scope,
		Dynamic: a.Flags&unix.IFA_F_PERMANENT == 0 && a.ValidLft > 0 && uint32(a.ValidLft) != ^uint32(0)}
	if ip.Is4() {
		if b, ok := netip.AddrFromSlice(a.Broadcast); ok && !b.Unmap().IsUnspecified() {
			out.Broadcast = b.Unmap()
		}
		out.Label = a.Label
	}
	return out, true
}

// Addrs lists global addresses: link-local and host addresses stay where
// they are, whatever ifhook does.
func (k *Real) Addrs(index int) ([]Addr, error) {
	h, err := k.handle()
	if err != nil {
		return nil, err
	}
	var link netlink.Link
	if index != 0 {
		link = device(index)
	}
	list, err := retry(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	var out []Addr
	for _, a := range list {
		if a.Scope != unix.RT_SCOPE_UNIVERSE {
			continue
		}
		if ad, ok := toAddr(a); ok {
			out = append(out, ad)
		}
	}
	return out, nil
}

func nlAddr(a Addr) *netlink.Addr {
	na := &netlink.Addr{IPNet: &net.IPNet{IP: a.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), a.Prefix.Addr().BitLen())},
		Flags: int(a.Flags & Restorable), Scope: a.Scope, Label: a.Label}
	if a.Broadcast.IsValid() {
		na.Broadcast = a.Broadcast.AsSlice()
	} else if a.Prefix.Addr().Is4() {
		// Without one, netlink.AddrAdd computes a broadcast address; an
		// address restored must come back as it was, without one.
		na.Broadcast = net.IPv4zero.To4()
	}
	return na
}

func device(index int) netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
}

func (k *Real) AddAddr(a Addr) error {
	h, err := k.handle()
	if err != nil {
		return err
	}
	return k.change(func() error { return h.AddrAdd(device(a.Index), nlAddr(a)) })
}

func (k *Real) DelAddr(a Addr) error {
	h, err := k.handle()
	if err != nil {
		return err
	}
	return k.change(func() error { return h.AddrDel(device(a.Index), nlAddr(a)) })
}

func (k *Real) Routes(index int) ([]Route, error) {
	h, err := k.handle()
	if err != nil {
		return nil, err
	}
	filter := &netlink.Route{LinkIndex: index, Table: unix.RT_TABLE_UNSPEC}
	list, err := retry(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, err
	}
	var out []Route
	for _, r := range list {
		if r.Type != unix.RTN_UNICAST || len(r.MultiPath) > 0 {
			continue
		}
		rt := Route{Index: r.LinkIndex, Metric: r.Priority, Table: r.Table, Protocol: int(r.Protocol),
			Scope: int(r.Scope), Flags: r.Flags & unix.RTNH_F_ONLINK, IPv6: r.Family == unix.AF_INET6}
		if r.Dst != nil {
			ip, _ := netip.AddrFromSlice(r.Dst.IP)
			ones, _ := r.Dst.Mask.Size()
			if ones != 0 {
				rt.Dst = netip.PrefixFrom(ip.Unmap(), ones)
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
	nr := &netlink.Route{LinkIndex: r.Index, Priority: r.Metric, Table: r.Table, Protocol: netlink.RouteProtocol(r.Protocol),
		Scope: netlink.Scope(r.Scope), Flags: r.Flags, Type: unix.RTN_UNICAST}
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

func (k *Real) AddRoute(r Route) error {
	h, err := k.handle()
	if err != nil {
		return err
	}
	return k.change(func() error { return h.RouteAdd(nlRoute(r)) })
}

func (k *Real) DelRoute(r Route) error {
	h, err := k.handle()
	if err != nil {
		return err
	}
	return k.change(func() error { return h.RouteDel(nlRoute(r)) })
}

// maxSysctl bounds what a sysctl read returns: forwarding is one digit.
const maxSysctl = 4096

func sysctlPath(key string) (string, error) {
	if key == "" || strings.Contains(key, "/") || strings.Contains(key, "..") || !strings.HasPrefix(key, "net.") {
		return "", fmt.Errorf("sysctl %q: not a key of net.*", key)
	}
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/"), nil
}

// Sysctl reads /proc/sys/KEY inside the namespace: /proc/sys/net answers for
// the namespace of the thread that opens it.
func (k *Real) Sysctl(key string) (string, error) {
	path, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	var v string
	err = k.conn.Do(func() error {
		b, err := rawfile.Read(path, maxSysctl)
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

func (k *Real) SetSysctl(key, value string) error {
	path, err := sysctlPath(key)
	if err != nil {
		return err
	}
	return k.change(func() error {
		return k.conn.Do(func() error { return rawfile.WriteExisting(path, []byte(value+"\n")) })
	})
}

func (k *Real) nsFD() int {
	if ns := k.conn.Namespace(); ns.IsOpen() {
		return int(ns)
	}
	return -1
}

func (k *Real) table() (*nftable.Table, error) {
	if k.nat != nil {
		return k.nat, nil
	}
	t, err := nftable.Open(k.nsFD())
	if err != nil {
		return nil, err
	}
	k.nat = t
	return t, nil
}

func (k *Real) NATRules(bridge string) ([]nftable.NAT, error) {
	t, err := k.table()
	if err != nil {
		return nil, err
	}
	return t.List(bridge)
}

func (k *Real) HasNATTable() (bool, error) {
	t, err := k.table()
	if err != nil {
		return false, err
	}
	return t.Exists()
}

func (k *Real) AddNAT(r nftable.NAT) error {
	t, err := k.table()
	if err != nil {
		return err
	}
	has, err := t.Has(r)
	if err != nil || has {
		return err
	}
	return k.change(func() error { return t.Add(r) })
}

func (k *Real) DelNAT(r nftable.NAT) error {
	t, err := k.table()
	if err != nil {
		return err
	}
	has, err := t.Has(r)
	if err != nil || !has {
		return err
	}
	return k.change(func() error { return t.Delete(r) })
}

func (k *Real) HasServices(bridge string) (bool, error) {
	t, err := k.table()
	if err != nil {
		return false, err
	}
	return t.HasServices(nftable.Services{Bridge: bridge})
}

func (k *Real) AddServices(s nftable.Services) error {
	t, err := k.table()
	if err != nil {
		return err
	}
	has, err := t.HasServices(s)
	if err != nil || has {
		return err
	}
	return k.change(func() error { return t.AddServices(s) })
}

func (k *Real) DelServices(s nftable.Services) error {
	t, err := k.table()
	if err != nil {
		return err
	}
	bridges, err := t.ServicesBridges()
	if err != nil || !slices.Contains(bridges, s.Bridge) {
		return err
	}
	return k.change(func() error { return t.DeleteServices(s) })
}

func (k *Real) ForwardDropChains() ([]string, error) { return nftable.ForwardDropChains(k.nsFD()) }

func (k *Real) InputDropChains() ([]string, error) {
	return nftable.DropChains(k.nsFD(), nftable.HookInput)
}

// siocgiwname is SIOCGIWNAME from linux/wireless.h.
const siocgiwname = 0x8B01

// IsWireless asks the wireless extensions for the link's protocol name
// (SIOCGIWNAME), which only Wi-Fi drivers answer; sysfs would tell too, but
// sysfs shows the namespace it was mounted in, not ours.
func (k *Real) IsWireless(name string) bool {
	wireless := false
	_ = k.conn.Do(func() error {
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

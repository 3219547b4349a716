// Package kernel is ifhook's boundary with the kernel's network state: links,
// addresses, routes, sysctls and ifhook's own nftables table, all in one
// network namespace.
//
// The role interfaces (Links, Addrs, Routes, Sysctls, NAT, Probe, Servers)
// say what a part of ifhook touches; Kernel is all of them. Servers are the
// one part that is not the kernel's: the DHCP and DNS servers (dnsmasq) of
// the bridges, which run in the namespace and which plans start and stop
// like any other change. Two implementations exist:
//
//   - Real, the kernel itself: links through package rtnl (one socket, one
//     round trip per request, and what vishvananda/netlink v1.3.1 cannot
//     express: a TAP's MAC, MTU, master and up state in one RTM_NEWLINK, a
//     bridge created with its STP settings), addresses and routes through
//     vishvananda/netlink (every dump retried while the kernel reports it
//     interrupted), /proc/sys on a thread inside the namespace, and package
//     nat for nftables;
//   - Model, an in-memory copy of the part of that state a plan needs. Planning
//     reads a Model that Observe filled from the kernel, which keeps planning
//     pure and testable without root; a plan is checked by applying it to a
//     copy of the Model; and tests use a Model as the kernel itself.
package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/ifhook/ifhook/ifhook/nftable"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"golang.org/x/sys/unix"
)

// Link is what ifhook knows about one link (plain data, see rtnl.Link).
type Link = rtnl.Link

// Change is a set of changes to one link, sent as one RTM_NEWLINK.
type Change = rtnl.Change

// BridgeOptions are the settings a bridge is created with.
type BridgeOptions = rtnl.BridgeOptions

// ErrNotFound is returned (wrapped) when a link does not exist.
var ErrNotFound = rtnl.ErrNotFound

// ErrNotObserved is returned by a Model asked about what it was not filled
// with: a planner that asks beyond its observation is a bug, not an empty
// answer.
var ErrNotObserved = errors.New("not observed")

// Addr is an address on a link, with what restoring it exactly takes.
type Addr struct {
	Index  int
	Prefix netip.Prefix // the address with its prefix length: 192.168.1.1/24
	// Flags are the IFA_F_* flags the kernel reports; Restorable says
	// which of them an RTM_NEWADDR can set.
	Flags     uint32
	Scope     int
	Label     string     // IPv4 only: "eth0", "eth0:1"; "" for none
	Broadcast netip.Addr // IPv4 only; invalid for none
	// Dynamic addresses have a finite valid lifetime: a DHCP lease or a
	// SLAAC address, renewed by their owner where they are.
	Dynamic bool
}

// Restorable is the part of Flags an RTM_NEWADDR sets.
const Restorable = unix.IFA_F_NODAD | unix.IFA_F_NOPREFIXROUTE | unix.IFA_F_MANAGETEMPADDR | unix.IFA_F_HOMEADDRESS

// String renders the address as `ip addr add` takes it.
func (a Addr) String() string {
	var b strings.Builder
	b.WriteString(a.Prefix.String())
	if a.Broadcast.IsValid() {
		b.WriteString(" brd " + a.Broadcast.String())
	}
	switch a.Scope {
	case unix.RT_SCOPE_UNIVERSE:
	case unix.RT_SCOPE_LINK:
		b.WriteString(" scope link")
	case unix.RT_SCOPE_HOST:
		b.WriteString(" scope host")
	default:
		fmt.Fprintf(&b, " scope %d", a.Scope)
	}
	if a.Flags&unix.IFA_F_NODAD != 0 {
		b.WriteString(" nodad")
	}
	if a.Flags&unix.IFA_F_NOPREFIXROUTE != 0 {
		b.WriteString(" noprefixroute")
	}
	if a.Flags&unix.IFA_F_MANAGETEMPADDR != 0 {
		b.WriteString(" mngtmpaddr")
	}
	if a.Flags&unix.IFA_F_HOMEADDRESS != 0 {
		b.WriteString(" home")
	}
	if a.Label != "" {
		b.WriteString(" label " + a.Label)
	}
	return b.String()
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
	Flags    int // RTNH_F_ONLINK
	IPv6     bool
}

// String renders the route as `ip route add` takes it.
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
	if r.Scope != 0 && r.Scope != unix.RT_SCOPE_UNIVERSE {
		fmt.Fprintf(&b, " scope %d", r.Scope)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Flags&unix.RTNH_F_ONLINK != 0 {
		b.WriteString(" onlink")
	}
	return b.String()
}

// Same reports whether two routes are the same entry of the routing table,
// as the kernel keys it: family, table, destination and metric.
func (r Route) Same(o Route) bool {
	return r.IPv6 == o.IPv6 && tableOf(r) == tableOf(o) && r.Dst == o.Dst && r.Metric == o.Metric
}

func tableOf(r Route) int {
	if r.Table == 0 {
		return unix.RT_TABLE_MAIN
	}
	return r.Table
}

// Links reads and changes the link table.
type Links interface {
	LinkByName(name string) (*Link, error)
	LinkByIndex(index int) (*Link, error)
	Bridges() ([]*Link, error)
	Ports(master int) ([]*Link, error)
	// DefaultRouteLinks returns the links carrying a default route of the
	// main table, for one family (unix.AF_INET, unix.AF_INET6).
	DefaultRouteLinks(family int) ([]int, error)
	// LearnedMACs lists the MACs bridge master learned on its ports
	// (the dynamic entries of its forwarding database, RTM_GETNEIGH
	// AF_BRIDGE): who sends from behind which port. Local and static
	// entries are left out.
	LearnedMACs(master int) ([]FDBEntry, error)
	// SetLink applies a change to one link in one message.
	SetLink(index int, ch Change) error
	// CreateBridge makes a bridge, down, and returns its index.
	CreateBridge(name string, o BridgeOptions) (int, error)
	DeleteLink(index int) error
}

// FDBEntry is one MAC a bridge learned: frames from MAC came in on Port.
type FDBEntry struct {
	MAC  net.HardwareAddr
	Port int // the port's index
}

// Addrs reads and changes addresses (scope universe and link).
type Addrs interface {
	// Addrs lists the addresses of one link, or of every link with 0.
	Addrs(index int) ([]Addr, error)
	AddAddr(a Addr) error
	DelAddr(a Addr) error
}

// Routes reads and changes routes of every table.
type Routes interface {
	// Routes lists the unicast routes through one link.
	Routes(index int) ([]Route, error)
	AddRoute(r Route) error
	DelRoute(r Route) error
}

// Sysctls reads and writes /proc/sys/net of the namespace. Keys are dotted:
// "net.ipv4.ip_forward".
type Sysctls interface {
	Sysctl(key string) (string, error)
	SetSysctl(key, value string) error
}

// NAT reads and changes ifhook's nftables table (package nftable): the
// NAT rules of nat bridges, and the DHCP and DNS rules of bridges that
// serve them.
type NAT interface {
	// NATRules lists ifhook's NAT rules of one bridge, or of all with "".
	NATRules(bridge string) ([]nftable.NAT, error)
	// HasNATTable reports whether the table and its chain exist.
	HasNATTable() (bool, error)
	// AddNAT adds the rule (and the table and chain) unless it is there.
	AddNAT(r nftable.NAT) error
	// DelNAT removes the rule of r's bridge and subnet, and the table once
	// it holds no rule; a missing rule is not an error.
	DelNAT(r nftable.NAT) error
	// HasServices reports whether the bridge's DHCP and DNS rules are
	// all there.
	HasServices(bridge string) (bool, error)
	// AddServices adds them (replacing a partial set); DelServices removes
	// them, and the table with ifhook's last rule.
	AddServices(s nftable.Services) error
	DelServices(s nftable.Services) error
}

// Probe answers what planning and doctor ask of the host beyond its
// network state.
type Probe interface {
	// ForwardDropChains names the nftables chains on the forward hook
	// whose policy is drop ("ip filter FORWARD"), as Docker leaves them.
	ForwardDropChains() ([]string, error)
	// InputDropChains names the chains on the input hook whose policy is
	// drop: firewalld's and ufw's, which drop guests' DHCP and DNS.
	InputDropChains() ([]string, error)
	// IsWireless reports whether the link is a Wi-Fi interface.
	IsWireless(name string) bool
	// Managers lists the programs that configure the link (a network
	// manager, a DHCP client) and would fight ifhook over it.
	Managers(l *Link) ([]Manager, error)
}

// Manager is a program that configures a link: what it is, and how it was
// found.
type Manager struct {
	Name string // "NetworkManager", "systemd-networkd", "ifupdown", "dhclient", "dhcpcd", "udhcpc"
	PID  int    // its process, when it runs as one for this link; 0 otherwise
	How  string // "process 1234", "/run/network/ifstate", ...
}

func (m Manager) String() string {
	if m.How == "" {
		return m.Name
	}
	return m.Name + " (" + m.How + ")"
}

// Kernel is all of it: what applying a plan may touch.
type Kernel interface {
	Links
	Addrs
	Routes
	Sysctls
	NAT
	Probe
	Servers
}

// IsNotFound reports whether err says a link does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// Forwarding sysctls, per address family: the only sysctls ifhook changes.
const (
	IPv4Forward = "net.ipv4.ip_forward"
	IPv6Forward = "net.ipv6.conf.all.forwarding"
)

// AcceptRA is the sysctl that says whether link name takes router
// advertisements: 1 only while forwarding is off, 2 even when it is on.
func AcceptRA(name string) string { return "net.ipv6.conf." + name + ".accept_ra" }

// OwnedSysctl reports whether ifhook ever writes key: a record naming any
// other key is not ifhook's, whatever it says.
func OwnedSysctl(key string) bool { return key == IPv4Forward || key == IPv6Forward }

package kernel

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"
	"sort"

	"github.com/ifhook/ifhook/ifhook/dhcp"
	"github.com/ifhook/ifhook/ifhook/nftable"
	"golang.org/x/sys/unix"
)

// Model is an in-memory network namespace: the links, addresses, routes,
// sysctls and NAT rules of the part of the kernel that was observed, with
// the kernel's answers to changes (EEXIST, ENODEV, a bridge's ports freed
// when it goes, a prefix route with its address). Planners read a Model
// that Observe filled; a plan is checked by applying it to a Clone; tests
// use NewModel as the kernel itself.
//
// A Model knows what it was not told: asking about a link, the addresses
// or routes of a link, or a sysctl that was never observed is
// ErrNotObserved, so a planner that reads past its observation fails its
// tests instead of planning from an empty answer.
type Model struct {
	links    map[int]*Link
	addrs    []Addr
	routes   []Route
	sysctls  map[string]string
	rules    []nftable.NAT
	natTable bool
	wireless map[string]bool
	managers map[string][]Manager
	drop     []string
	inDrop   []string
	learned  []FDBEntry
	next     int
	handle   uint64

	services map[string]bool              // bridges with their DHCP and DNS rules
	servers  map[string]Server            // the bridges' DHCP servers
	hosts    map[string]map[string]string // bridge -> TAP -> hosts entry line
	leases   map[string][]dhcp.Lease
	// Releases lists the DHCPRELEASEs sent ("BRIDGE IP MAC"), for tests.
	Releases []string
	// StartError, when set, is what StartDHCPServer fails with (a test's
	// dnsmasq that refuses to start).
	StartError error
	// Env is what DHCPEnv answers (NewModel: DefaultDHCPEnv; Observe:
	// the observed kernel's).
	Env DHCPEnv

	// What was observed; a complete Model (NewModel) knows everything.
	complete      bool
	names         map[string]bool // names looked up, present or not
	addrsOf       map[int]bool    // links whose addresses are known (0: all)
	routesOf      map[int]bool    // links whose routes are known
	portsOf       map[int]bool    // bridges whose ports are known
	natKnown      bool
	managersKnown map[string]bool
	serversKnown  map[string]bool // bridges whose servers and rules are known
	// v6Defaults are the links of the IPv6 default routes, when observed.
	v6Defaults      []int
	v6DefaultsKnown bool
}

var _ Kernel = (*Model)(nil)

// NewModel returns an empty, complete namespace: a loopback only, and the
// forwarding sysctls off.
func NewModel() *Model {
	m := &Model{links: map[int]*Link{}, sysctls: map[string]string{IPv4Forward: "0", IPv6Forward: "0"},
		wireless: map[string]bool{}, next: 1, complete: true, handle: 1, Env: DefaultDHCPEnv()}
	m.links[1] = &Link{Name: "lo", Index: 1, Type: unix.ARPHRD_LOOPBACK, Up: true, MTU: 65536, PortState: -1}
	m.next = 2
	return m
}

func newPartial() *Model {
	return &Model{links: map[int]*Link{}, sysctls: map[string]string{}, wireless: map[string]bool{},
		names: map[string]bool{}, addrsOf: map[int]bool{}, routesOf: map[int]bool{}, portsOf: map[int]bool{},
		managersKnown: map[string]bool{}, serversKnown: map[string]bool{}, next: 1 << 20, handle: 1 << 40}
}

// Clone returns an independent copy, for checking a plan against.
func (m *Model) Clone() *Model {
	c := *m
	c.links = make(map[int]*Link, len(m.links))
	for i, l := range m.links {
		c.links[i] = copyLink(l)
	}
	c.addrs = slices.Clone(m.addrs)
	c.routes = slices.Clone(m.routes)
	c.sysctls = cloneMap(m.sysctls)
	c.rules = slices.Clone(m.rules)
	c.wireless = cloneMap(m.wireless)
	c.managers = cloneMap(m.managers)
	c.drop = slices.Clone(m.drop)
	c.learned = slices.Clone(m.learned)
	c.names = cloneMap(m.names)
	c.addrsOf = cloneMap(m.addrsOf)
	c.routesOf = cloneMap(m.routesOf)
	c.portsOf = cloneMap(m.portsOf)
	c.managersKnown = cloneMap(m.managersKnown)
	c.services = cloneMap(m.services)
	c.servers = make(map[string]Server, len(m.servers))
	for b, sv := range m.servers {
		sv.Conf = slices.Clone(sv.Conf)
		c.servers[b] = sv
	}
	c.hosts = make(map[string]map[string]string, len(m.hosts))
	for b, h := range m.hosts {
		c.hosts[b] = cloneMap(h)
	}
	c.serversKnown = cloneMap(m.serversKnown)
	c.v6Defaults = slices.Clone(m.v6Defaults)
	c.leases = make(map[string][]dhcp.Lease, len(m.leases))
	for b, l := range m.leases {
		c.leases[b] = slices.Clone(l)
	}
	c.inDrop = slices.Clone(m.inDrop)
	c.Releases = slices.Clone(m.Releases)
	return &c
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func copyLink(l *Link) *Link {
	c := *l
	c.MAC = slices.Clone(l.MAC)
	return &c
}

// AddLink puts a link in the model (a test's NIC, veth or TAP) and returns
// its index. Index 0 picks the next free one.
func (m *Model) AddLink(l Link) int {
	if l.Index == 0 {
		l.Index = m.next
	}
	if l.Index >= m.next {
		m.next = l.Index + 1
	}
	if l.PortState == 0 && l.Master == 0 {
		l.PortState = -1
	}
	m.links[l.Index] = copyLink(&l)
	if m.names != nil {
		m.names[l.Name] = true
	}
	return l.Index
}

// SetWireless marks a link as a Wi-Fi interface.
func (m *Model) SetWireless(name string) { m.wireless[name] = true }

// SetManagers says which programs configure the link name.
func (m *Model) SetManagers(name string, ms ...Manager) {
	if m.managers == nil {
		m.managers = map[string][]Manager{}
	}
	m.managers[name] = ms
}

// SetDropChains sets what ForwardDropChains answers.
func (m *Model) SetDropChains(chains ...string) { m.drop = chains }

// SetInputDropChains sets what InputDropChains answers.
func (m *Model) SetInputDropChains(chains ...string) { m.inDrop = chains }

func (m *Model) byName(name string) *Link {
	for _, l := range m.links {
		if l.Name == name {
			return l
		}
	}
	return nil
}

func notFound(what string) error { return fmt.Errorf("%s: %w", what, ErrNotFound) }

func (m *Model) LinkByName(name string) (*Link, error) {
	if l := m.byName(name); l != nil {
		return copyLink(l), nil
	}
	if m.complete || m.names[name] {
		return nil, notFound(name)
	}
	return nil, fmt.Errorf("link %s: %w", name, ErrNotObserved)
}

func (m *Model) LinkByIndex(index int) (*Link, error) {
	if l, ok := m.links[index]; ok {
		return copyLink(l), nil
	}
	if m.complete || index >= 1<<20 {
		return nil, notFound(fmt.Sprintf("index %d", index))
	}
	return nil, fmt.Errorf("link index %d: %w", index, ErrNotObserved)
}

func (m *Model) sorted(keep func(*Link) bool) []*Link {
	var out []*Link
	for _, l := range m.links {
		if keep(l) {
			out = append(out, copyLink(l))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// Links returns every link (a complete model's), sorted by index.
func (m *Model) Links() []*Link { return m.sorted(func(*Link) bool { return true }) }

func (m *Model) Bridges() ([]*Link, error) {
	if !m.complete {
		return nil, fmt.Errorf("bridges: %w", ErrNotObserved)
	}
	return m.sorted(func(l *Link) bool { return l.IsBridge() }), nil
}

func (m *Model) Ports(master int) ([]*Link, error) {
	if !m.complete && !m.portsOf[master] {
		return nil, fmt.Errorf("ports of index %d: %w", master, ErrNotObserved)
	}
	return m.sorted(func(l *Link) bool { return l.Master == master }), nil
}

func (m *Model) DefaultRouteLinks(family int) ([]int, error) {
	if !m.complete && family == unix.AF_INET6 && m.v6DefaultsKnown {
		return slices.Clone(m.v6Defaults), nil
	}
	var out []int
	for _, r := range m.routes {
		if !r.Dst.IsValid() && tableOf(r) == unix.RT_TABLE_MAIN && r.IPv6 == (family == unix.AF_INET6) {
			out = append(out, r.Index)
		}
	}
	return out, nil
}

// Learn makes the bridge of port learn mac on it, as a frame from mac
// arriving there would: an entry of mac on another port of that bridge
// moves here.
func (m *Model) Learn(port int, mac net.HardwareAddr) {
	l, ok := m.links[port]
	if !ok || l.Master == 0 {
		return
	}
	m.learned = slices.DeleteFunc(m.learned, func(e FDBEntry) bool {
		p, ok := m.links[e.Port]
		return ok && p.Master == l.Master && string(e.MAC) == string(mac)
	})
	m.learned = append(m.learned, FDBEntry{MAC: slices.Clone(mac), Port: port})
}

func (m *Model) forget(port int) {
	m.learned = slices.DeleteFunc(m.learned, func(e FDBEntry) bool { return e.Port == port })
}

// LearnedMACs answers for a complete model only: Observe does not read the
// forwarding database.
func (m *Model) LearnedMACs(master int) ([]FDBEntry, error) {
	if !m.complete {
		return nil, fmt.Errorf("forwarding entries of index %d: %w", master, ErrNotObserved)
	}
	var out []FDBEntry
	for _, e := range m.learned {
		if p, ok := m.links[e.Port]; ok && p.Master == master {
			out = append(out, FDBEntry{MAC: slices.Clone(e.MAC), Port: e.Port})
		}
	}
	return out, nil
}

func (m *Model) SetLink(index int, ch Change) error {
	l, ok := m.links[index]
	if !ok {
		return notFound(fmt.Sprintf("index %d", index))
	}
	if ch.MTU != 0 && (ch.MTU < 68 || ch.MTU > 65535) {
		return unix.EINVAL
	}
	if ch.Master != nil && *ch.Master != 0 {
		br, ok := m.links[*ch.Master]
		switch {
		case !ok:
			return unix.ENODEV
		case !br.IsBridge():
			return unix.EOPNOTSUPP
		case br.Index == l.Index || l.IsBridge():
			return unix.ELOOP
		}
	}
	if ch.MAC != nil {
		l.MAC = slices.Clone(ch.MAC)
	}
	if ch.MTU != 0 {
		l.MTU = ch.MTU
	}
	if ch.Master != nil {
		if *ch.Master != l.Master {
			m.forget(index) // the kernel flushes a leaving port's entries
		}
		l.Master = *ch.Master
		l.SlaveKind, l.PortState = "", -1
		if l.Master != 0 {
			l.SlaveKind, l.PortState = "bridge", 3
		}
	}
	if ch.Up != nil && *ch.Up != l.Up {
		l.Up = *ch.Up
		if l.Up {
			m.addPrefixRoutes(l.Index)
		} else {
			m.linkDown(l.Index)
		}
	}
	return nil
}

func (m *Model) CreateBridge(name string, o BridgeOptions) (int, error) {
	if m.byName(name) != nil {
		return 0, unix.EEXIST
	}
	mtu := o.MTU
	if mtu == 0 {
		mtu = 1500
	}
	mac := slices.Clone(o.MAC)
	if mac == nil {
		mac = net.HardwareAddr{0x02, 0, 0, 0, byte(m.next >> 8), byte(m.next)}
	}
	l := &Link{Name: name, Index: m.next, Kind: "bridge", MTU: mtu, MAC: mac, STP: o.STP, ForwardDelay: o.ForwardDelay * 100, PortState: -1}
	m.next++
	m.links[l.Index] = l
	if m.names != nil {
		m.names[name] = true
	}
	if m.portsOf != nil {
		m.portsOf[l.Index] = true
		m.addrsOf[l.Index] = true
		m.routesOf[l.Index] = true
	}
	return l.Index, nil
}

func (m *Model) DeleteLink(index int) error {
	l, ok := m.links[index]
	if !ok {
		return notFound(fmt.Sprintf("index %d", index))
	}
	if l.Kind == "" {
		return unix.EOPNOTSUPP // a physical device cannot be deleted
	}
	for _, p := range m.links {
		if p.Master == index {
			p.Master, p.SlaveKind, p.PortState = 0, "", -1
		}
	}
	m.addrs = slices.DeleteFunc(m.addrs, func(a Addr) bool { return a.Index == index })
	m.routes = slices.DeleteFunc(m.routes, func(r Route) bool { return r.Index == index })
	m.forget(index)
	delete(m.links, index)
	return nil
}

func (m *Model) knowsAddrs(index int) bool { return m.complete || m.addrsOf[0] || m.addrsOf[index] }

func (m *Model) Addrs(index int) ([]Addr, error) {
	if !m.knowsAddrs(index) {
		return nil, fmt.Errorf("addresses of index %d: %w", index, ErrNotObserved)
	}
	var out []Addr
	for _, a := range m.addrs {
		if index == 0 || a.Index == index {
			out = append(out, a)
		}
	}
	return out, nil
}

func sameAddr(a, b Addr) bool { return a.Index == b.Index && a.Prefix == b.Prefix }

func (m *Model) AddAddr(a Addr) error {
	l, ok := m.links[a.Index]
	if !ok {
		return unix.ENODEV
	}
	if slices.ContainsFunc(m.addrs, func(x Addr) bool { return sameAddr(x, a) }) {
		return unix.EEXIST
	}
	// What a plan adds is permanent; a test may put a dynamic one (a
	// lease) in the model by saying so.
	a.Flags &= Restorable
	if !a.Dynamic {
		a.Flags |= unix.IFA_F_PERMANENT
	}
	m.addrs = append(m.addrs, a)
	if l.Up {
		m.addPrefixRoute(a)
	}
	return nil
}

func (m *Model) DelAddr(a Addr) error {
	i := slices.IndexFunc(m.addrs, func(x Addr) bool { return sameAddr(x, a) })
	if i < 0 {
		return unix.EADDRNOTAVAIL
	}
	m.addrs = slices.Delete(m.addrs, i, i+1)
	// The kernel takes the address's prefix route with it, and every IPv4
	// route that used it as its source.
	m.routes = slices.DeleteFunc(m.routes, func(r Route) bool {
		if r.Index != a.Index {
			return false
		}
		if r.Protocol == unix.RTPROT_KERNEL && r.Dst == a.Prefix.Masked() {
			return true
		}
		return !r.IPv6 && r.Src == a.Prefix.Addr()
	})
	return nil
}

func prefixRoute(a Addr) (Route, bool) {
	if a.Flags&unix.IFA_F_NOPREFIXROUTE != 0 || a.Prefix.Bits() == a.Prefix.Addr().BitLen() {
		return Route{}, false
	}
	r := Route{Index: a.Index, Dst: a.Prefix.Masked(), Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_KERNEL, Scope: unix.RT_SCOPE_LINK, IPv6: a.Prefix.Addr().Is6()}
	if r.IPv6 {
		r.Metric, r.Scope = 256, unix.RT_SCOPE_UNIVERSE
	} else {
		r.Src = a.Prefix.Addr()
	}
	return r, true
}

func (m *Model) addPrefixRoute(a Addr) {
	if r, ok := prefixRoute(a); ok && !slices.ContainsFunc(m.routes, func(x Route) bool { return x.Index == r.Index && x.Same(r) }) {
		m.routes = append(m.routes, r)
	}
}

func (m *Model) addPrefixRoutes(index int) {
	for _, a := range m.addrs {
		if a.Index == index {
			m.addPrefixRoute(a)
		}
	}
}

// linkDown is what the kernel does when a link goes down: its IPv4 routes
// go (fib_disable_ip), its IPv6 prefix routes stay.
func (m *Model) linkDown(index int) {
	m.routes = slices.DeleteFunc(m.routes, func(r Route) bool { return r.Index == index && !r.IPv6 })
}

func (m *Model) knowsRoutes(index int) bool { return m.complete || m.routesOf[index] }

func (m *Model) Routes(index int) ([]Route, error) {
	if !m.knowsRoutes(index) {
		return nil, fmt.Errorf("routes of index %d: %w", index, ErrNotObserved)
	}
	var out []Route
	for _, r := range m.routes {
		if r.Index == index {
			out = append(out, r)
		}
	}
	return out, nil
}

// reachable reports whether gw is on a prefix of one of the link's
// addresses: the kernel refuses a route via a gateway it cannot reach.
func (m *Model) reachable(index int, gw netip.Addr) bool {
	for _, a := range m.addrs {
		if a.Index == index && a.Prefix.Masked().Contains(gw) && a.Prefix.Addr().Is6() == gw.Is6() {
			return true
		}
	}
	return gw.Is6() && gw.IsLinkLocalUnicast()
}

func (m *Model) AddRoute(r Route) error {
	l, ok := m.links[r.Index]
	if !ok {
		return unix.ENODEV
	}
	if !r.IPv6 && !l.Up {
		return unix.ENETDOWN
	}
	if r.Gw.IsValid() && r.Flags&unix.RTNH_F_ONLINK == 0 && !m.reachable(r.Index, r.Gw) {
		return unix.ENETUNREACH
	}
	if slices.ContainsFunc(m.routes, func(x Route) bool { return x.Same(r) }) {
		return unix.EEXIST
	}
	if r.Table == 0 {
		r.Table = unix.RT_TABLE_MAIN
	}
	m.routes = append(m.routes, r)
	return nil
}

func (m *Model) DelRoute(r Route) error {
	i := slices.IndexFunc(m.routes, func(x Route) bool { return x.Same(r) && (r.Index == 0 || x.Index == r.Index) })
	if i < 0 {
		return unix.ESRCH
	}
	m.routes = slices.Delete(m.routes, i, i+1)
	return nil
}

func (m *Model) Sysctl(key string) (string, error) {
	if v, ok := m.sysctls[key]; ok {
		return v, nil
	}
	if m.complete {
		return "", unix.ENOENT
	}
	return "", fmt.Errorf("sysctl %s: %w", key, ErrNotObserved)
}

// PutSysctl gives the namespace a sysctl (a test's accept_ra, say).
func (m *Model) PutSysctl(key, value string) { m.sysctls[key] = value }

func (m *Model) SetSysctl(key, value string) error {
	if _, ok := m.sysctls[key]; !ok && m.complete {
		return unix.ENOENT
	}
	m.sysctls[key] = value
	return nil
}

func (m *Model) natObserved() error {
	if m.complete || m.natKnown {
		return nil
	}
	return fmt.Errorf("nftables: %w", ErrNotObserved)
}

func (m *Model) NATRules(bridge string) ([]nftable.NAT, error) {
	if err := m.natObserved(); err != nil {
		return nil, err
	}
	var out []nftable.NAT
	for _, r := range m.rules {
		if bridge == "" || r.Bridge == bridge {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *Model) HasNATTable() (bool, error) { return m.natTable, m.natObserved() }

func (m *Model) AddNAT(r nftable.NAT) error {
	if err := m.natObserved(); err != nil {
		return err
	}
	for _, x := range m.rules {
		if x.Comment() == r.Comment() {
			return nil
		}
	}
	if !r.Subnet.Addr().Is4() {
		return fmt.Errorf("NAT of %s: only IPv4 subnets are translated", r.Subnet)
	}
	m.natTable = true
	r.Handle = m.handle
	m.handle++
	m.rules = append(m.rules, r)
	return nil
}

func (m *Model) DelNAT(r nftable.NAT) error {
	if err := m.natObserved(); err != nil {
		return err
	}
	n := len(m.rules)
	m.rules = slices.DeleteFunc(m.rules, func(x nftable.NAT) bool { return x.Comment() == r.Comment() })
	if len(m.rules) < n && len(m.rules) == 0 {
		m.natTable = false
	}
	return nil
}

func (m *Model) ForwardDropChains() ([]string, error) { return slices.Clone(m.drop), nil }

func (m *Model) InputDropChains() ([]string, error) { return slices.Clone(m.inDrop), nil }

func (m *Model) DHCPEnv() DHCPEnv { return m.Env }

func (m *Model) serversObserved(bridge string) error {
	if m.complete || m.serversKnown[bridge] {
		return nil
	}
	return fmt.Errorf("the DHCP server of %s: %w", bridge, ErrNotObserved)
}

func (m *Model) HasServices(bridge string) (bool, error) {
	if err := m.serversObserved(bridge); err != nil {
		return false, err
	}
	return m.services[bridge], nil
}

func (m *Model) AddServices(s nftable.Services) error {
	if err := m.serversObserved(s.Bridge); err != nil {
		return err
	}
	if m.services == nil {
		m.services = map[string]bool{}
	}
	m.services[s.Bridge] = true
	m.natTable = true
	return nil
}

func (m *Model) DelServices(s nftable.Services) error {
	if err := m.serversObserved(s.Bridge); err != nil {
		return err
	}
	delete(m.services, s.Bridge)
	if len(m.services) == 0 && len(m.rules) == 0 {
		m.natTable = false
	}
	return nil
}

func (m *Model) DHCPServer(bridge string, full bool) (Server, error) {
	if err := m.serversObserved(bridge); err != nil {
		return Server{Bridge: bridge}, err
	}
	sv, ok := m.servers[bridge]
	if !ok {
		return Server{Bridge: bridge}, nil
	}
	sv.Conf = slices.Clone(sv.Conf)
	if !full {
		sv.Conf, sv.Procs = nil, nil
	}
	return sv, nil
}

// KillDHCPServer makes the bridge's server die (a test's kill -9): its
// files stay.
func (m *Model) KillDHCPServer(bridge string) {
	if sv, ok := m.servers[bridge]; ok {
		sv.Running, sv.Procs = false, nil
		m.servers[bridge] = sv
	}
}

func (m *Model) StartDHCPServer(bridge string, conf []byte) error {
	if err := m.serversObserved(bridge); err != nil {
		return err
	}
	if m.StartError != nil {
		return m.StartError
	}
	if m.servers == nil {
		m.servers = map[string]Server{}
	}
	pid := int(m.handle)
	m.handle++
	m.servers[bridge] = Server{Bridge: bridge, HasConf: true, Conf: slices.Clone(conf), PID: pid, Running: true, Procs: []int{pid}}
	return nil
}

func (m *Model) StopDHCPServer(bridge string) error {
	if err := m.serversObserved(bridge); err != nil {
		return err
	}
	delete(m.servers, bridge)
	delete(m.hosts, bridge)
	return nil
}

func (m *Model) DHCPHost(bridge, tap string) (dhcp.Entry, bool, error) {
	line, ok := m.hosts[bridge][tap]
	if !ok {
		return dhcp.Entry{}, false, nil
	}
	e, err := dhcp.ParseEntry([]byte(line))
	return e, true, err
}

func (m *Model) SetDHCPHost(bridge, tap string, e dhcp.Entry) error {
	if m.hosts == nil {
		m.hosts = map[string]map[string]string{}
	}
	if m.hosts[bridge] == nil {
		m.hosts[bridge] = map[string]string{}
	}
	m.hosts[bridge][tap] = e.Line()
	return nil
}

func (m *Model) DelDHCPHost(bridge, tap string) error {
	delete(m.hosts[bridge], tap)
	if len(m.hosts[bridge]) == 0 {
		delete(m.hosts, bridge)
	}
	return nil
}

func (m *Model) DHCPHosts(bridge string) (map[string]dhcp.Entry, error) {
	out := map[string]dhcp.Entry{}
	for tap, line := range m.hosts[bridge] {
		if e, err := dhcp.ParseEntry([]byte(line)); err == nil {
			out[tap] = e
		}
	}
	return out, nil
}

// SetLeases sets what the bridge's lease file says (a test's guests).
func (m *Model) SetLeases(bridge string, leases ...dhcp.Lease) {
	if m.leases == nil {
		m.leases = map[string][]dhcp.Lease{}
	}
	m.leases[bridge] = leases
}

func (m *Model) DHCPLeases(bridge string) ([]dhcp.Lease, []string, error) {
	return slices.Clone(m.leases[bridge]), nil, nil
}

func (m *Model) ReleaseDHCP(bridge string, r Release) error {
	if m.leases != nil {
		m.leases[bridge] = slices.DeleteFunc(m.leases[bridge], func(l dhcp.Lease) bool { return l.IP == r.IP && string(l.MAC) == string(r.MAC) })
	}
	m.Releases = append(m.Releases, bridge+" "+r.IP.String()+" "+r.MAC.String())
	return nil
}

func (m *Model) IsWireless(name string) bool { return m.wireless[name] }

func (m *Model) Managers(l *Link) ([]Manager, error) {
	ms, ok := m.managers[l.Name]
	if !ok && !m.complete && !m.managersKnown[l.Name] {
		return nil, fmt.Errorf("managers of %s: %w", l.Name, ErrNotObserved)
	}
	return slices.Clone(ms), nil
}

// Dump renders the whole model as sorted text lines, for comparing two
// states: links (by name, with everything but the index of a link made
// since), addresses, routes, sysctls and NAT rules.
func (m *Model) Dump() []string {
	var out []string
	name := func(i int) string {
		if l, ok := m.links[i]; ok {
			return l.Name
		}
		return fmt.Sprintf("#%d", i)
	}
	for _, l := range m.links {
		master := ""
		if l.Master != 0 {
			master = " master " + name(l.Master)
		}
		out = append(out, fmt.Sprintf("link %s kind=%q up=%v mtu=%d mac=%s stp=%v delay=%d%s", l.Name, l.Kind, l.Up, l.MTU, l.MAC, l.STP, l.ForwardDelay, master))
	}
	for _, a := range m.addrs {
		out = append(out, fmt.Sprintf("addr %s dev %s flags=%#x dynamic=%v", a, name(a.Index), a.Flags, a.Dynamic))
	}
	for _, r := range m.routes {
		out = append(out, fmt.Sprintf("route %s dev %s ipv6=%v", r, name(r.Index), r.IPv6))
	}
	for k, v := range m.sysctls {
		out = append(out, "sysctl "+k+"="+v)
	}
	for _, r := range m.rules {
		out = append(out, "nat "+r.Comment()+" oif="+r.OutIf+" snat="+r.SNATTo.String())
	}
	if m.natTable {
		out = append(out, "nat table")
	}
	for b := range m.services {
		out = append(out, "services "+b)
	}
	for b, sv := range m.servers {
		h := fnv.New64a()
		h.Write(sv.Conf)
		out = append(out, fmt.Sprintf("server %s running=%v conf=%x", b, sv.Running, h.Sum64()))
	}
	for b, h := range m.hosts {
		for tap, line := range h {
			out = append(out, fmt.Sprintf("host %s %s %q", b, tap, line))
		}
	}
	sort.Strings(out)
	return out
}

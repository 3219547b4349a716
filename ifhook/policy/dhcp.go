package policy

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ReserveMode says how a VM's address is chosen when no [[host]] names it.
type ReserveMode string

const (
	// ReserveVM derives the address from the VM's name: the same at every
	// start, with no configuration.
	ReserveVM ReserveMode = "vm"
	// ReserveOff leaves it to dnsmasq: the first free address.
	ReserveOff ReserveMode = "off"
)

// IPv6Mode says what the bridge's IPv6 subnet offers guests.
type IPv6Mode string

const (
	IPv6SLAAC  IPv6Mode = "slaac"  // router advertisements: guests make their addresses
	IPv6DHCPv6 IPv6Mode = "dhcpv6" // stateful DHCPv6 (and advertisements pointing at it)
	IPv6Off    IPv6Mode = "off"    // nothing for IPv6
)

// DefaultLease is a lease's length when the policy gives none.
const DefaultLease = time.Hour

// MinLease is dnsmasq's shortest lease.
const MinLease = 2 * time.Minute

// DefaultDomain is the DNS domain guests' names are in.
const DefaultDomain = "vm"

// AddrRange is a run of IPv4 addresses, both ends included.
type AddrRange struct {
	First, Last netip.Addr
}

// Contains reports whether a lies in r.
func (r AddrRange) Contains(a netip.Addr) bool {
	return a.Is4() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Size is the number of addresses in r.
func (r AddrRange) Size() uint64 { return uint64(v4(r.Last)-v4(r.First)) + 1 }

func (r AddrRange) String() string { return r.First.String() + "-" + r.Last.String() }

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromV4(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// DHCPSpec is a [bridges.NAME.dhcp] table: dnsmasq serves the bridge's
// subnets. An empty table is every default.
type DHCPSpec struct {
	Line int // of the [bridges.NAME.dhcp] header
	// Subnet is the IPv4 subnet leased from (the bridge's first IPv4
	// address's, or the one holding range); Gateway the bridge's address in
	// it. Invalid when the bridge has no IPv4 address.
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Ranges are the addresses dnsmasq leases and ifhook derives VMs'
	// addresses from: range, or the subnet without its network and
	// broadcast addresses and the bridge's own (so two runs when the
	// gateway is in the middle).
	Ranges   []AddrRange
	RangeSet bool
	Lease    time.Duration // 0: infinite
	Reserve  ReserveMode
	// Domain is the guests' DNS domain; "" turns DNS off.
	Domain string
	// IPv6 is what the bridge's first IPv6 subnet (Subnet6, with the
	// bridge's address Gateway6 in it) offers; IPv6Off when it has none.
	IPv6     IPv6Mode
	Subnet6  netip.Prefix
	Gateway6 netip.Addr
}

// PoolSize is the number of addresses in the ranges.
func (d *DHCPSpec) PoolSize() uint64 {
	var n uint64
	for _, r := range d.Ranges {
		n += r.Size()
	}
	return n
}

// InPool reports whether a lies in one of the ranges.
func (d *DHCPSpec) InPool(a netip.Addr) bool {
	for _, r := range d.Ranges {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// PoolAddr returns the i-th address of the pool (0 <= i < PoolSize).
func (d *DHCPSpec) PoolAddr(i uint64) netip.Addr {
	for _, r := range d.Ranges {
		if i < r.Size() {
			return fromV4(v4(r.First) + uint32(i))
		}
		i -= r.Size()
	}
	return netip.Addr{}
}

// DNS reports whether dnsmasq answers DNS on the bridge.
func (d *DHCPSpec) DNS() bool { return d.Domain != "" }

// HostSpec is one [[bridges.NAME.host]]: an address reserved for a VM, by
// its name or its NIC's MAC.
type HostSpec struct {
	Line int
	VM   string           // QEMU's -name; "" when by MAC
	MAC  net.HardwareAddr // nil when by VM
	IP   netip.Addr
}

// Host returns the reservation for a VM's NIC, by MAC first, or nil.
func (b *BridgeSpec) Host(vm string, mac net.HardwareAddr) *HostSpec {
	for i := range b.Hosts {
		if h := &b.Hosts[i]; h.MAC != nil && mac != nil && string(h.MAC) == string(mac) {
			return h
		}
	}
	for i := range b.Hosts {
		if h := &b.Hosts[i]; h.VM != "" && h.VM == vm {
			return h
		}
	}
	return nil
}

var dhcpKeys = []string{"range", "lease", "reserve", "domain", "ipv6"}
var hostKeys = []string{"vm", "mac", "ip"}

// dhcp reads [bridges.NAME.dhcp] and [[bridges.NAME.host]]; the bridge's
// addresses and model are read already.
func (d *decoder) dhcp(b *BridgeSpec, t *table) {
	v, hasDHCP := t.get("dhcp")
	hosts := t.tables("host")
	if !hasDHCP {
		if len(hosts) > 0 {
			d.problem(hosts[0].path, "a reservation needs DHCP: add a [bridges.%s.dhcp] table", b.Name)
		}
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.problem(t.key("dhcp"), "must be a table ([bridges.%s.dhcp]), not %s", b.Name, typeName(v))
		return
	}
	dt := d.table(t.key("dhcp"), m)
	spec := &DHCPSpec{Line: d.lines.Line(dt.path), Lease: DefaultLease, Reserve: ReserveVM, Domain: DefaultDomain, IPv6: IPv6SLAAC}
	b.DHCP = spec
	switch b.Model {
	case Bridged:
		d.problem(dt.path, "no DHCP on a bridged bridge: its LAN has a DHCP server already, and a second authoritative one breaks it")
	case Isolated, Routed, NAT:
		if len(b.Addresses) == 0 {
			d.problem(dt.path, "DHCP needs the bridge to have an address: add address = \"...\" to [bridges.%s] (the address guests ask; on an isolated bridge it routes nothing)", b.Name)
		}
	}
	for _, a := range b.Addresses {
		if a.Addr().Is4() && !spec.Subnet.IsValid() {
			spec.Subnet, spec.Gateway = a.Masked(), a.Addr()
		}
		if a.Addr().Is6() && !spec.Subnet6.IsValid() {
			spec.Subnet6, spec.Gateway6 = a.Masked(), a.Addr()
		}
	}
	if s, ok := dt.str("range", ""); ok {
		spec.RangeSet = true
		if r, err := d.parseRange(s, b, spec); err != nil {
			d.problem(dt.key("range"), "%v", err)
		} else {
			spec.Ranges = []AddrRange{r}
		}
	} else if spec.Subnet.IsValid() {
		spec.Ranges = defaultRanges(spec.Subnet, b.Addresses)
		if len(spec.Ranges) == 0 {
			d.problem(dt.path, "the subnet %s has no address to lease besides the bridge's own", spec.Subnet)
		}
	}
	if s, ok := dt.str("lease", ""); ok {
		if l, err := parseLease(s); err != nil {
			d.problem(dt.key("lease"), "%v", err)
		} else {
			spec.Lease = l
		}
	}
	if s, ok := dt.str("reserve", ""); ok {
		switch ReserveMode(s) {
		case ReserveVM, ReserveOff:
			spec.Reserve = ReserveMode(s)
		default:
			d.problem(dt.key("reserve"), "%q: want \"vm\" (each VM's address derived from its name) or \"off\" (the first free one)", s)
		}
	}
	if s, ok := dt.str("domain", ""); ok {
		if s != "" {
			if err := ValidDomain(s); err != nil {
				d.problem(dt.key("domain"), "%v", err)
			}
		}
		spec.Domain = strings.ToLower(s)
	}
	v6, v6set := dt.str("ipv6", "")
	if v6set {
		switch IPv6Mode(v6) {
		case IPv6SLAAC, IPv6DHCPv6, IPv6Off:
			spec.IPv6 = IPv6Mode(v6)
		default:
			d.problem(dt.key("ipv6"), "%q: want \"slaac\", \"dhcpv6\" or \"off\"", v6)
		}
	}
	if !spec.Subnet6.IsValid() {
		if v6set && spec.IPv6 != IPv6Off {
			d.problem(dt.key("ipv6"), "ipv6 = %q needs an IPv6 address on the bridge (like \"fd00:100::1/64\")", v6)
		}
		spec.IPv6 = IPv6Off
	} else if spec.IPv6 == IPv6SLAAC && spec.Subnet6.Bits() != 64 {
		d.problem(dt.key("ipv6"), "SLAAC needs a /64 and the bridge's IPv6 subnet is %s; use ipv6 = \"dhcpv6\" or a /64", spec.Subnet6)
	}
	dt.done(dhcpKeys...)
	for _, ht := range hosts {
		b.Hosts = append(b.Hosts, d.host(b, spec, ht))
	}
	d.checkHosts(b)
}

func (d *decoder) host(b *BridgeSpec, spec *DHCPSpec, t *table) HostSpec {
	h := HostSpec{Line: d.lines.Line(t.path)}
	vm, hasVM := t.str("vm", "")
	mac, hasMAC := t.str("mac", "")
	switch {
	case hasVM && hasMAC:
		d.problem(t.path, "a reservation is by vm or by mac, not both")
	case !hasVM && !hasMAC:
		d.problem(t.path, "a reservation needs vm = \"NAME\" (QEMU's -name) or mac = \"52:54:00:..\"")
	case hasVM:
		if vm == "" || len(vm) > 512 {
			d.problem(t.key("vm"), "want a VM's name (QEMU's -name), 1 to 512 bytes")
		}
		h.VM = vm
	case hasMAC:
		m, err := net.ParseMAC(mac)
		switch {
		case err != nil || len(m) != 6:
			d.problem(t.key("mac"), "%q is not a MAC address like \"52:54:00:aa:bb:cc\"", mac)
		case m[0]&1 != 0:
			d.problem(t.key("mac"), "%s is a multicast address: no NIC has it", m)
		default:
			h.MAC = m
		}
	}
	s, ok := t.str("ip", "")
	if !ok {
		d.problem(t.path, "a reservation needs ip = \"...\", the address to give")
	} else if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
		d.problem(t.key("ip"), "%q is not an IP address", s)
	} else if !a.Is4() {
		d.problem(t.key("ip"), "%s: reservations are IPv4 addresses (IPv6 guests make theirs, or DHCPv6 leases them)", a)
	} else if spec.Subnet.IsValid() {
		switch {
		case !spec.Subnet.Contains(a):
			d.problem(t.key("ip"), "%s is outside the bridge's subnet %s", a, spec.Subnet)
		case isBridgeAddr(a, b.Addresses):
			d.problem(t.key("ip"), "%s is the bridge's own address (the guests' gateway)", a)
		case a == spec.Subnet.Addr() || (spec.Subnet.Bits() < 31 && a == lastAddr(spec.Subnet)):
			d.problem(t.key("ip"), "%s is the subnet's network or broadcast address", a)
		default:
			h.IP = a
		}
	} else {
		d.problem(t.key("ip"), "the bridge has no IPv4 address to lease from")
	}
	t.done(hostKeys...)
	return h
}

// checkHosts refuses reservations that collide: an address, a VM or a MAC
// reserved twice.
func (d *decoder) checkHosts(b *BridgeSpec) {
	for i, h := range b.Hosts {
		for _, o := range b.Hosts[:i] {
			path := d.hostPath(b, h)
			switch {
			case h.IP.IsValid() && h.IP == o.IP:
				d.problem(path, "%s is reserved already (line %d)", h.IP, o.Line)
			case h.VM != "" && h.VM == o.VM:
				d.problem(path, "VM %q has a reservation already (line %d)", h.VM, o.Line)
			case h.MAC != nil && string(h.MAC) == string(o.MAC):
				d.problem(path, "MAC %s has a reservation already (line %d)", h.MAC, o.Line)
			}
		}
	}
}

// hostPath finds the key path of a reservation by its line, for messages.
func (d *decoder) hostPath(b *BridgeSpec, h HostSpec) string {
	for i := range b.Hosts {
		p := fmt.Sprintf("bridges.%s.host.%d", b.Name, i)
		if d.lines.Line(p) == h.Line {
			return p
		}
	}
	return "bridges." + b.Name + ".host"
}

func isBridgeAddr(a netip.Addr, addrs []netip.Prefix) bool {
	for _, p := range addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

func lastAddr(p netip.Prefix) netip.Addr {
	n := v4(p.Masked().Addr()) | (1<<(32-p.Bits()) - 1)
	return fromV4(n)
}

// parseRange parses range = "FIRST-LAST" against the bridge's IPv4
// subnets: both ends in one of them, which becomes the subnet leased
// from; neither its network or broadcast address nor the bridge's own in
// between.
func (d *decoder) parseRange(s string, b *BridgeSpec, spec *DHCPSpec) (AddrRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	first, err1 := netip.ParseAddr(strings.TrimSpace(lo))
	last, err2 := netip.ParseAddr(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || !first.Is4() || !last.Is4() {
		return AddrRange{}, fmt.Errorf("%q is not a range of IPv4 addresses like \"192.168.100.100-192.168.100.199\"", s)
	}
	if last.Less(first) {
		return AddrRange{}, fmt.Errorf("%q ends before it starts", s)
	}
	var subnet netip.Prefix
	var gw netip.Addr
	for _, a := range b.Addresses {
		if a.Addr().Is4() && a.Masked().Contains(first) {
			subnet, gw = a.Masked(), a.Addr()
			break
		}
	}
	if !subnet.IsValid() {
		if !spec.Subnet.IsValid() {
			return AddrRange{}, fmt.Errorf("%s: the bridge has no IPv4 address to lease from", s)
		}
		return AddrRange{}, fmt.Errorf("%s is outside the bridge's subnet %s", s, spec.Subnet)
	}
	if !subnet.Contains(last) {
		return AddrRange{}, fmt.Errorf("%s is outside the bridge's subnet %s", s, subnet)
	}
	r := AddrRange{First: first, Last: last}
	for _, a := range b.Addresses {
		if r.Contains(a.Addr()) {
			return AddrRange{}, fmt.Errorf("%s contains the bridge's own address %s (the guests' gateway)", s, a.Addr())
		}
	}
	if r.Contains(subnet.Addr()) || (subnet.Bits() < 31 && r.Contains(lastAddr(subnet))) {
		return AddrRange{}, fmt.Errorf("%s contains the network or broadcast address of %s", s, subnet)
	}
	spec.Subnet, spec.Gateway = subnet, gw
	return r, nil
}

// defaultRanges is the subnet without its network and broadcast addresses
// and the bridge's addresses in it, as the runs left between them.
func defaultRanges(subnet netip.Prefix, addrs []netip.Prefix) []AddrRange {
	if subnet.Bits() > 30 {
		return nil
	}
	lo, hi := v4(subnet.Addr())+1, v4(lastAddr(subnet))-1
	var cuts []uint32
	for _, a := range addrs {
		if a.Addr().Is4() && subnet.Contains(a.Addr()) {
			cuts = append(cuts, v4(a.Addr()))
		}
	}
	slices.Sort(cuts)
	var out []AddrRange
	start := uint64(lo)
	for _, c := range append(cuts, hi+1) {
		if c < lo || uint64(c) < start {
			continue
		}
		if uint64(c) > start {
			out = append(out, AddrRange{First: fromV4(uint32(start)), Last: fromV4(c - 1)})
		}
		start = uint64(c) + 1
	}
	return out
}

// parseLease parses a lease's length: a Go duration of at least MinLease
// ("1h", "30m"), or "infinite".
func parseLease(s string) (time.Duration, error) {
	if s == "infinite" {
		return 0, nil
	}
	l, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q is not a duration like \"1h\" or \"30m\" (or \"infinite\")", s)
	case l < MinLease:
		return 0, fmt.Errorf("%s is shorter than dnsmasq's shortest lease, %s", l, MinLease)
	case l > 365*24*time.Hour:
		return 0, fmt.Errorf("%s is longer than a year; use \"infinite\"", l)
	case l%time.Second != 0:
		return 0, fmt.Errorf("%s: leases are whole seconds", l)
	}
	return l, nil
}

// ValidDomain checks a DNS domain for guests' names: labels of letters,
// digits and hyphens, 1 to 63 bytes each, no hyphen at either end, at
// most 200 bytes in all (room for a name in front).
func ValidDomain(s string) error {
	if len(s) > 200 {
		return fmt.Errorf("domain %q is longer than 200 bytes", trimForMessage(s))
	}
	for _, l := range strings.Split(s, ".") {
		if err := ValidLabel(l); err != nil {
			return fmt.Errorf("domain %q: %w", trimForMessage(s), err)
		}
	}
	return nil
}

// ValidLabel checks one DNS label (RFC 1123 host name rules).
func ValidLabel(l string) error {
	switch {
	case l == "":
		return fmt.Errorf("has an empty label")
	case len(l) > 63:
		return fmt.Errorf("label %q is longer than 63 bytes", trimForMessage(l))
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("label %q starts or ends with '-'", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("label %q is not a valid DNS label: %q is not a letter, digit or '-'", l, c)
		}
	}
	return nil
}

func trimForMessage(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

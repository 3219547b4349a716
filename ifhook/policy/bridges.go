package policy

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Model is one of the four classic virtual network models a bridge made by
// ifhook can stand for.
type Model string

const (
	// Isolated: a bridge with no address; guests reach each other only.
	Isolated Model = "isolated"
	// Routed: the bridge holds the guests' gateway address and the host
	// forwards; outside hosts need a route back.
	Routed Model = "routed"
	// NAT: routed, plus source NAT of the guests' IPv4 subnets out of the
	// host, so outside hosts answer without a route back.
	NAT Model = "nat"
	// Bridged: the host's NIC is enslaved to the bridge, its addresses and
	// routes move to the bridge, and guests sit on the physical LAN.
	Bridged Model = "bridged"
)

// Models lists the models in the order the documentation gives them.
var Models = []Model{Isolated, Routed, NAT, Bridged}

// Routes reports whether the model routes for the guests (forwarding on).
func (m Model) Routes() bool { return m == Routed || m == NAT }

// BridgeSpec is a [bridges.NAME] table: a bridge ifhook may create.
type BridgeSpec struct {
	Name            string
	Line            int // of the [bridges.NAME] header
	Model           Model
	Addresses       []netip.Prefix // the bridge's own addresses (routed, nat)
	Uplink          string         // bridged: the NIC to enslave; nat: the egress interface ("" = any)
	SNATTo          netip.Addr     // nat: SNAT to this address; invalid: masquerade
	STP             bool
	ForwardDelay    int // seconds
	MTU             int // 0: the kernel's (or, bridged, the uplink's)
	RemoveWhenEmpty bool
	WaitForwarding  bool // ifup waits until a new port forwards when STP is on
	// DHCP is the [bridges.NAME.dhcp] table: dnsmasq serves DHCP, DNS and
	// router advertisements on the bridge (nil: no table, no dnsmasq).
	DHCP *DHCPSpec
	// Hosts are the [[bridges.NAME.host]] reservations.
	Hosts []HostSpec
}

// Families returns the address families the bridge routes: "ipv4",
// "ipv6", both, or none.
func (b *BridgeSpec) Families() (v4, v6 bool) {
	if !b.Model.Routes() {
		return false, false
	}
	for _, a := range b.Addresses {
		if a.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}

// NATSubnets returns the IPv4 subnets a nat bridge translates.
func (b *BridgeSpec) NATSubnets() []netip.Prefix {
	if b.Model != NAT {
		return nil
	}
	var out []netip.Prefix
	for _, a := range b.Addresses {
		if a.Addr().Is4() {
			out = append(out, a.Masked())
		}
	}
	return out
}

// Spec returns the [bridges.NAME] table for a bridge, or nil when the
// policy has none.
func (p *Policy) Spec(name string) *BridgeSpec {
	return p.Bridges[name]
}

// BridgeNames returns the names of the bridges the policy describes,
// sorted.
func (p *Policy) BridgeNames() []string {
	names := make([]string, 0, len(p.Bridges))
	for n := range p.Bridges {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var bridgeKeys = []string{"model", "address", "uplink", "snat_to", "stp", "forward_delay", "mtu", "remove_when_empty", "wait_forwarding", "dhcp", "host"}

func (d *decoder) bridge(name string, t *table) *BridgeSpec {
	b := &BridgeSpec{Name: name, Line: d.lines.Line(t.path), WaitForwarding: true}
	if err := ValidIfName(name); err != nil {
		d.problem(t.path, "%q is not a bridge name: %v", name, err)
	}
	if name == Auto {
		d.problem(t.path, "a bridge cannot be called %q", Auto)
	}
	if s, ok := t.str("model", ""); ok {
		b.Model = Model(s)
		if !validModel(b.Model) {
			d.problem(t.key("model"), "%q: want one of %s", s, modelList())
		}
	} else if _, present := t.m["model"]; !present {
		d.problem(t.path, "model is required: one of %s", modelList())
	}
	if list, ok := t.strings("address"); ok {
		for _, s := range list {
			p, err := parseHostPrefix(s)
			if err != nil {
				d.problem(t.key("address"), "%v", err)
				continue
			}
			b.Addresses = append(b.Addresses, p)
		}
	}
	if s, ok := t.str("uplink", ""); ok {
		if err := ValidIfName(s); err != nil {
			d.problem(t.key("uplink"), "%q: %v", s, err)
		}
		b.Uplink = s
	}
	if s, ok := t.str("snat_to", ""); ok {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil:
			d.problem(t.key("snat_to"), "%q is not an IP address", s)
		case !a.Is4():
			d.problem(t.key("snat_to"), "%q: SNAT applies to the guests' IPv4 subnets; give an IPv4 address", s)
		default:
			b.SNATTo = a
		}
	}
	b.STP, _ = t.boolean("stp", false)
	if n, ok := t.integer("forward_delay", 0, 0, 30); ok {
		b.ForwardDelay = int(n)
	}
	if n, ok := t.integer("mtu", 0, 0, 65535); ok {
		if n != 0 && n < 68 {
			d.problem(t.key("mtu"), "%d is below the minimum Ethernet MTU of 68", n)
		}
		b.MTU = int(n)
	}
	b.RemoveWhenEmpty, _ = t.boolean("remove_when_empty", false)
	b.WaitForwarding, _ = t.boolean("wait_forwarding", true)
	d.checkBridge(b, t)
	if validModel(b.Model) {
		d.dhcp(b, t)
	} else {
		t.get("dhcp")
		t.get("host")
	}
	t.done(bridgeKeys...)
	return b
}

func validModel(m Model) bool {
	for _, v := range Models {
		if m == v {
			return true
		}
	}
	return false
}

func modelList() string {
	s := make([]string, len(Models))
	for i, m := range Models {
		s[i] = fmt.Sprintf("%q", m)
	}
	return strings.Join(s, ", ")
}

// parseHostPrefix parses the bridge's own address in CIDR form,
// "192.168.1.1/24": an address in a subnet, not the subnet itself.
func parseHostPrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			return netip.Prefix{}, fmt.Errorf("%q has no prefix length: write it as %s/%d, say", s, a, a.BitLen()-8)
		}
		return netip.Prefix{}, fmt.Errorf("%q is not an address in CIDR form like \"192.168.1.1/24\"", s)
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q: write IPv4 addresses in dotted form", s)
	}
	single := p.Bits() == p.Addr().BitLen()
	if !single && p.Addr() == p.Masked().Addr() {
		return netip.Prefix{}, fmt.Errorf("%q is the subnet's own address; give the bridge's address in it, like %s", s, p.Addr().Next().String()+fmt.Sprintf("/%d", p.Bits()))
	}
	if p.Addr().IsMulticast() || p.Addr().IsUnspecified() || p.Addr().IsLoopback() {
		return netip.Prefix{}, fmt.Errorf("%q cannot be a bridge's address", s)
	}
	return p, nil
}

// checkBridge rejects settings that contradict the model.
func (d *decoder) checkBridge(b *BridgeSpec, t *table) {
	_, hasAddr := t.m["address"]
	_, hasUplink := t.m["uplink"]
	_, hasSNAT := t.m["snat_to"]
	switch b.Model {
	case Isolated:
		if _, hasDHCP := t.m["dhcp"]; hasAddr && !hasDHCP {
			d.problem(t.key("address"), "an isolated bridge has no address (guests reach each other only) unless it serves DHCP ([bridges.%s.dhcp]); use model = \"routed\" or \"nat\" to route for the guests", b.Name)
		}
		if hasUplink {
			d.problem(t.key("uplink"), "an isolated bridge has no uplink; use model = \"bridged\" to put guests on the uplink's LAN")
		}
	case Routed, NAT:
		if !hasAddr {
			d.problem(t.path, "a %s bridge needs address = \"...\" (the guests' gateway, like \"192.168.100.1/24\")", b.Model)
		}
		if b.Model == Routed && hasUplink {
			d.problem(t.key("uplink"), "a routed bridge has no uplink (the host's routing table decides); did you mean model = \"nat\" or \"bridged\"?")
		}
		if b.Model == NAT && len(b.Addresses) > 0 && len(b.NATSubnets()) == 0 {
			d.problem(t.key("address"), "a nat bridge needs an IPv4 address: NAT applies to IPv4 only (IPv6 addresses are routed)")
		}
	case Bridged:
		if !hasUplink {
			d.problem(t.path, "a bridged bridge needs uplink = \"NIC\" (the host's interface to enslave)")
		}
		if hasAddr {
			d.problem(t.key("address"), "a bridged bridge takes the uplink's addresses; leave address out")
		}
	}
	if hasSNAT && b.Model != NAT && validModel(b.Model) {
		d.problem(t.key("snat_to"), "snat_to applies to model = \"nat\" only")
	}
	if b.Uplink != "" && b.Uplink == b.Name {
		d.problem(t.key("uplink"), "the uplink cannot be the bridge itself")
	}
	if b.STP && b.ForwardDelay < 2 {
		d.problem(t.key("forward_delay"), "with stp = true the kernel needs a forward_delay of 2 to 30 seconds (got %d)", b.ForwardDelay)
	}
}

// checkBridges rejects contradictions between bridges: overlapping
// subnets, an uplink shared by two bridges, a bridge that is another's
// uplink.
func (d *decoder) checkBridges(p *Policy) {
	names := p.BridgeNames()
	for i, a := range names {
		A := p.Bridges[a]
		for _, bn := range names[i+1:] {
			B := p.Bridges[bn]
			for _, pa := range A.Addresses {
				for _, pb := range B.Addresses {
					if pa.Masked().Overlaps(pb.Masked()) {
						d.problem("bridges."+bn+".address", "%s overlaps %s of bridges.%s (line %d)", pb, pa, a, A.Line)
					}
				}
			}
			if A.Uplink != "" && A.Uplink == B.Uplink && (A.Model == Bridged || B.Model == Bridged) {
				d.problem("bridges."+bn+".uplink", "uplink %q is already bridges.%s's (line %d); a NIC can be enslaved to one bridge only", B.Uplink, a, A.Line)
			}
		}
		if A.Uplink != "" {
			if _, ok := p.Bridges[A.Uplink]; ok {
				d.problem("bridges."+a+".uplink", "uplink %q is itself a bridge of this policy", A.Uplink)
			}
		}
	}
}

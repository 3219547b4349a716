package dhcp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook/policy"
)

// Paths are where one bridge's dnsmasq keeps its files.
type Paths struct {
	Conf     string // this configuration (dnsmasq reads nothing else)
	Pid      string // its pid file
	Log      string // its log: startup, warnings, no lease chatter
	Leases   string // its lease file, under /var/lib/ifhook: leases outlive a reboot
	HostsDir string // one Entry file per TAP, read as the guests come and go
}

// Config is what dnsmasq is told for one bridge.
type Config struct {
	Spec  *policy.BridgeSpec // with a DHCP table
	Where string             // "bridges.NAME at FILE:LINE", for the header
	MTU   int                // the bridge's MTU; 0: Ethernet's 1500
	Paths Paths
	User  string // the user dnsmasq runs as once it has its sockets
}

// Render writes the configuration, the way libvirt's has proved itself
// (see wave2.md §1.1), with a comment on each part:
//
//   - only this bridge: except-interface=lo, bind-dynamic, interface=BR,
//     no-hosts, and the host's resolver only as upstream (none on an
//     isolated bridge);
//   - DNS for the domain, answered locally (local=/DOMAIN/), or none;
//   - DHCPv4 on the ranges, authoritative, hosts from the hosts directory;
//     on an isolated bridge no router option; the MTU when below 1500;
//   - IPv6: router advertisements for SLAAC (with stateless DHCPv6 for DNS)
//     or stateful DHCPv6; on an isolated bridge a router lifetime of 0.
func (c Config) Render() []byte {
	spec, d := c.Spec, c.Spec.DHCP
	isolated := spec.Model == policy.Isolated
	mtu := c.MTU
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# dnsmasq for bridge %s, written by ifhook from %s.", spec.Name, c.Where)
	line("# 'ifhook setup' rewrites it and 'ifhook teardown' removes it: edit the policy instead.")
	line("")
	line("# Its own files; it runs as %s once its sockets are open.", c.User)
	line("user=%s", c.User)
	line("pid-file=%s", c.Paths.Pid)
	line("log-facility=%s", c.Paths.Log)
	line("quiet-dhcp")
	line("quiet-dhcp6")
	line("quiet-ra")
	line("")
	line("# Only this bridge: never the host's other interfaces, nor its /etc/hosts.")
	line("except-interface=lo")
	line("bind-dynamic")
	line("interface=%s", spec.Name)
	line("no-hosts")
	line("")
	if d.DNS() {
		line("# DNS: guests' names under %s, answered here and never forwarded.", d.Domain)
		line("domain=%s", d.Domain)
		line("local=/%s/", d.Domain)
		line("domain-needed")
		if isolated {
			line("# Isolated: nothing beyond the bridge to ask.")
			line("no-resolv")
		} else {
			line("# Other names: the host's own resolvers.")
			line("strict-order")
			line("resolv-file=/etc/resolv.conf")
		}
	} else {
		line("# No DNS (domain = \"\"), and none offered to guests.")
		line("port=0")
		line("no-resolv")
		line("dhcp-option=option:dns-server")
		if d.IPv6 != policy.IPv6Off {
			line("dhcp-option=option6:dns-server")
		}
	}
	line("")
	line("# Leases and the hosts entries ifup writes, one file per TAP.")
	line("dhcp-leasefile=%s", c.Paths.Leases)
	line("dhcp-hostsdir=%s", c.Paths.HostsDir)
	if len(d.Ranges) > 0 {
		line("")
		line("# DHCPv4 on %s.", d.Subnet)
		mask := netmask(d.Subnet.Bits())
		for _, r := range d.Ranges {
			line("dhcp-range=%s,%s,%s,%s", r.First, r.Last, mask, leaseTime(d.Lease))
		}
		line("dhcp-lease-max=%d", min(d.PoolSize(), MaxGrants))
		line("dhcp-authoritative")
		line("dhcp-no-override")
		if isolated {
			line("# Isolated: no router option, so guests get no default route.")
			line("dhcp-option=option:router")
		}
		if mtu != 0 && mtu < 1500 {
			line("dhcp-option=option:mtu,%d", mtu)
		}
	}
	if d.IPv6 != policy.IPv6Off {
		line("")
		line("# IPv6 on %s.", d.Subnet6)
		line("enable-ra")
		switch d.IPv6 {
		case policy.IPv6SLAAC:
			mode := "ra-only"
			if d.DNS() {
				// Stateless DHCPv6 tells guests the DNS server; ra-names
				// names a DHCPv4 guest's SLAAC address too.
				mode = "ra-stateless"
				if len(d.Ranges) > 0 {
					mode += ",ra-names"
				}
			}
			line("dhcp-range=::,constructor:%s,%s,64,%s", spec.Name, mode, leaseTime(d.Lease))
		case policy.IPv6DHCPv6:
			first, last := range6(d.Subnet6, d.Gateway6)
			line("dhcp-range=%s,%s,%d,%s", first, last, d.Subnet6.Bits(), leaseTime(d.Lease))
		}
		var ra []string
		if mtu != 0 && mtu < 1500 {
			ra = append(ra, "mtu:"+strconv.Itoa(mtu))
		}
		switch {
		case isolated:
			line("# Isolated: a router lifetime of 0, so guests take no default route.")
			line("ra-param=%s,%s", spec.Name, strings.Join(append(ra, "0", "0"), ","))
		case len(ra) > 0:
			line("ra-param=%s,%s", spec.Name, strings.Join(append(ra, "0"), ","))
		}
	}
	return []byte(b.String())
}

func maskString(bits int) string {
	var m uint32
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

func leaseTime(l time.Duration) string {
	if l == 0 {
		return "infinite"
	}
	return strconv.FormatInt(int64(l/time.Second), 10)
}

// netmask renders a prefix length as dnsmasq's dhcp-range wants it.
func netmask(bits int) string {
	return maskString(bits)
}

// range6 is the stateful DHCPv6 range of a subnet: the 4096 addresses from
// ::1000 (or ::2000 when the bridge's address lies among them), clipped
// to the subnet.
func range6(subnet netip.Prefix, gw netip.Addr) (netip.Addr, netip.Addr) {
	for _, base := range []uint16{0x1000, 0x2000} {
		first, last := addLow(subnet.Addr(), base), addLow(subnet.Addr(), base+0xfff)
		if !subnet.Contains(last) {
			// A small subnet: its addresses past the first 16.
			first, last = addLow(subnet.Addr(), 0x10), lastAddr6(subnet)
		}
		if gw.Less(first) || last.Less(gw) {
			return first, last
		}
	}
	return addLow(subnet.Addr(), 0x3000), addLow(subnet.Addr(), 0x3fff)
}

func addLow(a netip.Addr, n uint16) netip.Addr {
	b := a.As16()
	v := uint16(b[14])<<8 | uint16(b[15])
	v += n
	b[14], b[15] = byte(v>>8), byte(v)
	return netip.AddrFrom16(b)
}

func lastAddr6(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom16(b)
}

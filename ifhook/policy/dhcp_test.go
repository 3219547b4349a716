package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestDHCPParse(t *testing.T) {
	p, err := Parse([]byte(`
[bridges.br-nat]
model = "nat"
address = ["192.168.100.1/24", "fd00:100::1/64"]

[bridges.br-nat.dhcp]
range = "192.168.100.100-192.168.100.199"
lease = "30m"
domain = "Lab"
ipv6 = "dhcpv6"

[[bridges.br-nat.host]]
vm = "db"
ip = "192.168.100.10"

[[bridges.br-nat.host]]
mac = "52:54:00:AA:bb:cc"
ip = "192.168.100.11"

[bridges.iso]
model = "isolated"
address = "192.168.50.129/24"
[bridges.iso.dhcp]

[bridges.rt]
model = "routed"
address = "fd00:7::1/64"
[bridges.rt.dhcp]
domain = ""
`), "d.toml")
	if err != nil {
		t.Fatal(err)
	}
	n := p.Spec("br-nat").DHCP
	if n == nil || n.Line != 6 || n.Lease != 30*time.Minute || n.Domain != "lab" || n.IPv6 != IPv6DHCPv6 || n.Reserve != ReserveVM || !n.RangeSet {
		t.Fatalf("br-nat dhcp: %+v", n)
	}
	if n.Subnet != netip.MustParsePrefix("192.168.100.0/24") || n.Gateway != netip.MustParseAddr("192.168.100.1") || n.Subnet6 != netip.MustParsePrefix("fd00:100::/64") {
		t.Errorf("br-nat subnets: %v %v %v", n.Subnet, n.Gateway, n.Subnet6)
	}
	if len(n.Ranges) != 1 || n.Ranges[0].String() != "192.168.100.100-192.168.100.199" || n.PoolSize() != 100 {
		t.Errorf("br-nat ranges: %v (%d)", n.Ranges, n.PoolSize())
	}
	if n.PoolAddr(0) != netip.MustParseAddr("192.168.100.100") || n.PoolAddr(99) != netip.MustParseAddr("192.168.100.199") || n.PoolAddr(100).IsValid() {
		t.Errorf("PoolAddr: %v %v %v", n.PoolAddr(0), n.PoolAddr(99), n.PoolAddr(100))
	}
	hosts := p.Spec("br-nat").Hosts
	if len(hosts) != 2 || hosts[0].VM != "db" || hosts[0].Line != 12 || hosts[1].MAC.String() != "52:54:00:aa:bb:cc" {
		t.Fatalf("hosts: %+v", hosts)
	}
	if h := p.Spec("br-nat").Host("web", hosts[1].MAC); h == nil || h.IP != netip.MustParseAddr("192.168.100.11") {
		t.Errorf("Host by MAC: %+v", h)
	}
	if h := p.Spec("br-nat").Host("db", nil); h == nil || h.IP != netip.MustParseAddr("192.168.100.10") {
		t.Errorf("Host by VM: %+v", h)
	}
	// An empty table is every default; the gateway in the middle of the
	// subnet splits the pool.
	iso := p.Spec("iso").DHCP
	if iso == nil || iso.Lease != DefaultLease || iso.Domain != "vm" || iso.IPv6 != IPv6Off || iso.RangeSet {
		t.Fatalf("iso dhcp: %+v", iso)
	}
	if got := rangesString(iso.Ranges); got != "192.168.50.1-192.168.50.128,192.168.50.130-192.168.50.254" || iso.PoolSize() != 253 {
		t.Errorf("iso ranges: %s (%d)", got, iso.PoolSize())
	}
	if v4, v6 := p.Spec("iso").Families(); v4 || v6 {
		t.Error("an isolated bridge with an address still routes nothing")
	}
	rt := p.Spec("rt").DHCP
	if rt.DNS() || rt.IPv6 != IPv6SLAAC || len(rt.Ranges) != 0 || rt.Subnet.IsValid() {
		t.Errorf("rt dhcp: %+v", rt)
	}
}

func rangesString(rs []AddrRange) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.String())
	}
	return strings.Join(s, ",")
}

func TestDefaultRanges(t *testing.T) {
	for _, c := range []struct {
		subnet string
		addrs  []string
		want   string
	}{
		{"192.168.1.0/24", []string{"192.168.1.1/24"}, "192.168.1.2-192.168.1.254"},
		{"192.168.1.0/24", []string{"192.168.1.254/24"}, "192.168.1.1-192.168.1.253"},
		{"192.168.1.0/24", []string{"192.168.1.1/24", "192.168.1.2/24"}, "192.168.1.3-192.168.1.254"},
		{"192.168.1.0/30", []string{"192.168.1.1/30"}, "192.168.1.2-192.168.1.2"},
		{"192.168.1.0/30", []string{"192.168.1.1/30", "192.168.1.2/30"}, ""},
		{"192.168.1.0/31", []string{"192.168.1.1/31"}, ""},
		{"10.0.0.0/8", []string{"10.0.0.1/8", "192.168.1.1/24"}, "10.0.0.2-10.255.255.254"},
	} {
		var addrs []netip.Prefix
		for _, a := range c.addrs {
			addrs = append(addrs, netip.MustParsePrefix(a))
		}
		if got := rangesString(defaultRanges(netip.MustParsePrefix(c.subnet), addrs)); got != c.want {
			t.Errorf("defaultRanges(%s, %v) = %q, want %q", c.subnet, c.addrs, got, c.want)
		}
	}
}

// TestDHCPProblems: each refusal names its line and key.
func TestDHCPProblems(t *testing.T) {
	const nat = "[bridges.b]\nmodel = \"nat\"\naddress = \"192.168.100.1/24\"\n"
	for _, c := range []struct {
		name, text string
		line       int
		key, want  string
	}{
		{"bridged", "[bridges.b]\nmodel = \"bridged\"\nuplink = \"eth0\"\n[bridges.b.dhcp]\n", 4, "bridges.b.dhcp", "no DHCP on a bridged bridge"},
		{"isolated without address", "[bridges.b]\nmodel = \"isolated\"\n[bridges.b.dhcp]\n", 3, "bridges.b.dhcp", "DHCP needs the bridge to have an address"},
		{"isolated address without dhcp", "[bridges.b]\nmodel = \"isolated\"\naddress = \"192.168.1.1/24\"\n", 3, "bridges.b.address", "unless it serves DHCP"},
		{"range outside", nat + "[bridges.b.dhcp]\nrange = \"192.168.101.10-192.168.101.20\"\n", 5, "bridges.b.dhcp.range", "outside the bridge's subnet 192.168.100.0/24"},
		{"range end outside", nat + "[bridges.b.dhcp]\nrange = \"192.168.100.10-192.168.101.20\"\n", 5, "bridges.b.dhcp.range", "outside"},
		{"range with gateway", nat + "[bridges.b.dhcp]\nrange = \"192.168.100.1-192.168.100.20\"\n", 5, "bridges.b.dhcp.range", "contains the bridge's own address 192.168.100.1"},
		{"range with broadcast", nat + "[bridges.b.dhcp]\nrange = \"192.168.100.10-192.168.100.255\"\n", 5, "bridges.b.dhcp.range", "broadcast"},
		{"range backwards", nat + "[bridges.b.dhcp]\nrange = \"192.168.100.20-192.168.100.10\"\n", 5, "bridges.b.dhcp.range", "ends before it starts"},
		{"range syntax", nat + "[bridges.b.dhcp]\nrange = \"192.168.100.10\"\n", 5, "bridges.b.dhcp.range", "not a range"},
		{"lease short", nat + "[bridges.b.dhcp]\nlease = \"30s\"\n", 5, "bridges.b.dhcp.lease", "shorter than dnsmasq's shortest lease"},
		{"lease syntax", nat + "[bridges.b.dhcp]\nlease = \"an hour\"\n", 5, "bridges.b.dhcp.lease", "not a duration"},
		{"reserve", nat + "[bridges.b.dhcp]\nreserve = \"mac\"\n", 5, "bridges.b.dhcp.reserve", "want \"vm\""},
		{"domain label", nat + "[bridges.b.dhcp]\ndomain = \"my_vms\"\n", 5, "bridges.b.dhcp.domain", "not a valid DNS label"},
		{"domain hyphen", nat + "[bridges.b.dhcp]\ndomain = \"-vm\"\n", 5, "bridges.b.dhcp.domain", "starts or ends with '-'"},
		{"domain empty label", nat + "[bridges.b.dhcp]\ndomain = \"a..b\"\n", 5, "bridges.b.dhcp.domain", "empty label"},
		{"ipv6 without address", nat + "[bridges.b.dhcp]\nipv6 = \"slaac\"\n", 5, "bridges.b.dhcp.ipv6", "needs an IPv6 address"},
		{"ipv6 value", "[bridges.b]\nmodel = \"nat\"\naddress = [\"192.168.100.1/24\", \"fd00::1/64\"]\n[bridges.b.dhcp]\nipv6 = \"yes\"\n", 5, "bridges.b.dhcp.ipv6", "want \"slaac\""},
		{"slaac not /64", "[bridges.b]\nmodel = \"nat\"\naddress = [\"192.168.100.1/24\", \"fd00::1/80\"]\n[bridges.b.dhcp]\n", 4, "bridges.b.dhcp.ipv6", "SLAAC needs a /64"},
		{"unknown key", nat + "[bridges.b.dhcp]\nranges = \"x\"\n", 5, "bridges.b.dhcp.ranges", "did you mean \"range\""},
		{"dhcp not a table", nat + "dhcp = true\n", 4, "bridges.b.dhcp", "must be a table"},
		{"host without dhcp", nat + "[[bridges.b.host]]\nvm = \"a\"\nip = \"192.168.100.5\"\n", 4, "bridges.b.host", "needs DHCP"},
		{"host outside", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nvm = \"a\"\nip = \"192.168.7.5\"\n", 7, "bridges.b.host.ip", "outside the bridge's subnet"},
		{"host gateway", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nvm = \"a\"\nip = \"192.168.100.1\"\n", 7, "bridges.b.host.ip", "the bridge's own address"},
		{"host network", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nvm = \"a\"\nip = \"192.168.100.0\"\n", 7, "bridges.b.host.ip", "network or broadcast"},
		{"host v6", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nvm = \"a\"\nip = \"fd00::5\"\n", 7, "bridges.b.host.ip", "reservations are IPv4"},
		{"host both", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nvm = \"a\"\nmac = \"52:54:00:00:00:01\"\nip = \"192.168.100.5\"\n", 5, "bridges.b.host", "not both"},
		{"host neither", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nip = \"192.168.100.5\"\n", 5, "bridges.b.host", "needs vm"},
		{"host no ip", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nvm = \"a\"\n", 5, "bridges.b.host", "needs ip"},
		{"host bad mac", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nmac = \"52:54:00\"\nip = \"192.168.100.5\"\n", 6, "bridges.b.host.mac", "not a MAC"},
		{"host multicast mac", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nmac = \"01:00:5e:00:00:01\"\nip = \"192.168.100.5\"\n", 6, "bridges.b.host.mac", "multicast"},
		{"hosts same ip", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nvm = \"a\"\nip = \"192.168.100.5\"\n[[bridges.b.host]]\nvm = \"b\"\nip = \"192.168.100.5\"\n", 8, "bridges.b.host", "reserved already (line 5)"},
		{"hosts same vm", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nvm = \"a\"\nip = \"192.168.100.5\"\n[[bridges.b.host]]\nvm = \"a\"\nip = \"192.168.100.6\"\n", 8, "bridges.b.host", "VM \"a\" has a reservation already"},
		{"hosts same mac", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nmac = \"52:54:00:00:00:01\"\nip = \"192.168.100.5\"\n[[bridges.b.host]]\nmac = \"52:54:00:00:00:01\"\nip = \"192.168.100.6\"\n", 8, "bridges.b.host", "MAC 52:54:00:00:00:01 has a reservation already"},
		{"host unknown key", nat + "[bridges.b.dhcp]\n[[bridges.b.host]]\nvm = \"a\"\nip = \"192.168.100.5\"\nname = \"x\"\n", 8, "bridges.b.host.name", "unknown key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.text), "p.toml")
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Parse = %v, want problems", err)
			}
			for _, e := range ps {
				if e.Line == c.line && e.Key == c.key && strings.Contains(e.Msg, c.want) {
					return
				}
			}
			t.Fatalf("no problem at line %d key %s saying %q; got:\n%v", c.line, c.key, c.want, ps)
		})
	}
}

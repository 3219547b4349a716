package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestBridgesParse(t *testing.T) {
	p, err := Parse([]byte(`
bridge = "br-nat"
[bridges.br-nat]
model = "nat"
address = ["192.168.100.1/24", "fd00::1/64"]
uplink = "eth0"
snat_to = "198.51.100.3"
remove_when_empty = true

[bridges.br-lan]
model = "bridged"
uplink = "eth1"
stp = true
forward_delay = 4
mtu = 9000

[bridges.iso]
model = "isolated"
wait_forwarding = false
`), "b.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.BridgeNames(); strings.Join(got, ",") != "br-lan,br-nat,iso" {
		t.Fatalf("BridgeNames = %q", got)
	}
	n := p.Spec("br-nat")
	if n.Model != NAT || n.Line != 3 || n.Uplink != "eth0" || n.SNATTo != netip.MustParseAddr("198.51.100.3") || !n.RemoveWhenEmpty || !n.WaitForwarding {
		t.Errorf("br-nat: %+v", n)
	}
	if len(n.Addresses) != 2 || n.Addresses[0] != netip.MustParsePrefix("192.168.100.1/24") {
		t.Errorf("br-nat addresses: %v", n.Addresses)
	}
	if v4, v6 := n.Families(); !v4 || !v6 {
		t.Errorf("br-nat families: %v %v", v4, v6)
	}
	if s := n.NATSubnets(); len(s) != 1 || s[0] != netip.MustParsePrefix("192.168.100.0/24") {
		t.Errorf("br-nat NAT subnets: %v", s)
	}
	l := p.Spec("br-lan")
	if l.Model != Bridged || !l.STP || l.ForwardDelay != 4 || l.MTU != 9000 {
		t.Errorf("br-lan: %+v", l)
	}
	if v4, v6 := l.Families(); v4 || v6 {
		t.Error("a bridged bridge routes nothing")
	}
	if p.Spec("iso").WaitForwarding || p.Spec("nosuch") != nil {
		t.Error("iso wait_forwarding or missing spec")
	}
}

func TestBridgesProblems(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		line       int
		key, want  string
	}{
		{"no model", "[bridges.b]\n", 1, "bridges.b", "model is required"},
		{"bad model", "[bridges.b]\nmodel = \"nated\"\n", 2, "bridges.b.model", "want one of"},
		{"address on isolated", "[bridges.b]\nmodel = \"isolated\"\naddress = \"10.0.0.1/8\"\n", 3, "bridges.b.address", "isolated bridge has no address"},
		{"uplink on isolated", "[bridges.b]\nmodel = \"isolated\"\nuplink = \"eth0\"\n", 3, "bridges.b.uplink", "no uplink"},
		{"routed without address", "[bridges.b]\nmodel = \"routed\"\n", 1, "bridges.b", "needs address"},
		{"routed with uplink", "[bridges.b]\nmodel = \"routed\"\naddress = \"10.0.0.1/8\"\nuplink = \"eth0\"\n", 4, "bridges.b.uplink", "routed bridge has no uplink"},
		{"nat IPv6 only", "[bridges.b]\nmodel = \"nat\"\naddress = \"fd00::1/64\"\n", 3, "bridges.b.address", "IPv4"},
		{"bridged without uplink", "[bridges.b]\nmodel = \"bridged\"\n", 1, "bridges.b", "needs uplink"},
		{"bridged with address", "[bridges.b]\nmodel = \"bridged\"\nuplink = \"eth0\"\naddress = \"10.0.0.1/8\"\n", 4, "bridges.b.address", "takes the uplink's addresses"},
		{"snat_to on routed", "[bridges.b]\nmodel = \"routed\"\naddress = \"10.0.0.1/8\"\nsnat_to = \"198.51.100.3\"\n", 4, "bridges.b.snat_to", "nat\" only"},
		{"snat_to IPv6", "[bridges.b]\nmodel = \"nat\"\naddress = \"10.0.0.1/8\"\nsnat_to = \"2001:db8::1\"\n", 4, "bridges.b.snat_to", "IPv4"},
		{"snat_to garbage", "[bridges.b]\nmodel = \"nat\"\naddress = \"10.0.0.1/8\"\nsnat_to = \"x\"\n", 4, "bridges.b.snat_to", "not an IP"},
		{"subnet address", "[bridges.b]\nmodel = \"routed\"\naddress = \"10.0.0.0/8\"\n", 3, "bridges.b.address", "subnet's own address"},
		{"no prefix", "[bridges.b]\nmodel = \"routed\"\naddress = \"10.0.0.1\"\n", 3, "bridges.b.address", "no prefix length"},
		{"bad CIDR", "[bridges.b]\nmodel = \"routed\"\naddress = \"10.0.0.1/33\"\n", 3, "bridges.b.address", "CIDR"},
		{"address list type", "[bridges.b]\nmodel = \"routed\"\naddress = [1]\n", 3, "bridges.b.address", "list of strings"},
		{"stp delay", "[bridges.b]\nmodel = \"isolated\"\nstp = true\n", 1, "bridges.b.forward_delay", "2 to 30"},
		{"delay range", "[bridges.b]\nmodel = \"isolated\"\nforward_delay = 31\n", 3, "bridges.b.forward_delay", "out of range"},
		{"stp type", "[bridges.b]\nmodel = \"isolated\"\nstp = \"yes\"\n", 3, "bridges.b.stp", "true or false"},
		{"uplink is itself", "[bridges.b]\nmodel = \"bridged\"\nuplink = \"b\"\n", 3, "bridges.b.uplink", "bridge itself"},
		{"bad bridge name", "[bridges.\"a:b\"]\nmodel = \"isolated\"\n", 1, "bridges.a:b", "not a bridge name"},
		{"unknown key", "[bridges.b]\nmodel = \"isolated\"\nmodle = 1\n", 3, "bridges.b.modle", "did you mean \"model\""},
		{"bridges not a table", "bridges = 1\n", 1, "bridges", "must be a table"},
		{"overlap", "[bridges.a]\nmodel = \"routed\"\naddress = \"10.1.0.1/16\"\n[bridges.b]\nmodel = \"routed\"\naddress = \"10.1.2.1/24\"\n", 6, "bridges.b.address", "overlaps 10.1.0.1/16 of bridges.a (line 1)"},
		{"shared uplink", "[bridges.a]\nmodel = \"bridged\"\nuplink = \"eth0\"\n[bridges.b]\nmodel = \"nat\"\naddress = \"10.0.0.1/8\"\nuplink = \"eth0\"\n", 7, "bridges.b.uplink", "one bridge only"},
		{"uplink is a policy bridge", "[bridges.a]\nmodel = \"isolated\"\n[bridges.b]\nmodel = \"bridged\"\nuplink = \"a\"\n", 5, "bridges.b.uplink", "itself a bridge of this policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text), "b.toml")
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Parse: %v, want Problems", err)
			}
			for _, p := range probs {
				if p.Line == tc.line && p.Key == tc.key && strings.Contains(p.Msg, tc.want) {
					return
				}
			}
			t.Fatalf("no problem at line %d key %q containing %q; got:\n%v", tc.line, tc.key, tc.want, probsText(probs))
		})
	}
}

func probsText(ps Problems) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestProblemsSortedByLine(t *testing.T) {
	_, err := Parse([]byte("[bridges.a]\nmodel = \"routed\"\naddress = \"10.1.0.1/16\"\n[bridges.b]\nmodel = \"routed\"\naddress = \"10.1.2.1/24\"\nmodle = 2\nbirdge = 1\n"), "b.toml")
	var probs Problems
	if !errors.As(err, &probs) || len(probs) < 2 {
		t.Fatalf("%v", err)
	}
	for i := 1; i < len(probs); i++ {
		if probs[i].Line < probs[i-1].Line {
			t.Fatalf("problems out of line order:\n%s", probsText(probs))
		}
	}
}

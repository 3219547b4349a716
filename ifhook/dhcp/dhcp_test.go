package dhcp

import (
	"bytes"
	"flag"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ifhook/ifhook/ifhook/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func mustPolicy(t *testing.T, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(text), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func paths(br string) Paths {
	return Paths{Conf: "/run/ifhook/dnsmasq/" + br + ".conf", Pid: "/run/ifhook/dnsmasq/" + br + ".pid",
		Log: "/run/ifhook/dnsmasq/" + br + ".log", Leases: "/var/lib/ifhook/dnsmasq/" + br + ".leases",
		HostsDir: "/run/ifhook/dnsmasq/" + br + ".hosts"}
}

// TestConfigGolden: the configuration each kind of policy gives, as
// golden files (go test -update rewrites them), each checked by dnsmasq
// itself (--test) when it is installed.
func TestConfigGolden(t *testing.T) {
	for _, c := range []struct {
		name, policy string
		mtu          int
	}{
		{"nat", `
[bridges.br-nat]
model = "nat"
address = ["192.168.100.1/24", "fd00:100::1/64"]
[bridges.br-nat.dhcp]
range = "192.168.100.100-192.168.100.199"
`, 0},
		{"isolated-mtu", `
[bridges.br-iso]
model = "isolated"
address = ["192.168.50.1/24", "fd00:50::1/64"]
mtu = 1400
[bridges.br-iso.dhcp]
lease = "infinite"
`, 1400},
		{"routed-dhcpv6-nodns", `
[bridges.br-rt]
model = "routed"
address = ["192.168.60.129/24", "fd00:60::1/64"]
[bridges.br-rt.dhcp]
domain = ""
ipv6 = "dhcpv6"
lease = "45m"
`, 0},
		{"v6-only", `
[bridges.br6]
model = "routed"
address = "fd00:6::1/64"
[bridges.br6.dhcp]
domain = "lab.example"
`, 9000},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, c.policy)
			spec := p.Spec(p.BridgeNames()[0])
			got := Config{Spec: spec, Where: "bridges." + spec.Name + " at p.toml:2", MTU: c.mtu, Paths: paths(spec.Name), User: "dnsmasq"}.Render()
			golden := filepath.Join("testdata", c.name+".conf")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("config differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
			checkWithDnsmasq(t, got)
		})
	}
}

// checkWithDnsmasq has dnsmasq check the configuration's syntax.
func checkWithDnsmasq(t *testing.T, conf []byte) {
	bin := ""
	for _, p := range []string{"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"} {
		if _, err := os.Stat(p); err == nil {
			bin = p
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("dnsmasq is not installed (package dnsmasq-base), and CI is set")
		}
		t.Log("dnsmasq not installed: syntax not checked")
		return
	}
	f := filepath.Join(t.TempDir(), "c.conf")
	if err := os.WriteFile(f, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--test", "--conf-file="+f).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "syntax check OK") {
		t.Errorf("dnsmasq --test: %v: %s", err, out)
	}
}

func TestEntry(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:aa:bb:cc")
	for _, e := range []Entry{
		{MAC: mac, IP: netip.MustParseAddr("192.168.1.5"), Name: "first"},
		{MAC: mac, Name: "first"},
		{MAC: mac, IP: netip.MustParseAddr("192.168.1.5")},
		{MAC: mac},
	} {
		got, err := ParseEntry([]byte(e.Line()))
		if err != nil || got.String() != e.String() {
			t.Errorf("ParseEntry(%q) = %v, %v", e.Line(), got, err)
		}
	}
	for _, bad := range []string{"", "52:54:00:aa:bb:cc", "52:54:00:aa:bb:cc,first,192.168.1.5\n", "52:54:00:aa:bb:cc,x,y\n",
		"52:54:00:aa:bb:cc,fd00::1\n", "zz,1.2.3.4\n", "52:54:00:aa:bb:cc,Bad_Name\n", "52:54:00:aa:bb:cc\n\n", "52:54:00:aa:bb:cc,a,b,c\n"} {
		if _, err := ParseEntry([]byte(bad)); err == nil {
			t.Errorf("ParseEntry(%q) accepted", bad)
		}
	}
}

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{
		"first": "first", "Web 1": "web-1", "db.prod": "db-prod", "--x--": "x", "___": "", "123": "",
		"a\x1b[31mred": "a-31mred", "üx": "x", strings.Repeat("a", 80): strings.Repeat("a", 63), "vm_01-b": "vm-01-b",
	} {
		if got := Label(in); got != want {
			t.Errorf("Label(%q) = %q, want %q", in, got, want)
		}
		if got := Label(in); got != "" && !validLabel(got) {
			t.Errorf("Label(%q) = %q is no label", in, got)
		}
	}
}

func TestBook(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:aa:bb:cc")
	b := &Book{}
	now := time.Unix(1700000000, 0).UTC()
	b.Set(Grant{IP: netip.MustParseAddr("192.168.1.9"), VM: "b", MAC: mac, Since: now})
	b.Set(Grant{IP: netip.MustParseAddr("192.168.1.5"), VM: "a \"quoted\"", MAC: mac, Since: now})
	b.Set(Grant{IP: netip.MustParseAddr("192.168.1.7"), VM: "b", MAC: mac, Since: now}) // b moves
	if len(b.Grants) != 2 || b.ByVM("b").IP != netip.MustParseAddr("192.168.1.7") || b.ByIP(netip.MustParseAddr("192.168.1.9")) != nil {
		t.Fatalf("book: %+v", b.Grants)
	}
	back, err := ParseBook(b.Encode())
	if err != nil || len(back.Grants) != 2 || back.Grants[0].VM != "a \"quoted\"" || !back.Grants[1].Since.Equal(now) {
		t.Fatalf("ParseBook(Encode()) = %+v, %v\n%s", back, err, b.Encode())
	}
	b.Drop(netip.MustParseAddr("192.168.1.5"))
	if len(b.Grants) != 1 {
		t.Fatal("Drop")
	}
	for _, bad := range []string{
		"192.168.1.5 52:54:00:aa:bb:cc 1 \"a\"\n192.168.1.5 52:54:00:aa:bb:cc 1 \"b\"\n",
		"192.168.1.6 52:54:00:aa:bb:cc 1 \"a\"\n192.168.1.5 52:54:00:aa:bb:cc 1 \"b\"\n",
		"192.168.1.5 52:54:00:aa:bb:cc 1 \"a\"\n192.168.1.6 52:54:00:aa:bb:cc 1 \"a\"\n",
		"192.168.1.5 52:54:00:aa:bb:cc 1 a\n", "fd00::1 52:54:00:aa:bb:cc 1 \"a\"\n", "192.168.1.5 x 1 \"a\"\n",
		"192.168.1.5 52:54:00:aa:bb:cc -1 \"a\"\n", "192.168.1.5 52:54:00:aa:bb:cc 1 \"\"\n", "garbage\n",
	} {
		if _, err := ParseBook([]byte(bad)); err == nil {
			t.Errorf("ParseBook(%q) accepted", bad)
		}
	}
}

func TestParseLeases(t *testing.T) {
	data := "1700003600 52:54:00:aa:bb:cc 192.168.100.23 first 01:52:54:00:aa:bb:cc\n" +
		"0 52:54:00:aa:bb:cd 192.168.100.24 * *\n" +
		"garbage line\n" +
		"1700003600 52:54:00:aa:bb:ce 192.168.100.25 \x1b[31m *\n" +
		"duid 00:01:00:01:2c:aa:bb:cc:52:54:00:00:00:01\n" +
		"1700003600 12345 fd00:100::1234 first 00:04:aa\n" +
		"1700003600 12345 192.168.1.1 first 00:04:aa\n" +
		"1700003600 T77 fd00:100::99 * 00:03:00:01:52:54:00:aa:bb:cc\n" +
		"1700003600 x12 fd00:100::98 * 00:03:00:01:52:54:00:aa:bb:cc\n" +
		"1700003600 4294967296 fd00:100::97 * 00:03:00:01:52:54:00:aa:bb:cc\n"
	leases, probs := ParseLeases([]byte(data))
	if len(leases) != 5 || len(probs) != 4 {
		t.Fatalf("leases %+v problems %v", leases, probs)
	}
	if l := leases[0]; l.Hostname != "first" || l.IP != netip.MustParseAddr("192.168.100.23") || l.Expiry.Unix() != 1700003600 || l.Expired(time.Unix(1700000000, 0)) || !l.Expired(time.Unix(1700003600, 0)) {
		t.Errorf("lease 0: %+v", l)
	}
	if l := leases[1]; !l.Expiry.IsZero() || l.Expired(time.Now()) || l.Hostname != "" || l.ClientID != "" {
		t.Errorf("lease 1 (infinite): %+v", l)
	}
	if l := leases[3]; !l.IPv6 || l.MAC != nil || l.IP != netip.MustParseAddr("fd00:100::1234") || l.IAID != 12345 || l.TA || l.ServerDUID != "00:01:00:01:2c:aa:bb:cc:52:54:00:00:00:01" {
		t.Errorf("lease 3 (v6): %+v", l)
	}
	if l := leases[4]; l.IAID != 77 || !l.TA || l.ServerDUID == "" {
		t.Errorf("lease 4 (v6, a temporary address): %+v", l)
	}
	if leases[0].ServerDUID != "" {
		t.Errorf("a DHCPv4 lease with a server DUID: %+v", leases[0])
	}
	if _, p := ParseLeases(make([]byte, MaxLeaseFile+1)); len(p) != 1 {
		t.Error("a huge lease file is read")
	}
}

func FuzzParseEntry(f *testing.F) {
	f.Add([]byte("52:54:00:aa:bb:cc,192.168.1.5,first\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEntry(data)
		if err != nil {
			return
		}
		again, err := ParseEntry([]byte(e.Line()))
		if err != nil || again.String() != e.String() {
			t.Fatalf("%q: round trip %q, %v", data, e.Line(), err)
		}
	})
}

func FuzzParseBook(f *testing.F) {
	f.Add([]byte(bookHeader + "192.168.1.5 52:54:00:aa:bb:cc 1700000000 \"a\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBook(data)
		if err != nil {
			return
		}
		again, err := ParseBook(b.Encode())
		if err != nil || !bytes.Equal(again.Encode(), b.Encode()) {
			t.Fatalf("%q: round trip: %v", data, err)
		}
	})
}

func FuzzParseLeases(f *testing.F) {
	f.Add([]byte("1700003600 52:54:00:aa:bb:cc 192.168.100.23 first *\nduid 00:01\n1 2 fd00::1 * 00:01\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		leases, _ := ParseLeases(data)
		for _, l := range leases {
			if !l.IP.IsValid() || l.IPv6 == l.IP.Is4() || (l.MAC == nil) != l.IPv6 {
				t.Fatalf("%q: bad lease %+v", data, l)
			}
		}
	})
}

// TestLeaseHasMAC: a DHCPv4 lease by its MAC; a DHCPv6 lease by a DUID
// made from the MAC (LLT or LL, Ethernet), never by any other DUID.
func TestLeaseHasMAC(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:aa:bb:cc")
	for _, c := range []struct {
		lease Lease
		want  bool
	}{
		{Lease{MAC: mac}, true},
		{Lease{MAC: net.HardwareAddr{0x52, 0x54, 0, 0xaa, 0xbb, 0xcd}}, false},
		{Lease{IPv6: true, ClientID: "00:01:00:01:2c:aa:bb:cc:52:54:00:aa:bb:cc"}, true}, // DUID-LLT
		{Lease{IPv6: true, ClientID: "00:03:00:01:52:54:00:aa:bb:cc"}, true},             // DUID-LL
		{Lease{IPv6: true, ClientID: "00:03:00:06:52:54:00:aa:bb:cc"}, false},            // not Ethernet
		{Lease{IPv6: true, ClientID: "00:02:00:00:ab:11:52:54:00:aa:bb:cc"}, false},      // DUID-EN: no MAC, whatever its bytes
		{Lease{IPv6: true, ClientID: "00:01:00:01:2c:aa:bb:cc:52:54:00:aa:bb:cc:00"}, false},
		{Lease{IPv6: true, ClientID: ""}, false},
		{Lease{IPv6: true, MAC: mac, ClientID: "zz"}, false},
	} {
		if got := c.lease.HasMAC(mac); got != c.want {
			t.Errorf("%+v: HasMAC = %v, want %v", c.lease, got, c.want)
		}
	}
	if (Lease{MAC: mac}).HasMAC(nil) {
		t.Error("a lease is nil's")
	}
}

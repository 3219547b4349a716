package nat

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook/nstest"
)

func TestMain(m *testing.M) { nstest.GuardRootNS(m) }

func TestPrefixMask(t *testing.T) {
	for bits, want := range map[int][]byte{0: {0, 0, 0, 0}, 8: {255, 0, 0, 0}, 20: {255, 255, 240, 0}, 24: {255, 255, 255, 0}, 31: {255, 255, 255, 254}, 32: {255, 255, 255, 255}} {
		if got := prefixMask(bits); !bytes.Equal(got, want) {
			t.Errorf("prefixMask(%d) = %v, want %v", bits, got, want)
		}
	}
}

func TestRuleString(t *testing.T) {
	r := Rule{Bridge: "br0", Subnet: netip.MustParsePrefix("192.0.2.0/24"), OutIf: "eth0"}
	want := `nft add rule inet ifhook postrouting ip saddr 192.0.2.0/24 ip daddr != 192.0.2.0/24 oifname "eth0" masquerade comment "ifhook:br0 192.0.2.0/24"`
	if got := r.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	r.SNATTo, r.OutIf = netip.MustParseAddr("198.51.100.3"), ""
	if got := r.String(); !strings.Contains(got, "snat ip to 198.51.100.3") || strings.Contains(got, "oifname") {
		t.Errorf("String() = %s", got)
	}
	for _, c := range []struct {
		comment, bridge string
		ok              bool
	}{{"ifhook:br0 192.0.2.0/24", "br0", true}, {"ifhook:br0", "br0", true}, {"libvirt:br0", "", false}, {"", "", false}} {
		if b, ok := bridgeOf(c.comment); b != c.bridge || ok != c.ok {
			t.Errorf("bridgeOf(%q) = %q, %v", c.comment, b, ok)
		}
	}
}

// TestTableInNamespace adds, finds and deletes rules in a test namespace:
// adding twice adds once, deleting one bridge's leaves the other's, and the
// table goes with the last rule.
func TestTableInNamespace(t *testing.T) {
	ns := nstest.New(t)
	tb, err := Open(ns.FD())
	if err != nil {
		t.Fatal(err)
	}
	a := Rule{Bridge: "br-a", Subnet: netip.MustParsePrefix("192.0.2.0/24")}
	b := Rule{Bridge: "br-b", Subnet: netip.MustParsePrefix("198.51.100.0/24"), SNATTo: netip.MustParseAddr("203.0.113.7")}
	for i, r := range []Rule{a, a, b} {
		added, err := tb.Ensure(r)
		if err != nil {
			t.Fatal(err)
		}
		if want := i != 1; added != want {
			t.Errorf("Ensure #%d added = %v, want %v", i, added, want)
		}
	}
	if rules, _ := tb.Rules(""); len(rules) != 2 {
		t.Fatalf("%d rules, want 2", len(rules))
	}
	if has, _ := tb.Has(a); !has {
		t.Error("Has(a) = false")
	}
	if _, err := tb.Ensure(Rule{Bridge: "v6", Subnet: netip.MustParsePrefix("2001:db8::/64")}); err == nil {
		t.Error("an IPv6 subnet was accepted")
	}
	if removed, err := tb.Delete("br-a"); err != nil || !removed {
		t.Fatalf("Delete(br-a) = %v, %v", removed, err)
	}
	if has, _ := tb.HasBridge("br-b"); !has {
		t.Fatal("deleting br-a's rule removed br-b's")
	}
	if removed, _ := tb.Delete("br-a"); removed {
		t.Error("second Delete removed something")
	}
	if _, err := tb.Delete("br-b"); err != nil {
		t.Fatal(err)
	}
	tables, err := tb.conn.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range tables {
		if x.Name == TableName {
			t.Error("the table outlived its last rule")
		}
	}
	if chains, err := ForwardDropChains(ns.FD()); err != nil || len(chains) != 0 {
		t.Errorf("ForwardDropChains in an empty namespace = %v, %v", chains, err)
	}
}

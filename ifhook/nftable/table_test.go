package nftable

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables"
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
	r := NAT{Bridge: "br0", Subnet: netip.MustParsePrefix("192.0.2.0/24"), OutIf: "eth0"}
	want := `nft add rule inet ifhook postrouting ip saddr 192.0.2.0/24 ip daddr != 192.0.2.0/24 oifname "eth0" masquerade comment "ifhook:br0 192.0.2.0/24"`
	if got := r.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	r.SNATTo, r.OutIf = netip.MustParseAddr("198.51.100.3"), ""
	if got := r.String(); !strings.Contains(got, "snat ip to 198.51.100.3") || strings.Contains(got, "oifname") {
		t.Errorf("String() = %s", got)
	}
	for _, c := range []struct {
		comment, bridge, subnet string
		ok                      bool
	}{{"ifhook:br0 192.0.2.0/24", "br0", "192.0.2.0/24", true}, {"ifhook:br0", "br0", "invalid Prefix", true}, {"libvirt:br0", "", "invalid Prefix", false}, {"", "", "invalid Prefix", false}} {
		if b, sub, ok := parseComment(c.comment); b != c.bridge || ok != c.ok || sub.String() != c.subnet {
			t.Errorf("parseComment(%q) = %q, %s, %v", c.comment, b, sub, ok)
		}
	}
	if got := r.DeleteString(); !strings.Contains(got, "handle ?") {
		t.Errorf("DeleteString without a handle = %s", got)
	}
	r.Handle = 7
	if got := r.DeleteString(); !strings.HasPrefix(got, "nft delete rule inet ifhook postrouting handle 7 # ifhook:br0 ") {
		t.Errorf("DeleteString = %s", got)
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
	a := NAT{Bridge: "br-a", Subnet: netip.MustParsePrefix("192.0.2.0/24"), OutIf: "up0"}
	b := NAT{Bridge: "br-b", Subnet: netip.MustParsePrefix("198.51.100.0/24"), SNATTo: netip.MustParseAddr("203.0.113.7")}
	if ok, err := tb.Exists(); err != nil || ok {
		t.Fatalf("Exists before any rule = %v, %v", ok, err)
	}
	for _, r := range []NAT{a, b} {
		if err := tb.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := tb.Exists(); err != nil || !ok {
		t.Fatalf("Exists after a rule = %v, %v", ok, err)
	}
	rules, err := tb.List("")
	if err != nil || len(rules) != 2 {
		t.Fatalf("List = %v, %v; want 2 rules", rules, err)
	}
	// What the kernel holds reads back as what was added.
	for i, want := range []NAT{a, b} {
		got := rules[i]
		if got.Handle == 0 {
			t.Errorf("rule %d has no handle", i)
		}
		got.Handle = 0
		if got != want {
			t.Errorf("rule %d reads back as %+v, want %+v", i, got, want)
		}
	}
	if has, _ := tb.Has(a); !has {
		t.Error("Has(a) = false")
	}
	// What the kernel's rules match is the subnet, not just the comment.
	for _, r := range []NAT{a, b} {
		m, err := tb.Match(r)
		if err != nil {
			t.Fatal(err)
		}
		if m.Source != r.Subnet || m.NotDest != r.Subnet {
			t.Errorf("rule of %s matches source %s, not destination %s; want %s for both", r.Bridge, m.Source, m.NotDest, r.Subnet)
		}
	}
	if err := tb.Add(NAT{Bridge: "v6", Subnet: netip.MustParsePrefix("2001:db8::/64")}); err == nil {
		t.Error("an IPv6 subnet was accepted")
	}
	if err := tb.Delete(a); err != nil {
		t.Fatal(err)
	}
	if has, _ := tb.Has(b); !has {
		t.Fatal("deleting br-a's rule removed br-b's")
	}
	if ok, _ := tb.Exists(); !ok {
		t.Fatal("the table went while br-b's rule is in it")
	}
	if err := tb.Delete(b); err != nil {
		t.Fatal(err)
	}
	if ok, _ := tb.Exists(); ok {
		t.Error("the table outlived its last rule")
	}
	if chains, err := ForwardDropChains(ns.FD()); err != nil || len(chains) != 0 {
		t.Errorf("ForwardDropChains in an empty namespace = %v, %v", chains, err)
	}
}

// TestServicesInNamespace adds and deletes a bridge's DHCP and DNS rules
// beside another bridge's NAT rule: each kind goes alone, and the table
// goes with the last rule of either.
func TestServicesInNamespace(t *testing.T) {
	ns := nstest.New(t)
	tb, err := Open(ns.FD())
	if err != nil {
		t.Fatal(err)
	}
	s := Services{Bridge: "br-a"}
	n := NAT{Bridge: "br-b", Subnet: netip.MustParsePrefix("198.51.100.0/24")}
	if ok, err := tb.HasServices(s); err != nil || ok {
		t.Fatalf("HasServices before = %v, %v", ok, err)
	}
	for i := 0; i < 2; i++ { // twice: still one set
		if err := tb.AddServices(s); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := tb.countServices(s); err != nil || c != len(s.rules()) {
		t.Fatalf("after two adds: %d rules, %v; want %d", c, err, len(s.rules()))
	}
	if err := tb.Add(n); err != nil {
		t.Fatal(err)
	}
	if ok, err := tb.HasServices(s); err != nil || !ok {
		t.Fatalf("HasServices = %v, %v", ok, err)
	}
	if ok, _ := tb.HasServices(Services{Bridge: "br-b"}); ok {
		t.Fatal("br-b has no services rules")
	}
	if got, err := tb.ServicesBridges(); err != nil || len(got) != 1 || got[0] != "br-a" {
		t.Fatalf("ServicesBridges = %v, %v", got, err)
	}
	// The NAT rules are not mistaken for services rules, nor the reverse.
	if rules, err := tb.List(""); err != nil || len(rules) != 1 || rules[0].Bridge != "br-b" {
		t.Fatalf("List = %v, %v", rules, err)
	}
	if err := tb.Delete(n); err != nil {
		t.Fatal(err)
	}
	if ok, err := tb.Exists(); err != nil || !ok {
		t.Fatalf("the table went with the NAT rule while services rules remain: %v, %v", ok, err)
	}
	if ok, _ := tb.HasServices(s); !ok {
		t.Fatal("deleting br-b's NAT rule took br-a's services rules")
	}
	if err := tb.DeleteServices(s); err != nil {
		t.Fatal(err)
	}
	if err := tb.DeleteServices(s); err != nil {
		t.Fatalf("deleting what is gone: %v", err)
	}
	if ok, err := tb.Exists(); err != nil || ok {
		t.Fatalf("the table stayed after the last rule: %v, %v", ok, err)
	}
	// Input drop chains of other tables are found; ours (accept) is not.
	if err := tb.AddServices(s); err != nil {
		t.Fatal(err)
	}
	conn, err := connect(ns.FD())
	if err != nil {
		t.Fatal(err)
	}
	drop := nftables.ChainPolicyDrop
	fw := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "firewalld"})
	conn.AddChain(&nftables.Chain{Name: "filter_INPUT", Table: fw, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, err := DropChains(ns.FD(), HookInput); err != nil || len(got) != 1 || got[0] != "inet firewalld filter_INPUT" {
		t.Fatalf("DropChains(input) = %v, %v", got, err)
	}
	if got, err := DropChains(ns.FD(), HookForward); err != nil || len(got) != 0 {
		t.Fatalf("DropChains(forward) = %v, %v", got, err)
	}
}

func TestServicesString(t *testing.T) {
	got := Services{Bridge: "br0"}.String()
	for _, want := range []string{
		`nft add chain inet ifhook input '{ type filter hook input priority filter; policy accept; }'`,
		`nft add rule inet ifhook input iifname "br0" udp dport 67 accept comment "ifhook:br0 dhcp"`,
		`nft add rule inet ifhook output oifname "br0" meta nfproto ipv4 udp sport 67 udp checksum set 0 comment "ifhook:br0 dhcp"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("String() lacks %s:\n%s", want, got)
		}
	}
	if _, _, ok := parseComment(Services{Bridge: "br0"}.Comment()); ok {
		t.Error("a services comment parses as a NAT rule's")
	}
}

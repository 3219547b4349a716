package ifhook

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ifhook/ifhook/ifhook/dhcp"
	"github.com/ifhook/ifhook/ifhook/rtnl"
)

const dhcpUnitPolicy = `bridge = "br-dh"
[bridges.br-dh]
model = "nat"
address = "192.168.110.1/24"
[bridges.br-dh.dhcp]
range = "192.168.110.100-192.168.110.199"
[[bridges.br-dh.host]]
vm = "db"
ip = "192.168.110.10"
`

func guests(byTAP map[string]Guest) func(string) Guest {
	return func(tap string) Guest { return byTAP[tap] }
}

// TestHookDHCP: the ifup that makes a DHCP bridge starts its dnsmasq and
// writes the guest's hosts entry with the address explain predicted; a
// second VM gets another; a dead dnsmasq is started again by the next
// ifup; ifdown removes the entry and releases the lease; the same VM gets
// the same address again; gc forgets a TAP that is gone.
func TestHookDHCP(t *testing.T) {
	vnet1 := unitTAP(func(l *rtnl.Link) { l.Name, l.Index, l.MAC = "vnet1", 11, mustMAC("aa:aa:aa:aa:aa:02") })
	vnet2 := unitTAP(func(l *rtnl.Link) { l.Name, l.Index, l.MAC = "vnet2", 12, mustMAC("aa:aa:aa:aa:aa:03") })
	m := unitModel(unitTAP(), vnet1, vnet2)
	h, _ := unitHook(t, m, dhcpUnitPolicy)
	first := Guest{VM: "first", MAC: mustMAC("52:54:00:00:00:01")}
	second := Guest{VM: "second", MAC: mustMAC("52:54:00:00:00:02")}
	db := Guest{VM: "db", MAC: mustMAC("52:54:00:00:00:03")}
	h.cfg.Guest = guests(map[string]Guest{"vnet0": first, "vnet1": second, "vnet2": db})

	// explain, before the TAP exists, predicts the address.
	h.cfg.Guest = guests(map[string]Guest{"vnet9": first})
	ex, err := h.ExplainUp("vnet9")
	if err != nil || ex.DHCP == nil || ex.DHCP.IP == "" || ex.DHCP.Name != "first.vm" {
		t.Fatalf("explain of a TAP to come: %+v, %v", ex.DHCP, err)
	}
	if !strings.Contains(ex.Text(), "dhcp:   "+ex.DHCP.IP+" (derived from the VM's name), name first.vm") {
		t.Errorf("explain text:\n%s", ex.Text())
	}
	h.cfg.Guest = guests(map[string]Guest{"vnet0": first, "vnet1": second, "vnet2": db})

	p, err := h.Up("vnet0")
	if err != nil {
		t.Fatal(err)
	}
	lines := p.Lines()
	if p.Makes == nil || !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "dnsmasq --conf-file=") }) {
		t.Fatalf("the ifup that makes the bridge does not start dnsmasq: %v", lines)
	}
	want := "echo 52:54:00:00:00:01," + ex.DHCP.IP + ",first > "
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, want) {
		t.Fatalf("last step %q, want %q...", last, want)
	}
	e, ok, _ := m.DHCPHost("br-dh", "vnet0")
	if !ok || e.IP.String() != ex.DHCP.IP || e.Name != "first" {
		t.Fatalf("hosts entry: %v %v", e, ok)
	}
	rec, _ := h.State.Read("vnet0")
	if !rec.DHCP || rec.IP != ex.DHCP.IP {
		t.Fatalf("record: %+v", rec)
	}
	book, _, _ := h.DHCP.Book("br-dh")
	if g := book.ByVM("first"); g == nil || g.IP.String() != ex.DHCP.IP {
		t.Fatalf("book: %+v", book)
	}

	// A second VM: another address; the reserved VM: its reservation.
	if _, err := h.Up("vnet1"); err != nil {
		t.Fatal(err)
	}
	e2, _, _ := m.DHCPHost("br-dh", "vnet1")
	if !e2.IP.IsValid() || e2.IP == e.IP {
		t.Fatalf("second's entry %v, first's %v", e2, e)
	}
	m.KillDHCPServer("br-dh")
	p, err = h.Up("vnet2")
	if err != nil {
		t.Fatal(err)
	}
	if p.Makes == nil || !strings.Contains(strings.Join(p.Lines(), "\n"), "# restart: it is not running") {
		t.Fatalf("ifup with dnsmasq dead: %v", p.Lines())
	}
	if sv, _ := m.DHCPServer("br-dh", false); !sv.Running {
		t.Fatal("dnsmasq not restarted")
	}
	if e3, _, _ := m.DHCPHost("br-dh", "vnet2"); e3.IP != netip.MustParseAddr("192.168.110.10") {
		t.Fatalf("db's entry %v", e3)
	}

	// first's guest leased its address; ifdown releases it.
	// And DHCPv6 leases: one under a DUID made from its MAC, one under a
	// DUID without a MAC but with its name; a third is another guest's.
	const serverDUID = "00:01:00:01:2c:aa:bb:cc:52:54:00:ff:ff:ff"
	m.SetLeases("br-dh", dhcp.Lease{Expiry: unitNow.Add(time.Hour), MAC: first.MAC, IP: e.IP, Hostname: "first", ClientID: "01:52:54:00:00:00:01"},
		dhcp.Lease{IPv6: true, Expiry: unitNow.Add(time.Hour), IP: netip.MustParseAddr("fd00:110::1001"), ClientID: "00:01:00:01:2c:00:00:01:52:54:00:00:00:01", IAID: 7, ServerDUID: serverDUID},
		dhcp.Lease{IPv6: true, Expiry: unitNow.Add(time.Hour), IP: netip.MustParseAddr("fd00:110::1002"), Hostname: "first", ClientID: "00:02:00:00:ab:11:01", IAID: 8, TA: true, ServerDUID: serverDUID},
		dhcp.Lease{IPv6: true, Expiry: unitNow.Add(time.Hour), IP: netip.MustParseAddr("fd00:110::1003"), Hostname: "other", ClientID: "00:03:00:01:52:54:00:00:00:09", IAID: 9, ServerDUID: serverDUID})
	ls, err := h.Leases()
	if err != nil || len(ls) != 6 {
		t.Fatalf("leases: %+v, %v", ls, err)
	}
	for _, l := range ls {
		if strings.HasPrefix(l.IP, "fd00:") {
			if want := map[string]string{"fd00:110::1001": "vnet0", "fd00:110::1002": "vnet0", "fd00:110::1003": ""}[l.IP]; l.TAP != want || (want != "" && (l.VM != "first" || l.MAC != first.MAC.String())) || l.Kind != "dynamic" {
				t.Errorf("DHCPv6 lease %+v: want it on TAP %q", l, want)
			}
			continue
		}
		switch l.TAP {
		case "vnet0":
			if l.VM != "first" || l.Kind != "reserved" || l.State != "leased" || l.Expiry == nil {
				t.Errorf("first's lease: %+v", l)
			}
		case "vnet1", "vnet2":
			if l.State != "waiting" || l.Kind != "reserved" {
				t.Errorf("%s's lease: %+v", l.TAP, l)
			}
		}
	}
	list, _ := h.List()
	if list[0].Address != ex.DHCP.IP {
		t.Errorf("list: %+v", list[0])
	}
	p, err = h.Down("vnet0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Lines()[0], "rm ") || !strings.Contains(p.Lines()[0], "dhcp_release br-dh "+ex.DHCP.IP+" 52:54:00:00:00:01") {
		t.Fatalf("down steps: %v", p.Lines())
	}
	if _, ok, _ := m.DHCPHost("br-dh", "vnet0"); ok {
		t.Fatal("the entry stayed")
	}
	if want := "br-dh " + ex.DHCP.IP + " 52:54:00:00:00:01"; !slices.Contains(m.Releases, want) {
		t.Fatalf("releases %v, want %q", m.Releases, want)
	}
	for _, want := range []string{"dhcp_release6 --iface br-dh --client-id 00:01:00:01:2c:00:00:01:52:54:00:00:00:01 --server-id " + serverDUID + " --iaid 7 --ip fd00:110::1001", "--iaid 8 --ip fd00:110::1002"} {
		if !strings.Contains(p.Lines()[0], want) {
			t.Errorf("down steps %v: no dhcp_release6 ... %s", p.Lines(), want)
		}
	}
	if strings.Contains(p.Lines()[0], "fd00:110::1003") || len(m.Releases) != 3 {
		t.Errorf("releases %v: want first's three, not the other guest's", m.Releases)
	}
	// Up again: the same address, from the book.
	if _, err := h.Up("vnet0"); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := m.DHCPHost("br-dh", "vnet0"); again.IP != e.IP {
		t.Fatalf("first came back with %v, had %v", again.IP, e.IP)
	}
	// QEMU killed: vnet1 gone; gc forgets its record and its entry.
	if err := m.DeleteLink(11); err != nil {
		t.Fatal(err)
	}
	removed, err := h.GC()
	if err != nil || !slices.Equal(removed, []string{"vnet1"}) {
		t.Fatalf("gc = %v, %v", removed, err)
	}
	if _, ok, _ := m.DHCPHost("br-dh", "vnet1"); ok {
		t.Fatal("gc left the hosts entry of a TAP that is gone")
	}
	// An entry no record accounts for (a killed ifup) goes too.
	m.SetDHCPHost("br-dh", "vnet7", dhcp.Entry{MAC: mustMAC("52:54:00:00:00:07")})
	if _, err := h.GC(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := m.DHCPHost("br-dh", "vnet7"); ok {
		t.Fatal("gc left an entry no record accounts for")
	}
	if _, ok, _ := m.DHCPHost("br-dh", "vnet0"); !ok {
		t.Fatal("gc took an entry its record accounts for")
	}
}

// TestHookDHCPv6Only: on a bridge with DHCPv6 alone no address is reserved
// (the record has none); `list` shows the guest's DHCPv6 lease, known by
// a DUID made from its MAC, and ifdown releases it.
func TestHookDHCPv6Only(t *testing.T) {
	m := unitModel(unitTAP())
	h, _ := unitHook(t, m, `bridge = "br-v6"
[bridges.br-v6]
model = "routed"
address = "fd00:111::1/64"
[bridges.br-v6.dhcp]
ipv6 = "dhcpv6"
`)
	first := Guest{VM: "first", MAC: mustMAC("52:54:00:00:00:01")}
	h.cfg.Guest = guests(map[string]Guest{"vnet0": first})
	if _, err := h.Up("vnet0"); err != nil {
		t.Fatal(err)
	}
	const duid = "00:03:00:01:52:54:00:00:00:01"
	m.SetLeases("br-v6",
		dhcp.Lease{IPv6: true, Expiry: unitNow.Add(time.Hour), IP: netip.MustParseAddr("fd00:111::1abc"), ClientID: duid, IAID: 1, ServerDUID: duid},
		dhcp.Lease{IPv6: true, Expiry: unitNow.Add(-time.Hour), IP: netip.MustParseAddr("fd00:111::1abd"), ClientID: duid, IAID: 2, ServerDUID: duid})
	list, err := h.List()
	if err != nil || len(list) != 1 || list[0].Address != "fd00:111::1abc" {
		t.Fatalf("list: %+v, %v: want the live DHCPv6 lease as its address", list, err)
	}
	p, err := h.Down("vnet0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Lines()[0], "dhcp_release6 --iface br-v6 --client-id "+duid+" --server-id "+duid+" --iaid 1 --ip fd00:111::1abc") || strings.Contains(p.Lines()[0], "1abd") {
		t.Fatalf("down: %v, want the live lease released and not the expired one", p.Lines())
	}
}

package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const choosePolicy = `
[bridges.br0]
model = "nat"
address = "192.168.100.1/24"
[bridges.br0.dhcp]
range = "192.168.100.100-192.168.100.109"
[[bridges.br0.host]]
vm = "db"
ip = "192.168.100.10"
[[bridges.br0.host]]
mac = "52:54:00:00:00:99"
ip = "192.168.100.103"
`

func mac(n int) net.HardwareAddr { return net.HardwareAddr{0x52, 0x54, 0, 0, 0, byte(n)} }

// TestChoose: reservations win; a VM's address is derived from its name
// alone, stable, and probed past collisions; the book keeps it; a full
// range takes over the grant gone the longest, never one in use.
func TestChoose(t *testing.T) {
	spec := mustPolicy(t, choosePolicy).Spec("br0")
	now := time.Unix(1700000000, 0).UTC()
	in := func(vm string, m net.HardwareAddr, b *Book) Input { return Input{VM: vm, MAC: m, Book: b, Now: now} }

	c, err := Choose(spec, in("db", mac(1), nil))
	if err != nil || c.IP != netip.MustParseAddr("192.168.100.10") || c.Host == nil || c.Grant != nil || !strings.Contains(c.How, "line 7") {
		t.Fatalf("by VM: %+v, %v", c, err)
	}
	c, _ = Choose(spec, in("whatever", mac(0x99), nil))
	if c.IP != netip.MustParseAddr("192.168.100.103") || c.Host == nil {
		t.Fatalf("by MAC: %+v", c)
	}
	if c, _ := Choose(spec, in("", mac(1), nil)); !c.Dynamic() {
		t.Fatalf("no VM name: %+v", c)
	}

	// The same name gives the same address, whatever the book holds of
	// others' and whoever asks first.
	book := &Book{}
	first, err := Choose(spec, in("first", mac(1), book))
	if err != nil || first.Dynamic() || first.Grant == nil || !spec.DHCP.InPool(first.IP) || first.IP == netip.MustParseAddr("192.168.100.103") {
		t.Fatalf("first: %+v, %v", first, err)
	}
	if want := spec.DHCP.PoolAddr(Hash("first") % 10); want != first.IP && want != netip.MustParseAddr("192.168.100.103") {
		t.Errorf("first got %s, its hash says %s", first.IP, want)
	}
	book.Set(*first.Grant)
	again, _ := Choose(spec, in("first", mac(1), book))
	if again.IP != first.IP || again.Grant != nil {
		t.Errorf("first again: %+v", again)
	}
	// A new MAC for the same VM: same address, a grant to record it.
	moved, _ := Choose(spec, in("first", mac(2), book))
	if moved.IP != first.IP || moved.Grant == nil || moved.Grant.MAC.String() != mac(2).String() || !moved.Grant.Since.Equal(first.Grant.Since) {
		t.Errorf("first with a new MAC: %+v", moved)
	}

	// Fill the range: every VM gets its own address, none twice, never a
	// reservation's.
	seen := map[netip.Addr]string{first.IP: "first"}
	for i := 0; len(seen) < 9; i++ { // 10 in the range, one reserved by MAC
		vm := fmt.Sprintf("vm%d", i)
		c, err := Choose(spec, in(vm, mac(10+i), book))
		if err != nil {
			t.Fatalf("%s: %v", vm, err)
		}
		if o, dup := seen[c.IP]; dup {
			t.Fatalf("%s got %s, %s's", vm, c.IP, o)
		}
		if c.IP == netip.MustParseAddr("192.168.100.103") {
			t.Fatalf("%s got the reserved address", vm)
		}
		seen[c.IP] = vm
		book.Set(*c.Grant)
	}
	// Full, every grant in use: refused.
	inUse := func(netip.Addr) bool { return true }
	x := in("late", mac(50), book)
	x.InUse = inUse
	if c, err := Choose(spec, x); err == nil {
		t.Fatalf("a full range gave %s", c.IP)
	}
	// Full, first's guest gone the longest: late takes first's address.
	book.Grants[0].Since = now.Add(-48 * time.Hour)
	oldest := book.Grants[0]
	x.InUse = func(a netip.Addr) bool { return a != oldest.IP && a != book.Grants[1].IP }
	c, err = Choose(spec, x)
	if err != nil || c.IP != oldest.IP || c.Evicted == nil || c.Evicted.VM != oldest.VM {
		t.Fatalf("take over: %+v, %v", c, err)
	}
	// An address some other MAC holds a live lease on is not given.
	book2 := &Book{}
	want, _ := Choose(spec, in("solo", mac(3), book2))
	leased := in("solo", mac(3), book2)
	leased.Leases = []Lease{{MAC: mac(77), IP: want.IP, Expiry: now.Add(time.Hour)}}
	if c, _ := Choose(spec, leased); c.IP == want.IP {
		t.Errorf("gave %s, leased to another MAC", c.IP)
	}
	leased.Leases[0].Expiry = now.Add(-time.Second)
	if c, _ := Choose(spec, leased); c.IP != want.IP {
		t.Errorf("an expired lease kept %s from solo: got %s", want.IP, c.IP)
	}
	leased.Leases[0].MAC = mac(3)
	leased.Leases[0].Expiry = now.Add(time.Hour)
	if c, _ := Choose(spec, leased); c.IP != want.IP {
		t.Errorf("solo's own lease kept its address from it: got %s", c.IP)
	}

	off := mustPolicy(t, strings.Replace(choosePolicy, "range =", "reserve = \"off\"\nrange =", 1)).Spec("br0")
	if c, _ := Choose(off, in("first", mac(1), nil)); !c.Dynamic() || !strings.Contains(c.How, "reserve = \"off\"") {
		t.Errorf("reserve off: %+v", c)
	}
	if c, _ := Choose(off, in("db", mac(1), nil)); c.IP != netip.MustParseAddr("192.168.100.10") {
		t.Errorf("reserve off keeps reservations: %+v", c)
	}
}

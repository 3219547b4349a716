package dhcp

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"time"

	"github.com/ifhook/ifhook/ifhook/policy"
)

// Choice is the address a VM's NIC gets on a bridge, and why.
type Choice struct {
	// IP is the address reserved for the NIC; invalid: none, dnsmasq
	// leases one from the range (dynamic).
	IP  netip.Addr
	How string // for explain and -v: "derived from the VM's name", ...
	// Host is the [[host]] reservation behind IP, when one is.
	Host *policy.HostSpec
	// Grant is what the book must record for the choice (a new address,
	// or the VM's MAC changed); nil: the book already says so.
	Grant *Grant
	// Evicted is the grant of another VM, long gone, whose address this
	// one takes because the range has no other left; nil usually.
	Evicted *Grant
}

// Dynamic reports whether dnsmasq chooses the address.
func (c Choice) Dynamic() bool { return !c.IP.IsValid() }

// Hash is where the search for a VM's address starts: FNV-1a of its name,
// so the same name starts at the same address on every host, at every
// start.
func Hash(vm string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(vm))
	return h.Sum64()
}

// Input is what Choose looks at besides the policy.
type Input struct {
	VM  string           // QEMU's -name; "" when not known
	MAC net.HardwareAddr // the guest NIC's; required
	// Book is the bridge's grants (an empty one when there are none).
	Book *Book
	// Leases are dnsmasq's, as its lease file has them: an address some
	// other NIC holds a live lease on is not given.
	Leases []Lease
	// InUse reports whether an address belongs to a guest attached now
	// (its TAP has a hosts entry): a grant of an address in use is never
	// taken over. Nil: none is.
	InUse func(netip.Addr) bool
	Now   time.Time
}

// Choose picks the address for a VM's NIC on the bridge spec describes,
// which serves DHCP: the [[host]] reserved for its MAC or its VM, else
// (reserve = "vm") the address the book kept for the VM, else the first
// free one from Hash(VM) on through the range. Free means: no other
// [[host]]'s, not granted to another VM, not leased to another MAC. When
// none is free, the grant of a VM whose guest is gone the longest is taken
// over. It is pure.
func Choose(spec *policy.BridgeSpec, in Input) (Choice, error) {
	d := spec.DHCP
	if h := spec.Host(in.VM, in.MAC); h != nil {
		by := "its MAC"
		if h.VM != "" {
			by = "VM " + fmt.Sprintf("%q", h.VM)
		}
		return Choice{IP: h.IP, Host: h, How: fmt.Sprintf("reserved for %s by [[bridges.%s.host]] (line %d)", by, spec.Name, h.Line)}, nil
	}
	switch {
	case d.Reserve == policy.ReserveOff:
		return Choice{How: "dynamic: dnsmasq leases the first free address (reserve = \"off\")"}, nil
	case in.VM == "":
		return Choice{How: "dynamic: the VM's name is not known (QEMU without -name), so nothing to derive its address from"}, nil
	case d.PoolSize() == 0:
		return Choice{How: "no IPv4 range on the bridge"}, nil
	}
	book := in.Book
	if book == nil {
		book = &Book{}
	}
	leased := func(a netip.Addr) bool {
		for _, l := range in.Leases {
			if l.IP == a && !l.IPv6 && string(l.MAC) != string(in.MAC) && !l.Expired(in.Now) {
				return true
			}
		}
		return false
	}
	reserved := func(a netip.Addr) bool {
		for _, h := range spec.Hosts {
			if h.IP == a {
				return true
			}
		}
		return false
	}
	free := func(a netip.Addr) bool {
		if !d.InPool(a) || reserved(a) || leased(a) {
			return false
		}
		g := book.ByIP(a)
		return g == nil || g.VM == in.VM
	}
	grant := func(a netip.Addr, how string) Choice {
		c := Choice{IP: a, How: how}
		if g := book.ByVM(in.VM); g == nil || g.IP != a || string(g.MAC) != string(in.MAC) {
			since := in.Now.UTC().Truncate(time.Second)
			if g != nil && g.IP == a {
				since = g.Since
			}
			c.Grant = &Grant{IP: a, VM: in.VM, MAC: in.MAC, Since: since}
		}
		return c
	}
	if g := book.ByVM(in.VM); g != nil && free(g.IP) {
		return grant(g.IP, fmt.Sprintf("the VM's since %s (derived from its name)", g.Since.Format("2006-01-02"))), nil
	}
	size := d.PoolSize()
	start := Hash(in.VM) % size
	for i := uint64(0); i < size; i++ {
		a := d.PoolAddr((start + i) % size)
		if free(a) {
			how := "derived from the VM's name"
			if i > 0 {
				how = fmt.Sprintf("derived from the VM's name (%d taken before it)", i)
			}
			return grant(a, how), nil
		}
	}
	// Every address is reserved, granted or leased: take over the grant
	// of the VM gone the longest, if any is gone.
	var old *Grant
	for i := range book.Grants {
		g := &book.Grants[i]
		if g.VM == in.VM || !d.InPool(g.IP) || reserved(g.IP) || leased(g.IP) || (in.InUse != nil && in.InUse(g.IP)) {
			continue
		}
		if old == nil || g.Since.Before(old.Since) {
			old = g
		}
	}
	if old != nil {
		evicted := *old
		c := grant(old.IP, fmt.Sprintf("derived from the VM's name; the range was full, so it takes over VM %q's (granted %s, not running)", old.VM, old.Since.Format("2006-01-02")))
		c.Evicted = &evicted
		return c, nil
	}
	return Choice{}, fmt.Errorf("no free address for VM %q: all %d addresses of the range are reserved or held by running guests", in.VM, size)
}

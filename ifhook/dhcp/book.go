package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Grant is an address given to a VM: kept for it while its guest is away,
// so the VM gets the same address at its next start, and no other VM gets
// it while the range has other room.
type Grant struct {
	IP    netip.Addr
	VM    string
	MAC   net.HardwareAddr // its NIC's MAC when granted
	Since time.Time
}

// Book is a bridge's grants, one per address, sorted by address. It lives
// on disk (/var/lib/ifhook) so it outlives a reboot.
type Book struct {
	Grants []Grant
}

// MaxGrants bounds a book: a range of a /16 fits.
const MaxGrants = 1 << 16

// MaxBook bounds a book's file.
const MaxBook = MaxGrants * 700

const bookHeader = "# ifhook: the addresses it gave VMs on this bridge (IP MAC SINCE VM)\n"

// ByVM returns the VM's grant, or nil.
func (b *Book) ByVM(vm string) *Grant {
	for i := range b.Grants {
		if b.Grants[i].VM == vm {
			return &b.Grants[i]
		}
	}
	return nil
}

// ByIP returns the grant of an address, or nil.
func (b *Book) ByIP(ip netip.Addr) *Grant {
	i, ok := slices.BinarySearchFunc(b.Grants, ip, func(g Grant, ip netip.Addr) int { return g.IP.Compare(ip) })
	if !ok {
		return nil
	}
	return &b.Grants[i]
}

// Set records g, replacing the VM's earlier grant and the address's.
func (b *Book) Set(g Grant) {
	b.Grants = slices.DeleteFunc(b.Grants, func(x Grant) bool { return x.VM == g.VM || x.IP == g.IP })
	i, _ := slices.BinarySearchFunc(b.Grants, g.IP, func(x Grant, ip netip.Addr) int { return x.IP.Compare(ip) })
	b.Grants = slices.Insert(b.Grants, i, g)
}

// Drop forgets the grant of an address.
func (b *Book) Drop(ip netip.Addr) {
	b.Grants = slices.DeleteFunc(b.Grants, func(x Grant) bool { return x.IP == ip })
}

// Encode renders the book as its file: one "IP MAC SINCE VM" line per
// grant, the VM's name quoted.
func (b *Book) Encode() []byte {
	var s strings.Builder
	s.WriteString(bookHeader)
	for _, g := range b.Grants {
		fmt.Fprintf(&s, "%s %s %d %s\n", g.IP, g.MAC, g.Since.Unix(), strconv.Quote(g.VM))
	}
	return []byte(s.String())
}

// ParseBook reads what Encode wrote, refusing anything else whole (the
// caller starts a new book and says so): a line that does not parse, an
// address or a VM twice, more than MaxGrants.
func ParseBook(data []byte) (*Book, error) {
	if len(data) > MaxBook {
		return nil, fmt.Errorf("%d bytes, more than a book holds", len(data))
	}
	b := &Book{}
	vms := map[string]bool{}
	for n, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		g, err := parseGrant(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		if vms[g.VM] {
			return nil, fmt.Errorf("line %d: VM %s twice", n+1, strconv.Quote(g.VM))
		}
		if len(b.Grants) > 0 && !b.Grants[len(b.Grants)-1].IP.Less(g.IP) {
			return nil, fmt.Errorf("line %d: %s out of order or twice", n+1, g.IP)
		}
		if len(b.Grants) == MaxGrants {
			return nil, fmt.Errorf("more than %d grants", MaxGrants)
		}
		vms[g.VM] = true
		b.Grants = append(b.Grants, g)
	}
	return b, nil
}

func parseGrant(line string) (Grant, error) {
	f := strings.SplitN(line, " ", 4)
	if len(f) != 4 {
		return Grant{}, fmt.Errorf("want IP MAC SINCE VM")
	}
	ip, err := netip.ParseAddr(f[0])
	if err != nil || !ip.Is4() {
		return Grant{}, fmt.Errorf("%q is not an IPv4 address", f[0])
	}
	mac, err := net.ParseMAC(f[1])
	if err != nil || len(mac) != 6 {
		return Grant{}, fmt.Errorf("%q is not a MAC address", f[1])
	}
	secs, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || secs < 0 || secs > 253402300799 {
		return Grant{}, fmt.Errorf("%q is not a time", f[2])
	}
	vm, err := strconv.Unquote(f[3])
	if err != nil || vm == "" || len(vm) > 512 || strings.ContainsRune(vm, 0) {
		return Grant{}, fmt.Errorf("%s is not a quoted VM name", strconv.Quote(f[3]))
	}
	return Grant{IP: ip, MAC: mac, Since: time.Unix(secs, 0).UTC(), VM: vm}, nil
}

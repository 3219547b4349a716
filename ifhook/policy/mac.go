package policy

import (
	"fmt"
	"hash/fnv"
	"net"
	"strconv"
	"strings"
)

// MACPrefix is the first one to three octets of the guests' MAC addresses.
// QEMU's own prefix is 52:54:00.
type MACPrefix []byte

// DefaultMACPrefix is QEMU's prefix (the OUI-like range its default NIC MACs use).
var DefaultMACPrefix = MACPrefix{0x52, 0x54, 0x00}

// ParseMACPrefix parses "52:54:00" (1 to 3 hex octets, ':'-separated). A
// multicast prefix is refused: no NIC may have a multicast source address.
func ParseMACPrefix(s string) (MACPrefix, error) {
	parts := strings.Split(s, ":")
	if s == "" || len(parts) > 3 {
		return nil, fmt.Errorf("mac prefix %q: want 1 to 3 octets like \"52:54:00\"", s)
	}
	p := make(MACPrefix, len(parts))
	for i, part := range parts {
		if len(part) != 2 {
			return nil, fmt.Errorf("mac prefix %q: octet %q is not two hex digits", s, part)
		}
		v, err := strconv.ParseUint(part, 16, 8)
		if err != nil {
			return nil, fmt.Errorf("mac prefix %q: octet %q is not two hex digits", s, part)
		}
		p[i] = byte(v)
	}
	if p[0]&1 != 0 {
		return nil, fmt.Errorf("mac prefix %q is multicast (lowest bit of the first octet is set)", s)
	}
	return p, nil
}

// String formats the prefix as "52:54:00".
func (p MACPrefix) String() string {
	var b strings.Builder
	for i, o := range p {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02x", o)
	}
	return b.String()
}

// Has reports whether mac starts with the prefix.
func (p MACPrefix) Has(mac net.HardwareAddr) bool {
	if len(mac) < len(p) {
		return false
	}
	for i := range p {
		if mac[i] != p[i] {
			return false
		}
	}
	return true
}

// HostTAPMAC is the stable MAC ifhook gives the host side of a TAP when it
// does not know the guest's MAC: the prefix with its first octet set to 0xfe,
// then bytes hashed from the TAP name. 0xfe is locally administered, unicast and
// numerically high: a Linux bridge takes the lowest MAC of its ports as its own
// (unless pinned), so a high TAP MAC never becomes the bridge's and the bridge
// address does not churn as guests come and go (qemu-bridge-helper and libvirt
// use 0xfe for the same reason).
func HostTAPMAC(prefix MACPrefix, tap string) net.HardwareAddr {
	if len(prefix) == 0 {
		prefix = DefaultMACPrefix
	}
	mac := make(net.HardwareAddr, 6)
	copy(mac, prefix)
	mac[0] = 0xfe
	h := fnv.New64a()
	h.Write([]byte(tap))
	sum := h.Sum64()
	for i := len(prefix); i < 6; i++ {
		mac[i] = byte(sum >> (8 * (i - len(prefix))))
	}
	return mac
}

// HostMACFromGuest is libvirt's convention for the host side of a TAP whose
// guest MAC is known: the guest's MAC with the first octet set to 0xfe (or 0xfa
// when the guest's already starts with 0xfe), so the two never collide.
func HostMACFromGuest(guest net.HardwareAddr) net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	copy(mac, guest)
	mac[0] = 0xfe
	if len(guest) > 0 && guest[0] == 0xfe {
		mac[0] = 0xfa
	}
	return mac
}

// QEMUDefaultMAC is the MAC QEMU gives a NIC that was given none (the
// first; later ones count up from it): two VMs started without a MAC get
// the same one, and cannot talk on a shared bridge.
var QEMUDefaultMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

// IsQEMUDefault reports whether mac is one QEMU hands out by default
// (52:54:00:12:34:56 and up).
func IsQEMUDefault(mac net.HardwareAddr) bool {
	return len(mac) == 6 && mac[0] == 0x52 && mac[1] == 0x54 && mac[2] == 0 && mac[3] == 0x12 && mac[4] == 0x34 && mac[5] >= 0x56
}

// GuestMAC returns a stable guest MAC for a VM's NIC number index: the
// prefix, then bytes hashed from the name and index. It never falls in
// QEMU's default range, so a VM given it cannot collide with one that was
// given none.
func GuestMAC(prefix MACPrefix, name string, index int) net.HardwareAddr {
	if len(prefix) == 0 {
		prefix = DefaultMACPrefix
	}
	for salt := 0; ; salt++ {
		h := fnv.New64a()
		fmt.Fprintf(h, "%s\x00%d\x00%d", name, index, salt)
		sum := h.Sum64()
		mac := make(net.HardwareAddr, 6)
		copy(mac, prefix)
		for i := len(prefix); i < 6; i++ {
			mac[i] = byte(sum >> (8 * (i - len(prefix))))
		}
		if !IsQEMUDefault(mac) {
			return mac
		}
	}
}

// CheckGuestMAC says what is wrong with a guest MAC, or nil: it must be a
// unicast MAC that carries the prefix.
func CheckGuestMAC(prefix MACPrefix, s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("%q is not a MAC address like 52:54:00:12:34:56", s)
	}
	if mac[0]&1 != 0 {
		return mac, fmt.Errorf("%s is a multicast address; a NIC's must be unicast (lowest bit of the first octet clear)", mac)
	}
	if !prefix.Has(mac) {
		return mac, fmt.Errorf("%s does not start with the guests' prefix %s", mac, prefix)
	}
	if IsQEMUDefault(mac) {
		return mac, fmt.Errorf("%s is in QEMU's default range (52:54:00:12:34:56 and up): another VM started without a MAC gets it too", mac)
	}
	return mac, nil
}

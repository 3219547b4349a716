// Package dhcp is what ifhook decides about the guests of a bridge that
// serves DHCP and DNS (a [bridges.NAME.dhcp] table), purely: dnsmasq's
// configuration for the bridge (config.go), the address each VM gets
// (choose.go) and the record of the addresses given (book.go), the hosts
// entry that tells dnsmasq (this file), and what dnsmasq's lease file says
// (leases.go). Running dnsmasq is package dnsmasq's job.
package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Entry is one guest NIC's line in dnsmasq's dhcp-hostsdir: its MAC, the
// address reserved for it (none: dnsmasq picks one from the range) and the
// DNS name its lease gets (none: the guest's own, if it sends one).
type Entry struct {
	MAC  net.HardwareAddr
	IP   netip.Addr
	Name string // a DNS label (Label)
}

// Line renders the entry as dnsmasq reads it: "MAC[,IP][,NAME]\n".
func (e Entry) Line() string {
	var b strings.Builder
	b.WriteString(e.MAC.String())
	if e.IP.IsValid() {
		b.WriteString("," + e.IP.String())
	}
	if e.Name != "" {
		b.WriteString("," + e.Name)
	}
	b.WriteByte('\n')
	return b.String()
}

func (e Entry) String() string { return strings.TrimSuffix(e.Line(), "\n") }

// MaxEntry bounds an entry file: a MAC, an address and a 63-byte label.
const MaxEntry = 128

// ParseEntry reads what Line wrote, refusing anything else: the file is
// in a directory dnsmasq's user can read, and ifhook trusts it no further
// than it parses.
func ParseEntry(data []byte) (Entry, error) {
	s, ok := strings.CutSuffix(string(data), "\n")
	if !ok || strings.ContainsAny(s, "\n\r\x00") || len(data) > MaxEntry {
		return Entry{}, fmt.Errorf("not one line of at most %d bytes", MaxEntry)
	}
	parts := strings.Split(s, ",")
	if len(parts) > 3 {
		return Entry{}, fmt.Errorf("%d fields, want MAC[,IP][,NAME]", len(parts))
	}
	mac, err := net.ParseMAC(parts[0])
	if err != nil || len(mac) != 6 {
		return Entry{}, fmt.Errorf("%q is not a MAC address", parts[0])
	}
	e := Entry{MAC: mac}
	for _, p := range parts[1:] {
		if a, err := netip.ParseAddr(p); err == nil {
			if !a.Is4() || e.IP.IsValid() || e.Name != "" {
				return Entry{}, fmt.Errorf("address %q out of place", p)
			}
			e.IP = a
			continue
		}
		if e.Name != "" || !validLabel(p) {
			return Entry{}, fmt.Errorf("%q is not a DNS label", p)
		}
		e.Name = p
	}
	return e, nil
}

// Label turns a VM's name into the DNS label its guest is known by in the
// bridge's domain: lower case, letters, digits and '-', every other run of
// characters one '-', at most 63 bytes. "" when nothing is left (a name
// of only punctuation), or when the label would be all digits (a name, not
// an address).
func Label(vm string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(vm) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= 63 {
			break
		}
	}
	l := b.String()
	if len(l) > 63 {
		l = l[:63]
	}
	l = strings.Trim(l, "-")
	if strings.Trim(l, "0123456789") == "" {
		return ""
	}
	return l
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

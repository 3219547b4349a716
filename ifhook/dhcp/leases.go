package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Lease is one line of dnsmasq's lease file.
type Lease struct {
	Expiry   time.Time        // zero: never (an infinite lease)
	MAC      net.HardwareAddr // nil for DHCPv6 leases (dnsmasq keys them by DUID)
	IP       netip.Addr
	Hostname string // as the guest or a hosts entry named it; "" for none
	ClientID string // "" for none; for DHCPv6 the client's DUID
	IPv6     bool
	// DHCPv6 only: the identity association the address was leased in
	// (TA: a temporary one), and the server's own DUID, which a RELEASE
	// must name.
	IAID       uint32
	TA         bool
	ServerDUID string
}

// Expired reports whether the lease has run out at now.
func (l Lease) Expired(now time.Time) bool { return !l.Expiry.IsZero() && !now.Before(l.Expiry) }

// MaxLeaseFile bounds what ParseLeases reads.
const MaxLeaseFile = 8 << 20

// ParseLeases reads dnsmasq's lease file: DHCPv4 lines "EXPIRY MAC IP
// HOSTNAME CLIENTID", then, after a "duid SERVERDUID" line, DHCPv6 lines
// "EXPIRY IAID IP HOSTNAME CLIENTDUID". dnsmasq writes the file after it
// has dropped privileges, and a guest chooses its hostname and client id,
// so a line that does not parse is skipped and reported, never trusted.
func ParseLeases(data []byte) (leases []Lease, problems []string) {
	if len(data) > MaxLeaseFile {
		return nil, []string{fmt.Sprintf("%d bytes: more than %d, not read", len(data), MaxLeaseFile)}
	}
	v6, serverDUID := false, ""
	for n, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "duid" {
			v6 = true
			if ClientID(f[1]) != nil {
				serverDUID = f[1]
			}
			continue
		}
		l, err := parseLease(f, v6)
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", n+1, err))
			continue
		}
		l.ServerDUID = serverDUID
		leases = append(leases, l)
	}
	return leases, problems
}

func parseLease(f []string, v6 bool) (Lease, error) {
	if len(f) != 5 {
		return Lease{}, fmt.Errorf("%d fields, want 5", len(f))
	}
	secs, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || secs < 0 || secs > 253402300799 {
		return Lease{}, fmt.Errorf("%q is not an expiry time", f[0])
	}
	l := Lease{IPv6: v6}
	if secs != 0 {
		l.Expiry = time.Unix(secs, 0).UTC()
	}
	if !v6 {
		mac, err := net.ParseMAC(f[1])
		if err != nil || len(mac) != 6 {
			return Lease{}, fmt.Errorf("%q is not a MAC address", f[1])
		}
		l.MAC = mac
	} else {
		// dnsmasq writes a temporary address's IAID with a "T" before it.
		iaid, ta := strings.CutPrefix(f[1], "T")
		v, err := strconv.ParseUint(iaid, 10, 32)
		if err != nil {
			return Lease{}, fmt.Errorf("%q is not an IAID", f[1])
		}
		l.IAID, l.TA = uint32(v), ta
	}
	ip, err := netip.ParseAddr(f[2])
	if err != nil || ip.Is4() == v6 || ip.Zone() != "" {
		return Lease{}, fmt.Errorf("%q is not an IPv%s address", f[2], map[bool]string{false: "4", true: "6"}[v6])
	}
	l.IP = ip
	if f[3] != "*" {
		if len(f[3]) > 255 {
			return Lease{}, fmt.Errorf("hostname of %d bytes", len(f[3]))
		}
		l.Hostname = f[3]
	}
	if f[4] != "*" {
		if len(f[4]) > 1024 {
			return Lease{}, fmt.Errorf("client id of %d bytes", len(f[4]))
		}
		l.ClientID = f[4]
	}
	return l, nil
}

// ClientID decodes a lease's client identifier as dnsmasq writes it
// ("01:52:54:00:aa:bb:cc"); nil when it has none or it does not decode.
func ClientID(s string) []byte {
	if s == "" {
		return nil
	}
	var out []byte
	for _, part := range strings.Split(s, ":") {
		v, err := strconv.ParseUint(part, 16, 8)
		if err != nil || len(part) != 2 {
			return nil
		}
		out = append(out, byte(v))
	}
	return out
}

// HasMAC reports whether the lease is mac's: by its MAC for DHCPv4, and for
// DHCPv6 by a client DUID built from mac (DUID-LLT or DUID-LL of an
// Ethernet address, RFC 8415 §11.2, 11.4). A DUID of another kind (a
// vendor's, a UUID) names no MAC: its lease is known by its name alone.
func (l Lease) HasMAC(mac net.HardwareAddr) bool {
	if len(mac) != 6 {
		return false
	}
	if !l.IPv6 {
		return string(l.MAC) == string(mac)
	}
	d := ClientID(l.ClientID)
	switch {
	case len(d) == 14 && d[0] == 0 && d[1] == 1 && d[2] == 0 && d[3] == 1: // LLT, Ethernet
		return string(d[8:]) == string(mac)
	case len(d) == 10 && d[0] == 0 && d[1] == 3 && d[2] == 0 && d[3] == 1: // LL, Ethernet
		return string(d[4:]) == string(mac)
	}
	return false
}

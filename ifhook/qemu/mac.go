package qemu

import (
	"math"
	"net"
)

// defaultPrefix is the first five bytes of every default MAC QEMU hands out
// (qemu_macaddr_default_if_unset in net/net.c).
var defaultPrefix = [5]byte{0x52, 0x54, 0x00, 0x12, 0x34}

// The last byte of a default MAC is taken from [firstFree, noFree);
// qemu_macaddr_get_free returns -1 when all are used, which the uint8_t
// assignment turns into 0xff.
const (
	firstFree = 0x56
	noFree    = 0xff
)

// macTable replays QEMU's mac_table (net/net.c): which last bytes of
// 52:54:00:12:34:xx are in use by NICs created so far.
//
// QEMU never frees an entry while it starts (only qemu_del_nic, on unplug,
// calls qemu_macaddr_set_free), so the lowest free byte only moves up and
// next can remember where the last search stopped.
type macTable struct {
	used [256]bool
	next int
}

// assign does what qemu_macaddr_default_if_unset does to one NIC's MAC, at
// the time QEMU creates the NIC: an all-zero (unset) MAC becomes
// 52:54:00:12:34:xx with the lowest free xx, which is then marked used; a
// MAC given with that prefix marks its xx used; any other MAC is left alone.
// It reports whether the MAC was filled in.
func (t *macTable) assign(mac *[6]byte) bool {
	if *mac != ([6]byte{}) {
		if [5]byte(mac[:5]) == defaultPrefix {
			t.markUsed(mac[5])
		}
		return false
	}
	copy(mac[:5], defaultPrefix[:])
	mac[5] = t.free()
	t.markUsed(mac[5])
	return true
}

// markUsed is qemu_macaddr_set_used: only bytes 0x56 to 0xfe are tracked.
func (t *macTable) markUsed(b byte) {
	if b >= firstFree && b < noFree {
		t.used[b] = true
	}
}

// free is qemu_macaddr_get_free: the lowest unused byte from 0x56, or 0xff.
func (t *macTable) free() byte {
	if t.next < firstFree {
		t.next = firstFree
	}
	for t.next < noFree && t.used[t.next] {
		t.next++
	}
	return byte(t.next)
}

// parseMACStrict parses a -device mac= property as set_mac does
// (hw/core/qdev-properties-system.c): exactly six two-digit hex bytes, each
// followed by ':' or '-' except the last.
func parseMACStrict(s string) ([6]byte, bool) {
	var mac [6]byte
	if len(s) != 17 {
		return mac, false
	}
	for i := 0; i < 6; i++ {
		hi, lo := hexVal(s[3*i]), hexVal(s[3*i+1])
		if hi > 15 || lo > 15 {
			return mac, false
		}
		if i < 5 && s[3*i+2] != ':' && s[3*i+2] != '-' {
			return mac, false
		}
		mac[i] = byte(hi<<4 | lo)
	}
	return mac, true
}

// parseMACLegacy parses -net nic,macaddr= and -nic mac= as net_parse_macaddr
// does (net/util.c), which is far more lenient than -device:
//
//   - a whole-string number from 0 to 0xFFFFFF (strtol base 0: decimal,
//     0x hex or 0 octal) sets only the last three bytes, the first three
//     stay zero; the empty string is the number 0;
//   - otherwise six strtol(…, 16) numbers separated by ':' or '-', each cut
//     to its low byte, so "52:54:0:12:34:5" and "0x52:…" are accepted too.
//
// An all-zero result means "unset": QEMU then gives the NIC a default MAC.
func parseMACLegacy(s string) ([6]byte, bool) {
	var mac [6]byte
	if v, rest, overflow := cStrtol(s, 0); rest == "" && !overflow && v >= 0 && v <= 0xFFFFFF {
		mac[3], mac[4], mac[5] = byte(v>>16), byte(v>>8), byte(v)
		return mac, true
	}
	p := s
	for i := 0; i < 6; i++ {
		var v int64
		v, p, _ = cStrtol(p, 16)
		mac[i] = byte(v)
		if i == 5 {
			if p != "" {
				return mac, false
			}
			break
		}
		if p == "" || (p[0] != ':' && p[0] != '-') {
			return mac, false
		}
		p = p[1:]
	}
	return mac, true
}

// cStrtol is glibc's strtol for base 0 or 16 in the C locale, on an LP64
// system: leading white space, an optional sign, an optional 0x prefix (base
// 16, or base 0 where a lone leading 0 means octal), then digits. It returns
// the value (LONG_MIN or LONG_MAX with overflow set when out of range) and the
// text after what was converted; when no digit was converted the text is s
// itself, except that "0x" with no hex digit after it converts the "0".
func cStrtol(s string, base int) (v int64, rest string, overflow bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if (base == 0 || base == 16) && i+1 < len(s) && s[i] == '0' && s[i+1]|0x20 == 'x' {
		if i+2 >= len(s) || hexVal(s[i+2]) >= 16 {
			return 0, s[i+1:], false
		}
		base = 16
		i += 2
	}
	if base == 0 {
		base = 10
		if i < len(s) && s[i] == '0' {
			base = 8
		}
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	start := i
	var u uint64
	for ; i < len(s); i++ {
		d := uint64(hexVal(s[i]))
		if d >= uint64(base) {
			break
		}
		if !overflow && u > (limit-d)/uint64(base) {
			overflow = true
		}
		if !overflow {
			u = u*uint64(base) + d
		}
	}
	switch {
	case i == start:
		return 0, s, false
	case overflow && neg:
		return math.MinInt64, s[i:], true
	case overflow:
		return math.MaxInt64, s[i:], true
	case neg:
		return int64(-u), s[i:], false
	}
	return int64(u), s[i:], false
}

// parseCInt parses a whole string as an integer the way QEMU's option
// visitors do (qemu_strtoi64 with base 0: decimal, 0x hex, 0 octal), within
// the int32 range of a vlan or hubid.
func parseCInt(s string) (int, bool) {
	v, rest, overflow := cStrtol(s, 0)
	if rest != "" || overflow || rest == s || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, false
	}
	return int(v), true
}

func isCSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// hexVal is the value of a hex digit, or 16 or more for any other byte.
func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 36
}

// hardwareAddr copies a MAC into a fresh net.HardwareAddr.
func hardwareAddr(mac [6]byte) net.HardwareAddr {
	return net.HardwareAddr(append([]byte(nil), mac[:]...))
}

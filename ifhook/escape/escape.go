// Package escape makes text that came from outside ifhook (a VM's name from
// QEMU's command line, a TAP name from argv, a policy value, a path, a
// kernel's link name) safe to print: on a terminal, in syslog, in a table.
// A control character could forge a second syslog line or reach the admin's
// terminal as an escape sequence; invalid UTF-8 could break JSON readers
// and terminals alike. Every string ifhook prints from outside goes through
// String (or Line, for a whole message).
package escape

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLine is the longest line ifhook prints for one message: a hostile
// 10 MB bridge name does not make a 10 MB line.
const MaxLine = 4096

// String returns s with control characters, DEL, C1 controls and invalid
// UTF-8 escaped the way Go quotes them (\n, \x1b, \u0085), and nothing else
// changed. Clean text, nearly all of it, comes back as is, unallocated.
func String(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[i])&15, 16))
		case unsafeRune(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Line is String capped at MaxLine bytes, for a whole message line.
func Line(s string) string { return Cap(String(s), MaxLine) }

// Cap shortens s to at most max bytes (on a rune boundary), saying how much
// was cut.
func Cap(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - 32
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "... (" + strconv.Itoa(len(s)-cut) + " more bytes)"
}

// Quote is String in double quotes, for a name in a message where it is
// set off from the words around it.
func Quote(s string) string { return `"` + strings.ReplaceAll(String(s), `"`, `\"`) + `"` }

func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c >= 0x80 {
			if c >= 0x80 {
				return cleanUTF8(s[i:])
			}
			return false
		}
	}
	return true
}

func cleanUTF8(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			// A literal U+FFFD is printable, but telling it from an
			// invalid byte costs more than escaping both.
			return false
		}
	}
	return true
}

// unsafeRune reports whether r must not reach a terminal or log as is: C0
// and C1 controls, DEL, and the bidirectional overrides that make text read
// differently from what it is (CVE-2021-42574's trick).
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f:
		return true
	case r >= 0x80 && r < 0xa0:
		return true
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// JSON escapes, inside encoded JSON, what encoding/json leaves raw and a
// terminal must not get: DEL, C1 controls and bidirectional overrides,
// written as \uXXXX. Only strings can hold such runes, so the result is
// the same JSON value, now safe to print.
func JSON(b []byte) []byte {
	if !hasUnsafeAbove(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		// C0 controls are JSON's own whitespace here (encoding/json
		// escapes those in strings); an invalid byte, which encoding/json
		// never writes, becomes U+FFFD.
		if r >= 0x7f && unsafeRune(r) || r == utf8.RuneError && size == 1 {
			out = append(out, `\u`...)
			out = append(out, hex4(r)...)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

func hasUnsafeAbove(b []byte) bool {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r >= 0x7f && unsafeRune(r) || r == utf8.RuneError && size == 1 {
			return true
		}
		i += size
	}
	return false
}

func hex4(r rune) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[r>>12&15], digits[r>>8&15], digits[r>>4&15], digits[r&15]})
}

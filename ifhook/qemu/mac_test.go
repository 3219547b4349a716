package qemu

import (
	"fmt"
	"math"
	"testing"
)

func TestMACTable(t *testing.T) {
	var table macTable
	next := func(given string) string {
		var mac [6]byte
		if given != "" {
			var ok bool
			if mac, ok = parseMACStrict(given); !ok {
				t.Fatalf("bad MAC %s", given)
			}
		}
		def := table.assign(&mac)
		return fmt.Sprintf("%s %v", hardwareAddr(mac), def)
	}
	for _, step := range []struct{ given, want string }{
		{"", "52:54:00:12:34:56 true"},
		{"52:54:00:12:34:58", "52:54:00:12:34:58 false"}, // marks 0x58
		{"", "52:54:00:12:34:57 true"},
		{"", "52:54:00:12:34:59 true"},                   // 0x58 is taken
		{"52:54:00:12:34:ff", "52:54:00:12:34:ff false"}, // not tracked
		{"52:54:00:12:34:00", "52:54:00:12:34:00 false"}, // below 0x56: not tracked
		{"52:54:00:ab:cd:5a", "52:54:00:ab:cd:5a false"}, // other prefix: not tracked
		{"", "52:54:00:12:34:5a true"},
		{"00:00:00:00:00:00", "52:54:00:12:34:5b true"}, // all zero is unset
	} {
		if got := next(step.given); got != step.want {
			t.Errorf("after %q: got %s, want %s", step.given, got, step.want)
		}
	}
	// Use up the rest: 0x5c to 0xfe, then every further NIC gets 0xff.
	for b := 0x5c; b < 0xff; b++ {
		if got, want := next(""), fmt.Sprintf("52:54:00:12:34:%02x true", b); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	for i := 0; i < 3; i++ {
		if got := next(""); got != "52:54:00:12:34:ff true" {
			t.Fatalf("exhausted: got %s", got)
		}
	}
}

func TestParseMACStrict(t *testing.T) {
	for in, want := range map[string]string{
		"52:54:00:12:34:56":  "52:54:00:12:34:56",
		"52-54-00-AB-cd-EF":  "52:54:00:ab:cd:ef",
		"52:54-00:12-34:56":  "52:54:00:12:34:56",
		"52:54:00:12:34:5":   "",
		"52:54:00:12:34:567": "",
		"0x:54:00:12:34:56":  "",
		"52:54:00:12:34:5g":  "",
		"52.54.00.12.34.56":  "",
		"":                   "",
	} {
		mac, ok := parseMACStrict(in)
		got := ""
		if ok {
			got = hardwareAddr(mac).String()
		}
		if got != want {
			t.Errorf("parseMACStrict(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseMACLegacy(t *testing.T) {
	for in, want := range map[string]string{
		"52:54:00:12:34:56":   "52:54:00:12:34:56",
		"52-54-00-12-34-56":   "52:54:00:12:34:56",
		"52:54:0:1:2:3":       "52:54:00:01:02:03",
		"0x52:54:00:12:34:56": "52:54:00:12:34:56",
		" 52: 54:00:12:34:56": "52:54:00:12:34:56",
		"152:54:00:12:34:56":  "52:54:00:12:34:56", // cut to the low byte
		"-1:54:00:12:34:56":   "ff:54:00:12:34:56",
		":::::":               "00:00:00:00:00:00",
		"0x123456":            "00:00:00:12:34:56",
		"1193046":             "00:00:00:12:34:56",
		"04432126":            "00:00:00:12:34:56", // octal
		"0":                   "00:00:00:00:00:00",
		"":                    "00:00:00:00:00:00",
		"0xFFFFFF":            "00:00:00:ff:ff:ff",
		"0x1000000":           "",
		"52:54:00:12:34":      "",
		"52:54:00:12:34:56:":  "",
		"zz:54:00:12:34:56":   "",
		"0x:54:00:12:34:56":   "",
	} {
		mac, ok := parseMACLegacy(in)
		got := ""
		if ok {
			got = hardwareAddr(mac).String()
		}
		if got != want {
			t.Errorf("parseMACLegacy(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCStrtol(t *testing.T) {
	for _, tt := range []struct {
		in       string
		base     int
		v        int64
		rest     string
		overflow bool
	}{
		{"123abc", 0, 123, "abc", false},
		{"0x1f:", 0, 31, ":", false},
		{"0x1f:", 16, 31, ":", false},
		{"1f:", 16, 31, ":", false},
		{"017", 0, 15, "", false},
		{"08", 0, 0, "8", false},
		{"0x", 16, 0, "x", false},
		{"0xg", 0, 0, "xg", false},
		{"  -12", 0, -12, "", false},
		{"+7", 0, 7, "", false},
		{"", 0, 0, "", false},
		{"  ", 16, 0, "  ", false},
		{"-", 16, 0, "-", false},
		{"zz", 16, 0, "zz", false},
		{"9223372036854775807", 0, math.MaxInt64, "", false},
		{"9223372036854775808", 0, math.MaxInt64, "", true},
		{"-9223372036854775808", 0, math.MinInt64, "", false},
		{"-9223372036854775809x", 0, math.MinInt64, "x", true},
		{"ffffffffffffffffff:", 16, math.MaxInt64, ":", true},
	} {
		v, rest, overflow := cStrtol(tt.in, tt.base)
		if v != tt.v || rest != tt.rest || overflow != tt.overflow {
			t.Errorf("cStrtol(%q, %d) = %d, %q, %v; want %d, %q, %v", tt.in, tt.base, v, rest, overflow, tt.v, tt.rest, tt.overflow)
		}
	}
}

func TestParseCInt(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "7": 7, "0x10": 16, "010": 8, "-1": -1, " 3": 3} {
		if got, ok := parseCInt(in); !ok || got != want {
			t.Errorf("parseCInt(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "x", "1x", "0x", "2147483648", "99999999999999999999"} {
		if got, ok := parseCInt(in); ok {
			t.Errorf("parseCInt(%q) = %d, want failure", in, got)
		}
	}
}

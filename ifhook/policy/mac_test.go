package policy

import (
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMACPrefix(t *testing.T) {
	tests := []struct {
		in      string
		want    MACPrefix
		wantStr string // String() of the result
		wantErr string // fragment; "" for success
	}{
		{"52:54:00", MACPrefix{0x52, 0x54, 0x00}, "52:54:00", ""},
		{"02", MACPrefix{0x02}, "02", ""},
		{"fe:ab", MACPrefix{0xfe, 0xab}, "fe:ab", ""},
		{"0A:bC:Ef", MACPrefix{0x0a, 0xbc, 0xef}, "0a:bc:ef", ""},
		{"00:00:00", MACPrefix{0, 0, 0}, "00:00:00", ""},

		{"", nil, "", `mac prefix "": want 1 to 3 octets like "52:54:00"`},
		{"52:54:00:12", nil, "", `mac prefix "52:54:00:12": want 1 to 3 octets`},
		{"52:54:00:", nil, "", "want 1 to 3 octets"},
		{"01:00:5e", nil, "", `mac prefix "01:00:5e" is multicast (lowest bit of the first octet is set)`},
		{"ff", nil, "", "is multicast"},
		{"33:33", nil, "", "is multicast"},
		{"5g", nil, "", `mac prefix "5g": octet "5g" is not two hex digits`},
		{"5", nil, "", `octet "5" is not two hex digits`},
		{"525", nil, "", `octet "525" is not two hex digits`},
		{"52:", nil, "", `octet "" is not two hex digits`},
		{":52", nil, "", `octet "" is not two hex digits`},
		{"52-54", nil, "", `octet "52-54" is not two hex digits`},
		{"+2", nil, "", `octet "+2" is not two hex digits`},
		{" 2", nil, "", `octet " 2" is not two hex digits`},
		{"0x", nil, "", `octet "0x" is not two hex digits`},
		{"52:54:0\n", nil, "", `octet "0\n" is not two hex digits`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMACPrefix(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseMACPrefix(%q) = %v, want error %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q is not one line", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMACPrefix(%q): %v", tt.in, err)
			}
			if !cmp.Equal(tt.want, got) {
				t.Errorf("ParseMACPrefix(%q) = %v, want %v", tt.in, []byte(got), []byte(tt.want))
			}
			if s := got.String(); s != tt.wantStr {
				t.Errorf("String() = %q, want %q", s, tt.wantStr)
			}
			again, err := ParseMACPrefix(got.String())
			if err != nil || !cmp.Equal(got, again) {
				t.Errorf("ParseMACPrefix(String()) = %v, %v; want %v", again, err, got)
			}
		})
	}
}

func TestMACPrefixHas(t *testing.T) {
	p := MACPrefix{0x52, 0x54, 0x00}
	tests := []struct {
		mac  string
		want bool
	}{
		{"52:54:00:12:34:56", true},
		{"52:54:01:12:34:56", false},
		{"fe:54:00:12:34:56", false},
	}
	for _, tt := range tests {
		t.Run(tt.mac, func(t *testing.T) {
			mac, err := net.ParseMAC(tt.mac)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Has(mac); got != tt.want {
				t.Errorf("Has(%s) = %v, want %v", mac, got, tt.want)
			}
		})
	}
	if p.Has(net.HardwareAddr{0x52, 0x54}) {
		t.Error("Has(a MAC shorter than the prefix) = true")
	}
}

// checkHostMAC asserts what every host-side MAC must be: 6 bytes, unicast,
// locally administered.
func checkHostMAC(t *testing.T, mac net.HardwareAddr) {
	t.Helper()
	if len(mac) != 6 {
		t.Fatalf("MAC %v has %d bytes, want 6", mac, len(mac))
	}
	if mac[0]&0x01 != 0 {
		t.Errorf("MAC %s is multicast", mac)
	}
	if mac[0]&0x02 == 0 {
		t.Errorf("MAC %s is not locally administered", mac)
	}
}

func TestHostTAPMAC(t *testing.T) {
	prefixes := []MACPrefix{
		{0x52, 0x54, 0x00},
		{0x02, 0xab},
		{0x0e},
		nil, // means the default
	}
	names := []string{"vnet0", "vnet1", "tap0", "a", "abcdefghijklmno"}
	for _, p := range prefixes {
		t.Run("prefix "+p.String(), func(t *testing.T) {
			eff := p
			if len(eff) == 0 {
				eff = DefaultMACPrefix
			}
			seen := map[string]string{}
			for _, name := range names {
				mac := HostTAPMAC(p, name)
				checkHostMAC(t, mac)
				if mac[0] != 0xfe {
					t.Errorf("HostTAPMAC(%s, %q) = %s, want first octet fe", p, name, mac)
				}
				// Octets 2..len(prefix) are the prefix's.
				if got, want := []byte(mac[1:len(eff)]), []byte(eff[1:]); !cmp.Equal(got, want) {
					t.Errorf("HostTAPMAC(%s, %q) = %s, want octets 2-%d %x", p, name, mac, len(eff), want)
				}
				// Stable for a name.
				if again := HostTAPMAC(p, name); again.String() != mac.String() {
					t.Errorf("HostTAPMAC(%s, %q) = %s, then %s", p, name, mac, again)
				}
				// Different between names.
				if other, dup := seen[mac.String()]; dup {
					t.Errorf("HostTAPMAC(%s) gives %s to both %q and %q", p, mac, other, name)
				}
				seen[mac.String()] = name
			}
		})
	}
	// Exact values pin the hash: changing it would change every host's TAP
	// MACs (and so the bridges' MACs) on upgrade.
	exact := []struct {
		prefix MACPrefix
		tap    string
		want   string
	}{
		{MACPrefix{0x52, 0x54, 0x00}, "vnet0", "fe:54:00:" + fnvTail("vnet0", 3)},
		{MACPrefix{0x02}, "tap0", "fe:" + fnvTail("tap0", 5)},
	}
	for _, e := range exact {
		if got := HostTAPMAC(e.prefix, e.tap).String(); got != e.want {
			t.Errorf("HostTAPMAC(%s, %q) = %s, want %s", e.prefix, e.tap, got, e.want)
		}
	}
	// The default prefix gives the same as naming it.
	if a, b := HostTAPMAC(nil, "vnet0"), HostTAPMAC(DefaultMACPrefix, "vnet0"); a.String() != b.String() {
		t.Errorf("HostTAPMAC(nil) = %s, HostTAPMAC(default) = %s", a, b)
	}
}

// fnvTail is an independent FNV-1a 64 of s, as n ':'-separated hex octets,
// least significant byte first.
func fnvTail(s string, n int) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	var parts []string
	for i := 0; i < n; i++ {
		parts = append(parts, hex2(byte(h>>(8*i))))
	}
	return strings.Join(parts, ":")
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

func TestHostMACFromGuest(t *testing.T) {
	tests := []struct {
		guest, want string
	}{
		{"52:54:00:12:34:56", "fe:54:00:12:34:56"},
		{"fe:54:00:12:34:56", "fa:54:00:12:34:56"},
		{"02:00:00:00:00:01", "fe:00:00:00:00:01"},
		{"fa:54:00:12:34:56", "fe:54:00:12:34:56"},
	}
	for _, tt := range tests {
		t.Run(tt.guest, func(t *testing.T) {
			guest, err := net.ParseMAC(tt.guest)
			if err != nil {
				t.Fatal(err)
			}
			got := HostMACFromGuest(guest)
			checkHostMAC(t, got)
			if got.String() != tt.want {
				t.Errorf("HostMACFromGuest(%s) = %s, want %s", guest, got, tt.want)
			}
			if got.String() == guest.String() {
				t.Errorf("host MAC equals the guest's")
			}
			if guest.String() != tt.guest {
				t.Errorf("HostMACFromGuest changed its argument to %s", guest)
			}
		})
	}
}

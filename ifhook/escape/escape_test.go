package escape

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"vnet0", "vnet0"},
		{"web-1 (café)", "web-1 (café)"},
		{"a\nb", `a\nb`},
		{"a\r\nforged: line", `a\r\nforged: line`},
		{"\x1b[31mred", `\x1b[31mred`},
		{"del\x7f", `del\x7f`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"c1\u0085", `c1\u0085`},
		{"bidi\u202eevil", `bidi\u202eevil`},
		{"tab\there", `tab\there`},
	} {
		if got := String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCap(t *testing.T) {
	long := strings.Repeat("é", 10000)
	got := Line(long)
	if len(got) > MaxLine || !utf8.ValidString(got) || !strings.Contains(got, "more bytes") {
		t.Fatalf("Line of %d bytes gave %d bytes: %q...", len(long), len(got), got[:40])
	}
	if Cap("short", 10) != "short" {
		t.Fatal("Cap changed a short string")
	}
}

func FuzzString(f *testing.F) {
	f.Add("vnet0")
	f.Add("a\nb\x1b\xff")
	f.Fuzz(func(t *testing.T, s string) {
		got := String(s)
		if !utf8.ValidString(got) {
			t.Fatalf("String(%q) = %q is not valid UTF-8", s, got)
		}
		for _, r := range got {
			if unsafeRune(r) {
				t.Fatalf("String(%q) = %q keeps %U", s, got, r)
			}
		}
		if clean(s) && got != s {
			t.Fatalf("clean %q changed to %q", s, got)
		}
	})
}

func TestJSON(t *testing.T) {
	in := map[string]string{"vm": "a\x7fb\u009bc\u202ed\x1b"}
	raw, _ := json.MarshalIndent(in, "", "  ")
	got := JSON(raw)
	var back map[string]string
	if err := json.Unmarshal(got, &back); err != nil || back["vm"] != in["vm"] {
		t.Fatalf("JSON changed the value: %s -> %q, %v", got, back, err)
	}
	for _, r := range string(got) {
		if r >= 0x7f && unsafeRune(r) {
			t.Fatalf("JSON left %U in %s", r, got)
		}
	}
	if s := string(JSON([]byte(`{"a":"b"}`))); s != `{"a":"b"}` {
		t.Fatalf("clean JSON changed: %s", s)
	}
}

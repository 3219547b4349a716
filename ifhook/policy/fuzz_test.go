package policy

import (
	"errors"
	"github.com/BurntSushi/toml"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seedPolicies adds the built-in policy, the shipped example and every
// testdata/*.toml to f's corpus.
func seedPolicies(f *testing.F, add func(data []byte)) {
	add(Default())
	if data, err := os.ReadFile("../../config.toml.example"); err == nil {
		add(data)
	}
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil {
		f.Fatal(err)
	}
	if len(files) == 0 {
		f.Fatal("no testdata/*.toml seeds")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		add(data)
	}
}

func FuzzParse(f *testing.F) {
	seedPolicies(f, func(data []byte) { f.Add(data, "vnet0") })
	f.Add([]byte("[[rule]]\ntap = \"lab-*\"\n[[rule]]\nbridge = \"br1\"\n"), "lab-1")
	f.Add([]byte("bridge = \"\"\n[[rule]]\ntap = \"x?\"\nmtu = 68\n"), "x1")
	f.Add([]byte("\"a\\nb\" = 1\n"), "")
	f.Add([]byte("rule = [{tap = \"a\"}]\n"), "a")
	f.Add([]byte("a.b.c = 1\n[x.'y'.\"z\"]\n"), "tap0")
	f.Add([]byte("a = "+strings.Repeat("{b=", 50)+"1"+strings.Repeat("}", 50)), "tap0")

	const name = "fuzz.toml"
	f.Fuzz(func(t *testing.T, data []byte, tap string) {
		// Whatever the shape, parsing stays within a bounded allocation
		// (a property, not a timing: the decoder is quadratic in nesting,
		// and shape.go keeps nesting bounded).
		if n := allocated(func() { Parse(data, name) }); n > maxRejectAlloc+uint64(64*len(data)) {
			t.Fatalf("Parse of %d bytes allocated %d MiB", len(data), n>>20)
		}
		p, err := Parse(data, name)
		lines := strings.Count(string(data), "\n") + 1
		if err != nil {
			if p != nil {
				t.Errorf("Parse returned a policy and an error: %v", err)
			}
			probs, ok := errors.AsType[Problems](err)
			if !ok || len(probs) == 0 {
				t.Fatalf("error is %T %q, want non-empty Problems", err, err)
			}
			oneLine := true
			for _, e := range probs {
				if e.File != name {
					t.Errorf("problem %q: File = %q, want %q", e.Error(), e.File, name)
				}
				if e.Line < 0 || e.Line > lines+1 {
					t.Errorf("problem %q: Line = %d, want 0..%d", e.Error(), e.Line, lines+1)
				}
				if e.Msg == "" {
					t.Errorf("problem %+v has no message", e)
				}
				if strings.ContainsAny(e.Error(), "\n\r") {
					oneLine = false
					t.Errorf("problem is not one line: %q", e.Error())
				}
			}
			if s := err.Error(); oneLine && strings.ContainsAny(s, "\n\r") {
				t.Errorf("Problems.Error() is not one line: %q", s)
			}
			return
		}

		if p == nil {
			t.Fatal("Parse returned neither a policy nor an error")
		}
		if p.File != name {
			t.Errorf("File = %q, want %q", p.File, name)
		}
		if p.Bridge != Auto && p.Bridge != "" && ValidIfName(p.Bridge) != nil {
			t.Errorf("accepted bridge %q: %v", p.Bridge, ValidIfName(p.Bridge))
		}
		if n := len(p.MACPrefix); n < 1 || n > 3 || p.MACPrefix[0]&1 != 0 {
			t.Errorf("accepted MAC prefix %x", []byte(p.MACPrefix))
		}
		if p.TAPMAC != TAPMACDerive && p.TAPMAC != TAPMACKeep {
			t.Errorf("accepted tap_mac %q", p.TAPMAC)
		}
		for i, r := range p.Rules {
			if r.N != i+1 {
				t.Errorf("rule %d has N = %d", i+1, r.N)
			}
			if r.Line < 0 || r.Line > lines {
				t.Errorf("rule %d has Line %d, want 0..%d", r.N, r.Line, lines)
			}
			if r.TAP != "" {
				if _, err := path.Match(r.TAP, ""); err != nil {
					t.Errorf("rule %d: accepted bad glob %q", r.N, r.TAP)
				}
			}
			if r.Bridge != "" && r.Bridge != Auto && ValidIfName(r.Bridge) != nil {
				t.Errorf("rule %d: accepted bridge %q", r.N, r.Bridge)
			}
			if r.MTU != 0 && (r.MTU < 68 || r.MTU > 65535) {
				t.Errorf("rule %d: accepted MTU %d", r.N, r.MTU)
			}
		}

		// Parsing is a function of its input.
		again, err := Parse(data, name)
		if err != nil {
			t.Fatalf("second Parse failed: %v", err)
		}
		if diff := cmp.Diff(p, again, cmp.AllowUnexported(Policy{})); diff != "" {
			t.Errorf("second Parse differs (-first +second):\n%s", diff)
		}

		// Match: the first matching rule wins, else the top-level bridge.
		c := p.Match(tap)
		first := -1
		for i := range p.Rules {
			if p.Rules[i].Matches(tap, "") {
				first = i
				break
			}
		}
		switch {
		case first < 0:
			if c.Rule != nil || c.Bridge != p.Bridge || c.MTU != 0 {
				t.Errorf("Match(%q) = %+v; no rule matches, want bridge %q", tap, c, p.Bridge)
			}
		case c.Rule != &p.Rules[first]:
			t.Errorf("Match(%q) chose %v, want %v", tap, c.Rule, &p.Rules[first])
		default:
			r := p.Rules[first]
			wantBridge := r.Bridge
			if wantBridge == "" {
				wantBridge = p.Bridge
			}
			if c.Bridge != wantBridge || c.MTU != r.MTU {
				t.Errorf("Match(%q) = %+v, want bridge %q mtu %d", tap, c, wantBridge, r.MTU)
			}
		}
		if !strings.HasPrefix(c.Where, name) {
			t.Errorf("Match(%q).Where = %q, want it to start with %q", tap, c.Where, name)
		}
		mac := HostTAPMAC(p.MACPrefix, tap)
		if len(mac) != 6 || mac[0] != 0xfe {
			t.Errorf("HostTAPMAC(%s, %q) = %s", p.MACPrefix, tap, mac)
		}
	})
}

var macPrefixRE = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){0,2}$`)

func FuzzMACPrefix(f *testing.F) {
	for _, s := range []string{"52:54:00", "02", "fe:AB", "01:00:5e", "52:54:00:00", "5g", "", ":", "0x", "+1:00", "ff:ff:ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseMACPrefix(s)
		// An independent statement of the rule: 1-3 two-digit hex octets,
		// ':'-separated, the first even (unicast).
		want := macPrefixRE.MatchString(s)
		if want {
			first, _ := strconv.ParseUint(s[:2], 16, 8)
			want = first&1 == 0
		}
		if err != nil {
			if want {
				t.Fatalf("ParseMACPrefix(%q) = %v, want success", s, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "mac prefix "+strconv.Quote(s)) || strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error %q: want one line starting with %q", msg, "mac prefix "+strconv.Quote(s))
			}
			return
		}
		if !want {
			t.Fatalf("ParseMACPrefix(%q) = %x, want an error", s, []byte(p))
		}
		if len(p) < 1 || len(p) > 3 || p[0]&1 != 0 {
			t.Fatalf("ParseMACPrefix(%q) = %x: want 1-3 octets, unicast", s, []byte(p))
		}
		str := p.String()
		if str != strings.ToLower(s) {
			t.Errorf("String() = %q, want %q", str, strings.ToLower(s))
		}
		again, err := ParseMACPrefix(str)
		if err != nil || !cmp.Equal(p, again) {
			t.Errorf("ParseMACPrefix(%q) = %x, %v; want %x", str, []byte(again), err, []byte(p))
		}
		mac := HostTAPMAC(p, "vnet0")
		if mac[0] != 0xfe || !cmp.Equal([]byte(mac[1:len(p)]), []byte(p[1:])) {
			t.Errorf("HostTAPMAC(%s) = %s", p, mac)
		}
	})
}

// validIfNameOracle transcribes the rules independently: 1 to 15 bytes, not
// "." or "..", and no byte that is '/', ':', '%', a space, a control
// character or DEL (whitespace 0x09-0x0d is among the control characters).
func validIfNameOracle(name string) bool {
	if len(name) < 1 || len(name) >= 16 || name == "." || name == ".." {
		return false
	}
	for _, b := range []byte(name) {
		if b <= ' ' || b == 0x7f || b == '/' || b == ':' || b == '%' {
			return false
		}
	}
	return true
}

func FuzzValidIfName(f *testing.F) {
	for _, s := range []string{"vnet0", "", ".", "..", "...", "a/b", "a:b", "a b", "a\tb", "tap%d", "abcdefghijklmno", "abcdefghijklmnop", "é", "\x7f", "tap-x_y", "vnet0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidIfName(name)
		if want := validIfNameOracle(name); (err == nil) != want {
			t.Fatalf("ValidIfName(%q) = %v, want valid = %v", name, err, want)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\n\r") {
			t.Errorf("ValidIfName(%q) = %q: not one line", name, err)
		}
	})
}

func FuzzKeyLines(f *testing.F) {
	seedPolicies(f, func(data []byte) { f.Add(string(data), "rule.0.tap") })
	for _, s := range []string{
		"[[", "[[]]", "[[x]", "[", "[]", "a = \"\"\"", "a = '''\n'''", "a = [\n[\n", "=", "\"", "'a'.\"b\" = [ # ]\n]",
		"a = [\"\\\\\"]\nb = 1", "[[a.b]]\n[[a]]\n[[a.b]]\n", "\r\n\r\n",
	} {
		f.Add(s, "a.b")
	}
	f.Fuzz(func(t *testing.T, text, path string) {
		kl := scanKeyLines(text)
		lines := strings.Count(text, "\n") + 1
		for k, n := range kl {
			if n < 1 || n > lines {
				t.Errorf("key %q on line %d; the text has %d lines", k, n, lines)
			}
		}
		if n := kl.Line(path); n < 0 || n > lines {
			t.Errorf("Line(%q) = %d; the text has %d lines", path, n, lines)
		}
		for k, n := range kl {
			if k == "" {
				continue // Line("") is 0 by definition ("[]" records "")
			}
			if got := kl.Line(k); got != n {
				t.Errorf("Line(%q) = %d, want %d", k, got, n)
			}
		}
	})
}

// FuzzBlankComments: blanking comment lines never changes what toml
// reads, nor the number of lines.
func FuzzBlankComments(f *testing.F) {
	f.Add("a = 1\n# c\nb = [\n # x\n 2]\n")
	f.Add("s = \"\"\"\n# no\n\"\"\"\n")
	f.Add("t = { a = 1 } # c\n[x]\n#y = 2\n")
	f.Fuzz(func(t *testing.T, in string) {
		out := blankComments([]byte(in))
		if strings.Count(out, "\n") != strings.Count(in, "\n") {
			t.Fatalf("line count changed: %q -> %q", in, out)
		}
		var a, b map[string]any
		_, errA := toml.Decode(in, &a)
		_, errB := toml.Decode(out, &b)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("toml: %v on the text, %v on it blanked (%q -> %q)", errA, errB, in, out)
		}
		if errA == nil && !reflect.DeepEqual(a, b) {
			t.Fatalf("toml read %v, and %v blanked (%q -> %q)", a, b, in, out)
		}
	})
}

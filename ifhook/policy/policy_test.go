package policy

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ignoreLines leaves the scanner's map out of Policy comparisons; the rule
// lines are checked on their own (TestRuleLines), as they have a known bug.
var ignoreLines = cmp.Options{
	cmpopts.IgnoreUnexported(Policy{}),
	cmpopts.EquateEmpty(),
	cmpopts.IgnoreFields(Rule{}, "Line"),
	cmpopts.IgnoreFields(Policy{}, "GuestMAC"), // tested in guestmac_test.go
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		text string
		want *Policy
	}{
		{
			name: "empty file gives the defaults",
			text: "",
			want: &Policy{File: "f.toml", Bridge: Auto, MACPrefix: MACPrefix{0x52, 0x54, 0x00}, TAPMAC: TAPMACDerive},
		},
		{
			name: "comments only",
			text: "# nothing here\n\n   # still nothing\n",
			want: &Policy{File: "f.toml", Bridge: Auto, MACPrefix: MACPrefix{0x52, 0x54, 0x00}, TAPMAC: TAPMACDerive},
		},
		{
			name: "built-in policy",
			text: string(Default()),
			want: &Policy{File: "f.toml", Bridge: Auto, MACPrefix: MACPrefix{0x52, 0x54, 0x00}, TAPMAC: TAPMACDerive},
		},
		{
			name: "every setting",
			text: `bridge = "br0"
mac_prefix = "02:AB"
tap_mac = "keep"

[[rule]]
tap = "vnet*"
bridge = "br1"
mtu = 9000

[[rule]]
tap = "lab-?"

[[rule]]
bridge = "auto"
mtu = 0
`,
			want: &Policy{
				File: "f.toml", Bridge: "br0", MACPrefix: MACPrefix{0x02, 0xab}, TAPMAC: TAPMACKeep,
				Rules: []Rule{
					{N: 1, TAP: "vnet*", Bridge: "br1", MTU: 9000},
					{N: 2, TAP: "lab-?"},
					{N: 3, Bridge: Auto},
				},
			},
		},
		{
			name: "empty top-level bridge means none",
			text: `bridge = ""`,
			want: &Policy{File: "f.toml", Bridge: "", MACPrefix: MACPrefix{0x52, 0x54, 0x00}, TAPMAC: TAPMACDerive},
		},
		{
			name: "one-octet prefix, derive spelled out",
			text: "mac_prefix = \"0e\"\ntap_mac = \"derive\"\n",
			want: &Policy{File: "f.toml", Bridge: Auto, MACPrefix: MACPrefix{0x0e}, TAPMAC: TAPMACDerive},
		},
		{
			name: "MTU limits 68 and 65535 are accepted",
			text: "[[rule]]\ntap = \"a\"\nmtu = 68\n[[rule]]\ntap = \"b\"\nmtu = 65535\n",
			want: &Policy{
				File: "f.toml", Bridge: Auto, MACPrefix: MACPrefix{0x52, 0x54, 0x00}, TAPMAC: TAPMACDerive,
				Rules: []Rule{{N: 1, TAP: "a", MTU: 68}, {N: 2, TAP: "b", MTU: 65535}},
			},
		},
		{
			name: "15-byte bridge and quoted keys",
			text: "\"bridge\" = \"abcdefghijklmno\"\n[[rule]]\n'tap' = \"x\"\n",
			want: &Policy{
				File: "f.toml", Bridge: "abcdefghijklmno", MACPrefix: MACPrefix{0x52, 0x54, 0x00}, TAPMAC: TAPMACDerive,
				Rules: []Rule{{N: 1, TAP: "x"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.text), "f.toml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreLines); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

// wantProblem is one expected *Error; Msg is a fragment of the message.
type wantProblem struct {
	Line int
	Key  string
	Msg  string
}

func checkProblems(t *testing.T, err error, file string, want []wantProblem) {
	t.Helper()
	if err == nil {
		t.Fatalf("Parse succeeded; want %d problem(s)", len(want))
	}
	probs, ok := errors.AsType[Problems](err)
	if !ok {
		t.Fatalf("error is %T (%v), want Problems", err, err)
	}
	var got []wantProblem
	for _, p := range probs {
		if p.File != file {
			t.Errorf("problem %q: File = %q, want %q", p.Error(), p.File, file)
		}
		got = append(got, wantProblem{p.Line, p.Key, p.Msg})
	}
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		same = want[i].Line == got[i].Line && want[i].Key == got[i].Key && strings.Contains(got[i].Msg, want[i].Msg)
	}
	if !same {
		t.Errorf("problems:\n got %+v\nwant %+v (Msg as a fragment)", got, want)
	}
	if s := err.Error(); strings.Contains(s, "\n") {
		t.Errorf("Problems.Error() is not one line: %q", s)
	}
	// errors.As reaches each problem.
	if e, ok := errors.AsType[*Error](err); !ok || e != probs[0] {
		t.Errorf("errors.As(*Error) = %v, %v; want the first problem", e, ok)
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []wantProblem
		bug  string // known bug: the test documents the expected behaviour
	}{
		// Unknown keys.
		{
			name: "typo suggests the key",
			text: "birdge = \"br0\"\n",
			want: []wantProblem{{1, "birdge", `unknown key (did you mean "bridge"?)`}},
		},
		{
			name: "key differing only by case",
			text: "# policy\nBRIDGE = \"br0\"\n",
			want: []wantProblem{{2, "BRIDGE", `unknown key (did you mean "bridge"?)`}},
		},
		{
			name: "mixed-case mac_prefix",
			text: "Mac_Prefix = \"52:54:00\"\n",
			want: []wantProblem{{1, "Mac_Prefix", `unknown key (did you mean "mac_prefix"?)`}},
		},
		{
			name: "far-off key lists the known ones",
			text: "\n\ncolour = \"red\"\n",
			want: []wantProblem{{3, "colour", "unknown key (known here: bridge, mac_prefix, tap_mac, guest_mac, rule"}},
		},
		{
			name: "unknown table",
			text: "bridge = \"br0\"\n[options]\nx = 1\n",
			want: []wantProblem{{2, "options", "unknown key (known here: bridge, mac_prefix, tap_mac, guest_mac, rule"}},
		},
		{
			name: "unknown key inside the first rule",
			text: "[[rule]]\ntap = \"a*\"\nmtuu = 1500\n",
			want: []wantProblem{{3, "rule.mtuu", `unknown key (did you mean "mtu"?)`}},
		},
		{
			name: "unknown key inside the second of three rules",
			text: `bridge = "br0"

[[rule]]
tap = "a*"

[[rule]]
tap = "b*"
mtuu = 1500

[[rule]]
tap = "c*"
`,
			want: []wantProblem{{8, "rule.mtuu", `unknown key (did you mean "mtu"?)`}},
			bug:  "lines.go scanKeyLines resolves a repeated [[rule]] header through the previous element (\"rule.0.0\" instead of \"rule.1\"), so keys of every rule after the first get line 0",
		},
		{
			name: "rule key by case",
			text: "[[rule]]\nTAP = \"a*\"\n",
			want: []wantProblem{{2, "rule.TAP", `did you mean "tap"?`}},
		},
		{
			name: "top-level key inside a rule is unknown there",
			text: "[[rule]]\ntap = \"a*\"\nmac_prefix = \"52:54:00\"\n",
			want: []wantProblem{{3, "rule.mac_prefix", "unknown key (known here: tap, vm, bridge, mtu)"}},
		},

		// Wrong types.
		{
			name: "rule mtu as a string",
			text: "[[rule]]\nmtu = \"9000\"\n",
			want: []wantProblem{{2, "rule.mtu", "must be an integer, not a string"}},
		},
		{
			name: "rule mtu as a float",
			text: "[[rule]]\nmtu = 9000.0\n",
			want: []wantProblem{{2, "rule.mtu", "must be an integer, not a float"}},
		},
		{
			name: "bridge as an integer",
			text: "bridge = 5\n",
			want: []wantProblem{{1, "bridge", "must be a string, not an integer"}},
		},
		{
			name: "bridge as an array",
			text: "bridge = [\"br0\",\n  \"br1\"]\n",
			want: []wantProblem{{1, "bridge", "must be a string, not an array"}},
		},
		{
			name: "tap_mac as a boolean",
			text: "tap_mac = true\n",
			want: []wantProblem{{1, "tap_mac", "must be a string, not a boolean"}},
		},
		{
			name: "mac_prefix as a table",
			text: "[mac_prefix]\na = 1\n",
			want: []wantProblem{{1, "mac_prefix", "must be a string, not a table"}},
		},
		{
			name: "rule as a string",
			text: "rule = \"x\"\n",
			want: []wantProblem{{1, "rule", "must be an array of tables ([[rule]]), not a string"}},
		},
		{
			name: "rule as a table",
			text: "[rule]\ntap = \"x\"\n",
			want: []wantProblem{{1, "rule", "must be an array of tables ([[rule]]), not a table"}},
		},
		{
			name: "rule tap as an integer",
			text: "[[rule]]\ntap = 1\n",
			want: []wantProblem{{2, "rule.tap", "must be a string, not an integer"}},
		},

		// Bad values.
		{
			name: "multicast mac prefix",
			text: "mac_prefix = \"01:00:5e\"\n",
			want: []wantProblem{{1, "mac_prefix", `mac prefix "01:00:5e" is multicast`}},
		},
		{
			name: "too many octets",
			text: "mac_prefix = \"52:54:00:12\"\n",
			want: []wantProblem{{1, "mac_prefix", `mac prefix "52:54:00:12": want 1 to 3 octets like "52:54:00"`}},
		},
		{
			name: "bad hex",
			text: "mac_prefix = \"52:5g\"\n",
			want: []wantProblem{{1, "mac_prefix", `octet "5g" is not two hex digits`}},
		},
		{
			name: "one-digit octet",
			text: "mac_prefix = \"52:4\"\n",
			want: []wantProblem{{1, "mac_prefix", `octet "4" is not two hex digits`}},
		},
		{
			name: "empty mac prefix",
			text: "mac_prefix = \"\"\n",
			want: []wantProblem{{1, "mac_prefix", `mac prefix "": want 1 to 3 octets`}},
		},
		{
			name: "tap_mac random",
			text: "tap_mac = \"random\"\n",
			want: []wantProblem{{1, "tap_mac", `"random": want "derive" or "keep"`}},
		},
		{
			name: "rule mtu 67",
			text: "[[rule]]\ntap = \"v*\"\nmtu = 67\n",
			want: []wantProblem{{3, "rule.mtu", "67 is below the minimum Ethernet MTU of 68"}},
		},
		{
			name: "rule mtu 70000",
			text: "[[rule]]\nmtu = 70000\n",
			want: []wantProblem{{2, "rule.mtu", "70000 is out of range 0..65535"}},
		},
		{
			name: "rule mtu negative",
			text: "[[rule]]\nmtu = -1\n",
			want: []wantProblem{{2, "rule.mtu", "-1 is out of range 0..65535"}},
		},
		{
			name: "bridge name too long",
			text: "bridge = \"abcdefghijklmnop\"\n",
			want: []wantProblem{{1, "bridge", `"abcdefghijklmnop": interface name is 16 bytes, longer than 15`}},
		},
		{
			name: "bridge name with slash",
			text: "bridge = \"br/0\"\n",
			want: []wantProblem{{1, "bridge", `"br/0": interface name contains '/'`}},
		},
		{
			name: "bridge name with colon",
			text: "bridge = \"br0:1\"\n",
			want: []wantProblem{{1, "bridge", `"br0:1": interface name contains ':'`}},
		},
		{
			name: "bridge name with newline stays on one line",
			text: "bridge = \"br\\n0\"\n",
			want: []wantProblem{{1, "bridge", `"br\n0": interface name contains whitespace`}},
		},
		{
			name: "rule bridge too long",
			text: "[[rule]]\nbridge = \"bridge-name-16ch\"\n",
			want: []wantProblem{{2, "rule.bridge", "interface name is 16 bytes, longer than 15"}},
		},
		{
			name: "rule bridge with space",
			text: "[[rule]]\nbridge = \"br 0\"\n",
			want: []wantProblem{{2, "rule.bridge", `"br 0": interface name contains whitespace`}},
		},
		{
			name: "rule bridge empty",
			text: "[[rule]]\ntap = \"x\"\nbridge = \"\"\n",
			want: []wantProblem{{3, "rule.bridge", "empty; leave the key out to use the top-level bridge setting"}},
		},
		{
			name: "rule tap empty",
			text: "[[rule]]\ntap = \"\"\n",
			want: []wantProblem{{2, "rule.tap", "empty pattern matches nothing"}},
		},
		{
			name: "bad glob",
			text: "[[rule]]\ntap = \"[abc\"\n",
			want: []wantProblem{{2, "rule.tap", `"[abc" is not a valid glob pattern`}},
		},

		// TOML syntax: one problem, with toml's line and no key.
		{
			name: "unterminated string",
			text: "bridge = \"br0\n",
			want: []wantProblem{{1, "", "TOML syntax: "}},
		},
		{
			name: "bad value on line 3",
			text: "bridge = \"br0\"\n\ntap_mac = derive\n",
			want: []wantProblem{{3, "", "TOML syntax: "}},
		},
		{
			name: "unclosed header on line 4",
			text: "bridge = \"br0\"\n\n# rules\n[[rule]\ntap = \"x\"\n",
			want: []wantProblem{{4, "", "TOML syntax: expected end of table array name delimiter"}},
			bug:  "policy.go fromTOML uses toml.ParseError.Position.Line, which is one past the line when the offending token is followed by its newline (here 5); counting newlines before Position.Start gives 4",
		},
		{
			name: "duplicate key",
			text: "bridge = \"br0\"\nbridge = \"br1\"\n",
			want: []wantProblem{{2, "", "TOML syntax: Key 'bridge' has already been defined"}},
		},
		{
			name: "no value",
			text: "mac_prefix =\n",
			want: []wantProblem{{1, "", "TOML syntax: "}},
		},

		// Several problems: all reported, in file order.
		{
			name: "several problems in decode order",
			text: `bridge = "a/b"
mac_prefix = "01:00:5e"
tap_mac = "random"

[[rule]]
tap = "[x"
mtu = 67
`,
			want: []wantProblem{
				{1, "bridge", "interface name contains '/'"},
				{2, "mac_prefix", "is multicast"},
				{3, "tap_mac", `"random"`},
				{6, "rule.tap", "not a valid glob pattern"},
				{7, "rule.mtu", "67 is below the minimum"},
			},
		},
		{
			name: "several problems out of decode order",
			text: `tap_mac = "random"
birdge = "br0"
bridge = "a:b"

[[rule]]
mtu = 70000
`,
			want: []wantProblem{
				{1, "tap_mac", `"random"`},
				{2, "birdge", `did you mean "bridge"?`},
				{3, "bridge", "interface name contains ':'"},
				{6, "rule.mtu", "out of range"},
			},
		},
		{
			name: "problems in several rules",
			text: `[[rule]]
mtu = 67

[[rule]]
mtu = 1

[[rule]]
mtu = 2
`,
			want: []wantProblem{
				{2, "rule.mtu", "67 is below"},
				{5, "rule.mtu", "1 is below"},
				{8, "rule.mtu", "2 is below"},
			},
			bug: "lines.go scanKeyLines gives keys of the second and later [[rule]] tables line 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = tt.bug // fixed; says what the case once caught
			_, err := Parse([]byte(tt.text), "/etc/ifhook/config.toml")
			checkProblems(t, err, "/etc/ifhook/config.toml", tt.want)
		})
	}
}

// TestInlineRuleArray documents that rules must be written as [[rule]]
// tables: the inline form is reported, with its line.
func TestInlineRuleArray(t *testing.T) {
	_, err := Parse([]byte("bridge = \"br0\"\nrule = [{tap = \"a\"}]\n"), "p")
	checkProblems(t, err, "p", []wantProblem{{2, "rule", "must be an array of tables ([[rule]]), not an array"}})
}

func TestProblemsError(t *testing.T) {
	a := &Error{File: "p.toml", Line: 3, Key: "bridge", Msg: "bad"}
	b := &Error{File: "p.toml", Msg: "TOML syntax: oops"}
	c := &Error{File: "p.toml", Line: 9, Key: "rule.mtu", Msg: "worse"}
	tests := []struct {
		name string
		ps   Problems
		want string
	}{
		{"none", nil, "no problems"},
		{"one", Problems{a}, "p.toml:3: bridge: bad"},
		{"no line no key", Problems{b}, "p.toml: TOML syntax: oops"},
		{"three", Problems{a, b, c}, "p.toml:3: bridge: bad (and 2 more; run 'ifhook check')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ps.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	// Each problem is reachable through errors.Is.
	var err error = Problems{a, b, c}
	for _, p := range []*Error{a, b, c} {
		if !errors.Is(err, p) {
			t.Errorf("errors.Is(Problems, %q) = false", p.Error())
		}
	}
}

// TestUnknownKeyWithControlCharacter: a quoted key may hold any character;
// the message quoting it must stay on one line.
func TestUnknownKeyWithControlCharacter(t *testing.T) {
	_, err := Parse([]byte("\"a\\nb\" = 1\n"), "f")
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if s := err.Error(); strings.ContainsAny(s, "\n\r") {
		t.Errorf("Error() = %q, want one line", s)
	}
}

// TestSyntaxErrorOneLine: toml's message can quote the offending input,
// newline included; the problem must still print on one line. (Found by
// FuzzParse: testdata/fuzz/FuzzParse/66b05a7ae376635e.)
func TestSyntaxErrorOneLine(t *testing.T) {
	_, err := Parse([]byte("\"\\\n"), "f")
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if s := err.Error(); strings.ContainsAny(s, "\n\r") {
		t.Errorf("Error() = %q, want one line", s)
	}
}

func TestRuleLines(t *testing.T) {
	text := `bridge = "br0"

[[rule]]
tap = "a*"

[[rule]]
tap = "b*"

# third
[[rule]]
tap = "c*"
`
	p, err := Parse([]byte(text), "f")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, r := range p.Rules {
		got = append(got, r.Line)
	}
	if want := []int{3, 6, 10}; !cmp.Equal(want, got) {
		t.Errorf("rule lines = %v, want %v", got, want)
	}
}

func TestMatch(t *testing.T) {
	text := `bridge = "br-def"
[[rule]]
tap = "vnet*"
bridge = "br0"
mtu = 9000
[[rule]]
tap = "lab-?"
[[rule]]
tap = "vnet1*"
bridge = "never"
[[rule]]
tap = "any-*"
bridge = "auto"
`
	p, err := Parse([]byte(text), "/etc/ifhook/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tap        string
		wantRule   int // N, 0 for none
		wantBridge string
		wantMTU    int
		wantWhere  string
		bug        string
	}{
		{"vnet0", 1, "br0", 9000, "/etc/ifhook/config.toml:2", ""},
		{"vnet10", 1, "br0", 9000, "/etc/ifhook/config.toml:2", ""}, // rule 3 matches too: the first wins
		{"lab-1", 2, "br-def", 0, "/etc/ifhook/config.toml:6", "Rule.Line is 0 for rules after the first (scanKeyLines), so Where is \"...:0\""},
		{"any-x", 4, Auto, 0, "/etc/ifhook/config.toml:11", "Rule.Line is 0 for rules after the first (scanKeyLines)"},
		{"lab-12", 0, "br-def", 0, "/etc/ifhook/config.toml:1", ""},
		{"eth0", 0, "br-def", 0, "/etc/ifhook/config.toml:1", ""},
		{"", 0, "br-def", 0, "/etc/ifhook/config.toml:1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.tap, func(t *testing.T) {
			_ = tt.bug // fixed; says what the case once caught
			c := p.Match(tt.tap)
			n := 0
			if c.Rule != nil {
				n = c.Rule.N
			}
			if n != tt.wantRule || c.Bridge != tt.wantBridge || c.MTU != tt.wantMTU || c.Where != tt.wantWhere {
				t.Errorf("Match(%q) = rule %d, bridge %q, mtu %d, where %q; want rule %d, bridge %q, mtu %d, where %q",
					tt.tap, n, c.Bridge, c.MTU, c.Where, tt.wantRule, tt.wantBridge, tt.wantMTU, tt.wantWhere)
			}
		})
	}
}

func TestMatchDefaults(t *testing.T) {
	t.Run("bridge left out: Where is the file alone", func(t *testing.T) {
		p, err := Parse([]byte("tap_mac = \"keep\"\n"), "p.toml")
		if err != nil {
			t.Fatal(err)
		}
		c := p.Match("vnet0")
		if c.Rule != nil || c.Bridge != Auto || c.Where != "p.toml" {
			t.Errorf("Match = %+v, want no rule, bridge auto, where p.toml", c)
		}
	})
	t.Run("no bridge anywhere", func(t *testing.T) {
		p, err := Parse([]byte("bridge = \"\"\n[[rule]]\ntap = \"x*\"\nmtu = 1400\n"), "p.toml")
		if err != nil {
			t.Fatal(err)
		}
		if c := p.Match("x1"); c.Rule == nil || c.Bridge != "" || c.MTU != 1400 || c.Where != "p.toml:2" {
			t.Errorf("Match(x1) = %+v, want rule 1, bridge \"\", mtu 1400, where p.toml:2", c)
		}
		if c := p.Match("y"); c.Rule != nil || c.Bridge != "" || c.Where != "p.toml:1" {
			t.Errorf("Match(y) = %+v, want no rule, bridge \"\", where p.toml:1", c)
		}
	})
	t.Run("rule without tap matches everything", func(t *testing.T) {
		p, err := Parse([]byte("[[rule]]\nbridge = \"br9\"\n"), "p.toml")
		if err != nil {
			t.Fatal(err)
		}
		for _, tap := range []string{"vnet0", "tap-x_y", "a"} {
			if c := p.Match(tap); c.Rule == nil || c.Bridge != "br9" {
				t.Errorf("Match(%q) = %+v, want rule 1, br9", tap, c)
			}
		}
	})
}

func TestRuleString(t *testing.T) {
	if got, want := (&Rule{N: 2, TAP: "vnet*"}).String(), `rule 2 (tap = "vnet*")`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (&Rule{N: 3}).String(), "rule 3"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("bridge = \"br0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("bridge = 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("file", func(t *testing.T) {
		p, err := Load(good)
		if err != nil {
			t.Fatal(err)
		}
		if p.File != good || p.Bridge != "br0" || p.Where("bridge") != good+":1" {
			t.Errorf("Load = File %q, Bridge %q, Where %q", p.File, p.Bridge, p.Where("bridge"))
		}
	})
	t.Run("bad file", func(t *testing.T) {
		_, err := Load(bad)
		checkProblems(t, err, bad, []wantProblem{{1, "bridge", "must be a string, not an integer"}})
	})
	t.Run("missing default path falls back to the built-in policy", func(t *testing.T) {
		if _, err := os.Stat(DefaultPath); err == nil {
			t.Skipf("%s exists on this host", DefaultPath)
		}
		p, err := Load(DefaultPath)
		if err != nil {
			t.Fatal(err)
		}
		if p.File != BuiltinName || p.Bridge != Auto || p.TAPMAC != TAPMACDerive || p.MACPrefix.String() != "52:54:00" {
			t.Errorf("Load(DefaultPath) = %+v, want the built-in policy", p)
		}
		if c := p.Match("vnet0"); c.Where != BuiltinName+":3" {
			t.Errorf("built-in Where = %q, want %q", c.Where, BuiltinName+":3")
		}
	})
	t.Run("missing named file is an error", func(t *testing.T) {
		missing := filepath.Join(dir, "missing.toml")
		_, err := Load(missing)
		checkProblems(t, err, missing, []wantProblem{{0, "", "cannot read policy: no such file or directory"}})
		if got, want := err.Error(), missing+": cannot read policy: no such file or directory"; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := Load(dir)
		checkProblems(t, err, dir, []wantProblem{{0, "", "cannot read policy: is a directory"}})
	})
}

// TestConfigExample parses the shipped example, and its commented-out rules
// once uncommented, so the example cannot drift from the schema.
func TestConfigExample(t *testing.T) {
	const file = "../../config.toml.example"
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("config.toml.example does not exist yet")
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data, file)
	if err != nil {
		t.Fatalf("the example does not parse: %v", err)
	}
	// It claims to equal the built-in policy.
	builtin, err := Parse(Default(), BuiltinName)
	if err != nil {
		t.Fatal(err)
	}
	if p.Bridge != builtin.Bridge || p.MACPrefix.String() != builtin.MACPrefix.String() || p.TAPMAC != builtin.TAPMAC || len(p.Rules) != 0 {
		t.Errorf("example = bridge %q, prefix %s, tap_mac %q, %d rules; built-in = %q, %s, %q",
			p.Bridge, p.MACPrefix, p.TAPMAC, len(p.Rules), builtin.Bridge, builtin.MACPrefix, builtin.TAPMAC)
	}

	// Uncomment the example rules ("# [[rule]]", "# tap = ...") and parse again.
	commented := regexp.MustCompile(`(?m)^# ((\[\[rule\]\])|((tap|bridge|mtu) = .*))$`)
	uncommented := commented.ReplaceAllString(string(data), "$1")
	if uncommented == string(data) {
		t.Log("the example has no commented-out rules")
		return
	}
	p, err = Parse([]byte(uncommented), file)
	if err != nil {
		t.Fatalf("the example's commented-out rules do not parse: %v\n%s", err, uncommented)
	}
	if len(p.Rules) == 0 {
		t.Fatalf("uncommenting gave no rules:\n%s", uncommented)
	}
	for _, r := range p.Rules {
		if r.TAP == "" && r.Bridge == "" && r.MTU == 0 {
			t.Errorf("example %s sets nothing", &r)
		}
	}
}

func TestBlankComments(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a = 1\n# c\n  # d\nb = 2 # e\n", "a = 1\n\n\nb = 2 # e\n"},
		{"# only", ""},
		{"a = [\n # in an array\n 1]\n", "a = [\n\n 1]\n"},
		// A multi-line string may hold lines that start with '#': leave it all.
		{"s = \"\"\"\n# not a comment\n\"\"\"\n# c\n", "s = \"\"\"\n# not a comment\n\"\"\"\n# c\n"},
		{"s = '''\n# not a comment\n'''\n", "s = '''\n# not a comment\n'''\n"},
		{"a = \"#\"\n", "a = \"#\"\n"},
		{"", ""},
	} {
		if got := blankComments([]byte(tc.in)); got != tc.want {
			t.Errorf("blankComments(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// Every line keeps its number: a problem after comments is on its line.
	_, err := Parse([]byte("# 1\n# 2\n\n# 4\nbirdge = 1\n"), "p")
	if err == nil || !strings.Contains(err.Error(), "p:5: birdge") {
		t.Errorf("problem after comments: %v", err)
	}
}

// TestVMGlobNeedsAKnownVM: a rule with vm = "*" matches every VM whose name
// ifhook knows, and no TAP whose VM it does not (the README's promise).
func TestVMGlobNeedsAKnownVM(t *testing.T) {
	p, err := Parse([]byte("bridge = \"br0\"\n[[rule]]\nvm = \"*\"\nbridge = \"br-vms\"\n"), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c := p.MatchVM("vnet0", ""); c.Rule != nil || c.Bridge != "br0" {
		t.Errorf("unknown VM: matched %v, bridge %q; want no rule, br0", c.Rule, c.Bridge)
	}
	if c := p.MatchVM("vnet0", "web"); c.Rule == nil || c.Bridge != "br-vms" {
		t.Errorf("VM web: matched %v, bridge %q; want the rule, br-vms", c.Rule, c.Bridge)
	}
}

package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHelperParse(t *testing.T) {
	p, err := Parse([]byte(`bridge = "br0"

[[helper.allow]]
group = "kvm"
bridges = ["br0", "lab-*"]

[[helper.allow]]
user = "alice"
bridges = "br1"

[[helper.deny]]
user = "guest"
bridges = ["*"]
`), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Helper{
		Allow: []HelperRule{
			{N: 1, File: "p.toml", Line: 3, Group: "kvm", Bridges: []string{"br0", "lab-*"}},
			{N: 2, File: "p.toml", Line: 7, User: "alice", Bridges: []string{"br1"}},
		},
		Deny: []HelperRule{{Deny: true, N: 1, File: "p.toml", Line: 11, User: "guest", Bridges: []string{"*"}}},
	}
	if diff := cmp.Diff(want, p.Helper); diff != "" {
		t.Fatalf("Helper (-want +got):\n%s", diff)
	}
	if got := p.Helper.Deny[0].String(); got != `[[helper.deny]] user = "guest", bridges = ["*"]` {
		t.Errorf("String = %s", got)
	}
	if got := p.Helper.Allow[0].Where(); got != "p.toml:3" {
		t.Errorf("Where = %s", got)
	}
}

func TestHelperProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want []wantProblem
	}{
		{"helper not a table", "helper = 1\n", []wantProblem{{1, "helper", "must be a table"}}},
		{"unknown kind", "[[helper.permit]]\nbridges = [\"*\"]\n", []wantProblem{{1, "helper.permit", `unknown key (known here: allow, deny)`}}},
		{"unknown key in a rule", "[[helper.allow]]\nusers = \"alice\"\nbridges = [\"*\"]\n", []wantProblem{{2, "helper.allow.users", `did you mean "user"?`}}},
		{"no bridges", "[[helper.deny]]\nuser = \"guest\"\n", []wantProblem{{1, "helper.deny", "bridges is required"}}},
		{"empty bridges", "[[helper.allow]]\nbridges = []\n", []wantProblem{{2, "helper.allow.bridges", "empty"}}},
		{"bad glob", "[[helper.allow]]\nbridges = [\"br[\"]\n", []wantProblem{{2, "helper.allow.bridges", "not a valid glob"}}},
		// CVE-2019-13164: a name longer than an interface name can be
		// cannot be allowed or denied.
		{"over-long name", "[[helper.deny]]\nbridges = [\"br-production01X\"]\n", []wantProblem{{2, "helper.deny.bridges", "longer than 15"}}},
		{"glob that matches nothing", "[[helper.allow]]\nbridges = [\"a/*\"]\n", []wantProblem{{2, "helper.allow.bridges", "can match no interface name"}}},
		{"bad user", "[[helper.allow]]\nuser = \"al ice\"\nbridges = [\"*\"]\n", []wantProblem{{2, "helper.allow.user", "not a user or group name"}}},
		{"empty group", "[[helper.allow]]\ngroup = \"\"\nbridges = [\"*\"]\n", []wantProblem{{2, "helper.allow.group", "empty"}}},
		{"bridges not strings", "[[helper.allow]]\nbridges = [1]\n", []wantProblem{{2, "helper.allow.bridges", "list of strings"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text), "p.toml")
			checkProblems(t, err, "p.toml", tc.want)
		})
	}
}

func TestHelperRuleMatches(t *testing.T) {
	alice := HelperCaller{UID: 1000, User: "alice", GIDs: []int{1000, 108}, Groups: []string{"alice", "kvm"}}
	nameless := HelperCaller{UID: 2000, GIDs: []int{2000}, Groups: []string{""}}
	for _, tc := range []struct {
		rule   HelperRule
		caller HelperCaller
		bridge string
		want   bool
	}{
		{HelperRule{Bridges: []string{"*"}}, alice, "br0", true},
		{HelperRule{Bridges: []string{"lab-*"}}, alice, "br0", false},
		{HelperRule{Bridges: []string{"br0", "lab-*"}}, alice, "lab-1", true},
		{HelperRule{User: "alice", Bridges: []string{"*"}}, alice, "br0", true},
		{HelperRule{User: "1000", Bridges: []string{"*"}}, alice, "br0", true},
		{HelperRule{User: "bob", Bridges: []string{"*"}}, alice, "br0", false},
		{HelperRule{Group: "kvm", Bridges: []string{"*"}}, alice, "br0", true},
		{HelperRule{Group: "108", Bridges: []string{"*"}}, alice, "br0", true},
		{HelperRule{Group: "wheel", Bridges: []string{"*"}}, alice, "br0", false},
		{HelperRule{User: "alice", Group: "wheel", Bridges: []string{"*"}}, alice, "br0", false},
		{HelperRule{Group: "kvm", Bridges: []string{"*"}}, nameless, "br0", false},
		{HelperRule{User: "2000", Bridges: []string{"*"}}, nameless, "br0", true},
		{HelperRule{Group: "", Bridges: []string{"*"}}, nameless, "br0", true},
	} {
		if got := tc.rule.Matches(tc.caller, tc.bridge); got != tc.want {
			t.Errorf("%s for %s on %s = %v, want %v", &tc.rule, tc.caller, tc.bridge, got, tc.want)
		}
	}
	if nameless.String() != "uid 2000" || alice.String() != "alice" {
		t.Errorf("caller names: %s, %s", nameless, alice)
	}
}

func TestMatchHelper(t *testing.T) {
	p, err := Parse([]byte(`bridge = "br9"
[[rule]]
tap = "tap*"
bridge = "br-other"
mtu = 1400

[[rule]]
vm = "web-*"
mtu = 9000

[[rule]]
tap = "tap*"
bridge = "br0"
mtu = 1280
`), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tap, vm, bridge string
		mtu             int
		where           string
	}{
		{"tap0", "web-1", "br0", 9000, "p.toml:7"}, // the rule naming br-other does not apply
		{"tap0", "", "br0", 1280, "p.toml:11"},
		{"tap0", "", "br1", 0, "--br=br1"}, // no rule: the bridge's MTU
	} {
		c := p.MatchHelper(tc.tap, tc.vm, tc.bridge)
		if c.Bridge != tc.bridge || c.MTU != tc.mtu || c.Where != tc.where {
			t.Errorf("MatchHelper(%s, %q, %s) = bridge %s, mtu %d, where %s; want mtu %d at %s", tc.tap, tc.vm, tc.bridge, c.Bridge, c.MTU, c.Where, tc.mtu, tc.where)
		}
	}
}

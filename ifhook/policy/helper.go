package policy

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Helper is the [helper] table: who may attach a TAP to which bridge
// through the bridge helper (ifhook run as qemu-bridge-helper by a user's
// QEMU), on top of QEMU's own /etc/qemu/bridge.conf. Deny wins, across
// both sources; with no allow anywhere, nobody may.
//
//	[[helper.allow]]
//	group = "kvm"              # or user = "alice"; absent: everyone
//	bridges = ["br0", "lab-*"] # globs
//	[[helper.deny]]
//	user = "guest"
//	bridges = ["*"]
type Helper struct {
	Allow []HelperRule
	Deny  []HelperRule
}

// HelperRule is one [[helper.allow]] or [[helper.deny]] table. Every
// matcher it has must match.
type HelperRule struct {
	Deny    bool
	N       int    // 1-based position among the rules of its kind
	File    string // the policy's file
	Line    int    // of its [[helper.allow]] or [[helper.deny]] header
	User    string // a user's name or uid; "" matches every user
	Group   string // a group's name or gid; "" matches every user
	Bridges []string
}

// HelperCaller is who runs the bridge helper: a user and the groups its
// process has (the primary group and the supplementary ones).
type HelperCaller struct {
	UID    int
	User   string // "" when the uid has no name
	GIDs   []int
	Groups []string // names of GIDs, "" for a gid without one
}

// String names the caller for messages: "alice", or "uid 1234".
func (c HelperCaller) String() string {
	if c.User != "" {
		return c.User
	}
	return "uid " + strconv.Itoa(c.UID)
}

// String is the rule as written: `[[helper.deny]] user = "guest",
// bridges = ["*"]`.
func (r *HelperRule) String() string {
	kind := "allow"
	if r.Deny {
		kind = "deny"
	}
	parts := []string{}
	if r.User != "" {
		parts = append(parts, fmt.Sprintf("user = %q", r.User))
	}
	if r.Group != "" {
		parts = append(parts, fmt.Sprintf("group = %q", r.Group))
	}
	quoted := make([]string, len(r.Bridges))
	for i, b := range r.Bridges {
		quoted[i] = strconv.Quote(b)
	}
	parts = append(parts, "bridges = ["+strings.Join(quoted, ", ")+"]")
	return "[[helper." + kind + "]] " + strings.Join(parts, ", ")
}

// Where is the rule's file:line.
func (r *HelperRule) Where() string { return r.File + ":" + strconv.Itoa(r.Line) }

// MatchesCaller reports whether the rule's user and group matchers match c.
func (r *HelperRule) MatchesCaller(c HelperCaller) bool {
	if r.User != "" && r.User != c.User && r.User != strconv.Itoa(c.UID) {
		return false
	}
	if r.Group == "" {
		return true
	}
	for i, gid := range c.GIDs {
		if r.Group == strconv.Itoa(gid) || (i < len(c.Groups) && c.Groups[i] != "" && r.Group == c.Groups[i]) {
			return true
		}
	}
	return false
}

// MatchesBridge reports whether one of the rule's globs matches bridge.
func (r *HelperRule) MatchesBridge(bridge string) bool {
	for _, g := range r.Bridges {
		if ok, _ := path.Match(g, bridge); ok {
			return true
		}
	}
	return false
}

// Matches reports whether the rule applies to c asking for bridge.
func (r *HelperRule) Matches(c HelperCaller, bridge string) bool {
	return r.MatchesBridge(bridge) && r.MatchesCaller(c)
}

// MatchHelper returns what the policy says for a TAP the bridge helper
// made for bridge (the bridge QEMU asked for, and the ACL allowed): the
// first rule that matches the TAP and VM and names that bridge or none
// gives the MTU; a rule naming another bridge does not apply, since the
// helper never attaches elsewhere than where it was allowed to.
func (p *Policy) MatchHelper(tap, vm, bridge string) Choice {
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Bridge != "" && r.Bridge != Auto && r.Bridge != bridge {
			continue
		}
		if !r.Matches(tap, vm) {
			continue
		}
		return Choice{Rule: r, Bridge: bridge, MTU: r.MTU, Where: p.File + ":" + strconv.Itoa(r.Line)}
	}
	return Choice{Bridge: bridge, Where: "--br=" + bridge}
}

var helperKeys = []string{"allow", "deny"}

var helperRuleKeys = []string{"user", "group", "bridges"}

// helper reads the [helper] table.
func (d *decoder) helper(t *table) Helper {
	var h Helper
	v, ok := t.get("helper")
	if !ok {
		return h
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		d.problem(t.key("helper"), "must be a table ([[helper.allow]], [[helper.deny]]), not %s", typeName(v))
		return h
	}
	ht := d.table(t.key("helper"), m)
	for i, rt := range ht.tables("allow") {
		h.Allow = append(h.Allow, d.helperRule(rt, i, false))
	}
	for i, rt := range ht.tables("deny") {
		h.Deny = append(h.Deny, d.helperRule(rt, i, true))
	}
	ht.done(helperKeys...)
	return h
}

func (d *decoder) helperRule(t *table, i int, deny bool) HelperRule {
	r := HelperRule{Deny: deny, N: i + 1, File: d.file, Line: d.lines.Line(t.path)}
	if s, ok := t.str("user", ""); ok {
		if err := validAccount(s); err != nil {
			d.problem(t.key("user"), "%q: %v", s, err)
		}
		r.User = s
	}
	if s, ok := t.str("group", ""); ok {
		if err := validAccount(s); err != nil {
			d.problem(t.key("group"), "%q: %v", s, err)
		}
		r.Group = s
	}
	if list, ok := t.strings("bridges"); ok {
		if len(list) == 0 {
			d.problem(t.key("bridges"), "empty: the rule would match no bridge; give globs such as [\"br0\", \"lab-*\"] or [\"*\"]")
		}
		for _, g := range list {
			if err := validBridgeGlob(g); err != nil {
				d.problem(t.key("bridges"), "%v", err)
			}
		}
		r.Bridges = list
	} else if _, present := t.m["bridges"]; !present {
		d.problem(t.path, "bridges is required: the bridges this rule is about, as globs ([\"*\"] for all)")
	}
	t.done(helperRuleKeys...)
	return r
}

// validAccount checks a user or group name as the policy may give it: a
// name as useradd(8) allows, or a number.
func validAccount(s string) error {
	if s == "" {
		return fmt.Errorf("empty; leave the key out to match everyone")
	}
	if len(s) > 64 {
		return fmt.Errorf("longer than 64 bytes")
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '$' || c == '@') {
			return fmt.Errorf("not a user or group name (letters, digits, _ - . $ @) or number")
		}
	}
	return nil
}

// validBridgeGlob checks one of a helper rule's bridge globs: a glob that
// can match an interface name. A name without glob characters must be an
// interface name itself (CVE-2019-13164: an over-long name matched
// against the ACL but cut when used).
func validBridgeGlob(g string) error {
	if err := validGlob(g); err != nil {
		return err
	}
	if g == "" {
		return fmt.Errorf("an empty pattern matches no bridge")
	}
	if strings.ContainsAny(g, "*?[\\") {
		if strings.ContainsAny(g, "/: \t") {
			return fmt.Errorf("%q can match no interface name (no '/', ':' or whitespace in one)", g)
		}
		return nil
	}
	if err := ValidIfName(g); err != nil {
		return fmt.Errorf("%q: %v", g, err)
	}
	return nil
}

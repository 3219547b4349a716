package helper

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/policy"
)

// files is a Reader over a map: a value "EACCES" is a file the caller
// may not read, and a missing key one that does not exist.
func files(m map[string]string) Reader {
	return func(path string) ([]byte, error) {
		v, ok := m[path]
		switch {
		case !ok:
			return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
		case v == "EACCES":
			return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrPermission}
		case v == "EIO":
			return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("input/output error")}
		}
		return []byte(v), nil
	}
}

const conf = "/etc/qemu/bridge.conf"

var (
	alice = policy.HelperCaller{UID: 1000, User: "alice", GIDs: []int{1000, 108}, Groups: []string{"alice", "kvm"}}
	guest = policy.HelperCaller{UID: 1001, User: "guest", GIDs: []int{1001}, Groups: []string{"guest"}}
)

func mustPolicy(t *testing.T, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(text), "/etc/ifhook/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestACL: bridge.conf texts and policy tables, and what they decide:
// allow (with the rule that allowed), deny (with the line QEMU shows), or
// an error with file:line.
func TestACL(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  map[string]string
		policy string
		caller policy.HelperCaller
		bridge string
		allow  string // the deciding rule, when allowed
		deny   string // the failure's text, when denied
		err    string // the parse failure's text
	}{
		{name: "allow one", files: map[string]string{conf: "allow br0\n"}, bridge: "br0",
			allow: "/etc/qemu/bridge.conf:1: allow br0"},
		{name: "Fedora's file", files: map[string]string{conf: "# Access control for qemu-bridge-helper\nallow virbr0\n"}, bridge: "virbr0",
			allow: "/etc/qemu/bridge.conf:2: allow virbr0"},
		{name: "default deny", files: map[string]string{conf: "allow br0\n"}, bridge: "br9",
			deny: "access denied by acl file (no allow for br9 in /etc/qemu/bridge.conf nor in [[helper.allow]] of /etc/ifhook/config.toml; user alice, bridge br9); to grant it, add \"allow br9\""},
		{name: "the issue's example", files: map[string]string{conf: "allow all\n\ndeny br-prod\n"}, bridge: "br-prod",
			deny: "access denied by acl file (/etc/qemu/bridge.conf:3: deny br-prod; user alice)"},
		{name: "deny wins, whatever the order", files: map[string]string{conf: "deny br0\nallow br0\n"}, bridge: "br0",
			deny: "(/etc/qemu/bridge.conf:1: deny br0; user alice)"},
		{name: "deny all", files: map[string]string{conf: "allow br0\ndeny all\n"}, bridge: "br0",
			deny: "(/etc/qemu/bridge.conf:2: deny all; user alice, bridge br0)"},
		{name: "comments, blanks and tabs", files: map[string]string{conf: "  # a comment\n\n\t\nallow\t  br0  \r\n   #allow br1\n"}, bridge: "br0",
			allow: "/etc/qemu/bridge.conf:4: allow br0"},
		{name: "comment wins over a rule", files: map[string]string{conf: "#allow br1\n"}, bridge: "br1",
			deny: "no allow for br1"},
		{name: "a line with no argument", files: map[string]string{conf: "allow br0\nallowbr1\n"}, bridge: "br0",
			err: "failed to parse default acl file `/etc/qemu/bridge.conf' (/etc/qemu/bridge.conf:2: Invalid config line: \"allowbr1\""},
		{name: "unknown command", files: map[string]string{conf: "\npermit br0\n"}, bridge: "br0",
			err: "(/etc/qemu/bridge.conf:2: Unknown command `permit'"},
		{name: "nothing after allow", files: map[string]string{conf: "allow   \n"}, bridge: "br0",
			err: "/etc/qemu/bridge.conf:1: Invalid config line: \"allow\""},
		// CVE-2019-13164: a name the kernel cuts cannot be in the ACL.
		{name: "over-long name", files: map[string]string{conf: "allow all\ndeny br-production01X\n"}, bridge: "br-production01",
			err: "/etc/qemu/bridge.conf:2: name `br-production01X' too long: 16"},
		{name: "a 15-byte name is fine", files: map[string]string{conf: "allow all\ndeny br-production01\n"}, bridge: "br-production01",
			deny: "deny br-production01; user alice"},
		{name: "a very long line", files: map[string]string{conf: "# " + strings.Repeat("x", 5000) + "\n"}, bridge: "br0",
			err: "/etc/qemu/bridge.conf:1: line longer than 4095 bytes"},
		{name: "include", files: map[string]string{conf: "include /etc/qemu/lab.conf\n", "/etc/qemu/lab.conf": "\nallow lab0\n"}, bridge: "lab0",
			allow: "/etc/qemu/lab.conf:2: allow lab0"},
		{name: "include relative to the including file", files: map[string]string{conf: "include lab.conf\n", "/etc/qemu/lab.conf": "deny lab0\nallow all\n"}, bridge: "lab0",
			deny: "/etc/qemu/lab.conf:1: deny lab0"},
		{name: "an include the caller may not read grants nothing, and is said",
			files:  map[string]string{conf: "include /etc/qemu/kvm.conf\n", "/etc/qemu/kvm.conf": "EACCES"},
			bridge: "br0",
			deny:   "not read: /etc/qemu/kvm.conf (included at /etc/qemu/bridge.conf:1): permission denied"},
		{name: "a missing include is said too", files: map[string]string{conf: "include /etc/qemu/none.conf\nallow br0\n"}, bridge: "br1",
			deny: "not read: /etc/qemu/none.conf (included at /etc/qemu/bridge.conf:1)"},
		{name: "an error in an include is an error", files: map[string]string{conf: "include /etc/qemu/lab.conf\n", "/etc/qemu/lab.conf": "allow lab0\nfoo bar\n"}, bridge: "lab0",
			err: "failed to parse default acl file `/etc/qemu/bridge.conf' (/etc/qemu/lab.conf:2: Unknown command `foo'"},
		{name: "an include that cannot be read for another reason", files: map[string]string{conf: "include /etc/qemu/lab.conf\n", "/etc/qemu/lab.conf": "EIO"}, bridge: "lab0",
			err: "/etc/qemu/bridge.conf:1: include /etc/qemu/lab.conf: input/output error"},
		{name: "an include of itself", files: map[string]string{conf: "include bridge.conf\n"}, bridge: "br0",
			err: "/etc/qemu/bridge.conf:1: include /etc/qemu/bridge.conf: it includes itself"},
		{name: "a loop of two", files: map[string]string{conf: "include a.conf\n", "/etc/qemu/a.conf": "include bridge.conf\n"}, bridge: "br0",
			err: "/etc/qemu/a.conf:1: include /etc/qemu/bridge.conf: it includes itself"},
		{name: "unreadable bridge.conf", files: map[string]string{conf: "EACCES"}, bridge: "br0",
			err: "failed to parse default acl file `/etc/qemu/bridge.conf' (/etc/qemu/bridge.conf: permission denied)"},

		// The policy on top.
		{name: "policy allow by group", files: map[string]string{}, policy: "[[helper.allow]]\ngroup = \"kvm\"\nbridges = [\"lab-*\"]\n", bridge: "lab-3",
			allow: "/etc/ifhook/config.toml:1: [[helper.allow]] group = \"kvm\", bridges = [\"lab-*\"]"},
		{name: "policy allow, not this user's group", files: map[string]string{}, policy: "[[helper.allow]]\ngroup = \"kvm\"\nbridges = [\"*\"]\n", caller: guest, bridge: "br0",
			deny: "no /etc/qemu/bridge.conf and no [[helper.allow]] for br0 nor in [[helper.allow]] of /etc/ifhook/config.toml; user guest, bridge br0"},
		{name: "policy deny beats bridge.conf allow", files: map[string]string{conf: "allow all\n"}, policy: "[[helper.deny]]\nuser = \"guest\"\nbridges = [\"*\"]\n", caller: guest, bridge: "br0",
			deny: "access denied by acl file (/etc/ifhook/config.toml:1: [[helper.deny]] user = \"guest\", bridges = [\"*\"]; user guest, bridge br0)"},
		{name: "policy deny for someone else", files: map[string]string{conf: "allow all\n"}, policy: "[[helper.deny]]\nuser = \"guest\"\nbridges = [\"*\"]\n", bridge: "br0",
			allow: "/etc/qemu/bridge.conf:1: allow all"},
		{name: "bridge.conf deny beats policy allow", files: map[string]string{conf: "deny br0\n"}, policy: "[[helper.allow]]\nbridges = [\"*\"]\n", bridge: "br0",
			deny: "(/etc/qemu/bridge.conf:1: deny br0; user alice)"},
		{name: "no bridge.conf, a policy allow is enough", files: map[string]string{}, policy: "[[helper.allow]]\nuser = \"alice\"\nbridges = [\"br0\"]\n", bridge: "br0",
			allow: "[[helper.allow]] user = \"alice\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caller := tc.caller
			if caller.User == "" {
				caller = alice
			}
			pol := mustPolicy(t, tc.policy)
			acl, err := LoadACL(conf, files(tc.files))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || exit.Code(err) != 78 || strings.Contains(err.Error(), "\n") {
					t.Fatalf("LoadACL = %v (exit %d); want exit 78 saying %q", err, exit.Code(err), tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadACL: %v", err)
			}
			d := Check(acl, pol, caller, tc.bridge)
			switch {
			case tc.allow != "":
				if !d.Allowed || !strings.Contains(d.Why, tc.allow) {
					t.Fatalf("Check = %+v; want allowed by %q", d, tc.allow)
				}
			default:
				if d.Allowed || d.Err == nil || !strings.Contains(d.Err.Error(), tc.deny) {
					t.Fatalf("Check = %+v; want denied saying %q", d, tc.deny)
				}
				if !strings.HasPrefix(d.Err.Error(), "access denied by acl file (") || exit.Code(d.Err) != 77 || strings.Contains(d.Err.Error(), "\n") {
					t.Fatalf("denial %q (exit %d) is not one line in qemu-bridge-helper's words", d.Err, exit.Code(d.Err))
				}
			}
		})
	}
}

// TestNeedsACL: with no bridge.conf and no [[helper.allow]], nobody can
// be allowed, and the message says how to grant access.
func TestNeedsACL(t *testing.T) {
	acl, err := LoadACL(conf, files(nil))
	if err != nil || !acl.Missing {
		t.Fatalf("LoadACL of nothing = %+v, %v", acl, err)
	}
	err = NeedsACL(acl, mustPolicy(t, ""))
	if err == nil || exit.Code(err) != 78 || !strings.HasPrefix(err.Error(), "failed to parse default acl file `/etc/qemu/bridge.conf' (it does not exist") ||
		!strings.Contains(err.Error(), `write "allow br0" in /etc/qemu/bridge.conf`) || !strings.Contains(err.Error(), "[[helper.allow]]") {
		t.Fatalf("NeedsACL = %v", err)
	}
	if err := NeedsACL(acl, mustPolicy(t, "[[helper.allow]]\nbridges = [\"br0\"]\n")); err != nil {
		t.Fatalf("with a [[helper.allow]]: %v", err)
	}
}

func TestACLIncludeDepth(t *testing.T) {
	m := map[string]string{conf: "include /etc/qemu/1.conf\n"}
	for i := 1; i < 12; i++ {
		m["/etc/qemu/"+string(rune('0'+i))+".conf"] = "include /etc/qemu/" + string(rune('0'+i+1)) + ".conf\n"
	}
	_, err := LoadACL(conf, files(m))
	if err == nil || !strings.Contains(err.Error(), "nested more than 8 deep") {
		t.Fatalf("deep includes: %v", err)
	}
}

// FuzzParseACL: whatever bridge.conf holds, parsing ends in rules or one
// line of error naming a file:line, and never a rule QEMU's helper would
// have cut; written back and parsed again, the rules are the same.
func FuzzParseACL(f *testing.F) {
	for _, s := range []string{"allow br0\n", "deny all\nallow all\n", "# c\n\tallow  br0 \r\ninclude x.conf\n", "include /etc/qemu/bridge.conf\n",
		"allow \n", "x\n", "deny br-production01X\n", "allow a\x00b\n"} {
		f.Add(s, "allow lab0\n")
	}
	f.Fuzz(func(t *testing.T, top, inc string) {
		read := files(map[string]string{"/etc/qemu/x.conf": inc, "/etc/qemu/bridge.conf": top})
		acl, err := ParseACL(conf, []byte(top), read)
		if err != nil {
			if exit.Code(err) != 78 || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "failed to parse default acl file `/etc/qemu/bridge.conf' (") {
				t.Fatalf("error %q (exit %d)", err, exit.Code(err))
			}
			return
		}
		var text strings.Builder
		for _, r := range acl.Rules {
			if !r.All && (r.Bridge == "" || len(r.Bridge) >= 16) {
				t.Fatalf("rule %s names a bridge QEMU's helper would cut or none", r)
			}
			if r.Line < 1 || (r.File != conf && r.File != "/etc/qemu/x.conf") {
				t.Fatalf("rule %s has no file:line", r)
			}
			verb, arg := "allow", r.Bridge
			if r.Deny {
				verb = "deny"
			}
			if r.All {
				arg = "all"
			}
			text.WriteString(verb + " " + arg + "\n")
		}
		again, err := ParseACL(conf, []byte(text.String()), read)
		if err != nil || len(again.Rules) != len(acl.Rules) {
			t.Fatalf("rules written back do not parse the same: %v\n%s", err, text.String())
		}
		for i := range acl.Rules {
			a, b := acl.Rules[i], again.Rules[i]
			if a.Deny != b.Deny || a.All != b.All || a.Bridge != b.Bridge {
				t.Fatalf("rule %d: %s, then %s", i, a, b)
			}
		}
		for _, c := range []policy.HelperCaller{alice, guest} {
			d := Check(acl, &policy.Policy{File: "p.toml"}, c, "br0")
			if d.Allowed == (d.Err != nil) {
				t.Fatalf("Check: allowed %v with error %v", d.Allowed, d.Err)
			}
		}
	})
}

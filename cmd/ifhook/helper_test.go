package main

// The bridge helper through run, in this process: only the paths that end
// before a TAP could be made (arguments, the socket, the ACL), and check
// and explain --helper, which change nothing.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook"
	"github.com/ifhook/ifhook/ifhook/helper"
	"golang.org/x/sys/unix"
)

func TestHelperUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", []string{"/usr/lib/qemu/qemu-bridge-helper"}, helper.UsageLine},
		{"an unknown one", []string{"qemu-bridge-helper", "--br=br0", "--fd=3", "--verbose"}, helper.UsageLine},
		{"no --fd=", []string{"my-bridge-helper", "--use-vnet", "--br=br0"}, helper.UsageLine},
		{"--config is not taken", []string{"qemu-bridge-helper", "--config=/tmp/x", "--br=br0", "--fd=3"}, helper.UsageLine},
		{"an over-long name (CVE-2019-13164)", []string{"qemu-bridge-helper", "--br=br-production01X", "--fd=3"},
			"ifhook: name `br-production01X' too long: 16 (--br=: an interface name is at most 15 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := unitEnv(t)
			r := unitRun(tc.args, env)
			checkFailure(t, r, 1, tc.want)
			if _, err := os.Stat(env["IFHOOK_STATE_DIR"] + "-helper"); !os.IsNotExist(err) {
				t.Errorf("something was made: %v", err)
			}
		})
	}
}

// TestHelperRefusesEarly: a descriptor that is not QEMU's socket, and an
// ACL that allows nothing, end the run before anything is looked at.
func TestHelperRefusesEarly(t *testing.T) {
	if !ifhook.HasNetAdmin() {
		// Without it the helper stops at once, saying so (tested by the
		// end-to-end test): the ACL is never read.
		t.Skip("needs CAP_NET_ADMIN to get as far as the ACL")
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sv[0])
	defer unix.Close(sv[1])
	sock := "--fd=" + strconv.Itoa(sv[1])
	for _, tc := range []struct {
		name string
		acl  string // "" : none
		args []string
		code int
		want string
	}{
		{"not a socket", "", []string{"--br=br0", "--fd=" + strconv.Itoa(int(devnull.Fd()))}, 64, "is not a socket (QEMU passes one end of a socketpair)"},
		{"not a descriptor", "", []string{"--br=br0", "--fd=987"}, 64, "--fd=987: bad file descriptor"},
		{"no ACL at all", "", []string{"--use-vnet", sock, "--br=br0"}, 78, "failed to parse default acl file `"},
		{"a broken ACL", "allow br0\npermit br1\n", []string{sock, "--br=br0"}, 78, "bridge.conf:2: Unknown command `permit'"},
		{"denied", "allow all\ndeny br0\n", []string{sock, "--br=br0"}, 77, "access denied by acl file ("},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := unitEnv(t)
			if tc.acl != "" {
				os.WriteFile(env["IFHOOK_BRIDGE_CONF"], []byte(tc.acl), 0o644)
			}
			r := unitRun(append([]string{"qemu-bridge-helper"}, tc.args...), env)
			if r.code != tc.code || r.stdout != "" || len(lines(r.stderr)) != 1 || !strings.HasPrefix(r.stderr, "ifhook: ") || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d and one line saying %q", r.code, r.stdout, r.stderr, tc.code, tc.want)
			}
		})
	}
	// Nothing was sent.
	unix.SetNonblock(sv[0], true)
	if _, fds, err := helper.RecvFD(sv[0]); err == nil || len(fds) > 0 {
		t.Fatalf("something was sent: %v, %v", fds, err)
	}
}

func TestCheckBridgeConf(t *testing.T) {
	env := unitEnv(t)
	conf := env["IFHOOK_BRIDGE_CONF"]
	// No bridge.conf and no [helper]: nothing to say about it.
	r := unitRun([]string{"ifhook", "check"}, env)
	if r.code != 0 || len(lines(r.stdout)) != 1 {
		t.Fatalf("check without bridge.conf: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	os.WriteFile(filepath.Join(filepath.Dir(conf), "lab.conf"), []byte("allow lab0\n"), 0o644)
	os.WriteFile(conf, []byte("allow br0\ninclude lab.conf\ninclude nosuch.conf\n"), 0o644)
	r = unitRun([]string{"ifhook", "check"}, env)
	if r.code != 0 || !strings.Contains(r.stdout, conf+": ok (2 rule(s) in 2 file(s)") || !strings.Contains(r.stdout, "note: include not read: "+filepath.Join(filepath.Dir(conf), "nosuch.conf")) {
		t.Fatalf("check with bridge.conf: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	os.WriteFile(conf, []byte("allow br0\n\nallow br-production01X\n"), 0o644)
	r = unitRun([]string{"ifhook", "check"}, env)
	if r.code != 78 || !strings.Contains(r.stderr, conf+":3: name `br-production01X' too long: 16") || len(lines(r.stderr)) != 2 {
		t.Fatalf("check with a bad bridge.conf: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestExplainHelper(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("judges files as another user would: needs a root test to mean it")
	}
	env := unitEnv(t)
	os.WriteFile(env["IFHOOK_BRIDGE_CONF"], []byte("allow ifhookexpl0\n"), 0o644)
	os.WriteFile(env["IFHOOK_CONFIG"], []byte("[[helper.allow]]\nuser = \"65534\"\nbridges = [\"ifhooklab*\"]\n"), 0o644)
	// Read as nobody would: t.TempDir() is root's alone.
	r := unitRun([]string{"ifhook", "explain", "--helper", "--user", "65534", "ifhookexpl0"}, env)
	if r.code != 78 || !strings.Contains(r.stderr, "bridge.conf: permission denied") {
		t.Fatalf("a bridge.conf nobody may read: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dir, err := os.MkdirTemp("", "ifhook-explain-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	env["IFHOOK_BRIDGE_CONF"] = filepath.Join(dir, "bridge.conf")
	os.WriteFile(env["IFHOOK_BRIDGE_CONF"], []byte("allow ifhookexpl0\ndeny ifhookexpl1\ninclude staff.conf\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "staff.conf"), []byte("allow all\n"), 0o600) // root's: nobody cannot read it
	// Allowed, by bridge.conf; the bridge is not on this host.
	r = unitRun([]string{"ifhook", "explain", "--helper", "--user", "65534", "ifhookexpl0"}, env)
	if r.code != 69 || !strings.Contains(r.stdout, "allowed: "+env["IFHOOK_BRIDGE_CONF"]+":1: allow ifhookexpl0") || !strings.Contains(r.stdout, "bridge:  missing") ||
		!strings.Contains(r.stdout, "note:    not read as nobody: "+filepath.Join(dir, "staff.conf")+" (included at "+env["IFHOOK_BRIDGE_CONF"]+":3): permission denied") ||
		!strings.Contains(r.stderr, `bridge "ifhookexpl0" does not exist`) {
		t.Fatalf("explain an allowed bridge: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Allowed, by the policy.
	r = unitRun([]string{"ifhook", "explain", "--helper", "--json", "--user", "65534", "ifhooklab3"}, env)
	var x helper.Explanation
	if err := json.Unmarshal([]byte(r.stdout), &x); err != nil || !x.Allowed || !strings.Contains(x.Why, "[[helper.allow]] user = \"65534\"") || x.UID != 65534 || x.Exit != 69 {
		t.Fatalf("explain --json: %v: %+v\n%s", err, x, r.stdout)
	}
	// Denied: the helper's own line, and its status.
	r = unitRun([]string{"ifhook", "explain", "--helper", "--user", "65534", "ifhookexpl1"}, env)
	if r.code != 77 || !strings.Contains(r.stdout, "denied:  "+env["IFHOOK_BRIDGE_CONF"]+":2: deny ifhookexpl1") ||
		!strings.Contains(r.stderr, "access denied by acl file ("+env["IFHOOK_BRIDGE_CONF"]+":2: deny ifhookexpl1; user ") {
		t.Fatalf("explain a denied bridge: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = unitRun([]string{"ifhook", "explain", "--helper", "--user", "no-such-user-ifhook", "br0"}, env)
	if r.code != 64 {
		t.Fatalf("an unknown user: exit %d %q", r.code, r.stderr)
	}
	r = unitRun([]string{"ifhook", "explain", "--user", "65534", "vnet0"}, env)
	if r.code != 64 || !strings.Contains(r.stderr, "--user goes with --helper") {
		t.Fatalf("--user without --helper: exit %d %q", r.code, r.stderr)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// binDir holds the ifhook binary built for these tests and its
// qemu-ifup/qemu-ifdown symlinks, in a directory anyone may read (the
// tests also run it as an unprivileged user).
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ifhook-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "ifhook"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build ifhook: %v\n%s", err, out)
		os.Exit(1)
	}
	// The killpoint build (killpoint_test.go) kills itself at a chosen
	// change to the kernel.
	kp := filepath.Join(dir, "killpoint")
	os.Mkdir(kp, 0o755)
	build = exec.Command("go", "build", "-tags", "killpoint", "-o", filepath.Join(kp, "ifhook"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build ifhook -tags killpoint: %v\n%s", err, out)
		os.Exit(1)
	}
	for _, d := range []string{dir, kp} {
		for _, name := range []string{"qemu-ifup", "qemu-ifdown"} {
			if err := os.Symlink("ifhook", filepath.Join(d, name)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}
	binDir = dir
	code := 0
	func() {
		defer os.RemoveAll(dir)
		code = nstest.GuardedRun(m) // fails the run if the host's links changed
	}()
	os.Exit(code)
}

// env is one test's environment: a namespace, a state directory, a policy.
type testEnv struct {
	t      *testing.T
	ns     *nstest.NS
	state  string
	policy string
	acl    string // IFHOOK_BRIDGE_CONF: none there unless a test writes one
	extra  []string
	uid    int // run as this user when non-zero
}

func newEnv(t *testing.T, policyText string) *testEnv {
	t.Helper()
	e := &testEnv{t: t, ns: nstest.New(t), state: t.TempDir()}
	e.acl = filepath.Join(t.TempDir(), "bridge.conf")
	e.setPolicy(policyText)
	return e
}

func (e *testEnv) setPolicy(text string) {
	e.t.Helper()
	e.policy = filepath.Join(e.t.TempDir(), "config.toml")
	if err := os.WriteFile(e.policy, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// environ is the environment the test's ifhook (or QEMU) runs with.
func (e *testEnv) environ() []string {
	return append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "IFHOOK_STATE_DIR=" + e.state, "IFHOOK_CONFIG=" + e.policy, "IFHOOK_BRIDGE_CONF=" + e.acl, "IFHOOK_SYSLOG=off"}, e.extra...)
}

// run runs ifhook under the name prog (qemu-ifup, qemu-ifdown, ifhook)
// inside the test's namespace.
func (e *testEnv) run(prog string, args ...string) result {
	e.t.Helper()
	if !filepath.IsAbs(prog) {
		prog = filepath.Join(binDir, prog)
	}
	cmd := exec.Command(prog, args...)
	cmd.Env = e.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if e.uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(e.uid), Gid: uint32(e.uid)}}
	}
	err := e.ns.Run(cmd)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %s %q: %v", prog, args, err)
	}
	return result{code, out.String(), errb.String()}
}

// mustRun runs and fails the test unless the exit code is want.
func (e *testEnv) mustRun(want int, prog string, args ...string) result {
	e.t.Helper()
	r := e.run(prog, args...)
	if r.code != want {
		e.t.Fatalf("%s %s: exit %d, want %d\nstdout: %s\nstderr: %s", prog, strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

type linkState struct {
	master string
	up     bool
	mtu    int
	mac    string
}

func (e *testEnv) link(name string) linkState {
	e.t.Helper()
	a := e.ns.Link(e.t, name).Attrs()
	return linkState{master: e.ns.MasterName(e.t, name), up: a.Flags&net.FlagUp != 0, mtu: a.MTU, mac: a.HardwareAddr.String()}
}

func (e *testEnv) setMTU(name string, mtu int) {
	e.t.Helper()
	if err := e.ns.Handle.LinkSetMTU(e.ns.Link(e.t, name), mtu); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) recordExists(tap string) bool {
	_, err := os.Stat(filepath.Join(e.state, "taps", tap))
	return err == nil
}

// assertOneLine asserts a failure printed exactly one line, naming what.
func assertOneLine(t *testing.T, r result, wants ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ifhook: ") {
		t.Errorf("stderr is not one \"ifhook: \" line: %q", r.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q does not mention %q", r.stderr, w)
		}
	}
}

func TestIfupIfdown(t *testing.T) {
	e := newEnv(t, "bridge = \"br0\"\nmac_prefix = \"52:54:00\"\n")
	e.ns.AddBridge(t, "br0")
	e.setMTU("br0", 1400)
	e.ns.AddTAP(t, "vnet0")
	before := e.link("vnet0")

	r := e.mustRun(0, "qemu-ifup", "vnet0")
	if r.stderr != "" || r.stdout != "" {
		t.Errorf("ifup is not silent: %q %q", r.stdout, r.stderr)
	}
	want := linkState{master: "br0", up: true, mtu: 1400, mac: policy.HostTAPMAC(policy.DefaultMACPrefix, "vnet0").String()}
	if got := e.link("vnet0"); got != want {
		t.Fatalf("after ifup: %+v, want %+v", got, want)
	}
	if !strings.HasPrefix(want.mac, "fe:54:00:") {
		t.Errorf("derived MAC %s lacks fe:54:00", want.mac)
	}
	if !e.recordExists("vnet0") {
		t.Fatal("no record after ifup")
	}
	rec, _ := os.ReadFile(filepath.Join(e.state, "taps", "vnet0"))

	// Twice is safe, and changes nothing (the record included).
	r = e.mustRun(0, "qemu-ifup", "vnet0")
	if r.stderr != "" {
		t.Errorf("second ifup printed %q", r.stderr)
	}
	if rec2, _ := os.ReadFile(filepath.Join(e.state, "taps", "vnet0")); !bytes.Equal(rec, rec2) {
		t.Errorf("second ifup rewrote the record:\n%s\n%s", rec, rec2)
	}
	if got := e.link("vnet0"); got != want {
		t.Fatalf("after second ifup: %+v, want %+v", got, want)
	}

	e.mustRun(0, "qemu-ifdown", "vnet0")
	if got := e.link("vnet0"); got != before {
		t.Fatalf("after ifdown: %+v, want as before ifup: %+v", got, before)
	}
	if e.recordExists("vnet0") {
		t.Error("record left after ifdown")
	}
	e.mustRun(0, "qemu-ifdown", "vnet0")
	// ifdown of a TAP that is gone succeeds, quietly unless -v.
	r = e.mustRun(0, "qemu-ifdown", "gone0")
	if r.stderr != "" {
		t.Errorf("ifdown of a missing TAP printed %q without -v", r.stderr)
	}
	e.extra = []string{"IFHOOK_VERBOSE=1"}
	r = e.mustRun(0, "qemu-ifdown", "gone0")
	if !strings.Contains(r.stderr, "already gone") {
		t.Errorf("-v ifdown of a missing TAP printed %q", r.stderr)
	}
}

func TestIfupAnyNameEndingInIfup(t *testing.T) {
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")
	link := filepath.Join(t.TempDir(), "my-lab-ifup")
	if err := os.Symlink(filepath.Join(binDir, "ifhook"), link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, "vnet0")
	cmd.Env = e.environ()
	if out, err := func() ([]byte, error) {
		var b bytes.Buffer
		cmd.Stderr = &b
		err := e.ns.Run(cmd)
		return b.Bytes(), err
	}(); err != nil {
		t.Fatalf("my-lab-ifup: %v %s", err, out)
	}
	if got := e.link("vnet0").master; got != "br0" {
		t.Fatalf("master %q, want br0", got)
	}
}

func TestIfupMovesBetweenBridges(t *testing.T) {
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	e.ns.AddBridge(t, "br1")
	tap := e.ns.AddTAP(t, "vnet0")
	if err := e.ns.Handle.LinkSetMaster(tap, e.ns.Link(t, "br1")); err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(0, "qemu-ifup", "vnet0")
	if got := e.link("vnet0").master; got != "br0" {
		t.Fatalf("master %q, want br0", got)
	}
	if !strings.Contains(r.stderr, "moved") || !strings.Contains(r.stderr, "br1") || !strings.Contains(r.stderr, "br0") {
		t.Errorf("the move was not reported on stderr: %q", r.stderr)
	}
}

func TestIfupRuleMTUAndKeepMAC(t *testing.T) {
	e := newEnv(t, `
bridge = ""
tap_mac = "keep"
[[rule]]
tap = "lab-*"
bridge = "br-lab"
mtu = 1280
`)
	e.ns.AddBridge(t, "br-lab")
	e.ns.AddTAP(t, "lab-1")
	e.ns.AddTAP(t, "other0")
	mac := e.link("lab-1").mac
	e.mustRun(0, "qemu-ifup", "lab-1")
	if got := e.link("lab-1"); got.master != "br-lab" || got.mtu != 1280 || got.mac != mac {
		t.Fatalf("lab-1: %+v; want on br-lab, MTU 1280, MAC kept %s", got, mac)
	}
	// bridge = "" and no rule matches: refused, untouched.
	before := e.link("other0")
	r := e.mustRun(69, "qemu-ifup", "other0")
	assertOneLine(t, r, "up other0", "no bridge chosen")
	if e.link("other0") != before {
		t.Error("refused TAP was touched")
	}
}

func TestExitCodes(t *testing.T) {
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")
	e.ns.AddVeth(t, "veth0", "veth1")
	e.ns.AddTUN(t, "tun0")

	cases := []struct {
		name   string
		prog   string
		args   []string
		policy string
		code   int
		says   []string
	}{
		{"unknown program name", "ifhook-sym", []string{"vnet0"}, "", 64, nil},
		{"no argument", "qemu-ifup", nil, "", 64, []string{"exactly one argument"}},
		{"two arguments", "qemu-ifdown", []string{"a", "b"}, "", 64, nil},
		{"unknown subcommand", "ifhook", []string{"frobnicate"}, "", 64, []string{"frobnicate"}},
		{"bad name", "qemu-ifup", []string{"eth0:1"}, "", 65, []string{`"eth0:1"`, "':'"}},
		{"name too long", "qemu-ifup", []string{"abcdefghijklmnop"}, "", 65, []string{"longer than 15"}},
		{"missing TAP", "qemu-ifup", []string{"vnet9"}, "", 65, []string{"up vnet9", "no such device"}},
		{"veth", "qemu-ifup", []string{"veth0"}, "", 65, []string{"is a veth, not a TAP"}},
		{"TUN", "qemu-ifup", []string{"tun0"}, "", 65, []string{"TUN"}},
		{"missing bridge", "qemu-ifup", []string{"vnet0"}, `bridge = "br9"`, 69, []string{`bridge "br9" does not exist`, "config.toml:1"}},
		{"not a bridge", "qemu-ifup", []string{"vnet0"}, `bridge = "veth1"`, 69, []string{"not a bridge"}},
		{"broken policy", "qemu-ifup", []string{"vnet0"}, "bridge = \"br0\"\nbirdge = 1\n", 78, []string{"config.toml:2", "birdge", "did you mean \"bridge\""}},
		{"policy syntax", "qemu-ifup", []string{"vnet0"}, "bridge = \n", 78, []string{"config.toml:1"}},
		{"mtu above the TAP's maximum", "qemu-ifup", []string{"vnet0"}, "[[rule]]\nbridge = \"br0\"\nmtu = 65535\n", 71, []string{"mtu 65535", "rule 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			if tc.policy != "" {
				e.setPolicy(tc.policy)
			} else {
				e.setPolicy(`bridge = "br0"`)
			}
			if tc.prog == "ifhook-sym" {
				if err := os.Symlink("ifhook", filepath.Join(binDir, tc.prog)); err != nil && !os.IsExist(err) {
					t.Fatal(err)
				}
			}
			before := e.link("vnet0")
			r := e.run(tc.prog, tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tc.code, r.stderr)
			}
			if tc.code != 64 {
				assertOneLine(t, r, tc.says...)
			} else {
				for _, w := range tc.says {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("stderr %q lacks %q", r.stderr, w)
					}
				}
			}
			if after := e.link("vnet0"); after != before {
				t.Errorf("a failed call changed vnet0: %+v -> %+v", before, after)
			}
			if e.link("veth0").master != "" {
				t.Error("the veth was enslaved")
			}
		})
	}
}

// TestRollbackOnKernelRefusal uses a real kernel refusal: a TAP's maximum
// MTU is 65521, so the RTM_NEWLINK that sets MAC, MTU, master and up fails
// after the kernel has already applied the MAC.
func TestRollbackOnKernelRefusal(t *testing.T) {
	e := newEnv(t, "[[rule]]\nbridge = \"br0\"\nmtu = 65535\n")
	e.ns.AddBridge(t, "br0")
	e.ns.AddBridge(t, "br1")
	tap := e.ns.AddTAP(t, "vnet0")
	if err := e.ns.Handle.LinkSetMaster(tap, e.ns.Link(t, "br1")); err != nil {
		t.Fatal(err)
	}
	before := e.link("vnet0")
	r := e.mustRun(71, "qemu-ifup", "vnet0")
	assertOneLine(t, r, "up vnet0", "invalid argument")
	if after := e.link("vnet0"); after != before {
		t.Fatalf("after the failed ifup: %+v, want as before: %+v", after, before)
	}
	if e.recordExists("vnet0") {
		t.Error("a failed ifup left a record")
	}
}

func TestStateAndLockErrors(t *testing.T) {
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")

	t.Run("state dir is a file", func(t *testing.T) {
		e.t = t
		file := filepath.Join(t.TempDir(), "file")
		os.WriteFile(file, nil, 0o600)
		saved := e.state
		e.state = file
		defer func() { e.state = saved }()
		r := e.mustRun(73, "qemu-ifup", "vnet0")
		assertOneLine(t, r, "up vnet0", "state directory")
	})
	t.Run("lock held", func(t *testing.T) {
		e.t = t
		os.MkdirAll(e.state, 0o700)
		f, err := os.OpenFile(filepath.Join(e.state, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		e.extra = []string{"IFHOOK_LOCK_TIMEOUT=300ms"}
		defer func() { e.extra = nil }()
		r := e.mustRun(75, "qemu-ifup", "vnet0")
		assertOneLine(t, r, "up vnet0", "timed out")
		if e.link("vnet0").master != "" {
			t.Error("attached without the lock")
		}
	})
}

func TestWithoutPrivileges(t *testing.T) {
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")
	e.ns.AddTAP(t, "vnet1")
	// The policy must be readable by nobody, as /etc/ifhook/config.toml is.
	os.Chmod(filepath.Dir(e.policy), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(e.policy)), 0o755)

	e.mustRun(0, "qemu-ifup", "vnet0")
	e.uid = 65534 // nobody: what QEMU -runas leaves the downscript with
	r := e.mustRun(77, "qemu-ifup", "vnet1")
	assertOneLine(t, r, "up vnet1", "CAP_NET_ADMIN")

	r = e.mustRun(0, "qemu-ifdown", "vnet0")
	if r.stderr != "" {
		t.Errorf("unprivileged ifdown printed %q without -v", r.stderr)
	}
	if e.link("vnet0").master != "br0" || !e.recordExists("vnet0") {
		t.Fatal("unprivileged ifdown changed something")
	}
	e.extra = []string{"IFHOOK_VERBOSE=1"}
	r = e.mustRun(0, "qemu-ifdown", "vnet0")
	if !strings.Contains(r.stderr, "CAP_NET_ADMIN") || !strings.Contains(r.stderr, "gc") {
		t.Errorf("-v unprivileged ifdown said %q; want why, and that gc cleans up", r.stderr)
	}
	// QEMU closes the TAP, the kernel removes it; gc removes the record.
	e.uid, e.extra = 0, nil
	if err := e.ns.Handle.LinkDel(e.ns.Link(t, "vnet0")); err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(0, "ifhook", "gc")
	if !strings.Contains(r.stdout, "vnet0") || e.recordExists("vnet0") {
		t.Fatalf("gc: %q; record still there: %v", r.stdout, e.recordExists("vnet0"))
	}
}

func TestConcurrentIfups(t *testing.T) {
	const n = 64
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	for i := range n {
		e.ns.AddTAP(t, fmt.Sprintf("vnet%d", i))
	}
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Go(func() { results[i] = e.run("qemu-ifup", fmt.Sprintf("vnet%d", i)) })
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("vnet%d: exit %d: %s", i, r.code, r.stderr)
		}
		if got := e.link(fmt.Sprintf("vnet%d", i)); got.master != "br0" || !got.up {
			t.Errorf("vnet%d: %+v, want attached and up", i, got)
		}
	}
	r := e.mustRun(0, "ifhook", "list", "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != n {
		t.Fatalf("list --json: %d entries, %v; want %d", len(list), err, n)
	}
}

func TestIfdownAfterPolicyChange(t *testing.T) {
	e := newEnv(t, "[[rule]]\ntap = \"vnet*\"\nbridge = \"br0\"\nmtu = 1400\n")
	e.ns.AddBridge(t, "br0")
	e.ns.AddBridge(t, "br1")
	e.ns.AddTAP(t, "vnet0")
	before := e.link("vnet0")
	e.mustRun(0, "qemu-ifup", "vnet0")
	// The admin edits the policy while the VM runs.
	e.setPolicy("bridge = \"br1\"\nmac_prefix = \"02:00\"\n")
	e.mustRun(0, "qemu-ifdown", "vnet0")
	if got := e.link("vnet0"); got != before {
		t.Fatalf("after ifdown under the new policy: %+v, want as before: %+v", got, before)
	}
}

func TestExplainChangesNothing(t *testing.T) {
	e := newEnv(t, "[[rule]]\ntap = \"vnet*\"\nbridge = \"br0\"\n")
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")
	before := e.link("vnet0")
	r := e.mustRun(0, "ifhook", "explain", "vnet0")
	for _, w := range []string{"rule 1 (tap = \"vnet*\")", "config.toml:1", "bridge: br0", "master br0", "ip link set dev vnet0 up"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("explain output lacks %q:\n%s", w, r.stdout)
		}
	}
	r = e.mustRun(0, "ifhook", "explain", "--json", "vnet0")
	var plan struct {
		Bridge string   `json:"bridge"`
		Steps  []string `json:"steps"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || plan.Bridge != "br0" || len(plan.Steps) != 3 {
		t.Fatalf("explain --json: %+v, %v\n%s", plan, err, r.stdout)
	}
	if e.link("vnet0") != before || e.recordExists("vnet0") {
		t.Fatal("explain changed something")
	}
	// On a problem, the JSON carries the error and the exit ifup would give.
	r = e.run("ifhook", "explain", "--json", "vnet9")
	var failed struct {
		Error string `json:"error"`
		Exit  int    `json:"exit"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &failed); err != nil || r.code != 65 || failed.Exit != 65 || !strings.Contains(failed.Error, "no such device") {
		t.Fatalf("explain --json of a missing TAP: exit %d, %+v, %v\n%s", r.code, failed, err, r.stdout)
	}
	e.mustRun(0, "qemu-ifup", "vnet0")
	r = e.mustRun(0, "ifhook", "explain", "vnet0")
	if !strings.Contains(r.stdout, "nothing to do") {
		t.Errorf("explain of an attached TAP:\n%s", r.stdout)
	}
	r = e.mustRun(0, "ifhook", "explain", "--down", "vnet0")
	if !strings.Contains(r.stdout, "nomaster") {
		t.Errorf("explain --down:\n%s", r.stdout)
	}
}

func TestSyslog(t *testing.T) {
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")
	sock := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	e.extra = []string{"IFHOOK_SYSLOG=" + sock}
	e.mustRun(0, "qemu-ifup", "vnet0")
	e.mustRun(65, "qemu-ifup", "nosuch0")
	var lines []string
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			break
		}
		lines = append(lines, string(buf[:n]))
	}
	all := strings.Join(lines, "\n")
	for _, w := range []string{"ifhook[", "up vnet0: ip link set dev vnet0 address fe:54:00:e4:9d:39 master br0 up", "up nosuch0: no such device", "<27>"} {
		if !strings.Contains(all, w) {
			t.Errorf("syslog lacks %q:\n%s", w, all)
		}
	}
}

func TestBuiltinPolicy(t *testing.T) {
	if _, err := os.Stat(policy.DefaultPath); err == nil {
		t.Skipf("%s exists on this host; the built-in policy applies only without it", policy.DefaultPath)
	}
	e := newEnv(t, "")
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")
	cmd := exec.Command(filepath.Join(binDir, "qemu-ifup"), "vnet0")
	cmd.Env = []string{"IFHOOK_STATE_DIR=" + e.state, "IFHOOK_SYSLOG=off"}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := e.ns.Run(cmd); err != nil {
		t.Fatalf("ifup with the built-in policy: %v: %s", err, errb.String())
	}
	if got := e.link("vnet0").master; got != "br0" {
		t.Fatalf("built-in policy (auto, one bridge) attached to %q", got)
	}
}

func TestCheckAgainstHost(t *testing.T) {
	e := newEnv(t, "[bridges.br-lan]\nmodel = \"bridged\"\nuplink = \"eth1\"\n[bridges.br-rt]\nmodel = \"routed\"\naddress = \"192.0.2.1/24\"\n")
	e.ns.AddBridge(t, "br-other")
	e.ns.AddVeth(t, "eth1", "peer1")
	e.ns.AddVeth(t, "eth2", "peer2")
	if err := e.ns.Handle.LinkSetMaster(e.ns.Link(t, "eth1"), e.ns.Link(t, "br-other")); err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("192.0.2.1/24")
	if err := e.ns.Handle.AddrAdd(e.ns.Link(t, "eth2"), addr); err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(78, "ifhook", "check")
	for _, w := range []string{"bridges.br-lan: uplink eth1 of bridge br-lan is already a port of br-other", "config.toml:1", "192.0.2.1/24 of bridge br-rt is already on eth2", "2 problem(s) with the host"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("check output lacks %q:\n%s", w, r.stderr)
		}
	}
	if e.ns.HasLink("br-lan") || e.ns.HasLink("br-rt") {
		t.Fatal("check made a bridge")
	}
}

package main

// Input nobody expects, and input someone hostile crafts (issue: "nothing
// it reads can be turned against the host"): each case asserts the exit
// code, one escaped line, no hang, and that nothing outside the test's
// namespace and state directory changed.

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// runWithin runs ifhook and fails the test if it takes longer than d: a
// FIFO or a device must not hang QEMU's start.
func (e *testEnv) runWithin(d time.Duration, prog string, args ...string) result {
	e.t.Helper()
	done := make(chan result, 1)
	go func() { done <- e.run(prog, args...) }()
	select {
	case r := <-done:
		return r
	case <-time.After(d):
		e.t.Fatalf("%s %s did not finish in %s", prog, strings.Join(args, " "), d)
		return result{}
	}
}

// oneEscapedLine asserts stderr is exactly one line with no raw control
// character, and that it contains want.
func oneEscapedLine(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d: %q", r.code, code, r.stderr)
	}
	line := strings.TrimSuffix(r.stderr, "\n")
	if strings.Contains(line, "\n") {
		t.Errorf("stderr is more than one line: %q", r.stderr)
	}
	if strings.ContainsFunc(line, func(c rune) bool { return c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) }) {
		t.Errorf("stderr holds a raw control character: %q", line)
	}
	if !strings.Contains(line, want) {
		t.Errorf("stderr %q does not say %q", line, want)
	}
}

func TestHostilePolicyFiles(t *testing.T) {
	e := newEnv(t, "bridge = \"br0\"\n")
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")
	before := wholeState(t, e.ns)
	fifo := filepath.Join(t.TempDir(), "policy.fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(t.TempDir(), "deep.toml")
	os.WriteFile(deep, []byte("a = "+strings.Repeat("{b=", 4000)+"1"+strings.Repeat("}", 4000)), 0o644)
	huge := filepath.Join(t.TempDir(), "huge.toml")
	f, _ := os.Create(huge)
	f.Truncate(2 << 30)
	f.Close()
	for _, tc := range []struct{ name, policy, want string }{
		{"FIFO", fifo, "is a FIFO, not a regular file"},
		{"/dev/zero", "/dev/zero", "is a character device, not a regular file"},
		{"directory", t.TempDir(), "is a directory, not a regular file"},
		{"2 GB", huge, "is larger than 1 MiB, the most ifhook reads"},
		{"nested inline tables", deep, "nested more than 8 deep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.policy = tc.policy
			for _, args := range [][]string{{"qemu-ifup", "vnet0"}, {"qemu-ifdown", "vnet0"}, {"ifhook", "check"}, {"ifhook", "explain", "vnet0"}} {
				r := e.runWithin(10*time.Second, args[0], args[1:]...)
				if r.code != 78 || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("%v: exit %d, %q; want 78 and %q", args, r.code, r.stderr, tc.want)
				}
			}
		})
	}
	if diff := cmp.Diff(before, wholeState(t, e.ns)); diff != "" {
		t.Fatalf("the namespace changed:\n%s", diff)
	}
}

// TestHostileRecords: records crafted to reach outside the state directory,
// to write a sysctl ifhook never touches, or just corrupt, are moved
// aside and reported; they never block list, gc or ifup.
func TestHostileRecords(t *testing.T) {
	e := newEnv(t, "bridge = \"br0\"\n")
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")
	e.mustRun(0, "qemu-ifup", "vnet0")
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	rel, _ := filepath.Rel(filepath.Join(e.state, "taps"), victim)
	taps, bridges := filepath.Join(e.state, "taps"), filepath.Join(e.state, "bridges")
	os.MkdirAll(bridges, 0o700)
	os.WriteFile(filepath.Join(taps, "vnet9"), []byte("tap="+rel+"\nifindex=5\nbridge=br0\n"), 0o600)
	os.WriteFile(filepath.Join(taps, "vnet8"), []byte("\x00\xff garbage"), 0o600)
	f, _ := os.Create(filepath.Join(taps, "vnet7"))
	f.Truncate(2 << 30)
	f.Close()
	os.WriteFile(filepath.Join(bridges, "br0"), []byte("bridge=br0\nmodel=nat\nstep=done sysctl key=net.ipv4.tcp_syncookies value=0 old=1\n"), 0o600)
	os.WriteFile(filepath.Join(taps, "vnet6:999999999.tmp"), []byte("left by a killed run"), 0o600)
	syncookies := e.ns.Sysctl(t, "net.ipv4.tcp_syncookies")

	for _, args := range [][]string{{"ifhook", "list"}, {"ifhook", "gc"}, {"ifhook", "teardown", "--all"}, {"ifhook", "list", "--json"}} {
		r := e.runWithin(10*time.Second, args[0], args[1:]...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	if got, err := os.ReadFile(victim); err != nil || string(got) != "keep" {
		t.Fatalf("the file outside the state directory was touched: %q, %v", got, err)
	}
	if got := e.ns.Sysctl(t, "net.ipv4.tcp_syncookies"); got != syncookies {
		t.Fatalf("tcp_syncookies was written: %s, was %s", got, syncookies)
	}
	for _, n := range []string{"taps/vnet9", "taps/vnet8", "taps/vnet7", "bridges/br0"} {
		if _, err := os.Lstat(filepath.Join(e.state, n+":corrupt")); err != nil {
			t.Errorf("%s was not moved aside: %v", n, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(taps, "vnet6:999999999.tmp")); !os.IsNotExist(err) {
		t.Error("gc left the temporary file of a dead process")
	}
	// The good record and the TAP are untouched, and ifdown works.
	if e.link("vnet0").master != "br0" {
		t.Fatal("vnet0 was detached")
	}
	e.mustRun(0, "qemu-ifdown", "vnet0")
}

// TestSharedStateDir: a state directory others can write, or with a lock
// planted as a symlink, is refused (73, naming it) before anything changes.
func TestSharedStateDir(t *testing.T) {
	e := newEnv(t, "bridge = \"br0\"\n")
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")
	before := wholeState(t, e.ns)
	syscall.Chmod(e.state, 0o1777) // as /tmp is
	oneEscapedLine(t, e.run("qemu-ifup", "vnet0"), 73, "state directory "+e.state+" is writable by its group or others (mode 1777)")
	os.Chmod(e.state, 0o700)
	victim := filepath.Join(t.TempDir(), "victim")
	os.Symlink(victim, filepath.Join(e.state, "lock"))
	oneEscapedLine(t, e.run("qemu-ifup", "vnet0"), 73, "is a symbolic link")
	if _, err := os.Lstat(victim); !os.IsNotExist(err) {
		t.Fatal("a file was created through the planted symlink")
	}
	if diff := cmp.Diff(before, wholeState(t, e.ns)); diff != "" {
		t.Fatalf("the namespace changed:\n%s", diff)
	}
}

// fakeQEMU is a copy of /bin/sh named as QEMU, so that what it runs has a
// "QEMU" parent whose command line says what the test wants.
func fakeQEMU(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	fake := filepath.Join(dir, "qemu-system-x86_64")
	src, err := os.Open("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(fake, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	return fake
}

// TestOddVMNames: a VM name with a newline, an ESC and a C1 control, from
// the command line of the QEMU that runs the hook, reaches stderr, syslog
// and list only escaped.
func TestOddVMNames(t *testing.T) {
	e := newEnv(t, "bridge = \"br0\"\nguest_mac = \"enforce\"\n")
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")
	sock := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	name := "evil\nifhook[1]: forged\x1b[2J\u009b"
	// QEMU's default MAC, refused under enforce: the refusal names the VM
	// in its "try: ifhook mac NAME" hint.
	cmd := exec.Command(fakeQEMU(t), "-c", filepath.Join(binDir, "qemu-ifup")+" vnet0", "-name", name, "-nic", "tap,ifname=vnet0")
	cmd.Env = append(e.environ(), "IFHOOK_SYSLOG="+sock)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = e.ns.Run(cmd)
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 65 {
		t.Fatalf("fake QEMU's ifup: %v, %s; want exit 65 (QEMU's default MAC under enforce)", err, stderr.String())
	}
	oneEscapedLine(t, result{code: 65, stderr: stderr.String()}, 65, `evil\nifhook[1]: forged\x1b[2J\u009b`)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8192)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("nothing reached syslog: %v", err)
	}
	if line := string(buf[:n]); strings.ContainsAny(line, "\n\x1b") || strings.Contains(line, "\u009b") || !strings.Contains(line, `evil\nifhook[1]: forged`) {
		t.Fatalf("syslog got a raw control character or lost the name: %q", line)
	}

	// Accepted under warn, the name is in the record: list escapes it.
	e.setPolicy("bridge = \"br0\"\n")
	cmd = exec.Command(fakeQEMU(t), "-c", filepath.Join(binDir, "qemu-ifup")+" vnet0", "-name", name, "-nic", "tap,ifname=vnet0,mac=52:54:00:00:00:07")
	cmd.Env = e.environ()
	if out, err := runIn(e, cmd); err != nil {
		t.Fatalf("ifup under warn: %v: %s", err, out)
	}
	r := e.mustRun(0, "ifhook", "list")
	if strings.ContainsAny(r.stdout, "\x1b") || strings.Contains(r.stdout, "\u009b") || !strings.Contains(r.stdout, `evil\nifhook[1]: forged\x1b[2J\u009b`) {
		t.Fatalf("list printed the name raw or lost it:\n%q", r.stdout)
	}
	r = e.mustRun(0, "ifhook", "list", "--json")
	if strings.ContainsAny(r.stdout, "\x1b") || strings.Contains(r.stdout, "\u009b") || !strings.Contains(r.stdout, `\u001b[2J\u009b`) {
		t.Fatalf("list --json printed the name raw:\n%q", r.stdout)
	}
}

func runIn(e *testEnv, cmd *exec.Cmd) (string, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := e.ns.Run(cmd)
	return out.String(), err
}

// TestWithoutNetAdmin runs each subcommand that changes the network as an
// unprivileged user (setpriv): 77 before it touches the state, and one
// line; ifdown changes nothing and succeeds (QEMU's -runas).
func TestWithoutNetAdmin(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv")
	}
	e := newEnv(t, "bridge = \"br0\"\n[bridges.br-nat]\nmodel = \"nat\"\naddress = \"192.0.2.1/24\"\n")
	e.ns.AddBridge(t, "br0")
	e.ns.AddTAP(t, "vnet0")
	// A directory the unprivileged user can read, for the policy; the
	// state directory is not there yet, and must stay so.
	base, err := os.MkdirTemp("", "ifhook-nocap")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	e.policy = filepath.Join(base, "config.toml")
	os.WriteFile(e.policy, []byte("bridge = \"br0\"\n[bridges.br-nat]\nmodel = \"nat\"\naddress = \"192.0.2.1/24\"\n"), 0o644)
	state := filepath.Join(base, "state")
	e.state = state
	before := wholeState(t, e.ns)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"qemu-ifup", "vnet0"}, 77, "needs CAP_NET_ADMIN to attach a TAP"},
		{[]string{"ifhook", "setup"}, 77, "needs CAP_NET_ADMIN to set up bridges"},
		{[]string{"ifhook", "teardown", "--all"}, 77, "needs CAP_NET_ADMIN to tear down bridges"},
		{[]string{"ifhook", "gc"}, 77, "needs CAP_NET_ADMIN to clean up after ifhook"},
		{[]string{"qemu-ifdown", "vnet0"}, 0, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", filepath.Join(binDir, tc.args[0])}, tc.args[1:]...)...)
			cmd.Env = e.environ()
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := e.ns.Run(cmd)
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.code != 0 {
				oneEscapedLine(t, result{code, out.String(), errb.String()}, tc.code, tc.want)
			} else if code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Fatalf("the state directory was made: %v", err)
			}
		})
	}
	if diff := cmp.Diff(before, wholeState(t, e.ns)); diff != "" {
		t.Fatalf("the namespace changed:\n%s", diff)
	}
}

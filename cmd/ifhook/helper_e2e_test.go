package main

// The bridge helper end to end (issue 12): real QEMU, run as users who
// are not root, with -netdev bridge,helper= naming a copy of the ifhook
// binary that carries the file capability cap_net_admin+ep (set with
// setcap) and is set-group-ID to the helper's group, as install-hooks
// --bridge-helper installs it.
//
// The helper reads fixed paths (/etc/qemu/bridge.conf,
// /etc/ifhook/config.toml, /run/ifhook-helper) and nothing the caller can
// point elsewhere, so the test gives it its own: everything runs in a
// network namespace and a mount namespace the test made, where /run is a
// fresh tmpfs and /etc an overlay whose writes land in a temporary
// directory. The users exist only in that /etc. The host's /etc, /run and
// network are never touched, and both namespaces vanish with the test.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ifhook/ifhook/ifhook"
	"github.com/ifhook/ifhook/ifhook/install"
	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/ifhook/ifhook/ifhook/nstest/guest"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

// The world's users and the helper's group: numbers unused on the host,
// named only inside the test's /etc.
const (
	helperTestGID = 64100
	aliceUID      = 64101 // ifhtest1: bridge.conf allows br0 and br9, denies br1
	bobUID        = 64102 // ifhtest2: [[helper.allow]] lets him ask for any bridge
)

const helperTestPolicy = `bridge = "br0"

[[helper.allow]]
user = "ifhtest2"
bridges = ["*"]

# A bridge root's ifup would make: the helper never does.
[bridges.br9]
model = "isolated"
`

const helperTestACL = `# who may use the bridge helper
allow br0
deny br1
allow br9
`

// helperWorld is the namespaces, files and users of these tests.
type helperWorld struct {
	t      *testing.T
	ns     *nstest.NS
	mnt    int    // the mount namespace's descriptor
	dir    string // readable by the users: the helper copies, the guest image
	helper string // the helper: cap_net_admin+ep, set-group-ID
	spaced string // the same at a path with a space in it
	setuid string // a set-user-ID root copy (Fedora-style), no file capability
	img    *guest.Image
}

func newHelperWorld(t *testing.T) *helperWorld {
	t.Helper()
	img := e2eImage(t)
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		skipOrFailCI(t, "no setcap (Debian package libcap2-bin): the helper copy needs cap_net_admin+ep")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		skipOrFailCI(t, "no setpriv (Debian package util-linux)")
	}
	w := &helperWorld{t: t, ns: nstest.New(t)}
	w.mnt = newMountNS(t)

	// What the users run and read: not under t.TempDir(), whose parent
	// only root may enter.
	w.dir, err = os.MkdirTemp("", "ifhook-helper-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(w.dir) })
	os.Chmod(w.dir, 0o755)
	w.helper = filepath.Join(w.dir, "qemu-bridge-helper")
	w.spaced = filepath.Join(w.dir, "with space", "qemu-bridge-helper")
	w.setuid = filepath.Join(w.dir, "suid", "qemu-bridge-helper")
	for _, p := range []string{w.helper, w.spaced} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		copyFileMode(t, filepath.Join(binDir, "ifhook"), p, 0o755)
		// chown first: it clears set-ID bits and file capabilities.
		if err := os.Chown(p, 0, helperTestGID); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o755|os.ModeSetgid); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(setcap, "cap_net_admin+ep", p).CombinedOutput(); err != nil {
			t.Fatalf("setcap cap_net_admin+ep %s: %v: %s", p, err, out)
		}
		if !install.HasNetAdminCap(p) {
			t.Fatalf("%s does not carry cap_net_admin+ep after setcap", p)
		}
	}
	os.MkdirAll(filepath.Dir(w.setuid), 0o755)
	copyFileMode(t, filepath.Join(binDir, "ifhook"), w.setuid, 0o755)
	os.Chmod(w.setuid, 0o755|os.ModeSetuid)
	// Other names of the capable file: the same inode, so the same
	// privilege, reached under the names of other modes.
	for _, name := range []string{"qemu-ifup", "qemu-ifdown", "ifhook"} {
		if err := os.Symlink("qemu-bridge-helper", filepath.Join(w.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The guest image, for QEMU as a user: the test's own copy is a
	// memfd only root's processes may open.
	w.img = &guest.Image{KernelVersion: img.KernelVersion, KernelFormat: img.KernelFormat, Modules: img.Modules,
		Kernel: filepath.Join(w.dir, "kernel"), Initrd: filepath.Join(w.dir, "initrd.gz")}
	copyFileMode(t, img.Kernel, w.img.Kernel, 0o644)
	copyFileMode(t, img.Initrd, w.img.Initrd, 0o644)

	w.do(func() error {
		for path, text := range map[string]string{
			"/etc/ifhook/config.toml": helperTestPolicy,
			"/etc/qemu/bridge.conf":   helperTestACL,
		} {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				return err
			}
		}
		appendFile(t, "/etc/passwd", fmt.Sprintf("ifhtest1:x:%d:%d::/nonexistent:/usr/sbin/nologin\nifhtest2:x:%d:%d::/nonexistent:/usr/sbin/nologin\n", aliceUID, aliceUID, bobUID, bobUID))
		appendFile(t, "/etc/group", fmt.Sprintf("ifhtest1:x:%d:\nifhtest2:x:%d:\nifhook-helper:x:%d:\n", aliceUID, bobUID, helperTestGID))
		return state.MakeShared(state.DefaultHelperDir, helperTestGID)
	})
	return w
}

func skipOrFailCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why + ", and CI is set")
	}
	t.Skip(why)
}

func copyFileMode(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// newMountNS makes a mount namespace in which /run is a fresh tmpfs and
// /etc an overlay of the host's whose writes go to a temporary directory,
// and returns a descriptor that keeps it alive until the test ends. It is
// made on a thread that is thrown away: no thread of the test ever leaves
// the host's mount namespace except those entering this one to die.
func newMountNS(t *testing.T) int {
	t.Helper()
	base := t.TempDir()
	upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	os.Mkdir(upper, 0o755)
	os.Mkdir(work, 0o755)
	fdc := make(chan int, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		err := func() error {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("unshare mount namespace: %w", err)
			}
			// Nothing mounted here propagates back to the host.
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("make / private: %w", err)
			}
			if err := unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
				return fmt.Errorf("tmpfs on /run: %w", err)
			}
			if err := unix.Mount("overlay", "/etc", "overlay", 0, "lowerdir=/etc,upperdir="+upper+",workdir="+work); err != nil {
				return fmt.Errorf("overlay on /etc: %w", err)
			}
			// QEMU's helper directory (Debian's), for install-hooks
			// --bridge-helper: the host's files show, changes stay here.
			if st, err := os.Stat(qemuHelperDir); err == nil && st.IsDir() {
				u, w := filepath.Join(base, "qemu-upper"), filepath.Join(base, "qemu-work")
				os.Mkdir(u, 0o755)
				os.Mkdir(w, 0o755)
				if err := unix.Mount("overlay", qemuHelperDir, "overlay", 0, "lowerdir="+qemuHelperDir+",upperdir="+u+",workdir="+w); err != nil {
					return fmt.Errorf("overlay on %s: %w", qemuHelperDir, err)
				}
			}
			fd, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			fdc <- fd
			return nil
		}()
		errc <- err
	}()
	if err := <-errc; err != nil {
		skipOrFailCI(t, "cannot make a mount namespace for the helper's fixed paths: "+err.Error())
	}
	fd := <-fdc
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// qemuHelperDir is where Debian's QEMU looks for qemu-bridge-helper.
const qemuHelperDir = "/usr/lib/qemu"

// enter moves the calling (throwaway, locked) thread into the world's
// mount namespace: a thread must have its own filesystem context for
// setns(CLONE_NEWNS), which Go's threads share.
func (w *helperWorld) enter() error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare CLONE_FS: %w", err)
	}
	if err := unix.Setns(w.mnt, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("enter the mount namespace: %w", err)
	}
	return nil
}

// do runs f on a thread in both of the world's namespaces.
func (w *helperWorld) do(f func() error) {
	w.t.Helper()
	if err := w.ns.Do(func() error {
		if err := w.enter(); err != nil {
			return err
		}
		return f()
	}); err != nil {
		w.t.Fatal(err)
	}
}

// run runs a command in the world, as uid when it is not 0 (setpriv, no
// supplementary groups), with env as its whole environment.
func (w *helperWorld) run(uid int, env []string, prog string, args ...string) result {
	w.t.Helper()
	argv := append([]string{prog}, args...)
	if uid != 0 {
		argv = append(setprivAs(uid), argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	var err error
	w.do(func() error { err = cmd.Run(); return nil })
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("run %q: %v", argv, err)
	}
	return result{code, out.String(), errb.String()}
}

func setprivAs(uid int) []string {
	id := strconv.Itoa(uid)
	return []string{"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups"}
}

// root runs root's own ifhook (no capability file) in the world, with
// its default paths: the world's /run/ifhook and /run/ifhook-helper.
func (w *helperWorld) root(want int, args ...string) result {
	w.t.Helper()
	r := w.run(0, []string{"IFHOOK_SYSLOG=off"}, filepath.Join(binDir, "ifhook"), args...)
	if r.code != want {
		w.t.Fatalf("ifhook %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// records is root's `ifhook list --json`.
func (w *helperWorld) records() []ifhook.Listing {
	w.t.Helper()
	r := w.root(0, "list", "--json")
	var items []ifhook.Listing
	if err := json.Unmarshal([]byte(r.stdout), &items); err != nil {
		w.t.Fatalf("list --json: %v: %s", err, r.stdout)
	}
	return items
}

// qemuAs starts QEMU as uid with the bridge helper at helper (as QEMU's
// helper= takes it) for bridge br.
func (w *helperWorld) qemuAs(uid int, helper, br string, o guest.Options) *guest.Guest {
	w.t.Helper()
	o.Netdev = "bridge,id=n0,br=" + br + ",helper=" + strings.ReplaceAll(helper, ",", ",,")
	o.Wrap = setprivAs(uid)
	o.OnThread = w.enter
	return w.img.Start(w.t, w.ns, o)
}

// failedQEMU waits for a QEMU that must fail at start and returns its log.
func failedQEMU(t *testing.T, g *guest.Guest) string {
	t.Helper()
	if err := g.WaitExit(60 * time.Second); err == nil {
		t.Fatalf("QEMU started: %s", g.Log())
	}
	return g.Log()
}

// waitGone waits until the TAP QEMU held is gone.
func waitGone(t *testing.T, ns *nstest.NS, tap string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ns.HasLink(tap); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s is still there after QEMU exited", tap)
		}
	}
}

// TestBridgeHelperE2E: two guests of a user who is not root, on br0
// through the helper, ping each other; the second one's helper path has
// a space, so QEMU runs it through /bin/sh -c, and it still knows its VM.
// Then everything a user could try to reach more is refused, changing
// nothing; and once the guests are gone, so are their TAPs and, after
// gc, their records.
func TestBridgeHelperE2E(t *testing.T) {
	w := newHelperWorld(t)
	br0 := w.ns.AddBridge(t, "br0")
	if err := w.ns.Handle.LinkSetMTU(br0, 1400); err != nil {
		t.Fatal(err)
	}
	w.ns.AddBridge(t, "br1")

	first := w.qemuAs(aliceUID, w.helper, "br0", guest.Options{Name: "hfirst", Addrs: []string{"192.0.2.10/24"}, Hold: guest.Forever})
	// helper= with a space: QEMU runs "sh -c 'HELPER' --use-vnet --fd=N
	// --br=br0", so the path is quoted for the shell.
	second := w.qemuAs(aliceUID, "'"+w.spaced+"'", "br0", guest.Options{Name: "hsecond", Addrs: []string{"192.0.2.11/24"}, Ping: []string{"192.0.2.10"}, Hold: guest.Forever})
	if err := first.WaitReady(0); err != nil {
		t.Fatal(err)
	}
	res, err := second.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK("192.0.2.10") {
		t.Fatalf("the second guest cannot ping the first: %+v\n%s", res, second.Log())
	}

	// What root sees: two helper TAPs on br0, each knowing its VM (by
	// QEMU's command line, through the shell for the second), its guest
	// MAC, and a host MAC of fe and the guest's.
	items := w.records()
	byVM := map[string]ifhook.Listing{}
	for _, it := range items {
		byVM[it.VM] = it
	}
	for _, g := range []*guest.Guest{first, second} {
		it, ok := byVM[g.Name]
		if !ok {
			t.Fatalf("no record for VM %s: %+v", g.Name, items)
		}
		if !it.Helper || it.UID != aliceUID || it.Bridge != "br0" || it.State != "attached" || it.PID != g.PID() || it.GuestMAC != g.MAC {
			t.Errorf("record of %s: %+v (QEMU pid %d, guest MAC %s)", g.Name, it, g.PID(), g.MAC)
		}
		l := w.ns.Link(t, it.TAP).Attrs()
		mac, _ := net.ParseMAC(g.MAC)
		if l.MasterIndex != br0.Index || l.MTU != 1400 || l.HardwareAddr.String() != policy.HostMACFromGuest(mac).String() {
			t.Errorf("%s: master %d (br0 %d), MTU %d, MAC %s; want on br0, 1400, %s", it.TAP, l.MasterIndex, br0.Index, l.MTU, l.HardwareAddr, policy.HostMACFromGuest(mac))
		}
	}
	firstTAP := byVM["hfirst"].TAP

	t.Run("refusals change nothing", func(t *testing.T) {
		before := wholeState(t, w.ns)
		beforeRecs := w.records()
		capable := func(name string) string { return filepath.Join(w.dir, name) }
		for _, tc := range []struct {
			name  string
			uid   int
			env   []string
			prog  string
			args  []string
			code  int
			wants []string
		}{
			{"qemu-ifup on the capable file", aliceUID, nil, capable("qemu-ifup"), []string{firstTAP}, 77,
				[]string{"needs CAP_NET_ADMIN to attach a TAP", `privileges (a file capability or set-ID bit) are the bridge helper's alone, and were dropped when run as "qemu-ifup" by uid 64101`}},
			// ifdown without CAP_NET_ADMIN (QEMU's -runas) changes
			// nothing and succeeds; -v says so.
			{"another user's qemu-ifdown of her TAP", bobUID, []string{"IFHOOK_VERBOSE=1"}, capable("qemu-ifdown"), []string{firstTAP}, 0, nil},
			{"another user's ifhook down of her TAP", bobUID, nil, capable("ifhook"), []string{"-v", "down", firstTAP}, 0,
				[]string{"no CAP_NET_ADMIN (uid 64102, QEMU -runas?): changing nothing"}},
			{"another user's ifhook up of her TAP", bobUID, nil, capable("ifhook"), []string{"up", firstTAP}, 77,
				[]string{`needs CAP_NET_ADMIN to attach a TAP`, `were dropped when run as "ifhook" by uid 64102`}},
			{"ifhook gc on the capable file, with IFHOOK_STATE_DIR", aliceUID, []string{"IFHOOK_STATE_DIR=/tmp"}, capable("ifhook"), []string{"gc"}, 77,
				[]string{"IFHOOK_STATE_DIR ignored"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := w.run(tc.uid, tc.env, tc.prog, tc.args...)
				if r.code != tc.code {
					t.Fatalf("exit %d, want %d: %s", r.code, tc.code, r.stderr)
				}
				for _, want := range tc.wants {
					if tc.code == 0 {
						if !strings.Contains(r.stderr, want) {
							t.Errorf("stderr %q does not say %q", r.stderr, want)
						}
						continue
					}
					oneEscapedLine(t, r, tc.code, want)
				}
			})
		}
		// Through QEMU, as the helper: a denied bridge, the user's own
		// policy and ACL through the environment, a bridge that is not
		// there (one root's policy would make), another user's TAP as
		// the bridge.
		evilPolicy := filepath.Join(w.dir, "evil.toml")
		evilACL := filepath.Join(w.dir, "evil.conf")
		os.WriteFile(evilPolicy, []byte("[[helper.allow]]\nbridges = [\"*\"]\n[bridges.br-evil]\nmodel = \"nat\"\naddress = \"192.0.2.1/24\"\n"), 0o644)
		os.WriteFile(evilACL, []byte("allow all\n"), 0o644)
		for _, tc := range []struct {
			name  string
			uid   int
			br    string
			env   []string
			wants []string
		}{
			{"a denied bridge", aliceUID, "br1", nil,
				[]string{"ifhook: access denied by acl file (/etc/qemu/bridge.conf:3: deny br1; user ifhtest1)"}},
			{"the user's own policy and ACL", aliceUID, "br1", []string{"IFHOOK_CONFIG=" + evilPolicy, "IFHOOK_BRIDGE_CONF=" + evilACL, "IFHOOK_STATE_DIR=" + w.dir},
				[]string{"access denied by acl file (/etc/qemu/bridge.conf:3: deny br1; user ifhtest1)", "IFHOOK_CONFIG, IFHOOK_STATE_DIR, IFHOOK_BRIDGE_CONF ignored: the bridge helper runs with privileges"}},
			{"a bridge that is not there", aliceUID, "br9", nil,
				[]string{`ifhook: bridge "br9" does not exist; the bridge helper attaches only to a bridge that exists, and never makes one`}},
			{"another user's TAP as the bridge", bobUID, firstTAP, nil,
				[]string{fmt.Sprintf("ifhook: %q is a TAP", firstTAP), "not a bridge"}},
			{"an unknown user on a denied bridge", 64199, "br1", nil,
				[]string{"access denied by acl file (/etc/qemu/bridge.conf:3: deny br1; user uid 64199)"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				g := w.qemuAs(tc.uid, w.helper, tc.br, guest.Options{Name: "refused", Env: tc.env, QEMUArgs: []string{"-S"}})
				log := failedQEMU(t, g)
				for _, want := range append(tc.wants, "bridge helper failed") {
					if !strings.Contains(log, want) {
						t.Errorf("QEMU's output does not say %q:\n%s", want, log)
					}
				}
			})
		}
		if w.ns.HasLink("br9") || w.ns.HasLink("br-evil") {
			t.Fatal("a bridge was made")
		}
		if diff := cmp.Diff(before, wholeState(t, w.ns)); diff != "" {
			t.Fatalf("the namespace changed:\n%s", diff)
		}
		if diff := cmp.Diff(beforeRecs, w.records()); diff != "" {
			t.Fatalf("the records changed:\n%s", diff)
		}
	})

	// A set-user-ID root copy (Fedora's way) works too: it drops to the
	// caller, keeping CAP_NET_ADMIN and the records' group.
	t.Run("set-user-ID root", func(t *testing.T) {
		g := w.qemuAs(aliceUID, w.setuid, "br0", guest.Options{Name: "hsuid", QEMUArgs: []string{"-S"}, Hold: guest.Forever})
		var it *ifhook.Listing
		for deadline := time.Now().Add(30 * time.Second); it == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			for _, r := range w.records() {
				if r.VM == "hsuid" {
					it = &r
				}
			}
		}
		if it == nil || !it.Helper || it.UID != aliceUID || it.State != "attached" {
			t.Fatalf("record %+v\n%s", it, g.Log())
		}
		g.Stop()
		waitGone(t, w.ns, it.TAP)
	})

	// QEMU's own default: no helper= at all, after install-hooks
	// --bridge-helper (Debian's path), and back again with --undo.
	t.Run("QEMU's default helper path", func(t *testing.T) {
		original, err := os.ReadFile(filepath.Join(qemuHelperDir, "qemu-bridge-helper"))
		if err != nil {
			t.Skipf("no QEMU bridge helper at %s to stand in for: %v", qemuHelperDir, err)
		}
		r := w.root(0, "install-hooks", "--bridge-helper")
		for _, want := range []string{"kept the previous /usr/lib/qemu/qemu-bridge-helper as /usr/lib/qemu/qemu-bridge-helper.orig",
			"installed /usr/lib/qemu/qemu-bridge-helper: a copy of", "cap_net_admin+ep"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("install-hooks --bridge-helper did not say %q:\n%s", want, r.stdout)
			}
		}
		g := w.img.Start(t, w.ns, guest.Options{Name: "hdefault", Netdev: "bridge,id=n0,br=br0", Wrap: setprivAs(aliceUID), OnThread: w.enter,
			QEMUArgs: []string{"-S"}, Hold: guest.Forever})
		var it *ifhook.Listing
		for deadline := time.Now().Add(30 * time.Second); it == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			for _, r := range w.records() {
				if r.VM == "hdefault" {
					it = &r
				}
			}
		}
		if it == nil || !it.Helper || it.UID != aliceUID || it.State != "attached" || it.PID != g.PID() {
			t.Fatalf("record %+v\n%s", it, g.Log())
		}
		g.Stop()
		waitGone(t, w.ns, it.TAP)
		r = w.root(0, "install-hooks", "--bridge-helper", "--undo")
		if !strings.Contains(r.stdout, "restored /usr/lib/qemu/qemu-bridge-helper") {
			t.Errorf("--undo said %q", r.stdout)
		}
		w.do(func() error {
			back, err := os.ReadFile(filepath.Join(qemuHelperDir, "qemu-bridge-helper"))
			if err != nil || string(back) != string(original) {
				t.Errorf("QEMU's helper is not back as it was (%v)", err)
			}
			return nil
		})
	})

	// What a helper run holds, on every thread: caught while it waits for
	// the lock of its records' directory, which the test holds.
	t.Run("privileges of every thread", func(t *testing.T) {
		for _, tc := range []struct {
			name, helper string
			bounding     string // CapBnd: only a set-user-ID root run may narrow it
		}{
			{"file capability", w.helper, ""},
			{"set-user-ID root", w.setuid, "0000000000001000"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var lockFD int
				w.do(func() error {
					fd, err := unix.Open(filepath.Join(state.DefaultHelperDir, "lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o660)
					if err != nil {
						return err
					}
					lockFD = fd
					return unix.Flock(fd, unix.LOCK_EX)
				})
				locked := true
				unlock := func() {
					if locked {
						unix.Close(lockFD)
						locked = false
					}
				}
				defer unlock()
				g := w.qemuAs(aliceUID, tc.helper, "br0", guest.Options{Name: "hcaps", QEMUArgs: []string{"-S"}, Hold: guest.Forever})
				defer g.Stop()
				pid, threads := waitHelper(t, g.PID())
				waitBlocked(t, pid)
				if len(threads) < 2 {
					t.Logf("the helper has %d thread(s)", len(threads))
				}
				for _, tid := range threads {
					st := procStatus(t, fmt.Sprintf("/proc/%d/task/%s/status", pid, tid))
					want := map[string]string{
						"CapEff": "0000000000001000", "CapPrm": "0000000000001000", "CapInh": "0000000000000000",
						"CapAmb": "0000000000000000", "NoNewPrivs": "1",
						"Uid": fmt.Sprintf("%d\t%d\t%d\t%d", aliceUID, aliceUID, aliceUID, aliceUID),
						"Gid": fmt.Sprintf("%d\t%d\t%d\t%d", aliceUID, helperTestGID, helperTestGID, helperTestGID),
					}
					if tc.bounding != "" {
						want["CapBnd"] = tc.bounding
					}
					for k, v := range want {
						if st[k] != v {
							t.Errorf("thread %s of the helper: %s = %q, want %q", tid, k, st[k], v)
						}
					}
				}
				unlock()
				// Let go, it finishes: the TAP is attached.
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
					found := false
					for _, r := range w.records() {
						found = found || (r.VM == "hcaps" && r.State == "attached")
					}
					if found {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the helper did not attach once the lock was free:\n%s", g.Log())
					}
				}
			})
		}
	})

	// QEMU exits: its TAPs vanish with it, and gc removes their records.
	taps := []string{byVM["hfirst"].TAP, byVM["hsecond"].TAP}
	first.Stop()
	second.Stop()
	for _, tap := range taps {
		waitGone(t, w.ns, tap)
	}
	r := w.root(0, "gc")
	for _, tap := range taps {
		if !strings.Contains(r.stdout, "removed the record of "+tap) {
			t.Errorf("gc did not remove the record of %s: %q", tap, r.stdout)
		}
	}
	if items := w.records(); len(items) != 0 {
		t.Fatalf("records left after gc: %+v", items)
	}
	w.do(func() error {
		entries, err := os.ReadDir(filepath.Join(state.DefaultHelperDir, "taps"))
		if err != nil || len(entries) != 0 {
			t.Errorf("the helper's taps directory: %v, %v", entries, err)
		}
		return nil
	})
}

// waitHelper finds the bridge helper QEMU process qemu runs (its child),
// and returns its pid and threads once it has started them.
func waitHelper(t *testing.T, qemu int) (int, []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			st := procStatus(t, fmt.Sprintf("/proc/%d/status", pid))
			if st["PPid"] != strconv.Itoa(qemu) || !strings.HasPrefix(st["Name"], "qemu-bridge") {
				continue
			}
			tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
			if n, _ := strconv.Atoi(st["Threads"]); n < 2 && time.Now().Before(deadline.Add(-15*time.Second)) {
				continue // Go starts its threads at once; give it a moment
			}
			var tids []string
			for _, task := range tasks {
				tids = append(tids, task.Name())
			}
			return pid, tids
		}
	}
	t.Fatalf("no bridge helper under QEMU (pid %d)", qemu)
	return 0, nil
}

// procStatus reads /proc/.../status as key: value (empty when gone).
func procStatus(t *testing.T, path string) map[string]string {
	data, err := os.ReadFile(path)
	m := map[string]string{}
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// waitBlocked waits until process pid waits for a flock (a "->" line of
// /proc/locks): the bridge helper then has done all it does before it
// reads or writes a record, dropping privileges first of all.
func waitBlocked(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		data, _ := os.ReadFile("/proc/locks")
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > 5 && f[1] == "->" && f[2] == "FLOCK" && f[5] == strconv.Itoa(pid) {
				return
			}
		}
	}
	t.Fatalf("the helper (pid %d) does not wait for the lock", pid)
}

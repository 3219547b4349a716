package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Real libvirt: a libvirtd the test starts in its own network namespace
// and a mount namespace where every directory libvirt and ifhook use is
// the test's (/etc/libvirt, /run, /var/lib/libvirt, /var/log/libvirt,
// /var/cache/libvirt, and /etc/ifhook on an overlay of /etc), so nothing
// of the host's libvirt is read or touched. Domains run under TCG, paused
// (no guest needs to boot), with <interface type='ethernet'> and our hooks
// as <script>/<downscript>. libvirt runs the hooks with a cleared
// environment, so ifhook reads /etc/ifhook/config.toml and /run/ifhook:
// the test's, through the mounts.

// libvirtEnv is a running libvirtd of the test's.
type libvirtEnv struct {
	*testEnv
	root   string // the test's directories
	uri    string // virsh's connection, through the socket in root
	daemon *exec.Cmd
	log    *bytes.Buffer
	made   []string // domains the test started, destroyed at the end
}

// libvirtTools returns libvirt's daemon and virsh, skipping (failing under
// CI) when they are not installed.
func libvirtTools(t *testing.T) (daemon, virsh string) {
	t.Helper()
	for _, p := range []string{"/usr/sbin/virtqemud", "/usr/sbin/libvirtd"} {
		if _, err := os.Stat(p); err == nil {
			daemon = p
			break
		}
	}
	if _, err := os.Stat("/usr/bin/virsh"); err == nil {
		virsh = "/usr/bin/virsh"
	}
	if daemon == "" || virsh == "" {
		why := "libvirt is not installed (Debian packages libvirt-daemon-system, libvirt-daemon-driver-qemu, libvirt-clients)"
		if os.Getenv("CI") != "" {
			t.Fatal(why + ", and CI is set")
		}
		t.Skip(why)
	}
	return daemon, virsh
}

// innerScript makes the mount namespace's directories the test's, then
// runs the daemon. It runs as the child's first process, after Go unshared
// the mount namespace (and made every mount in it private).
const innerScript = `set -e
R="$1"; shift
mount -t tmpfs tmpfs "$R/ovl"
mkdir "$R/ovl/upper" "$R/ovl/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$R/ovl/upper,workdir=$R/ovl/work" /etc
mkdir -p /etc/ifhook /etc/libvirt
mount --bind "$R/etc-ifhook" /etc/ifhook
mount --bind "$R/etc-libvirt" /etc/libvirt
mount -t tmpfs tmpfs /run
mkdir /run/libvirt /run/ifhook
mount --bind "$R/run-libvirt" /run/libvirt
mount --bind "$R/run-ifhook" /run/ifhook
for d in lib log cache; do
	mkdir -p "/var/$d/libvirt"
	mount --bind "$R/$d" "/var/$d/libvirt"
done
exec "$@"
`

const libvirtQEMUConf = `# The test's libvirt: QEMU as root with no sandboxing, cgroups, private
# /dev or virtlogd, none of which the namespace has.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
`

const libvirtdConf = `unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:stderr"
`

func startLibvirt(t *testing.T, policyText string) *libvirtEnv {
	t.Helper()
	daemon, _ := libvirtTools(t)
	qemuBinary(t)
	e := newEnv(t, policyText)
	root := t.TempDir()
	for _, d := range []string{"ovl", "etc-ifhook", "etc-libvirt/qemu", "run-libvirt", "run-ifhook", "lib", "log", "cache"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "run-ifhook"), 0o755)
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc-libvirt/qemu.conf", libvirtQEMUConf)
	write("etc-libvirt/libvirtd.conf", libvirtdConf)
	write("etc-libvirt/virtqemud.conf", libvirtdConf)
	write("etc-ifhook/config.toml", policyText)
	// ifhook run by the test sees what ifhook run by libvirt sees.
	e.state = filepath.Join(root, "run-ifhook")
	e.policy = filepath.Join(root, "etc-ifhook", "config.toml")

	l := &libvirtEnv{testEnv: e, root: root, log: &bytes.Buffer{}}
	sock := filepath.Join(root, "run-libvirt", "libvirt-sock")
	if strings.HasSuffix(daemon, "virtqemud") {
		sock = filepath.Join(root, "run-libvirt", "virtqemud-sock")
	}
	l.uri = "qemu+unix:///system?socket=" + sock
	l.daemon = exec.Command("/bin/sh", "-c", innerScript, "sh", root, daemon)
	l.daemon.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C"}
	l.daemon.Stdout, l.daemon.Stderr = l.log, l.log
	l.daemon.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if err := e.ns.Start(l.daemon); err != nil {
		t.Fatalf("start %s: %v", daemon, err)
	}
	done := make(chan struct{})
	go func() { l.daemon.Wait(); close(done) }()
	t.Cleanup(func() { l.stop(done) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := l.virsh("version"); err == nil {
			break
		}
		select {
		case <-done:
			t.Fatalf("%s exited: %s", daemon, l.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer: %s", daemon, l.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return l
}

// stop destroys the domains the test started, then stops the daemon by its
// pid; QEMUs it left (a domain libvirt lost track of) are killed by the
// pids libvirt recorded for them.
func (l *libvirtEnv) stop(done chan struct{}) {
	for _, d := range l.made {
		l.virsh("destroy", d)
	}
	pids, _ := filepath.Glob(filepath.Join(l.root, "run-libvirt", "qemu", "*.pid"))
	l.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		l.daemon.Process.Kill()
		<-done
	}
	for _, p := range pids {
		data, _ := os.ReadFile(p)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// virsh runs virsh on the test's daemon.
func (l *libvirtEnv) virsh(args ...string) (string, error) {
	cmd := exec.Command("/usr/bin/virsh", append([]string{"-c", l.uri}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=" + l.root}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// domainXML is a domain with one ethernet interface run by our hooks: no
// disk, no boot (started paused).
func domainXML(name, mac string) string {
	return fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='ethernet'>
      <mac address='%s'/>
      <script path='%s'/>
      <downscript path='%s'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
`, name, mac, filepath.Join(binDir, "qemu-ifup"), filepath.Join(binDir, "qemu-ifdown"))
}

// start starts a domain paused: transient (virsh create) or persistent
// (virsh define, then start).
func (l *libvirtEnv) start(name, mac string, persistent bool) (string, error) {
	l.t.Helper()
	file := filepath.Join(l.t.TempDir(), name+".xml")
	if err := os.WriteFile(file, []byte(domainXML(name, mac)), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.made = append(l.made, name)
	if !persistent {
		return l.virsh("create", "--paused", file)
	}
	if out, err := l.virsh("define", file); err != nil {
		return out, err
	}
	l.t.Cleanup(func() { l.virsh("undefine", name) })
	return l.virsh("start", "--paused", name)
}

// tapOf returns the TAP libvirt gave domain's first interface.
func (l *libvirtEnv) tapOf(domain string) string {
	l.t.Helper()
	out, err := l.virsh("domiflist", domain)
	if err != nil {
		l.t.Fatalf("domiflist %s: %v\n%s", domain, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == "ethernet" {
			return f[0]
		}
	}
	l.t.Fatalf("domiflist %s shows no ethernet interface:\n%s", domain, out)
	return ""
}

func TestLibvirtEthernet(t *testing.T) {
	l := startLibvirt(t, "bridge = \"br0\"\n[[rule]]\nvm = \"lv-web-*\"\nbridge = \"br-web\"\n")
	l.ns.AddBridge(t, "br0")
	l.ns.AddBridge(t, "br-web")

	// A transient domain: at the script's run only the directory libvirt
	// makes for the domain being started tells which it is.
	if out, err := l.start("lv-web-1", "52:54:00:5a:00:01", false); err != nil {
		t.Fatalf("create lv-web-1: %v\n%s\nlibvirtd: %s", err, out, l.log)
	}
	web := l.tapOf("lv-web-1")
	if got := l.link(web); got.master != "br-web" || got.mac != "fe:54:00:5a:00:01" || !got.up {
		t.Errorf("%s: %+v, want on br-web (the vm rule) with libvirt's MAC fe:54:00:5a:00:01", web, got)
	}
	r := l.mustRun(0, "ifhook", "list")
	for _, w := range []string{web, "br-web", "lv-web-1", "52:54:00:5a:00:01"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("list lacks %q:\n%s", w, r.stdout)
		}
	}

	// A persistent domain: its configuration answers.
	if out, err := l.start("lv-db", "52:54:00:5a:00:10", true); err != nil {
		t.Fatalf("start lv-db: %v\n%s", err, out)
	}
	db := l.tapOf("lv-db")
	if rec := l.listJSON()[db]; rec.VM != "lv-db" || rec.GuestMAC != "52:54:00:5a:00:10" || rec.Bridge != "br0" {
		t.Errorf("%s's record: %+v", db, rec)
	}

	// The same MAC again: refused, and libvirt shows ifhook's line.
	out, err := l.start("lv-web-2", "52:54:00:5a:00:01", false)
	if err == nil {
		t.Fatalf("lv-web-2 started with lv-web-1's MAC:\n%s", out)
	}
	want := `guest MAC 52:54:00:5a:00:01 is already used on br-web by ` + web + ` (VM "lv-web-1")`
	t.Logf("virsh create lv-web-2: %s", out)
	if !strings.Contains(out, "ifhook: up ") || !strings.Contains(out, want) {
		t.Errorf("virsh create says:\n%s\nwant ifhook's line with %q", out, want)
	}
	// A persistent twin is refused the same way.
	if out, err := l.start("lv-web-3", "52:54:00:5a:00:01", true); err == nil || !strings.Contains(out, want) {
		t.Errorf("persistent twin: %v\n%s", err, out)
	}

	// Destroyed: libvirt deletes the TAP, then runs the downscript.
	if out, err := l.virsh("destroy", "lv-web-1"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	if l.recordExists(web) {
		t.Errorf("%s's record is left after virsh destroy", web)
	}
	if _, ok := l.listJSON()[web]; ok {
		t.Errorf("list still shows %s", web)
	}
	// Its MAC is free again.
	if out, err := l.start("lv-web-4", "52:54:00:5a:00:01", false); err != nil {
		t.Errorf("lv-web-4 after lv-web-1 is gone: %v\n%s", err, out)
	}
}

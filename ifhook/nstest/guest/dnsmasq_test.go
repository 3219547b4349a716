package guest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ifhook/ifhook/ifhook/nstest"
)

// dnsmasq is a real dnsmasq serving one bridge of a test's namespace: the
// DHCP, DNS and router-advertisement server the guests' DHCP, SLAAC and
// name lookups are proved against, as ifhook runs it.
type dnsmasq struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	leases string // its lease file
	exited chan struct{}
}

// dnsmasqPackage is what provides it on Debian (Fedora: dnsmasq).
const dnsmasqPackage = "dnsmasq-base"

func dnsmasqPath() (string, error) {
	if p, err := exec.LookPath("dnsmasq"); err == nil {
		return p, nil
	}
	// /usr/sbin is not on every user's PATH.
	if p := "/usr/sbin/dnsmasq"; fileExists(p) {
		return p, nil
	}
	return "", missing("no dnsmasq (package %s)", dnsmasqPackage)
}

// startDnsmasq runs dnsmasq inside ns for bridge, with the options every
// test needs and then extra; it is ended (by its PID) when the test ends,
// and its log is shown if the test failed. It returns once dnsmasq has
// bound its sockets.
//
// --user=root: dnsmasq would otherwise drop to user dnsmasq, which can
// write neither its lease file in t.TempDir() (mode 0700) nor, once it has
// changed credentials, keep the parent-death signal that ends it with the
// test process.
func startDnsmasq(t *testing.T, ns *nstest.NS, bridge string, extra ...string) *dnsmasq {
	t.Helper()
	path, err := dnsmasqPath()
	if err != nil {
		skipOrFail(t, err)
	}
	d := &dnsmasq{
		log:    &syncBuffer{},
		leases: filepath.Join(t.TempDir(), "leases"),
		exited: make(chan struct{}),
	}
	args := append([]string{
		"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--bind-interfaces", "--interface=" + bridge, "--except-interface=lo",
		"--pid-file=", "--dhcp-leasefile=" + d.leases, "--user=root",
		"--log-facility=-", "--log-dhcp", "--log-queries",
	}, extra...)
	d.cmd = exec.Command(path, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	d.cmd.WaitDelay = 5 * time.Second

	// As launch does for QEMU: the forking thread stays inside ns, blocked
	// in Wait, so that Pdeathsig fires only when the test process dies.
	started := make(chan error, 1)
	go func() {
		err := ns.Do(func() error {
			if err := d.cmd.Start(); err != nil {
				return err
			}
			started <- nil
			d.cmd.Wait()
			close(d.exited)
			return nil
		})
		if err != nil {
			started <- err
		}
	}()
	if err := <-started; err != nil {
		t.Fatalf("start dnsmasq: %v", err)
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("dnsmasq %s:\n%s", strings.Join(args, " "), d.log.String())
		}
	})

	// "started" is logged once the sockets are bound; a bad option makes
	// it exit at once.
	deadline := time.After(10 * time.Second)
	for !strings.Contains(d.log.String(), "started, version") {
		select {
		case <-d.exited:
			t.Fatalf("dnsmasq exited at start (%v):\n%s", d.cmd.ProcessState, d.log.String())
		case <-deadline:
			t.Fatalf("dnsmasq did not start within 10s:\n%s", d.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return d
}

// stop ends dnsmasq by its PID (SIGTERM, then SIGKILL) and reaps it.
func (d *dnsmasq) stop() {
	select {
	case <-d.exited:
		return
	default:
	}
	// Until Wait has reaped it, the PID cannot be reused.
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// lease returns the fields of mac's line in the lease file ("EXPIRY MAC IP
// HOSTNAME CLIENT-ID", HOSTNAME "*" when the client gave none), nil if it
// has none.
func (d *dnsmasq) lease(t *testing.T, mac string) []string {
	t.Helper()
	b, err := os.ReadFile(d.leases)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && strings.EqualFold(f[1], mac) {
			return f
		}
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for a process's output and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// qemuBinary returns the QEMU to test against, skipping (or, under CI,
// failing) when it is not installed.
func qemuBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("qemu-system-x86_64 is not installed, and CI is set (Debian package qemu-system-x86)")
	}
	t.Skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
	return ""
}

// startQEMU starts a QEMU that creates TAP ifname through -netdev tap with
// our symlinks as script and downscript, and never runs a guest (-S).
func (e *testEnv) startQEMU(qemu, ifname string) *vmProc {
	e.t.Helper()
	return e.startVM(qemu, "-name", "ifhook-test",
		"-netdev", "tap,id=n0,ifname="+ifname+",script=SCRIPT,downscript=DOWNSCRIPT",
		"-device", "virtio-net-pci,netdev=n0")
}

// qmpQuit asks QEMU to quit through QMP, once its main loop runs: a signal
// sent while QEMU is still starting kills it before it can run the
// downscript, which is not what a user's VM shutdown looks like.
func qmpQuit(t *testing.T, path string) {
	t.Helper()
	var conn net.Conn
	var err error
	for range 100 {
		if conn, err = net.Dial("unix", path); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connect to QMP: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil { // greeting
		t.Fatalf("QMP greeting: %v", err)
	}
	for _, cmd := range []string{"qmp_capabilities", "quit"} {
		fmt.Fprintf(conn, "{\"execute\": %q}\n", cmd)
		for {
			// Events (a SHUTDOWN, say) may come before the answer.
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("QMP %s: %v", cmd, err)
			}
			if strings.Contains(line, `"return"`) {
				break
			}
			if strings.Contains(line, `"error"`) {
				t.Fatalf("QMP %s: %s", cmd, line)
			}
		}
	}
}

// TestQEMUScript runs the real client: QEMU creates the TAP and calls
// qemu-ifup; on exit it calls qemu-ifdown before closing the TAP.
func TestQEMUScript(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	vm := e.startQEMU(qemu, "qtap0")
	out := vm.out
	e.waitAttached(vm, "qtap0", "br0")
	if got := e.link("qtap0"); !got.up || !strings.HasPrefix(got.mac, "fe:54:00:") {
		t.Errorf("TAP while QEMU runs: %+v", got)
	}
	r := e.mustRun(0, "ifhook", "list")
	if !strings.Contains(r.stdout, "qtap0") || !strings.Contains(r.stdout, "br0") {
		t.Errorf("list while QEMU runs:\n%s", r.stdout)
	}

	// Quit: QEMU shuts down and runs the downscript before it closes the TAP.
	qmpQuit(t, vm.qmp)
	if err := vm.waitExit(t, 60*time.Second); err != nil {
		t.Logf("QEMU exit: %v", err)
	}
	if e.ns.HasLink("qtap0") {
		t.Error("TAP still there after QEMU quit")
	}
	if e.recordExists("qtap0") {
		t.Errorf("record left after QEMU quit: the downscript did not run or did not clean up; QEMU said:\n%s", out)
	}
	if strings.Contains(out.String(), "failed") {
		t.Errorf("QEMU reported a failure:\n%s", out)
	}
}

// TestQEMUFailsOnMissingBridge checks what the user sees: QEMU refuses to
// start, prints our one line and the status that maps to exit 69.
func TestQEMUFailsOnMissingBridge(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, `bridge = "br9"`)
	vm := e.startQEMU(qemu, "qtap1")
	out := vm.out
	err := vm.waitExit(t, 60*time.Second)
	if err == nil {
		t.Fatalf("QEMU started without a bridge to join:\n%s", out)
	}
	for _, w := range []string{"ifhook: up qtap1: bridge \"br9\" does not exist", "17664"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("QEMU's output lacks %q:\n%s", w, out)
		}
	}
	if e.ns.HasLink("qtap1") {
		t.Error("TAP left behind")
	}
}

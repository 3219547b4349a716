package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vmProc is a QEMU the test started.
type vmProc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer // what QEMU printed, our hook's stderr included
	qmp  string        // QMP socket
	done chan struct{} // closed once QEMU exited
	err  error         // its exit, once done is closed
}

// Wait waits for QEMU to exit and returns how it exited.
func (v *vmProc) Wait() error {
	<-v.done
	return v.err
}

// waitExit waits at most d for QEMU to exit: past it, it stops QEMU (by
// its pid) and fails the test, so a regression fails fast and leaves no
// QEMU behind.
func (v *vmProc) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-v.done:
		return v.err
	case <-time.After(d):
		v.cmd.Process.Kill()
		<-v.done
		t.Fatalf("QEMU still running after %s; it said:\n%s", d, v.out)
		return nil
	}
}

// startVM starts QEMU (stopped with -S: no guest has to boot) with args
// after the common ones, our hooks as script= and downscript= where the
// args say SCRIPT and DOWNSCRIPT, and stops it by its PID at the end of the
// test.
func (e *testEnv) startVM(qemu string, args ...string) *vmProc {
	e.t.Helper()
	v := &vmProc{out: &bytes.Buffer{}, qmp: filepath.Join(e.t.TempDir(), "qmp"), done: make(chan struct{})}
	all := []string{"-qmp", "unix:" + v.qmp + ",server=on,wait=off", "-S", "-nodefaults", "-nographic", "-display", "none", "-accel", "tcg", "-monitor", "none", "-serial", "none"}
	for _, a := range args {
		a = strings.ReplaceAll(a, "DOWNSCRIPT", filepath.Join(binDir, "qemu-ifdown"))
		a = strings.ReplaceAll(a, "SCRIPT", filepath.Join(binDir, "qemu-ifup"))
		all = append(all, a)
	}
	v.cmd = exec.Command(qemu, all...)
	v.cmd.Env = e.environ()
	v.cmd.Stdout, v.cmd.Stderr = v.out, v.out
	if err := e.ns.Start(v.cmd); err != nil {
		e.t.Fatalf("start QEMU: %v", err)
	}
	go func() {
		v.err = v.cmd.Wait()
		close(v.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-v.done:
		default:
			v.cmd.Process.Kill()
			<-v.done
		}
	})
	return v
}

// waitAttached waits until tap is on bridge (and recorded), failing the
// test if QEMU exits first or it takes 30 s.
func (e *testEnv) waitAttached(v *vmProc, tap, bridge string) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !(e.ns.HasLink(tap) && e.link(tap).master == bridge && e.recordExists(tap)) {
		select {
		case <-v.done:
			e.t.Fatalf("QEMU exited (%v) before %s was on %s:\n%s", v.err, tap, bridge, v.out)
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never got onto %s; QEMU said:\n%s", tap, bridge, v.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// README's two VMs, without their -drive (they never run a guest here).
func readmeVM(name, tap, mac string) []string {
	nic := "nic"
	if mac != "" {
		nic += ",macaddr=" + mac
	}
	return []string{"-m", "128", "-name", name, "-net", nic, "-net", "tap,ifname=" + tap + ",script=SCRIPT,downscript=DOWNSCRIPT"}
}

func TestVMRuleAndTAPMAC(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, "bridge = \"br0\"\n[[rule]]\nvm = \"web-*\"\nbridge = \"br-web\"\n")
	e.ns.AddBridge(t, "br0")
	e.ns.AddBridge(t, "br-web")

	vm := e.startVM(qemu, "-name", "guest=web-1,debug-threads=on",
		"-netdev", "tap,id=n0,ifname=vweb0,script=SCRIPT,downscript=DOWNSCRIPT",
		"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:aa:bb:cc")
	e.waitAttached(vm, "vweb0", "br-web")
	if got := e.link("vweb0").mac; got != "fe:54:00:aa:bb:cc" {
		t.Errorf("TAP MAC %s, want fe:54:00:aa:bb:cc (the guest's, fe first)", got)
	}
	r := e.mustRun(0, "ifhook", "list")
	for _, w := range []string{"vweb0", "br-web", "web-1", "52:54:00:aa:bb:cc"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("list lacks %q:\n%s", w, r.stdout)
		}
	}

	// The same TAP name from another VM: the vm rule does not match.
	vm2 := e.startVM(qemu, "-name", "db-1",
		"-nic", "tap,ifname=vdb0,script=SCRIPT,downscript=DOWNSCRIPT,mac=52:54:00:aa:bb:cd")
	e.waitAttached(vm2, "vdb0", "br0")
}

func TestVMDuplicateMAC(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")

	// The README's two VMs without macaddr=: both get QEMU's default MAC.
	first := e.startVM(qemu, readmeVM("first", "vnet0.0", "")...)
	e.waitAttached(first, "vnet0.0", "br0")
	if !strings.Contains(first.out.String(), "QEMU's default") {
		t.Errorf("no warning about QEMU's default MAC:\n%s", first.out)
	}
	second := e.startVM(qemu, readmeVM("second", "vnet0.1", "")...)
	out2 := second.out
	if err := second.waitExit(t, 60*time.Second); err == nil {
		t.Fatalf("the second VM started with the first's MAC:\n%s", out2)
	}
	want := `ifhook: up vnet0.1: guest MAC 52:54:00:12:34:56 is already used on br0 by vnet0.0 (VM "first"); give -net nic a macaddr= (try: ifhook mac second)`
	if !strings.Contains(out2.String(), want) {
		t.Fatalf("QEMU's output lacks\n%s\ngot:\n%s", want, out2)
	}
	if !strings.Contains(out2.String(), "16640") {
		t.Errorf("QEMU did not report status 16640 (exit 65):\n%s", out2)
	}

	// With $(ifhook mac ...) both start.
	macFirst := strings.TrimSpace(e.mustRun(0, "ifhook", "mac", "first").stdout)
	macSecond := strings.TrimSpace(e.mustRun(0, "ifhook", "mac", "second").stdout)
	a := e.startVM(qemu, readmeVM("first", "vnet1.0", macFirst)...)
	b := e.startVM(qemu, readmeVM("second", "vnet1.1", macSecond)...)
	e.waitAttached(a, "vnet1.0", "br0")
	e.waitAttached(b, "vnet1.1", "br0")
	for _, o := range []*bytes.Buffer{a.out, b.out} {
		if strings.Contains(o.String(), "ifhook:") {
			t.Errorf("ifhook said something for a VM with its own MAC:\n%s", o)
		}
	}
	if got := e.link("vnet1.0").mac; got != "fe"+macFirst[2:] {
		t.Errorf("TAP MAC %s, want fe%s", got, macFirst[2:])
	}
}

func TestVMGuestMACEnforce(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, "bridge = \"br0\"\nguest_mac = \"enforce\"\n")
	e.ns.AddBridge(t, "br0")
	for _, tc := range []struct {
		name, mac, want string
	}{
		{"default", "", "is QEMU's default"},
		{"foreign prefix", "02:00:00:00:00:01", "lacks the prefix 52:54:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			vm := e.startVM(qemu, readmeVM("vm-"+tc.name[:3], "venf0", tc.mac)...)
			out := vm.out
			if err := vm.waitExit(t, 60*time.Second); err == nil {
				t.Fatalf("QEMU started:\n%s", out)
			}
			if !strings.Contains(out.String(), tc.want) || !strings.Contains(out.String(), "16640") {
				t.Fatalf("QEMU's output lacks %q and status 16640:\n%s", tc.want, out)
			}
		})
	}
}

// TestVMQuitCleansIndex: after QEMU quits, the guest MAC is free again.
func TestVMQuitCleansIndex(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	vm := e.startVM(qemu, readmeVM("first", "vnet0.0", "52:54:00:11:22:33")...)
	e.waitAttached(vm, "vnet0.0", "br0")
	qmpQuit(t, vm.qmp)
	vm.waitExit(t, 60*time.Second)
	if e.recordExists("vnet0.0") {
		t.Fatal("record left after QEMU quit")
	}
	vm2 := e.startVM(qemu, readmeVM("second", "vnet0.1", "52:54:00:11:22:33")...)
	e.waitAttached(vm2, "vnet0.1", "br0")
}

package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startVM starts QEMU (stopped with -S: no guest has to boot) with args
// after the common ones, our hooks as script= and downscript= where the
// args say SCRIPT and DOWNSCRIPT, and stops it at the end of the test.
func (e *testEnv) startVM(qemu string, args ...string) (*exec.Cmd, *bytes.Buffer, string) {
	e.t.Helper()
	qmp := filepath.Join(e.t.TempDir(), "qmp")
	all := []string{"-qmp", "unix:" + qmp + ",server=on,wait=off", "-S", "-nodefaults", "-nographic", "-display", "none", "-accel", "tcg", "-monitor", "none", "-serial", "none"}
	for _, a := range args {
		a = strings.ReplaceAll(a, "DOWNSCRIPT", filepath.Join(binDir, "qemu-ifdown"))
		a = strings.ReplaceAll(a, "SCRIPT", filepath.Join(binDir, "qemu-ifup"))
		all = append(all, a)
	}
	cmd := exec.Command(qemu, all...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "IFHOOK_STATE_DIR=" + e.state, "IFHOOK_CONFIG=" + e.policy, "IFHOOK_SYSLOG=off"}, e.extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := e.ns.Start(cmd); err != nil {
		e.t.Fatalf("start QEMU: %v", err)
	}
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &out, qmp
}

// waitAttached waits until tap is on bridge (and recorded), or QEMU exits.
func (e *testEnv) waitAttached(cmd *exec.Cmd, out *bytes.Buffer, tap, bridge string) {
	e.t.Helper()
	exited := make(chan struct{})
	go func() {
		for cmd.ProcessState == nil {
			time.Sleep(20 * time.Millisecond)
		}
		close(exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !(e.ns.HasLink(tap) && e.link(tap).master == bridge && e.recordExists(tap)) {
		select {
		case <-exited:
			e.t.Fatalf("QEMU exited before %s was on %s:\n%s", tap, bridge, out)
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never got onto %s; QEMU said:\n%s", tap, bridge, out)
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

	cmd, out, _ := e.startVM(qemu, "-name", "guest=web-1,debug-threads=on",
		"-netdev", "tap,id=n0,ifname=vweb0,script=SCRIPT,downscript=DOWNSCRIPT",
		"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:aa:bb:cc")
	e.waitAttached(cmd, out, "vweb0", "br-web")
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
	cmd2, out2, _ := e.startVM(qemu, "-name", "db-1",
		"-nic", "tap,ifname=vdb0,script=SCRIPT,downscript=DOWNSCRIPT,mac=52:54:00:aa:bb:cd")
	e.waitAttached(cmd2, out2, "vdb0", "br0")
}

func TestVMDuplicateMAC(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")

	// The README's two VMs without macaddr=: both get QEMU's default MAC.
	first, out1, _ := e.startVM(qemu, readmeVM("first", "vnet0.0", "")...)
	e.waitAttached(first, out1, "vnet0.0", "br0")
	if !strings.Contains(out1.String(), "QEMU's default") {
		t.Errorf("no warning about QEMU's default MAC:\n%s", out1)
	}
	second, out2, _ := e.startVM(qemu, readmeVM("second", "vnet0.1", "")...)
	if err := second.Wait(); err == nil {
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
	a, outA, _ := e.startVM(qemu, readmeVM("first", "vnet1.0", macFirst)...)
	b, outB, _ := e.startVM(qemu, readmeVM("second", "vnet1.1", macSecond)...)
	e.waitAttached(a, outA, "vnet1.0", "br0")
	e.waitAttached(b, outB, "vnet1.1", "br0")
	for _, o := range []*bytes.Buffer{outA, outB} {
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
			cmd, out, _ := e.startVM(qemu, readmeVM("vm-"+tc.name[:3], "venf0", tc.mac)...)
			if err := cmd.Wait(); err == nil {
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
	cmd, out, qmp := e.startVM(qemu, readmeVM("first", "vnet0.0", "52:54:00:11:22:33")...)
	e.waitAttached(cmd, out, "vnet0.0", "br0")
	qmpQuit(t, qmp)
	cmd.Wait()
	if e.recordExists("vnet0.0") {
		t.Fatal("record left after QEMU quit")
	}
	cmd2, out2, _ := e.startVM(qemu, readmeVM("second", "vnet0.1", "52:54:00:11:22:33")...)
	e.waitAttached(cmd2, out2, "vnet0.1", "br0")
}

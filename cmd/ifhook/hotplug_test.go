package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NICs hot-plugged through QMP (netdev_add, then device_add): at the TAP's
// ifup QEMU knows no NIC for it, so ifhook records the VM and QEMU's pid
// only, and learns the guest's MAC from the bridge later.

// qmpRun connects to QEMU's QMP socket and runs cmds (JSON objects with
// SCRIPT and DOWNSCRIPT standing for our hooks), failing on an error.
func qmpRun(t *testing.T, path string, cmds ...string) {
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
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("QMP greeting: %v", err)
	}
	for _, cmd := range append([]string{`{"execute": "qmp_capabilities"}`}, cmds...) {
		cmd = strings.ReplaceAll(cmd, "DOWNSCRIPT", filepath.Join(binDir, "qemu-ifdown"))
		cmd = strings.ReplaceAll(cmd, "SCRIPT", filepath.Join(binDir, "qemu-ifup"))
		fmt.Fprintln(conn, cmd)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("QMP %s: %v", cmd, err)
			}
			var reply struct {
				Return json.RawMessage `json:"return"`
				Error  *struct {
					Desc string `json:"desc"`
				} `json:"error"`
			}
			json.Unmarshal([]byte(line), &reply)
			if reply.Error != nil {
				t.Fatalf("QMP %s: %s", cmd, reply.Error.Desc)
			}
			if reply.Return != nil {
				break
			}
		}
	}
}

func netdevAdd(id string) string {
	return fmt.Sprintf(`{"execute": "netdev_add", "arguments": {"type": "tap", "id": %q, "script": "SCRIPT", "downscript": "DOWNSCRIPT"}}`, id)
}

// usbNIC plugs a usb-net NIC: USB unplugs at once, with no guest to ask.
func usbNIC(id, netdev, mac string) string {
	return fmt.Sprintf(`{"execute": "device_add", "arguments": {"driver": "usb-net", "id": %q, "netdev": %q, "mac": %q}}`, id, netdev, mac)
}

func TestHotplugAttachDetach(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	vm := e.startVM(qemu, "-name", "hot", "-device", "qemu-xhci,id=xhci")
	qmpRun(t, vm.qmp, netdevAdd("hp0"), usbNIC("nic0", "hp0", "52:54:00:ab:0b:01"))
	e.waitAttached(vm, "tap0", "br0")
	l := e.listJSON()["tap0"]
	if l.VM != "hot" || l.PID != vm.cmd.Process.Pid || l.GuestMAC != "" {
		t.Errorf("hot-plugged TAP's record: %+v; want VM hot, QEMU's pid %d, no guest MAC", l, vm.cmd.Process.Pid)
	}
	// Unplugged: QEMU runs the downscript when the netdev goes.
	qmpRun(t, vm.qmp, `{"execute": "device_del", "arguments": {"id": "nic0"}}`, `{"execute": "netdev_del", "arguments": {"id": "hp0"}}`)
	deadline := time.Now().Add(20 * time.Second)
	for e.ns.HasLink("tap0") || e.recordExists("tap0") {
		if time.Now().After(deadline) {
			t.Fatalf("after unplug: TAP there %v, record there %v; QEMU said:\n%s", e.ns.HasLink("tap0"), e.recordExists("tap0"), vm.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(e.listJSON()) != 0 || len(e.dirEntries("macs/br0")) != 0 {
		t.Errorf("left after unplug: records %v, MAC index %v", e.listJSON(), e.dirEntries("macs/br0"))
	}
	if strings.Contains(vm.out.String(), "ifhook:") {
		t.Errorf("ifhook complained:\n%s", vm.out)
	}
}

// TestHotplugDuplicateMAC: a NIC hot-plugged with the MAC a running guest
// has: once the bridge learns it (QEMU announces the NIC), doctor names
// both ports, and a third guest with that MAC is refused even when the
// first has gone.
func TestHotplugDuplicateMAC(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	const mac = "52:54:00:ab:0c:01"
	cold := e.startVM(qemu, "-name", "cold", "-nic", "tap,ifname=vcold,script=SCRIPT,downscript=DOWNSCRIPT,mac="+mac)
	e.waitAttached(cold, "vcold", "br0")
	hot := e.startVM(qemu, "-name", "hot", "-device", "qemu-xhci,id=xhci")
	qmpRun(t, hot.qmp, netdevAdd("hp0"), usbNIC("nic0", "hp0", mac))
	e.waitAttached(hot, "tap0", "br0")
	// Only a running VM sends: QEMU announces its NICs' MACs (RARP).
	qmpRun(t, hot.qmp, `{"execute": "cont"}`,
		`{"execute": "announce-self", "arguments": {"initial": 50, "max": 100, "rounds": 3, "step": 50}}`)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(e.fdb("br0"), mac+" dev tap0") {
		if time.Now().After(deadline) {
			t.Fatalf("br0 never learned %s on tap0:\n%s", mac, e.fdb("br0"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := e.run("ifhook", "doctor", "br0")
	if r.code != 1 {
		t.Fatalf("doctor: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, w := range []string{"guest-mac", `vcold (VM "cold"), recorded`, `tap0 (VM "hot"), learned by the bridge`, mac} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("doctor lacks %q:\n%s", w, r.stdout)
		}
	}
	// gc reports it and claims nothing for the hot-plugged TAP.
	r = e.mustRun(0, "ifhook", "-v", "gc")
	if !strings.Contains(r.stderr, "carry the same guest MAC "+mac) {
		t.Errorf("gc -v does not report the duplicate:\n%s", r.stderr)
	}
	// The cold guest goes; a new one with the same MAC is refused for the
	// hot-plugged NIC the bridge learned.
	qmpQuit(t, cold.qmp)
	cold.waitExit(t, 60*time.Second)
	third := e.startVM(qemu, "-name", "third", "-nic", "tap,ifname=vthird,script=SCRIPT,downscript=DOWNSCRIPT,mac="+mac)
	out := third.out
	if err := third.waitExit(t, 60*time.Second); err == nil {
		t.Fatalf("a third guest started with the hot-plugged NIC's MAC:\n%s", out)
	}
	want := `ifhook: up vthird: guest MAC ` + mac + ` is already used on br0 by tap0 (VM "hot") (the bridge learned it there)`
	if !strings.Contains(out.String(), want) {
		t.Errorf("QEMU's output lacks\n%s\ngot:\n%s", want, out)
	}
	// Now gc records the hot-plugged TAP's MAC, and list shows it.
	e.mustRun(0, "ifhook", "gc")
	if l := e.listJSON()["tap0"]; l.GuestMAC != mac {
		t.Errorf("tap0's record after gc: %+v, want guest MAC %s", l, mac)
	}
}

// fdb returns `bridge fdb show br NAME` in the test's namespace.
func (e *testEnv) fdb(br string) string {
	e.t.Helper()
	cmd := exec.Command("bridge", "fdb", "show", "br", br)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	e.ns.Run(cmd)
	return out.String()
}

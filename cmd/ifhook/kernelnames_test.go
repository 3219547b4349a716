package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Real QEMU with TAPs the kernel names (no ifname=): ifhook finds the NIC
// behind each from QEMU's command line and the TAPs it holds.

// listed is one record as `ifhook list --json` prints it.
type listed struct {
	TAP      string `json:"tap"`
	Bridge   string `json:"bridge"`
	VM       string `json:"vm"`
	PID      int    `json:"qemu_pid"`
	GuestMAC string `json:"guest_mac"`
	State    string `json:"state"`
	Set      struct {
		MAC string `json:"mac"`
	} `json:"set"`
}

// listJSON returns ifhook's records by TAP.
func (e *testEnv) listJSON() map[string]listed {
	e.t.Helper()
	r := e.mustRun(0, "ifhook", "list", "--json")
	var recs []listed
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil {
		e.t.Fatalf("list --json: %v\n%s", err, r.stdout)
	}
	out := map[string]listed{}
	for _, l := range recs {
		out[l.TAP] = l
	}
	return out
}

func TestKernelNamedDuplicateDefaultMAC(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	nic := "tap,script=SCRIPT,downscript=DOWNSCRIPT"
	first := e.startVM(qemu, "-name", "first", "-nic", nic)
	e.waitAttached(first, "tap0", "br0")
	if l := e.listJSON()["tap0"]; l.VM != "first" || l.GuestMAC != "52:54:00:12:34:56" || l.PID == 0 {
		t.Errorf("tap0's record: %+v", l)
	}
	second := e.startVM(qemu, "-name", "second", "-nic", nic)
	out := second.out
	if err := second.waitExit(t, 60*time.Second); err == nil {
		t.Fatalf("the second VM started with the first's MAC:\n%s", out)
	}
	want := `ifhook: up tap1: guest MAC 52:54:00:12:34:56 is already used on br0 by tap0 (VM "first"); give -nic a mac= (try: ifhook mac second)`
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "16640") {
		t.Fatalf("QEMU's output lacks\n%s\nand status 16640; got:\n%s", want, out)
	}
}

func TestKernelNamedTAPMAC(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, "bridge = \"br0\"\n[[rule]]\nvm = \"web-*\"\nbridge = \"br-web\"\n")
	e.ns.AddBridge(t, "br0")
	e.ns.AddBridge(t, "br-web")
	vm := e.startVM(qemu, "-name", "web-1", "-nic", "tap,script=SCRIPT,downscript=DOWNSCRIPT,mac=52:54:00:ab:00:01")
	e.waitAttached(vm, "tap0", "br-web")
	if got := e.link("tap0").mac; got != "fe:54:00:ab:00:01" {
		t.Errorf("TAP MAC %s, want fe:54:00:ab:00:01", got)
	}
	// -v says where the guest came from.
	e.extra = append(e.extra, "IFHOOK_VERBOSE=1")
	vm2 := e.startVM(qemu, "-name", "web-2", "-nic", "tap,script=SCRIPT,downscript=DOWNSCRIPT,mac=52:54:00:ab:00:02")
	e.waitAttached(vm2, "tap1", "br-web")
	if !strings.Contains(vm2.out.String(), "the 1 TAP descriptors it holds") && !strings.Contains(vm2.out.String(), "TAP descriptors it holds") {
		t.Errorf("-v does not say the TAPs QEMU holds answered:\n%s", vm2.out)
	}
}

func TestKernelNamedTwoNICs(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	vm := e.startVM(qemu, "-name", "two",
		"-netdev", "tap,id=a,script=SCRIPT,downscript=DOWNSCRIPT", "-device", "e1000,netdev=a,mac=52:54:00:ab:01:01",
		"-netdev", "tap,id=b,script=SCRIPT,downscript=DOWNSCRIPT", "-device", "virtio-net-pci,netdev=b,mac=52:54:00:ab:01:02")
	e.waitAttached(vm, "tap0", "br0")
	e.waitAttached(vm, "tap1", "br0")
	recs := e.listJSON()
	for tap, mac := range map[string]string{"tap0": "52:54:00:ab:01:01", "tap1": "52:54:00:ab:01:02"} {
		if l := recs[tap]; l.GuestMAC != mac || l.VM != "two" {
			t.Errorf("%s's record: %+v, want guest MAC %s", tap, l, mac)
		}
		if got := e.link(tap).mac; got != "fe"+mac[2:] {
			t.Errorf("%s's MAC %s, want fe%s", tap, got, mac[2:])
		}
	}
}

func TestKernelNamedNetdevAndNet(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	t.Run("-netdev tap", func(t *testing.T) {
		e.t = t
		vm := e.startVM(qemu, "-name", "nd", "-netdev", "tap,id=n0,script=SCRIPT,downscript=DOWNSCRIPT", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:ab:02:01")
		e.waitAttached(vm, "tap0", "br0")
		if l := e.listJSON()["tap0"]; l.GuestMAC != "52:54:00:ab:02:01" || l.VM != "nd" {
			t.Errorf("record: %+v", l)
		}
		qmpQuit(t, vm.qmp)
		vm.waitExit(t, 60*time.Second)
	})
	t.Run("-net tap", func(t *testing.T) {
		e.t = t
		vm := e.startVM(qemu, "-name", "legacy", "-net", "nic,macaddr=52:54:00:ab:03:01", "-net", "tap,script=SCRIPT,downscript=DOWNSCRIPT")
		e.waitAttached(vm, "tap0", "br0")
		if l := e.listJSON()["tap0"]; l.GuestMAC != "52:54:00:ab:03:01" || l.VM != "legacy" {
			t.Errorf("record: %+v", l)
		}
		if got := e.link("tap0").mac; got != "fe:54:00:ab:03:01" {
			t.Errorf("TAP MAC %s", got)
		}
	})
}

// TestHeldTAPOrderQEMU runs the command line of qemu.mixedCmd (package
// qemu's tests) on real QEMU: every kind of TAP backend, in an order that
// is not QEMU's, and checks each TAP got its own NIC's MAC.
func TestHeldTAPOrderQEMU(t *testing.T) {
	qemu := qemuBinary(t)
	e := newEnv(t, `bridge = "br0"`)
	e.ns.AddBridge(t, "br0")
	s := "script=SCRIPT,downscript=DOWNSCRIPT"
	vm := e.startVM(qemu, "-name", "mixed",
		"-net", "nic,model=e1000", "-net", "tap,"+s,
		"-nic", "tap,"+s+",model=e1000",
		"-netdev", "tap,id=kv1,"+s, "-device", "e1000,netdev=kv1",
		"-netdev", `{"type":"tap","id":"js1","script":"SCRIPT","downscript":"DOWNSCRIPT"}`, "-device", "e1000,netdev=js1",
		"-netdev", "tap,id=mq,queues=2,"+s, "-device", "virtio-net-pci,netdev=mq,mq=on",
		"-netdev", "tap,id=kv2,ifname=named0,"+s, "-device", "e1000,netdev=kv2")
	// What QEMU 7.2's `info network` shows for this command line.
	want := map[string]string{"tap0": "52:54:00:12:34:59", "tap1": "52:54:00:12:34:58", "tap2": "52:54:00:12:34:5a",
		"named0": "52:54:00:12:34:5b", "tap3": "52:54:00:12:34:56", "tap4": "52:54:00:12:34:57"}
	for tap := range want {
		e.waitAttached(vm, tap, "br0")
	}
	recs := e.listJSON()
	for tap, mac := range want {
		if l := recs[tap]; l.GuestMAC != mac {
			t.Errorf("%s: guest MAC %q, want %s", tap, l.GuestMAC, mac)
		}
	}
}

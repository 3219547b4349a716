package ifhook

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
)

// helperGID is the shared group of these tests: a number the kernel
// needs no name for.
const helperGID = 64991

// helperHooks returns two Hooks over ns with one policy: root's (its
// state directory and, beside it, the bridge helper's, made as
// install-hooks makes it) and the helper's own.
func helperHooks(t *testing.T, ns *nstest.NS, policyText string) (root, helper *Hook, logs *bytes.Buffer) {
	t.Helper()
	pol, err := policy.Parse([]byte(policyText), "test.toml")
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	stateDir := filepath.Join(t.TempDir(), "state")
	if err := state.MakeShared(state.HelperDir(stateDir), helperGID); err != nil {
		t.Fatal(err)
	}
	logs = &bytes.Buffer{}
	open := func(cfg Config) *Hook {
		cfg.Policy, cfg.Kernel, cfg.StateDir, cfg.Log = pol, kernel.New(ns.Conn), stateDir, &Log{Stderr: logs}
		h, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		return h
	}
	return open(Config{}), open(Config{AsHelper: true, HelperGID: helperGID}), logs
}

func TestUpHelper(t *testing.T) {
	ns := nstest.New(t)
	br := ns.AddBridge(t, "br0")
	if err := ns.Handle.LinkSetMTU(br, 1400); err != nil {
		t.Fatal(err)
	}
	ns.AddTAP(t, "tap0")
	root, helper, _ := helperHooks(t, ns, "bridge = \"br9\"\n[[rule]]\nvm = \"lab-*\"\nmtu = 1280\n")
	if !helper.State.Shared() {
		t.Fatalf("the helper's records are in %s, not the shared directory", helper.State.Path)
	}
	guestMAC, _ := net.ParseMAC("52:54:00:aa:00:01")
	p, err := helper.UpHelper("tap0", "br0", Guest{VM: "lab-1", PID: 4242, MAC: guestMAC})
	if err != nil {
		t.Fatalf("UpHelper: %v", err)
	}
	// The policy's bridge (br9) is not where a helper TAP goes: QEMU's
	// br= is; the rule's MTU applies.
	want := linkState{master: br.Index, up: true, mtu: 1280, mac: "fe:54:00:aa:00:01"}
	if got := observe(t, ns, "tap0"); got != want {
		t.Fatalf("after UpHelper: %+v, want %+v (plan %q)", got, want, p.Lines())
	}
	rec, err := helper.State.Read("tap0")
	if err != nil || rec == nil || !rec.Helper || rec.Bridge != "br0" || rec.VM != "lab-1" || rec.PID != 4242 {
		t.Fatalf("record = %+v, %v", rec, err)
	}
	if n := helper.HelperRuns(4242, "br0"); n != 1 {
		t.Errorf("HelperRuns = %d, want 1", n)
	}
	// Root sees it, and its MAC.
	items, err := root.List()
	if err != nil || len(items) != 1 || !items[0].Helper || items[0].State != "attached" {
		t.Fatalf("root's List = %+v, %v", items, err)
	}
	if owner, index, _ := root.macIndex().MACClaim("br0", guestMAC); owner != "tap0" || index != rec.Index {
		t.Fatalf("claim = %s %d", owner, index)
	}
	// gc leaves a live TAP's record, and removes it with the TAP.
	if removed, err := root.GC(); err != nil || len(removed) != 0 {
		t.Fatalf("GC with the TAP there: %v, %v", removed, err)
	}
	if err := ns.Handle.LinkDel(ns.Link(t, "tap0")); err != nil {
		t.Fatal(err)
	}
	if removed, err := root.GC(); err != nil || len(removed) != 1 || removed[0] != "tap0" {
		t.Fatalf("GC after QEMU closed the TAP: %v, %v", removed, err)
	}
	if rec, _ := helper.State.Read("tap0"); rec != nil {
		t.Fatalf("the record is still there: %+v", rec)
	}
	if owner, _ := root.macIndex().MACOwner("br0", guestMAC); owner != "" {
		t.Fatalf("the guest MAC is still claimed by %s", owner)
	}
}

// TestUpHelperChangesNothingElse: a bridge that is missing (even one the
// policy describes), not a bridge, or "auto" is refused, and nothing is
// made or moved.
func TestUpHelperChangesNothingElse(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0")
	ns.AddBridge(t, "auto0")
	ns.AddTAP(t, "tap0")
	ns.AddTAP(t, "tap1") // another user's TAP, given as the bridge
	_, helper, _ := helperHooks(t, ns, "bridge = \"auto\"\n[bridges.br-nat]\nmodel = \"nat\"\naddress = \"192.0.2.1/24\"\n")
	before := observe(t, ns, "tap0")
	for _, tc := range []struct {
		bridge string
		code   int
		want   string
	}{
		{"br-nat", 69, `bridge "br-nat" does not exist; the bridge helper attaches only to a bridge that exists, and never makes one`},
		{"auto", 69, `bridge "auto" does not exist`},
		{"tap1", 69, `"tap1" is a TAP`},
		{"lo", 69, "not a bridge"},
		{"br0/x", 64, "br0/x"},
	} {
		_, err := helper.UpHelper("tap0", tc.bridge, Guest{})
		if exit.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("UpHelper(tap0, %s) = exit %d, %v; want %d saying %q", tc.bridge, exit.Code(err), err, tc.code, tc.want)
		}
	}
	if ns.HasLink("br-nat") {
		t.Fatal("the helper made a bridge")
	}
	if got := observe(t, ns, "tap0"); got != before {
		t.Fatalf("tap0 changed: %+v, was %+v", got, before)
	}
	if recs, _ := helper.State.List(); len(recs) != 0 {
		t.Fatalf("records left: %+v", recs)
	}
}

// TestHelperMACGuard: one guest-MAC index for root's TAPs and the
// helper's, whichever comes first.
func TestHelperMACGuard(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0")
	for _, name := range []string{"vnet0", "tap0", "tap1", "vnet1"} {
		ns.AddTAP(t, name)
	}
	root, helper, _ := helperHooks(t, ns, "bridge = \"br0\"\n")
	m1, _ := net.ParseMAC("52:54:00:00:00:01")
	m2, _ := net.ParseMAC("52:54:00:00:00:02")
	// Root first: its claim is in the shared index; the helper cannot
	// read root's record, and judges the claim by the kernel.
	root.cfg.Guest = func(string) Guest { return Guest{VM: "rootvm", MAC: m1} }
	if _, err := root.Up("vnet0"); err != nil {
		t.Fatal(err)
	}
	_, err := helper.UpHelper("tap0", "br0", Guest{VM: "uservm", MAC: m1})
	if exit.Code(err) != 65 || !strings.Contains(err.Error(), "guest MAC 52:54:00:00:00:01 is already used on br0 by vnet0") {
		t.Fatalf("helper after root: %v", err)
	}
	// The helper first: root refuses, naming the helper's VM.
	if _, err := helper.UpHelper("tap1", "br0", Guest{VM: "uservm", MAC: m2}); err != nil {
		t.Fatal(err)
	}
	root.cfg.Guest = func(string) Guest { return Guest{VM: "rootvm2", MAC: m2} }
	_, err = root.Up("vnet1")
	if exit.Code(err) != 65 || !strings.Contains(err.Error(), `by tap1 (VM "uservm")`) {
		t.Fatalf("root after the helper: %v", err)
	}
	// Root's down of the helper's TAP (there is no ifdown for it, but
	// root may) removes its record and claim.
	if _, err := root.Down("tap1"); err != nil {
		t.Fatal(err)
	}
	if rec, _ := helper.State.Read("tap1"); rec != nil {
		t.Fatalf("record left after root's Down: %+v", rec)
	}
	if _, err := root.Up("vnet1"); err != nil {
		t.Fatalf("the MAC is free again: %v", err)
	}
}

// TestHelperAsRootWithoutSharedDir: root running the helper (QEMU as root
// with -netdev bridge) on a host without the helper's directory keeps the
// record in its own, still marked as a helper's.
func TestHelperAsRootWithoutSharedDir(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0")
	ns.AddTAP(t, "tap0")
	pol, _ := policy.Parse([]byte("bridge = \"br0\"\n"), "test.toml")
	stateDir := filepath.Join(t.TempDir(), "state")
	h, err := Open(Config{Policy: pol, Kernel: kernel.New(ns.Conn), StateDir: stateDir, AsHelper: true, HelperGID: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.State.Shared() || h.State.Path != stateDir {
		t.Fatalf("state in %s (shared %v)", h.State.Path, h.State.Shared())
	}
	if _, err := h.UpHelper("tap0", "br0", Guest{}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := h.State.Read("tap0"); rec == nil || !rec.Helper {
		t.Fatalf("record %+v", rec)
	}
	if _, err := os.Stat(state.HelperDir(stateDir)); !os.IsNotExist(err) {
		t.Fatalf("the shared directory was made: %v", err)
	}
}

// TestIfupSweepsHelperRecords: there is no ifdown for a helper TAP, so the
// sweep root's ifup makes removes its record once the TAP is gone.
func TestIfupSweepsHelperRecords(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0")
	ns.AddTAP(t, "tap0")
	ns.AddTAP(t, "vnet0")
	root, helper, _ := helperHooks(t, ns, "bridge = \"br0\"\n")
	root.cfg.SweepEvery = time.Nanosecond // every ifup sweeps
	if _, err := helper.UpHelper("tap0", "br0", Guest{}); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle.LinkDel(ns.Link(t, "tap0")); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Up("vnet0"); err != nil {
		t.Fatal(err)
	}
	if rec, _ := helper.State.Read("tap0"); rec != nil {
		t.Fatalf("root's ifup left the record of a gone helper TAP: %+v", rec)
	}
}

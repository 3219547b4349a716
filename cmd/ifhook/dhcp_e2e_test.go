package main

// End-to-end proof of DHCP, DNS and router advertisements on ifhook's
// bridges (issue 10): real QEMU guests whose DHCP client (busybox udhcpc),
// SLAAC and resolver (busybox nslookup) talk to the dnsmasq the ifhook
// binary started from the policy alone, in the test's namespace.

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ifhook/ifhook/ifhook"
	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/ifhook/ifhook/ifhook/nstest/guest"
	"golang.org/x/sys/unix"
)

// serveDHCP readies the test's environment for bridges that serve DHCP: a
// data directory of its own (IFHOOK_DATA_DIR), directories dnsmasq's user
// can traverse (the tests' temporary ones are 0700), and, whatever
// happens, every dnsmasq started for this state directory ended when the
// test ends (found by its command line, ended by its PID).
func (e *testEnv) serveDHCP() string {
	e.t.Helper()
	nstest.Dnsmasq(e.t)
	data := filepath.Join(e.t.TempDir(), "data")
	for _, d := range []string{e.state, data} {
		for p := filepath.Dir(d); p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
			if err := os.Chmod(p, 0o755); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	e.extra = append(e.extra, "IFHOOK_DATA_DIR="+data)
	e.t.Cleanup(func() {
		for _, pid := range e.dnsmasqs() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return data
}

// dnsmasqs lists the processes running a dnsmasq of this test's state
// directory.
func (e *testEnv) dnsmasqs() []int {
	prefix := "--conf-file=" + filepath.Join(e.state, "dnsmasq") + "/"
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if strings.HasPrefix(a, prefix) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// leases runs `ifhook leases --json`.
func (e *testEnv) leases(bridge string) []ifhook.Lease {
	e.t.Helper()
	r := e.mustRun(0, "ifhook", "leases", "--json", bridge)
	var out []ifhook.Lease
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("leases --json: %v: %s", err, r.stdout)
	}
	return out
}

// explainIP is the address explain predicts for a VM before its TAP exists.
func (e *testEnv) explainIP(tap, vm, mac string) string {
	e.t.Helper()
	r := e.mustRun(0, "ifhook", "explain", "--json", "--vm", vm, "--guest-mac", mac, tap)
	var v ifhook.View
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.DHCP == nil || v.DHCP.IP == "" {
		e.t.Fatalf("explain --vm %s: %v: %s", vm, err, r.stdout)
	}
	return v.DHCP.IP
}

const dhcpNATPolicy = `bridge = "br-dh"

[bridges.br-dh]
model = "nat"
address = ["192.168.100.1/24", "fd00:100::1/64"]
uplink = "up0"

[bridges.br-dh.dhcp]
range = "192.168.100.100-192.168.100.199"
`

// TestE2EDHCPNAT: a stock guest with nothing but DHCP on a nat bridge
// ifhook makes at its first ifup gets the address explain predicted,
// reaches the outside through NAT by the default route DHCP gave it, and
// gets the same address when it starts again; a second guest resolves the
// first by name; after the first's ifdown its entry and lease are gone and
// a third VM does not get its address; the TAP of the QEMU whose ifup
// started dnsmasq goes with that QEMU; a killed dnsmasq is reported by
// doctor and started again by the next ifup; teardown leaves no dnsmasq,
// no file of it and no rule.
func TestE2EDHCPNAT(t *testing.T) {
	t.Parallel()
	img := e2eImage(t)
	e := newEnv(t, dhcpNATPolicy)
	e.serveDHCP()
	outside := peerNS(t, e.ns, "up0", []string{"198.51.100.1/24"}, "out0", []string{"198.51.100.2/24"})
	seen := watchEchoes(t, outside, "198.51.100.2")
	before := netState(t, e.ns)

	const firstMAC, secondMAC, thirdMAC = "52:54:00:10:00:01", "52:54:00:10:00:02", "52:54:00:10:00:03"
	want := e.explainIP("vm-first", "first", firstMAC)
	if e.ns.HasLink("br-dh") {
		t.Fatal("explain made the bridge")
	}
	if len(e.dnsmasqs()) != 0 {
		t.Fatal("explain started dnsmasq")
	}

	// 1. first: the predicted address, the default route from DHCP, NAT.
	first := e.startGuest(img, guest.Options{Name: "first", TAP: "vm-first", MAC: firstMAC, DHCP: true,
		Ping: []string{"198.51.100.2"}, Hold: guest.Forever})
	res, err := first.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	if res.DHCP == nil || !res.DHCP.OK || res.DHCP.IP.Addr().String() != want {
		t.Fatalf("first's lease %+v; explain predicted %s", res.DHCP, want)
	}
	if res.DHCP.Router.String() != "192.168.100.1" || !slices.Contains(res.DHCP.DNS, netip.MustParseAddr("192.168.100.1")) || res.DHCP.Domain != "vm" {
		t.Errorf("first's lease: router %v, DNS %v, domain %q; want the bridge for both, domain vm", res.DHCP.Router, res.DHCP.DNS, res.DHCP.Domain)
	}
	if !res.OK("198.51.100.2") {
		t.Errorf("first could not reach the outside through NAT by its DHCP default route")
	}
	if src := seen.sources(); !cmp.Equal(src, []string{"198.51.100.1"}) {
		t.Errorf("the outside saw %v, want only the NAT address 198.51.100.1", src)
	}
	if n := len(e.dnsmasqs()); n != 1 {
		t.Fatalf("%d dnsmasqs run for br-dh, want 1", n)
	}
	st := e.mustRun(0, "ifhook", "status", "br-dh")
	if !strings.Contains(st.stdout, "dnsmasq:   running, pid ") || !strings.Contains(st.stdout, "udp 192.168.100.1:53") {
		t.Errorf("status does not show dnsmasq listening:\n%s", st.stdout)
	}
	list := e.mustRun(0, "ifhook", "list")
	if !strings.Contains(list.stdout, want) {
		t.Errorf("list does not show first's address %s:\n%s", want, list.stdout)
	}

	// 2. second resolves first.vm.
	second := e.startGuest(img, guest.Options{Name: "second", TAP: "vm-second", MAC: secondMAC, DHCP: true,
		Resolve: []string{"first.vm", "nobody.vm"}, ResolveWait: 5 * time.Second})
	res2, err := second.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := res2.Resolved("first.vm"); !slices.Contains(got, netip.MustParseAddr(want)) {
		t.Errorf("second resolved first.vm to %v, want %s (lookups %+v)", got, want, res2.Lookups)
	}
	if got := res2.Resolved("nobody.vm"); len(got) != 0 {
		t.Errorf("nobody.vm resolved to %v", got)
	}
	if res2.DHCP == nil || res2.DHCP.IP.Addr().String() == want {
		t.Errorf("second's lease %+v collides with first's %s", res2.DHCP, want)
	}
	if err := second.WaitExit(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	// The TAP of the QEMU whose ifup started dnsmasq: gone with QEMU
	// (dnsmasq inherited none of QEMU's descriptors).
	first.Stop()
	for deadline := time.Now().Add(5 * time.Second); e.ns.HasLink("vm-first"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("vm-first outlived its QEMU: something kept its descriptor")
		}
	}
	// 3. first's ifdown: its entry and lease gone, its name too.
	if entries := e.dirEntries("dnsmasq/br-dh.hosts"); slices.Contains(entries, "vm-first") {
		t.Errorf("first's hosts entry stayed after its ifdown: %v", entries)
	}
	for _, l := range e.leases("br-dh") {
		if l.IP == want || l.VM == "first" {
			t.Errorf("leases still lists first's: %+v", l)
		}
	}
	third := e.startGuest(img, guest.Options{Name: "third", TAP: "vm-third", MAC: thirdMAC, DHCP: true,
		Resolve: []string{"first.vm"}, ResolveWait: 3 * time.Second})
	res3, err := third.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	if res3.DHCP == nil || !res3.DHCP.OK || res3.DHCP.IP.Addr().String() == want {
		t.Errorf("third's lease %+v: it must never get first's %s", res3.DHCP, want)
	}
	if got := res3.Resolved("first.vm"); len(got) != 0 {
		t.Errorf("first.vm still resolves to %v after first's ifdown", got)
	}
	if err := third.WaitExit(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	// 6. dnsmasq killed: doctor says so; the next ifup starts it again.
	pids := e.dnsmasqs()
	if len(pids) != 1 {
		t.Fatalf("dnsmasqs: %v", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); len(e.dnsmasqs()) != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("dnsmasq did not die")
		}
	}
	doc := e.run("ifhook", "doctor", "br-dh")
	if doc.code != 1 || !strings.Contains(doc.stdout, "dnsmasq is not running") {
		t.Errorf("doctor with dnsmasq dead: exit %d:\n%s", doc.code, doc.stdout)
	}
	// 1, again: first starts again, gets the same address, and its ifup
	// starts dnsmasq again.
	again := e.startGuest(img, guest.Options{Name: "first", TAP: "vm-first", MAC: firstMAC, DHCP: true})
	resA, err := again.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	if resA.DHCP == nil || resA.DHCP.IP.Addr().String() != want {
		t.Errorf("first restarted got %+v, had %s", resA.DHCP, want)
	}
	if n := len(e.dnsmasqs()); n != 1 {
		t.Errorf("%d dnsmasqs after the ifup that found it dead, want 1", n)
	}
	if err := again.WaitExit(30 * time.Second); err != nil {
		t.Fatal(err)
	}

	// 7. teardown: no dnsmasq, no file of it, no rule.
	e.stopAndTeardown(before, []string{"br-dh"}, first, second, third, again)
	if p := e.dnsmasqs(); len(p) != 0 {
		t.Errorf("dnsmasq still runs after teardown: %v", p)
	}
	if left := e.dirEntries("dnsmasq"); len(left) != 0 {
		t.Errorf("dnsmasq's files left after teardown: %v", left)
	}
}

// TestE2EDHCPIsolatedSLAAC: an isolated bridge with an address and DHCP:
// the guest gets an IPv4 address but no default route, and a SLAAC
// address in the bridge's IPv6 subnet but no default router; the MTU
// below 1500 reaches it both ways.
func TestE2EDHCPIsolatedSLAAC(t *testing.T) {
	t.Parallel()
	img := e2eImage(t)
	e := newEnv(t, `bridge = "br-idh"
[bridges.br-idh]
model = "isolated"
address = ["192.168.120.1/24", "fd00:120::1/64"]
mtu = 1400
[bridges.br-idh.dhcp]
`)
	e.serveDHCP()
	before := netState(t, e.ns)
	g := e.startGuest(img, guest.Options{Name: "iso", TAP: "vm-iso", DHCP: true, SLAAC: true, Ping: []string{"192.168.120.1"}})
	res, err := g.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	if res.DHCP == nil || !res.DHCP.OK || !netip.MustParsePrefix("192.168.120.0/24").Contains(res.DHCP.IP.Addr()) {
		t.Fatalf("lease %+v", res.DHCP)
	}
	if res.DHCP.Router.IsValid() || res.Via4.IsValid() {
		t.Errorf("an isolated bridge gave a default route: router %v, via %v", res.DHCP.Router, res.Via4)
	}
	if res.DHCP.MTU != 1400 {
		t.Errorf("DHCP MTU %d, want the bridge's 1400", res.DHCP.MTU)
	}
	if res.SLAAC == nil || !res.SLAAC.OK || !netip.MustParsePrefix("fd00:120::/64").Contains(res.SLAAC.IP.Addr()) {
		t.Fatalf("SLAAC %+v, want an address in fd00:120::/64", res.SLAAC)
	}
	if res.SLAAC.Router.IsValid() || res.Via6.IsValid() {
		t.Errorf("an isolated bridge's RA gave a default router: %v, via %v", res.SLAAC.Router, res.Via6)
	}
	if res.SLAAC.MTU != 1400 {
		t.Errorf("RA MTU %d, want 1400", res.SLAAC.MTU)
	}
	if !res.OK("192.168.120.1") {
		t.Error("the guest cannot reach the bridge's address")
	}
	if err := g.WaitExit(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	e.stopAndTeardown(before, []string{"br-idh"}, g)
	if p := e.dnsmasqs(); len(p) != 0 {
		t.Errorf("dnsmasq still runs after teardown: %v", p)
	}
}

// TestDHCPFaults: without dnsmasq setup refuses, 69, naming the package;
// with the bridge's DNS port taken, dnsmasq's own reason, one line, 69;
// either way nothing is left.
func TestDHCPFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dhcpNATPolicy)
	e.serveDHCP()
	e.ns.AddVeth(t, "up0", "up1")
	before := wholeState(t, e.ns)

	// No dnsmasq: run in a mount namespace where /usr/sbin/dnsmasq is
	// /dev/null.
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		"mount --bind /dev/null /usr/sbin/dnsmasq && exec \"$0\" setup", filepath.Join(binDir, "ifhook"))
	cmd.Env = e.environ()
	var errb strings.Builder
	cmd.Stderr = &errb
	err := e.ns.Run(cmd)
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 69 || !strings.Contains(errb.String(), "dnsmasq is not installed") || !strings.Contains(errb.String(), "dnsmasq-base") {
		t.Fatalf("setup without dnsmasq: %v: %s", err, errb.String())
	}
	t.Logf("without dnsmasq: %s", errb.String())
	assertOneLine(t, result{69, "", errb.String()}, "br-dh")
	if diff := cmp.Diff(before, wholeState(t, e.ns)); diff != "" {
		t.Fatalf("setup without dnsmasq changed (-before +after):\n%s", diff)
	}

	// Port 53 of the bridge's address taken: make the bridge by hand first
	// so the address exists, and bind it.
	e.ns.AddBridge(t, "br-dh")
	e.ns.AddAddrs(t, "br-dh", "192.168.100.1/24")
	before = wholeState(t, e.ns)
	var fd int
	if err := e.ns.Do(func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: 53, Addr: [4]byte{192, 168, 100, 1}})
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	r := e.run("ifhook", "setup")
	if r.code != 69 || !strings.Contains(r.stderr, "Address already in use") || !strings.Contains(r.stderr, "dnsmasq for br-dh") {
		t.Fatalf("setup with port 53 taken: exit %d: %s", r.code, r.stderr)
	}
	t.Logf("port taken: %s", r.stderr)
	assertOneLine(t, r, "192.168.100.1")
	if p := e.dnsmasqs(); len(p) != 0 {
		t.Errorf("a dnsmasq runs after the failed setup: %v", p)
	}
	if diff := cmp.Diff(before, wholeState(t, e.ns)); diff != "" {
		t.Fatalf("the failed setup left (-before +after):\n%s", diff)
	}
	if e.bridgeRecorded("br-dh") {
		t.Error("a record of the failed setup")
	}
}

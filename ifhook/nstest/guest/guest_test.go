package guest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/ifhook/ifhook/ifhook/qemu"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The host's links must not change, whatever the guests do.
func TestMain(m *testing.M) { nstest.GuardRootNS(m) }

// These tests prove the guest machinery alone, without ifhook: a
// two-line ifup script stands in for it. They run in parallel because
// every boot costs seconds under TCG, and each guest uses one core.

// bridgeScript writes a QEMU ifup script that enslaves the TAP to br0 and
// brings it up. QEMU runs it inside the test namespace. busybox's ip, which
// the guests need anyway, spares CI the iproute2 package.
func bridgeScript(t *testing.T) string {
	t.Helper()
	return writeScript(t, "ifup", busyboxPath+` ip link set "$1" master br0
`+busyboxPath+` ip link set "$1" up`)
}

func writeScript(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nset -e\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// bridgeNS makes a namespace with br0 (up) at 192.0.2.1/24 and
// 2001:db8::1/64.
func bridgeNS(t *testing.T) *nstest.NS {
	t.Helper()
	ns := nstest.New(t)
	br := ns.AddBridge(t, "br0")
	for _, a := range []string{"192.0.2.1/24", "2001:db8::1/64"} {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		// No duplicate address detection: it would keep the IPv6
		// address tentative until a port comes up, and then a second.
		addr.Flags = unix.IFA_F_NODAD
		if err := ns.Handle.AddrAdd(br, addr); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// TestPingBridge: a guest on br0 pings the bridge's own addresses (IPv4
// and IPv6), then powers off, which ends QEMU by itself and takes its TAP
// along.
func TestPingBridge(t *testing.T) {
	t.Parallel()
	img := Build(t)
	ns := bridgeNS(t)
	g := img.Start(t, ns, Options{
		TAP:    "gtap0",
		Script: bridgeScript(t),
		Addrs:  []string{"192.0.2.10/24", "2001:db8::10/64"},
		Ping:   []string{"192.0.2.1", "2001:db8::1"},
	})
	res, err := g.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s guest: ready after %v, done after %v: %+v", g.Accel, res.Ready, res.Done, res.Pings)
	for _, p := range res.Pings {
		if !p.OK {
			t.Errorf("guest could not ping the bridge at %s", p.Target)
		}
	}
	if err := g.WaitExit(30 * time.Second); err != nil {
		t.Fatalf("QEMU did not exit cleanly after poweroff: %v", err)
	}
	if ns.HasLink("gtap0") {
		t.Errorf("gtap0 outlived QEMU, which created it")
	}
}

// TestPingNobody: an address nobody has must not answer. The bridge is
// pinged first in the same guest, as the control that the network works
// at all (otherwise a broken guest would pass).
func TestPingNobody(t *testing.T) {
	t.Parallel()
	img := Build(t)
	ns := bridgeNS(t)
	g := img.Start(t, ns, Options{
		TAP:      "gtap0",
		Script:   bridgeScript(t),
		Addrs:    []string{"192.0.2.10/24"},
		Ping:     []string{"192.0.2.1", "192.0.2.99"},
		PingWait: 3 * time.Second, // all of it is spent on 192.0.2.99
	})
	res, err := g.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s guest: ready after %v, done after %v: %+v", g.Accel, res.Ready, res.Done, res.Pings)
	if !res.OK("192.0.2.1") {
		t.Fatalf("control failed: guest could not ping the bridge 192.0.2.1")
	}
	if res.OK("192.0.2.99") {
		t.Errorf("guest got a reply from 192.0.2.99, which nobody has")
	}
}

// TestGuestToGuest: one guest serves (no targets, held up), another pings
// it across br0; stopping the server runs its downscript (SIGTERM path).
func TestGuestToGuest(t *testing.T) {
	t.Parallel()
	img := Build(t)
	ns := bridgeNS(t)
	downMark := filepath.Join(t.TempDir(), "down")
	server := img.Start(t, ns, Options{
		TAP:        "gsrv0",
		Script:     bridgeScript(t),
		DownScript: writeScript(t, "ifdown", `echo "$1" >`+downMark),
		Addrs:      []string{"192.0.2.20/24"},
		Hold:       Forever,
	})
	// Booted side by side; the client keeps trying for PingWait, which
	// covers the server being a little slower to come up.
	client := img.Start(t, ns, Options{
		TAP:      "gcli0",
		Script:   bridgeScript(t),
		Addrs:    []string{"192.0.2.21/24"},
		Ping:     []string{"192.0.2.20"},
		PingWait: 20 * time.Second,
	})
	if err := server.WaitReady(0); err != nil {
		t.Fatal(err)
	}
	res, err := client.Wait(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client: %+v", res)
	if !res.OK("192.0.2.20") {
		t.Errorf("client could not ping the server guest")
	}

	if _, err := server.Wait(time.Second); err != nil {
		t.Errorf("server (no targets) should be done once ready: %v", err)
	}
	select {
	case <-server.Exited():
		t.Fatalf("server exited though held forever:\n%s", server.Log())
	default:
	}
	server.Stop()
	b, err := os.ReadFile(downMark)
	if err != nil || strings.TrimSpace(string(b)) != "gsrv0" {
		t.Errorf("downscript did not run with gsrv0 on SIGTERM (%q, %v)", b, err)
	}
}

// TestStartValidates: options that would garble QEMU's or the kernel's
// command line are refused before anything starts.
func TestStartValidates(t *testing.T) {
	img := &Image{Kernel: "k", Initrd: "i"}
	for _, o := range []Options{
		{MAC: "nonsense"},
		{TAP: "a,b"},
		{Addrs: []string{"192.0.2.10"}}, // no prefix length
		{Ping: []string{"192.0.2.1 ifhook.hold=-1"}},
		{KernelArgs: []string{"a b"}},
		{Hold: -2 * time.Second},
		{MAC: "01:00:5e:00:00:01"}, // multicast
		{Accel: "xen"},
		{Name: "guest=x"},
		{Name: "a,b"},
	} {
		if o.MAC == "" {
			o.MAC = randomMAC()
		}
		if o.Accel == "" {
			o.Accel = "tcg"
		}
		if _, err := img.args(o); err == nil {
			t.Errorf("args(%+v) accepted", o)
		}
	}
	args, err := img.args(Options{MAC: "52:54:00:AB:CD:EF", TAP: "t0", Script: "/x,y", Ping: []string{"192.0.2.1"}, Accel: "tcg", Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{"-name n ", "script=/x,,y,", "downscript=no", "ifname=t0", "mac=52:54:00:ab:cd:ef", "ifhook.ping=192.0.2.1 ifhook.wait=10", "-accel tcg"} {
		if !strings.Contains(line, want) {
			t.Errorf("QEMU command line lacks %q:\n%s", want, line)
		}
	}
	// What ifhook learns of the guest from its command line.
	vm, err := qemu.Parse(append([]string{"qemu-system-x86_64"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	if vm.Name != "n" || len(vm.NICs) != 1 || vm.NICs[0].MAC.String() != "52:54:00:ab:cd:ef" || vm.NICs[0].TAP != "t0" {
		t.Errorf("ifhook reads name %q, NICs %+v from %s", vm.Name, vm.NICs, line)
	}
}

func TestVersionLess(t *testing.T) {
	in := []string{"6.1.0-9-amd64", "6.10.0-1-amd64", "6.1.0-56-amd64", "5.10.0-30-amd64", "6.9.0-2-amd64"}
	slices.SortFunc(in, func(a, b string) int {
		if versionLess(a, b) {
			return -1
		}
		if versionLess(b, a) {
			return 1
		}
		return 0
	})
	want := []string{"5.10.0-30-amd64", "6.1.0-9-amd64", "6.1.0-56-amd64", "6.9.0-2-amd64", "6.10.0-1-amd64"}
	if !slices.Equal(in, want) {
		t.Errorf("sorted %v, want %v", in, want)
	}
}

// TestModuleOrder checks dependency resolution on a made-up module tree,
// including compressed names and a built-in module.
func TestModuleOrder(t *testing.T) {
	dir := t.TempDir()
	dep := `kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
kernel/net/core/failover.ko.xz:
kernel/drivers/virtio/virtio_ring.ko.xz:
kernel/drivers/virtio/virtio_pci.ko.xz: kernel/drivers/virtio/virtio-pci-modern-dev.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
kernel/drivers/virtio/virtio-pci-modern-dev.ko.xz:
`
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/virtio/virtio.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mods, err := resolveModules(dir, []string{"virtio_pci", "virtio_net", "virtio"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mods {
		got = append(got, m.name)
	}
	want := []string{"virtio_ring", "virtio_pci_modern_dev", "virtio_pci", "failover", "net_failover", "virtio_net"}
	if !slices.Equal(got, want) {
		t.Errorf("load order %v, want %v", got, want)
	}
	if _, err := resolveModules(dir, []string{"e1000"}); err == nil {
		t.Error("a module that does not exist resolved")
	}
}

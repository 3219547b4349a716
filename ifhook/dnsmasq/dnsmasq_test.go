package dnsmasq

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ifhook/ifhook/ifhook/dhcp"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/ifhook/ifhook/ifhook/policy"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { nstest.GuardRootNS(m) }

// testRunner is a Runner for a bridge br0 (192.168.77.1/24) in a fresh
// namespace, with its directories in a temporary one dnsmasq's user can
// reach.
func testRunner(t *testing.T) (*Runner, *nstest.NS, *policy.BridgeSpec) {
	t.Helper()
	return testRunnerWith(t, "[bridges.br0]\nmodel = \"nat\"\naddress = \"192.168.77.1/24\"\n[bridges.br0.dhcp]\nrange = \"192.168.77.100-192.168.77.150\"\n", "192.168.77.1/24")
}

// testRunnerWith is testRunner for another policy of br0, whose addresses
// are addrs.
func testRunnerWith(t *testing.T, pol string, addrs ...string) (*Runner, *nstest.NS, *policy.BridgeSpec) {
	t.Helper()
	nstest.Dnsmasq(t)
	ns := nstest.New(t)
	ns.AddBridge(t, "br0")
	ns.AddAddrs(t, "br0", addrs...)
	root := t.TempDir()
	for d := root; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(root, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Layout: Layout{RunDir: RunDirOf(state), DataDir: filepath.Join(root, "data")}, InNS: ns.Do}
	t.Cleanup(func() { r.Stop("br0") })
	p, err := policy.Parse([]byte(pol), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	return r, ns, p.Spec("br0")
}

func (r *Runner) conf(spec *policy.BridgeSpec) []byte {
	return dhcp.Config{Spec: spec, Where: "test", Paths: r.Layout.Paths(spec.Name), User: r.UserName()}.Render()
}

// TestRunnerLifecycle: start, find, serve a real client, reload, release,
// stop; every file but the lease file gone after.
func TestRunnerLifecycle(t *testing.T) {
	r, ns, spec := testRunner(t)
	if st, err := r.Observe("br0", true); err != nil || st.Running || st.HasConf || len(st.Procs) != 0 {
		t.Fatalf("before: %+v, %v", st, err)
	}
	if err := r.Start("br0", r.conf(spec)); err != nil {
		t.Fatal(err)
	}
	st, err := r.Observe("br0", true)
	if err != nil || !st.Running || !st.HasConf || len(st.Procs) != 1 || st.Procs[0] != st.PID {
		t.Fatalf("after start: %+v, %v", st, err)
	}
	if cheap, _ := r.Observe("br0", false); !cheap.Running || cheap.PID != st.PID {
		t.Fatalf("cheap observe: %+v", cheap)
	}
	status, err := r.Status("br0")
	if err != nil || !status.Running || !slices.Contains(status.Listening, "udp 192.168.77.1:53") || !slices.Contains(status.Listening, "udp 0.0.0.0:67") || !slices.Contains(status.Listening, "tcp 192.168.77.1:53") {
		t.Fatalf("status: %+v, %v", status, err)
	}
	// Its files are world-readable, its state directory traversable.
	for _, p := range []string{r.Layout.RunDir, r.Layout.Paths("br0").HostsDir} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v, want 0755", p, fi.Mode(), err)
		}
	}
	if fi, _ := os.Stat(filepath.Dir(r.Layout.RunDir)); fi.Mode().Perm() != 0o711 {
		t.Errorf("state directory mode %v, want 0711", fi.Mode().Perm())
	}

	// A reserved address for the client's MAC: it gets exactly that.
	client := ns.Peer(t, "vh", "vc")
	if err := ns.Handle.LinkSetMaster(ns.Link(t, "vh"), ns.Link(t, "br0")); err != nil {
		t.Fatal(err)
	}
	mac := client.Link(t, "vc").Attrs().HardwareAddr
	want := dhcp.Entry{MAC: mac, IP: netip.MustParseAddr("192.168.77.120"), Name: "first"}
	old, _ := umask(0o077)
	err = r.SetHost("br0", "vnet0", want)
	umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(r.Layout.Paths("br0").HostsDir, "vnet0")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("hosts entry: %v, %v (a umask of 077 must not hide it from dnsmasq)", fi, err)
	}
	if e, ok, err := r.Host("br0", "vnet0"); err != nil || !ok || e.String() != want.String() {
		t.Fatalf("Host = %v %v %v", e, ok, err)
	}
	proc, addr := client.DHCPClient(t, "vc")
	if addr != "192.168.77.120/24" {
		t.Fatalf("the client leased %s, not its reserved 192.168.77.120", addr)
	}
	leases := waitLeases(t, r, func(ls []dhcp.Lease) bool { return len(ls) == 1 })
	if l := leases[0]; l.IP != want.IP || l.MAC.String() != mac.String() || l.Hostname != "first" {
		t.Fatalf("lease: %+v", l)
	}
	// The client stops; ifhook releases the lease on its behalf.
	proc.Process.Kill()
	proc.Wait()
	if err := r.DelHost("br0", "vnet0"); err != nil {
		t.Fatal(err)
	}
	if err := r.Release("br0", Release{Server: netip.MustParseAddr("192.168.77.1"), IP: want.IP, MAC: mac, ClientID: dhcp.ClientID(leases[0].ClientID)}); err != nil {
		t.Fatal(err)
	}
	waitLeases(t, r, func(ls []dhcp.Lease) bool { return len(ls) == 0 })
	if _, ok, _ := r.Host("br0", "vnet0"); ok {
		t.Fatal("the hosts entry is still there")
	}

	// A restart replaces the process; Stop leaves nothing running and no
	// file but the lease file.
	if err := r.Start("br0", r.conf(spec)); err != nil {
		t.Fatal(err)
	}
	st2, _ := r.Observe("br0", true)
	if !st2.Running || st2.PID == st.PID || alive(st.PID) || len(st2.Procs) != 1 {
		t.Fatalf("restart: %+v (old pid %d alive: %v)", st2, st.PID, alive(st.PID))
	}
	if err := r.Stop("br0"); err != nil {
		t.Fatal(err)
	}
	if alive(st2.PID) || len(r.procs("br0")) != 0 {
		t.Fatal("dnsmasq still runs after Stop")
	}
	entries, _ := os.ReadDir(r.Layout.RunDir)
	if len(entries) != 0 {
		t.Errorf("left in %s: %v", r.Layout.RunDir, entries)
	}
	if _, err := os.Stat(r.Layout.Paths("br0").Leases); err != nil {
		t.Errorf("the lease file went with Stop: %v", err)
	}
	if err := r.Stop("br0"); err != nil {
		t.Errorf("Stop twice: %v", err)
	}
}

// TestReleaseDHCPv6: a real DHCPv6 client (dhcpcd) leases an address in
// the bridge's stateful range under the name its hosts entry gives; once
// it is gone, ifhook's RELEASE on its behalf drops the lease, and with it
// the name.
func TestReleaseDHCPv6(t *testing.T) {
	r, ns, spec := testRunnerWith(t, "[bridges.br0]\nmodel = \"isolated\"\naddress = [\"192.168.78.1/24\", \"fd00:78::1/64\"]\n[bridges.br0.dhcp]\nipv6 = \"dhcpv6\"\n", "192.168.78.1/24", "fd00:78::1/64")
	client := ns.Peer(t, "vh", "vc")
	if err := ns.Handle.LinkSetMaster(ns.Link(t, "vh"), ns.Link(t, "br0")); err != nil {
		t.Fatal(err)
	}
	mac := client.Link(t, "vc").Attrs().HardwareAddr
	if err := r.SetHost("br0", "vnet0", dhcp.Entry{MAC: mac, Name: "six"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Start("br0", r.conf(spec)); err != nil {
		t.Fatal(err)
	}
	proc := client.DHCPv6Client(t, "vc")
	var lease dhcp.Lease
	waitLeases(t, r, func(ls []dhcp.Lease) bool {
		for _, l := range ls {
			if l.IPv6 {
				lease = l
				return true
			}
		}
		return false
	})
	if !lease.HasMAC(mac) || lease.Hostname != "six" || lease.ServerDUID == "" || !netip.MustParsePrefix("fd00:78::/64").Contains(lease.IP) {
		t.Fatalf("DHCPv6 lease %+v: want one of %s named six in fd00:78::/64, with the server's DUID", lease, mac)
	}
	if got := lookup(t, ns, "six.vm", "fd00:78::1"); !strings.Contains(got, lease.IP.String()) {
		t.Fatalf("six.vm before the release: %q, want %s", got, lease.IP)
	}
	proc.Process.Kill()
	proc.Wait()
	if err := r.DelHost("br0", "vnet0"); err != nil {
		t.Fatal(err)
	}
	rel := Release{IP: lease.IP, MAC: mac, ClientID: dhcp.ClientID(lease.ClientID), IAID: lease.IAID, TA: lease.TA, ServerDUID: dhcp.ClientID(lease.ServerDUID)}
	if err := r.Release("br0", rel); err != nil {
		t.Fatal(err)
	}
	waitLeases(t, r, func(ls []dhcp.Lease) bool {
		return !slices.ContainsFunc(ls, func(l dhcp.Lease) bool { return l.IPv6 })
	})
	if got := lookup(t, ns, "six.vm", "fd00:78::1"); strings.Contains(got, lease.IP.String()) {
		t.Fatalf("six.vm after the release: %q, still %s", got, lease.IP)
	}
}

// lookup asks the DNS server at server for name's addresses (busybox
// nslookup, run in ns) and returns what it printed.
func lookup(t *testing.T, ns *nstest.NS, name, server string) string {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command(nstest.Busybox(t), "nslookup", "-type=AAAA", name, server)
	cmd.Stdout, cmd.Stderr = &out, &out
	ns.Run(cmd) // a name that does not resolve is an exit status of 1
	return out.String()
}

func umask(m int) (int, error) { return unix.Umask(m), nil }

func waitLeases(t *testing.T, r *Runner, ok func([]dhcp.Lease) bool) []dhcp.Lease {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ls, probs, err := r.Leases("br0")
		if err != nil || len(probs) > 0 {
			t.Fatalf("leases: %v %v", probs, err)
		}
		if ok(ls) {
			return ls
		}
		if time.Now().After(deadline) {
			t.Fatalf("leases never as wanted: %+v", ls)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStartFailures: dnsmasq's own reason, one line, and nothing left
// running; a port someone else holds; no dnsmasq at all.
func TestStartFailures(t *testing.T) {
	r, ns, spec := testRunner(t)
	// Someone else has the bridge's DNS port.
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: 53, Addr: [4]byte{192, 168, 77, 1}})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Start("br0", r.conf(spec))
	unix.Close(fd)
	if err == nil || !strings.Contains(err.Error(), "Address already in use") || !strings.Contains(err.Error(), "192.168.77.1") || strings.Contains(err.Error(), "\n") || exit.KindOf(err) != exit.Unavailable {
		t.Fatalf("port taken: %v", err)
	}
	if p := r.procs("br0"); len(p) != 0 {
		t.Fatalf("a dnsmasq runs after a failed start: %v", p)
	}
	// A configuration dnsmasq refuses.
	err = r.Start("br0", append(r.conf(spec), "no-such-option\n"...))
	if err == nil || !strings.Contains(err.Error(), "bad option") && !strings.Contains(err.Error(), "no-such-option") {
		t.Fatalf("bad config: %v", err)
	}
	// No dnsmasq.
	saved := Binaries
	Binaries = []string{"/nonexistent/dnsmasq"}
	defer func() { Binaries = saved }()
	err = r.Start("br0", r.conf(spec))
	if exit.Code(err) != 69 || !strings.Contains(err.Error(), "dnsmasq-base") {
		t.Fatalf("not installed: %v (exit %d)", err, exit.Code(err))
	}
}

// TestCloseOnExec: a descriptor inherited without close-on-exec (as QEMU
// leaves the TAP's) is not inherited by what is started after.
func TestCloseOnExec(t *testing.T) {
	fds := make([]int, 2)
	if err := unix.Pipe(fds); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := CloseOnExec(); err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("fd %d: flags %#x, %v", fd, flags, err)
		}
	}
}

func TestReleasePacket(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:aa:bb:cc")
	p := releasePacket(netip.MustParseAddr("192.168.77.1"), netip.MustParseAddr("192.168.77.120"), mac, nil)
	if p[0] != 1 || p[1] != 1 || p[2] != 6 || string(p[12:16]) != string([]byte{192, 168, 77, 120}) || string(p[28:34]) != string(mac) {
		t.Fatalf("header: % x", p[:40])
	}
	if string(p[236:249]) != string([]byte{0x63, 0x82, 0x53, 0x63, 53, 1, 7, 54, 4, 192, 168, 77, 1}) || p[249] != 255 {
		t.Fatalf("options: % x", p[236:252])
	}
	p = releasePacket(netip.MustParseAddr("192.168.77.1"), netip.MustParseAddr("192.168.77.120"), mac, []byte{1, 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc})
	if string(p[249:258]) != string([]byte{61, 7, 1, 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc}) || p[258] != 255 {
		t.Fatalf("client id: % x", p[236:260])
	}
}

// TestRelease6Packet: RELEASE, a transaction id, the client's DUID, the
// server's, and one IA holding the address with zero lifetimes.
func TestRelease6Packet(t *testing.T) {
	rel := Release{IP: netip.MustParseAddr("fd00:78::1234"), ClientID: []byte{0, 3, 0, 1, 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc}, ServerDUID: []byte{0, 1, 0, 1, 9, 9, 9, 9, 2, 2, 2, 2, 2, 2}, IAID: 0x01020304}
	p := release6Packet(rel)
	ip := rel.IP.As16()
	want := slices.Concat([]byte{0, 1, 0, 10}, rel.ClientID, []byte{0, 2, 0, 14}, rel.ServerDUID,
		[]byte{0, 3, 0, 40, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{0, 5, 0, 24}, ip[:], make([]byte, 8))
	if p[0] != 8 || string(p[4:]) != string(want) {
		t.Fatalf("RELEASE:\n got % x\nwant % x", p[4:], want)
	}
	rel.TA = true
	p = release6Packet(rel)
	if ia := p[4+14+18:]; string(ia[:8]) != string([]byte{0, 4, 0, 32, 1, 2, 3, 4}) || len(ia) != 36 {
		t.Fatalf("IA_TA: % x", ia)
	}
	r := &Runner{}
	if err := r.Release("br0", Release{IP: rel.IP}); err == nil {
		t.Fatal("a DHCPv6 RELEASE without DUIDs is sent")
	}
}

func TestProcAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100A8C0:0035": "192.168.0.1:53", "00000000:0043": "0.0.0.0:67",
		"00000000000000000000000000000000:0223": "[::]:547", "zz:1": "", "0100A8C0": "",
	} {
		if got := procAddr(in); got != want {
			t.Errorf("procAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

package nstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// Dnsmasq returns the path of dnsmasq (Debian's dnsmasq-base, Fedora's
// dnsmasq). Without it the test skips, or fails under CI.
func Dnsmasq(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("dnsmasq is not installed (Debian: dnsmasq-base), and CI is set")
	}
	tb.Skip("dnsmasq is not installed (Debian: dnsmasq-base)")
	return ""
}

// Busybox is busybox-static's binary, for its DHCP client and nslookup.
func Busybox(tb testing.TB) string {
	tb.Helper()
	const p = "/bin/busybox"
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("busybox is not installed (Debian: busybox-static), and CI is set")
	}
	tb.Skip("busybox is not installed (Debian: busybox-static)")
	return ""
}

// Peer makes a second namespace joined to ns by a veth pair: hostIf in
// ns, peerIf in the new one, both up.
func (ns *NS) Peer(tb testing.TB, hostIf, peerIf string) *NS {
	tb.Helper()
	p := New(tb)
	ns.AddVeth(tb, hostIf, peerIf)
	if err := ns.Handle.LinkSetNsFd(ns.Link(tb, peerIf), p.FD()); err != nil {
		tb.Fatalf("move %s into the peer namespace: %v", peerIf, err)
	}
	ns.SetUp(tb, hostIf)
	p.SetUp(tb, peerIf)
	return p
}

// StartBackground starts cmd in ns and ends it (by its pid) when the test
// ends.
func (ns *NS) StartBackground(tb testing.TB, cmd *exec.Cmd) {
	tb.Helper()
	if err := ns.Start(cmd); err != nil {
		tb.Fatalf("start %s: %v", cmd.Path, err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// UDHCPCScript configures a lease as a DHCP client's script does: the
// address with the lease's lifetime, and the default route (proto dhcp)
// when the server sent a router.
const UDHCPCScript = `#!/bin/sh
case "$1" in
bound|renew)
	ip addr replace "$ip/$mask" dev "$interface" valid_lft "${lease:-3600}" preferred_lft "${lease:-3600}"
	[ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface" proto dhcp
	;;
esac
exit 0
`

// DHCPClient runs busybox udhcpc on ifname in ns until the test ends
// (extra: more udhcpc arguments) and waits for the address it leases,
// which it returns ("A/N").
func (ns *NS) DHCPClient(tb testing.TB, ifname string, extra ...string) (*exec.Cmd, string) {
	tb.Helper()
	bb := Busybox(tb)
	script := filepath.Join(tb.TempDir(), "udhcpc.script")
	if err := os.WriteFile(script, []byte(UDHCPCScript), 0o755); err != nil {
		tb.Fatal(err)
	}
	args := append([]string{"udhcpc", "-f", "-i", ifname, "-s", script, "-t", "20", "-T", "1"}, extra...)
	cmd := exec.Command(bb, args...)
	ns.StartBackground(tb, cmd)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if a := ns.Addrs(tb, ifname, netlink.FAMILY_V4); len(a) > 0 {
			return cmd, a[0]
		}
		if time.Now().After(deadline) {
			tb.Fatalf("udhcpc on %s got no lease", ifname)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DHCPCD returns the path of dhcpcd (Debian's dhcpcd-base), the DHCPv6
// client of the tests. Without it the test skips, or fails under CI.
func DHCPCD(tb testing.TB) string {
	tb.Helper()
	const p = "/usr/sbin/dhcpcd"
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("dhcpcd is not installed (Debian: dhcpcd-base), and CI is set")
	}
	tb.Skip("dhcpcd is not installed (Debian: dhcpcd-base)")
	return ""
}

// DHCPv6Client runs dhcpcd as a stateful DHCPv6 client on ifname in ns
// until the test ends, and waits for the address it leases. It runs in a
// mount and UTS namespace of its own, over empty /run and /var/lib/dhcpcd,
// with no hook script: it never touches the host's files, resolver or
// hostname. And in a PID namespace whose init the returned command's death
// kills (unshare --kill-child): dhcpcd forks privilege-separation helpers
// that outlive a killed main process, and a kill of that command (by its
// pid, as StartBackground does) must end them all.
func (ns *NS) DHCPv6Client(tb testing.TB, ifname string) *exec.Cmd {
	tb.Helper()
	bin := DHCPCD(tb)
	conf := filepath.Join(tb.TempDir(), "dhcpcd.conf")
	if err := os.WriteFile(conf, []byte("ipv6only\nnoipv6rs\nia_na 1\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib/dhcpcd && exec "$0" --nobackground --config "$1" --script /bin/true --timeout 30 "$2"`,
		bin, conf, ifname)
	ns.StartBackground(tb, cmd)
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, a := range ns.Addrs(tb, ifname, netlink.FAMILY_V6) {
			if !strings.HasPrefix(a, "fe80:") {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("dhcpcd on %s got no DHCPv6 lease", ifname)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/vishvananda/netlink"
)

// dnsmasqPath is Debian's dnsmasq-base (Fedora: dnsmasq). Without it the
// tests that need a real DHCP server skip, or fail under CI.
func dnsmasqPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("dnsmasq is not installed (Debian: dnsmasq-base), and CI is set")
	}
	t.Skip("dnsmasq is not installed (Debian: dnsmasq-base)")
	return ""
}

// startBackground starts cmd in ns and stops it (by its pid) when the test
// ends.
func startBackground(t *testing.T, ns *nstest.NS, cmd *exec.Cmd) {
	t.Helper()
	if err := ns.Start(cmd); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// udhcpcScript configures the lease as a DHCP client's script does, the
// address with the lease's lifetime and the default route proto dhcp.
const udhcpcScript = `#!/bin/sh
case "$1" in
bound|renew)
	ip addr replace "$ip/$mask" dev "$interface" valid_lft "${lease:-3600}" preferred_lft "${lease:-3600}"
	[ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface" proto dhcp
	;;
esac
exit 0
`

// TestBridgedRefusesDHCPUplink: a host whose NIC has its address from a
// real DHCP server (dnsmasq on the LAN), through a real client (busybox
// udhcpc) still running, is not bridged: setup, check, setup --dry-run,
// status and doctor all say why and what to do, nothing changes, and the
// host keeps its lease and its LAN. Without the client, the lease alone
// (an address with a lifetime) is refused the same way.
func TestBridgedRefusesDHCPUplink(t *testing.T) {
	dnsmasq := dnsmasqPath(t)
	policyText := "bridge = \"br-lan\"\n[bridges.br-lan]\nmodel = \"bridged\"\nuplink = \"eth0\"\n"
	e := newEnv(t, policyText)
	lan := peerNS(t, e.ns, "eth0", nil, "lan0", []string{"198.51.100.1/24"})
	dir := t.TempDir()
	startBackground(t, lan, exec.Command(dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--port=0", "--user=root",
		"--interface=lan0", "--bind-interfaces", "--dhcp-range=198.51.100.100,198.51.100.150,1h",
		"--dhcp-option=3,198.51.100.1", "--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="))
	script := filepath.Join(dir, "udhcpc.script")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o755); err != nil {
		t.Fatal(err)
	}
	client := exec.Command("/bin/busybox", "udhcpc", "-f", "-i", "eth0", "-s", script, "-t", "10", "-T", "1")
	startBackground(t, e.ns, client)
	deadline := time.Now().Add(20 * time.Second)
	for len(e.ns.Addrs(t, "eth0", netlink.FAMILY_V4)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("udhcpc got no lease from dnsmasq")
		}
		time.Sleep(100 * time.Millisecond)
	}
	lease := e.ns.Addrs(t, "eth0", netlink.FAMILY_V4)
	before := wholeState(t, e.ns)

	check := func(wants ...string) {
		t.Helper()
		for _, run := range []struct {
			args []string
			code int
		}{
			{[]string{"setup"}, 69},
			{[]string{"setup", "--dry-run"}, 69},
			{[]string{"check"}, 78},
		} {
			r := e.run("ifhook", run.args...)
			if r.code != run.code {
				t.Fatalf("ifhook %s: exit %d, want %d: %s", strings.Join(run.args, " "), r.code, run.code, r.stderr)
			}
			msg := strings.TrimSpace(r.stderr)
			for _, w := range append(wants, "could not renew or use it, and the host would lose the LAN", `or use model = "nat" with uplink = "eth0"`) {
				if !strings.Contains(msg, w) {
					t.Errorf("ifhook %s does not say %q:\n%s", strings.Join(run.args, " "), w, msg)
				}
			}
			if run.code == 69 && strings.Contains(msg, "\n") {
				t.Errorf("ifhook %s: more than one line:\n%s", strings.Join(run.args, " "), msg)
			}
		}
		r := e.run("ifhook", "status", "br-lan")
		if r.code != 0 || !strings.Contains(r.stdout, "cannot be set up: ") || !strings.Contains(r.stdout, wants[0]) {
			t.Errorf("status: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = e.run("ifhook", "doctor", "br-lan")
		if r.code != 1 || !strings.Contains(r.stdout, wants[0]) {
			t.Errorf("doctor: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
		if diff := cmp.Diff(before, wholeState(t, e.ns)); diff != "" {
			t.Fatalf("the host changed (-before +after):\n%s", diff)
		}
		if ok, out := hostPing(t, e.ns, "198.51.100.1"); !ok {
			t.Fatalf("the host lost its LAN: %s", out)
		}
	}
	check("is configured by udhcpc (process ", "has the dynamic address "+lease[0], "stop udhcpc on eth0")
	if _, err := os.Stat(filepath.Join(e.state, "bridges", "br-lan")); !os.IsNotExist(err) {
		t.Fatalf("a record of the refused bridge: %v", err)
	}

	// The client gone, its lease is still dynamic, and still refused.
	client.Process.Kill()
	client.Wait()
	check("has the dynamic address "+lease[0], "give eth0 a static address")
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ifhook/ifhook/ifhook/nstest"
)

// TestBridgedRefusesDHCPUplink: a host whose NIC has its address from a
// real DHCP server (dnsmasq on the LAN), through a real client (busybox
// udhcpc) still running, is not bridged: setup, check, setup --dry-run,
// status and doctor all say why and what to do, nothing changes, and the
// host keeps its lease and its LAN. Without the client, the lease alone
// (an address with a lifetime) is refused the same way.
func TestBridgedRefusesDHCPUplink(t *testing.T) {
	dnsmasq := nstest.Dnsmasq(t)
	policyText := "bridge = \"br-lan\"\n[bridges.br-lan]\nmodel = \"bridged\"\nuplink = \"eth0\"\n"
	e := newEnv(t, policyText)
	lan := peerNS(t, e.ns, "eth0", nil, "lan0", []string{"198.51.100.1/24"})
	dir := t.TempDir()
	lan.StartBackground(t, exec.Command(dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--port=0", "--user=root",
		"--interface=lan0", "--bind-interfaces", "--dhcp-range=198.51.100.100,198.51.100.150,1h",
		"--dhcp-option=3,198.51.100.1", "--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="))
	client, addr := e.ns.DHCPClient(t, "eth0")
	lease := []string{addr}
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

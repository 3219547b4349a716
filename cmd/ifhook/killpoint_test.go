package main

// Kill-point tests: the binary built with -tags killpoint sends itself a
// signal just before, or just after, its Nth change to the kernel (every
// netlink change, nftables change and sysctl write counts). Each test kills
// one operation at every change in turn, with SIGKILL (nothing runs after
// it: the journal on disk is all there is) and with SIGTERM (ifhook stops
// between two changes and undoes, or leaves the rest for the next run),
// then runs what a user would run next and compares the namespace's whole
// state (ip -d link, ip -d addr, the routes of every table, the forwarding
// sysctls, the nftables ruleset) with the snapshot from before.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/vishvananda/netlink"
)

// runKilled runs the killpoint binary as prog, to be signalled (sig:
// "KILL" or "TERM") at "before:N" or "after:N"; reached says whether it
// got that far (the operation has fewer changes otherwise).
func (e *testEnv) runKilled(sig, at, prog string, args ...string) (r result, reached bool) {
	e.t.Helper()
	mark := filepath.Join(e.t.TempDir(), "mark")
	saved := e.extra
	e.extra = append(append([]string(nil), e.extra...), "IFHOOK_KILLPOINT="+at, "IFHOOK_KILLSIG="+sig, "IFHOOK_KILLPOINT_MARK="+mark)
	defer func() { e.extra = saved }()
	if !filepath.IsAbs(prog) {
		prog = filepath.Join(binDir, "killpoint", prog)
	}
	cmd := exec.Command(prog, args...)
	cmd.Env = e.environ()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := e.ns.Run(cmd)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %s: %v", prog, err)
	}
	_, merr := os.Stat(mark)
	return result{code, out.String(), errb.String()}, merr == nil
}

// volatile matches what the kernel changes on its own, or as a lasting
// side effect no tool can undo: a link's qdisc (a TAP gets its default one
// the first time it is set up), a bridge's timers, and the offload limits
// a bridge takes from the smallest of its ports ever.
var volatile = regexp.MustCompile(` qdisc \S+| \w+_timer +[\d.]+| (gso|tso|gro)_max_(size|segs) \d+`)

// wholeState is everything in ns that ifhook could change, as text lines:
// `ip -d link`, `ip -d addr`, the IPv4 and IPv6 routes of every table, the
// forwarding sysctls of every link and family, and every nftables table,
// chain and rule; but for what the kernel changes by itself (volatile).
func wholeState(t *testing.T, ns *nstest.NS) []string {
	t.Helper()
	var out []string
	ip := func(args ...string) {
		cmd := exec.Command("ip", args...)
		var b strings.Builder
		cmd.Stdout = &b
		cmd.Stderr = &b
		if err := ns.Run(cmd); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, b.String())
		}
		for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			out = append(out, strings.Join(args, " ")+": "+volatile.ReplaceAllString(l, ""))
		}
	}
	ip("-d", "link", "show")
	ip("-d", "addr", "show")
	ip("route", "show", "table", "all")
	ip("-6", "route", "show", "table", "all")
	links, err := ns.Handle.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.default.forwarding",
		"net.ipv6.conf.all.forwarding", "net.ipv6.conf.default.forwarding"}
	for _, l := range links {
		n := l.Attrs().Name
		keys = append(keys, "net.ipv4.conf."+n+".forwarding", "net.ipv6.conf."+n+".forwarding")
	}
	for _, k := range keys {
		out = append(out, "sysctl "+k+"="+ns.Sysctl(t, k))
	}
	c, err := nftables.New(nftables.WithNetNSFd(ns.FD()))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		out = append(out, fmt.Sprintf("nft table %d %s", tb.Family, tb.Name))
		for _, ch := range chains {
			if ch.Table.Name != tb.Name || ch.Table.Family != tb.Family {
				continue
			}
			out = append(out, fmt.Sprintf("nft chain %s %s", tb.Name, ch.Name))
			rules, err := c.GetRules(tb, ch)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rules {
				var exprs []string
				for _, e := range r.Exprs {
					exprs = append(exprs, fmt.Sprintf("%T%+v", e, e))
				}
				out = append(out, fmt.Sprintf("nft rule %s %s %q %s", tb.Name, ch.Name, r.UserData, strings.Join(exprs, " ")))
			}
		}
	}
	sort.Strings(out)
	return out
}

// killHost is a namespace as the models need one: a NIC (eth0, a veth to a
// LAN) with IPv4 and IPv6 addresses, default routes of both families and a
// route with a metric; a second NIC (eth1) for NAT to leave by; two TAPs.
func killHost(t *testing.T, policyText string) *testEnv {
	t.Helper()
	e := newEnv(t, policyText)
	if strings.Contains(policyText, ".dhcp]") {
		e.serveDHCP()
	}
	ns := e.ns
	ns.AddVeth(t, "eth0", "lan0")
	ns.AddVeth(t, "eth1", "wan0")
	ns.AddAddrs(t, "eth0", "198.51.100.7/24", "2001:db8:1::7/64")
	ns.AddAddrs(t, "eth1", "203.0.113.9/24")
	// No IPv6 link-local addresses on them: the kernel adds those when the
	// carrier comes, which linkwatch reports up to a second late, so a
	// snapshot taken before would see one appear later, as if ifhook had
	// made it.
	for _, l := range []string{"eth0", "lan0", "eth1", "wan0"} {
		if err := ns.Do(func() error {
			return os.WriteFile("/proc/sys/net/ipv6/conf/"+l+"/addr_gen_mode", []byte("1\n"), 0o644)
		}); err != nil {
			t.Fatal(err)
		}
	}
	ns.SetUp(t, "eth0", "lan0", "eth1", "wan0")
	for _, r := range [][]string{
		{"route", "add", "default", "via", "198.51.100.1"},
		{"route", "add", "192.0.2.128/25", "via", "198.51.100.254", "metric", "50"},
		{"-6", "route", "add", "default", "via", "2001:db8:1::1"},
	} {
		if err := ns.Run(exec.Command("ip", r...)); err != nil {
			t.Fatalf("ip %s: %v", strings.Join(r, " "), err)
		}
	}
	ns.AddTAP(t, "vnet0")
	ns.AddTAP(t, "vnet1")
	settle(t, ns, "eth0", "lan0", "eth1", "wan0")
	return e
}

// settle waits until the links' operational state is up (linkwatch
// reports the carrier late): a snapshot taken before would see it change.
func settle(t *testing.T, ns *nstest.NS, names ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, name := range names {
		for ns.Link(t, name).Attrs().OperState != netlink.OperUp {
			if time.Now().After(deadline) {
				t.Fatalf("%s never came up", name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

var killModels = []struct {
	name, bridge, policy string
}{
	{"isolated", "br-iso", "bridge = \"br-iso\"\n[bridges.br-iso]\nmodel = \"isolated\"\n"},
	{"routed", "br-rt", "bridge = \"br-rt\"\n[bridges.br-rt]\nmodel = \"routed\"\naddress = [\"192.0.2.1/26\", \"2001:db8:2::1/64\"]\n"},
	{"nat", "br-nat", "bridge = \"br-nat\"\n[bridges.br-nat]\nmodel = \"nat\"\naddress = \"192.168.100.1/24\"\nuplink = \"eth1\"\n"},
	{"bridged", "br-lan", "bridge = \"br-lan\"\n[bridges.br-lan]\nmodel = \"bridged\"\nuplink = \"eth0\"\n"},
	{"nat-dhcp", "br-dh", "bridge = \"br-dh\"\n[bridges.br-dh]\nmodel = \"nat\"\naddress = [\"192.168.100.1/24\", \"fd00:100::1/64\"]\nuplink = \"eth1\"\n[bridges.br-dh.dhcp]\n"},
}

// killEach kills the operation op at every change in turn, before and
// after it, with each signal. prepare makes the namespace and returns the
// state that must come back; after each kill, the commands in then run
// (with the product binary), and the namespace must be in that state.
func killEach(t *testing.T, name string, prepare func(t *testing.T) (*testEnv, []string), op []string, then [][]string) {
	for _, sig := range []string{"KILL", "TERM"} {
		for _, when := range []string{"before", "after"} {
			t.Run(name+"/"+sig+"/"+when, func(t *testing.T) {
				t.Parallel()
				for n := 1; n < 100; n++ {
					e, want := prepare(t)
					r, reached := e.runKilled(sig, fmt.Sprintf("%s:%d", when, n), op[0], op[1:]...)
					if !reached {
						if n == 1 {
							t.Fatalf("%s made no change (exit %d, %s)", op, r.code, r.stderr)
						}
						t.Logf("%s: killed at each of its %d changes", strings.Join(op, " "), n-1)
						return
					}
					switch {
					case sig == "KILL" && r.code != -1 && r.code != 128+9: // itself, or under a shell
						t.Fatalf("n=%d: SIGKILL did not kill it: exit %d", n, r.code)
					case sig == "TERM" && r.code != 0 && r.code != 75:
						t.Fatalf("n=%d: after SIGTERM, exit %d (want 75, or 0 when the last change was done): %s", n, r.code, r.stderr)
					case sig == "TERM" && r.code == 75 && strings.Count(strings.TrimSpace(r.stderr), "\n") != 0:
						t.Fatalf("n=%d: after SIGTERM, stderr is not one line: %q", n, r.stderr)
					}
					for _, cmd := range then {
						if r := e.run(cmd[0], cmd[1:]...); r.code != 0 {
							t.Fatalf("n=%d (%s %s): %s: exit %d: %s", n, sig, when, strings.Join(cmd, " "), r.code, r.stderr)
						}
					}
					if diff := cmp.Diff(want, wholeState(t, e.ns)); diff != "" {
						t.Fatalf("n=%d (%s %s): after %v the namespace differs (-want +got):\n%s", n, sig, when, then, diff)
					}
					if slices.Equal(then[len(then)-1], teardownAll) {
						// Nor a dnsmasq, nor a file of one, nor a hosts entry.
						if p := e.dnsmasqs(); len(p) != 0 {
							t.Fatalf("n=%d (%s %s): after %v a dnsmasq still runs: %v", n, sig, when, then, p)
						}
						if left := e.dirEntries("dnsmasq"); len(left) != 0 {
							t.Fatalf("n=%d (%s %s): after %v dnsmasq's files are left: %v", n, sig, when, then, left)
						}
					}
				}
				t.Fatal("never ran to completion")
			})
		}
	}
}

// fresh prepares the host of a model and wants it back as it is.
func fresh(policyText string) func(t *testing.T) (*testEnv, []string) {
	return func(t *testing.T) (*testEnv, []string) {
		e := killHost(t, policyText)
		return e, wholeState(t, e.ns)
	}
}

// after prepares the host, wants it back as it is, and first runs steps.
func after(policyText string, steps ...[]string) func(t *testing.T) (*testEnv, []string) {
	return func(t *testing.T) (*testEnv, []string) {
		e := killHost(t, policyText)
		want := wholeState(t, e.ns)
		for _, s := range steps {
			e.mustRun(0, s[0], s[1:]...)
		}
		return e, want
	}
}

var (
	teardownAll = []string{"ifhook", "teardown", "--all", "--force"}
	setup       = []string{"ifhook", "setup"}
)

// TestKillPointSetup kills `ifhook setup` of each model at every change;
// `ifhook teardown --all` then restores the host exactly, uplink addresses
// and routes, forwarding and ruleset included. Then the same with setup run
// again first: it finishes the job, and teardown still restores it all.
func TestKillPointSetup(t *testing.T) {
	nstest.RequireRoot(t)
	for _, md := range killModels {
		killEach(t, md.name+"/then teardown", fresh(md.policy), setup, [][]string{teardownAll})
		killEach(t, md.name+"/then setup", fresh(md.policy), setup, [][]string{setup, teardownAll})
	}
}

// TestKillPointTeardown kills `ifhook teardown` of each model at every
// change; teardown run again restores the host exactly.
func TestKillPointTeardown(t *testing.T) {
	nstest.RequireRoot(t)
	for _, md := range killModels {
		killEach(t, md.name, after(md.policy, setup), teardownAll, [][]string{teardownAll})
	}
}

// TestKillPointIfup kills qemu-ifup at every change: one that makes its
// bridge (nat, bridged) and one that joins a bridge that is there. The
// ifdown QEMU would run next (and teardown) restore the host exactly; an
// ifup run again first finishes the job, and the same restores it still.
func TestKillPointIfup(t *testing.T) {
	nstest.RequireRoot(t)
	up, down := []string{"qemu-ifup", "vnet0"}, []string{"qemu-ifdown", "vnet0"}
	for _, md := range killModels[2:] {
		killEach(t, md.name+"/makes the bridge/then ifdown", fresh(md.policy), up, [][]string{down, teardownAll})
		killEach(t, md.name+"/makes the bridge/then ifup", fresh(md.policy), up, [][]string{up, down, teardownAll})
	}
	joins := func(t *testing.T) (*testEnv, []string) {
		e := killHost(t, killModels[2].policy)
		e.mustRun(0, "ifhook", "setup")
		return e, wholeState(t, e.ns)
	}
	killEach(t, "joins a bridge/then ifdown", joins, up, [][]string{down})
	killEach(t, "joins a bridge/then ifup", joins, up, [][]string{up, down})
}

// TestKillPointIfupDHCP kills the qemu-ifup of a guest whose QEMU names
// its VM and MAC, on a bridge that serves DHCP, at every change: making
// the bridge, starting its dnsmasq, writing the guest's hosts entry. The
// ifdown and teardown that follow leave the host as it was, with no
// dnsmasq and no entry; an ifup run again first finishes the job.
func TestKillPointIfupDHCP(t *testing.T) {
	nstest.RequireRoot(t)
	fake := fakeQEMU(t)
	policy := killModels[len(killModels)-1].policy
	qemuUp := func(hook string) []string {
		return []string{fake, "-c", hook + " vnet0", "-name", "first", "-nic", "tap,ifname=vnet0,mac=52:54:00:10:00:01"}
	}
	up := qemuUp(filepath.Join(binDir, "killpoint", "qemu-ifup"))
	down := []string{"qemu-ifdown", "vnet0"}
	killEach(t, "makes the bridge/then ifdown", fresh(policy), up, [][]string{down, teardownAll})
	killEach(t, "makes the bridge/then ifup", fresh(policy), up, [][]string{qemuUp(filepath.Join(binDir, "qemu-ifup")), down, teardownAll})
}

// TestKillPointIfdown kills qemu-ifdown at every change; ifdown run again
// restores the TAP, and teardown the host.
func TestKillPointIfdown(t *testing.T) {
	nstest.RequireRoot(t)
	for _, md := range killModels[2:] {
		killEach(t, md.name, after(md.policy, []string{"qemu-ifup", "vnet0"}), []string{"qemu-ifdown", "vnet0"},
			[][]string{{"qemu-ifdown", "vnet0"}, teardownAll})
	}
}

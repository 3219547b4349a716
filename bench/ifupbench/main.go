// Command ifupbench measures qemu-ifup implementations as whole processes,
// each call on a fresh TAP, interleaved round by round so that drift in the
// machine's speed hits every contender alike. It must run as root inside a
// network namespace of its own (and a mount namespace with sysfs remounted,
// for scripts that read /sys/class/net): bench/run.sh sets that up. It
// refuses to run in the machine's own network namespace.
//
// Usage: ifupbench -ifhook BIN [-debian SCRIPT] [-n ROUNDS] [-ports 1,1000] [-burst 256]
//
//	ifupbench -ifhook BIN -dhcp [-n ROUNDS]: ifup and ifdown on a nat
//	bridge that serves DHCP (its dnsmasq running, a hosts entry per
//	guest) against the same bridge without DHCP.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

type contender struct {
	name string
	argv func(tap string) []string
	env  []string
	down func(tap string) []string // detaches after each up; nil: ip, unmeasured
}

type sample struct {
	wall time.Duration
}

func main() {
	ifhookBin := flag.String("ifhook", "", "ifhook binary (required)")
	debian := flag.String("debian", "", "Debian-style qemu-ifup script (optional)")
	rounds := flag.Int("n", 300, "calls per contender per configuration")
	portsList := flag.String("ports", "1,1000", "ports already on the bridge, per configuration")
	burst := flag.Int("burst", 256, "concurrent ifups in the burst test (0: skip)")
	var variants []string
	flag.Func("variant", "also measure another ifhook binary: NAME=PATH[,VAR=VALUE...] (repeatable)", func(s string) error {
		variants = append(variants, s)
		return nil
	})
	policyFile := flag.String("policy", "", "ifhook policy (run.sh: the installed example, bridge = \"auto\"; default: a two-line one)")
	hostNS := flag.String("host-netns", "", "inode of the host's network namespace, which the bench refuses to run in (required)")
	dhcpMode := flag.Bool("dhcp", false, "compare ifup on a bridge that serves DHCP with the same bridge without it, and nothing else")
	flag.Parse()
	if *ifhookBin == "" {
		fail("-ifhook is required")
	}
	if err := refuseHostNamespace(*hostNS); err != nil {
		fail(err.Error())
	}
	work, err := os.MkdirTemp("", "ifupbench")
	check(err)
	defer os.RemoveAll(work)

	ifup := filepath.Join(work, "qemu-ifup")
	ifdown := filepath.Join(work, "qemu-ifdown")
	abs, _ := filepath.Abs(*ifhookBin)
	check(os.Symlink(abs, ifup))
	check(os.Symlink(abs, ifdown))
	syslogPath := filepath.Join(work, "log")
	sl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: syslogPath, Net: "unixgram"})
	check(err)
	defer sl.Close()
	go drain(sl)
	// Records live on tmpfs, as /run is on a real host.
	stateDir := filepath.Join(work, "state")
	check(os.Mkdir(stateDir, 0o700))
	if err := unix.Mount("tmpfs", stateDir, "tmpfs", 0, "size=64m,mode=0700"); err != nil {
		fmt.Fprintf(os.Stderr, "ifupbench: cannot mount tmpfs for the records (%v); they go to disk\n", err)
	} else {
		defer unix.Unmount(stateDir, 0)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "IFHOOK_STATE_DIR=" + stateDir, "IFHOOK_SYSLOG=" + syslogPath}
	if *policyFile != "" {
		env = append(env, "IFHOOK_CONFIG="+*policyFile)
	} else {
		env = append(env, "IFHOOK_CONFIG="+filepath.Join(work, "missing.toml"))
		check(os.WriteFile(filepath.Join(work, "missing.toml"), []byte("bridge = \"auto\"\nmac_prefix = \"52:54:00\"\n"), 0o644))
	}
	ipPath, err := lookPath("ip")
	check(err)

	ipUp := func(t string) []string { return []string{ipPath, "link", "set", "dev", t, "master", "br0", "up"} }
	ipDown := func(t string) []string { return []string{ipPath, "link", "set", "dev", t, "nomaster", "down"} }
	ups := []contender{
		{"ip link set", ipUp, env, ipDown},
		{"ifhook", func(t string) []string { return []string{ifup, t} }, env, func(t string) []string { return []string{ifdown, t} }},
	}
	for _, v := range variants {
		name, path, _ := strings.Cut(v, "=")
		path, extra, _ := strings.Cut(path, ",")
		venv := env
		if extra != "" {
			venv = append(slices.Clone(env), strings.Split(extra, ",")...)
		}
		abs, _ := filepath.Abs(path)
		dir := filepath.Join(work, name)
		check(os.MkdirAll(dir, 0o755))
		check(os.Symlink(abs, filepath.Join(dir, "qemu-ifup")))
		check(os.Symlink(abs, filepath.Join(dir, "qemu-ifdown")))
		ups = append(ups, contender{name,
			func(t string) []string { return []string{filepath.Join(dir, "qemu-ifup"), t} }, venv,
			func(t string) []string { return []string{filepath.Join(dir, "qemu-ifdown"), t} }})
	}
	if *debian != "" {
		d, _ := filepath.Abs(*debian)
		// Debian's qemu-ifdown does nothing; detach with ip, unmeasured.
		ups = append(ups, contender{"Debian qemu-ifup", func(t string) []string { return []string{"/bin/sh", d, t} }, env, nil})
	}

	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	check(err)
	br := setupBridge(h)
	if *dhcpMode {
		dhcpBench(h, work, ifup, ifdown, env, *rounds)
		return
	}
	fmt.Printf("ifupbench: %d calls per contender, %s, on %d CPUs, %s\n", *rounds, time.Now().Format(time.DateTime), nproc(), kernel())
	// Before the bridge fills: a Linux bridge takes at most 1024 ports.
	rssTest(h, ifup, ifdown, ipPath, env)
	if *burst > 0 {
		burstTest(h, br, ifup, ipPath, env, *burst)
	}
	for _, ps := range strings.Split(*portsList, ",") {
		ports, err := strconv.Atoi(strings.TrimSpace(ps))
		check(err)
		fill(h, br, ports)
		fmt.Printf("\n== %d port(s) on the bridge\n", countPorts(h, br))
		taps := make([][]string, len(ups))
		for i := range ups {
			taps[i] = makeTAPs(h, fmt.Sprintf("u%d", i), *rounds)
		}
		up, down := measure(ups, taps, *rounds, ipDown)
		report("ifup (fresh TAP)", ups, up, false)
		report("ifdown (attached TAP)", ups, down, true)
		for i := range ups {
			deleteTAPs(h, taps[i])
		}
	}
}

// rssTest reports the peak RSS of ifhook's ifup and ifdown, and of ip for
// comparison, through GNU time: the bench's own fork (vfork, sharing its
// memory until exec) would count the bench's RSS in the child's.
func rssTest(h *netlink.Handle, ifup, ifdown, ipPath string, env []string) {
	const gnuTime = "/usr/bin/time"
	if _, err := os.Stat(gnuTime); err != nil {
		fmt.Printf("\n== peak RSS: skipped (%s not installed; Debian package time)\n", gnuTime)
		return
	}
	taps := makeTAPs(h, "rss", 20)
	defer deleteTAPs(h, taps)
	peak := func(argv []string) int {
		max := 0
		out, err := os.CreateTemp("", "rss")
		check(err)
		defer os.Remove(out.Name())
		out.Close()
		args := append([]string{gnuTime, "-o", out.Name(), "-f", "%M"}, argv...)
		_, err = run(args, env)
		check(err)
		b, _ := os.ReadFile(out.Name())
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > max {
			max = n
		}
		return max
	}
	var up, down, ip int
	for _, t := range taps {
		up = max(up, peak([]string{ifup, t}))
		down = max(down, peak([]string{ifdown, t}))
		ip = max(ip, peak([]string{ipPath, "link", "set", "dev", t, "master", "br0", "up"}))
		_, err := run([]string{ipPath, "link", "set", "dev", t, "nomaster", "down"}, env)
		check(err)
	}
	fmt.Printf("\n== peak RSS over %d calls (GNU time)\nifhook qemu-ifup %.1f MiB, qemu-ifdown %.1f MiB; ip link set %.1f MiB\n",
		len(taps), float64(up)/1024, float64(down)/1024, float64(ip)/1024)
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "ifupbench:", msg)
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

// refuseHostNamespace stops the bench in the host's network namespace
// (as run.sh saw it before unsharing): it creates hundreds of links and must
// never do so on the host.
func refuseHostNamespace(hostIno string) error {
	if hostIno == "" {
		return fmt.Errorf("-host-netns is required; use bench/run.sh")
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return err
	}
	if strconv.FormatUint(st.Ino, 10) == hostIno {
		return fmt.Errorf("refusing to run in the host's network namespace; use bench/run.sh")
	}
	return nil
}

func lookPath(name string) (string, error) {
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func drain(c *net.UnixConn) {
	buf := make([]byte, 4096)
	for {
		if _, _, err := c.ReadFrom(buf); err != nil {
			return
		}
	}
}

func setupBridge(h *netlink.Handle) netlink.Link {
	lo, err := h.LinkByName("lo")
	check(err)
	check(h.LinkSetUp(lo))
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "br0"
	br := &netlink.Bridge{LinkAttrs: attrs}
	check(h.LinkAdd(br))
	link, err := h.LinkByName("br0")
	check(err)
	check(h.LinkSetUp(link))
	addr, _ := netlink.ParseAddr("192.0.2.1/24")
	check(h.AddrAdd(link, addr))
	// A default route through the bridge: what Debian's script and
	// bridge = "auto" look for.
	check(h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.ParseIP("192.0.2.254")}))
	return link
}

func makeTAPs(h *netlink.Handle, prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
		attrs := netlink.NewLinkAttrs()
		attrs.Name = names[i]
		check(h.LinkAdd(&netlink.Tuntap{LinkAttrs: attrs, Mode: netlink.TUNTAP_MODE_TAP}))
	}
	return names
}

func deleteTAPs(h *netlink.Handle, names []string) {
	for _, n := range names {
		if l, err := h.LinkByName(n); err == nil {
			h.LinkDel(l)
		}
	}
}

var fillers int

// fill attaches TAPs to the bridge until it has ports ports.
func fill(h *netlink.Handle, br netlink.Link, ports int) {
	for fillers < ports {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = fmt.Sprintf("fill%d", fillers)
		attrs.MasterIndex = br.Attrs().Index
		check(h.LinkAdd(&netlink.Tuntap{LinkAttrs: attrs, Mode: netlink.TUNTAP_MODE_TAP}))
		l, err := h.LinkByName(attrs.Name)
		check(err)
		check(h.LinkSetMaster(l, br))
		fillers++
	}
}

func countPorts(h *netlink.Handle, br netlink.Link) int {
	links, err := h.LinkList()
	check(err)
	n := 0
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			n++
		}
	}
	return n
}

// run forks and execs argv and waits for it, returning its wall time.
func run(argv, env []string) (sample, error) {
	start := time.Now()
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Env: env, Files: []uintptr{0, 1, 2}})
	if err != nil {
		return sample{}, err
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return sample{}, err
	}
	s := sample{wall: time.Since(start)}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return s, fmt.Errorf("%s: exit status %d", strings.Join(argv, " "), ws.ExitStatus())
	}
	return s, nil
}

// measure runs each contender's ifup once per round on its own fresh TAP,
// then its ifdown on the same TAP (so the bridge's port count stays put:
// a Linux bridge takes at most 1024 ports), in a new random order every
// round: a fixed rotation always runs the same contender after the same
// other, and which process ran just before shifts a whole-process time by
// several percent.
func measure(cs []contender, taps [][]string, rounds int, ipDown func(string) []string) (up, down [][]sample) {
	up = make([][]sample, len(cs))
	down = make([][]sample, len(cs))
	rng := rand.New(rand.NewPCG(1, 2)) // the same orders every run
	for r := range rounds {
		for _, i := range rng.Perm(len(cs)) {
			tap := taps[i][r]
			s, err := run(cs[i].argv(tap), cs[i].env)
			check(err)
			up[i] = append(up[i], s)
			if cs[i].down == nil {
				_, err = run(ipDown(tap), cs[i].env)
				check(err)
				continue
			}
			s, err = run(cs[i].down(tap), cs[i].env)
			check(err)
			down[i] = append(down[i], s)
		}
	}
	return up, down
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

func report(what string, cs []contender, res [][]sample, skipEmpty bool) {
	base := time.Duration(0)
	fmt.Printf("%-24s %9s %9s %9s %8s\n", what, "median", "p10", "p90", "vs ip")
	for i, c := range cs {
		if len(res[i]) == 0 {
			continue
		}
		walls := make([]time.Duration, len(res[i]))
		for j, s := range res[i] {
			walls[j] = s.wall
		}
		med := quantile(walls, 0.5)
		if i == 0 {
			base = med
		}
		fmt.Printf("%-24s %9s %9s %9s %7.2fx\n", c.name, round(med), round(quantile(walls, 0.1)), round(quantile(walls, 0.9)),
			float64(med)/float64(base))
	}
}

func round(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

// burstTest starts n ifups at once, as a host starting n VMs does, and
// checks that every TAP ends up on the bridge.
// burstTest starts n ifups at once, as a host starting n VMs does, and
// the same n attaches with ip(8) for comparison: all must end attached.
func burstTest(h *netlink.Handle, br netlink.Link, ifup, ipPath string, env []string, n int) {
	run := func(argv func(tap string) []string) (time.Duration, int, int) {
		taps := makeTAPs(h, "b", n)
		defer deleteTAPs(h, taps)
		start := time.Now()
		pids := make([]int, n)
		for i, t := range taps {
			a := argv(t)
			pid, err := syscall.ForkExec(a[0], a, &syscall.ProcAttr{Env: env, Files: []uintptr{0, 1, 2}})
			check(err)
			pids[i] = pid
		}
		failed := 0
		for _, pid := range pids {
			var ws syscall.WaitStatus
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			check(err)
			if ws.ExitStatus() != 0 {
				failed++
			}
		}
		wall := time.Since(start)
		attached := 0
		for _, t := range taps {
			l, err := h.LinkByName(t)
			if err == nil && l.Attrs().MasterIndex == br.Attrs().Index && l.Attrs().Flags&net.FlagUp != 0 {
				attached++
			}
		}
		return wall, attached, failed
	}
	ipWall, ipAttached, _ := run(func(t string) []string { return []string{ipPath, "link", "set", "dev", t, "master", "br0", "up"} })
	wall, attached, failed := run(func(t string) []string { return []string{ifup, t} })
	fmt.Printf("\n== burst: %d concurrent ifups\n%d attached and up, %d failed, all done in %s (%.2fms per ifup); %d ip calls: %s (%d attached); ifhook / ip: %.2fx\n",
		n, attached, failed, wall.Round(time.Millisecond), float64(wall)/float64(n)/1e6, n, ipWall.Round(time.Millisecond), ipAttached, float64(wall)/float64(ipWall))
	if attached != n || failed != 0 {
		os.Exit(1)
	}
}

func nproc() int {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil {
		return 0
	}
	return set.Count()
}

func kernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return "Linux " + unix.ByteSliceToString(u.Release[:])
}

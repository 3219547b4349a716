package guest

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ifhook/ifhook/ifhook/nstest"
)

// Forever, as Options.Hold, keeps the guest up until it is stopped.
const Forever time.Duration = -1

// Options describe one guest. Only TAP and Script are usually needed, plus
// the addresses and ping targets of the scenario.
type Options struct {
	// Name is the VM's name, given to QEMU as -name NAME: it is what
	// ifhook reads from QEMU's command line as the VM's name, and labels
	// the guest in logs. Default: TAP, else "guest". It may not contain
	// ',', '=' or white space.
	Name string

	// TAP is the host-side interface (-netdev tap,ifname=): QEMU opens it
	// if it exists in the namespace, else creates it. Empty lets the kernel
	// pick a name (tap0, ...), which the script then gets as $1.
	TAP string
	// Script and DownScript are run by QEMU, inside the namespace, with
	// the TAP name as $1, after opening the TAP and after closing it
	// (exit, SIGTERM; not SIGKILL). Empty means none ("no").
	Script, DownScript string
	// MAC of the guest's NIC; default a random 52:54:00:xx:xx:xx, so that
	// guests sharing a bridge never collide (QEMU's own default is fixed).
	MAC string

	// Addrs are the NIC's static addresses, "192.0.2.10/24" or
	// "2001:db8::10/64".
	Addrs []string
	// Gateway, if set, is the default route (IPv4 or IPv6). An IPv4
	// Gateway cannot be combined with DHCP, whose lease alone decides.
	Gateway string

	// DHCP asks for an IPv4 lease with busybox udhcpc once the NIC has
	// carrier, and applies it: the address and prefix; a default route
	// only if the server sent a router (option 3); the MTU if it sent
	// option 26 (which the guest asks for); the DNS servers, which
	// Resolve then uses. Result.DHCP says what came, or that no lease did
	// within NetWait (OK false), which is a result, not an error. The
	// lease is never renewed: guests are short-lived.
	DHCP bool
	// DHCPHostname, if set, is sent as the client's host name (option 12).
	// By default none is sent, so any name the server gives the guest
	// comes from the server's side.
	DHCPHostname string
	// SLAAC makes the NIC accept router advertisements (accept_ra=2,
	// autoconf=1, forwarding=0; without SLAAC, RAs are ignored) and wait
	// up to NetWait for a global address from one: Result.SLAAC. It may be
	// combined with DHCP, which then comes first.
	SLAAC bool
	// NetWait bounds the wait for a DHCP lease and for a SLAAC address,
	// each (default 15s).
	NetWait time.Duration

	// Resolve lists names the guest looks up with busybox nslookup once
	// its network is configured (before its pings), each retried until it
	// resolves or ResolveWait has passed: one Result.Lookups entry each,
	// in order.
	Resolve []string
	// DNSServer is the server Resolve asks; default: the first DNS server
	// of the DHCP lease, else none (nslookup then asks 127.0.0.1, where
	// nothing answers).
	DNSServer string
	// ResolveWait is how long each name is retried (default 10s), and so
	// the whole cost of a name that must not resolve.
	ResolveWait time.Duration

	// Ping lists targets; Wait reports one Ping result for each, in order.
	Ping []string
	// PingWait is how long the guest keeps trying each target before it
	// reports it unreachable (default 10s): long enough for a bridge port
	// and ARP to settle, and the whole cost of each negative check.
	PingWait time.Duration
	// Hold keeps the guest up (answering pings) this long after its pings
	// before it powers off; Forever holds until Stop. Zero powers off at
	// once, which ends QEMU and so runs DownScript.
	Hold time.Duration

	// Memory in MiB (default 128).
	Memory int
	// Accel forces "kvm" or "tcg"; default: IFHOOK_GUEST_ACCEL, else KVM
	// if a probe guest boots with it, else TCG.
	Accel string
	// NetdevOpts and DeviceOpts are appended to -netdev tap,... and to
	// -device virtio-net-pci,... (e.g. "vhost=on", "mq=on").
	NetdevOpts, DeviceOpts []string
	// KernelArgs are appended to the kernel command line.
	KernelArgs []string
	// QEMUArgs are appended to QEMU's arguments.
	QEMUArgs []string
	// Env is added to QEMU's environment ("KEY=value"), which QEMU passes
	// on to Script and DownScript.
	Env []string

	// Netdev, when set, is the whole -netdev option instead of the tap
	// one Script and TAP describe, e.g. "bridge,id=n0,br=br0,helper=P"
	// for the bridge helper; it must define the backend n0.
	Netdev string
	// Wrap runs QEMU through a command, e.g. {"setpriv", "--reuid=N",
	// ...}: QEMU's path and arguments follow Wrap's.
	Wrap []string
	// OnThread runs on the thread that starts QEMU, after it entered
	// the network namespace and before QEMU starts: e.g. to enter a
	// mount namespace, which the child then shares.
	OnThread func() error
}

// Ping is the outcome for one target.
type Ping struct {
	Target string
	OK     bool // a reply came back within PingWait
	Tries  int  // echo requests sent
}

// Lease is what the DHCP server gave (Options.DHCP).
type Lease struct {
	OK       bool         // a lease came within NetWait; nothing else is set otherwise
	IP       netip.Prefix // the address, with the prefix length of the netmask
	Router   netip.Addr   // first router (option 3); invalid: none was sent
	DNS      []netip.Addr // option 6
	MTU      int          // option 26; 0: none was sent
	Lease    time.Duration
	Hostname string     // option 12 as the server sent it; "": none
	Domain   string     // option 15; "": none
	Server   netip.Addr // the server identifier (option 54)
}

// Autoconf is what router advertisements gave (Options.SLAAC).
type Autoconf struct {
	OK bool         // a global address came within NetWait
	IP netip.Prefix // that address (made by the kernel from an RA prefix)
	// Router is the gateway of the NIC's IPv6 default route (an RA's
	// link-local source, or Options.Gateway); invalid: none (e.g. router
	// lifetime 0).
	Router netip.Addr
	MTU    int // the NIC's IPv6 MTU (/proc/sys/net/ipv6/conf/IF/mtu): an RA's MTU option, else the link's
}

// Lookup is the outcome for one name (Options.Resolve).
type Lookup struct {
	Name  string
	OK    bool         // some address came back within ResolveWait
	Addrs []netip.Addr // A and AAAA answers, in nslookup's order
	Tries int
	// Err is nslookup's last complaint when !OK: NXDOMAIN, REFUSED,
	// SERVFAIL, "timeout" (no server answered), ...
	Err string
}

// Result is what a guest reported.
type Result struct {
	Pings []Ping
	// DHCP is the lease (nil unless Options.DHCP); SLAAC the router
	// advertisement's address (nil unless Options.SLAAC).
	DHCP  *Lease
	SLAAC *Autoconf
	// Lookups are the names of Options.Resolve, in order.
	Lookups []Lookup
	// Via4 and Via6 are the gateways of the NIC's default routes once its
	// network was configured (static, DHCP or RA); invalid: no default
	// route of that family.
	Via4, Via6 netip.Addr
	// Ready is the time from starting QEMU to the guest's network being
	// configured (boot time, mostly, plus DHCP and SLAAC); Done to its
	// last result.
	Ready, Done time.Duration
}

// Resolved returns the addresses name resolved to, nil if it did not (or
// was not asked).
func (r Result) Resolved(name string) []netip.Addr {
	for _, l := range r.Lookups {
		if l.Name == name && l.OK {
			return l.Addrs
		}
	}
	return nil
}

// OK reports whether target replied. Wait fails unless every target has a
// result, so a false here means a failed ping, not a missing one.
func (r Result) OK(target string) bool {
	for _, p := range r.Pings {
		if p.Target == target {
			return p.OK
		}
	}
	return false
}

// Guest is one running QEMU.
type Guest struct {
	Name  string
	Accel string    // "kvm" or "tcg"
	MAC   string    // of the guest's NIC
	Cmd   *exec.Cmd // the QEMU process: Cmd.Process.Pid, or SIGKILL it

	opts    Options
	con     *console
	started time.Time
	exited  chan struct{}
	waitErr error // of Cmd.Wait, valid once exited is closed

	stopOnce sync.Once
	mu       sync.Mutex
	logShown bool // the console log was already handed out in an error
}

// How long a guest may take to boot to READY, by accelerator. TCG boots of
// the Debian kernel take a few seconds alone, but CI machines are shared.
var bootBudget = map[string]time.Duration{"kvm": 30 * time.Second, "tcg": 120 * time.Second}

// stopGrace is how long Stop waits after SIGTERM (QEMU running DownScript)
// before it uses SIGKILL.
const stopGrace = 15 * time.Second

// Start boots a guest inside ns with opts. The QEMU process is stopped
// (SIGTERM, then SIGKILL) when the test ends, whatever happens; if the test
// failed, its console log is logged too.
func (img *Image) Start(tb testing.TB, ns *nstest.NS, opts Options) *Guest {
	tb.Helper()
	qemu, err := qemuPath()
	if err != nil {
		skipOrFail(tb, err)
	}
	if opts.MAC == "" {
		opts.MAC = randomMAC()
	} else if m, err := net.ParseMAC(opts.MAC); err == nil {
		opts.MAC = m.String() // as the guest will print it
	}
	if opts.Name == "" {
		opts.Name = opts.TAP
		if opts.Name == "" {
			opts.Name = "guest"
		}
	}
	if opts.Accel == "" {
		opts.Accel = img.accel(tb, ns, qemu)
	}
	args, err := img.args(opts)
	if err != nil {
		tb.Fatalf("guest %s: %v", opts.Name, err)
	}
	g, err := launch(ns, qemu, args, opts)
	if err != nil {
		tb.Fatalf("guest %s: %v", opts.Name, err)
	}
	tb.Cleanup(func() {
		g.Stop()
		g.mu.Lock()
		shown := g.logShown
		g.mu.Unlock()
		if tb.Failed() && !shown {
			tb.Logf("console of guest %s (%s):\n%s", g.Name, g.Accel, g.Log())
		}
	})
	return g
}

func qemuPath() (string, error) {
	p, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return "", missing("no qemu-system-x86_64 (package qemu-system-x86)")
	}
	return p, nil
}

// args builds QEMU's command line, validating opts on the way: everything
// ends up in comma-separated QEMU options or on the kernel command line,
// where a stray comma or space would silently mean something else.
func (img *Image) args(o Options) ([]string, error) {
	mac, err := net.ParseMAC(o.MAC)
	if err != nil || len(mac) != 6 || mac[0]&1 != 0 {
		return nil, fmt.Errorf("bad MAC %q (want a unicast Ethernet address)", o.MAC)
	}
	if _, ok := bootBudget[o.Accel]; !ok {
		return nil, fmt.Errorf("bad Accel %q: want kvm or tcg", o.Accel)
	}
	if strings.ContainsAny(o.TAP, ", /") || len(o.TAP) > 15 {
		return nil, fmt.Errorf("bad TAP name %q", o.TAP)
	}
	if strings.ContainsAny(o.Name, ",= \t\n") {
		// QEMU reads -name as an option list: "a=b" or "a,b" would not be
		// the name.
		return nil, fmt.Errorf("bad Name %q", o.Name)
	}
	kargs := []string{"ifhook.mac=" + mac.String()}
	var addrs []string
	for _, a := range o.Addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("bad address: %v", err)
		}
		addrs = append(addrs, p.String())
	}
	if len(addrs) > 0 {
		kargs = append(kargs, "ifhook.ip="+strings.Join(addrs, ","))
	}
	if o.Gateway != "" {
		gw, err := netip.ParseAddr(o.Gateway)
		if err != nil {
			return nil, fmt.Errorf("bad gateway: %v", err)
		}
		kargs = append(kargs, "ifhook.gw="+gw.String())
	}
	if o.DHCP {
		if gw, err := netip.ParseAddr(o.Gateway); err == nil && gw.Is4() {
			return nil, fmt.Errorf("an IPv4 Gateway with DHCP: the lease alone decides the default route")
		}
		kargs = append(kargs, "ifhook.dhcp=1")
		if o.DHCPHostname != "" {
			if !validName(o.DHCPHostname) {
				return nil, fmt.Errorf("bad DHCPHostname %q", o.DHCPHostname)
			}
			kargs = append(kargs, "ifhook.hostname="+o.DHCPHostname)
		}
	} else if o.DHCPHostname != "" {
		return nil, fmt.Errorf("DHCPHostname without DHCP")
	}
	if o.SLAAC {
		kargs = append(kargs, "ifhook.slaac=1")
	}
	if o.DHCP || o.SLAAC {
		kargs = append(kargs, "ifhook.netwait="+strconv.Itoa(seconds(o.netWait())))
	}
	for _, n := range o.Resolve {
		if !validName(n) {
			// Results are matched to names by their text, too.
			return nil, fmt.Errorf("bad name to resolve %q", n)
		}
	}
	if len(o.Resolve) > 0 {
		kargs = append(kargs, "ifhook.resolve="+strings.Join(o.Resolve, ","),
			"ifhook.rwait="+strconv.Itoa(seconds(o.resolveWait())))
	}
	if o.DNSServer != "" {
		a, err := netip.ParseAddr(o.DNSServer)
		if err != nil {
			return nil, fmt.Errorf("bad DNSServer: %v", err)
		}
		kargs = append(kargs, "ifhook.dns="+a.String())
	}
	var targets []string
	for _, t := range o.Ping {
		a, err := netip.ParseAddr(t)
		if err != nil {
			return nil, fmt.Errorf("bad ping target: %v", err)
		}
		if a.String() != t {
			// Results are matched to targets by their text.
			return nil, fmt.Errorf("ping target %q: write it as %q", t, a)
		}
		targets = append(targets, t)
	}
	if len(targets) > 0 {
		kargs = append(kargs, "ifhook.ping="+strings.Join(targets, ","),
			"ifhook.wait="+strconv.Itoa(seconds(o.pingWait())))
	}
	switch {
	case o.Hold == Forever:
		kargs = append(kargs, "ifhook.hold=-1")
	case o.Hold > 0:
		kargs = append(kargs, "ifhook.hold="+strconv.Itoa(seconds(o.Hold)))
	case o.Hold < 0:
		return nil, fmt.Errorf("bad Hold %v (use Forever)", o.Hold)
	}
	for _, k := range o.KernelArgs {
		if k == "" || strings.ContainsAny(k, " \t\n") {
			return nil, fmt.Errorf("bad kernel argument %q", k)
		}
	}

	netdev := "tap,id=n0,script=" + qemuOpt(orNo(o.Script)) + ",downscript=" + qemuOpt(orNo(o.DownScript))
	if o.TAP != "" {
		netdev += ",ifname=" + o.TAP
	}
	if o.Netdev != "" {
		if !strings.Contains(","+o.Netdev+",", ",id=n0,") {
			return nil, fmt.Errorf("netdev %q defines no id=n0 (Options.Netdev)", o.Netdev)
		}
		netdev = o.Netdev
	}
	for _, x := range o.NetdevOpts {
		netdev += "," + x
	}
	// romfile= (none): the PXE option ROM is useless here, slows the boot,
	// and would need the ipxe-qemu package.
	device := "virtio-net-pci,netdev=n0,romfile=,mac=" + mac.String()
	for _, x := range o.DeviceOpts {
		device += "," + x
	}
	args := append(img.baseArgs(o, append(kargs, o.KernelArgs...)),
		"-netdev", netdev, "-device", device)
	return append(args, o.QEMUArgs...), nil
}

// baseArgs is a guest with no NIC: machine, console, kernel.
func (img *Image) baseArgs(o Options, kargs []string) []string {
	mem := o.Memory
	if mem == 0 {
		mem = 128
	}
	// Keep the kernel quiet and quick: the serial console is emulated a
	// byte at a time, which under TCG costs real seconds.
	cmdline := append([]string{"console=ttyS0", "quiet", "panic=-1"}, kargs...)
	args := []string{
		"-name", qemuOpt(cmp.Or(o.Name, "guest")),
		"-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "stdio",
		"-no-reboot", // panic=-1 and poweroff both end QEMU
		"-accel", o.Accel,
		"-m", strconv.Itoa(mem), "-smp", "1",
		"-kernel", img.Kernel, "-initrd", img.Initrd,
		"-append", strings.Join(cmdline, " "),
	}
	return args
}

func (o Options) pingWait() time.Duration {
	if o.PingWait > 0 {
		return o.PingWait
	}
	return 10 * time.Second
}

func (o Options) netWait() time.Duration {
	if o.NetWait > 0 {
		return o.NetWait
	}
	return 15 * time.Second
}

func (o Options) resolveWait() time.Duration {
	if o.ResolveWait > 0 {
		return o.ResolveWait
	}
	return 10 * time.Second
}

func seconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// validName is a host or domain name as it may go on the kernel command
// line and into the guest's shell words: letters, digits, '-', '_' and
// dots between labels.
func validName(n string) bool {
	if n == "" || len(n) > 253 {
		return false
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func orNo(s string) string {
	if s == "" {
		return "no"
	}
	return s
}

// qemuOpt escapes a value inside a QEMU option list, where "," separates.
func qemuOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func randomMAC() string {
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}

// launch starts QEMU inside ns. The process is forked from a thread locked
// inside the namespace that then stays blocked in Cmd.Wait for as long as
// QEMU runs, which is what lets us set Pdeathsig: the kernel sends it when
// the *thread* that forked the child ends, so with nstest's throwaway
// threads (NS.Start) it would kill QEMU at once. Here it only fires if the
// test process itself dies (a test timeout, a crash), and takes QEMU along.
// (Hence ns.Do around Start and Wait, rather than ns.Start.)
func launch(ns *nstest.NS, qemu string, args []string, o Options) (*Guest, error) {
	g := &Guest{
		Name:   o.Name,
		Accel:  o.Accel,
		MAC:    o.MAC,
		opts:   o,
		con:    newConsole(),
		exited: make(chan struct{}),
	}
	cmd := exec.Command(qemu, args...)
	if len(o.Wrap) > 0 {
		cmd = exec.Command(o.Wrap[0], append(append(o.Wrap[1:len(o.Wrap):len(o.Wrap)], qemu), args...)...)
	}
	cmd.Stdout = g.con
	cmd.Stderr = g.con // QEMU's own complaints belong in the same log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if len(o.Env) > 0 {
		cmd.Env = append(os.Environ(), o.Env...)
	}
	// A script's background child could hold the console pipe open after
	// QEMU has gone; do not let that hang Wait.
	cmd.WaitDelay = 5 * time.Second
	g.Cmd = cmd

	started := make(chan error, 1)
	go func() {
		err := ns.Do(func() error {
			if o.OnThread != nil {
				if err := o.OnThread(); err != nil {
					return err
				}
			}
			g.started = time.Now()
			g.con.start = g.started
			if err := cmd.Start(); err != nil {
				return err
			}
			started <- nil
			g.waitErr = cmd.Wait()
			close(g.exited)
			return nil
		})
		if err != nil {
			started <- err // buffered, and nil was never sent
		}
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", qemu, err)
	}
	return g, nil
}

// PID is QEMU's process id.
func (g *Guest) PID() int { return g.Cmd.Process.Pid }

// Log returns the console output so far (the guest's serial console and
// QEMU's own stdout/stderr).
func (g *Guest) Log() string { return g.con.String() }

// Exited is closed once QEMU has exited and been reaped.
func (g *Guest) Exited() <-chan struct{} { return g.exited }

// DefaultTimeout is what Wait uses for a zero timeout: the boot budget of
// the accelerator plus every wait the guest was given (NetWait for DHCP
// and for SLAAC, ResolveWait for each name, PingWait for each target).
func (g *Guest) DefaultTimeout() time.Duration {
	o := g.opts
	d := bootBudget[g.Accel] + time.Duration(len(o.Ping))*(o.pingWait()+2*time.Second)
	d += time.Duration(len(o.Resolve)) * (o.resolveWait() + 3*time.Second)
	for _, on := range []bool{o.DHCP, o.SLAAC} {
		if on {
			d += o.netWait() + 3*time.Second
		}
	}
	return d
}

// Wait waits until the guest has reported on everything it was asked
// (DHCP, SLAAC, names, ping targets; at once for a guest with none, which
// is then just booted and configured). Its error,
// for a timeout, a setup failure in the guest or QEMU exiting early,
// carries the whole console log. timeout <= 0 means DefaultTimeout.
func (g *Guest) Wait(timeout time.Duration) (Result, error) {
	if timeout <= 0 {
		timeout = g.DefaultTimeout()
	}
	if err := g.waitFor(g.con.done, "the results", timeout); err != nil {
		return Result{}, err
	}
	res := g.con.result()
	if err := g.con.parseError(); err != nil {
		return res, g.fail(err)
	}
	if g.opts.DHCP != (res.DHCP != nil) || g.opts.SLAAC != (res.SLAAC != nil) {
		return res, g.fail(fmt.Errorf("reported DHCP %v and SLAAC %v, asked DHCP %v and SLAAC %v",
			res.DHCP != nil, res.SLAAC != nil, g.opts.DHCP, g.opts.SLAAC))
	}
	if len(res.Lookups) != len(g.opts.Resolve) {
		return res, g.fail(fmt.Errorf("reported %d name lookups for %d names", len(res.Lookups), len(g.opts.Resolve)))
	}
	for i, l := range res.Lookups {
		if l.Name != g.opts.Resolve[i] {
			return res, g.fail(fmt.Errorf("lookup %d is for %s, want %s", i, l.Name, g.opts.Resolve[i]))
		}
	}
	if len(res.Pings) != len(g.opts.Ping) {
		return res, g.fail(fmt.Errorf("reported %d ping results for %d targets", len(res.Pings), len(g.opts.Ping)))
	}
	for i, p := range res.Pings {
		if p.Target != g.opts.Ping[i] {
			return res, g.fail(fmt.Errorf("result %d is for %s, want %s", i, p.Target, g.opts.Ping[i]))
		}
	}
	return res, nil
}

// WaitReady waits until the guest's network is configured (it then answers
// pings), e.g. before another guest pings it. timeout <= 0 means the boot
// budget.
func (g *Guest) WaitReady(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = bootBudget[g.Accel]
	}
	return g.waitFor(g.con.ready, "READY", timeout)
}

func (g *Guest) waitFor(ch <-chan struct{}, what string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-g.con.failed:
		return g.fail(fmt.Errorf("guest error: %s", g.con.errorMsg()))
	case <-g.exited:
		// Cmd.Wait returns only after the output is all read and parsed,
		// so a marker printed before exiting has been seen by now.
		select {
		case <-ch:
			return nil
		default:
		}
		return g.fail(fmt.Errorf("QEMU exited (%v) before %s", g.waitErr, what))
	case <-t.C:
		return g.fail(fmt.Errorf("%s did not come within %v (%s)", what, timeout, g.Accel))
	}
}

// fail wraps err with the guest's name and console log.
func (g *Guest) fail(err error) error {
	g.mu.Lock()
	g.logShown = true
	g.mu.Unlock()
	return fmt.Errorf("guest %s: %w\n--- console (%s, pid %d, %v since start) ---\n%s--- end of console ---",
		g.Name, err, g.Accel, g.PID(), time.Since(g.started).Round(time.Millisecond), g.Log())
}

// WaitExit waits for QEMU to exit by itself (the guest powering off after
// Hold), and returns its exit error.
func (g *Guest) WaitExit(timeout time.Duration) error {
	select {
	case <-g.exited:
		return g.waitErr
	case <-time.After(timeout):
		return g.fail(fmt.Errorf("QEMU still running after %v", timeout))
	}
}

// Stop ends QEMU: SIGTERM, which QEMU handles by shutting down and running
// DownScript, then SIGKILL if it is still there after a grace period. It
// returns once QEMU is reaped; calling it again does nothing.
func (g *Guest) Stop() {
	g.stopOnce.Do(func() {
		select {
		case <-g.exited:
			return
		default:
		}
		// By PID, through os.Process: until Cmd.Wait has reaped it the
		// PID cannot be reused, and after, Signal refuses.
		_ = g.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(stopGrace):
			_ = g.Cmd.Process.Kill()
			<-g.exited
		}
	})
}

// Kill ends QEMU with SIGKILL (no DownScript runs: the crash case) and
// waits until it is reaped.
func (g *Guest) Kill() {
	_ = g.Cmd.Process.Kill()
	<-g.exited
}

// console collects QEMU's output and picks out the guest's marker lines
// ("IFHOOK-GUEST WORD key=value..."), as they arrive.
type console struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	scanned int // bytes of buf already split into lines
	start   time.Time

	ready, done, failed, probed chan struct{}
	res                         Result
	errMsg                      string
	badLine                     error // the first marker line that did not parse
}

func newConsole() *console {
	return &console{
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
		failed: make(chan struct{}),
		probed: make(chan struct{}),
	}
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	for {
		rest := c.buf.Bytes()[c.scanned:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		c.line(strings.TrimRight(string(rest[:i]), "\r"))
		c.scanned += i + 1
	}
	return len(p), nil
}

const marker = "IFHOOK-GUEST "

func (c *console) line(l string) {
	i := strings.Index(l, marker)
	if i < 0 {
		return
	}
	word, rest, _ := strings.Cut(l[i+len(marker):], " ")
	switch word {
	case "READY":
		c.res.Ready = time.Since(c.start)
		c.noteBad(c.res.parseReady(rest))
		closeOnce(c.ready)
	case "RESULT":
		c.noteBad(c.res.parseResult(rest))
	case "DONE":
		c.res.Done = time.Since(c.start)
		closeOnce(c.done)
	case "ERROR":
		c.errMsg = rest
		closeOnce(c.failed)
	case "PROBE":
		closeOnce(c.probed)
	}
}

func (c *console) noteBad(err error) {
	if err != nil && c.badLine == nil {
		c.badLine = err
	}
}

func (c *console) parseError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.badLine
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *console) result() Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.res.clone()
}

func (c *console) errorMsg() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errMsg
}

// The accelerator is chosen once per process: probing costs a boot.
var accelChoice struct {
	mu     sync.Mutex
	name   string
	reason string
}

// probeTimeout bounds the KVM probe boot, which takes about a second when
// KVM works; when it does not, the guest hangs or dies early. A broken
// KVM thus costs 10 s per test process: set IFHOOK_GUEST_ACCEL=tcg there.
const probeTimeout = 10 * time.Second

// accel returns "kvm" or "tcg". /dev/kvm existing is not enough: nested
// or restricted KVM may accept the VM and then hang or crash it, so a
// probe guest has to boot under KVM to the point where /init runs.
// IFHOOK_GUEST_ACCEL=kvm|tcg skips the probe.
func (img *Image) accel(tb testing.TB, ns *nstest.NS, qemu string) string {
	tb.Helper()
	accelChoice.mu.Lock()
	defer accelChoice.mu.Unlock()
	if accelChoice.name != "" {
		return accelChoice.name
	}
	name, reason := "tcg", ""
	switch env := os.Getenv("IFHOOK_GUEST_ACCEL"); env {
	case "kvm", "tcg":
		name, reason = env, "IFHOOK_GUEST_ACCEL"
	case "":
		if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
			reason = fmt.Sprintf("no usable /dev/kvm: %v", err)
		} else {
			f.Close()
			start := time.Now()
			if err := img.probe(ns, qemu, "kvm"); err != nil {
				reason = fmt.Sprintf("KVM probe failed: %v", err)
			} else {
				name, reason = "kvm", fmt.Sprintf("KVM probe booted in %v", time.Since(start).Round(time.Millisecond))
			}
		}
	default:
		tb.Fatalf("IFHOOK_GUEST_ACCEL=%q: want kvm or tcg", env)
	}
	accelChoice.name, accelChoice.reason = name, reason
	tb.Logf("guest: using %s (%s)", name, reason)
	return name
}

// probe boots a NIC-less guest that only reports PROBE and powers off.
func (img *Image) probe(ns *nstest.NS, qemu, accel string) error {
	o := Options{Name: "probe-" + accel, Accel: accel}
	g, err := launch(ns, qemu, img.baseArgs(o, []string{"ifhook.probe=1"}), o)
	if err != nil {
		return err
	}
	defer g.Kill()
	select {
	case <-g.con.probed:
		return nil
	case <-g.exited:
		select {
		case <-g.con.probed:
			return nil
		default:
		}
		return fmt.Errorf("QEMU exited (%v) before /init ran: %s", g.waitErr, lastLines(g.Log(), 5))
	case <-time.After(probeTimeout):
		return fmt.Errorf("no boot within %v: %s", probeTimeout, lastLines(g.Log(), 5))
	}
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}

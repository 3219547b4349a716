// Package nstest gives tests throwaway network namespaces, so that nothing a
// test does can reach the machine's own network. It is for tests only.
//
// A namespace is made by unshare(2) on a locked thread that is thrown away
// afterwards, so the test's own thread never moves; everything else reaches
// it through handles bound to it (netlink.Handle, rtnl.Conn) or runs on a
// throwaway thread that has entered it (NS.Do), which is also how a child
// process is started inside it (NS.Start, NS.Run). Nothing is bind-mounted:
// when the last handle closes, the namespace and every link in it go away,
// even if the test crashed.
package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is a network namespace that lives until Close.
type NS struct {
	Handle *netlink.Handle // bound to the namespace
	Conn   *rtnl.Conn      // ifhook's own connection, bound to it
	fd     netns.NsHandle
}

// RequireRoot skips the test when it cannot create namespaces, and fails it
// instead under CI (CI=true), where root tests must run.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("needs root (CAP_NET_ADMIN) to create network namespaces, and CI is set: run the tests as root")
	}
	tb.Skip("needs root (CAP_NET_ADMIN) to create network namespaces; run as root: sudo go test ./...")
}

// New returns a fresh namespace with lo up, closed at the end of the test.
func New(tb testing.TB) *NS {
	tb.Helper()
	RequireRoot(tb)
	ns, err := Create()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ns.Close)
	return ns
}

// Create makes a namespace without moving the caller's thread.
func Create() (*NS, error) {
	var fd netns.NsHandle
	err := onThrowawayThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		var err error
		fd, err = netns.Get()
		return err
	})
	if err != nil {
		return nil, err
	}
	ns := &NS{fd: fd}
	if ns.Handle, err = netlink.NewHandleAt(fd, unix.NETLINK_ROUTE); err != nil {
		fd.Close()
		return nil, err
	}
	if ns.Conn, err = rtnl.OpenAt(fd); err != nil {
		ns.Close()
		return nil, err
	}
	lo, err := ns.Handle.LinkByName("lo")
	if err == nil {
		err = ns.Handle.LinkSetUp(lo)
	}
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("set lo up: %w", err)
	}
	return ns, nil
}

// Close releases the namespace; it vanishes with the last reference.
func (ns *NS) Close() {
	if ns.Conn != nil {
		ns.Conn.Close()
		ns.Conn = nil
	}
	if ns.Handle != nil {
		ns.Handle.Close()
		ns.Handle = nil
	}
	if ns.fd.IsOpen() {
		ns.fd.Close()
	}
}

// FD returns the namespace's file descriptor (for nftables.WithNetNSFd and
// the like). It stays owned by ns.
func (ns *NS) FD() int { return int(ns.fd) }

// Handle returns the namespace handle (netns.NsHandle).
func (ns *NS) NsHandle() netns.NsHandle { return ns.fd }

// Path returns a /proc path naming the namespace, usable with
// `nsenter --net=PATH` while ns is open.
func (ns *NS) Path() string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.fd) }

// Do runs f on a thread inside the namespace, for what follows the thread
// rather than a handle: creating a TAP (/dev/net/tun), /proc/sys/net,
// starting a child process.
func (ns *NS) Do(f func() error) error {
	return onThrowawayThread(func() error {
		if err := unix.Setns(int(ns.fd), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		return f()
	})
}

// Start starts cmd inside the namespace: a child inherits the namespace of
// the thread that forks it.
func (ns *NS) Start(cmd *exec.Cmd) error { return ns.Do(cmd.Start) }

// Run runs cmd inside the namespace and waits for it.
func (ns *NS) Run(cmd *exec.Cmd) error {
	if err := ns.Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

func onThrowawayThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: Go ends the thread with the goroutine, so a
		// thread left in another namespace is never reused.
		runtime.LockOSThread()
		errc <- f()
	}()
	return <-errc
}

// AddBridge creates a bridge, up, and returns it.
func (ns *NS) AddBridge(tb testing.TB, name string) *netlink.Bridge {
	tb.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := ns.Handle.LinkAdd(br); err != nil {
		tb.Fatalf("add bridge %s: %v", name, err)
	}
	l := ns.Link(tb, name)
	if err := ns.Handle.LinkSetUp(l); err != nil {
		tb.Fatalf("set %s up: %v", name, err)
	}
	return l.(*netlink.Bridge)
}

// AddTAP creates a persistent TAP (as `ip tuntap add mode tap` does), down
// and detached. TAP creation goes through /dev/net/tun and lands in the
// calling thread's namespace, whatever handle is used: hence Do.
func (ns *NS) AddTAP(tb testing.TB, name string) netlink.Link {
	tb.Helper()
	ns.addTun(tb, name, netlink.TUNTAP_MODE_TAP)
	return ns.Link(tb, name)
}

// AddTUN creates a persistent TUN device (layer 3; not a TAP).
func (ns *NS) AddTUN(tb testing.TB, name string) netlink.Link {
	tb.Helper()
	ns.addTun(tb, name, netlink.TUNTAP_MODE_TUN)
	return ns.Link(tb, name)
}

func (ns *NS) addTun(tb testing.TB, name string, mode netlink.TuntapMode) {
	tb.Helper()
	err := ns.Do(func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		return netlink.LinkAdd(&netlink.Tuntap{LinkAttrs: attrs, Mode: mode})
	})
	if err != nil {
		tb.Fatalf("add tuntap %s: %v", name, err)
	}
}

// AddVeth creates a veth pair.
func (ns *NS) AddVeth(tb testing.TB, name, peer string) netlink.Link {
	tb.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	if err := ns.Handle.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: peer}); err != nil {
		tb.Fatalf("add veth %s: %v", name, err)
	}
	return ns.Link(tb, name)
}

// Link returns the link named name, failing the test if there is none.
func (ns *NS) Link(tb testing.TB, name string) netlink.Link {
	tb.Helper()
	l, err := ns.Handle.LinkByName(name)
	if err != nil {
		tb.Fatalf("look up %s: %v", name, err)
	}
	return l
}

// HasLink reports whether a link of that name exists.
func (ns *NS) HasLink(name string) bool {
	_, err := ns.Handle.LinkByName(name)
	return err == nil
}

// MasterName returns the name of link's master, "" when it has none.
func (ns *NS) MasterName(tb testing.TB, name string) string {
	tb.Helper()
	l := ns.Link(tb, name)
	if l.Attrs().MasterIndex == 0 {
		return ""
	}
	m, err := ns.Handle.LinkByIndex(l.Attrs().MasterIndex)
	if err != nil {
		tb.Fatalf("look up master of %s: %v", name, err)
	}
	return m.Attrs().Name
}

// Sysctl reads /proc/sys/KEY (dotted or slashed) inside the namespace.
func (ns *NS) Sysctl(tb testing.TB, key string) string {
	tb.Helper()
	var out string
	err := ns.Do(func() error {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
		out = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		tb.Fatalf("read sysctl %s: %v", key, err)
	}
	return out
}

// AddAddrs gives a link addresses (CIDR, IPv6 without duplicate address
// detection, so they are usable at once).
func (ns *NS) AddAddrs(tb testing.TB, name string, cidrs ...string) {
	tb.Helper()
	l := ns.Link(tb, name)
	for _, c := range cidrs {
		a, err := netlink.ParseAddr(c)
		if err != nil {
			tb.Fatal(err)
		}
		a.Flags = unix.IFA_F_NODAD
		if err := ns.Handle.AddrAdd(l, a); err != nil {
			tb.Fatalf("add %s to %s: %v", c, name, err)
		}
	}
}

// SetUp sets links up.
func (ns *NS) SetUp(tb testing.TB, names ...string) {
	tb.Helper()
	for _, name := range names {
		if err := ns.Handle.LinkSetUp(ns.Link(tb, name)); err != nil {
			tb.Fatalf("set %s up: %v", name, err)
		}
	}
}

// Addrs lists a link's global addresses of a family (netlink.FAMILY_V4,
// FAMILY_ALL, ...) as "A/N", sorted.
func (ns *NS) Addrs(tb testing.TB, name string, family int) []string {
	tb.Helper()
	list, err := ns.Handle.AddrList(ns.Link(tb, name), family)
	if err != nil {
		tb.Fatalf("addresses of %s: %v", name, err)
	}
	var out []string
	for _, a := range list {
		if a.Scope == unix.RT_SCOPE_UNIVERSE {
			out = append(out, a.IPNet.String())
		}
	}
	sort.Strings(out)
	return out
}

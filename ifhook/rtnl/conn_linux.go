package rtnl

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// rtextFilterSkipStats asks the kernel to leave link statistics out of its
// answers (RTEXT_FILTER_SKIP_STATS in linux/rtnetlink.h); we never read them
// and they are most of a link message.
const rtextFilterSkipStats = 1 << 3

// maxDumpAttempts bounds the retries of a dump the kernel reports as
// interrupted (NLM_F_DUMP_INTR: the table changed while it was read).
const maxDumpAttempts = 5

// Conn is one rtnetlink socket bound to a network namespace. The namespace
// is fixed when the socket is made, so nothing depends on the calling
// thread's namespace. A Conn serialises its requests; it may be shared.
type Conn struct {
	mu   sync.Mutex
	sock *sock
	ns   netns.NsHandle // netns.None() for the process's namespace

	once   sync.Once
	handle *netlink.Handle
	hErr   error
}

// Open returns a Conn in the calling process's network namespace.
func Open() (*Conn, error) { return OpenAt(netns.None()) }

// OpenAt returns a Conn in the namespace ns (netns.None(): the current one).
// The caller keeps ownership of ns and must keep it open while the Conn lives.
func OpenAt(ns netns.NsHandle) (*Conn, error) {
	c := &Conn{ns: ns}
	err := c.Do(func() error {
		var err error
		c.sock, err = openSock()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink socket: %w", err)
	}
	return c, nil
}

// Close releases the socket (and the Handle, if one was made).
func (c *Conn) Close() {
	c.sock.close()
	if c.handle != nil {
		c.handle.Close()
	}
}

// Handle returns a vishvananda/netlink Handle in the Conn's namespace, made
// on first use, for requests off the hot path (creating bridges, addresses,
// routes).
func (c *Conn) Handle() (*netlink.Handle, error) {
	c.once.Do(func() {
		c.handle, c.hErr = netlink.NewHandleAt(c.ns, unix.NETLINK_ROUTE)
	})
	return c.handle, c.hErr
}

// Namespace returns the namespace the Conn is bound to (netns.None(): the
// process's own).
func (c *Conn) Namespace() netns.NsHandle { return c.ns }

// Do runs f on a thread inside the Conn's namespace, for what follows the
// thread rather than a socket: /proc/sys/net writes, for one. In the
// process's own namespace it simply calls f.
func (c *Conn) Do(f func() error) error {
	if !c.ns.IsOpen() {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread may be in another namespace when f
		// returns, so Go must throw it away with the goroutine.
		runtime.LockOSThread()
		if err := unix.Setns(int(c.ns), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

func (c *Conn) do(m *msg, want uint16, f func([]byte)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sock.do(m, want, f)
}

// LinkByName looks a link up by name: one RTM_GETLINK round trip.
// Equivalent to: ip link show dev NAME
func (c *Conn) LinkByName(name string) (*Link, error) {
	m := newMsg(unix.RTM_GETLINK, 0)
	m.ifinfo(0, 0, 0)
	m.u32(unix.IFLA_EXT_MASK, rtextFilterSkipStats)
	m.str(unix.IFLA_IFNAME, name)
	return c.getLink(m, name)
}

// LinkByIndex looks a link up by its index.
func (c *Conn) LinkByIndex(index int) (*Link, error) {
	m := newMsg(unix.RTM_GETLINK, 0)
	m.ifinfo(int32(index), 0, 0)
	m.u32(unix.IFLA_EXT_MASK, rtextFilterSkipStats)
	return c.getLink(m, fmt.Sprintf("index %d", index))
}

func (c *Conn) getLink(m *msg, what string) (*Link, error) {
	var link *Link
	var perr error
	err := c.do(m, unix.RTM_NEWLINK, func(p []byte) { link, perr = parseLink(p) })
	if errors.Is(err, unix.ENODEV) || (err == nil && link == nil && perr == nil) {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return link, perr
}

// SetLink applies ch to the link in one RTM_NEWLINK message.
// Equivalent to: ip link set dev LINK address A mtu M master B up
func (c *Conn) SetLink(index int, ch Change) error {
	if ch.IsZero() {
		return nil
	}
	m := newMsg(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	var flags, change uint32
	if ch.Up != nil {
		change = unix.IFF_UP
		if *ch.Up {
			flags = unix.IFF_UP
		}
	}
	m.ifinfo(int32(index), flags, change)
	if ch.MAC != nil {
		m.attr(unix.IFLA_ADDRESS, ch.MAC)
	}
	if ch.MTU != 0 {
		m.u32(unix.IFLA_MTU, uint32(ch.MTU))
	}
	if ch.Master != nil {
		m.u32(unix.IFLA_MASTER, uint32(*ch.Master))
	}
	err := c.do(m, 0, nil)
	if errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("index %d: %w", index, ErrNotFound)
	}
	return err
}

// dumpLinks runs a link dump, retrying while the kernel reports it
// interrupted.
func (c *Conn) dumpLinks(build func(*msg)) ([]*Link, error) {
	var err error
	for range maxDumpAttempts {
		var links []*Link
		var perr error
		m := newMsg(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		m.ifinfo(0, 0, 0)
		m.u32(unix.IFLA_EXT_MASK, rtextFilterSkipStats)
		build(m)
		err = c.do(m, unix.RTM_NEWLINK, func(p []byte) {
			l, e := parseLink(p)
			if e != nil {
				perr = e
				return
			}
			links = append(links, l)
		})
		if errors.Is(err, errDumpInterrupted) {
			continue
		}
		if err == nil {
			err = perr
		}
		return links, err
	}
	return nil, err
}

// Links lists every link in the namespace.
// Equivalent to: ip link show
func (c *Conn) Links() ([]*Link, error) {
	return c.dumpLinks(func(*msg) {})
}

// Bridges lists the bridges in the namespace; the kernel filters by kind.
// Equivalent to: ip link show type bridge
func (c *Conn) Bridges() ([]*Link, error) {
	return c.dumpLinks(func(m *msg) {
		at := m.nest(unix.IFLA_LINKINFO)
		m.attr(unix.IFLA_INFO_KIND, []byte("bridge"))
		m.end(at)
	})
}

// Ports lists the links whose master is the given link; the kernel filters.
// Equivalent to: ip link show master BRIDGE
func (c *Conn) Ports(master int) ([]*Link, error) {
	return c.dumpLinks(func(m *msg) { m.u32(unix.IFLA_MASTER, uint32(master)) })
}

// DefaultRouteLinks returns the indexes of the links that carry a default
// route in the main table, for one family (unix.AF_INET or AF_INET6), in
// the kernel's order, nexthops of multipath routes included.
// Equivalent to: ip route show default
func (c *Conn) DefaultRouteLinks(family int) ([]int, error) {
	var err error
	for range maxDumpAttempts {
		var out []int
		m := newMsg(unix.RTM_GETROUTE, unix.NLM_F_DUMP)
		m.rtmsg(uint8(family))
		err = c.do(m, unix.RTM_NEWROUTE, func(p []byte) { out = append(out, defaultRouteLinks(p)...) })
		if errors.Is(err, errDumpInterrupted) {
			continue
		}
		return out, err
	}
	return nil, err
}

// defaultRouteLinks returns the output links of a route message if it is a
// unicast default route of the main table.
func defaultRouteLinks(p []byte) []int {
	if len(p) < unix.SizeofRtMsg {
		return nil
	}
	// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
	dstLen, table, typ := p[1], uint32(p[4]), p[7]
	if dstLen != 0 || typ != unix.RTN_UNICAST {
		return nil
	}
	var links []int
	eachAttr(p[unix.SizeofRtMsg:], func(t uint16, v []byte) {
		switch {
		case t == unix.RTA_TABLE && len(v) >= 4:
			table = ne.Uint32(v)
		case t == unix.RTA_OIF && len(v) >= 4:
			links = append(links, int(ne.Uint32(v)))
		case t == unix.RTA_MULTIPATH:
			// struct rtnexthop { u16 len; u8 flags; u8 hops; s32 ifindex; }
			for b := v; len(b) >= unix.SizeofRtNexthop; {
				links = append(links, int(int32(ne.Uint32(b[4:8]))))
				step := rtaAlign(int(ne.Uint16(b[0:2])))
				if step <= 0 || step > len(b) {
					break
				}
				b = b[step:]
			}
		}
	})
	if table != unix.RT_TABLE_MAIN {
		return nil
	}
	return links
}

// parseLink reads the parts of an RTM_NEWLINK message that Link holds.
func parseLink(p []byte) (*Link, error) {
	if len(p) < unix.SizeofIfInfomsg {
		return nil, errors.New("short link message from the kernel")
	}
	// struct ifinfomsg: family, pad, type u16, index s32, flags u32, change u32
	l := &Link{Index: int(int32(ne.Uint32(p[4:]))), Type: int(ne.Uint16(p[2:])), Up: ne.Uint32(p[8:])&unix.IFF_UP != 0, PortState: -1}
	eachAttr(p[unix.SizeofIfInfomsg:], func(t uint16, v []byte) {
		switch t {
		case unix.IFLA_IFNAME:
			l.Name = unix.ByteSliceToString(v)
		case unix.IFLA_MTU:
			if len(v) >= 4 {
				l.MTU = int(ne.Uint32(v))
			}
		case unix.IFLA_MASTER:
			if len(v) >= 4 {
				l.Master = int(ne.Uint32(v))
			}
		case unix.IFLA_ADDRESS:
			l.MAC = net.HardwareAddr(append([]byte(nil), v...))
		case unix.IFLA_CARRIER:
			l.Carrier = len(v) >= 1 && v[0] != 0
		case unix.IFLA_LINKINFO:
			parseLinkInfo(l, v)
		}
	})
	return l, nil
}

// parseLinkInfo reads IFLA_LINKINFO: the kind and its data, and for a
// bridge port the port's state. The kind comes before its data.
func parseLinkInfo(l *Link, b []byte) {
	eachAttr(b, func(t uint16, v []byte) {
		switch t {
		case unix.IFLA_INFO_KIND:
			l.Kind = unix.ByteSliceToString(v)
		case unix.IFLA_INFO_DATA:
			eachAttr(v, func(t uint16, v []byte) {
				switch {
				// tun's kind is "tun" whatever the mode; its data
				// (IFLA_TUN_TYPE) tells a TAP from a TUN.
				case l.Kind == "tun" && t == unix.IFLA_TUN_TYPE && len(v) >= 1:
					l.TunType = int(v[0])
				case l.Kind == "bridge" && t == unix.IFLA_BR_STP_STATE && len(v) >= 4:
					l.STP = ne.Uint32(v) != 0
				case l.Kind == "bridge" && t == unix.IFLA_BR_FORWARD_DELAY && len(v) >= 4:
					l.ForwardDelay = int(ne.Uint32(v))
				}
			})
		case unix.IFLA_INFO_SLAVE_KIND:
			l.SlaveKind = unix.ByteSliceToString(v)
		case unix.IFLA_INFO_SLAVE_DATA:
			eachAttr(v, func(t uint16, v []byte) {
				if l.SlaveKind == "bridge" && t == unix.IFLA_BRPORT_STATE && len(v) >= 1 {
					l.PortState = int(v[0])
				}
			})
		}
	})
}

// CreateBridge creates a bridge, down, with its STP settings, MTU and MAC
// in the same message, so it never exists with the kernel's defaults (STP
// settings apply from the start; a MAC given at creation is fixed, so the
// bridge never takes its ports' MACs as they come and go).
// Equivalent to: ip link add NAME [address MAC] [mtu M] type bridge stp_state S forward_delay D
func (c *Conn) CreateBridge(name string, o BridgeOptions) error {
	m := newMsg(unix.RTM_NEWLINK, unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	m.ifinfo(0, 0, 0)
	m.str(unix.IFLA_IFNAME, name)
	if o.MTU != 0 {
		m.u32(unix.IFLA_MTU, uint32(o.MTU))
	}
	if o.MAC != nil {
		m.attr(unix.IFLA_ADDRESS, o.MAC)
	}
	info := m.nest(unix.IFLA_LINKINFO)
	m.attr(unix.IFLA_INFO_KIND, []byte("bridge"))
	data := m.nest(unix.IFLA_INFO_DATA)
	// Forward delay before STP: the kernel refuses delays below 2 s while
	// STP is on, and applies the attributes in its own order anyway.
	m.u32(unix.IFLA_BR_FORWARD_DELAY, uint32(o.ForwardDelay*100))
	stp := uint32(0)
	if o.STP {
		stp = 1
	}
	m.u32(unix.IFLA_BR_STP_STATE, stp)
	m.end(data)
	m.end(info)
	return c.do(m, 0, nil)
}

// DeleteLink deletes a link.
// Equivalent to: ip link del dev LINK
func (c *Conn) DeleteLink(index int) error {
	m := newMsg(unix.RTM_DELLINK, unix.NLM_F_ACK)
	m.ifinfo(int32(index), 0, 0)
	err := c.do(m, 0, nil)
	if errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("index %d: %w", index, ErrNotFound)
	}
	return err
}

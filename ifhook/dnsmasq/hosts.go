package dnsmasq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/ifhook/ifhook/ifhook/dhcp"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"github.com/ifhook/ifhook/ifhook/policy"
	"golang.org/x/sys/unix"
)

// hostsDir opens the bridge's hosts directory (with create, making it and
// the run directory).
func (r *Runner) hostsDir(bridge string, create bool) (*rawfile.Dir, error) {
	if err := checkBridge(bridge); err != nil {
		return nil, err
	}
	if create {
		if err := traversable(r.Layout.RunDir); err != nil {
			return nil, err
		}
	}
	run, err := openDir(r.Layout.RunDir, create, 0o755)
	if err != nil {
		return nil, err
	}
	defer run.Close()
	hosts, err := run.Sub(bridge+".hosts", create, 0o755)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, errorf(exit.State, bridge, "hosts directory: %v", unwrap(err))
	}
	if create {
		if err := hosts.Chmod(0o755); err != nil {
			hosts.Close()
			return nil, errorf(exit.State, bridge, "hosts directory: %v", unwrap(err))
		}
	}
	return hosts, nil
}

// Host returns the TAP's hosts entry, or false when it has none.
func (r *Runner) Host(bridge, tap string) (dhcp.Entry, bool, error) {
	if err := policy.ValidIfName(tap); err != nil {
		return dhcp.Entry{}, false, exit.New(exit.Internal, "hosts entry of %q: %w", tap, err)
	}
	hosts, err := r.hostsDir(bridge, false)
	if errors.Is(err, fs.ErrNotExist) {
		return dhcp.Entry{}, false, nil
	}
	if err != nil {
		return dhcp.Entry{}, false, err
	}
	defer hosts.Close()
	b, err := hosts.Read(tap, dhcp.MaxEntry)
	if errors.Is(err, fs.ErrNotExist) {
		return dhcp.Entry{}, false, nil
	}
	if err != nil {
		return dhcp.Entry{}, true, errorf(exit.State, bridge, "hosts entry %s: %v", tap, unwrap(err))
	}
	e, err := dhcp.ParseEntry(b)
	if err != nil {
		// Not one ifhook wrote: there is an entry, and it is replaced.
		return dhcp.Entry{}, true, nil
	}
	return e, true, nil
}

// SetHost writes the TAP's hosts entry, which dnsmasq picks up by
// itself (inotify); replacing a different one has it read the directory
// again, as it keeps what it read of a file until SIGHUP.
func (r *Runner) SetHost(bridge, tap string, e dhcp.Entry) error {
	old, had, err := r.Host(bridge, tap)
	if err != nil {
		return err
	}
	if had && old.String() == e.String() {
		return nil
	}
	hosts, err := r.hostsDir(bridge, true)
	if err != nil {
		return err
	}
	defer hosts.Close()
	if err := hosts.WriteAtomicHidden(tap, []byte(e.Line()), 0o644); err != nil {
		return errorf(exit.State, bridge, "write hosts entry %s: %v", tap, unwrap(err))
	}
	if had {
		return r.Reload(bridge)
	}
	return nil
}

// DelHost removes the TAP's hosts entry and has dnsmasq forget it
// (SIGHUP); none there is not an error.
func (r *Runner) DelHost(bridge, tap string) error {
	if err := policy.ValidIfName(tap); err != nil {
		return exit.New(exit.Internal, "hosts entry of %q: %w", tap, err)
	}
	hosts, err := r.hostsDir(bridge, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer hosts.Close()
	if err := hosts.Remove(tap); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return errorf(exit.State, bridge, "remove hosts entry %s: %v", tap, unwrap(err))
	}
	return r.Reload(bridge)
}

// Hosts returns every hosts entry of the bridge, by TAP; entries that do
// not parse are left out and named in problems.
func (r *Runner) Hosts(bridge string) (map[string]dhcp.Entry, []string, error) {
	hosts, err := r.hostsDir(bridge, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer hosts.Close()
	entries, err := hosts.List()
	if err != nil {
		return nil, nil, errorf(exit.State, bridge, "list hosts entries: %v", unwrap(err))
	}
	out := map[string]dhcp.Entry{}
	var problems []string
	for _, x := range entries {
		if x.Name[0] == '.' || policy.ValidIfName(x.Name) != nil {
			continue // a temporary file, or none of ours
		}
		b, err := hosts.Read(x.Name, dhcp.MaxEntry)
		if err != nil {
			problems = append(problems, fmt.Sprintf("hosts entry %s: %v", x.Name, unwrap(err)))
			continue
		}
		e, err := dhcp.ParseEntry(b)
		if err != nil {
			problems = append(problems, fmt.Sprintf("hosts entry %s: %v", x.Name, err))
			continue
		}
		out[x.Name] = e
	}
	return out, problems, nil
}

// Leases reads the bridge's lease file (none: no leases).
func (r *Runner) Leases(bridge string) ([]dhcp.Lease, []string, error) {
	if err := checkBridge(bridge); err != nil {
		return nil, nil, err
	}
	b, err := rawfile.Read(r.Layout.Paths(bridge).Leases, dhcp.MaxLeaseFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, []string{fmt.Sprintf("lease file: %v", unwrap(err))}, nil
	}
	leases, problems := dhcp.ParseLeases(b)
	return leases, problems, nil
}

// Book reads the bridge's book of grants. A book that does not parse is
// moved aside (BR.addrs:corrupt) and read as empty, and the reason
// returned as a problem: it costs VMs their remembered addresses, never
// an ifup.
func (r *Runner) Book(bridge string) (*dhcp.Book, string, error) {
	if err := checkBridge(bridge); err != nil {
		return nil, "", err
	}
	data, err := openDir(r.Layout.DataDir, false, 0o755)
	if errors.Is(err, fs.ErrNotExist) {
		return &dhcp.Book{}, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	defer data.Close()
	name := bridge + ".addrs"
	b, err := data.Read(name, dhcp.MaxBook)
	if errors.Is(err, fs.ErrNotExist) {
		return &dhcp.Book{}, "", nil
	}
	var book *dhcp.Book
	if err == nil {
		book, err = dhcp.ParseBook(b)
	}
	if err != nil {
		_ = data.Rename(name, name+":corrupt")
		return &dhcp.Book{}, fmt.Sprintf("book %s/%s cannot be used (%v); moved aside, VMs get new addresses", r.Layout.DataDir, name, unwrap(err)), nil
	}
	return book, "", nil
}

// WriteBook stores the bridge's book, synced: it is what keeps a VM's
// address across a reboot.
func (r *Runner) WriteBook(bridge string, book *dhcp.Book) error {
	if err := checkBridge(bridge); err != nil {
		return err
	}
	data, err := openDir(r.Layout.DataDir, true, 0o755)
	if err != nil {
		return err
	}
	defer data.Close()
	if err := data.WriteAtomic(bridge+".addrs", book.Encode(), 0o644, true); err != nil {
		return errorf(exit.State, bridge, "write its book: %v", unwrap(err))
	}
	if err := unix.Fsync(data.FD()); err != nil {
		return errorf(exit.State, bridge, "sync %s: %v", r.Layout.DataDir, err)
	}
	return nil
}

// Release is a lease given up on a guest's behalf: the server's address
// on the bridge, the leased address, the guest's MAC and the client
// identifier the lease was made with (nil: none). For a DHCPv6 lease (IP
// an IPv6 address; Server unused: the RELEASE goes to the servers'
// multicast group on the bridge) ClientID is the client's DUID, and the
// lease's IAID, its kind and the server's DUID complete it.
type Release struct {
	Server, IP netip.Addr
	MAC        net.HardwareAddr
	ClientID   []byte
	IAID       uint32
	TA         bool
	ServerDUID []byte
}

// Release gives up a guest's lease on the bridge's dnsmasq, as dnsmasq's
// own dhcp_release and dhcp_release6 tools do, which Debian's
// dnsmasq-base lacks. It drops the lease at once: the name stops
// resolving and the address is free.
//
// DHCPv4: a DHCPRELEASE to the server on the bridge's address, from a
// socket bound to the bridge, so dnsmasq takes it as coming from the
// bridge. DHCPv6: a RELEASE to the servers' multicast group on the bridge
// (a server takes unicast only when it offered it), naming the server's
// DUID, the client's and the address in its IA.
func (r *Runner) Release(bridge string, rel Release) error {
	if err := checkBridge(bridge); err != nil {
		return err
	}
	if rel.IP.Is6() {
		return r.release6(bridge, rel)
	}
	if !rel.Server.Is4() || !rel.IP.Is4() || len(rel.MAC) != 6 {
		return exit.New(exit.Internal, "DHCPRELEASE of %s for %s to %s: want IPv4 addresses and a MAC", rel.IP, rel.MAC, rel.Server)
	}
	pkt := releasePacket(rel.Server, rel.IP, rel.MAC, rel.ClientID)
	err := r.inNS(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, bridge); err != nil {
			return err
		}
		return unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Port: 67, Addr: rel.Server.As4()})
	})
	if err != nil {
		return errorf(exit.System, bridge, "DHCPRELEASE of %s: %v", rel.IP, err)
	}
	return nil
}

func (r *Runner) release6(bridge string, rel Release) error {
	if len(rel.ClientID) == 0 || len(rel.ClientID) > 130 || len(rel.ServerDUID) == 0 || len(rel.ServerDUID) > 130 {
		return exit.New(exit.Internal, "DHCPv6 RELEASE of %s: want the client's and the server's DUID", rel.IP)
	}
	pkt := release6Packet(rel)
	err := r.inNS(func() error {
		ifi, err := net.InterfaceByName(bridge)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, bridge); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index); err != nil {
			return err
		}
		// dnsmasq listens on the group on the bridge; it hears the host's
		// own packet through multicast loopback, which is on by default:
		// set it anyway, it is what makes this work.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 1); err != nil {
			return err
		}
		to := &unix.SockaddrInet6{Port: 547, ZoneId: uint32(ifi.Index), Addr: allServers6}
		return unix.Sendto(fd, pkt, 0, to)
	})
	if err != nil {
		return errorf(exit.System, bridge, "DHCPv6 RELEASE of %s: %v", rel.IP, err)
	}
	return nil
}

// allServers6 is All_DHCP_Relay_Agents_and_Servers, ff02::1:2.
var allServers6 = [16]byte{0: 0xff, 1: 0x02, 13: 0x01, 15: 0x02}

// release6Packet is a DHCPv6 RELEASE (RFC 8415 §18.2.7): the client's and
// the server's DUID and one IA (non-temporary or temporary) holding the
// address, its lifetimes zero.
func release6Packet(rel Release) []byte {
	opt := func(code uint16, data []byte) []byte {
		return slices.Concat(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, code), uint16(len(data))), data)
	}
	ip := rel.IP.As16()
	iaAddr := opt(5, slices.Concat(ip[:], make([]byte, 8))) // IAADDR, lifetimes 0
	var ia []byte
	if rel.TA {
		ia = opt(4, slices.Concat(binary.BigEndian.AppendUint32(nil, rel.IAID), iaAddr)) // IA_TA
	} else {
		ia = opt(3, slices.Concat(binary.BigEndian.AppendUint32(nil, rel.IAID), make([]byte, 8), iaAddr)) // IA_NA, T1 = T2 = 0
	}
	// The transaction id only has to differ from the guest's own.
	xid := uint32(time.Now().UnixNano()) & 0xffffff
	head := []byte{8, byte(xid >> 16), byte(xid >> 8), byte(xid)} // RELEASE
	return slices.Concat(head, opt(1, rel.ClientID), opt(2, rel.ServerDUID), ia)
}

// releasePacket is a BOOTP request (RFC 2131) of DHCP message type
// RELEASE for ip and mac, naming the server, with the client identifier the
// lease was made with (dnsmasq keys a lease on it when the client sent
// one; nil: none).
func releasePacket(server, ip netip.Addr, mac net.HardwareAddr, clientID []byte) []byte {
	p := make([]byte, 300)
	p[0], p[1], p[2] = 1, 1, 6 // BOOTREQUEST, Ethernet, 6-byte MAC
	// The transaction id only has to differ from the guest's own: no
	// reply comes to a RELEASE.
	binary.BigEndian.PutUint32(p[4:8], uint32(time.Now().UnixNano()))
	ci := ip.As4()
	copy(p[12:16], ci[:]) // ciaddr
	copy(p[28:34], mac)   // chaddr
	binary.BigEndian.PutUint32(p[236:240], 0x63825363)
	sid := server.As4()
	opts := slices.Concat([]byte{53, 1, 7}, []byte{54, 4}, sid[:])
	if n := len(clientID); n > 0 && n <= 48 {
		opts = slices.Concat(opts, []byte{61, byte(n)}, clientID)
	}
	opts = append(opts, 255)
	copy(p[240:], opts)
	return p
}

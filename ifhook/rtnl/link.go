// Package rtnl is ifhook's window on the kernel's link table: one rtnetlink
// socket, bound to a network namespace, with the few requests a hook makes on
// its hot path written out so that each is exactly one round trip (the whole
// TAP configuration is a single RTM_NEWLINK, as `ip link set` sends). Anything
// rarer goes through a vishvananda/netlink Handle in the same namespace.
package rtnl

import (
	"errors"
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrNotFound is returned (wrapped) when a link does not exist.
var ErrNotFound = errors.New("no such device")

// Tun types as the kernel reports them in IFLA_TUN_TYPE (IFF_TUN, IFF_TAP).
const (
	TunTypeTUN = 1
	TunTypeTAP = 2
)

// Link is what ifhook needs to know about one link, copied out of the
// kernel's answer so that planning works on plain data.
type Link struct {
	Name    string
	Index   int
	Type    int    // ARPHRD_*: unix.ARPHRD_ETHER, ARPHRD_LOOPBACK, ...
	Kind    string // IFLA_INFO_KIND: "tun", "bridge", "veth", ...; "" for hardware and loopback
	TunType int    // TunTypeTUN or TunTypeTAP when Kind is "tun"
	Master  int    // ifindex of the master, 0 when none
	Up      bool   // IFF_UP (administratively up)
	MTU     int
	MAC     net.HardwareAddr
	Carrier bool // IFLA_CARRIER: the link has carrier (a TAP: QEMU holds it open)

	// For bridges (Kind "bridge"):
	STP          bool // kernel STP on
	ForwardDelay int  // centiseconds (clock_t), as the kernel reports it

	// For bridge ports (SlaveKind "bridge"):
	SlaveKind string
	PortState int // PortDisabled ... PortBlocking; -1 when not a bridge port
}

// Bridge port states (BR_STATE_* in linux/if_bridge.h).
const (
	PortDisabled   = 0
	PortListening  = 1
	PortLearning   = 2
	PortForwarding = 3
	PortBlocking   = 4
)

// PortStateName names a bridge port state as `bridge link` prints it.
func PortStateName(s int) string {
	switch s {
	case PortDisabled:
		return "disabled"
	case PortListening:
		return "listening"
	case PortLearning:
		return "learning"
	case PortForwarding:
		return "forwarding"
	case PortBlocking:
		return "blocking"
	}
	return "unknown"
}

// BridgeOptions are the settings a bridge is created with.
type BridgeOptions struct {
	STP          bool
	ForwardDelay int // seconds
	MTU          int // 0: the kernel's default
	MAC          net.HardwareAddr
}

// IsTAP reports whether the link is a TAP (a tuntap device in tap mode).
func (l *Link) IsTAP() bool { return l.Kind == "tun" && l.TunType == TunTypeTAP }

// IsBridge reports whether the link is a Linux bridge.
func (l *Link) IsBridge() bool { return l.Kind == "bridge" }

// Describe says what kind of device the link is, for messages such as
// `"eth0" is a physical device, not a TAP`: by its kind, or, without one,
// by its hardware type.
func (l *Link) Describe() string {
	switch {
	case l.IsTAP():
		return "a TAP"
	case l.Kind == "tun" && l.TunType == TunTypeTUN:
		return "a TUN device (layer 3)"
	case l.Kind == "tun":
		return "a tuntap device of unknown mode"
	case l.Kind == "bridge":
		return "a bridge"
	case l.Kind == "veth" || l.Kind == "vxlan" || l.Kind == "bond" || l.Kind == "macvlan" || l.Kind == "macvtap" || l.Kind == "vlan" || l.Kind == "dummy":
		return "a " + l.Kind
	case l.Kind != "":
		return "a " + strconv.Quote(l.Kind) + " device"
	case l.Type == unix.ARPHRD_LOOPBACK:
		return "the loopback device"
	case l.Type == unix.ARPHRD_ETHER || l.Type == 0:
		return "a physical device"
	}
	return "a device of hardware type " + strconv.Itoa(l.Type)
}

// Change is a set of changes to one link that the kernel applies from a
// single RTM_NEWLINK message: address, then MTU, then master, then flags
// (the order of rtnetlink's do_setlink). Zero fields are left alone.
type Change struct {
	MAC    net.HardwareAddr // nil: unchanged
	MTU    int              // 0: unchanged
	Master *int             // nil: unchanged; 0: no master
	Up     *bool            // nil: unchanged
}

// IsZero reports whether the change changes nothing.
func (c Change) IsZero() bool {
	return c.MAC == nil && c.MTU == 0 && c.Master == nil && c.Up == nil
}

// Merge returns c with every field that o sets taken from o.
func (c Change) Merge(o Change) Change {
	if o.MAC != nil {
		c.MAC = o.MAC
	}
	if o.MTU != 0 {
		c.MTU = o.MTU
	}
	if o.Master != nil {
		c.Master = o.Master
	}
	if o.Up != nil {
		c.Up = o.Up
	}
	return c
}

// Ptr returns a pointer to v, for Change's optional fields.
func Ptr[T any](v T) *T { return &v }

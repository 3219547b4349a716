package ifhook

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/qemu"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
)

// Guest is what ifhook knows of the VM behind a TAP, read from the command
// line of the QEMU that runs the hook (package qemu). QEMU passes its
// scripts nothing but the TAP's name; its command line holds the rest.
type Guest struct {
	VM         string           // QEMU's -name; "" when not known
	PID        int              // QEMU's process; 0 when not known
	MAC        net.HardwareAddr // the guest NIC's MAC; nil when not known
	DefaultMAC bool             // QEMU chose MAC itself (the NIC was given none)
	NIC        string           // the option that made the NIC: "-net nic", "-nic", "-device e1000"
	NICIndex   int              // the NIC's position among the VM's NICs
	Note       string           // why something is not known, for -v
}

// macOption names the option and key that set a NIC's MAC: "-net nic a
// macaddr=", "-device virtio-net-pci a mac=".
func (g Guest) macOption() string {
	switch {
	case g.NIC == "" || g.NIC == "-net nic":
		return "-net nic a macaddr="
	case g.NIC == "-nic":
		return "-nic a mac="
	}
	return g.NIC + " a mac="
}

// macHint is the `ifhook mac` command that prints a MAC for this NIC.
func (g Guest) macHint() string {
	name := g.VM
	if name == "" {
		name = "NAME"
	}
	name = shellQuote(name)
	if g.NICIndex > 0 {
		return fmt.Sprintf("ifhook mac %s %d", name, g.NICIndex)
	}
	return "ifhook mac " + name
}

// shellQuote quotes a VM's name for a command the user may paste: it came
// from QEMU's command line, and is escaped again when printed.
func shellQuote(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

func (h *Hook) guest(tap string) Guest {
	if h.cfg.Guest == nil {
		return Guest{}
	}
	g := h.cfg.Guest(tap)
	if g.Note != "" {
		h.Log.Debug("up %s: %s", tap, g.Note)
	}
	return g
}

// hostMAC is the MAC the host side of the TAP gets: libvirt's (the guest's
// with fe first) when the guest's is known and its own, else one hashed
// from the TAP's name. A MAC QEMU chose is the same for every VM started
// without one, so it cannot tell TAPs apart.
func (h *Hook) hostMAC(tap string, g Guest) net.HardwareAddr {
	if h.Policy.TAPMAC != policy.TAPMACDerive {
		return nil
	}
	if g.MAC != nil && !g.DefaultMAC {
		return policy.HostMACFromGuest(g.MAC)
	}
	return policy.HostTAPMAC(h.Policy.MACPrefix, tap)
}

// checkGuestMAC applies guest_mac to the guest's MAC: a MAC without the
// prefix, or one QEMU chose, is warned about (returned as notes) or, under
// enforce, refused; a MAC another live TAP on the bridge has is refused
// unless guest_mac is off.
func (h *Hook) checkGuestMAC(tap string, g Guest, bridge *rtnl.Link, newBridge bool) (notes []plan.Note, err error) {
	mode := h.Policy.GuestMAC
	if g.MAC == nil || mode == policy.GuestMACOff {
		return nil, nil
	}
	var problem string
	switch {
	case g.DefaultMAC || policy.IsQEMUDefault(g.MAC):
		problem = fmt.Sprintf("guest MAC %s is QEMU's default (the NIC was given none): every VM started without one gets it; give %s (try: %s)", g.MAC, g.macOption(), g.macHint())
	case !h.Policy.MACPrefix.Has(g.MAC):
		problem = fmt.Sprintf("guest MAC %s lacks the prefix %s (mac_prefix at %s)", g.MAC, h.Policy.MACPrefix, h.Policy.Where("mac_prefix"))
	}
	if problem != "" {
		if mode == policy.GuestMACEnforce {
			return nil, exit.New(exit.BadTAP, "%s; refused (guest_mac = \"enforce\" at %s)", problem, h.Policy.Where("guest_mac"))
		}
		notes = append(notes, plan.Notef(plan.Warning, "%s", problem))
	}
	if bridge == nil || newBridge {
		return notes, nil // a bridge made in this run has no guests yet
	}
	owner, index, err := h.macIndex().MACClaim(bridge.Name, g.MAC)
	if err != nil || owner == "" || owner == tap {
		return notes, nil
	}
	if other, live := h.liveGuestMAC(owner, index, bridge, g.MAC); live {
		vm := ""
		if other != nil && other.VM != "" {
			vm = fmt.Sprintf(" (VM %s)", escape.Quote(other.VM))
		}
		return notes, exit.New(exit.BadTAP, "guest MAC %s is already used on %s by %s%s; give %s (try: %s)", g.MAC, bridge.Name, owner, vm, g.macOption(), g.macHint())
	}
	return notes, nil
}

// liveGuestMAC reports whether TAP owner, whose claim says index (0: not
// said), is still attached to bridge with guest MAC mac (the index may
// outlive a VM killed without its downscript), and returns its record
// when it can be read. A claim that names its device is checked against
// the kernel alone: the bridge helper cannot read root's records.
func (h *Hook) liveGuestMAC(owner string, index int, bridge *rtnl.Link, mac net.HardwareAddr) (*state.Record, bool) {
	rec, _, err := h.recordOf(owner)
	if err != nil {
		rec = nil
	}
	if rec != nil && (rec.GuestMAC != mac.String() || (index > 0 && rec.Index != index)) {
		return nil, false // the record says otherwise: a stale claim
	}
	if index == 0 {
		if rec == nil {
			return nil, false
		}
		index = rec.Index
	}
	l, err := h.Kernel.LinkByName(owner)
	if err != nil || l.Index != index || l.Master != bridge.Index {
		return nil, false
	}
	return rec, true
}

// ParentGuest reads the VM behind tap from the command line of the process
// that ran ifhook, when that is QEMU (Hook.Guest for the hook QEMU runs).
func ParentGuest(tap string) Guest {
	// Most runs from outside QEMU end here, after one readlink: no error
	// values built, no command line read.
	if !qemu.ParentMayBeQEMU() {
		return Guest{}
	}
	vm, err := qemu.FromParent()
	if errors.Is(err, qemu.ErrNotQEMU) {
		return Guest{} // run from a shell, a test, a libvirt script
	}
	if err != nil {
		return Guest{Note: "cannot read QEMU's command line: " + err.Error()}
	}
	return GuestOf(vm, tap)
}

// GuestOf returns what vm's command line says of the NIC behind tap.
func GuestOf(vm *qemu.VM, tap string) Guest {
	g := Guest{VM: vm.Name, PID: vm.PID}
	nic, ok, why := vm.NICForTAP(tap)
	if !ok {
		g.Note = "guest MAC unknown: " + why
		return g
	}
	return guestNIC(vm, g, nic)
}

// guestNIC fills in g what nic, one of vm's NICs, says.
func guestNIC(vm *qemu.VM, g Guest, nic qemu.NIC) Guest {
	g.MAC, g.DefaultMAC = nic.MAC, nic.DefaultMAC
	switch nic.Option {
	case "-device":
		g.NIC = "-device " + nic.Model
	case "-nic":
		g.NIC = "-nic"
	default:
		g.NIC = "-net nic"
	}
	for i, n := range vm.NICs {
		if n.Option == nic.Option && n.ID == nic.ID && string(n.MAC) == string(nic.MAC) && n.TAP == nic.TAP {
			g.NICIndex = i
			break
		}
	}
	return g
}

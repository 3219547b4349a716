package ifhook

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/libvirt"
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
	// Source says what answered (QEMU's command line, the TAPs it holds,
	// one of libvirt's files), for -v.
	Source string
	// KeepMAC is set when the TAP's MAC is libvirt's (fe or fa and the
	// guest's last five octets): tap_mac = "derive" keeps it even when the
	// guest's MAC is not known.
	KeepMAC bool

	// resolve finishes a Guest once the TAP's MAC is known: libvirt's
	// files are matched against it (see Hook.guest).
	resolve func(tapMAC net.HardwareAddr, first byte) Guest
}

// libvirtNIC is Guest.NIC for a libvirt domain's interface.
const libvirtNIC = "libvirt <interface>"

// macOption names the option and key that set a NIC's MAC: "-net nic a
// macaddr=", "-device virtio-net-pci a mac=".
func (g Guest) macOption() string {
	switch {
	case g.NIC == "" || g.NIC == "-net nic":
		return "-net nic a macaddr="
	case g.NIC == "-nic":
		return "-nic a mac="
	case g.NIC == libvirtNIC:
		return "the domain's <interface> a <mac address=.../>"
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
	libvirtRun := g.resolve != nil
	if g.resolve != nil {
		// libvirt runs the script: its files are matched against the MAC
		// it gave the TAP.
		l, err := h.Kernel.LinkByName(tap)
		if err != nil {
			g = Guest{Note: fmt.Sprintf("libvirt runs ifhook, but the TAP cannot be looked up: %v", err)}
		} else {
			first := byte(0x52)
			if len(h.Policy.MACPrefix) > 0 {
				first = h.Policy.MACPrefix[0]
			}
			g = g.resolve(l.MAC, first)
		}
	}
	// Under libvirt no -v can be asked for (it clears the environment):
	// where the guest came from goes to syslog too.
	say := h.Log.Debug
	if libvirtRun {
		say = h.Log.Change
	}
	if g.Note != "" {
		say("up %s: %s", tap, g.Note)
	}
	if g.Source != "" {
		say("up %s: VM %s, guest MAC %s, from %s", tap, escape.Quote(g.VM), macString(g.MAC), g.Source)
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
	if g.KeepMAC && g.MAC == nil {
		return nil // libvirt's, for a guest MAC it did not tell
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
	if err == nil && owner != "" && owner != tap {
		if other, live := h.liveGuestMAC(owner, index, bridge, g.MAC); live {
			return notes, exit.New(exit.BadTAP, "guest MAC %s is already used on %s by %s; give %s (try: %s)", g.MAC, bridge.Name, describePort(owner, other), g.macOption(), g.macHint())
		}
	}
	// No record claims it; a NIC hot-plugged with no MAC at its ifup may
	// have sent from it since.
	if port, rec := h.learnedElsewhere(bridge, g.MAC, tap); port != "" {
		return notes, exit.New(exit.BadTAP, "guest MAC %s is already used on %s by %s (the bridge learned it there); give %s (try: %s)", g.MAC, bridge.Name, describePort(port, rec), g.macOption(), g.macHint())
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

// ParentGuest reads the VM behind tap from the process that ran ifhook
// (Hook.Guest for the hook QEMU or libvirt runs): QEMU's command line, and
// the TAPs QEMU holds when the command line does not name tap; or, when
// libvirt runs ifhook, libvirt's files (matched against the TAP's MAC by
// Hook.guest).
func ParentGuest(tap string) Guest {
	// Most runs from outside QEMU end here, after one readlink: no
	// command line read.
	exe, err := qemu.ParentExe()
	switch {
	case err == nil && libvirt.IsDaemon(exe):
		return Guest{resolve: func(tapMAC net.HardwareAddr, first byte) Guest {
			return LibvirtGuest(tap, tapMAC, first, libvirt.Read(libvirt.SystemDirs))
		}}
	case err == nil && !qemu.IsQEMU(exe), err != nil && !errors.Is(err, fs.ErrPermission):
		return Guest{}
	}
	vm, err := qemu.FromParent()
	if errors.Is(err, qemu.ErrNotQEMU) {
		return Guest{} // run from a shell, a test
	}
	if err != nil {
		return Guest{Note: "cannot read QEMU's command line: " + err.Error()}
	}
	g := GuestOf(vm, tap)
	if g.MAC != nil || !vm.HasKernelNamedTAP() {
		return g
	}
	// No ifname= names tap: which backend it is shows in what QEMU holds.
	held, err := qemu.HeldTAPs(vm.PID)
	if err != nil {
		g.Note += "; cannot read the TAPs QEMU holds: " + err.Error()
		return g
	}
	return GuestOfHeld(vm, tap, held)
}

// GuestOf returns what vm's command line says of the NIC behind tap.
func GuestOf(vm *qemu.VM, tap string) Guest {
	nic, ok, why := vm.NICForTAP(tap)
	return guestOfNIC(vm, nic, ok, why, "QEMU's command line (ifname="+tap+")")
}

// GuestOfHeld returns the NIC behind tap, which no ifname= names, from
// vm's command line and the TAPs its QEMU holds (qemu.HeldTAPs).
func GuestOfHeld(vm *qemu.VM, tap string, held []qemu.HeldTAP) Guest {
	nic, ok, why := vm.NICForHeldTAP(tap, held)
	return guestOfNIC(vm, nic, ok, why, fmt.Sprintf("QEMU's command line and the %d TAP descriptors it holds (/proc/%d/fdinfo)", len(held), vm.PID))
}

func guestOfNIC(vm *qemu.VM, nic qemu.NIC, ok bool, why, source string) Guest {
	g := Guest{VM: vm.Name, PID: vm.PID}
	if !ok {
		g.Note = "guest MAC unknown: " + why
		return g
	}
	g = guestNIC(vm, g, nic)
	g.Source = source
	return g
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

// LibvirtGuest returns what libvirt's files (snap) say of the domain
// behind tap, whose MAC is tapMAC; first is the octet to assume for a
// guest MAC only the TAP's tells (the policy's prefix's).
func LibvirtGuest(tap string, tapMAC net.HardwareAddr, first byte, snap *libvirt.Snapshot) Guest {
	g := Guest{NIC: libvirtNIC, KeepMAC: libvirt.IsHostMAC(tapMAC)}
	f, ok, why := libvirt.Resolve(tap, tapMAC, first, snap)
	var notes []string
	notes = append(notes, snap.Notes...)
	if !ok {
		g.VM = f.Domain
		notes = append(notes, "libvirt runs ifhook; domain or guest MAC unknown: "+why)
		if g.KeepMAC {
			notes = append(notes, "keeping the MAC libvirt gave the TAP, "+tapMAC.String())
		}
	} else {
		g.VM, g.PID, g.MAC, g.Source = f.Domain, f.PID, f.MAC, f.Source
		if f.Inferred {
			g.Source += fmt.Sprintf(", the guest MAC's first octet %02x assumed (libvirt replaced it with %02x in the TAP's)", f.MAC[0], tapMAC[0])
		}
	}
	g.Note = strings.Join(notes, "; ")
	return g
}

// Package qemu reads a QEMU command line to tell, for the TAP QEMU hands to
// its ifup/ifdown script, which virtual machine it belongs to and which MAC
// the guest NIC behind it has.
//
// QEMU runs the script as its own child with the TAP name as the only
// argument, so FromParent finds the QEMU process, reads its argv from
// /proc, and Parse replays what QEMU does with it:
//
//   - the option loop of system/vl.c (lookup_opt): "-opt" and "--opt" alike,
//     exact names, a table of options that take an argument;
//   - the option syntax of util/qemu-option.c: comma-separated name=value
//     pairs, ",," for a comma inside a value, an implied name for a first
//     element without '=' (type for -netdev/-nic/-net, driver for -device,
//     guest for -name), the first id= naming the option, later pairs
//     overriding earlier ones (-set group.id.name=value included); and
//     JSON for -device and -netdev;
//   - the network wiring of net/net.c: -netdev backends joined to NICs by
//     netdev=, -nic creating both at once, legacy -net joining NICs and
//     backends on hub ("vlan") N, default 0, and -netdev hubport;
//   - the default MAC of qemu_macaddr_default_if_unset (net/net.c), replayed
//     in the order QEMU creates NICs; see NIC.DefaultMAC.
//
// What it cannot see: -readconfig files (VM.Notes says when one is named),
// and TAPs and NICs added later through the monitor (netdev_add,
// device_add), which are not on the command line at all.
package qemu

import (
	"net"
	"path/filepath"
	"strings"
)

// VM is what a QEMU command line says about one virtual machine.
type VM struct {
	// Name is the guest name: the last guest= of all -name options, as
	// QEMU merges them (the qemu_name_opts list has merge_lists set); ""
	// when there is none.
	Name string

	PID  int      // the QEMU process; 0 when the VM comes from Parse
	Exe  string   // its executable (/proc/PID/exe); "" from Parse, or if unreadable
	Args []string // the whole command line, Args[0] being the program

	// NICs are the guest's network cards in the order QEMU creates them,
	// which is the order default MACs are handed out in: -nic options,
	// then -net nic options, then -device options in key=value form, then
	// -device options in JSON form, each group in command-line order.
	NICs []NIC

	// Notes say what was ignored or not understood, one line each.
	Notes []string

	taps   []tap            // every TAP backend, in command-line order
	opened []opened         // the backends that hold a TAP, in the order QEMU opens them
	byName map[string][]int // TAP name to indexes into taps

	readconfig bool // a -readconfig file was not read
}

// NIC is one guest network card.
type NIC struct {
	// TAP is the name of the TAP the NIC is wired to, directly or through
	// a hub: "" when it reaches no TAP, several TAPs, or one TAP whose name
	// QEMU leaves to the kernel (no ifname=, an ifname= template with %d,
	// fd=, helper=).
	TAP string

	// MAC is the NIC's MAC address, always 6 bytes; nil only when the
	// command line gives a MAC QEMU would have refused.
	MAC net.HardwareAddr

	// DefaultMAC is true when the command line gives no MAC (or an
	// all-zero one) and MAC is the one QEMU picks itself: 52:54:00:12:34:xx
	// with the lowest xx from 0x56 up not yet used by a NIC created before
	// this one, where "used" counts both default MACs handed out and MACs
	// given explicitly in that range (net/net.c: mac_table,
	// qemu_macaddr_default_if_unset, present since at least QEMU 2.8; QEMU
	// before the table simply counted up from 0x56, which differs only when
	// explicit 52:54:00:12:34:xx MACs are given). Once 0x56 to 0xfe are all
	// used, QEMU gives 0xff to every further NIC, and so do we.
	//
	// The replay is only as good as the list of NICs: NICs a board creates
	// by itself, NICs from -readconfig files, NICs hot-plugged through the
	// monitor (or unplugged, which frees their byte for the next one), and
	// NIC models that pick their own MAC are not seen.
	DefaultMAC bool

	Model  string // the -device driver, or -nic/-net nic model= ("" = the board's default)
	ID     string // id= of the -device, -nic or -net option ("" if none)
	Option string // what made it: "-device", "-nic", "-net nic", or "default -net nic"
}

// IsQEMU reports whether exe, a path or a name, is a QEMU system emulator:
// its base name is qemu-system-<target>, qemu-kvm or kvm. A " (deleted)"
// suffix, which /proc/PID/exe shows for a binary replaced by an upgrade
// while it runs, is ignored.
func IsQEMU(exe string) bool {
	base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	if rest, ok := strings.CutPrefix(base, "qemu-system-"); ok {
		return rest != ""
	}
	return base == "qemu-kvm" || base == "kvm"
}

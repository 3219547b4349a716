package qemu

import (
	"fmt"
	"strings"
)

// NICForTAP returns the guest NIC behind the TAP named tap. When there is no
// single such NIC, ok is false and why says what stands in the way, in a
// form fit for a -v line: no TAP of that name on the command line (added
// through the monitor, named by the kernel, or passed as fd=), a TAP wired
// to no NIC or, through a legacy -net hub, to several, or a NIC whose MAC
// QEMU would not accept.
//
// A NIC returned is always one of vm.NICs, with a 6-byte MAC, and its TAP
// field is tap unless the NIC reaches more TAPs than this one. A TAP on a
// hub with a single NIC gives that NIC even when other backends (another
// TAP, user networking) share the hub; their frames reach the TAP too.
func (vm *VM) NICForTAP(tap string) (nic NIC, ok bool, why string) {
	if vm == nil {
		return NIC{}, false, "no QEMU command line"
	}
	if tap == "" {
		return NIC{}, false, "empty TAP name"
	}
	found := vm.byName[tap]
	switch len(found) {
	case 0:
		return NIC{}, false, vm.whyNoTap(tap)
	case 1:
	default:
		return NIC{}, false, fmt.Sprintf("ifname=%s is given %d times (%s, %s)", tap, len(found), vm.taps[found[0]].label, vm.taps[found[1]].label)
	}
	return vm.nicOfTap(found[0], tap)
}

// nicOfTap returns the one NIC TAP t (called tap) reaches, or why there
// is not one.
func (vm *VM) nicOfTap(i int, tap string) (nic NIC, ok bool, why string) {
	t := &vm.taps[i]
	nics := t.direct
	if t.hub != nil {
		nics = append(append([]int(nil), t.direct...), t.hub.nics...)
	}
	switch len(nics) {
	case 0:
		return NIC{}, false, fmt.Sprintf("TAP %s (%s) is wired to no NIC", tap, t.label)
	case 1:
	default:
		via := ""
		if t.hub != nil {
			via = fmt.Sprintf(" through hub %d (QEMU forwards every frame to all of them)", t.hub.id)
		}
		return NIC{}, false, fmt.Sprintf("TAP %s (%s) reaches %d NICs%s: %s", tap, t.label, len(nics), via, vm.list(nics))
	}
	nic = vm.NICs[nics[0]]
	if nic.MAC == nil {
		return NIC{}, false, fmt.Sprintf("TAP %s is wired to %s, whose MAC QEMU would not accept", tap, vm.describe(nics[0]))
	}
	return nic, true, ""
}

// whyNoTap explains why no TAP is called name.
func (vm *VM) whyNoTap(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "no TAP named %s on the command line", name)
	unnamed := 0
	var example *tap
	for i := range vm.taps {
		if vm.taps[i].name == "" {
			unnamed++
			if example == nil {
				example = &vm.taps[i]
			}
		}
	}
	switch unnamed {
	case 0:
		b.WriteString(" (a TAP added through the monitor with netdev_add is not on it)")
	case 1:
		fmt.Fprintf(&b, "; %s has no fixed name: %s", example.label, example.why)
	default:
		fmt.Fprintf(&b, "; %d TAPs have no fixed name, e.g. %s: %s", unnamed, example.label, example.why)
	}
	if vm.readconfig {
		b.WriteString("; -readconfig files were not read")
	}
	return b.String()
}

// list describes a few NICs for a message.
func (vm *VM) list(nics []int) string {
	const max = 4
	var parts []string
	for i, n := range nics {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(nics)-max))
			break
		}
		parts = append(parts, vm.describe(n))
	}
	return strings.Join(parts, ", ")
}

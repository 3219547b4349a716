package qemu

import (
	"fmt"
	"sort"
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
	return vm.nicOf(&vm.taps[found[0]], tap)
}

// NICForBridge returns the guest NIC behind the TAP the bridge helper is
// making for bridge, the nth time (from 0) this QEMU runs the helper for
// that bridge: the helper is told only --br=, and QEMU runs it once per
// such backend, in the order it creates backends, waiting for each. So
// the records of earlier helper runs for this QEMU and this bridge count
// which backend this is. ok is false, with why, when there is no such
// backend (one added through the monitor) or no single NIC behind it.
func (vm *VM) NICForBridge(bridge string, nth int) (nic NIC, ok bool, why string) {
	if vm == nil {
		return NIC{}, false, "no QEMU command line"
	}
	var backends []*tap
	for i := range vm.taps {
		if vm.taps[i].bridge == bridge {
			backends = append(backends, &vm.taps[i])
		}
	}
	sort.SliceStable(backends, func(i, j int) bool {
		a, b := backends[i].order, backends[j].order
		return a[0] < b[0] || a[0] == b[0] && a[1] < b[1]
	})
	if nth < 0 || nth >= len(backends) {
		return NIC{}, false, fmt.Sprintf("the command line has %d bridge helper backend(s) for br=%s and this is helper run %d for it (a netdev added through the monitor is not on it)", len(backends), bridge, nth+1)
	}
	return vm.nicOf(backends[nth], "")
}

// nicOf returns the one NIC a TAP backend reaches (tap names it in
// messages; "" for a helper's TAP, named by its option).
func (vm *VM) nicOf(t *tap, tap string) (nic NIC, ok bool, why string) {
	if tap == "" {
		tap = "of " + t.label
	} else {
		tap += " (" + t.label + ")"
	}
	nics := t.direct
	if t.hub != nil {
		nics = append(append([]int(nil), t.direct...), t.hub.nics...)
	}
	switch len(nics) {
	case 0:
		return NIC{}, false, fmt.Sprintf("TAP %s is wired to no NIC", tap)
	case 1:
	default:
		via := ""
		if t.hub != nil {
			via = fmt.Sprintf(" through hub %d (QEMU forwards every frame to all of them)", t.hub.id)
		}
		return NIC{}, false, fmt.Sprintf("TAP %s reaches %d NICs%s: %s", tap, len(nics), via, vm.list(nics))
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

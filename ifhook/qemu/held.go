package qemu

import (
	"bytes"
	"fmt"
	"sort"
)

// A TAP QEMU opens without ifname= gets its name from the kernel (tap0,
// tap1, ...: the lowest free "tap%d" in QEMU's network namespace), so the
// name the script is given is on no command line. What ties it to a NIC is
// the order QEMU opens its backends in, and what QEMU holds open while the
// script runs: QEMU opens each TAP backend and runs its script before it
// opens the next (net/tap.c: net_init_tap, net_tap_init, launch_script),
// and for a TAP whose script runs, every backend before it is open and
// every backend after it is not. So the number of distinct TAPs QEMU holds
// says which backend is being set up.
//
// Checked against QEMU 7.2 (TestHeldTAPOrderQEMU in cmd/ifhook):
//
//   - backends are opened -netdev in JSON form first, then -netdev in
//     key=value form, then -nic, then -net, each in command-line order
//     (net/net.c: net_init_clients, which creates the netdevs queued by
//     netdev_parse_modern before the QemuOpts ones);
//   - queues=N opens N file descriptors on one TAP, the script running
//     after the first (the others are given script "no"): they count once;
//   - fd= and fds= TAPs are open from QEMU's start (inherited), so they
//     count before any backend is opened;
//   - helper= and -netdev bridge open a TAP the helper names, with no
//     script.

// HeldTAP is one TAP file descriptor QEMU holds: /proc/PID/fd/FD is
// /dev/net/tun, and the iff: line of /proc/PID/fdinfo/FD names its device.
type HeldTAP struct {
	FD   int
	Name string
}

// opened is one backend that holds a TAP, in the order QEMU opens it.
type opened struct {
	phase     int  // openJSON, openNetdev, openNIC, openNet
	seq       int  // command-line order within the phase
	tap       int  // index in VM.taps; -1 for a bridge helper's TAP
	inherited bool // fd= or fds=: open before any backend is
	label     string
}

// Phases of backend creation in net_init_clients.
const (
	openJSON = iota
	openNetdev
	openNIC
	openNet
)

// maxHeld bounds the TAP descriptors NICForHeldTAP looks at: QEMU allows
// 1024 queues per NIC, and a VM has a handful of NICs.
const maxHeld = 1 << 14

// inherited reports whether a TAP backend uses descriptors QEMU was given
// rather than opens.
func inherited(o *opts) bool { return o.has("fd") || o.has("fds") }

// opens records that r makes QEMU hold a TAP: TAP t, or -1 for one a
// bridge helper makes.
func (b *builder) opens(r *record, t int) {
	phase := openNet
	switch {
	case r.group == "netdev" && r.json:
		phase = openJSON
	case r.group == "netdev":
		phase = openNetdev
	case r.group == "nic":
		phase = openNIC
	}
	b.vm.opened = append(b.vm.opened, opened{phase: phase, seq: len(b.vm.opened), tap: t, inherited: inherited(&r.opts), label: r.label})
}

// sortOpened puts the backends in the order QEMU opens them.
func (vm *VM) sortOpened() {
	sort.SliceStable(vm.opened, func(i, j int) bool { return vm.opened[i].phase < vm.opened[j].phase })
}

// HasKernelNamedTAP reports whether QEMU opens a TAP under a name the
// kernel picks: only then can NICForHeldTAP tell more than NICForTAP.
func (vm *VM) HasKernelNamedTAP() bool {
	if vm == nil {
		return false
	}
	for _, t := range vm.taps {
		if t.kernel {
			return true
		}
	}
	return false
}

// NICForHeldTAP returns the guest NIC behind the TAP named tap, which the
// command line does not name, from the TAPs QEMU holds while it runs tap's
// script (held, from /proc/PID/fdinfo). It is pure. When the answer is not
// certain, ok is false and why says what stands in the way: QEMU does not
// hold tap, holds more TAPs than its command line opens (tap was added
// through the monitor), or what it holds does not fit the order QEMU opens
// its backends in. It never guesses.
func (vm *VM) NICForHeldTAP(tap string, held []HeldTAP) (nic NIC, ok bool, why string) {
	if vm == nil {
		return NIC{}, false, "no QEMU command line"
	}
	if len(held) > maxHeld {
		return NIC{}, false, fmt.Sprintf("QEMU holds %d TAP descriptors, more than %d", len(held), maxHeld)
	}
	names := map[string]bool{}
	for _, h := range held {
		if h.Name != "" {
			names[h.Name] = true
		}
	}
	if !names[tap] {
		return NIC{}, false, fmt.Sprintf("QEMU holds no TAP named %s (%d other TAPs): it did not open it", tap, len(names))
	}
	var opens []opened // opened by QEMU, in order
	given := 0         // open from the start
	for _, o := range vm.opened {
		if o.inherited {
			given++
		} else {
			opens = append(opens, o)
		}
	}
	n := len(names) - given // how many QEMU has opened, tap's the last
	switch {
	case n > len(opens):
		return NIC{}, false, fmt.Sprintf("QEMU holds %d TAPs and its command line opens %d (%d given as fd=): %s was added through the monitor (netdev_add), which names no NIC", len(names), len(opens)+given, given, tap)
	case n <= 0:
		return NIC{}, false, fmt.Sprintf("QEMU holds %d TAPs, no more than the %d its command line gives it as fd=: cannot tell which backend %s is", len(names), given, tap)
	}
	cur := opens[n-1]
	if cur.tap < 0 || !vm.taps[cur.tap].kernel {
		return NIC{}, false, fmt.Sprintf("QEMU holds %d TAPs, so %s would be %s, which runs no script under a name the kernel picks: cannot tell", len(names), tap, cur.label)
	}
	// Every TAP of a fixed name before it must be open, and none after.
	for i, o := range opens {
		if o.tap < 0 || vm.taps[o.tap].name == "" {
			continue
		}
		name := vm.taps[o.tap].name
		if i < n && !names[name] {
			return NIC{}, false, fmt.Sprintf("QEMU holds %d TAPs, so %s would be %s, but %s (opened before it) is not among them: cannot tell", len(names), tap, cur.label, name)
		}
		if i >= n && names[name] && name != tap {
			return NIC{}, false, fmt.Sprintf("QEMU holds %d TAPs, so %s would be %s, but %s (opened after it) is already open: cannot tell", len(names), tap, cur.label, name)
		}
	}
	return vm.nicOf(&vm.taps[cur.tap], tap)
}

// iffName returns the device an fdinfo text's "iff:" line names, or "" for
// none (a tun descriptor not attached to a device) or a line that is no
// interface name.
func iffName(info []byte) string {
	for len(info) > 0 {
		line := info
		if i := bytes.IndexByte(info, '\n'); i >= 0 {
			line, info = info[:i], info[i+1:]
		} else {
			info = nil
		}
		rest, ok := bytes.CutPrefix(line, []byte("iff:"))
		if !ok {
			continue
		}
		name := string(bytes.TrimLeft(rest, " \t"))
		if !validIfName(name) {
			return ""
		}
		return name
	}
	return ""
}

// validIfName is the kernel's dev_valid_name: 1 to 15 bytes, not . or ..,
// no '/', ':' or white space; control bytes are refused too, so a name
// read here is safe to compare and print.
func validIfName(s string) bool {
	if s == "" || len(s) > ifnameMax || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '/' || c == ':' || c == 0x7f {
			return false
		}
	}
	return true
}

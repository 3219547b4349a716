package qemu

import (
	"errors"
	"fmt"
	"strings"
)

// Limits that keep Parse's work and memory bounded whatever it is given.
// Linux caps a command line at a few MiB (ARG_MAX is a quarter of the stack
// limit, at most 6 MiB with the default 8 MiB stack), so real QEMU command
// lines, libvirt's included, stay far below them.
const (
	maxArgs  = 1 << 16
	maxBytes = 16 << 20
	maxNotes = 32
)

// Errors. Parse fails only with ErrEmpty or ErrTooLong: anything else it
// finds goes to VM.Notes. FromPID fails with ErrNotQEMU for a process that
// is not QEMU.
var (
	ErrEmpty   = errors.New("empty command line")
	ErrTooLong = errors.New("command line too long")
	ErrNotQEMU = errors.New("not a QEMU system emulator")
)

// Parse reads a QEMU command line. args is the whole argv as in
// /proc/PID/cmdline: args[0] is the program, which is not looked at (use
// IsQEMU on the executable); options start at args[1], as in QEMU.
//
// Parse is pure and lenient: it never fails on what a command line says,
// only on an empty or oversized one. Options QEMU would refuse, or that
// Parse does not know, are skipped with a note.
func Parse(args []string) (*VM, error) {
	if len(args) == 0 {
		return nil, ErrEmpty
	}
	if len(args) > maxArgs {
		return nil, fmt.Errorf("%w: %d arguments, more than %d", ErrTooLong, len(args), maxArgs)
	}
	size := 0
	for _, a := range args {
		size += len(a) + 1
	}
	if size > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLong, size, maxBytes)
	}
	p := &parser{
		vm:      &VM{Args: append([]string(nil), args...)},
		byID:    map[string]*record{},
		unknown: map[string]bool{},
	}
	p.walk(args)
	p.build()
	p.finishNotes()
	return p.vm, nil
}

// record is one -netdev, -nic, -net or -device option.
type record struct {
	group string // "netdev", "nic", "net" or "device", QEMU's option list names
	opts  opts
	json  bool   // written in JSON
	label string // the option as written, shortened, for notes
}

// parser holds what Parse has gathered so far.
type parser struct {
	vm         *VM
	records    []*record
	byID       map[string]*record // key group+"\x00"+id: what -set can reach
	netOption  bool               // a -net, -netdev or -nic was given
	nodefaults bool
	unknown    map[string]bool // unknown options already noted
	dropped    int             // notes over maxNotes
}

// note records something Parse ignored or did not understand.
func (p *parser) note(format string, a ...any) {
	if len(p.vm.Notes) >= maxNotes-1 {
		p.dropped++
		return
	}
	p.vm.Notes = append(p.vm.Notes, fmt.Sprintf(format, a...))
}

func (p *parser) finishNotes() {
	if p.dropped > 0 {
		p.vm.Notes = append(p.vm.Notes, fmt.Sprintf("%d more notes left out", p.dropped))
	}
}

// walk goes through argv as QEMU's option loop does (lookup_opt in
// system/vl.c).
func (p *parser) walk(args []string) {
	for i := 1; i < len(args); {
		a := args[i]
		i++
		if a == "" || a[0] != '-' {
			continue // a disk image: QEMU's "hda" shorthand
		}
		name := strings.TrimPrefix(a[1:], "-") // --foo is -foo
		takesArg, known := optionTakesArg()[name]
		switch {
		case !known:
			if !p.unknown[name] {
				p.unknown[name] = true
				p.note("unknown option %q: read as taking no argument", shorten(a))
			}
		case !takesArg:
			if name == "nodefaults" {
				p.nodefaults = true
			}
		case i >= len(args):
			p.note("%s has no argument (QEMU would have refused it)", a)
		default:
			p.option(a, name, args[i])
			i++
		}
	}
}

// option handles one option that takes an argument.
func (p *parser) option(flag, name, arg string) {
	switch name {
	case "name":
		o := parseOpts(arg, "guest")
		if guest, ok := o.get("guest"); ok {
			p.vm.Name = guest
		}
	case "netdev", "nic", "net":
		p.netOption = true
		p.add(flag, name, arg)
	case "device":
		p.add(flag, name, arg)
	case "set":
		p.set(arg)
	case "readconfig":
		p.vm.readconfig = true
		p.note("-readconfig %q not read: a name, NICs or netdevs defined there are not seen, and default MACs may be off", shorten(arg))
	case "global":
		p.global(arg)
	}
}

// implied is the implied_opt_name of each option list we read.
var implied = map[string]string{"netdev": "type", "nic": "type", "net": "type", "device": "driver"}

// add records a -netdev, -nic, -net or -device option.
func (p *parser) add(flag, group, arg string) {
	r := &record{group: group, label: flag + " " + shorten(arg)}
	if (group == "device" || group == "netdev") && isJSON(arg) {
		o, err := parseJSONOpts(arg)
		if err != nil {
			p.note("%s: not understood as JSON: %v", r.label, err)
			return
		}
		r.opts, r.json = o, true
	} else {
		r.opts = parseOpts(arg, implied[group])
	}
	p.records = append(p.records, r)
	if r.json || !r.opts.hasID {
		return // JSON options are not QemuOpts: -set cannot reach them
	}
	key := group + "\x00" + r.opts.id
	if p.byID[key] == nil {
		p.byID[key] = r
	}
}

// set applies -set group.id.name=value to an option given before it, as
// qemu_set_option does (system/vl.c): it adds name=value to that option's
// QemuOpts, overriding an earlier value.
func (p *parser) set(arg string) {
	s, ok := parseSet(arg)
	if !ok {
		p.note("-set %q: not group.id.name=value (QEMU would have refused it)", shorten(arg))
		return
	}
	if implied[s.group] == "" {
		return // not an option we read
	}
	r := p.byID[s.group+"\x00"+s.id]
	if r == nil {
		p.note("-set %q: no -%s with id=%s before it (QEMU would have refused it)", shorten(arg), s.group, s.id)
		return
	}
	r.opts.pairs = append(r.opts.pairs, pair{s.name, s.value})
}

// global notes a -global that sets a NIC property: it is a default for every
// device of a driver, which Parse does not apply.
func (p *parser) global(arg string) {
	// qemu_global_option (system/vl.c): "driver.property=value", else
	// driver=,property=,value= pairs.
	prop := ""
	if before, _, ok := strings.Cut(arg, "="); ok && strings.Contains(before, ".") {
		_, prop, _ = strings.Cut(before, ".")
	} else {
		o := parseOpts(arg, "")
		prop, _ = o.get("property")
	}
	switch prop {
	case "mac", "netdev", "vlan":
		p.note("-global %q not applied: NICs may differ from what the command line shows", shorten(arg))
	}
}

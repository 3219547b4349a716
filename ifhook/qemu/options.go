package qemu

import "sync"

// QEMU's own option loop (lookup_opt in system/vl.c, softmmu/vl.c or vl.c
// depending on the release) matches argv[i] against a table generated from
// qemu-options.hx: "--foo" is treated as "-foo", the name must match exactly
// (so "-name=foo" is an invalid option, not "-name foo"), and an option
// marked HAS_ARG takes the next argv element whatever it looks like, even
// when it starts with '-'. An element that does not start with '-' is a disk
// image (the hda shorthand) and consumes nothing else.
//
// Walking argv exactly therefore needs to know which options take an
// argument. optionTakesArg is that table: every option of QEMU 7.2 (read out
// of qemu-options.def as compiled into qemu-system-x86_64; the table holds
// every target's options, only the arch mask differs), plus options added
// since (-run-with, -shim, -perfmap, -jitdump) and options older releases and
// the qemu-kvm fork had before removing them.
//
// An option missing from the table cannot be on the command line of a QEMU
// that knew it (lookup_opt exits with "invalid option"); when one shows up we
// treat it as taking no argument and record a note. That is the safe guess:
// a value that does not start with '-' is then skipped like a disk image,
// which is what skipping it as an argument would do, and a following real
// option is never swallowed.
// optionTakesArg builds the table on first use: a hook that is not QEMU's
// child never parses a command line and should not pay for the map at
// start-up (a package-level map literal is built by the package's init).
var optionTakesArg = sync.OnceValue(optionTable)

func optionTable() map[string]bool {
	return map[string]bool{
		// QEMU 7.2, with an argument.
		"D": true, "L": true, "M": true, "accel": true, "acpitable": true,
		"action": true, "add-fd": true, "append": true, "audio": true,
		"audiodev": true, "bios": true, "blockdev": true, "boot": true,
		"cdrom": true, "chardev": true, "chroot": true, "compat": true,
		"cpu": true, "d": true, "debugcon": true, "device": true,
		"dfilter": true, "display": true, "drive": true, "dtb": true,
		"dump-vmstate": true, "echr": true, "fda": true, "fdb": true,
		"fsdev": true, "fw_cfg": true, "g": true, "gdb": true, "global": true,
		"hda": true, "hdb": true, "hdc": true, "hdd": true, "icount": true,
		"incoming": true, "initrd": true, "iscsi": true, "k": true,
		"kernel": true, "loadvm": true, "m": true, "machine": true,
		"mem-path": true, "mon": true, "monitor": true, "msg": true,
		"mtdblock": true, "name": true, "net": true, "netdev": true,
		"nic": true, "numa": true, "object": true, "option-rom": true,
		"overcommit": true, "parallel": true, "pflash": true, "pidfile": true,
		"plugin": true, "prom-env": true, "qmp": true, "qmp-pretty": true,
		"qtest": true, "qtest-log": true, "readconfig": true, "rotate": true,
		"rtc": true, "runas": true, "sandbox": true, "sd": true, "seed": true,
		"semihosting-config": true, "serial": true, "set": true, "smbios": true,
		"smp": true, "spice": true, "tpmdev": true, "trace": true,
		"usbdevice": true, "uuid": true, "vga": true, "virtfs": true,
		"vnc": true, "watchdog-action": true, "xen-domid": true,

		// QEMU 7.2, flags.
		"S": false, "async-teardown": false, "audio-help": false,
		"daemonize": false, "enable-kvm": false, "enable-sync-profile": false,
		"full-screen": false, "h": false, "help": false, "mem-prealloc": false,
		"no-acpi": false, "no-fd-bootchk": false, "no-hpet": false,
		"no-reboot": false, "no-shutdown": false, "no-user-config": false,
		"nodefaults": false, "nographic": false, "old-param": false,
		"only-migratable": false, "portrait": false, "preconfig": false,
		"s": false, "semihosting": false, "singlestep": false, "snapshot": false,
		"usb": false, "version": false, "win2k-hack": false, "xen-attach": false,
		"xen-domid-restrict": false,

		// Added after 7.2.
		"run-with": true, "shim": true,
		"perfmap": false, "jitdump": false,

		// Removed before 7.2 (and qemu-kvm additions), with an argument.
		"balloon": true, "bootp": true, "bt": true, "clock": true,
		"hdachs": true, "kvm-shadow-memory": true, "pcidevice": true,
		"realtime": true, "redir": true, "smb": true, "soundhw": true,
		"startdate": true, "tb-size": true, "tftp": true, "virtfs_synth": true,
		"virtioconsole": true, "watchdog": true, "writeconfig": true,

		// Removed before 7.2 (and qemu-kvm additions), flags.
		"alt-grab": false, "ctrl-grab": false, "curses": false,
		"enable-fips": false, "enable-kqemu": false, "enable-nesting": false,
		"kernel-kqemu": false, "localtime": false, "no-frame": false,
		"no-kqemu": false, "no-kvm": false, "no-kvm-irqchip": false,
		"no-kvm-pit": false, "no-kvm-pit-reinjection": false, "no-quit": false,
		"nodefconfig": false, "rtc-td-hack": false, "sdl": false,
		"show-cursor": false, "std-vga": false, "tdf": false, "xen-create": false,
	}
}

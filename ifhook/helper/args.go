package helper

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/policy"
)

// UsageLine is qemu-bridge-helper's usage, which it prints for any
// argument it does not take; so does ifhook, word for word.
const UsageLine = "Usage: qemu-bridge-helper [--use-vnet] --br=bridge --fd=unixfd"

// ErrUsage is wrapped by every argument error: the caller prints
// UsageLine and exits 1, as qemu-bridge-helper does.
var ErrUsage = errors.New("usage")

// ErrBadName is wrapped when --br= is not an interface name: the caller
// prints the error's line and exits 1, as qemu-bridge-helper does for a
// name too long.
var ErrBadName = errors.New("bad bridge name")

// Args are a helper run's arguments.
type Args struct {
	UseVnet bool   // --use-vnet: give the TAP a virtio-net header if the kernel can
	Bridge  string // --br=BR
	FD      int    // --fd=N: the unix socket to send the TAP's descriptor over
}

// ParseArgs reads the helper's arguments, in any order: QEMU passes
// "--use-vnet --fd=N --br=BR" (net/tap.c: net_bridge_run_helper), libvirt
// "[--use-vnet] --br=BR --fd=N" (qemu_interface.c). Anything else, a
// missing --br= or --fd=, or either given twice, is a usage error; so is a
// bridge name that is not an interface name, too long ones first
// (CVE-2019-13164: an over-long name checked against the ACL, then cut to
// IFNAMSIZ when used, reached another bridge).
func ParseArgs(args []string) (Args, error) {
	a := Args{FD: -1}
	var haveBr, haveFD bool
	for _, arg := range args {
		switch {
		case arg == "--use-vnet":
			a.UseVnet = true
		case strings.HasPrefix(arg, "--br="):
			if haveBr {
				return a, usage("--br= given twice")
			}
			a.Bridge, haveBr = arg[len("--br="):], true
		case strings.HasPrefix(arg, "--fd="):
			if haveFD {
				return a, usage("--fd= given twice")
			}
			n, err := strconv.Atoi(arg[len("--fd="):])
			if err != nil || n < 0 {
				return a, usage("%s is not a file descriptor number", escape.Quote(arg))
			}
			a.FD, haveFD = n, true
		default:
			return a, usage("unknown argument %s", escape.Quote(arg))
		}
	}
	switch {
	case !haveBr:
		return a, usage("no --br=")
	case !haveFD:
		return a, usage("no --fd=")
	}
	if len(a.Bridge) >= 16 {
		// qemu-bridge-helper's own words first.
		return a, badName("name `%s' too long: %d (--br=: an interface name is at most 15 bytes)", escape.String(a.Bridge), len(a.Bridge))
	}
	if err := policy.ValidIfName(a.Bridge); err != nil {
		return a, badName("--br=%s: %v", escape.String(a.Bridge), err)
	}
	return a, nil
}

func badName(format string, args ...any) error {
	return exit.As(exit.Usage, &nameError{fmt.Sprintf(format, args...)})
}

type nameError struct{ msg string }

func (e *nameError) Error() string { return e.msg }
func (e *nameError) Unwrap() error { return ErrBadName }

func usage(format string, args ...any) error {
	return exit.As(exit.Usage, fmt.Errorf("%w: "+format, append([]any{ErrUsage}, args...)...))
}

package main

import (
	"fmt"
	"strings"

	"github.com/ifhook/ifhook/ifhook"
)

// usageLine is the usage in one line, for the errors that call for it:
// every failure prints one line.
const usageLine = "usage: qemu-ifup TAP | qemu-ifdown TAP | ifhook [-v] [--config FILE] up|down|explain|check|list|gc|setup|teardown|status|doctor|mac|install-hooks|version|help [ARGS] (run 'ifhook help')"

// Usage is the text of `ifhook help`. The man page says the same; a test
// checks that every subcommand and exit status appears in both.
func Usage() string {
	var b strings.Builder
	b.WriteString(`ifhook: QEMU's network hook. Attaches the TAP QEMU names to a bridge, by policy.

Run by QEMU (symlinked as /etc/qemu-ifup and /etc/qemu-ifdown):
  qemu-ifup TAP        attach TAP: set its MAC and MTU, enslave it to the bridge, set it up
  qemu-ifdown TAP      detach TAP: off the bridge, down, MAC and MTU restored; gone is fine
  (any name ending in "ifup" or "ifdown" works, e.g. script=/usr/libexec/ifhook/qemu-ifup)

Run by people:
  ifhook up TAP             what qemu-ifup does
  ifhook down TAP           what qemu-ifdown does
  ifhook explain TAP        the rule matched, the bridge chosen and every step ifup would
                            take, changing nothing (--json for JSON, --down for ifdown;
                            --vm NAME and --guest-mac MAC: as if QEMU said so)
  ifhook check              validate the policy; print every problem as file:line
  ifhook list               the TAPs ifhook attached: TAP, bridge, since (--json for JSON)
  ifhook gc                 remove records of TAPs that no longer exist (QEMU killed)
  ifhook mac NAME [INDEX]   print a stable guest MAC for NIC INDEX (default 0) of VM NAME:
                            mac_prefix plus a hash, never QEMU's default; use it as
                            -net nic,macaddr=$(ifhook mac NAME)
  ifhook mac --check MAC    say whether MAC is well-formed, unicast and has mac_prefix
  ifhook install-hooks      make /etc/qemu-ifup and /etc/qemu-ifdown links to this binary, as
                            install.sh does (a file that was there is kept as .orig);
                            --undo removes them and puts back the .orig files
  ifhook version            print the version
  ifhook help               print this

Bridges the policy describes ([bridges.NAME]: isolated, routed, nat, bridged):
  ifhook setup [BRIDGE...]  make them now (ifup makes a missing one when a TAP needs it),
                            or complete them (addresses, forwarding, NAT rule, uplink);
                            --dry-run prints the steps
  ifhook teardown --all | BRIDGE...
                            remove what ifhook made: NAT rule, the forwarding it turned on,
                            addresses, the bridge; a bridged uplink gets its addresses and
                            routes back. Refuses a bridge with guest ports unless --force;
                            --dry-run prints the steps
  ifhook status [BRIDGE...] each policy bridge: model, exists, ports, addresses, NAT rule,
                            and what setup would still do (--json for JSON)
  ifhook doctor [BRIDGE...] check for traps that silently break guest networking and say how
                            to fix each (exit 1 when it finds any; --json for JSON)

Flags (after "ifhook" or after the subcommand):
  -v, --verbose             print each step on stderr (also IFHOOK_VERBOSE=1)
  --config FILE             policy file (also IFHOOK_CONFIG=FILE)

Environment:
  IFHOOK_CONFIG        policy file (default /etc/ifhook/config.toml; when that file does
                       not exist, a built-in policy: bridge = "auto")
  IFHOOK_STATE_DIR     records and lock (default /run/ifhook)
  IFHOOK_VERBOSE=1     print each step
  IFHOOK_LOCK_TIMEOUT  how long to wait for another ifhook (default 10s)
  IFHOOK_SYSLOG        syslog socket (default /dev/log; "off" for none)

Exit status (QEMU reports "network script ... failed with status N", N = exit x 256):
`)
	for _, c := range ifhook.ExitCodes {
		fmt.Fprintf(&b, "  %3d  status %5d  %-15s %s\n", c.Code, c.Code*256, c.Name, c.Meaning)
	}
	return b.String()
}

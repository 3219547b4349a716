package main

import (
	"fmt"
	"strings"

	"github.com/ifhook/ifhook/ifhook/exit"
)

// Usage is the text of `ifhook help`, its commands from the command table.
// The man page says the same; a test checks that every subcommand and exit
// status appears in both.
func Usage() string {
	var b strings.Builder
	b.WriteString(`ifhook: QEMU's network hook. Attaches the TAP QEMU names to a bridge, by policy.

Run by QEMU (symlinked as /etc/qemu-ifup and /etc/qemu-ifdown):
  qemu-ifup TAP        attach TAP: set its MAC and MTU, enslave it to the bridge, set it up
  qemu-ifdown TAP      detach TAP: off the bridge, down, MAC and MTU restored; gone is fine
  (any name ending in "ifup" or "ifdown" works, e.g. script=/usr/libexec/ifhook/qemu-ifup)

Run by a user's QEMU as its bridge helper (-netdev bridge,br=BR; a copy of this binary
with cap_net_admin+ep, installed by ifhook install-hooks --bridge-helper):
  qemu-bridge-helper [--use-vnet] --br=BR --fd=N
                       make a TAP, attach it to BR if /etc/qemu/bridge.conf or the
                       policy's [[helper.allow]] lets the caller, and hand it to QEMU
  (any name ending in "bridge-helper" works; bad arguments: QEMU's usage line, exit 1)

Run by people:
`)
	writeCommands(&b, people)
	b.WriteString(`
Bridges the policy describes ([bridges.NAME]: isolated, routed, nat, bridged):
`)
	writeCommands(&b, bridges)
	b.WriteString(`
Flags (after "ifhook" or after the subcommand):
  -v, --verbose             print each step on stderr (also IFHOOK_VERBOSE=1)
  --config FILE             policy file (also IFHOOK_CONFIG=FILE)

Environment:
  IFHOOK_CONFIG        policy file (default /etc/ifhook/config.toml; when that file does
                       not exist, a built-in policy: bridge = "auto")
  IFHOOK_STATE_DIR     records and lock (default /run/ifhook; the bridge helper's
                       records are beside it, in /run/ifhook-helper)
  IFHOOK_BRIDGE_CONF   the bridge helper's ACL (default /etc/qemu/bridge.conf)
  IFHOOK_VERBOSE=1     print each step
  IFHOOK_LOCK_TIMEOUT  how long to wait for another ifhook (default 10s)
  IFHOOK_SYSLOG        syslog socket (default /dev/log; "off" for none)

A copy of ifhook run with privileges from a file capability or a set-ID bit, by a
user who is not root, is the bridge helper or nothing: under any other name it drops
them first; it reads no IFHOOK_* variable and no --config, only root's own files.

Signals: SIGTERM, SIGINT or SIGHUP during a change stop it between two steps: ifup
and setup undo what they did, ifdown and teardown leave the rest for the next run
(exit 75). Whatever point a killed ifhook reached, the next one finishes or undoes it.

Exit status (QEMU reports "network script ... failed with status N", N = exit x 256):
`)
	for _, c := range exit.Table {
		fmt.Fprintf(&b, "  %3d  status %5d  %-15s %s\n", c.Code, c.Code*256, c.Name, c.Meaning)
	}
	return b.String()
}

// writeCommands writes the help lines of one section's commands: the
// command and its arguments in a column, what it does beside.
func writeCommands(b *strings.Builder, section int) {
	for _, c := range commands {
		if c.section != section {
			continue
		}
		head := "ifhook " + c.name
		if c.args != "" {
			head += " " + c.args
		}
		lines := strings.Split(c.help, "\n")
		if len(head) > 24 {
			fmt.Fprintf(b, "  %s\n", head)
			head = ""
		}
		for i, l := range lines {
			if i > 0 {
				head = ""
			}
			fmt.Fprintf(b, "  %-24s  %s\n", head, l)
		}
	}
}

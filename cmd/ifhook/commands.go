package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/ifhook/ifhook/ifhook"
	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/install"
	"github.com/ifhook/ifhook/ifhook/policy"
)

// options are every subcommand's flags; each command declares the ones it
// takes, so a flag another command takes is "not defined" for it.
type options struct {
	json, down, force, all, dryRun, undo bool
	vm, guestMAC, check                  string
	helper, bridgeHelper                 bool
	user                                 string
}

// command is one subcommand: its name, arguments and flags, and what it
// does. The table below is the only list of them: dispatch, the usage
// line and `ifhook help` all come from it.
type command struct {
	name     string
	args     string // the arguments, as the help shows them
	min, max int    // how many arguments (max -1: any)
	section  int    // which part of the help it goes in
	help     string // what it does: the help's text, lines after the first indented
	flags    func(fs *flag.FlagSet, o *options)
	run      func(c *ctx, args []string) error
}

const (
	people = iota
	bridges
)

func jsonFlag(fs *flag.FlagSet, o *options) { fs.BoolVar(&o.json, "json", false, "print JSON") }

// commands is set in init: the help command prints the help, which lists
// the commands.
var commands []command

func init() { commands = table() }

func table() []command {
	return []command{
		{name: "up", args: "TAP", min: 1, max: 1, help: "what qemu-ifup does",
			run: func(c *ctx, a []string) error { return c.change("up", a[0]) }},
		{name: "down", args: "TAP", min: 1, max: 1, help: "what qemu-ifdown does",
			run: func(c *ctx, a []string) error { return c.change("down", a[0]) }},
		{name: "explain", args: "TAP", min: 1, max: 1, run: runExplain,
			help: "the rule matched, the bridge chosen and every step ifup would\ntake, changing nothing (--json for JSON, --down for ifdown;\n--vm NAME and --guest-mac MAC: as if QEMU said so);\n--helper [--user NAME] BRIDGE: whether NAME (default: you) may\nattach to BRIDGE through the bridge helper, and which rule says so",
			flags: func(fs *flag.FlagSet, o *options) {
				jsonFlag(fs, o)
				fs.BoolVar(&o.down, "down", false, "explain ifdown instead of ifup")
				fs.StringVar(&o.vm, "vm", "", "explain as for the VM of this -name")
				fs.StringVar(&o.guestMAC, "guest-mac", "", "explain as for a guest NIC with this MAC")
				fs.BoolVar(&o.helper, "helper", false, "explain the bridge helper's ACL for a bridge")
				fs.StringVar(&o.user, "user", "", "with --helper: the user who runs QEMU")
			}},
		{name: "check", max: 0, run: runCheck, help: "validate the policy, and the bridge helper's /etc/qemu/bridge.conf;\nprint every problem as file:line"},
		{name: "list", max: 0, run: runList, flags: jsonFlag,
			help: "the TAPs ifhook attached: TAP, bridge, since, VM, guest MAC and\naddress (--json for JSON)"},
		{name: "leases", args: "[BRIDGE...]", max: -1, run: runLeases, flags: jsonFlag,
			help: "the DHCP leases of the bridges that serve DHCP: MAC, IP, VM,\nTAP, expiry, reserved or dynamic (--json for JSON)"},
		{name: "gc", max: 0, run: runGC, help: "finish or undo what a killed ifhook left, remove records of TAPs\nthat no longer exist (QEMU killed)"},
		{name: "mac", args: "NAME [INDEX]", max: 2, run: runMAC,
			help:  "print a stable guest MAC for NIC INDEX (default 0) of VM NAME:\nmac_prefix plus a hash, never QEMU's default; use it as\n-net nic,macaddr=$(ifhook mac NAME)\n--check MAC: say whether MAC is well-formed, unicast and has mac_prefix",
			flags: func(fs *flag.FlagSet, o *options) { fs.StringVar(&o.check, "check", "", "check a MAC instead") }},
		{name: "install-hooks", max: 0, run: runInstallHooks,
			help: "make /etc/qemu-ifup and /etc/qemu-ifdown links to this binary, as\ninstall.sh does (a file that was there is kept as .orig);\n--undo removes them and puts back the .orig files;\n--bridge-helper: instead, put a copy of this binary, with\ncap_net_admin+ep, where QEMU looks for qemu-bridge-helper",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.undo, "undo", false, "remove the links")
				fs.BoolVar(&o.bridgeHelper, "bridge-helper", false, "install the bridge helper instead")
			}},
		{name: "version", max: 0, help: "print the version", run: func(c *ctx, _ []string) error {
			fmt.Fprintf(c.stdout, "ifhook %s (%s)\n", versionString(), runtime.Version())
			return nil
		}},
		{name: "help", max: -1, help: "print this", run: func(c *ctx, _ []string) error {
			fmt.Fprint(c.stdout, Usage())
			return nil
		}},

		{name: "setup", args: "[BRIDGE...]", max: -1, section: bridges, run: runSetup,
			help: "make them now (ifup makes a missing one when a TAP needs it),\nor complete them (addresses, forwarding, NAT rule, uplink,\ndnsmasq); --dry-run prints the steps",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.dryRun, "dry-run", false, "print the steps, change nothing")
			}},
		{name: "teardown", args: "--all | BRIDGE...", max: -1, section: bridges, run: runTeardown,
			help: "remove what ifhook made: NAT rule, the forwarding it turned on,\naddresses, the bridge; a bridged uplink gets its addresses and\nroutes back. Refuses a bridge with guest ports unless --force;\n--dry-run prints the steps",
			flags: func(fs *flag.FlagSet, o *options) {
				fs.BoolVar(&o.force, "force", false, "tear down even bridges that still have guest ports")
				fs.BoolVar(&o.all, "all", false, "every bridge ifhook made")
				fs.BoolVar(&o.dryRun, "dry-run", false, "print the steps, change nothing")
			}},
		{name: "status", args: "[BRIDGE...]", max: -1, section: bridges, run: runStatus, flags: jsonFlag,
			help: "each policy bridge: model, exists, ports, addresses, NAT rule,\nwhat is wrong and what setup would still do (--json for JSON)"},
		{name: "doctor", args: "[BRIDGE...]", max: -1, section: bridges, run: runDoctor, flags: jsonFlag,
			help: "check for traps that silently break guest networking and say how\nto fix each (exit 1 when it finds any; --json for JSON)"},
	}
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// want says what arguments a command takes, for its usage error.
func (cmd *command) want() string {
	switch {
	case cmd.max == 0:
		return "no arguments"
	case cmd.min == 1 && cmd.max == 1 && cmd.args == "TAP":
		return "one TAP name"
	}
	return cmd.args
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func runExplain(c *ctx, args []string) error {
	if c.opt.helper {
		return explainHelper(c, args[0])
	}
	if c.opt.user != "" {
		return usageErr("explain: --user goes with --helper")
	}
	tap := args[0]
	guest := ifhook.ParentGuest
	if c.opt.vm != "" || c.opt.guestMAC != "" {
		g := ifhook.Guest{VM: c.opt.vm}
		if c.opt.guestMAC != "" {
			mac, err := net.ParseMAC(c.opt.guestMAC)
			if err != nil || len(mac) != 6 {
				return usageErr("explain: --guest-mac %s is not a MAC address", escape.Quote(c.opt.guestMAC))
			}
			g.MAC, g.DefaultMAC = mac, policy.IsQEMUDefault(mac)
		}
		guest = func(string) ifhook.Guest { return g }
	}
	if err := policy.ValidIfName(tap); err != nil {
		return exit.Op("explain", tap, exit.New(exit.BadTAP, "%w", err))
	}
	h, err := c.open("explain", tap, guest)
	if err != nil {
		return err
	}
	defer h.Close()
	var p *ifhook.TAPPlan
	if c.opt.down {
		p, err = h.ExplainDown(tap)
	} else {
		p, err = h.ExplainUp(tap)
	}
	if p != nil {
		if c.opt.json {
			emitJSON(c.stdout, p.View(err))
		} else {
			fmt.Fprint(c.stdout, p.Text())
		}
	}
	return err
}

func runCheck(c *ctx, _ []string) error {
	pol, err := policy.Load(c.config)
	if err != nil {
		if probs, ok := errors.AsType[policy.Problems](err); ok {
			for _, p := range probs {
				fmt.Fprintf(c.stderr, "%s\n", escape.Line(p.Error()))
			}
			return exit.New(exit.Policy, "check: %d problem(s) in %s", len(probs), c.config)
		}
		return exit.Op("check", "", exit.As(exit.Policy, err))
	}
	// The bridges the policy would make are checked against the host too:
	// an uplink that is missing or already a port, an address in use.
	if len(pol.Bridges) > 0 {
		if h, err := ifhook.Open(ifhook.Config{Policy: pol, StateDir: c.stateDir}); err == nil {
			errs := h.Bridges.CheckBridges()
			h.Close()
			for _, err := range errs {
				fmt.Fprintf(c.stderr, "%s: %s\n", escape.String(pol.File), escape.Line(err.Error()))
			}
			if len(errs) > 0 {
				return exit.New(exit.Policy, "check: %d problem(s) with the host for %s", len(errs), c.config)
			}
		}
	}
	fmt.Fprintf(c.stdout, "%s: ok (%d rule(s), %d bridge(s); bridge = %q)\n", escape.String(pol.File), len(pol.Rules), len(pol.Bridges), pol.Bridge)
	return checkBridgeConf(c, pol)
}

func runList(c *ctx, _ []string) error {
	h, err := c.open("list", "", nil)
	if err != nil {
		return err
	}
	defer h.Close()
	items, err := h.List()
	if c.opt.json {
		if items == nil {
			items = []ifhook.Listing{}
		}
		emitJSON(c.stdout, items)
	} else {
		printList(c.stdout, items)
	}
	return err
}

func runLeases(c *ctx, names []string) error {
	h, err := c.open("leases", "", nil)
	if err != nil {
		return err
	}
	defer h.Close()
	leases, err := h.Leases(names...)
	if c.opt.json {
		emitJSON(c.stdout, orEmpty(leases))
	} else {
		printLeases(c.stdout, leases)
	}
	return err
}

func runGC(c *ctx, _ []string) error {
	h, err := c.open("gc", "", nil)
	if err != nil {
		return err
	}
	defer h.Close()
	removed, err := h.GC()
	for _, tap := range removed {
		fmt.Fprintf(c.stdout, "removed the record of %s: the TAP is gone\n", escape.String(tap))
	}
	return err
}

// runMAC prints a stable guest MAC for a VM (ifhook mac NAME [INDEX]), or
// checks one (ifhook mac --check MAC).
func runMAC(c *ctx, args []string) error {
	pol, err := policy.Load(c.config)
	if err != nil {
		return exit.Op("mac", "", exit.New(exit.Policy, "policy: %w", err))
	}
	if c.opt.check != "" {
		if len(args) != 0 {
			return usageErr("mac: --check takes no other arguments")
		}
		mac, err := policy.CheckGuestMAC(pol.MACPrefix, c.opt.check)
		if err != nil {
			return exit.Op("mac", "", exit.As(exit.BadTAP, err))
		}
		fmt.Fprintf(c.stdout, "%s: ok (unicast, prefix %s)\n", mac, pol.MACPrefix)
		return nil
	}
	if len(args) < 1 || args[0] == "" {
		return usageErr("mac: want NAME [INDEX] or --check MAC")
	}
	index := 0
	if len(args) == 2 {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 0 {
			return usageErr("mac: INDEX %s is not a number from 0", escape.Quote(args[1]))
		}
		index = n
	}
	fmt.Fprintln(c.stdout, policy.GuestMAC(pol.MACPrefix, args[0], index))
	return nil
}

// runInstallHooks makes /etc/qemu-ifup and /etc/qemu-ifdown links to this
// binary, as install.sh does, or with --undo removes them.
func runInstallHooks(c *ctx, _ []string) error {
	bin, err := install.Executable()
	if err != nil {
		return exit.Op("install-hooks", "", exit.As(exit.System, err))
	}
	if c.opt.bridgeHelper {
		return installBridgeHelper(c, bin)
	}
	opts := install.Options{Binary: bin}
	var done []string
	if c.opt.undo {
		done, err = install.Unlink(opts)
	} else {
		done, err = install.Link(opts)
	}
	return installed(c, done, err)
}

// installed prints what install-hooks did, a line per action, and maps its
// failure: a path that is not ours, or any other refusal of the files, is
// state (73).
func installed(c *ctx, done []string, err error) error {
	for _, line := range done {
		fmt.Fprintln(c.stdout, line)
	}
	if err != nil {
		kind := exit.KindOf(err)
		if errors.Is(err, install.ErrConflict) || kind == exit.Internal {
			kind = exit.State
		}
		return exit.Op("install-hooks", "", exit.As(kind, err))
	}
	return nil
}

func runSetup(c *ctx, names []string) error {
	h, err := c.open("setup", "", nil)
	if err != nil {
		return err
	}
	defer h.Close()
	if len(names) == 0 && len(h.Policy.Bridges) == 0 {
		fmt.Fprintf(c.stdout, "%s describes no bridges ([bridges.NAME]); nothing to set up\n", escape.String(h.Policy.File))
		return nil
	}
	if c.opt.dryRun {
		plans, err := h.Bridges.ExplainSetup(names...)
		printPlans(c.stdout, plans)
		return err
	}
	plans, err := h.Bridges.Setup(names...)
	if c.verbose {
		printPlans(c.stdout, plans)
	}
	return err
}

func runTeardown(c *ctx, names []string) error {
	if c.opt.all == (len(names) > 0) {
		return usageErr("teardown: name the bridges, or give --all (not both)")
	}
	h, err := c.open("teardown", "", nil)
	if err != nil {
		return err
	}
	defer h.Close()
	if c.opt.dryRun {
		plans, err := h.Bridges.ExplainTeardown(c.opt.force, names...)
		printPlans(c.stdout, plans)
		return err
	}
	plans, err := h.Bridges.Teardown(c.opt.force, names...)
	if c.verbose {
		printPlans(c.stdout, plans)
	} else {
		printNotes(c.stdout, plans)
	}
	return err
}

func runStatus(c *ctx, names []string) error {
	h, err := c.open("status", "", nil)
	if err != nil {
		return err
	}
	defer h.Close()
	sts, err := h.Bridges.Status(names...)
	if c.opt.json {
		emitJSON(c.stdout, orEmpty(sts))
	} else {
		if len(sts) == 0 && err == nil {
			fmt.Fprintf(c.stdout, "%s describes no bridges ([bridges.NAME])\n", escape.String(h.Policy.File))
		}
		for _, st := range sts {
			printStatus(c.stdout, st)
		}
	}
	return err
}

// runDoctor checks for traps; finding any is exit 1.
func runDoctor(c *ctx, names []string) error {
	h, err := c.open("doctor", "", nil)
	if err != nil {
		return err
	}
	defer h.Close()
	findings, err := h.Bridges.Doctor(names...)
	if err != nil {
		return err
	}
	if c.opt.json {
		emitJSON(c.stdout, orEmpty(findings))
	} else {
		for _, f := range findings {
			fmt.Fprintln(c.stdout, f)
		}
		if len(findings) == 0 {
			fmt.Fprintln(c.stdout, "no problems found")
		}
	}
	if len(findings) > 0 {
		return exit.New(exit.Findings, "doctor: %d problem(s) found", len(findings))
	}
	return nil
}

// usageLine is the usage in one line, for the errors that call for it.
func usageLine() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return "usage: qemu-ifup TAP | qemu-ifdown TAP | qemu-bridge-helper --br=BR --fd=N | ifhook [-v] [--config FILE] " + strings.Join(names, "|") + " [ARGS] (run 'ifhook help')"
}

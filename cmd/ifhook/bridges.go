package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ifhook/ifhook/ifhook"
	"github.com/ifhook/ifhook/ifhook/install"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
)

// syslogLog returns a log that also writes to syslog (unless turned off),
// for the subcommands that change the host.
func syslogLog(e env, stderr io.Writer) (*ifhook.Log, func()) {
	log := &ifhook.Log{Stderr: stderr, Verbose: e.verbose}
	if e.syslog == "off" {
		return log, func() {}
	}
	log.Syslog = &ifhook.Syslog{Path: e.syslog}
	return log, log.Syslog.Close
}

func printPlans(w io.Writer, plans []*ifhook.Plan) {
	for _, p := range plans {
		if p != nil {
			fmt.Fprint(w, p.Text())
		}
	}
}

// setup makes the policy's bridges (ifhook setup [--dry-run] [BRIDGE...]).
func setup(names []string, dryRun bool, e env, stdout, stderr io.Writer) int {
	log, closeLog := syslogLog(e, stderr)
	defer closeLog()
	h, closeHook, err := newHook(e, log, true)
	if err != nil {
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindOf(err), Op: "setup", Err: err})
	}
	defer closeHook()
	if len(names) == 0 && len(h.Policy.Bridges) == 0 {
		fmt.Fprintf(stdout, "%s describes no bridges ([bridges.NAME]); nothing to set up\n", h.Policy.File)
		return 0
	}
	if dryRun {
		plans, err := h.ExplainSetup(names...)
		printPlans(stdout, plans)
		if err != nil {
			return fail(stderr, err)
		}
		return 0
	}
	plans, err := h.Setup(names...)
	if e.verbose {
		printPlans(stdout, plans)
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

// teardown removes what ifhook made (ifhook teardown [--force] [--dry-run] --all|BRIDGE...).
func teardown(names []string, force, dryRun bool, e env, stdout, stderr io.Writer) int {
	log, closeLog := syslogLog(e, stderr)
	defer closeLog()
	h, closeHook, err := newHook(e, log, true)
	if err != nil {
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindOf(err), Op: "teardown", Err: err})
	}
	defer closeHook()
	if dryRun {
		plans, err := h.ExplainTeardown(force, names...)
		printPlans(stdout, plans)
		if err != nil {
			return fail(stderr, err)
		}
		return 0
	}
	plans, err := h.Teardown(force, names...)
	if e.verbose {
		printPlans(stdout, plans)
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

// status reports on the policy's bridges.
func status(names []string, asJSON bool, e env, stdout, stderr io.Writer) int {
	h, closeHook, err := newHook(e, &ifhook.Log{Stderr: stderr, Verbose: e.verbose}, false)
	if err != nil {
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindOf(err), Op: "status", Err: err})
	}
	defer closeHook()
	h.State = openStateIfThere(e)
	sts, err := h.Status(names...)
	if asJSON {
		if sts == nil {
			sts = []ifhook.BridgeStatus{}
		}
		data, _ := json.MarshalIndent(sts, "", "  ")
		fmt.Fprintf(stdout, "%s\n", data)
	} else {
		if len(sts) == 0 && err == nil {
			fmt.Fprintf(stdout, "%s describes no bridges ([bridges.NAME])\n", h.Policy.File)
		}
		for _, st := range sts {
			printStatus(stdout, st)
		}
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

func printStatus(w io.Writer, st ifhook.BridgeStatus) {
	exists := "missing"
	if st.Exists {
		exists = "exists"
		if !st.Up {
			exists += ", down"
		}
	}
	made := ""
	if st.MadeByIfhook {
		made = ", made by ifhook"
	}
	fmt.Fprintf(w, "%s: model %s, %s%s\n", st.Name, st.Model, exists, made)
	if st.Exists {
		fmt.Fprintf(w, "  ports:     %s\n", orNone(st.Ports))
		fmt.Fprintf(w, "  addresses: %s\n", orNone(st.Addresses))
		if st.STP {
			fmt.Fprintf(w, "  stp:       on\n")
		}
	}
	if st.Uplink != "" {
		fmt.Fprintf(w, "  uplink:    %s\n", st.Uplink)
	}
	for k, v := range st.Forwarding {
		fmt.Fprintf(w, "  %s = %s\n", k, v)
	}
	if st.NAT != "" {
		fmt.Fprintf(w, "  NAT rule:  %s\n", st.NAT)
	}
	if len(st.Missing) > 0 {
		fmt.Fprintf(w, "  setup would:\n")
		for _, m := range st.Missing {
			fmt.Fprintf(w, "    %s\n", m)
		}
	}
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// doctor checks for traps; exit 1 with findings.
func doctor(names []string, asJSON bool, e env, stdout, stderr io.Writer) int {
	h, closeHook, err := newHook(e, &ifhook.Log{Stderr: stderr, Verbose: e.verbose}, false)
	if err != nil {
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindOf(err), Op: "doctor", Err: err})
	}
	defer closeHook()
	h.State = openStateIfThere(e)
	findings, err := h.Doctor(names...)
	if err != nil {
		return fail(stderr, err)
	}
	if asJSON {
		if findings == nil {
			findings = []ifhook.Finding{}
		}
		data, _ := json.MarshalIndent(findings, "", "  ")
		fmt.Fprintf(stdout, "%s\n", data)
	} else {
		for _, f := range findings {
			fmt.Fprintln(stdout, f)
		}
		if len(findings) == 0 {
			fmt.Fprintln(stdout, "no problems found")
		}
	}
	if len(findings) > 0 {
		return 1
	}
	return 0
}

// openStateIfThere opens the state directory for reading when it exists,
// without creating it: status and doctor change nothing.
func openStateIfThere(e env) *state.Dir {
	if _, err := os.Stat(e.stateDir); err != nil {
		return nil
	}
	return &state.Dir{Path: e.stateDir}
}

// macCmd prints a stable guest MAC for a VM (ifhook mac NAME [INDEX]), or
// checks one (ifhook mac --check MAC).
func macCmd(args []string, check string, e env, stdout, stderr io.Writer) int {
	pol, err := loadPolicy(e)
	if err != nil {
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindPolicy, Op: "mac", Err: err})
	}
	if check != "" {
		if len(args) != 0 {
			fmt.Fprintf(stderr, "ifhook: mac: --check takes no other arguments (run 'ifhook help')\n")
			return 64
		}
		mac, err := policy.CheckGuestMAC(pol.MACPrefix, check)
		if err != nil {
			return fail(stderr, &ifhook.Error{Kind: ifhook.KindBadTAP, Op: "mac", Err: err})
		}
		fmt.Fprintf(stdout, "%s: ok (unicast, prefix %s)\n", mac, pol.MACPrefix)
		return 0
	}
	if len(args) < 1 || len(args) > 2 || args[0] == "" {
		fmt.Fprintf(stderr, "ifhook: mac: want NAME [INDEX] or --check MAC (run 'ifhook help')\n")
		return 64
	}
	index := 0
	if len(args) == 2 {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 0 {
			fmt.Fprintf(stderr, "ifhook: mac: INDEX %q is not a number from 0 (run 'ifhook help')\n", printable(args[1]))
			return 64
		}
		index = n
	}
	fmt.Fprintln(stdout, policy.GuestMAC(pol.MACPrefix, args[0], index))
	return 0
}

// installHooks makes /etc/qemu-ifup and /etc/qemu-ifdown links to this
// binary, as install.sh does, or with undo removes them.
func installHooks(undo bool, stdout, stderr io.Writer) int {
	bin, err := install.Executable()
	if err != nil {
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindSystem, Op: "install-hooks", Err: err})
	}
	opts := install.Options{Binary: bin}
	var done []string
	if undo {
		done, err = install.Unlink(opts)
	} else {
		done, err = install.Link(opts)
	}
	for _, line := range done {
		fmt.Fprintln(stdout, line)
	}
	if err != nil {
		kind := ifhook.KindOf(err)
		if errors.Is(err, install.ErrConflict) || kind == ifhook.KindInternal {
			kind = ifhook.KindState
		}
		return fail(stderr, &ifhook.Error{Kind: kind, Op: "install-hooks", Err: err})
	}
	return 0
}

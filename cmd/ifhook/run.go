package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ifhook/ifhook/ifhook"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
)

// version is stamped at build time: -ldflags "-X main.version=1.2.3".
var version = ""

// env is the environment ifhook reads. QEMU passes the hook exactly one
// argument and its own environment, so variables are the only way to
// configure a hook run by QEMU.
type env struct {
	config    string // IFHOOK_CONFIG
	stateDir  string // IFHOOK_STATE_DIR
	verbose   bool   // IFHOOK_VERBOSE
	syslog    string // IFHOOK_SYSLOG: socket path, or "off"
	lockWait  time.Duration
	configSet bool
}

func readEnv(getenv func(string) string) (env, error) {
	e := env{config: policy.DefaultPath, stateDir: state.DefaultDir, syslog: ifhook.DefaultSyslogSocket}
	if v := getenv("IFHOOK_CONFIG"); v != "" {
		e.config, e.configSet = v, true
	}
	if v := getenv("IFHOOK_STATE_DIR"); v != "" {
		e.stateDir = v
	}
	switch v := getenv("IFHOOK_VERBOSE"); v {
	case "", "0", "false", "no":
	default:
		e.verbose = true
	}
	if v := getenv("IFHOOK_SYSLOG"); v != "" {
		e.syslog = v
	}
	if v := getenv("IFHOOK_LOCK_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return e, usageErr("IFHOOK_LOCK_TIMEOUT=%q is not a positive duration like 10s", v)
		}
		e.lockWait = d
	}
	return e, nil
}

func usageErr(format string, args ...any) error {
	return &ifhook.Error{Kind: ifhook.KindUsage, Err: fmt.Errorf(format, args...)}
}

// run is main without os.Exit, so tests can call it. It returns the exit
// status; on failure it prints exactly one line to stderr (check prints one
// per problem).
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "ifhook: internal error (a bug; please report it): %v\n", r)
			code = 70
		}
	}()
	if len(args) == 0 {
		args = []string{"ifhook"}
	}
	// The name we were run by decides what to do: QEMU's launch_script
	// passes the script's path, as configured, as argv[0] and the TAP as
	// argv[1]. Never resolve the symlink: its name is the command.
	prog := filepath.Base(args[0])
	e, err := readEnv(getenv)
	if err != nil {
		return fail(stderr, err)
	}
	switch {
	case strings.HasSuffix(prog, "ifup"):
		return hookMode(ifhook.OpUp, args[1:], e, stdout, stderr)
	case strings.HasSuffix(prog, "ifdown"):
		return hookMode(ifhook.OpDown, args[1:], e, stdout, stderr)
	case prog == "ifhook" || strings.HasPrefix(prog, "ifhook"):
		return subcommand(args[1:], e, stdout, stderr)
	}
	fmt.Fprintf(stderr, "ifhook: run as %q; want a name ending in ifup or ifdown (qemu-ifup, qemu-ifdown) or ifhook; %s\n", oneLine(prog), usageLine)
	return 64
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "ifhook: %s\n", oneLine(err.Error()))
	return ifhook.Exit(err)
}

// printable escapes control characters, so that a message holding a raw
// argument stays on one line.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// oneLine keeps a message on one line whatever it wraps.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

// hookMode is ifhook run as qemu-ifup or qemu-ifdown: exactly one argument.
func hookMode(op ifhook.Op, args []string, e env, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "ifhook: %s: want exactly one argument, the TAP's name (QEMU passes it); got %d (run 'ifhook help')\n", op, len(args))
		return 64
	}
	return change(op, args[0], e, stdout, stderr)
}

// change runs up or down on one TAP.
func change(op ifhook.Op, tap string, e env, stdout, stderr io.Writer) int {
	log := &ifhook.Log{Stderr: stderr, Verbose: e.verbose}
	if e.syslog != "off" {
		log.Syslog = &ifhook.Syslog{Path: e.syslog}
		defer log.Syslog.Close()
	}
	// Validate the name before anything else, so that bad input is exit 65
	// whatever else is wrong.
	if err := policy.ValidIfName(tap); err != nil {
		err = &ifhook.Error{Kind: ifhook.KindBadTAP, Op: op.String(), TAP: tap, Err: err}
		log.Failure(err)
		return fail(stderr, err)
	}
	h, closeHook, err := newHook(e, log, op == ifhook.OpUp || op == ifhook.OpDown)
	if err != nil {
		err = &ifhook.Error{Kind: ifhook.KindOf(err), Op: op.String(), TAP: tap, Err: err}
		log.Failure(err)
		return fail(stderr, err)
	}
	defer closeHook()
	switch op {
	case ifhook.OpUp:
		h.Guest = ifhook.ParentGuest
		_, err = h.Up(tap)
	case ifhook.OpDown:
		_, err = h.Down(tap)
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

// newHook loads the policy and opens netlink and, when withState, the state
// directory.
func newHook(e env, log *ifhook.Log, withState bool) (*ifhook.Hook, func(), error) {
	pol, err := loadPolicy(e)
	if err != nil {
		return nil, nil, err
	}
	conn, err := rtnl.Open()
	if err != nil {
		return nil, nil, &ifhook.Error{Kind: ifhook.KindSystem, Err: err}
	}
	net := ifhook.NewNet(conn)
	h := &ifhook.Hook{Policy: pol, Links: net, Net: net, Log: log, LockTimeout: e.lockWait}
	if withState {
		dir, err := state.Open(e.stateDir)
		if err != nil {
			conn.Close()
			return nil, nil, &ifhook.Error{Kind: ifhook.KindState, Err: err}
		}
		h.State = dir
	}
	return h, conn.Close, nil
}

func loadPolicy(e env) (*policy.Policy, error) {
	pol, err := policy.Load(e.config)
	if err != nil {
		return nil, &ifhook.Error{Kind: ifhook.KindPolicy, Err: fmt.Errorf("policy: %w", err)}
	}
	return pol, nil
}

// subcommands are the names ifhook takes after its own.
var subcommands = map[string]bool{
	"up": true, "down": true, "explain": true, "check": true, "list": true, "gc": true,
	"setup": true, "teardown": true, "status": true, "doctor": true, "mac": true,
	"install-hooks": true, "version": true, "help": true,
}

// subcommand is ifhook run under its own name.
func subcommand(args []string, e env, stdout, stderr io.Writer) int {
	global := newFlags("ifhook", &e, stderr)
	if err := global.fs.Parse(args); err != nil {
		return flagExit(err, "", stdout, stderr)
	}
	args = global.fs.Args()
	if len(args) == 0 {
		fmt.Fprintf(stderr, "ifhook: no subcommand; %s\n", usageLine)
		return 64
	}
	cmd, args := args[0], args[1:]
	if !subcommands[cmd] {
		fmt.Fprintf(stderr, "ifhook: unknown subcommand %q; %s\n", printable(cmd), usageLine)
		return 64
	}
	f := newFlags(cmd, &e, stderr)
	var jsonOut, down, force, all, dryRun, undo *bool
	var vmName, guestMAC, checkMAC *string
	switch cmd {
	case "explain":
		jsonOut = f.fs.Bool("json", false, "print the plan as JSON")
		down = f.fs.Bool("down", false, "explain ifdown instead of ifup")
		vmName = f.fs.String("vm", "", "explain as for the VM of this -name")
		guestMAC = f.fs.String("guest-mac", "", "explain as for a guest NIC with this MAC")
	case "mac":
		checkMAC = f.fs.String("check", "", "check a MAC instead: well-formed, unicast, with mac_prefix")
	case "install-hooks":
		undo = f.fs.Bool("undo", false, "remove the links and put back what they replaced")
	case "list", "status", "doctor":
		jsonOut = f.fs.Bool("json", false, "print JSON")
	case "setup":
		dryRun = f.fs.Bool("dry-run", false, "print what setup would do, changing nothing")
	case "teardown":
		force = f.fs.Bool("force", false, "tear down even bridges that still have guest ports")
		all = f.fs.Bool("all", false, "every bridge ifhook made")
		dryRun = f.fs.Bool("dry-run", false, "print what teardown would do, changing nothing")
	}
	if err := f.fs.Parse(args); err != nil {
		return flagExit(err, cmd, stdout, stderr)
	}
	args = f.fs.Args()
	want := func(n int, what string) bool {
		if len(args) == n {
			return true
		}
		fmt.Fprintf(stderr, "ifhook: %s: want %s; got %d argument(s) (run 'ifhook help')\n", cmd, what, len(args))
		return false
	}
	switch cmd {
	case "up", "down":
		if !want(1, "one TAP name") {
			return 64
		}
		op := ifhook.OpUp
		if cmd == "down" {
			op = ifhook.OpDown
		}
		return change(op, args[0], e, stdout, stderr)
	case "explain":
		if !want(1, "one TAP name") {
			return 64
		}
		var g *ifhook.Guest
		if *vmName != "" || *guestMAC != "" {
			g = &ifhook.Guest{VM: *vmName}
			if *guestMAC != "" {
				mac, err := net.ParseMAC(*guestMAC)
				if err != nil || len(mac) != 6 {
					fmt.Fprintf(stderr, "ifhook: explain: --guest-mac %q is not a MAC address (run 'ifhook help')\n", printable(*guestMAC))
					return 64
				}
				g.MAC, g.DefaultMAC = mac, policy.IsQEMUDefault(mac)
			}
		}
		return explain(args[0], *down, *jsonOut, g, e, stdout, stderr)
	case "mac":
		return macCmd(args, *checkMAC, e, stdout, stderr)
	case "install-hooks":
		if !want(0, "no arguments") {
			return 64
		}
		return installHooks(*undo, stdout, stderr)
	case "check":
		if !want(0, "no arguments") {
			return 64
		}
		return check(e, stdout, stderr)
	case "list":
		if !want(0, "no arguments") {
			return 64
		}
		return list(*jsonOut, e, stdout, stderr)
	case "gc":
		if !want(0, "no arguments") {
			return 64
		}
		return gc(e, stdout, stderr)
	case "setup":
		return setup(args, *dryRun, e, stdout, stderr)
	case "teardown":
		if *all == (len(args) > 0) {
			fmt.Fprintf(stderr, "ifhook: teardown: name the bridges, or give --all (not both)\n")
			return 64
		}
		return teardown(args, *force, *dryRun, e, stdout, stderr)
	case "status":
		return status(args, *jsonOut, e, stdout, stderr)
	case "doctor":
		return doctor(args, *jsonOut, e, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "ifhook %s (%s)\n", versionString(), runtime.Version())
		return 0
	case "help":
		fmt.Fprint(stdout, Usage())
		return 0
	}
	fmt.Fprintf(stderr, "ifhook: unknown subcommand %q; %s\n", printable(cmd), usageLine)
	return 64
}

type flags struct{ fs *flag.FlagSet }

// newFlags makes a flag set with the flags every subcommand takes. Errors
// are returned, never acted on by the flag package, so the exit status
// stays ours (64).
func newFlags(name string, e *env, stderr io.Writer) flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package's own messages go nowhere: flagExit prints one
	// line (a raw argument could hold a newline) and -h is not an error.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.BoolVar(&e.verbose, "v", e.verbose, "print each step")
	fs.BoolVar(&e.verbose, "verbose", e.verbose, "print each step")
	fs.Func("config", "policy `file` (default "+policy.DefaultPath+")", func(s string) error {
		if s == "" {
			return errors.New("empty file name")
		}
		e.config, e.configSet = s, true
		return nil
	})
	return flags{fs}
}

func flagExit(err error, cmd string, stdout, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, Usage())
		return 0
	}
	where := "ifhook: "
	if cmd != "" {
		where += printable(cmd) + ": "
	}
	fmt.Fprintf(stderr, "%s%s (run 'ifhook help')\n", where, printable(err.Error()))
	return 64
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

func explain(tap string, down, asJSON bool, g *ifhook.Guest, e env, stdout, stderr io.Writer) int {
	log := &ifhook.Log{Stderr: stderr, Verbose: e.verbose}
	h, closeHook, err := newHook(e, log, false)
	if err != nil {
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindOf(err), Op: "explain", TAP: tap, Err: err})
	}
	defer closeHook()
	h.State = openStateIfThere(e)
	h.Guest = ifhook.ParentGuest
	if g != nil {
		h.Guest = func(string) ifhook.Guest { return *g }
	}
	var plan *ifhook.Plan
	if down {
		plan, err = h.ExplainDown(tap)
	} else {
		plan, err = h.Explain(tap)
	}
	if plan != nil {
		if asJSON {
			data, _ := json.MarshalIndent(plan.View(err), "", "  ")
			fmt.Fprintf(stdout, "%s\n", data)
		} else {
			fmt.Fprint(stdout, plan.Text())
		}
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

func check(e env, stdout, stderr io.Writer) int {
	pol, err := policy.Load(e.config)
	if err != nil {
		if probs, ok := errors.AsType[policy.Problems](err); ok {
			for _, p := range probs {
				fmt.Fprintf(stderr, "%s\n", oneLine(p.Error()))
			}
			fmt.Fprintf(stderr, "ifhook: check: %d problem(s) in %s\n", len(probs), e.config)
			return 78
		}
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindPolicy, Op: "check", Err: err})
	}
	// The bridges the policy would make are checked against the host too:
	// an uplink that is missing or already a port, an address in use.
	if len(pol.Bridges) > 0 {
		if conn, err := rtnl.Open(); err == nil {
			net := ifhook.NewNet(conn)
			h := &ifhook.Hook{Policy: pol, Links: net, Net: net, State: openStateIfThere(e)}
			errs := h.CheckBridges()
			conn.Close()
			for _, err := range errs {
				fmt.Fprintf(stderr, "%s: %s\n", pol.File, oneLine(err.Error()))
			}
			if len(errs) > 0 {
				fmt.Fprintf(stderr, "ifhook: check: %d problem(s) with the host for %s\n", len(errs), e.config)
				return 78
			}
		}
	}
	fmt.Fprintf(stdout, "%s: ok (%d rule(s), %d bridge(s); bridge = %q)\n", pol.File, len(pol.Rules), len(pol.Bridges), pol.Bridge)
	return 0
}

func list(asJSON bool, e env, stdout, stderr io.Writer) int {
	dir, err := state.Open(e.stateDir)
	if err != nil {
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindState, Op: "list", Err: err})
	}
	conn, err := rtnl.Open()
	if err != nil {
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindSystem, Op: "list", Err: err})
	}
	defer conn.Close()
	h := &ifhook.Hook{Links: conn, State: dir}
	items, err := h.List()
	if asJSON {
		if items == nil {
			items = []ifhook.Listing{}
		}
		data, _ := json.MarshalIndent(items, "", "  ")
		fmt.Fprintf(stdout, "%s\n", data)
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TAP\tBRIDGE\tSINCE\tVM\tQEMU PID\tGUEST MAC\tSTATE")
		for _, it := range items {
			st := "attached"
			if !it.Present {
				st = "gone (gc removes it)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.TAP, it.Bridge, it.Since.Local().Format(time.DateTime),
				dash(it.VM), dashInt(it.PID), dash(it.GuestMAC), st)
		}
		tw.Flush()
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dashInt(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func gc(e env, stdout, stderr io.Writer) int {
	log := &ifhook.Log{Stderr: stderr, Verbose: e.verbose}
	if e.syslog != "off" {
		log.Syslog = &ifhook.Syslog{Path: e.syslog}
		defer log.Syslog.Close()
	}
	dir, err := state.Open(e.stateDir)
	if err != nil {
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindState, Op: "gc", Err: err})
	}
	conn, err := rtnl.Open()
	if err != nil {
		return fail(stderr, &ifhook.Error{Kind: ifhook.KindSystem, Op: "gc", Err: err})
	}
	defer conn.Close()
	h := &ifhook.Hook{Links: conn, State: dir, Log: log, LockTimeout: e.lockWait}
	removed, err := h.GC()
	for _, tap := range removed {
		fmt.Fprintf(stdout, "removed the record of %s: the TAP is gone\n", tap)
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

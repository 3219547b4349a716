package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook"
	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/helper"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
)

// version is stamped at build time: -ldflags "-X main.version=1.2.3".
var version = ""

// env is the environment ifhook reads. QEMU passes the hook exactly one
// argument and its own environment, so variables are the only way to
// configure a hook run by QEMU.
type env struct {
	config     string // IFHOOK_CONFIG
	stateDir   string // IFHOOK_STATE_DIR
	bridgeConf string // IFHOOK_BRIDGE_CONF: the bridge helper's ACL
	dataDir    string // IFHOOK_DATA_DIR: leases and the addresses given to VMs
	verbose    bool   // IFHOOK_VERBOSE
	syslog     string // IFHOOK_SYSLOG: socket path, or "off"
	lockWait   time.Duration

	// privileged: ifhook got privileges at exec (the bridge helper's file
	// capability, a set-ID bit) for a caller who is not root. Then the
	// environment is not read, --config is not taken, and ignored says
	// what was asked for regardless.
	privileged bool
	ignored    []string
}

// envVars are the variables readEnv reads.
var envVars = []string{"IFHOOK_CONFIG", "IFHOOK_STATE_DIR", "IFHOOK_DATA_DIR", "IFHOOK_BRIDGE_CONF", "IFHOOK_VERBOSE", "IFHOOK_SYSLOG", "IFHOOK_LOCK_TIMEOUT"}

// readEnv reads the environment; privileged, it reads none of it, and
// notes which variables were set.
func readEnv(getenv func(string) string, privileged bool) (env, error) {
	e := env{config: policy.DefaultPath, stateDir: state.DefaultDir, bridgeConf: helper.DefaultACLFile, syslog: ifhook.DefaultSyslogSocket, privileged: privileged}
	if privileged {
		for _, v := range envVars {
			if getenv(v) != "" {
				e.ignored = append(e.ignored, v)
			}
		}
		return e, nil
	}
	if v := getenv("IFHOOK_BRIDGE_CONF"); v != "" {
		e.bridgeConf = v
	}
	if v := getenv("IFHOOK_CONFIG"); v != "" {
		e.config = v
	}
	if v := getenv("IFHOOK_STATE_DIR"); v != "" {
		e.stateDir = v
	}
	if v := getenv("IFHOOK_DATA_DIR"); v != "" {
		if !filepath.IsAbs(v) {
			return e, exit.New(exit.Usage, "IFHOOK_DATA_DIR=%s is not an absolute path", escape.Quote(v))
		}
		e.dataDir = v
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
			return e, exit.New(exit.Usage, "IFHOOK_LOCK_TIMEOUT=%q is not a positive duration like 10s", v)
		}
		e.lockWait = d
	}
	return e, nil
}

// usageErr is a usage error that points at the help.
func usageErr(format string, args ...any) error {
	return exit.New(exit.Usage, format+" (run 'ifhook help')", args...)
}

// run is main without os.Exit, so tests can call it. It returns the exit
// status; on failure it prints exactly one line to stderr (check and doctor
// print what they found first).
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			code = fail(stderr, exit.New(exit.Internal, "internal error (a bug; please report it): %v", r))
		}
	}()
	if len(args) == 0 {
		args = []string{"ifhook"}
	}
	// The name we were run by decides what to do: QEMU's launch_script
	// passes the script's path, as configured, as argv[0] and the TAP as
	// argv[1]. Never resolve the symlink: its name is the command.
	prog := filepath.Base(args[0])
	// Before anything is read: a run that got privileges at exec from a
	// file capability or a set-ID bit, for a caller who is not root, is
	// the bridge helper or nothing. The helper keeps CAP_NET_ADMIN alone;
	// any other name drops every privilege, and then fails as its caller
	// would. (For every other run this is a look at the auxiliary vector.)
	privileged := helper.Privileged()
	asHelper := strings.HasSuffix(prog, "bridge-helper")
	if privileged {
		drop := helper.DropAll
		if asHelper {
			drop = helper.DropToNetAdmin
		}
		if err := drop(); err != nil {
			return fail(stderr, err)
		}
	}
	e, err := readEnv(getenv, privileged)
	if err != nil {
		return fail(stderr, err)
	}
	c := &ctx{env: e, stdout: stdout, stderr: stderr}
	if asHelper {
		return c.bridgeHelper(args[1:])
	}
	switch {
	case strings.HasSuffix(prog, "ifup"):
		err = c.hook("up", args[1:])
	case strings.HasSuffix(prog, "ifdown"):
		err = c.hook("down", args[1:])
	case strings.HasPrefix(prog, "ifhook"):
		err = c.subcommand(args[1:])
	default:
		err = exit.New(exit.Usage, "run as %s; want a name ending in ifup, ifdown or bridge-helper (qemu-ifup, qemu-ifdown, qemu-bridge-helper) or ifhook; %s", escape.Quote(prog), usageLine())
	}
	if err != nil {
		if privileged {
			err = droppedNote(err, prog, e.ignored)
		}
		return fail(stderr, err)
	}
	return 0
}

// droppedNote says, on a failure's one line, why a file that carries
// privileges did no more than its caller could: they are the bridge
// helper's, and were dropped for any other name.
func droppedNote(err error, prog string, ignored []string) error {
	why := fmt.Sprintf("this file's privileges (a file capability or set-ID bit) are the bridge helper's alone, and were dropped when run as %s by uid %d", escape.Quote(prog), os.Getuid())
	if len(ignored) > 0 {
		why += "; " + strings.Join(ignored, ", ") + " ignored"
	}
	return exit.As(exit.KindOf(err), fmt.Errorf("%w (%s)", err, why))
}

// fail prints err as ifhook's one line and returns its exit status: the
// one place a failure becomes output and a number.
func fail(stderr io.Writer, err error) int {
	if !errors.Is(err, errPrinted) {
		fmt.Fprintf(stderr, "ifhook: %s\n", escape.Line(err.Error()))
	}
	return exit.Code(err)
}

// errPrinted marks a failure whose line has been printed already.
var errPrinted = errors.New("printed")

// ctx is one run of ifhook: its environment, options and output.
type ctx struct {
	env
	opt    options
	stdout io.Writer
	stderr io.Writer
}

// hook is ifhook run as qemu-ifup or qemu-ifdown: exactly one argument.
func (c *ctx) hook(op string, args []string) error {
	if len(args) != 1 {
		return usageErr("%s: want exactly one argument, the TAP's name (QEMU passes it); got %d", op, len(args))
	}
	return c.change(op, args[0])
}

// log returns the log of this run: stderr as -v says, and syslog unless
// it is turned off.
func (c *ctx) log() *ifhook.Log {
	log := &ifhook.Log{Stderr: c.stderr, Verbose: c.verbose}
	if c.syslog != "off" {
		log.Syslog = &ifhook.Syslog{Path: c.syslog}
	}
	return log
}

// open opens the library as this run's environment says: the one way cmd
// makes a Hook.
func (c *ctx) open(op, subject string, guest func(string) ifhook.Guest) (*ifhook.Hook, error) {
	h, err := ifhook.Open(ifhook.Config{PolicyFile: c.config, StateDir: c.stateDir, DataDir: c.dataDir, Log: c.log(),
		LockTimeout: c.lockWait, Guest: guest, Signals: true})
	if err != nil {
		return nil, exit.Op(op, subject, err)
	}
	return h, nil
}

// change runs up or down on one TAP.
func (c *ctx) change(op, tap string) error {
	// The name is checked before anything else, so that bad input is exit
	// 65 whatever else is wrong.
	if err := policy.ValidIfName(tap); err != nil {
		err = exit.Op(op, tap, exit.New(exit.BadTAP, "%w", err))
		c.log().Failure(err)
		return err
	}
	var guest func(string) ifhook.Guest
	if op == "up" {
		guest = ifhook.ParentGuest
	}
	h, err := c.open(op, tap, guest)
	if err != nil {
		c.log().Failure(err)
		return err
	}
	defer h.Close()
	defer h.Log.Syslog.Close()
	if op == "up" {
		_, err = h.Up(tap)
	} else {
		_, err = h.Down(tap)
	}
	return err
}

// subcommand is ifhook run under its own name.
func (c *ctx) subcommand(args []string) error {
	global := c.flags("ifhook")
	if err := global.Parse(args); err != nil {
		return c.flagErr(err, "")
	}
	args = global.Args()
	if len(args) == 0 {
		return exit.New(exit.Usage, "no subcommand; %s", usageLine())
	}
	cmd := lookup(args[0])
	if cmd == nil {
		return exit.New(exit.Usage, "unknown subcommand %s; %s", escape.Quote(args[0]), usageLine())
	}
	fs := c.flags(cmd.name)
	if cmd.flags != nil {
		cmd.flags(fs, &c.opt)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return c.flagErr(err, cmd.name)
	}
	args = fs.Args()
	if len(args) < cmd.min || (cmd.max >= 0 && len(args) > cmd.max) {
		return usageErr("%s: want %s; got %d argument(s)", cmd.name, cmd.want(), len(args))
	}
	return cmd.run(c, args)
}

// flags makes a flag set with the flags every subcommand takes. Errors are
// returned, never acted on by the flag package, so the exit status stays
// ours (64).
func (c *ctx) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package's own messages go nowhere: flagErr prints one line
	// (a raw argument could hold a newline) and -h is not an error.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.BoolVar(&c.verbose, "v", c.verbose, "print each step")
	fs.BoolVar(&c.verbose, "verbose", c.verbose, "print each step")
	fs.Func("config", "policy `file` (default "+policy.DefaultPath+")", func(s string) error {
		if s == "" {
			return errors.New("empty file name")
		}
		if c.privileged {
			c.log().Notice("--config ignored: running with privileges it got at exec, ifhook reads only %s", policy.DefaultPath)
			return nil
		}
		c.config = s
		return nil
	})
	return fs
}

func (c *ctx) flagErr(err error, cmd string) error {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(c.stdout, Usage())
		return nil
	}
	where := ""
	if cmd != "" {
		where = cmd + ": "
	}
	return usageErr("%s%s", where, err.Error())
}

// bridgeHelper is ifhook run as qemu-bridge-helper (any name ending in
// bridge-helper) by QEMU or libvirt: see package ifhook/helper. Its exit
// status is 1 for arguments, as qemu-bridge-helper's, and otherwise
// ifhook's table; QEMU reports any non-zero status as "bridge helper
// failed", after the one line printed here.
func (c *ctx) bridgeHelper(args []string) int {
	log := c.log()
	defer log.Syslog.Close()
	err := helper.Run(args, helper.Options{Privileged: c.privileged, PolicyFile: c.config, ACLFile: c.bridgeConf,
		StateDir: c.stateDir, Ignored: c.ignored, Log: log, LockTimeout: c.lockWait})
	switch {
	case err == nil:
		return 0
	case errors.Is(err, helper.ErrUsage):
		fmt.Fprintln(c.stderr, helper.UsageLine)
		return 1
	case errors.Is(err, helper.ErrBadName):
		fmt.Fprintf(c.stderr, "ifhook: %s\n", escape.Line(err.Error()))
		return 1
	}
	log.Failure(err)
	return fail(c.stderr, err)
}

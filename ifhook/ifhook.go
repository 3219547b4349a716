// Package ifhook attaches QEMU's TAP devices to bridges and detaches them,
// as /etc/qemu-ifup and /etc/qemu-ifdown, driven by a policy (package
// policy). It is a library: cmd/ifhook wires argv, flags, rendering and
// exit codes, and another Go program can call Open and do the same.
//
// Every operation is planned first, purely, from the policy and the observed
// kernel state, as a list of steps (package plan; `ifhook explain` prints
// them), then applied: ifup all or nothing, undoing what it did when a step
// fails or a signal asks to stop; ifdown best effort. A TAP already as
// wanted gives an empty plan, so running either twice is safe. What ifup
// changes is recorded per TAP (package state) before the change is made,
// so ifdown undoes exactly that, whatever point a killed ifup reached and
// whatever the policy says by then. The bridges the policy describes are
// package bridge's: an ifup that needs one makes it in the same plan.
package ifhook

import (
	"os"
	"time"

	"github.com/ifhook/ifhook/ifhook/bridge"
	"github.com/ifhook/ifhook/ifhook/dnsmasq"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

// DefaultLockTimeout is how long a change waits for another to finish.
const DefaultLockTimeout = 10 * time.Second

// DefaultSweepEvery is how often ifup looks for records of TAPs that are
// gone (QEMU killed with SIGKILL runs no downscript). Once per interval at
// most, so a burst of hundreds of VM starts pays for one sweep, not hundreds.
const DefaultSweepEvery = 30 * time.Second

// Config says how to open ifhook. Zero values are the defaults.
type Config struct {
	// Policy is the policy to use; when nil, PolicyFile is loaded
	// (policy.DefaultPath when empty, which falls back to the built-in
	// policy when it does not exist).
	Policy     *policy.Policy
	PolicyFile string
	// StateDir holds the records and the lock (state.DefaultDir when
	// empty), and the bridges' dnsmasq files (STATE/dnsmasq).
	StateDir string
	// DataDir holds what outlives a reboot: dnsmasq's lease files and
	// the books of the addresses given to VMs (dnsmasq.DefaultDataDir
	// when empty).
	DataDir string
	// HelperDir holds the bridge helper's records (state.HelperDir of
	// StateDir when empty; "-": none). list, gc, down and the sweep read
	// them too, and when it exists its guest-MAC index is the one every
	// guest is checked against, so that helper TAPs and root's see each
	// other. See helper.go.
	HelperDir string
	// AsHelper opens ifhook for the bridge helper (ifhook/helper): its
	// records are kept in HelperDir, a shared directory of the group
	// HelperGID (-1: whatever group the directory has), which it never
	// makes; only when it runs as root and that directory is missing,
	// in StateDir. It attaches with UpHelper only.
	AsHelper  bool
	HelperGID int
	// Kernel is the network namespace to act in; nil opens the calling
	// process's own (and Close closes it).
	Kernel kernel.Kernel
	Log    *Log
	// Guest tells what is known of the VM behind a TAP (ParentGuest, for
	// the hook QEMU runs); nil: nothing is.
	Guest       func(tap string) Guest
	LockTimeout time.Duration
	SweepEvery  time.Duration
	// Signals makes SIGTERM, SIGINT and SIGHUP stop a change between two
	// steps (all or nothing: undone; best effort: left for the next run)
	// instead of killing the process in the middle of one.
	Signals bool
	// HasNetAdmin reports whether the caller may change links; nil asks
	// the kernel for the effective CAP_NET_ADMIN.
	HasNetAdmin func() bool
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Hook is an open ifhook: a policy, a kernel, a state directory and a log.
type Hook struct {
	Policy *policy.Policy
	Kernel kernel.Kernel
	State  *state.Dir
	Log    *Log
	// Bridges makes and removes the policy's bridges, with this Hook's
	// kernel, state and lock.
	Bridges *bridge.Manager
	// DHCP runs the bridges' dnsmasqs and keeps their files (a Real
	// kernel starts them through it, in its namespace).
	DHCP *dnsmasq.Runner

	cfg     Config
	signals *plan.Signals // nil without Config.Signals
	close   []func()

	// The bridge helper's directory (helper.go): opened on first use.
	helper     *state.Dir
	helperDone bool
}

// Open returns a Hook as cfg says: the policy loaded, the kernel opened,
// the state directory ready to be used (it is made on first use).
func Open(cfg Config) (*Hook, error) {
	h := &Hook{cfg: cfg, Log: cfg.Log, Policy: cfg.Policy, Kernel: cfg.Kernel}
	if h.Log == nil {
		h.Log = &Log{}
	}
	if h.Policy == nil {
		file := cfg.PolicyFile
		if file == "" {
			file = policy.DefaultPath
		}
		p, err := policy.Load(file)
		if err != nil {
			return nil, exit.New(exit.Policy, "policy: %w", err)
		}
		h.Policy = p
	}
	dir := cfg.StateDir
	if dir == "" {
		dir = state.DefaultDir
	}
	var sd *state.Dir
	var err error
	if cfg.AsHelper {
		sd, err = h.helperState(dir)
	} else {
		sd, err = state.Open(dir)
	}
	if err != nil {
		return nil, err
	}
	sd.Report = func(err error) { h.Log.Notice("%v", err) }
	h.State = sd
	h.close = append(h.close, sd.Close)
	if h.Kernel == nil {
		k, err := kernel.Open()
		if err != nil {
			h.Close()
			return nil, exit.Sys(err, "open rtnetlink")
		}
		h.Kernel = k
		h.close = append(h.close, k.Close)
	}
	data := cfg.DataDir
	if data == "" {
		data = dnsmasq.DefaultDataDir
	}
	h.DHCP = &dnsmasq.Runner{Layout: dnsmasq.Layout{RunDir: dnsmasq.RunDirOf(sd.Path), DataDir: data}}
	if k, ok := h.Kernel.(interface{ SetServers(*dnsmasq.Runner) }); ok {
		k.SetServers(h.DHCP)
	}
	h.Bridges = &bridge.Manager{Policy: h.Policy, Kernel: h.Kernel, State: h.State, Log: h.Log,
		Lock: h.lock, NeedAdmin: h.needAdmin, Now: cfg.Now, DHCP: h.DHCP}
	if cfg.Signals {
		h.signals = &plan.Signals{}
		h.Bridges.Signals = h.signals
	}
	return h, nil
}

// Close releases what Open opened.
func (h *Hook) Close() {
	for i := len(h.close) - 1; i >= 0; i-- {
		h.close[i]()
	}
	h.close = nil
}

func (h *Hook) now() time.Time {
	if h.cfg.Now != nil {
		return h.cfg.Now()
	}
	return time.Now()
}

func (h *Hook) canAdmin() bool {
	if h.cfg.HasNetAdmin != nil {
		return h.cfg.HasNetAdmin()
	}
	return HasNetAdmin()
}

// HasNetAdmin reports whether this process has CAP_NET_ADMIN in its
// effective set.
func HasNetAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.Geteuid() == 0
	}
	return data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) != 0
}

// needAdmin refuses, before anything is read or locked, a change the
// caller has no right to make.
func (h *Hook) needAdmin(what string) error {
	if h.canAdmin() {
		return nil
	}
	return exit.New(exit.Permission, "needs CAP_NET_ADMIN to %s, and runs as uid %d without it", what, os.Getuid())
}

// lock takes the state lock exclusively.
func (h *Hook) lock() (*state.Lock, error) { return h.takeLock(h.State.Lock) }

// lockShared takes it shared: for the part of an ifup or ifdown that
// changes only its own TAP and record.
func (h *Hook) lockShared() (*state.Lock, error) { return h.takeLock(h.State.LockShared) }

// lockTimeout is how long a change waits for a lock.
func (h *Hook) lockTimeout() time.Duration {
	if h.cfg.LockTimeout == 0 {
		return DefaultLockTimeout
	}
	return h.cfg.LockTimeout
}

func (h *Hook) takeLock(take func(time.Duration) (*state.Lock, error)) (*state.Lock, error) {
	timeout := h.lockTimeout()
	lock, err := take(timeout)
	if exit.KindOf(err) == exit.Temporary {
		return nil, exit.New(exit.Temporary, "%w (another ifhook is still working: see 'ifhook list')", err)
	}
	return lock, err
}

// finishKilled finishes or undoes what a killed run left half done (a
// bridge journal still in flight) before a TAP change plans against the
// host: under the exclusive lock, which it leaves held.
func (h *Hook) finishKilled(lock **state.Lock) error {
	if !h.State.Inflight() {
		return nil
	}
	if err := h.exclusive(lock); err != nil {
		return err
	}
	return h.Bridges.Recover()
}

// exclusive makes a held lock exclusive, for what changes more than the
// TAP: flock cannot upgrade in place, so the shared lock is let go first,
// and whatever was observed under it must be observed again.
func (h *Hook) exclusive(l **state.Lock) error {
	if !(*l).Shared {
		return nil
	}
	(*l).Unlock()
	x, err := h.lock()
	if err != nil {
		*l = nil
		return err
	}
	*l = x
	return nil
}

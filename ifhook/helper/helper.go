// Package helper is ifhook as QEMU's bridge helper: a drop-in
// qemu-bridge-helper, which QEMU runs for -netdev bridge (and -nic
// bridge, -netdev tap,helper=) and libvirt for qemu:///session, so that a
// user who runs QEMU as themselves gets a TAP on a bridge.
//
// The protocol is qemu-bridge-helper's: arguments --use-vnet, --br=BR and
// --fd=N in any order; the helper makes the TAP itself (the kernel names
// it), and sends its descriptor over the unix socket N, as one zero byte
// with SCM_RIGHTS; QEMU reads the descriptor, then the exit status. On
// any failure the descriptor is closed (the TAP vanishes with it), one
// line goes to stderr, which QEMU and libvirt show, and the exit status
// is not 0.
//
// Who may use which bridge is QEMU's /etc/qemu/bridge.conf (acl.go, read
// exactly as qemu-bridge-helper reads it, as the caller), with the
// policy's [[helper.allow]] and [[helper.deny]] on top. Once allowed, the
// TAP gets ifhook's usual attach (package ifhook, Hook.UpHelper): the
// policy's MTU and host MAC, master, up, a record, all undone on failure.
//
// The helper is a separate copy of the ifhook binary carrying the file
// capability cap_net_admin+ep and set-group-ID to ifhook-helper (or,
// Fedora-style, set-user-ID root). Such a run is privileged (caps.go):
// it keeps CAP_NET_ADMIN alone, reads only fixed, root-owned files, and
// can attach only the TAP it made to a bridge that exists and the ACL
// allows.
package helper

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook"
	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

// Options say where a helper run reads from and how it reports.
type Options struct {
	// Privileged: the run got privileges at exec (Privileged). It then
	// reads only policy.DefaultPath and DefaultACLFile, which must be
	// root's and writable by nobody else, as must the directories above
	// them, and keeps its records in state.DefaultHelperDir.
	Privileged bool
	PolicyFile string // "": policy.DefaultPath
	ACLFile    string // "": DefaultACLFile
	StateDir   string // root's state directory; the helper's is beside it ("": state.DefaultDir)
	// Ignored names what the environment asked for that a privileged
	// run ignores ("IFHOOK_CONFIG"), to say so.
	Ignored     []string
	Log         *ifhook.Log
	Kernel      kernel.Kernel // nil: the calling thread's network namespace
	LockTimeout time.Duration
}

// Run is one helper run: it returns nil once QEMU has the TAP's
// descriptor, and otherwise the failure, with no TAP left behind. What a
// privileged run ignored is said: on its one line when it fails, as a
// notice when it does not.
func Run(args []string, o Options) error {
	err := run(args, o)
	if !o.Privileged || len(o.Ignored) == 0 {
		return err
	}
	why := fmt.Sprintf("%s ignored: the bridge helper runs with privileges, so it reads only %s and %s", strings.Join(o.Ignored, ", "), policy.DefaultPath, DefaultACLFile)
	if err == nil {
		if o.Log != nil {
			o.Log.Notice("%s", why)
		}
		return nil
	}
	if errors.Is(err, ErrUsage) || errors.Is(err, ErrBadName) {
		return err
	}
	return exit.As(exit.KindOf(err), fmt.Errorf("%w (%s)", err, why))
}

func run(args []string, o Options) error {
	a, err := ParseArgs(args)
	if err != nil {
		return err
	}
	if err := CheckSocket(a.FD); err != nil {
		return err
	}
	log := o.Log
	if log == nil {
		log = &ifhook.Log{}
	}
	if o.Privileged {
		o.PolicyFile, o.ACLFile, o.StateDir = policy.DefaultPath, DefaultACLFile, state.DefaultDir
	}
	if o.PolicyFile == "" {
		o.PolicyFile = policy.DefaultPath
	}
	if o.ACLFile == "" {
		o.ACLFile = DefaultACLFile
	}
	if o.StateDir == "" {
		o.StateDir = state.DefaultDir
	}
	if !ifhook.HasNetAdmin() {
		return exit.New(exit.Permission, "failed to create tun device: no CAP_NET_ADMIN (uid %d): this copy of ifhook is neither given the file capability nor set-user-ID root; as root: ifhook install-hooks --bridge-helper (or setcap cap_net_admin+ep on it)", os.Getuid())
	}
	read := ReadAsCaller
	if o.Privileged {
		read = readRootsOnly
	}
	pol, err := loadPolicy(o.PolicyFile, read)
	if err != nil {
		return err
	}
	acl, err := LoadACL(o.ACLFile, read)
	if err != nil {
		return err
	}
	if err := NeedsACL(acl, pol); err != nil {
		return err
	}
	caller := CurrentCaller()
	if d := Check(acl, pol, caller, a.Bridge); !d.Allowed {
		return d.Err
	}
	gid := -1
	if o.Privileged {
		rgid, egid, _ := getresgid()
		if egid == rgid {
			return exit.New(exit.State, "the bridge helper has no group of its own to keep its records in %s with: make it set-group-ID to that directory's group (as root: ifhook install-hooks --bridge-helper)", state.DefaultHelperDir)
		}
		gid = egid
	}
	h, err := ifhook.Open(ifhook.Config{Policy: pol, StateDir: o.StateDir, AsHelper: true, HelperGID: gid,
		Kernel: o.Kernel, Log: log, Signals: true, LockTimeout: o.LockTimeout})
	if err != nil {
		return err
	}
	defer h.Close()
	// The bridge is looked at before the TAP is made: a refusal leaves
	// nothing behind, not even a TAP for a moment.
	br, err := h.Kernel.LinkByName(a.Bridge)
	switch {
	case kernel.IsNotFound(err):
		return exit.New(exit.Unavailable, "bridge %s does not exist; the bridge helper attaches only to a bridge that exists, and never makes one", escape.Quote(a.Bridge))
	case err != nil:
		return exit.Sys(err, "look up bridge %s", a.Bridge)
	case !br.IsBridge():
		return exit.New(exit.Unavailable, "%s is %s, not a bridge; the bridge helper attaches only to a bridge", escape.Quote(a.Bridge), br.Describe())
	}
	tap, err := CreateTAP(a.UseVnet)
	if err != nil {
		return err
	}
	defer tap.Close()
	g := h.HelperGuest(a.Bridge)
	if g.Note != "" && g.VM == "" && g.PID == 0 {
		log.Notice("%s: %s", tap.Name, g.Note)
	}
	if _, err := h.UpHelper(tap.Name, a.Bridge, g); err != nil {
		return err
	}
	if err := SendFD(a.FD, tap.FD); err != nil {
		tap.Close()
		_ = h.ForgetHelperTAP(tap.Name)
		return err
	}
	vm := ""
	if g.VM != "" {
		vm = " for VM " + escape.Quote(g.VM)
	}
	log.Change("bridge helper: %s attached to %s%s, run by %s (QEMU pid %d)", tap.Name, a.Bridge, vm, caller, g.PID)
	return nil
}

// CurrentCaller is who runs this process: its real uid, and its real gid
// and supplementary groups (not the helper's own set-group-ID group).
func CurrentCaller() policy.HelperCaller {
	c := policy.HelperCaller{UID: os.Getuid()}
	if u, err := user.LookupId(strconv.Itoa(c.UID)); err == nil {
		c.User = u.Username
	}
	gids := []int{os.Getgid()}
	if more, err := unix.Getgroups(); err == nil {
		for _, g := range more {
			if g != gids[0] {
				gids = append(gids, g)
			}
		}
	}
	c.GIDs = gids
	for _, g := range gids {
		name := ""
		if grp, err := user.LookupGroupId(strconv.Itoa(g)); err == nil {
			name = grp.Name
		}
		c.Groups = append(c.Groups, name)
	}
	return c
}

// LookupCaller is who user (a name or a uid) would be as a caller: the
// user's primary group and the groups /etc/group lists it in (the
// groups a login session gets), for `ifhook explain --helper`.
func LookupCaller(name string) (policy.HelperCaller, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return policy.HelperCaller{}, exit.New(exit.Usage, "user %s: %w", escape.Quote(name), err)
	}
	c := policy.HelperCaller{User: u.Username}
	c.UID, _ = strconv.Atoi(u.Uid)
	ids, _ := u.GroupIds()
	primary, _ := strconv.Atoi(u.Gid)
	c.GIDs = []int{primary}
	for _, s := range ids {
		if g, err := strconv.Atoi(s); err == nil && g != primary {
			c.GIDs = append(c.GIDs, g)
		}
	}
	for _, g := range c.GIDs {
		gname := ""
		if grp, err := user.LookupGroupId(strconv.Itoa(g)); err == nil {
			gname = grp.Name
		}
		c.Groups = append(c.Groups, gname)
	}
	return c, nil
}

// loadPolicy reads the policy through read: the built-in one when the
// default file does not exist.
func loadPolicy(path string, read Reader) (*policy.Policy, error) {
	data, err := read(path)
	if errors.Is(err, fs.ErrNotExist) && path == policy.DefaultPath {
		return policy.Parse(policy.Default(), policy.BuiltinName)
	}
	if err != nil {
		return nil, exit.New(exit.Policy, "policy: cannot read %s: %s", escape.String(path), describe(err))
	}
	pol, err := policy.Parse(data, path)
	if err != nil {
		return nil, exit.New(exit.Policy, "policy: %w", err)
	}
	return pol, nil
}

// ReadAsCaller reads a file with this process's rights.
func ReadAsCaller(path string) ([]byte, error) { return rawfile.Read(path, MaxACLSize) }

// errNotRoots is wrapped when a privileged run refuses a file.
var errNotRoots = errors.New("not root's alone")

// readRootsOnly reads a file for a privileged run, with the caller's
// rights (the privileges kept do not bypass file permissions), only if it
// and every directory above it are root's and writable by nobody else: a
// file anyone else could have written is not the administrator's word.
func readRootsOnly(path string) ([]byte, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%s: %w: a relative path", path, errNotRoots)
	}
	// The directories that matter are those of the path as resolved: a
	// symbolic link is checked where it leads.
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			return nil, &fs.PathError{Op: "stat", Path: dir, Err: err}
		}
		if err := rootsOnly(dir, &st); err != nil {
			return nil, err
		}
		if dir == "/" {
			break
		}
	}
	return rawfile.ReadChecked(real, MaxACLSize, func(st *unix.Stat_t) error { return rootsOnly(path, st) })
}

func rootsOnly(path string, st *unix.Stat_t) error {
	if st.Uid != 0 {
		return fmt.Errorf("%s is owned by uid %d: %w (the bridge helper runs with privileges and reads only root's files)", path, st.Uid, errNotRoots)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("%s is writable by its group or others (mode %04o): %w (the bridge helper runs with privileges; chmod go-w %s)", path, st.Mode&0o7777, errNotRoots, path)
	}
	return nil
}

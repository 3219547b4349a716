// Package dnsmasq runs one dnsmasq per bridge that serves DHCP and DNS, as
// libvirt, Incus and Proxmox do, and keeps its files: the configuration
// package dhcp renders, the hosts directory ifup writes one entry per TAP
// into, the pid file, the log and the lease file.
//
// ifhook supervises it itself: dnsmasq daemonizes, and its pid file,
// checked against /proc/PID/cmdline and /proc/PID/exe before any signal
// (and signalled through a pidfd, so a pid reused between the check and the
// signal is never hit), says whether it runs. Whoever starts it first
// marks every inherited descriptor close-on-exec: QEMU runs its scripts
// with the TAP's descriptor open, and a dnsmasq that inherited it would
// keep the TAP alive after QEMU exits.
//
// Layout, for bridge BR:
//
//	RUN/BR.conf       the configuration (dnsmasq reads no other)
//	RUN/BR.pid        its pid file
//	RUN/BR.log        its log (BR.log.old: the previous run's)
//	RUN/BR.hosts/TAP  one hosts entry per TAP (dhcp-hostsdir)
//	DATA/BR.leases    its lease file: leases outlive a reboot
//	DATA/BR.addrs     ifhook's book of the addresses it gave VMs
//
// RUN is under ifhook's state directory (/run/ifhook/dnsmasq), DATA under
// /var/lib/ifhook/dnsmasq. dnsmasq reads the hosts directory as its own
// user, so RUN and the hosts directories are world-readable (the state
// directory itself only traversable); nothing there is secret.
package dnsmasq

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ifhook/ifhook/ifhook/dhcp"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
)

// DefaultDataDir holds the lease files and books.
const DefaultDataDir = "/var/lib/ifhook/dnsmasq"

// Binaries are where dnsmasq is looked for: fixed places only, never
// $PATH, which the caller of a privileged hook controls.
var Binaries = []string{"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq", "/bin/dnsmasq"}

// Package names the packages that install dnsmasq, for messages.
const Package = "dnsmasq-base on Debian and Ubuntu, dnsmasq on Fedora and RHEL"

// ErrNotInstalled is wrapped when no dnsmasq binary is found.
var ErrNotInstalled = errors.New("dnsmasq is not installed")

// Find returns the dnsmasq binary.
func Find() (string, error) {
	for _, p := range Binaries {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exit.New(exit.Unavailable, "%w (looked in %s): install %s", ErrNotInstalled, strings.Join(Binaries, ", "), Package)
}

// User is the user dnsmasq runs as once its sockets are open: "dnsmasq"
// when the host has that user (Debian's and Fedora's packages make it),
// else "nobody".
func User() string {
	if _, err := user.Lookup("dnsmasq"); err == nil {
		return "dnsmasq"
	}
	return "nobody"
}

// Layout says where each bridge's files are.
type Layout struct {
	RunDir  string // under the state directory: STATE/dnsmasq
	DataDir string // DefaultDataDir unless told otherwise
}

// RunDirOf is the run directory under a state directory.
func RunDirOf(stateDir string) string { return filepath.Join(stateDir, "dnsmasq") }

// Paths returns the files of bridge's dnsmasq.
func (l Layout) Paths(bridge string) dhcp.Paths {
	return dhcp.Paths{
		Conf:     filepath.Join(l.RunDir, bridge+".conf"),
		Pid:      filepath.Join(l.RunDir, bridge+".pid"),
		Log:      filepath.Join(l.RunDir, bridge+".log"),
		HostsDir: filepath.Join(l.RunDir, bridge+".hosts"),
		Leases:   filepath.Join(l.DataDir, bridge+".leases"),
	}
}

// Limits on what is read back.
const (
	maxConf = 64 << 10
	maxPid  = 32
	maxLog  = 1 << 20
)

// dirs opens the run and data directories (with create, making them),
// checked as the state directory is: root's or the caller's, writable
// by no one else.
type dirs struct {
	run, data *rawfile.Dir
}

func (d *dirs) close() {
	d.run.Close()
	d.data.Close()
}

func openDir(path string, create bool, perm uint32) (*rawfile.Dir, error) {
	dir, err := rawfile.OpenDir(path, false, perm)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, exit.New(exit.State, "make %s: %w", filepath.Dir(path), unwrap(err))
		}
		if dir, err = rawfile.OpenDir(path, true, perm); err == nil {
			err = dir.Chmod(perm)
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, exit.New(exit.State, "open %s: %w", path, unwrap(err))
	}
	if err := state.CheckDir(dir); err != nil {
		dir.Close()
		return nil, err
	}
	return dir, nil
}

func unwrap(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// traversable lets dnsmasq's user reach the run directory: the state
// directory it is in is made 0700, and stays unlistable (0711).
func traversable(path string) error {
	parent := filepath.Dir(path)
	st, err := os.Stat(parent)
	if err != nil {
		return exit.New(exit.State, "%s: %w", parent, unwrap(err))
	}
	if st.Mode().Perm()&0o011 == 0o011 {
		return nil
	}
	if err := os.Chmod(parent, st.Mode().Perm()|0o011); err != nil {
		return exit.New(exit.State, "let dnsmasq's user through %s: %w", parent, unwrap(err))
	}
	return nil
}

// checkBridge refuses what is not a bridge's name: it becomes a path.
func checkBridge(bridge string) error {
	if err := policy.ValidIfName(bridge); err != nil {
		return exit.New(exit.Internal, "dnsmasq for %q: %w", bridge, err)
	}
	return nil
}

// readPid reads the pid file: 0 when there is none or it holds no pid.
func readPid(run *rawfile.Dir, bridge string) int {
	b, err := run.Read(bridge+".pid", maxPid)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || pid > 1<<22 {
		return 0
	}
	return pid
}

// errorf is a failure of the bridge's dnsmasq, of kind k.
func errorf(k exit.Kind, bridge, format string, args ...any) error {
	return exit.New(k, "dnsmasq for %s: "+format, append([]any{bridge}, args...)...)
}

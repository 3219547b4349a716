package dnsmasq

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"golang.org/x/sys/unix"
)

// Runner runs the bridges' dnsmasqs of one network namespace.
type Runner struct {
	Layout Layout
	// Binary is dnsmasq's path; "" looks in Binaries.
	Binary string
	// InNS runs f on a thread inside the network namespace the bridges
	// are in, so that the dnsmasq it starts lives there; nil runs f on
	// the calling thread (the process's own namespace).
	InNS func(f func() error) error
	// User is the user dnsmasq drops to ("" is User()).
	User string
}

func (r *Runner) inNS(f func() error) error {
	if r.InNS == nil {
		return f()
	}
	return r.InNS(f)
}

// UserName returns the user dnsmasq runs as.
func (r *Runner) UserName() string {
	if r.User != "" {
		return r.User
	}
	return User()
}

// State is what is known of one bridge's dnsmasq.
type State struct {
	Bridge string
	// HasConf: its configuration is there; Conf holds it when asked.
	HasConf bool
	Conf    []byte
	// PID is the pid file's; Running says that process is alive (and,
	// when fully observed, that it is this bridge's dnsmasq).
	PID     int
	Running bool
	// Procs are every process running this bridge's configuration (only
	// when fully observed): a killed start can leave one the pid file
	// does not name yet.
	Procs []int
}

// Observe says how the bridge's dnsmasq is. Without full it costs a read
// of the pid file and a kill(pid, 0), for ifup's hot path; with full it
// also reads the configuration and checks every process that might be it.
func (r *Runner) Observe(bridge string, full bool) (State, error) {
	st := State{Bridge: bridge}
	if err := checkBridge(bridge); err != nil {
		return st, err
	}
	run, err := rawfile.OpenDir(r.Layout.RunDir, false, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, exit.New(exit.State, "open %s: %w", r.Layout.RunDir, unwrap(err))
	}
	defer run.Close()
	st.PID = readPid(run, bridge)
	if !full {
		st.HasConf = run.Exists(bridge + ".conf")
		st.Running = st.PID != 0 && alive(st.PID)
		return st, nil
	}
	conf, err := run.Read(bridge+".conf", maxConf)
	if err == nil {
		st.HasConf, st.Conf = true, conf
	}
	st.Procs = r.procs(bridge)
	st.Running = st.PID != 0 && slices.Contains(st.Procs, st.PID)
	return st, nil
}

// alive reports whether pid is a live process: one kill(pid, 0), and,
// when that finds it, its state, since a dnsmasq that died waits as a
// zombie until init reaps it.
func alive(pid int) bool {
	if err := unix.Kill(pid, 0); err != nil && err != unix.EPERM {
		return false
	}
	b, err := rawfile.Read("/proc/"+strconv.Itoa(pid)+"/stat", 1024)
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
}

// confArg is the one argument ifhook starts dnsmasq with: how its
// processes are recognised.
func (r *Runner) confArg(bridge string) string { return "--conf-file=" + r.Layout.Paths(bridge).Conf }

// isOurs reports whether pid runs dnsmasq with the bridge's configuration:
// its command line has the argument, and its executable (when this
// process may read the link) is a dnsmasq.
func (r *Runner) isOurs(pid int, bridge string) bool {
	cmdline, err := rawfile.Read("/proc/"+strconv.Itoa(pid)+"/cmdline", 8192)
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	if len(args) < 2 || !slices.Contains(args[1:], r.confArg(bridge)) {
		return false
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return true // not ours to read (another user's): the command line decides
	}
	exe = strings.TrimSuffix(exe, " (deleted)") // upgraded under it
	return strings.HasSuffix(exe, "/dnsmasq")
}

// procs lists the processes running the bridge's dnsmasq.
func (r *Runner) procs(bridge string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		if r.isOurs(pid, bridge) {
			out = append(out, pid)
		}
	}
	return out
}

// signal sends sig to pid through a pidfd, once it is known to be the
// bridge's dnsmasq: a pid that was reused in between is never signalled.
// It returns the pidfd (the caller closes it), or -1 when the process is
// gone or not ours.
func (r *Runner) signal(pid int, bridge string, sig unix.Signal) (int, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if err == unix.ESRCH {
			return -1, nil
		}
		return -1, fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	if !r.isOurs(pid, bridge) {
		unix.Close(fd)
		return -1, nil
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && err != unix.ESRCH {
		unix.Close(fd)
		return -1, fmt.Errorf("signal %d: %w", pid, err)
	}
	return fd, nil
}

// waitGone waits until the process behind pidfd exits, at most d.
func waitGone(pidfd int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}

// Reload has the bridge's dnsmasq read its hosts directory again
// (SIGHUP), which forgets the entries of files removed since. Not
// running is not an error: it reads the directory when it starts.
func (r *Runner) Reload(bridge string) error {
	st, err := r.Observe(bridge, false)
	if err != nil || !st.Running {
		return err
	}
	fd, err := r.signal(st.PID, bridge, unix.SIGHUP)
	if fd >= 0 {
		unix.Close(fd)
	}
	if err != nil {
		return errorf(exit.System, bridge, "reload: %v", err)
	}
	return nil
}

// stopProcs ends every process running the bridge's dnsmasq: SIGTERM,
// then SIGKILL after 3 seconds, as libvirt does.
func (r *Runner) stopProcs(bridge string, known int) error {
	pids := r.procs(bridge)
	if known != 0 && !slices.Contains(pids, known) && r.isOurs(known, bridge) {
		pids = append(pids, known)
	}
	var errs []error
	for _, pid := range pids {
		fd, err := r.signal(pid, bridge, unix.SIGTERM)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if fd < 0 {
			continue
		}
		if !waitGone(fd, 3*time.Second) {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			if !waitGone(fd, 2*time.Second) {
				errs = append(errs, fmt.Errorf("process %d outlived SIGKILL", pid))
			}
		}
		unix.Close(fd)
	}
	if len(errs) > 0 {
		return errorf(exit.System, bridge, "stop: %v", errors.Join(errs...))
	}
	return nil
}

// Stop ends the bridge's dnsmasq and removes its files but the lease file
// and the book (the addresses given outlive the bridge). Nothing to stop
// or remove is not an error.
func (r *Runner) Stop(bridge string) error {
	if err := checkBridge(bridge); err != nil {
		return err
	}
	run, err := rawfile.OpenDir(r.Layout.RunDir, false, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return r.stopProcs(bridge, 0)
	}
	if err != nil {
		return exit.New(exit.State, "open %s: %w", r.Layout.RunDir, unwrap(err))
	}
	defer run.Close()
	if err := r.stopProcs(bridge, readPid(run, bridge)); err != nil {
		return err
	}
	var errs []error
	if hosts, err := run.Sub(bridge+".hosts", false, 0); err == nil {
		if entries, err := hosts.List(); err == nil {
			for _, e := range entries {
				if err := hosts.Remove(e.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
		hosts.Close()
		if err := run.RemoveDir(bridge + ".hosts"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, name := range []string{".conf", ".pid", ".log", ".log.old"} {
		if err := run.Remove(bridge + name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errorf(exit.State, bridge, "remove its files: %v", errors.Join(errs...))
	}
	return nil
}

// startWait bounds how long dnsmasq takes to daemonize: its first process
// exits once the daemon has its sockets and pid file, or has failed.
const startWait = 10 * time.Second

// Start writes the bridge's configuration and starts its dnsmasq with it,
// ending one that runs first (a changed configuration is a restart). It
// fails with dnsmasq's own message when dnsmasq refuses to start (a port
// someone else has, a bad option), having left nothing running.
func (r *Runner) Start(bridge string, conf []byte) error {
	if err := checkBridge(bridge); err != nil {
		return err
	}
	bin := r.Binary
	if bin == "" {
		var err error
		if bin, err = Find(); err != nil {
			return err
		}
	}
	d, err := r.openDirs(bridge)
	if err != nil {
		return err
	}
	defer d.close()
	if err := r.stopProcs(bridge, readPid(d.run, bridge)); err != nil {
		return err
	}
	if err := d.run.WriteAtomic(bridge+".conf", conf, 0o644, false); err != nil {
		return errorf(exit.State, bridge, "write its configuration: %v", unwrap(err))
	}
	_ = d.run.Remove(bridge + ".pid")
	if d.run.Exists(bridge + ".log") {
		_ = d.run.Rename(bridge+".log", bridge+".log.old")
	}
	stderr, err := r.spawn(bin, bridge)
	if err != nil {
		_ = r.stopProcs(bridge, 0)
		return err
	}
	pid := readPid(d.run, bridge)
	if pid == 0 || !alive(pid) {
		_ = r.stopProcs(bridge, 0)
		why := lastLine(stderr)
		if why == "" {
			why = lastLine(tail(d.run, bridge+".log", 4096))
		}
		return errorf(exit.Unavailable, bridge, "it exited as soon as it started: %s", escape.String(orNone(why)))
	}
	return nil
}

func (r *Runner) openDirs(bridge string) (*dirs, error) {
	if err := traversable(r.Layout.RunDir); err != nil {
		return nil, err
	}
	run, err := openDir(r.Layout.RunDir, true, 0o755)
	if err != nil {
		return nil, err
	}
	data, err := openDir(r.Layout.DataDir, true, 0o755)
	if err != nil {
		run.Close()
		return nil, err
	}
	d := &dirs{run: run, data: data}
	hosts, err := run.Sub(bridge+".hosts", true, 0o755)
	if err == nil {
		err = hosts.Chmod(0o755)
		hosts.Close()
	}
	if err != nil {
		d.close()
		return nil, errorf(exit.State, bridge, "hosts directory: %v", unwrap(err))
	}
	return d, nil
}

// spawn runs dnsmasq --conf-file=CONF in the namespace and waits for its
// first process to exit (dnsmasq daemonizes), returning what it wrote on
// stderr. It forks with syscall.ForkExec, not os/exec, which every hook
// run would pay for in start-up time: the child gets /dev/null, a memfd for
// its stderr, a minimal environment, / as its directory and a session of
// its own (out of QEMU's process group: a ^C at QEMU's terminal is not for
// it).
func (r *Runner) spawn(bin, bridge string) ([]byte, error) {
	if err := CloseOnExec(); err != nil {
		return nil, errorf(exit.System, bridge, "mark inherited descriptors close-on-exec: %v", err)
	}
	errfd, err := unix.MemfdCreate("dnsmasq-stderr", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, errorf(exit.System, bridge, "memfd: %v", err)
	}
	defer unix.Close(errfd)
	null, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errorf(exit.System, bridge, "%s: %v", os.DevNull, err)
	}
	defer unix.Close(null)
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"},
		Files: []uintptr{uintptr(null), uintptr(null), uintptr(errfd)},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	var pid int
	if err := r.inNS(func() error {
		var err error
		pid, err = syscall.ForkExec(bin, []string{"dnsmasq", r.confArg(bridge)}, attr)
		return err
	}); err != nil {
		return nil, errorf(exit.System, bridge, "start %s: %v", bin, err)
	}
	type waited struct {
		ws  syscall.WaitStatus
		err error
	}
	done := make(chan waited, 1)
	go func() {
		var w waited
		for {
			_, w.err = syscall.Wait4(pid, &w.ws, 0, nil)
			if w.err != syscall.EINTR {
				break
			}
		}
		done <- w
	}()
	var w waited
	select {
	case w = <-done:
	case <-time.After(startWait):
		_ = syscall.Kill(pid, syscall.SIGKILL) // our child, not yet reaped: the pid is its
		<-done
		return nil, errorf(exit.Unavailable, bridge, "it did not finish starting within %s", startWait)
	}
	out := make([]byte, 4096)
	n, _ := unix.Pread(errfd, out, 0)
	out = out[:max(n, 0)]
	switch {
	case w.err != nil:
		return out, errorf(exit.System, bridge, "wait for it: %v", w.err)
	case w.ws.Signaled():
		return out, errorf(exit.Unavailable, bridge, "it was killed by %v as it started: %s", w.ws.Signal(), escape.String(orNone(lastLine(out))))
	case w.ws.ExitStatus() != 0:
		return out, errorf(exit.Unavailable, bridge, "it refused to start (exit status %d): %s", w.ws.ExitStatus(), escape.String(orNone(lastLine(out))))
	}
	return out, nil
}

func orNone(s string) string {
	if s == "" {
		return "no message"
	}
	return s
}

// lastLine is the last non-empty line of b, trimmed of dnsmasq's
// "dnsmasq: " prefix.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return strings.TrimPrefix(l, "dnsmasq: ")
		}
	}
	return ""
}

// tail returns the last n bytes of a file in dir.
func tail(dir *rawfile.Dir, name string, n int) []byte {
	b, err := dir.Read(name, maxLog)
	if err != nil {
		return nil
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}

// CloseOnExec marks every descriptor from 3 up close-on-exec, so a
// program this process starts inherits none of what it inherited: QEMU
// runs its scripts with the TAP's descriptor open and without
// close-on-exec, and whatever kept it open would keep the TAP alive.
func CloseOnExec() error {
	err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if err != unix.ENOSYS && err != unix.EINVAL {
		return err
	}
	// Before Linux 5.11: one by one.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return err
		}
	}
	return nil
}

package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"golang.org/x/sys/unix"
)

// FromParent reads the VM of the process that started this one: QEMU runs
// its ifup and ifdown scripts as its own children (net/tap.c:
// launch_script forks and execs them).
func FromParent() (*VM, error) { return FromPID(os.Getppid()) }

// ParentExe returns the parent process's executable, with one readlink:
// QEMU runs its scripts as its own children, libvirt its ethernet scripts
// as libvirtd's or virtqemud's. An unreadable link (another user's
// process) is an error wrapping fs.ErrPermission.
func ParentExe() (string, error) {
	var buf [256]byte
	path := "/proc/" + strconv.Itoa(os.Getppid()) + "/exe"
	n, err := unix.Readlink(path, buf[:])
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: path, Err: err}
	}
	if n == len(buf) {
		return readlink(path) // a long path: read it whole
	}
	return string(buf[:n]), nil
}

// ParentMayBeQEMU reports whether the parent process could be QEMU: its
// executable is a QEMU system emulator, or cannot be read (another user's
// process, which FromParent then judges by argv[0]).
func ParentMayBeQEMU() bool {
	exe, err := ParentExe()
	if err != nil {
		return errors.Is(err, fs.ErrPermission)
	}
	return IsQEMU(exe)
}

// FromPID reads the VM of QEMU process pid from /proc/PID/exe and
// /proc/PID/cmdline. It fails with an error wrapping ErrNotQEMU when the
// process is not a QEMU system emulator, fs.ErrNotExist when it is gone, and
// fs.ErrPermission when its command line cannot be read. When only the
// executable link is unreadable (another user's process), argv[0] stands in
// for it, with a note.
func FromPID(pid int) (*VM, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("no process %d", pid)
	}
	dir := "/proc/" + strconv.Itoa(pid)
	exe, exeErr := readlink(dir + "/exe")
	if exeErr != nil && !errors.Is(exeErr, fs.ErrPermission) {
		return nil, procErr(pid, exeErr)
	}
	exe, deleted := strings.CutSuffix(exe, " (deleted)")
	if exeErr == nil && !IsQEMU(exe) {
		return nil, fmt.Errorf("process %d runs %s: %w", pid, exe, ErrNotQEMU)
	}
	data, err := readBounded(dir+"/cmdline", maxBytes)
	if err != nil {
		return nil, procErr(pid, err)
	}
	args := splitCmdline(data)
	if len(args) == 0 {
		return nil, fmt.Errorf("process %d has an empty command line (exiting?): %w", pid, fs.ErrNotExist)
	}
	if exeErr != nil && !IsQEMU(args[0]) {
		return nil, fmt.Errorf("process %d runs %s (by its argv[0]; %v): %w", pid, args[0], exeErr, ErrNotQEMU)
	}
	vm, err := Parse(args)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	vm.PID, vm.Exe = pid, exe
	switch {
	case exeErr != nil:
		vm.Notes = append([]string{fmt.Sprintf("%v: judged QEMU by argv[0] %s", exeErr, args[0])}, vm.Notes...)
	case deleted:
		vm.Notes = append([]string{exe + " was replaced since QEMU started"}, vm.Notes...)
	}
	return vm, nil
}

// procErr makes a /proc read error say what it means for the process.
func procErr(pid int, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ESRCH):
		return fmt.Errorf("process %d is gone or has no executable (it exited, or is a kernel thread): %w", pid, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("process %d: not allowed to read its command line (another user's process, or /proc mounted with hidepid=): %w", pid, err)
	}
	return fmt.Errorf("process %d: %w", pid, err)
}

// readlink reads a symbolic link with one system call.
func readlink(path string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlink(path, buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: path, Err: err}
	}
	return string(buf[:n]), nil
}

// readBounded reads a /proc file of at most limit bytes with plain system
// calls (see ifhook/internal/rawfile for why that matters to a hook),
// failing with ErrTooLong beyond the limit.
func readBounded(path string, limit int) ([]byte, error) {
	b, err := rawfile.Read(path, limit)
	if errors.Is(err, rawfile.ErrTooLarge) {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLong, limit)
	}
	return b, err
}

// splitCmdline splits /proc/PID/cmdline, NUL-terminated arguments.
func splitCmdline(data []byte) []string {
	data = bytes.TrimSuffix(data, []byte{0})
	if len(data) == 0 {
		return nil
	}
	return strings.Split(string(data), "\x00")
}

// maxFDs bounds the descriptors HeldTAPs looks at: QEMU's are a few dozen,
// hundreds with many queues.
const maxFDs = 1 << 16

// HeldTAPs lists the TAP file descriptors process pid holds: those whose
// /proc/PID/fd link is /dev/net/tun, each with the device its
// /proc/PID/fdinfo iff: line names (tun_chr_show_fdinfo, Linux 3.13 on).
// Reading another process's descriptors needs the right to ptrace it
// (root, or the same user): else it fails with fs.ErrPermission.
func HeldTAPs(pid int) ([]HeldTAP, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("no process %d", pid)
	}
	dir := "/proc/" + strconv.Itoa(pid)
	fds, err := rawfile.OpenDir(dir+"/fd", false, 0)
	if err != nil {
		return nil, procErr(pid, err)
	}
	defer fds.Close()
	infos, err := rawfile.OpenDir(dir+"/fdinfo", false, 0)
	if err != nil {
		return nil, procErr(pid, err)
	}
	defer infos.Close()
	entries, err := fds.List()
	if err != nil {
		return nil, procErr(pid, err)
	}
	if len(entries) > maxFDs {
		return nil, fmt.Errorf("process %d holds %d descriptors, more than %d", pid, len(entries), maxFDs)
	}
	var out []HeldTAP
	var buf [64]byte
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name)
		if err != nil || fd < 0 {
			continue
		}
		n, err := unix.Readlinkat(fds.FD(), e.Name, buf[:])
		if err != nil || string(buf[:n]) != "/dev/net/tun" {
			continue // closed meanwhile, or not a TAP
		}
		info, err := infos.Read(e.Name, 4096)
		if err != nil {
			continue
		}
		if name := iffName(info); name != "" {
			out = append(out, HeldTAP{FD: fd, Name: name})
		}
	}
	return out, nil
}

// ErrLibvirt is wrapped by FromHelperParent when the bridge helper was run
// by libvirt's daemon (qemu:///session runs the helper itself, before it
// starts QEMU, and passes it no VM).
var ErrLibvirt = errors.New("run by libvirt, which does not say for which VM")

// FromHelperParent reads the VM of the QEMU that runs the bridge helper:
// the helper's parent, or, when QEMU ran it through /bin/sh -c (a helper=
// path holding a space or a tab, net/tap.c: net_bridge_run_helper), the
// shell's parent. A parent that is libvirt's daemon is ErrLibvirt.
func FromHelperParent() (*VM, error) {
	ppid := os.Getppid()
	vm, err := FromPID(ppid)
	if !errors.Is(err, ErrNotQEMU) {
		return vm, err
	}
	if shell, gp, ok := shellOf(ppid); ok {
		if vm, gerr := FromPID(gp); gerr == nil {
			vm.Notes = append([]string{fmt.Sprintf("run through %s -c (process %d), QEMU's child", shell, ppid)}, vm.Notes...)
			return vm, nil
		}
	}
	if name := processName(ppid); name == "virtqemud" || name == "libvirtd" {
		return nil, fmt.Errorf("process %d is %s: %w", ppid, name, ErrLibvirt)
	}
	return nil, err
}

// shellOf reports whether process pid is a shell running a -c command,
// and its parent.
func shellOf(pid int) (shell string, ppid int, ok bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	data, err := readBounded(dir+"/cmdline", 1<<16)
	if err != nil {
		return "", 0, false
	}
	args := splitCmdline(data)
	if len(args) < 3 || args[1] != "-c" {
		return "", 0, false
	}
	switch filepath.Base(args[0]) {
	case "sh", "dash", "bash", "ash", "busybox":
	default:
		return "", 0, false
	}
	stat, err := readBounded(dir+"/stat", 4096)
	if err != nil {
		return "", 0, false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", 0, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(fields[1])
	return args[0], ppid, err == nil && ppid > 1
}

// processName is the base name of what process pid runs: its executable,
// or, when that cannot be read, its argv[0].
func processName(pid int) string {
	dir := "/proc/" + strconv.Itoa(pid)
	if exe, err := readlink(dir + "/exe"); err == nil {
		return filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	}
	data, err := readBounded(dir+"/cmdline", 1<<16)
	if err != nil {
		return ""
	}
	if args := splitCmdline(data); len(args) > 0 {
		return filepath.Base(args[0])
	}
	return ""
}

package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestFromPIDNotQEMU(t *testing.T) {
	_, err := FromPID(os.Getpid())
	if !errors.Is(err, ErrNotQEMU) {
		t.Fatalf("FromPID(self) = %v, want ErrNotQEMU", err)
	}
	t.Logf("self: %v", err)
	if _, err := FromParent(); !errors.Is(err, ErrNotQEMU) {
		t.Errorf("FromParent() = %v, want ErrNotQEMU", err)
	}
}

func TestFromPIDGone(t *testing.T) {
	// PIDs never go this high (pid_max is at most 4194304).
	_, err := FromPID(1<<31 - 1)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("FromPID(huge) = %v, want fs.ErrNotExist", err)
	}
	t.Logf("gone: %v", err)
	for _, pid := range []int{0, -1} {
		if _, err := FromPID(pid); err == nil {
			t.Errorf("FromPID(%d) succeeded", pid)
		}
	}
}

func TestSplitCmdline(t *testing.T) {
	for in, want := range map[string][]string{
		"qemu\x00-name\x00x\x00": {"qemu", "-name", "x"},
		"qemu\x00\x00-S\x00":     {"qemu", "", "-S"},
		"qemu -name x":           {"qemu -name x"},
		"":                       nil,
		"\x00":                   nil,
	} {
		if got := splitCmdline([]byte(in)); !reflect.DeepEqual(got, want) {
			t.Errorf("splitCmdline(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFromPIDQEMU starts a QEMU with no machine, no devices and no network,
// paused, reads it, and kills it again.
func TestFromPIDQEMU(t *testing.T) {
	const bin = "/usr/bin/qemu-system-x86_64"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no %s", bin)
	}
	cmd := exec.Command(bin, "-S", "-nographic", "-nodefaults", "-display", "none", "-name", "probe", "-machine", "none")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() {
		// Only the process this test started, by its PID.
		cmd.Process.Kill()
		cmd.Wait()
	}()
	// Start returns once the child has exec'd QEMU, so its /proc entry
	// already shows QEMU; retry briefly all the same.
	var vm *VM
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if vm, err = FromPID(pid); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("FromPID(%d): %v (qemu stderr: %s)", pid, err, stderr.String())
	}
	if vm.Name != "probe" || vm.PID != pid || !IsQEMU(vm.Exe) {
		t.Errorf("FromPID = name %q pid %d exe %q", vm.Name, vm.PID, vm.Exe)
	}
	if want := cmd.Args; !reflect.DeepEqual(vm.Args, want) {
		t.Errorf("Args = %q, want %q", vm.Args, want)
	}
	if len(vm.NICs) != 0 {
		t.Errorf("NICs = %+v, want none (-nodefaults)", vm.NICs)
	}
	if _, ok, why := vm.NICForTAP("tap0"); ok || why == "" {
		t.Errorf("NICForTAP(tap0) = %v, %q", ok, why)
	}
}

func TestProcErr(t *testing.T) {
	for _, tt := range []struct {
		err    error
		target error
		says   string
	}{
		{&fs.PathError{Op: "open", Path: "/proc/9/cmdline", Err: unix.ENOENT}, fs.ErrNotExist, "is gone"},
		{&fs.PathError{Op: "read", Path: "/proc/9/cmdline", Err: unix.ESRCH}, unix.ESRCH, "is gone"},
		{&fs.PathError{Op: "open", Path: "/proc/9/cmdline", Err: unix.EACCES}, fs.ErrPermission, "not allowed"},
		{&fs.PathError{Op: "read", Path: "/proc/9/cmdline", Err: unix.EIO}, unix.EIO, "process 9"},
	} {
		err := procErr(9, tt.err)
		if !errors.Is(err, tt.target) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("procErr(%v) = %v", tt.err, err)
		}
	}
}

// helperEnv makes the test binary act as a helper process instead.
const helperEnv = "IFHOOK_QEMU_TEST_HELPER"

// TestHelperProcess is not a test: run with helperEnv set it either sleeps
// (to be read) or reads a process with FromPID and prints what it got.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	switch {
	case mode == "":
		t.Skip("helper process only")
	case mode == "sleep":
		time.Sleep(30 * time.Second)
	case strings.HasPrefix(mode, "shell:"):
		// A QEMU that runs its bridge helper through /bin/sh -c.
		self, _ := os.Executable()
		cmd := exec.Command("/bin/sh", "-c", "'"+self+"' -test.run=^TestHelperProcess$"+strings.TrimPrefix(mode, "shell:"))
		cmd.Env = append(os.Environ(), helperEnv+"=helper")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Run()
	case mode == "spawn":
		// libvirt's session daemon runs the helper itself.
		self, _ := os.Executable()
		cmd := exec.Command(self, "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), helperEnv+"=helper")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Run()
	case mode == "helper":
		vm, err := FromHelperParent()
		if err != nil {
			fmt.Println("error:", err)
		} else {
			fmt.Printf("pid=%d notes=%q\n", vm.PID, vm.Notes)
		}
	case strings.HasPrefix(mode, "read:"):
		pid, _ := strconv.Atoi(strings.TrimPrefix(mode, "read:"))
		vm, err := FromPID(pid)
		if err != nil {
			fmt.Println("error:", err)
		} else {
			fmt.Printf("exe=%q notes=%q\n", vm.Exe, vm.Notes)
		}
	}
	os.Exit(0)
}

// TestFromPIDExeUnreadable reads, as user nobody, a root process whose
// /proc/PID/exe nobody may not follow: FromPID then judges it by argv[0].
// The process is a copy of this test binary named qemu-system-fake.
func TestFromPIDExeUnreadable(t *testing.T) {
	if os.Getuid() != 0 || testing.Short() {
		t.Skip("needs root to run a helper as nobody")
	}
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "ifhook-qemu-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	fake := filepath.Join(dir, "qemu-system-fake")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(fake, self); err != nil {
		t.Fatal(err)
	}

	target := exec.Command(fake, "-test.run=^TestHelperProcess$")
	target.Env = append(os.Environ(), helperEnv+"=sleep")
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		target.Process.Kill() // the helper this test started, by PID
		target.Wait()
	}()

	reader := exec.Command(fake, "-test.run=^TestHelperProcess$")
	reader.Env = append(os.Environ(), helperEnv+"=read:"+strconv.Itoa(target.Process.Pid))
	reader.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := reader.CombinedOutput()
	if err != nil {
		t.Skipf("cannot run a helper as nobody: %v: %s", err, out)
	}
	got := string(out)
	t.Logf("as nobody: %s", strings.TrimSpace(got))
	if strings.Contains(got, "not allowed") {
		t.Skipf("/proc hides other users' command lines here: %s", got)
	}
	if !strings.Contains(got, `exe=""`) || !strings.Contains(got, "judged QEMU by argv[0]") {
		t.Errorf("FromPID as nobody: %s", got)
	}
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestFromHelperParent: QEMU runs a helper= path holding a space through
// /bin/sh -c; the helper still finds QEMU, whether the shell forks it
// ("; true" after it) or execs it.
func TestFromHelperParent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "qemu-system-fake")
	if err := copyFile(fake, self); err != nil {
		t.Fatal(err)
	}
	for _, tail := range []string{"", "; true"} {
		cmd := exec.Command(fake, "-test.run=^TestHelperProcess$", "--", "-name", "viash", "-netdev", "bridge,id=n0,br=br0")
		cmd.Env = append(os.Environ(), helperEnv+"=shell:"+tail)
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		got := out.String()
		if err != nil || !strings.Contains(got, fmt.Sprintf("pid=%d ", cmd.Process.Pid)) {
			t.Errorf("sh -c %q: %v: %s", tail, err, got)
		}
		if tail != "" && !strings.Contains(got, "run through /bin/sh -c") {
			t.Errorf("sh -c %q: no note of the shell: %s", tail, got)
		}
	}
}

// TestFromHelperParentLibvirt: under libvirt's session daemon the
// helper's parent is virtqemud, which says nothing of the VM.
func TestFromHelperParentLibvirt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	fake := filepath.Join(t.TempDir(), "virtqemud")
	if err := copyFile(fake, self); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fake, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=spawn")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "is virtqemud: run by libvirt, which does not say for which VM") {
		t.Fatalf("%v: %s", err, out)
	}
}

package helper

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

// atSecure is AT_SECURE, the auxiliary vector entry the kernel sets to 1
// when exec gave the process privileges its caller did not have: a
// set-user-ID or set-group-ID file, or file capabilities that raised its
// permitted set (security/commoncap.c: bprm->secureexec). Capabilities a
// caller passes on as ambient ones do not set it: that caller had them.
const atSecure = 23

// Privileged reports whether this process got privileges at exec from a
// file capability or a set-user/group-ID bit, for a caller who is not
// root: the one case where who runs ifhook is not who it acts for. It
// reads the auxiliary vector the runtime keeps (no system call) and, only
// when AT_SECURE is set, asks for the real uid.
func Privileged() bool {
	aux, err := unix.Auxv()
	if err != nil {
		// Without the vector (some sandboxes), judge by the ids and the
		// permitted capabilities.
		return os.Getuid() != 0 && (os.Geteuid() != os.Getuid() || os.Getegid() != os.Getgid() || permitted() != 0)
	}
	for _, kv := range aux {
		if kv[0] == atSecure {
			return kv[1] != 0 && os.Getuid() != 0
		}
	}
	return false
}

// capSets reads this thread's capabilities (all threads agree once a
// drop has run on all of them).
func capSets() (effective, permitted, inheritable uint64, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, 0, 0, err
	}
	join := func(lo, hi uint32) uint64 { return uint64(lo) | uint64(hi)<<32 }
	return join(data[0].Effective, data[1].Effective), join(data[0].Permitted, data[1].Permitted), join(data[0].Inheritable, data[1].Inheritable), nil
}

func permitted() uint64 {
	_, p, _, _ := capSets()
	return p
}

const netAdmin = uint64(1) << unix.CAP_NET_ADMIN

// capset sets the capabilities of every thread of the process: they are
// per thread in Linux, and the Go runtime runs goroutines on several, so
// a change made on one thread only would leave the others privileged.
func capset(effective, permitted, inheritable uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(effective), Permitted: uint32(permitted), Inheritable: uint32(inheritable)},
		{Effective: uint32(effective >> 32), Permitted: uint32(permitted >> 32), Inheritable: uint32(inheritable >> 32)},
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return e
	}
	return nil
}

// prctl runs prctl(2) on every thread, the arguments after arg2 zero
// (several options refuse anything else).
func prctl(option, arg2 uintptr) error {
	if _, _, e := syscall.AllThreadsSyscall6(unix.SYS_PRCTL, option, arg2, 0, 0, 0, 0); e != 0 {
		return e
	}
	return nil
}

// DropToNetAdmin leaves the bridge helper, run with privileges, the one
// privilege it needs, before it reads anything: CAP_NET_ADMIN, effective
// and permitted, no other capability (none inheritable or ambient either,
// and, when it has the power to, none in the bounding set), the caller's
// real uid as its every uid, and no new privileges from any exec. Its
// effective group stays the helper file's set-group-ID group, which its
// records' directory needs; set-user-ID root with no such group takes the
// group of that directory. Every step applies to every thread.
func DropToNetAdmin() error {
	ruid, euid, _ := getresuid()
	rgid, egid, _ := getresgid()
	eff, _, _, err := capSets()
	if err != nil {
		return dropErr(err)
	}
	if euid == 0 {
		// Set-user-ID root (Fedora-style installs): keep the capabilities
		// across the change of uid, and bound them first.
		if eff&(1<<unix.CAP_SETPCAP) != 0 {
			for c := 0; c <= unix.CAP_LAST_CAP; c++ {
				if c != unix.CAP_NET_ADMIN {
					_ = prctl(unix.PR_CAPBSET_DROP, uintptr(c))
				}
			}
		}
		if err := prctl(unix.PR_SET_KEEPCAPS, 1); err != nil {
			return dropErr(err)
		}
		group := egid
		if group == rgid {
			if g, ok := helperGroup(); ok {
				group = g
			}
		}
		if err := syscall.Setresgid(rgid, group, group); err != nil {
			return dropErr(err)
		}
		if err := syscall.Setresuid(ruid, ruid, ruid); err != nil {
			return dropErr(err)
		}
		if err := prctl(unix.PR_SET_KEEPCAPS, 0); err != nil {
			return dropErr(err)
		}
	}
	if err := capset(netAdmin, netAdmin, 0); err != nil {
		return dropErr(err)
	}
	return finishDrop(ruid, netAdmin)
}

// DropAll takes every privilege away, for every mode but the bridge
// helper when run with privileges: no capability, the real uid and gid as
// every uid and gid, on every thread. What follows then runs as its
// caller does, and fails as it would (77 without CAP_NET_ADMIN).
func DropAll() error {
	ruid, _, _ := getresuid()
	rgid, _, _ := getresgid()
	if err := syscall.Setresgid(rgid, rgid, rgid); err != nil {
		return dropErr(err)
	}
	if err := syscall.Setresuid(ruid, ruid, ruid); err != nil {
		return dropErr(err)
	}
	if err := capset(0, 0, 0); err != nil {
		return dropErr(err)
	}
	return finishDrop(ruid, 0)
}

// finishDrop clears the ambient capabilities, forbids new privileges, and
// checks that what is left is exactly what was meant.
func finishDrop(uid int, want uint64) error {
	if err := prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL); err != nil && err != unix.EINVAL {
		return dropErr(err)
	}
	if err := prctl(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
		return dropErr(err)
	}
	r, e, s := getresuid()
	eff, perm, inh, err := capSets()
	if err != nil {
		return dropErr(err)
	}
	if r != uid || e != uid || s != uid || eff != want || perm != want || inh != 0 {
		return dropErr(fmt.Errorf("left with uids %d/%d/%d and capabilities %#x/%#x/%#x", r, e, s, eff, perm, inh))
	}
	return nil
}

func dropErr(err error) error {
	// qemu-bridge-helper's words first.
	return exit.New(exit.Internal, "failed to drop privileges: %w", err)
}

func getresuid() (r, e, s int) {
	var ru, eu, su uint32
	unix.Syscall(unix.SYS_GETRESUID, uintptr(unsafe.Pointer(&ru)), uintptr(unsafe.Pointer(&eu)), uintptr(unsafe.Pointer(&su)))
	return int(ru), int(eu), int(su)
}

func getresgid() (r, e, s int) {
	var rg, eg, sg uint32
	unix.Syscall(unix.SYS_GETRESGID, uintptr(unsafe.Pointer(&rg)), uintptr(unsafe.Pointer(&eg)), uintptr(unsafe.Pointer(&sg)))
	return int(rg), int(eg), int(sg)
}

// helperGroup is the group of the helper's records directory, for a
// set-user-ID root helper whose file carries no group: only a directory
// root owns says which group that is.
func helperGroup() (int, bool) {
	var st unix.Stat_t
	if err := unix.Lstat(state.DefaultHelperDir, &st); err != nil {
		return 0, false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != 0 || st.Gid == 0 || st.Mode&0o007 != 0 {
		return 0, false
	}
	return int(st.Gid), true
}

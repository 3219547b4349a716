package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"golang.org/x/sys/unix"
)

// The bridge helper's records. The helper (ifhook run as
// qemu-bridge-helper, see package ifhook/helper) runs as the user who
// started QEMU, with CAP_NET_ADMIN and nothing else, so it can neither
// read nor write root's directory (0700). Its records, and the guest-MAC
// index that root's TAPs and the helper's share, live in a directory of
// their own, beside root's (HelperDir: /run/ifhook-helper), the way games
// keep score files:
//
//   - the directory is root's, its group a dedicated group (ifhook-helper)
//     that no user is a member of, mode 2770: nobody else can even look in;
//   - the helper file is set-group-ID to that group (besides carrying
//     cap_net_admin+ep), so a helper run, and only a helper run, has the
//     group, and can write there;
//   - what it writes there is what the helper's own code writes (a user
//     cannot ptrace it or read its memory: the kernel makes a process that
//     gained privileges at exec undumpable), and root reads it back as
//     checked data (the strict codec, helper=true required).
//
// So the rule every state directory is held to, "root's or the caller's,
// and not writable by group or others", becomes for this one directory,
// and for nothing else: the directory is root's, its group the shared
// group (never root's group), set-group-ID, and nothing for others; each
// directory below it has the same group, the set-group-ID bit and nothing
// for others, whoever made it (a helper run makes the per-bridge MAC
// directories as its caller: through the top directory, which they cannot
// enter, that caller cannot reach them). Files and directories made there
// are group-readable (0640, 2770, lock 0660) whatever the umask, so each
// helper run reads the others' records.

// HelperDir is where the bridge helper's records are kept for the state
// directory dir: beside it, with "-helper" appended (/run/ifhook-helper
// for /run/ifhook).
func HelperDir(dir string) string { return filepath.Clean(dir) + "-helper" }

// DefaultHelperDir is HelperDir(DefaultDir), the only one a privileged
// bridge helper uses.
var DefaultHelperDir = HelperDir(DefaultDir)

// Modes in a shared directory, set exactly (fchmod), whatever the umask.
const (
	sharedDirMode  = 0o2770
	sharedFileMode = 0o640
	sharedLockMode = 0o660
)

// OpenShared returns the shared state directory at path, for group gid;
// gid < 0 accepts the group the directory has (root, who made it, reads
// it so). It touches nothing; the directory itself is never made here
// except by root for a known group (see MakeShared).
func OpenShared(path string, gid int) (*Dir, error) {
	d, err := Open(path)
	if err != nil {
		return nil, err
	}
	d.shared, d.gid = true, gid
	return d, nil
}

// Shared reports whether d is a shared (bridge helper) directory.
func (d *Dir) Shared() bool { return d.shared }

// GID is the shared directory's group: as given to OpenShared, or once
// the directory was opened, its group; -1 before that.
func (d *Dir) GID() int { return d.gid }

// Exists reports whether the directory is there and passes its checks.
func (d *Dir) Exists() (bool, error) {
	_, err := d.rootDir(false)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// MakeShared makes the shared directory at path (root only): owned by
// root, group gid, mode 2770, with its taps and macs subdirectories. An
// existing one is checked, its mode and group set as they must be if it
// is root's.
func MakeShared(path string, gid int) error {
	if gid <= 0 {
		return exit.New(exit.State, "shared state directory %s: the group must be a dedicated group, not gid %d", path, gid)
	}
	if euid() != 0 {
		return exit.New(exit.Permission, "shared state directory %s: only root makes it", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return dirErr(path, err)
	}
	if err := unix.Mkdir(path, sharedDirMode); err != nil && err != unix.EEXIST {
		return dirErr(path, err)
	}
	top, err := rawfile.OpenDir(path, false, 0)
	if err != nil {
		return dirErr(path, err)
	}
	defer top.Close()
	st, err := top.Stat()
	if err != nil {
		return dirErr(path, err)
	}
	if st.Uid != 0 {
		return exit.New(exit.State, "shared state directory %s is owned by uid %d, not root: remove it", path, st.Uid)
	}
	if err := unix.Fchown(top.FD(), 0, gid); err != nil {
		return dirErr(path, err)
	}
	if err := unix.Fchmod(top.FD(), sharedDirMode); err != nil {
		return dirErr(path, err)
	}
	d, err := OpenShared(path, gid)
	if err != nil {
		return err
	}
	defer d.Close()
	for _, sub := range []string{"taps", "macs"} {
		if _, err := d.sub(sub, true); err != nil {
			return err
		}
	}
	return nil
}

// checkShared holds a directory of a shared tree to its rule (see above).
func (d *Dir) checkShared(dir *rawfile.Dir, top bool) error {
	st, err := dir.Stat()
	if err != nil {
		return dirErr(dir.Path(), err)
	}
	if top {
		if st.Uid != 0 {
			return exit.New(exit.State, "shared state directory %s is owned by uid %d, not root: another user could forge its records", dir.Path(), st.Uid)
		}
		if d.gid < 0 {
			d.gid = int(st.Gid)
		}
	}
	switch {
	case d.gid == 0 || st.Gid == 0:
		return exit.New(exit.State, "shared state directory %s: its group is root's; it must be a group of its own that only the bridge helper carries (ifhook-helper)", dir.Path())
	case int(st.Gid) != d.gid:
		return exit.New(exit.State, "shared state directory %s has group %d, not the bridge helper's group %d: another group could forge its records (chgrp %d %s)", dir.Path(), st.Gid, d.gid, d.gid, dir.Path())
	case st.Mode&0o007 != 0:
		return exit.New(exit.State, "shared state directory %s is open to others (mode %04o): fix it with chmod o= %s", dir.Path(), st.Mode&0o7777, dir.Path())
	case st.Mode&unix.S_ISGID == 0:
		return exit.New(exit.State, "shared state directory %s lacks the set-group-ID bit (mode %04o): fix it with chmod g+s %s", dir.Path(), st.Mode&0o7777, dir.Path())
	}
	return nil
}

// subDir opens the subdirectory name of parent, making it when create is
// set (in a shared directory with its exact mode), and checks it.
func (d *Dir) subDir(parent *rawfile.Dir, name string, create bool) (*rawfile.Dir, error) {
	if !d.shared {
		s, err := parent.Sub(name, create, 0o700)
		if err != nil {
			return nil, err
		}
		if err := check(s); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	s, err := parent.Sub(name, false, 0)
	if errors.Is(err, fs.ErrNotExist) && create {
		made := unix.Mkdirat(parent.FD(), name, sharedDirMode)
		if made != nil && made != unix.EEXIST {
			return nil, &fs.PathError{Op: "mkdir", Path: filepath.Join(parent.Path(), name), Err: made}
		}
		s, err = parent.Sub(name, false, 0)
		if err == nil && made == nil {
			// The umask took bits off, and the set-group-ID bit is
			// not always inherited: set the mode this directory needs.
			if cerr := unix.Fchmod(s.FD(), sharedDirMode); cerr != nil {
				s.Close()
				return nil, &fs.PathError{Op: "chmod", Path: s.Path(), Err: cerr}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if err := d.checkShared(s, false); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// write stores data as name in dir: 0600 in root's directory, exactly
// 0640 in a shared one.
func (d *Dir) write(dir *rawfile.Dir, name string, data []byte, sync bool) error {
	if d.shared {
		return dir.WriteAtomicMode(name, data, sharedFileMode, sync)
	}
	return dir.WriteAtomic(name, data, 0o600, sync)
}

// checkHelperRecord refuses, in a shared directory, a record the bridge
// helper did not mark as its own.
func (d *Dir) checkHelperRecord(r *Record) error {
	if d.shared && !r.Helper {
		return fmt.Errorf("%w: a record in the bridge helper's directory without helper=true", ErrCorrupt)
	}
	return nil
}

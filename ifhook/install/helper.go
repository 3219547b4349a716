package install

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

// The bridge helper: a copy of the ifhook binary, never a link to it (a
// file capability belongs to an inode, and would give every name of the
// binary the privilege), put where QEMU looks for qemu-bridge-helper when
// -netdev bridge names no helper=, and where libvirt's session mode looks:
// the distribution's compiled-in default path.

// HelperPaths are QEMU's default helper paths, by distribution:
// CONFIG_QEMU_HELPERDIR "/qemu-bridge-helper" is /usr/lib/qemu on Debian
// and Ubuntu (qemu-system-common), /usr/libexec on Fedora and RHEL.
var HelperPaths = []string{"/usr/lib/qemu/qemu-bridge-helper", "/usr/libexec/qemu-bridge-helper"}

// HelperGroup is the group the helper is set-group-ID to and whose
// directory holds its records: a group of its own, that no user is a
// member of.
const HelperGroup = "ifhook-helper"

// Marker is in every ifhook binary (this package refers to it), which is
// how UnlinkHelper tells a copy of ifhook from QEMU's own helper.
const Marker = "\x00ifhook-bridge-helper-copy\x00"

// HelperOptions says where the helper goes.
type HelperOptions struct {
	// Binary is the ifhook binary to copy.
	Binary string
	// Root is put before every path, like install.sh's DESTDIR.
	Root string
	// Path is where the helper goes, Root not included; "" chooses one
	// of HelperPaths (DefaultHelperPath).
	Path string
	// GID is the helper's group; -1 looks HelperGroup up.
	GID int
	// StateDir is the directory beside which the helper's records go
	// ("" : state.DefaultDir); "-" makes none (a staged install).
	StateDir string
}

// DefaultHelperPath returns the helper path of the distribution under
// root: the first of HelperPaths that exists, else the first whose
// directory exists (/usr/lib/qemu means Debian), else Fedora's.
func DefaultHelperPath(root string) string {
	for _, p := range HelperPaths {
		if _, err := os.Lstat(root + p); err == nil {
			return p
		}
	}
	if st, err := os.Stat(root + filepath.Dir(HelperPaths[0])); err == nil && st.IsDir() {
		return HelperPaths[0]
	}
	return HelperPaths[1]
}

func (o HelperOptions) path() string {
	p := o.Path
	if p == "" {
		p = DefaultHelperPath(o.Root)
	}
	return filepath.Clean(o.Root + "/" + p)
}

// LookupHelperGroup returns the gid of HelperGroup.
func LookupHelperGroup() (int, error) {
	g, err := user.LookupGroup(HelperGroup)
	if err != nil {
		return 0, fmt.Errorf("no group %s (%v): make it first, as a system group no user is a member of: groupadd --system %s", HelperGroup, err, HelperGroup)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil || gid <= 0 {
		return 0, fmt.Errorf("group %s has gid %q: it must be a group of its own", HelperGroup, g.Gid)
	}
	return gid, nil
}

// IsIfhook reports whether the file at p is a copy of an ifhook binary.
func IsIfhook(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	// Marker may straddle two reads: keep its length's worth of the last.
	buf := make([]byte, 1<<20+len(Marker))
	keep := 0
	for {
		n, err := f.Read(buf[keep:])
		if bytes.Contains(buf[:keep+n], []byte(Marker)) {
			return true
		}
		if err != nil {
			return false
		}
		end := keep + n
		keep = min(len(Marker), end)
		copy(buf, buf[end-keep:end])
	}
}

// LinkHelper puts a copy of o.Binary at the helper path, owned by root
// and the helper's group, mode 2755 (set-group-ID: its records'
// directory needs the group) and with the file capability
// cap_net_admin+ep, keeping a file that was there (QEMU's own helper) as
// PATH.orig; and makes the directory of the helper's records. A copy of
// ifhook already there is replaced (an upgrade). When the path and its
// .orig both exist and the path is not ifhook, nothing changes and the
// error wraps ErrConflict. It returns what it did.
func LinkHelper(o HelperOptions) ([]string, error) {
	if o.Binary == "" || !filepath.IsAbs(o.Binary) {
		return nil, fmt.Errorf("install: the binary must be an absolute path, not %q", o.Binary)
	}
	gid := o.GID
	if gid < 0 {
		var err error
		if gid, err = LookupHelperGroup(); err != nil {
			return nil, err
		}
	}
	p := o.path()
	ours := IsIfhook(p)
	here, err := exists(p)
	if err != nil {
		return nil, err
	}
	orig, err := exists(p + OrigSuffix)
	if err != nil {
		return nil, err
	}
	if here && !ours && orig {
		return nil, fmt.Errorf("%s exists and so does %s; move one of them away first: %w", p, p+OrigSuffix, ErrConflict)
	}
	var did []string
	if here && !ours {
		if err := os.Rename(p, p+OrigSuffix); err != nil {
			return did, err
		}
		did = append(did, fmt.Sprintf("kept the previous %s as %s", p, p+OrigSuffix))
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return did, err
	}
	if err := copyHelper(o.Binary, p, gid); err != nil {
		return did, err
	}
	did = append(did, fmt.Sprintf("installed %s: a copy of %s, root:%d mode 2755, cap_net_admin+ep", p, o.Binary, gid))
	if o.StateDir != "-" {
		dir := o.StateDir
		if dir == "" {
			dir = state.DefaultDir
		}
		sd := state.HelperDir(o.Root + dir)
		if err := state.MakeShared(sd, gid); err != nil {
			return did, err
		}
		did = append(did, fmt.Sprintf("made %s (root:%d, mode 2770) for its records", sd, gid))
	}
	return did, nil
}

// copyHelper writes the copy beside p and renames it into place, so that
// a QEMU starting meanwhile finds the old helper or the new, whole.
func copyHelper(src, p string, gid int) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := p + ".ifhook-new"
	os.Remove(tmp)
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return fail(err)
	}
	// In this order: chown clears set-ID bits and file capabilities.
	if err := out.Chown(0, gid); err != nil {
		return fail(err)
	}
	if err := out.Chmod(0o755 | os.ModeSetgid); err != nil {
		return fail(err)
	}
	if err := SetNetAdminCap(int(out.Fd())); err != nil {
		return fail(fmt.Errorf("give %s the file capability cap_net_admin+ep: %w (the filesystem must support security.* extended attributes)", p, err))
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, p)
}

// SetNetAdminCap gives the open file fd the file capability
// cap_net_admin+ep, as setcap(8) does: a security.capability attribute,
// vfs_cap_data revision 2, CAP_NET_ADMIN permitted, the effective flag.
func SetNetAdminCap(fd int) error {
	const (
		vfsCapRevision2 = 0x02000000
		vfsCapEffective = 0x000001
	)
	var data [20]byte
	binary.LittleEndian.PutUint32(data[0:], vfsCapRevision2|vfsCapEffective)
	binary.LittleEndian.PutUint32(data[4:], 1<<unix.CAP_NET_ADMIN) // permitted, caps 0..31
	return unix.Fsetxattr(fd, "security.capability", data[:], 0)
}

// HasNetAdminCap reports whether the file at p carries exactly the file
// capability LinkHelper gives.
func HasNetAdminCap(p string) bool {
	buf := make([]byte, 64)
	n, err := unix.Getxattr(p, "security.capability", buf)
	if err != nil || n < 20 {
		return false
	}
	magic := binary.LittleEndian.Uint32(buf[0:])
	return magic&0xff000000 >= 0x02000000 && magic&1 == 1 &&
		binary.LittleEndian.Uint32(buf[4:]) == 1<<unix.CAP_NET_ADMIN && binary.LittleEndian.Uint32(buf[12:]) == 0
}

// UnlinkHelper undoes LinkHelper: it removes the helper path when it is a
// copy of ifhook and puts PATH.orig back. Anything else is left alone.
// The records' directory stays: it is in /run, and gone at the next boot.
func UnlinkHelper(o HelperOptions) ([]string, error) {
	p := o.path()
	return unlinkOne(p, IsIfhook(p), nil)
}

// errNotHelper is for a helper path that does not hold ifhook.
var errNotHelper = errors.New("not ifhook")

// CheckHelper says what is wrong with the helper at p, or nil: a copy of
// ifhook, root's, set-group-ID to gid, with cap_net_admin+ep, and not
// writable by anyone else.
func CheckHelper(p string, gid int) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	switch {
	case !IsIfhook(p):
		return fmt.Errorf("%s: %w", p, errNotHelper)
	case st.Uid != 0 || int(st.Gid) != gid:
		return fmt.Errorf("%s is owned by %d:%d, not root:%d", p, st.Uid, st.Gid, gid)
	case st.Mode&unix.S_ISGID == 0 || st.Mode&0o022 != 0:
		return fmt.Errorf("%s has mode %04o, not 2755", p, st.Mode&0o7777)
	case !HasNetAdminCap(p):
		return fmt.Errorf("%s lacks the file capability cap_net_admin+ep (a package update may have dropped it)", p)
	}
	return nil
}

package rawfile

import (
	"encoding/binary"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func pathErr(op, path string, err error) error { return &fs.PathError{Op: op, Path: path, Err: err} }

// Read returns the contents of the regular file at path, refusing one past
// limit bytes.
func Read(path string, limit int) ([]byte, error) {
	return readAt(unix.AT_FDCWD, path, path, limit, 0, nil)
}

// ReadChecked is Read, with check called on the status of the file opened
// (owner, mode) before anything is read from it: what is checked is what
// is read, whatever is renamed into its place meanwhile. A check error is
// returned as is.
func ReadChecked(path string, limit int, check func(st *unix.Stat_t) error) ([]byte, error) {
	return readAt(unix.AT_FDCWD, path, path, limit, 0, check)
}

const readFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY

func readAt(dirfd int, name, path string, limit int, extra int, check func(st *unix.Stat_t) error) ([]byte, error) {
	fd, err := openRetry(dirfd, name, readFlags|extra, 0)
	if err != nil {
		if err == unix.ELOOP && extra&unix.O_NOFOLLOW != 0 {
			return nil, pathErr("open", path, &NotRegularError{"a symbolic link"})
		}
		return nil, pathErr("open", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, pathErr("stat", path, err)
	}
	if what := kind(st.Mode); what != "" {
		return nil, pathErr("read", path, &NotRegularError{what})
	}
	if check != nil {
		if err := check(&st); err != nil {
			return nil, err
		}
	}
	if st.Size > int64(limit) {
		return nil, pathErr("read", path, &TooLargeError{limit})
	}
	// /proc and /sys files report size 0 and are read to the end, still
	// bounded.
	size := int(st.Size) + 1
	if size < 512 {
		size = 512
	}
	buf := make([]byte, 0, min(size, limit+1))
	for {
		if len(buf) > limit {
			return nil, pathErr("read", path, &TooLargeError{limit})
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):min(cap(buf), limit+1)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, pathErr("read", path, err)
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// kind names what a mode is when it is not a regular file, else "".
func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return ""
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return "not a file"
}

func openRetry(dirfd int, name string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// WriteFile creates or truncates path (mode perm) and writes data.
func WriteFile(path string, data []byte, perm uint32) error {
	fd, err := openRetry(unix.AT_FDCWD, path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, perm)
	if err != nil {
		return pathErr("open", path, err)
	}
	return writeClose(fd, path, data, false)
}

// WriteExisting writes data to a file that must exist (a /proc/sys key).
func WriteExisting(path string, data []byte) error {
	fd, err := openRetry(unix.AT_FDCWD, path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return pathErr("open", path, err)
	}
	return writeClose(fd, path, data, false)
}

func writeClose(fd int, path string, data []byte, sync bool) error {
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return pathErr("write", path, err)
		}
		data = data[n:]
	}
	if sync {
		if err := unix.Fdatasync(fd); err != nil {
			unix.Close(fd)
			return pathErr("sync", path, err)
		}
	}
	if err := unix.Close(fd); err != nil {
		return pathErr("close", path, err)
	}
	return nil
}

// Remove removes a file.
func Remove(path string) error {
	if err := unix.Unlink(path); err != nil {
		return pathErr("remove", path, err)
	}
	return nil
}

// Dir is an open directory: every file in it is reached relative to its
// descriptor, never through a symbolic link.
type Dir struct {
	fd   int
	path string
}

// OpenDir opens the directory at path without following a symbolic link in
// its last component. With create, a missing directory is made with perm.
func OpenDir(path string, create bool, perm uint32) (*Dir, error) {
	return openDirAt(unix.AT_FDCWD, path, path, create, perm)
}

func openDirAt(dirfd int, name, path string, create bool, perm uint32) (*Dir, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := openRetry(dirfd, name, flags, 0)
	if err == unix.ENOENT && create {
		if err = unix.Mkdirat(dirfd, name, perm); err == nil || err == unix.EEXIST {
			fd, err = openRetry(dirfd, name, flags, 0)
		}
	}
	if err != nil {
		if err == unix.ELOOP || err == unix.ENOTDIR {
			var st unix.Stat_t
			if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				return nil, pathErr("open", path, &NotRegularError{kind(st.Mode)})
			}
		}
		return nil, pathErr("open", path, err)
	}
	return &Dir{fd: fd, path: path}, nil
}

// Path returns the directory's path, for messages.
func (d *Dir) Path() string { return d.path }

// FD returns the directory's descriptor, which stays d's.
func (d *Dir) FD() int { return d.fd }

// Close closes the directory.
func (d *Dir) Close() {
	if d != nil && d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1
	}
}

func (d *Dir) join(name string) string { return d.path + "/" + name }

// Sub opens the subdirectory name (made with perm when create is set and
// it is missing).
func (d *Dir) Sub(name string, create bool, perm uint32) (*Dir, error) {
	return openDirAt(d.fd, name, d.join(name), create, perm)
}

// Stat returns the directory's own status (owner, mode).
func (d *Dir) Stat() (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(d.fd, &st)
	if err != nil {
		return st, pathErr("stat", d.path, err)
	}
	return st, nil
}

// Read returns the regular file name, refusing a symbolic link, anything
// not a regular file, and a file past limit bytes.
func (d *Dir) Read(name string, limit int) ([]byte, error) {
	return readAt(d.fd, name, d.join(name), limit, unix.O_NOFOLLOW, nil)
}

// Exists reports whether name exists (of any type), with one system call.
func (d *Dir) Exists(name string) bool {
	return unix.Faccessat(d.fd, name, unix.F_OK, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// TempSuffix marks the temporary files WriteAtomic makes: NAME:PID.tmp. No
// interface name holds a ':', so no record is ever taken for one.
const TempSuffix = ".tmp"

// TempName is the temporary file WriteAtomic uses for name in process pid.
func TempName(name string, pid int) string { return name + ":" + strconv.Itoa(pid) + TempSuffix }

// WriteAtomic writes data to name through a temporary file beside it, made
// with O_CREAT|O_EXCL|O_NOFOLLOW and renamed into place: a reader sees the
// old contents or the new, never half, and nothing planted in the directory
// is followed. With sync, the data reaches the disk before the rename.
func (d *Dir) WriteAtomic(name string, data []byte, perm uint32, sync bool) error {
	return d.writeAtomic(name, TempName(name, os.Getpid()), data, perm, sync, false)
}

// WriteAtomicMode is WriteAtomic with the file's mode exactly perm, whatever
// the umask: for a directory whose files another user must read.
func (d *Dir) WriteAtomicMode(name string, data []byte, perm uint32, sync bool) error {
	return d.writeAtomic(name, TempName(name, os.Getpid()), data, perm, sync, true)
}

// WriteAtomicHidden is WriteAtomicMode through a temporary file whose name
// starts with a dot (".NAME:PID.tmp"): for a directory another program
// watches (dnsmasq's dhcp-hostsdir reads every new file but dotfiles, as
// its own user).
func (d *Dir) WriteAtomicHidden(name string, data []byte, perm uint32) error {
	return d.writeAtomic(name, "."+TempName(name, os.Getpid()), data, perm, false, true)
}

func (d *Dir) writeAtomic(name, tmp string, data []byte, perm uint32, sync, exact bool) error {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := openRetry(d.fd, tmp, flags, perm)
	if err == unix.EEXIST {
		// Left by a killed process that had our pid: it is ours by name,
		// and unlinking a symlink removes the link, not its target.
		_ = unix.Unlinkat(d.fd, tmp, 0)
		fd, err = openRetry(d.fd, tmp, flags, perm)
	}
	if err != nil {
		return pathErr("create", d.join(tmp), err)
	}
	if exact {
		if err := unix.Fchmod(fd, perm); err != nil {
			unix.Close(fd)
			_ = unix.Unlinkat(d.fd, tmp, 0)
			return pathErr("chmod", d.join(tmp), err)
		}
	}
	if err := writeClose(fd, d.join(tmp), data, sync); err != nil {
		_ = unix.Unlinkat(d.fd, tmp, 0)
		return err
	}
	if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		_ = unix.Unlinkat(d.fd, tmp, 0)
		return pathErr("rename", d.join(name), err)
	}
	return nil
}

// Chmod sets the directory's own mode (umask made it narrower).
func (d *Dir) Chmod(perm uint32) error {
	if err := unix.Fchmod(d.fd, perm); err != nil {
		return pathErr("chmod", d.path, err)
	}
	return nil
}

// Create makes name with data, failing if anything (a file, a symlink) is
// there already.
func (d *Dir) Create(name string, data []byte, perm uint32) error {
	fd, err := openRetry(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return pathErr("create", d.join(name), err)
	}
	return writeClose(fd, d.join(name), data, false)
}

// Remove removes the file name; a missing one is an error wrapping
// fs.ErrNotExist.
func (d *Dir) Remove(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return pathErr("remove", d.join(name), err)
	}
	return nil
}

// RemoveDir removes the empty subdirectory name.
func (d *Dir) RemoveDir(name string) error {
	if err := unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR); err != nil {
		return pathErr("remove", d.join(name), err)
	}
	return nil
}

// Rename renames oldname to newname within the directory.
func (d *Dir) Rename(oldname, newname string) error {
	if err := unix.Renameat(d.fd, oldname, d.fd, newname); err != nil {
		return pathErr("rename", d.join(newname), err)
	}
	return nil
}

// OpenLock opens (creating) the file name for flock(2), never through a
// symbolic link.
func (d *Dir) OpenLock(name string, perm uint32) (int, error) {
	fd, err := openRetry(d.fd, name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, perm)
	if err != nil {
		if err == unix.ELOOP {
			return -1, pathErr("open", d.join(name), &NotRegularError{"a symbolic link"})
		}
		return -1, pathErr("open", d.join(name), err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || kind(st.Mode) != "" {
		unix.Close(fd)
		if err != nil {
			return -1, pathErr("stat", d.join(name), err)
		}
		return -1, pathErr("open", d.join(name), &NotRegularError{kind(st.Mode)})
	}
	return fd, nil
}

// Entry is one name in a directory.
type Entry struct {
	Name string
	Type uint8 // unix.DT_REG, DT_DIR, DT_LNK, ...; DT_UNKNOWN when the filesystem does not say
}

// List returns the names in the directory, in no particular order.
func (d *Dir) List() ([]Entry, error) {
	// A fresh descriptor: getdents reads from the file offset, and d's own
	// is shared by every call.
	fd, err := openRetry(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, pathErr("open", d.path, err)
	}
	defer unix.Close(fd)
	var out []Entry
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return out, pathErr("readdir", d.path, err)
		}
		if n <= 0 {
			return out, nil
		}
		b := buf[:n]
		for len(b) > 0 {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name
			if len(b) < 19 {
				break
			}
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				break
			}
			typ := b[18]
			name := b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			if s := string(name); s != "." && s != ".." {
				out = append(out, Entry{Name: s, Type: typ})
			}
			b = b[reclen:]
		}
	}
}

// StatAt returns the status of name without following a symbolic link.
func (d *Dir) StatAt(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, pathErr("stat", d.join(name), err)
	}
	return st, nil
}

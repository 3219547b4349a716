package rawfile

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

func pathErr(op, path string, err error) error { return &fs.PathError{Op: op, Path: path, Err: err} }

// ReadFile returns the contents of a (small) file.
func ReadFile(path string) ([]byte, error) { return ReadFileMax(path, -1) }

// ReadFileMax is ReadFile refusing, with ErrTooLarge, a file longer than
// limit bytes (no limit when negative).
func ReadFileMax(path string, limit int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, pathErr("open", path, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if limit >= 0 && len(buf) > limit {
			return nil, pathErr("read", path, ErrTooLarge)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
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

// WriteFile creates or truncates path (mode perm) and writes data.
func WriteFile(path string, data []byte, perm uint32) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, perm)
	if err != nil {
		return pathErr("open", path, err)
	}
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
	if err := unix.Close(fd); err != nil {
		return pathErr("close", path, err)
	}
	return nil
}

// Rename renames oldpath to newpath, replacing it.
func Rename(oldpath, newpath string) error {
	if err := unix.Rename(oldpath, newpath); err != nil {
		return &fs.PathError{Op: "rename", Path: newpath, Err: err}
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

// Mkdir makes a directory; one that exists already is fine.
func Mkdir(path string, perm uint32) error {
	if err := unix.Mkdir(path, perm); err != nil && err != unix.EEXIST {
		return pathErr("mkdir", path, err)
	}
	return nil
}

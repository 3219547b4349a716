//go:build !linux

package rawfile

import (
	"errors"
	"io/fs"
	"os"
)

// ReadFile returns the contents of a (small) file.
func ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// ReadFileMax is ReadFile refusing, with ErrTooLarge, a file longer than
// limit bytes (no limit when negative).
func ReadFileMax(path string, limit int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && limit >= 0 && len(b) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: ErrTooLarge}
	}
	return b, err
}

// WriteFile creates or truncates path (mode perm) and writes data.
func WriteFile(path string, data []byte, perm uint32) error {
	return os.WriteFile(path, data, fs.FileMode(perm))
}

// Rename renames oldpath to newpath, replacing it.
func Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove removes a file.
func Remove(path string) error { return os.Remove(path) }

// Mkdir makes a directory; one that exists already is fine.
func Mkdir(path string, perm uint32) error {
	if err := os.Mkdir(path, fs.FileMode(perm)); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

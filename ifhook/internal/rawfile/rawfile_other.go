//go:build !linux

package rawfile

import (
	"io"
	"io/fs"
	"os"
)

// Read returns the contents of the regular file at path, refusing one past
// limit bytes.
func Read(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &NotRegularError{st.Mode().Type().String()}}
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err == nil && len(b) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &TooLargeError{limit}}
	}
	return b, err
}

// WriteFile creates or truncates path (mode perm) and writes data.
func WriteFile(path string, data []byte, perm uint32) error {
	return os.WriteFile(path, data, fs.FileMode(perm))
}

// WriteExisting writes data to a file that must exist.
func WriteExisting(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Remove removes a file.
func Remove(path string) error { return os.Remove(path) }

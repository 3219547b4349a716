package rawfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestReadWriteRenameRemove(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	big := bytes.Repeat([]byte("0123456789"), 1000) // past the first 4 KiB buffer
	if err := WriteFile(a, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(a); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	if got, err := ReadFile(a); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("ReadFile: %d bytes, %v", len(got), err)
	}
	if err := WriteFile(a, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadFile(a); string(got) != "x" {
		t.Errorf("WriteFile did not truncate: %q", got)
	}
	if err := Rename(a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(a); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile after rename: %v, want ErrNotExist", err)
	}
	if err := Remove(b); err != nil {
		t.Fatal(err)
	}
	if err := Remove(b); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Remove: %v", err)
	}
	var pe *fs.PathError
	if err := WriteFile(filepath.Join(dir, "no", "such"), nil, 0o600); !errors.As(err, &pe) || pe.Path != filepath.Join(dir, "no", "such") {
		t.Errorf("WriteFile in a missing directory: %v", err)
	}
}

func TestMkdir(t *testing.T) {
	d := filepath.Join(t.TempDir(), "d")
	for range 2 { // existing is fine
		if err := Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := Mkdir(filepath.Join(d, "x", "y"), 0o700); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Mkdir without its parent: %v", err)
	}
}

func TestReadFileMax(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(p, bytes.Repeat([]byte("x"), 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFileMax(p, 4999); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v, want ErrTooLarge", err)
	}
	if b, err := ReadFileMax(p, 5000); err != nil || len(b) != 5000 {
		t.Errorf("at the limit: %d bytes, %v", len(b), err)
	}
}

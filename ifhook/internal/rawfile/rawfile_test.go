package rawfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadBoundedAndRegular(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	big := bytes.Repeat([]byte("0123456789"), 1000) // past the first buffer
	if err := WriteFile(a, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(a, len(big)); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Read: %d bytes, %v", len(got), err)
	}
	if _, err := Read(a, len(big)-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read past the limit: %v, want ErrTooLarge", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Read(fifo, 100); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "FIFO") {
			t.Fatalf("Read of a FIFO: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read of a FIFO blocked")
	}
	if _, err := Read("/dev/zero", 100); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "character device") {
		t.Fatalf("Read of /dev/zero: %v", err)
	}
	if _, err := Read(dir, 100); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("Read of a directory: %v", err)
	}
	// /proc files say size 0 and are still read, bounded.
	if got, err := Read("/proc/self/cmdline", 1<<20); err != nil || len(got) == 0 {
		t.Fatalf("Read /proc/self/cmdline: %q, %v", got, err)
	}
	if _, err := Read("/proc/self/cmdline", 1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("bounded /proc read: %v", err)
	}
}

func TestDir(t *testing.T) {
	root := t.TempDir()
	d, err := OpenDir(root, false, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sub, err := d.Sub("taps", true, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := sub.WriteAtomic("vnet0", []byte("a"), 0o600, true); err != nil {
		t.Fatal(err)
	}
	if err := sub.WriteAtomic("vnet0", []byte("bb"), 0o600, false); err != nil {
		t.Fatal(err)
	}
	if got, err := sub.Read("vnet0", 10); err != nil || string(got) != "bb" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if !sub.Exists("vnet0") || sub.Exists("nope") {
		t.Fatal("Exists")
	}
	// A planted symlink is never followed: not by a read, not by a
	// write through the temporary name, not by a create.
	victim := filepath.Join(root, "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	os.Symlink(victim, filepath.Join(root, "taps", "evil"))
	os.Symlink(victim, filepath.Join(root, "taps", TempName("vnet1", os.Getpid())))
	if _, err := sub.Read("evil", 10); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("Read through a symlink: %v", err)
	}
	if err := sub.WriteAtomic("vnet1", []byte("x"), 0o600, false); err != nil {
		t.Fatal(err)
	}
	if err := sub.Create("evil", []byte("x"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over a symlink: %v", err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "keep" {
		t.Fatalf("the victim was written: %q", got)
	}
	if _, err := sub.OpenLock("evil", 0o600); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("OpenLock through a symlink: %v", err)
	}
	if _, err := d.Sub("taps/../..", false, 0); err == nil {
		// openat with a relative path may climb; Sub is only ever called
		// with fixed names, but say so if this changes.
		t.Log("Sub accepts a path; callers pass fixed names only")
	}
	os.Symlink(root, filepath.Join(root, "link"))
	if _, err := d.Sub("link", false, 0); !errors.Is(err, ErrNotRegular) && err == nil {
		t.Fatalf("Sub through a symlink: %v", err)
	}
	entries, err := sub.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if strings.Join(sortStrings(names), " ") != "evil vnet0 vnet1" {
		t.Fatalf("List = %v", names)
	}
	if err := sub.Remove("vnet0"); err != nil {
		t.Fatal(err)
	}
	if err := sub.Remove("vnet0"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Remove: %v", err)
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

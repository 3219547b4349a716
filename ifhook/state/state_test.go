package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func openTemp(t *testing.T) *Dir {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "run", "ifhook"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ensure(); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOpen(t *testing.T) {
	t.Run("deep new path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a", "b", "ifhook")
		d, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if d.Path != path {
			t.Errorf("Path = %q, want %q", d.Path, path)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open made the directory (stat: %v); the first lock does", err)
		}
		l, err := d.Lock(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		l.Unlock()
		for _, p := range []string{path, filepath.Join(path, "taps")} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if !st.IsDir() || st.Mode().Perm() != 0o700 {
				t.Errorf("%s: mode %v, want a 0700 directory", p, st.Mode())
			}
		}
	})
	t.Run("existing", func(t *testing.T) {
		d := openTemp(t)
		if _, err := Open(d.Path); err != nil {
			t.Errorf("second Open: %v", err)
		}
	})
	t.Run("path under a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := Open(filepath.Join(file, "ifhook"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Lock(time.Second)
		if err == nil || !strings.Contains(err.Error(), "state directory "+filepath.Join(file, "ifhook")+": open lock: not a directory") {
			t.Errorf("Lock under a file = %v, want \"state directory ...: not a directory\"", err)
		}
	})
}

func TestWriteRead(t *testing.T) {
	d := openTemp(t)
	r := fullRecord()
	if err := d.Write(r); err != nil {
		t.Fatal(err)
	}
	got, err := d.Read("vnet0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("Read after Write (-want +got):\n%s", diff)
	}
	st, err := os.Stat(filepath.Join(d.Path, "taps", "vnet0"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v, want 0600", st.Mode().Perm())
	}

	// Overwrite: the new record replaces the old, and no temporary file is left.
	r.Bridge, r.Set.Master = "br9", "br9"
	if err := d.Write(r); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Read("vnet0"); got == nil || got.Bridge != "br9" {
		t.Errorf("after overwrite Read = %+v, want bridge br9", got)
	}
	entries, err := os.ReadDir(filepath.Join(d.Path, "taps"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "vnet0" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("taps/ holds %q, want only vnet0", names)
	}
}

func TestReadMissing(t *testing.T) {
	d := openTemp(t)
	r, err := d.Read("vnet0")
	if r != nil || err != nil {
		t.Errorf("Read of a missing record = %v, %v; want nil, nil", r, err)
	}
}

func TestReadCorrupt(t *testing.T) {
	d := openTemp(t)
	path := filepath.Join(d.Path, "taps", "vnet0")
	if err := os.WriteFile(path, []byte("tap=vnet0\nifindex=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := d.Read("vnet0")
	if r != nil || err == nil {
		t.Fatalf("Read of a corrupt record = %v, %v; want an error", r, err)
	}
	if want := "record " + path + " is corrupt: line 2: ifindex: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %q, want prefix %q", err, want)
	}
}

func TestRemove(t *testing.T) {
	d := openTemp(t)
	if err := d.Remove("vnet0"); err != nil {
		t.Errorf("Remove of a missing record: %v", err)
	}
	if err := d.Write(&Record{TAP: "vnet0"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("vnet0"); err != nil {
		t.Fatal(err)
	}
	if r, err := d.Read("vnet0"); r != nil || err != nil {
		t.Errorf("Read after Remove = %v, %v", r, err)
	}
	if err := d.Remove("vnet0"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestList(t *testing.T) {
	d := openTemp(t)
	taps := filepath.Join(d.Path, "taps")
	for _, tap := range []string{"vnet2", "tap0", "vnet10"} {
		if err := d.Write(&Record{TAP: tap, Index: len(tap), Since: since}); err != nil {
			t.Fatal(err)
		}
	}
	// A temporary file from a concurrent (or crashed) Write, and a directory.
	if err := os.WriteFile(filepath.Join(taps, "vnet3:1234.tmp"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(taps, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	recs, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.TAP)
	}
	if want := []string{"tap0", "vnet10", "vnet2"}; !cmp.Equal(want, names) {
		t.Errorf("List = %q, want %q", names, want)
	}

	t.Run("a corrupt record does not hide the others", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(taps, "bad0"), []byte("no equals sign"), 0o600); err != nil {
			t.Fatal(err)
		}
		recs, err := d.List()
		if err == nil || !strings.Contains(err.Error(), "bad0 is corrupt") {
			t.Errorf("List error = %v, want it to name bad0", err)
		}
		if len(recs) != 3 {
			t.Errorf("List returned %d records with the error, want 3", len(recs))
		}
	})
	t.Run("missing taps directory", func(t *testing.T) {
		recs, err := (&Dir{Path: filepath.Join(t.TempDir(), "nothing")}).List()
		if err != nil || len(recs) != 0 {
			t.Errorf("List = %v, %v; want nothing recorded yet", recs, err)
		}
	})
}

func TestLockExcludes(t *testing.T) {
	d := openTemp(t)
	held, err := d.Lock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 200 * time.Millisecond
	type result struct {
		l       *Lock
		err     error
		elapsed time.Duration
	}
	try := func() result {
		c := make(chan result, 1)
		go func() {
			start := time.Now()
			l, err := d.Lock(timeout)
			c <- result{l, err, time.Since(start)}
		}()
		select {
		case r := <-c:
			return r
		case <-time.After(10 * timeout):
			t.Fatalf("Lock(%v) still waiting after %v", timeout, 10*timeout)
			return result{}
		}
	}

	r := try()
	if !errors.Is(r.err, ErrLockTimeout) {
		t.Fatalf("second Lock = %v, %v; want ErrLockTimeout", r.l, r.err)
	}
	if r.elapsed < timeout || r.elapsed > 5*timeout {
		t.Errorf("second Lock gave up after %v, want about %v", r.elapsed, timeout)
	}
	if want := "lock " + filepath.Join(d.Path, "lock") + ": timed out waiting for the lock after 200ms"; r.err.Error() != want {
		t.Errorf("error = %q, want %q", r.err, want)
	}

	held.Unlock()
	held.Unlock() // twice is harmless
	r = try()
	if r.err != nil {
		t.Fatalf("Lock after Unlock: %v", r.err)
	}
	if r.elapsed > timeout {
		t.Errorf("Lock of a free lock took %v", r.elapsed)
	}
	r.l.Unlock()

	var nilLock *Lock
	nilLock.Unlock() // harmless
}

func TestLockWaitsForRelease(t *testing.T) {
	d := openTemp(t)
	held, err := d.Lock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, held.Unlock)
	start := time.Now()
	l, err := d.Lock(2 * time.Second)
	if err != nil {
		t.Fatalf("Lock while another releases within its timeout: %v", err)
	}
	defer l.Unlock()
	if e := time.Since(start); e < 40*time.Millisecond {
		t.Errorf("Lock returned after %v, before the holder let go", e)
	}
}

func TestLockUnusableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Dir{Path: file}
	_, err := d.Lock(10 * time.Millisecond)
	if err == nil || errors.Is(err, ErrLockTimeout) || !strings.Contains(err.Error(), "state directory") {
		t.Errorf("Lock in a file = %v, want a state directory error", err)
	}
}

func TestSweepDue(t *testing.T) {
	d := openTemp(t)
	l, err := d.Lock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	const every = 30 * time.Second
	now := time.Now()

	// A new lock file's mtime is its creation: no sweep is due yet.
	if l.SweepDue(now, every) {
		t.Error("SweepDue right after creating the lock = true")
	}
	if !l.SweepDue(now.Add(every+time.Second), every) {
		t.Error("SweepDue a period later = false")
	}

	l.MarkSwept(now.Add(-time.Hour))
	if !l.SweepDue(now, every) {
		t.Error("SweepDue an hour after the last sweep = false")
	}
	l.MarkSwept(now)
	if l.SweepDue(now.Add(10*time.Second), every) {
		t.Error("SweepDue 10s after a sweep = true")
	}
	if !l.SweepDue(now.Add(every), every) {
		t.Error("SweepDue exactly one period after a sweep = false")
	}
	// A clock that went backwards makes the mtime lie: sweep.
	if !l.SweepDue(now.Add(-time.Minute), every) {
		t.Error("SweepDue with the last sweep in the future = false")
	}

	// The mark is on the file, so another holder sees it.
	l.Unlock()
	l2, err := d.Lock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Unlock()
	if l2.SweepDue(now.Add(10*time.Second), every) {
		t.Error("a later holder sees the sweep as due")
	}
}

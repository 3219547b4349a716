package state

import (
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Lock is the held state lock.
type Lock struct {
	fd   int
	path string
}

// Lock takes the directory's lock, waiting at most timeout. It polls a
// non-blocking flock rather than blocking in the kernel so that a library
// caller is never left with a thread stuck in flock(2) after giving up.
func (d *Dir) Lock(timeout time.Duration) (*Lock, error) {
	path := filepath.Join(d.Path, "lock")
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err == unix.ENOENT {
		if err := d.ensure(); err != nil {
			return nil, err
		}
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("state directory %s: open lock: %w", d.Path, err)
	}
	deadline := time.Now().Add(timeout)
	wait := 200 * time.Microsecond
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return &Lock{fd: fd, path: path}, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: %w after %s", path, ErrLockTimeout, timeout)
		}
		time.Sleep(wait)
		wait = min(wait*2, 10*time.Millisecond)
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l != nil && l.fd > 0 {
		unix.Close(l.fd) // closing the last fd drops the flock
		l.fd = -1
	}
}

// SweepDue reports whether the last sweep of stale records (the lock file's
// mtime) is older than every. The lock file is already open, so asking costs
// one fstat: cheap enough for every ifup.
func (l *Lock) SweepDue(now time.Time, every time.Duration) bool {
	var st unix.Stat_t
	if err := unix.Fstat(l.fd, &st); err != nil {
		return true
	}
	last := time.Unix(st.Mtim.Unix())
	return now.Sub(last) >= every || last.After(now)
}

// MarkSwept records now as the time of the last sweep.
func (l *Lock) MarkSwept(now time.Time) {
	ts := unix.NsecToTimespec(now.UnixNano())
	_ = unix.UtimesNano(l.path, []unix.Timespec{ts, ts})
}

package state

import (
	"errors"
	"sync"
	"time"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"golang.org/x/sys/unix"
)

// ErrLockTimeout is wrapped when another ifhook holds the lock too long.
var ErrLockTimeout = errors.New("timed out waiting for the lock")

// Lock is the held state lock.
type Lock struct {
	fd     int
	path   string
	Shared bool // held shared: others holding it shared run beside it
}

// Lock takes the directory's lock exclusively, waiting at most timeout: for
// what changes more than one TAP and its own record (a bridge, a recovery,
// a sweep).
func (d *Dir) Lock(timeout time.Duration) (*Lock, error) { return d.lock(unix.LOCK_EX, timeout) }

// LockShared takes the lock shared, waiting at most timeout: for an ifup or
// ifdown that changes only its own TAP and record, so that a host starting
// hundreds of VMs at once attaches them side by side.
func (d *Dir) LockShared(timeout time.Duration) (*Lock, error) {
	l, err := d.lock(unix.LOCK_SH, timeout)
	if l != nil {
		l.Shared = true
	}
	return l, err
}

// TryLock takes the lock exclusively if nobody holds it, else returns nil.
func (d *Dir) TryLock() *Lock {
	root, err := d.rootDir(false)
	if err != nil {
		return nil
	}
	fd, err := d.openLock(root)
	if err != nil {
		return nil
	}
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		unix.Close(fd)
		return nil
	}
	return &Lock{fd: fd, path: d.Path + "/lock"}
}

// lock takes the lock (how: LOCK_EX or LOCK_SH). An uncontended lock costs
// one non-blocking flock; a contended one blocks in the kernel (woken the
// moment the holder is done, not on a polling schedule), on a goroutine, so
// that giving up at the deadline leaves nothing held: if the flock is
// granted after all, that goroutine lets it go.
func (d *Dir) lock(how int, timeout time.Duration) (*Lock, error) {
	root, err := d.rootDir(true)
	if err != nil {
		return nil, err
	}
	fd, err := d.openLock(root)
	if err != nil {
		return nil, dirErr(d.Path, err)
	}
	l := &Lock{fd: fd, path: d.Path + "/lock"}
	err = unix.Flock(fd, how|unix.LOCK_NB)
	if err == nil {
		return l, nil
	}
	if err != unix.EWOULDBLOCK && err != unix.EINTR {
		unix.Close(fd)
		return nil, exit.New(exit.State, "lock %s: %w", l.path, err)
	}
	var mu sync.Mutex
	abandoned := false
	done := make(chan error, 1)
	go func() {
		var err error
		for {
			if err = unix.Flock(fd, how); err != unix.EINTR {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			unix.Close(fd) // granted too late: nobody wants it now
			return
		}
		done <- err
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			unix.Close(fd)
			return nil, exit.New(exit.State, "lock %s: %w", l.path, err)
		}
		return l, nil
	case <-timer.C:
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case err := <-done: // granted just now, after all
		if err == nil {
			return l, nil
		}
		unix.Close(fd)
		return nil, exit.New(exit.State, "lock %s: %w", l.path, err)
	default:
		abandoned = true
		return nil, exit.New(exit.Temporary, "lock %s: %w after %s", l.path, ErrLockTimeout, timeout)
	}
}

// openLock opens (making) the lock file: root's alone, or in a shared
// directory one every helper run can open, whoever made it.
func (d *Dir) openLock(root *rawfile.Dir) (int, error) {
	if !d.shared {
		return root.OpenLock("lock", 0o600)
	}
	fd, err := root.OpenLock("lock", sharedLockMode)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && int(st.Uid) == euid() && st.Mode&0o777 != sharedLockMode {
		_ = unix.Fchmod(fd, sharedLockMode) // the umask took bits off
	}
	return fd, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l != nil && l.fd >= 0 {
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
	tv := unix.NsecToTimeval(now.UnixNano())
	if unix.Futimes(l.fd, []unix.Timeval{tv, tv}) != nil {
		// Not the file's owner (a bridge helper run by another user than
		// the one who made the lock file): a time of one's choosing is the
		// owner's to set, the current time anyone's who may write it.
		_, _, _ = unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(l.fd), 0, 0, 0, 0, 0)
	}
}

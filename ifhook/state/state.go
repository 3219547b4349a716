// Package state keeps ifhook's records of what it changed, under a runtime
// directory (/run/ifhook), and the lock that serialises every change ifhook
// makes.
//
// Layout:
//
//	DIR/lock           flock(2)ed by every change; its mtime is the last sweep
//	DIR/inflight       present while a bridge's plan is being applied
//	DIR/taps/TAP       what ifup changed (or is changing) on TAP
//	DIR/bridges/NAME   the steps ifhook took for a bridge of the policy
//	DIR/macs/BR/MAC    the TAP whose guest uses MAC on bridge BR
//
// Records are data from a file, not orders: each is read with a size limit,
// must be a regular file, must parse as something ifhook writes (see
// codec.go) and must name the file it is in. One that does not is moved
// aside as NAME:corrupt, reported once, and never blocks another run.
//
// The directory can be one other users can see, so nothing in it is taken
// on trust either: every file is reached relative to a directory descriptor
// opened without following symlinks, created with O_CREAT|O_EXCL|O_NOFOLLOW,
// and the directory and its subdirectories must be root's (or the caller's)
// and not writable by group or others.
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"github.com/ifhook/ifhook/ifhook/policy"
	"golang.org/x/sys/unix"
)

// DefaultDir is where records live unless IFHOOK_STATE_DIR says otherwise.
const DefaultDir = "/run/ifhook"

// MaxRecord is the largest record ifhook reads: a real one is a few hundred
// bytes, a bridge's a few KiB.
const MaxRecord = 64 << 10

// corruptSuffix marks a record moved aside. No interface name holds a ':'.
const corruptSuffix = ":corrupt"

// Dir is a state directory.
type Dir struct {
	Path string
	// Report is told of each problem found and dealt with, such as a
	// corrupt record moved aside; nil: nobody is told.
	Report func(error)

	mu   sync.Mutex
	root *rawfile.Dir
	subs map[string]*rawfile.Dir

	// shared: the bridge helper's directory (see shared.go), of group gid.
	shared bool
	gid    int
}

// Open returns the state directory at path. It touches nothing: the
// directory (mode 0700) is made when the first lock or record needs it.
func Open(path string) (*Dir, error) {
	if path == "" {
		return nil, exit.New(exit.State, "state directory: empty path")
	}
	if !filepath.IsAbs(path) {
		return nil, exit.New(exit.State, "state directory %s: not an absolute path", path)
	}
	return &Dir{Path: filepath.Clean(path), gid: -1}, nil
}

// Close releases the directory descriptors.
func (d *Dir) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.subs {
		s.Close()
	}
	d.subs = nil
	d.root.Close()
	d.root = nil
}

func dirErr(path string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		err = pe.Err
	}
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		// Root's records are root's: this is a question of privilege.
		return exit.New(exit.Permission, "state directory %s: %w (it is root's: run as root)", path, err)
	}
	return exit.New(exit.State, "state directory %s: %w", path, err)
}

// CheckDir refuses a directory another user could write to: records there
// could be forged, and files planted. It must be root's or the caller's,
// and writable by neither its group nor others.
func CheckDir(dir *rawfile.Dir) error { return check(dir) }

func check(dir *rawfile.Dir) error {
	st, err := dir.Stat()
	if err != nil {
		return dirErr(dir.Path(), err)
	}
	uid := euid()
	if st.Uid != 0 && int(st.Uid) != uid {
		return exit.New(exit.State, "state directory %s is owned by uid %d, not root or uid %d: another user could forge its records", dir.Path(), st.Uid, uid)
	}
	if st.Mode&0o022 != 0 {
		return exit.New(exit.State, "state directory %s is writable by its group or others (mode %04o): fix it with chmod go-w %s", dir.Path(), st.Mode&0o7777, dir.Path())
	}
	return nil
}

// euid is the caller's effective uid, asked once.
var euid = sync.OnceValue(os.Geteuid)

// rootDir opens (with create, makes) the directory itself.
func (d *Dir) rootDir(create bool) (*rawfile.Dir, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rootLocked(create)
}

func (d *Dir) rootLocked(create bool) (*rawfile.Dir, error) {
	if d.root != nil {
		return d.root, nil
	}
	root, err := rawfile.OpenDir(d.Path, false, 0o700)
	// A shared directory is made by root for its group (MakeShared),
	// never on first use.
	if errors.Is(err, fs.ErrNotExist) && create && !d.shared {
		if err := os.MkdirAll(filepath.Dir(d.Path), 0o755); err != nil {
			return nil, dirErr(d.Path, err)
		}
		root, err = rawfile.OpenDir(d.Path, true, 0o700)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, dirErr(d.Path, err)
	}
	if d.shared {
		err = d.checkShared(root, true)
	} else {
		err = check(root)
	}
	if err != nil {
		root.Close()
		return nil, err
	}
	d.root = root
	return root, nil
}

// sub opens the subdirectory name (with create, making it and the
// directory). A missing one without create is fs.ErrNotExist.
func (d *Dir) sub(name string, create bool) (*rawfile.Dir, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.subs[name]; ok {
		return s, nil
	}
	root, err := d.rootLocked(create)
	if err != nil {
		return nil, err
	}
	s, err := d.subDir(root, name, create)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !create {
			return nil, err
		}
		if _, ok := errors.AsType[*fs.PathError](err); ok {
			return nil, dirErr(filepath.Join(d.Path, name), err)
		}
		return nil, err
	}
	if d.subs == nil {
		d.subs = map[string]*rawfile.Dir{}
	}
	d.subs[name] = s
	return s, nil
}

// CorruptError is a record that could not be trusted and was moved aside.
type CorruptError struct {
	Path  string // where it was
	Aside string // where it is now ("" if moving it failed)
	Err   error
}

func (e *CorruptError) Error() string {
	if e.Aside == "" {
		return fmt.Sprintf("record %s cannot be used: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("record %s cannot be used (%v); moved aside to %s", e.Path, e.Err, e.Aside)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// quarantine moves a record that cannot be trusted out of the way and
// reports it, so that it is reported once and never blocks a later run.
func (d *Dir) quarantine(dir *rawfile.Dir, name string, why error) {
	if pe, ok := errors.AsType[*fs.PathError](why); ok {
		why = pe.Err
	}
	e := &CorruptError{Path: filepath.Join(dir.Path(), name), Err: why}
	if err := dir.Rename(name, name+corruptSuffix); err == nil {
		e.Aside = e.Path + corruptSuffix
	}
	if d.Report != nil {
		d.Report(e)
	}
}

// readRecord reads and decodes the record name in subdirectory sub: nil
// when there is none, or when it could not be trusted (then it is moved
// aside and reported).
func readRecord[R any](d *Dir, sub, name string, decode func([]byte) (*R, error), nameOf func(*R) string) (*R, error) {
	dir, err := d.sub(sub, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	data, err := dir.Read(name, MaxRecord)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, rawfile.ErrNotRegular), errors.Is(err, rawfile.ErrTooLarge):
		d.quarantine(dir, name, err)
		return nil, nil
	case err != nil:
		return nil, exit.New(exit.State, "read record %s: %w", filepath.Join(dir.Path(), name), unwrapPath(err))
	}
	r, err := decode(data)
	if err == nil && nameOf(r) != name {
		err = fmt.Errorf("%w: it names %q, not %q", ErrCorrupt, nameOf(r), name)
	}
	if err != nil {
		d.quarantine(dir, name, err)
		return nil, nil
	}
	return r, nil
}

func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// listNames returns the record names in subdirectory sub, sorted; what is
// no record's name (and no temporary or aside file) is moved aside.
func (d *Dir) listNames(sub string) ([]string, error) {
	dir, err := d.sub(sub, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	entries, err := dir.List()
	if err != nil {
		return nil, exit.New(exit.State, "list records in %s: %w", dir.Path(), unwrapPath(err))
	}
	var names []string
	for _, e := range entries {
		switch {
		case strings.Contains(e.Name, ":"):
			// a temporary file, or one moved aside
		case policy.ValidIfName(e.Name) != nil:
			d.quarantine(dir, e.Name, fmt.Errorf("%w: not a record's name", ErrCorrupt))
		default:
			names = append(names, e.Name)
		}
	}
	sortStrings(names)
	return names, nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func writeRecord(d *Dir, sub, name string, data []byte, sync bool) error {
	dir, err := d.sub(sub, true)
	if err != nil {
		return err
	}
	if err := d.write(dir, name, data, sync); err != nil {
		return exit.New(exit.State, "write record %s: %w", filepath.Join(dir.Path(), name), unwrapPath(err))
	}
	if sync {
		if err := unix.Fsync(dir.FD()); err != nil {
			return exit.New(exit.State, "sync %s: %w", dir.Path(), err)
		}
	}
	return nil
}

func removeRecord(d *Dir, sub, name string) error {
	dir, err := d.sub(sub, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := dir.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return exit.New(exit.State, "remove record %s: %w", filepath.Join(dir.Path(), name), unwrapPath(err))
	}
	return nil
}

// Read returns the record of tap, or nil when there is none (or when the
// one there could not be trusted: it is moved aside and reported).
func (d *Dir) Read(tap string) (*Record, error) {
	return readRecord(d, "taps", tap, d.decode, func(r *Record) string { return r.TAP })
}

// decode is Decode, refusing in a shared directory a record that is not
// the bridge helper's.
func (d *Dir) decode(data []byte) (*Record, error) {
	r, err := Decode(data)
	if err == nil {
		err = d.checkHelperRecord(r)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Write stores r atomically. /run is tmpfs, and a TAP does not outlive a
// reboot either, so it is not synced to disk.
func (d *Dir) Write(r *Record) error { return writeRecord(d, "taps", r.TAP, r.Encode(), false) }

// Remove deletes the record of tap; a missing record is not an error.
func (d *Dir) Remove(tap string) error { return removeRecord(d, "taps", tap) }

// List returns every TAP record, sorted by TAP name.
func (d *Dir) List() ([]*Record, error) {
	names, err := d.listNames("taps")
	var out []*Record
	for _, n := range names {
		r, rerr := d.Read(n)
		err = exit.Join(err, rerr)
		if r != nil {
			out = append(out, r)
		}
	}
	return out, err
}

// Inflight reports whether a bridge plan was being applied when its
// process last held the lock: one system call, cheap enough for every ifup.
func (d *Dir) Inflight() bool {
	root, err := d.rootDir(false)
	return err == nil && root.Exists("inflight")
}

// MarkInflight says a bridge plan is about to change the kernel, and
// what plan ("setup br0", "teardown br0 force"): a process killed before
// ClearInflight leaves it for the next one to finish or undo.
func (d *Dir) MarkInflight(what string) error {
	root, err := d.rootDir(true)
	if err != nil {
		return err
	}
	if err := d.write(root, "inflight", []byte(what+"\n"), true); err != nil {
		return exit.New(exit.State, "write %s/inflight: %w", d.Path, unwrapPath(err))
	}
	return nil
}

// InflightPlan returns what MarkInflight said, or "" when nothing is
// pending.
func (d *Dir) InflightPlan() (string, error) {
	root, err := d.rootDir(false)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	data, err := root.Read("inflight", 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		d.quarantine(root, "inflight", err)
		return "", nil
	}
	return strings.TrimSpace(string(data)), nil
}

// ClearInflight says no bridge plan is pending any more.
func (d *Dir) ClearInflight() error {
	root, err := d.rootDir(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := root.Remove("inflight"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return exit.New(exit.State, "remove %s/inflight: %w", d.Path, unwrapPath(err))
	}
	return nil
}

// CollectTemp removes the temporary files of processes that are gone
// (killed between writing a record and renaming it into place) and
// returns their paths.
func (d *Dir) CollectTemp() ([]string, error) {
	var removed []string
	var errs []error
	collect := func(dir *rawfile.Dir) {
		entries, err := dir.List()
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, e := range entries {
			pid, ok := tempPID(e.Name)
			if !ok || alive(pid) {
				continue
			}
			if err := dir.Remove(e.Name); err == nil {
				removed = append(removed, filepath.Join(dir.Path(), e.Name))
			}
		}
	}
	root, err := d.rootDir(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	collect(root)
	for _, sub := range []string{"taps", "bridges"} {
		if dir, err := d.sub(sub, false); err == nil {
			collect(dir)
		}
	}
	if macs, err := d.sub("macs", false); err == nil {
		if entries, err := macs.List(); err == nil {
			for _, e := range entries {
				if policy.ValidIfName(e.Name) != nil {
					continue
				}
				if bd, err := macs.Sub(e.Name, false, 0); err == nil {
					collect(bd)
					bd.Close()
				}
			}
		}
	}
	return removed, exit.Join(errs...)
}

// tempPID returns the process that made a temporary file NAME:PID.tmp.
func tempPID(name string) (int, bool) {
	rest, ok := strings.CutSuffix(name, rawfile.TempSuffix)
	if !ok {
		return 0, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return 0, false
	}
	pid, err := strconv.Atoi(rest[i+1:])
	return pid, err == nil && pid > 0
}

func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

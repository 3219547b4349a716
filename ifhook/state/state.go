// Package state keeps ifhook's records of what it changed, one small JSON
// file per TAP under a runtime directory (/run/ifhook), and the lock that
// serialises every change ifhook makes.
//
// Layout:
//
//	DIR/lock           flock(2)ed by every change; its mtime is the last sweep
//	DIR/taps/TAP       what ifup changed on TAP, so ifdown can undo exactly that
//	DIR/bridges/NAME   what ifhook made for a bridge of the policy
//	DIR/macs/BR/MAC    the TAP whose guest uses MAC on bridge BR
//
// A record is "key=value" lines: read and written on the hot path of every
// ifup and ifdown, it must cost next to nothing, and reflection-driven
// encoders (encoding/json) cost more than the rest of a record's handling.
// Unknown keys are ignored, so older binaries read newer records.
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
)

// DefaultDir is where records live unless IFHOOK_STATE_DIR says otherwise.
const DefaultDir = "/run/ifhook"

// ErrLockTimeout is returned when another ifhook holds the lock too long.
var ErrLockTimeout = errors.New("timed out waiting for the lock")

// Snapshot is the part of a TAP's configuration ifhook may change.
type Snapshot struct {
	MAC    string `json:"mac,omitempty"`
	MTU    int    `json:"mtu,omitempty"`
	Master string `json:"master,omitempty"`
	Up     bool   `json:"up"`
}

// Record says what ifup did to one TAP.
type Record struct {
	TAP    string    `json:"tap"`
	Index  int       `json:"ifindex"` // tells this TAP from a later one with the same name
	Bridge string    `json:"bridge"`
	Since  time.Time `json:"since"`
	Rule   string    `json:"rule,omitempty"` // which policy setting chose the bridge
	Prev   Snapshot  `json:"prev"`           // before ifhook first touched it
	Set    Snapshot  `json:"set"`            // what ifhook set

	VM       string `json:"vm,omitempty"`        // QEMU's -name, when known
	PID      int    `json:"qemu_pid,omitempty"`  // the QEMU that ran the hook
	GuestMAC string `json:"guest_mac,omitempty"` // the guest NIC's MAC, when known
}

// Dir is a state directory.
type Dir struct {
	Path string
}

// Open returns the state directory at path. It touches nothing: the
// directory (mode 0700: records are root's business) is made when the
// first lock or record needs it, so a hook run that finds it there, as
// nearly all do, spends no system call on it.
func Open(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("state directory: empty path")
	}
	return &Dir{Path: path}, nil
}

// ensure makes the directory and its taps/ subdirectory.
func (d *Dir) ensure() error {
	if err := os.MkdirAll(filepath.Join(d.Path, "taps"), 0o700); err != nil {
		return fmt.Errorf("state directory %s: %w", d.Path, unwrap(err))
	}
	return nil
}

func unwrap(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

func (d *Dir) recordPath(tap string) string {
	return filepath.Join(d.Path, "taps", tap)
}

// Read returns the record for tap, or nil when there is none.
func (d *Dir) Read(tap string) (*Record, error) {
	return readRecord(d.recordPath(tap), Decode)
}

// readRecord reads and decodes the record at path; nil when there is none.
func readRecord[R any](path string, decode func([]byte) (*R, error)) (*R, error) {
	data, err := rawfile.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", path, unwrap(err))
	}
	r, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("record %s is corrupt: %w", path, err)
	}
	return r, nil
}

// Write stores r atomically: a reader sees the old record or the new one,
// never half of one. /run is tmpfs, so there is nothing to fsync for.
func (d *Dir) Write(r *Record) error {
	return writeAtomic(d.recordPath(r.TAP), r.Encode())
}

// Remove deletes the record for tap; a missing record is not an error.
func (d *Dir) Remove(tap string) error { return removeRecord(d.recordPath(tap)) }

// removeRecord deletes the record file at path; a missing one is fine.
func removeRecord(path string) error {
	err := rawfile.Remove(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove record %s: %w", path, unwrap(err))
	}
	return nil
}

// List returns every record, sorted by TAP name. Records that cannot be read
// are returned as errors after the good ones are collected.
func (d *Dir) List() ([]*Record, error) { return listRecords(d, "taps", d.Read) }

// listRecords reads every record in DIR/sub, sorted by name, collecting
// the errors of those that cannot be read after the good ones.
func listRecords[R any](d *Dir, sub string, read func(name string) (*R, error)) ([]*R, error) {
	entries, err := os.ReadDir(filepath.Join(d.Path, sub))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing recorded yet
	}
	if err != nil {
		return nil, fmt.Errorf("list records in %s: %w", d.Path, unwrap(err))
	}
	var out []*R
	var errs []error
	for _, e := range entries { // ReadDir sorts by name
		// Temporary files hold a ':', which no interface name may.
		if name := e.Name(); !strings.Contains(name, ":") && e.Type().IsRegular() {
			r, err := read(name)
			if err != nil {
				errs = append(errs, err)
			} else if r != nil {
				out = append(out, r)
			}
		}
	}
	return out, errors.Join(errs...)
}

// writeAtomic writes data to a temporary file beside path and renames it
// into place.
func writeAtomic(path string, data []byte) error {
	tmp := path + ":" + strconv.Itoa(os.Getpid()) + ".tmp"
	err := rawfile.WriteFile(tmp, data, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory is made on first use (see Open).
		if merr := os.MkdirAll(filepath.Dir(path), 0o700); merr == nil {
			err = rawfile.WriteFile(tmp, data, 0o600)
		}
	}
	if err == nil {
		err = rawfile.Rename(tmp, path)
	}
	if err != nil {
		rawfile.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, unwrap(err))
	}
	return nil
}

// The guest-MAC index: DIR/macs/BRIDGE/MAC holds the name of the TAP whose
// guest uses MAC on BRIDGE, so the duplicate check at ifup is one file read
// however many guests a bridge has.

func (d *Dir) macPath(bridge string, mac net.HardwareAddr) string {
	return filepath.Join(d.Path, "macs", bridge, mac.String())
}

// MACOwner returns the TAP recorded as using mac on bridge, or "".
func (d *Dir) MACOwner(bridge string, mac net.HardwareAddr) (string, error) {
	data, err := rawfile.ReadFile(d.macPath(bridge, mac))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", d.macPath(bridge, mac), unwrap(err))
	}
	return strings.TrimSpace(string(data)), nil
}

// ClaimMAC records tap as the user of mac on bridge.
func (d *Dir) ClaimMAC(bridge string, mac net.HardwareAddr, tap string) error {
	dir := filepath.Join(d.Path, "macs", bridge)
	if err := rawfile.Mkdir(filepath.Join(d.Path, "macs"), 0o700); err != nil {
		return fmt.Errorf("state directory %s: %w", d.Path, unwrap(err))
	}
	if err := rawfile.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("state directory %s: %w", d.Path, unwrap(err))
	}
	return writeAtomic(d.macPath(bridge, mac), []byte(tap+"\n"))
}

// ReleaseMAC forgets mac on bridge if tap is its recorded user.
func (d *Dir) ReleaseMAC(bridge string, mac net.HardwareAddr, tap string) error {
	if owner, err := d.MACOwner(bridge, mac); err != nil || owner != tap {
		return err
	}
	err := rawfile.Remove(d.macPath(bridge, mac))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", d.macPath(bridge, mac), unwrap(err))
	}
	return nil
}

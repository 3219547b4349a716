package state

import (
	"errors"
	"io/fs"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"github.com/ifhook/ifhook/ifhook/policy"
	"golang.org/x/sys/unix"
)

// The guest-MAC index: DIR/macs/BRIDGE/MAC holds the name of the TAP whose
// guest uses MAC on BRIDGE, so the duplicate check at ifup is one file read
// however many guests a bridge has. An entry is a claim, checked against
// the TAP's record and the kernel before it refuses anyone.

// MACOwner returns the TAP recorded as using mac on bridge, or "".
func (d *Dir) MACOwner(bridge string, mac net.HardwareAddr) (string, error) {
	owner, _, err := d.MACClaim(bridge, mac)
	return owner, err
}

// MACClaim returns the TAP recorded as using mac on bridge ("" if none)
// and, when the claim says, that TAP's ifindex (0 if not): a claim that
// names its device can be checked against the kernel alone, without the
// record, which another user's process may not be able to read (root's
// TAPs, seen from the bridge helper).
func (d *Dir) MACClaim(bridge string, mac net.HardwareAddr) (string, int, error) {
	if err := policy.ValidIfName(bridge); err != nil {
		return "", 0, exit.New(exit.Internal, "MAC index of %q: %w", bridge, err)
	}
	macs, err := d.sub("macs", false)
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	bd, err := d.subDir(macs, bridge, false)
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, macDirErr(macs, bridge, err)
	}
	defer bd.Close()
	data, err := bd.Read(mac.String(), 64)
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0, nil
	}
	if err != nil {
		d.quarantine(bd, mac.String(), err)
		return "", 0, nil
	}
	owner, index, ok := parseClaim(string(data))
	if !ok {
		d.quarantine(bd, mac.String(), ErrCorrupt)
		return "", 0, nil
	}
	return owner, index, nil
}

// parseClaim reads "TAP\n" or "TAP IFINDEX\n".
func parseClaim(s string) (tap string, index int, ok bool) {
	tap, rest, hasIndex := strings.Cut(strings.TrimSuffix(s, "\n"), " ")
	if policy.ValidIfName(tap) != nil {
		return "", 0, false
	}
	if hasIndex {
		if atoi(&index, rest, 1, 1<<31-1) != nil {
			return "", 0, false
		}
	}
	return tap, index, true
}

// macDirErr classifies a failure to open the MAC directory of a bridge.
func macDirErr(macs *rawfile.Dir, bridge string, err error) error {
	if _, ok := errors.AsType[*fs.PathError](err); ok {
		return dirErr(filepath.Join(macs.Path(), bridge), err)
	}
	return err
}

// ClaimMAC records tap as the user of mac on bridge.
func (d *Dir) ClaimMAC(bridge string, mac net.HardwareAddr, tap string) error {
	return d.Claim(bridge, mac, tap, 0)
}

// Claim records tap, the device of ifindex index (0: not said), as the
// user of mac on bridge.
func (d *Dir) Claim(bridge string, mac net.HardwareAddr, tap string, index int) error {
	if err := policy.ValidIfName(bridge); err != nil {
		return exit.New(exit.Internal, "MAC index of %q: %w", bridge, err)
	}
	macs, err := d.sub("macs", true)
	if err != nil {
		return err
	}
	bd, err := d.subDir(macs, bridge, true)
	if err != nil {
		return macDirErr(macs, bridge, err)
	}
	defer bd.Close()
	line := tap + "\n"
	if index > 0 {
		line = tap + " " + strconv.Itoa(index) + "\n"
	}
	if err := d.write(bd, mac.String(), []byte(line), false); err != nil {
		return exit.New(exit.State, "write %s: %w", filepath.Join(bd.Path(), mac.String()), unwrapPath(err))
	}
	return nil
}

// LockMACs serialises the guest-MAC check and claim on one bridge, for
// ifups that run beside each other under the shared lock: two VMs started
// at once with the same MAC must not both find it free.
func (d *Dir) LockMACs(bridge string) (unlock func(), err error) { return d.LockMACsWithin(bridge, 0) }

// ErrMACsBusy is wrapped when another process holds a bridge's guest-MAC
// index past the timeout of LockMACsWithin.
var ErrMACsBusy = errors.New("the guest-MAC index is busy")

// LockMACsWithin is LockMACs waiting at most timeout (0: as long as it
// takes). In the bridge helper's shared directory the holder may be a
// helper run its user has stopped (SIGSTOP): nobody else must wait for it
// for ever.
func (d *Dir) LockMACsWithin(bridge string, timeout time.Duration) (unlock func(), err error) {
	if err := policy.ValidIfName(bridge); err != nil {
		return nil, exit.New(exit.Internal, "MAC index of %q: %w", bridge, err)
	}
	macs, err := d.sub("macs", true)
	if err != nil {
		return nil, err
	}
	bd, err := d.subDir(macs, bridge, true)
	if err != nil {
		return nil, macDirErr(macs, bridge, err)
	}
	how := unix.LOCK_EX
	if timeout > 0 {
		how |= unix.LOCK_NB
	}
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; ; {
		err = unix.Flock(bd.FD(), how)
		if err == unix.EINTR {
			continue
		}
		if err != unix.EWOULDBLOCK || time.Now().After(deadline) {
			break
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
	if err == unix.EWOULDBLOCK {
		bd.Close()
		return nil, exit.New(exit.Temporary, "lock %s: %w after %s", bd.Path(), ErrMACsBusy, timeout)
	}
	if err != nil {
		bd.Close()
		return nil, exit.New(exit.State, "lock %s: %w", bd.Path(), err)
	}
	return bd.Close, nil // closing the directory drops the flock
}

// ReleaseMAC forgets mac on bridge if tap is its recorded user.
func (d *Dir) ReleaseMAC(bridge string, mac net.HardwareAddr, tap string) error {
	return d.Release(bridge, mac, tap, 0)
}

// Release forgets mac on bridge if tap is its recorded user and, when
// both the claim and index say which device (index > 0), that device: a
// later TAP of the same name keeps its own claim.
func (d *Dir) Release(bridge string, mac net.HardwareAddr, tap string, index int) error {
	owner, claimed, err := d.MACClaim(bridge, mac)
	if err != nil || owner != tap || (index > 0 && claimed > 0 && claimed != index) {
		return err
	}
	macs, err := d.sub("macs", false)
	if err != nil {
		return err
	}
	bd, err := d.subDir(macs, bridge, false)
	if err != nil {
		return nil
	}
	defer bd.Close()
	if err := bd.Remove(mac.String()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return exit.New(exit.State, "remove %s: %w", filepath.Join(bd.Path(), mac.String()), unwrapPath(err))
	}
	return nil
}

package state

import (
	"errors"
	"io/fs"
	"net"
	"path/filepath"
	"strings"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/policy"
	"golang.org/x/sys/unix"
)

// The guest-MAC index: DIR/macs/BRIDGE/MAC holds the name of the TAP whose
// guest uses MAC on BRIDGE, so the duplicate check at ifup is one file read
// however many guests a bridge has. An entry is a claim, checked against
// the TAP's record and the kernel before it refuses anyone.

// MACOwner returns the TAP recorded as using mac on bridge, or "".
func (d *Dir) MACOwner(bridge string, mac net.HardwareAddr) (string, error) {
	if err := policy.ValidIfName(bridge); err != nil {
		return "", exit.New(exit.Internal, "MAC index of %q: %w", bridge, err)
	}
	macs, err := d.sub("macs", false)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	bd, err := macs.Sub(bridge, false, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", dirErr(filepath.Join(macs.Path(), bridge), err)
	}
	defer bd.Close()
	if err := check(bd); err != nil {
		return "", err
	}
	data, err := bd.Read(mac.String(), 64)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		d.quarantine(bd, mac.String(), err)
		return "", nil
	}
	owner := strings.TrimSpace(string(data))
	if policy.ValidIfName(owner) != nil {
		d.quarantine(bd, mac.String(), ErrCorrupt)
		return "", nil
	}
	return owner, nil
}

// ClaimMAC records tap as the user of mac on bridge.
func (d *Dir) ClaimMAC(bridge string, mac net.HardwareAddr, tap string) error {
	if err := policy.ValidIfName(bridge); err != nil {
		return exit.New(exit.Internal, "MAC index of %q: %w", bridge, err)
	}
	macs, err := d.sub("macs", true)
	if err != nil {
		return err
	}
	bd, err := macs.Sub(bridge, true, 0o700)
	if err != nil {
		return dirErr(filepath.Join(macs.Path(), bridge), err)
	}
	defer bd.Close()
	if err := check(bd); err != nil {
		return err
	}
	if err := bd.WriteAtomic(mac.String(), []byte(tap+"\n"), 0o600, false); err != nil {
		return exit.New(exit.State, "write %s: %w", filepath.Join(bd.Path(), mac.String()), unwrapPath(err))
	}
	return nil
}

// LockMACs serialises the guest-MAC check and claim on one bridge, for
// ifups that run beside each other under the shared lock: two VMs started
// at once with the same MAC must not both find it free.
func (d *Dir) LockMACs(bridge string) (unlock func(), err error) {
	if err := policy.ValidIfName(bridge); err != nil {
		return nil, exit.New(exit.Internal, "MAC index of %q: %w", bridge, err)
	}
	macs, err := d.sub("macs", true)
	if err != nil {
		return nil, err
	}
	bd, err := macs.Sub(bridge, true, 0o700)
	if err != nil {
		return nil, dirErr(filepath.Join(macs.Path(), bridge), err)
	}
	if err := check(bd); err != nil {
		bd.Close()
		return nil, err
	}
	for {
		err = unix.Flock(bd.FD(), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		bd.Close()
		return nil, exit.New(exit.State, "lock %s: %w", bd.Path(), err)
	}
	return bd.Close, nil // closing the directory drops the flock
}

// ReleaseMAC forgets mac on bridge if tap is its recorded user.
func (d *Dir) ReleaseMAC(bridge string, mac net.HardwareAddr, tap string) error {
	owner, err := d.MACOwner(bridge, mac)
	if err != nil || owner != tap {
		return err
	}
	macs, err := d.sub("macs", false)
	if err != nil {
		return err
	}
	bd, err := macs.Sub(bridge, false, 0)
	if err != nil {
		return nil
	}
	defer bd.Close()
	if err := bd.Remove(mac.String()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return exit.New(exit.State, "remove %s: %w", filepath.Join(bd.Path(), mac.String()), unwrapPath(err))
	}
	return nil
}

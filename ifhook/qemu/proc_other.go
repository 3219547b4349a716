//go:build !linux

package qemu

import (
	"errors"
	"fmt"
)

// FromParent reads the VM of the process that started this one. It needs
// Linux's /proc; elsewhere it fails with errors.ErrUnsupported.
func FromParent() (*VM, error) { return nil, errUnsupported() }

// ErrLibvirt is wrapped when the bridge helper was run by libvirt.
var ErrLibvirt = errors.New("run by libvirt, which does not say for which VM")

// FromHelperParent reads the VM of the QEMU that runs the bridge helper.
// It needs Linux's /proc; elsewhere it fails with errors.ErrUnsupported.
func FromHelperParent() (*VM, error) { return nil, errUnsupported() }

// FromPID reads the VM of QEMU process pid. It needs Linux's /proc;
// elsewhere it fails with errors.ErrUnsupported.
func FromPID(pid int) (*VM, error) { return nil, errUnsupported() }

func errUnsupported() error {
	return fmt.Errorf("reading a process's command line needs Linux /proc: %w", errors.ErrUnsupported)
}

// ParentMayBeQEMU reports whether the parent process could be QEMU; only
// Linux can tell.
func ParentMayBeQEMU() bool { return false }

// HeldTAPs lists the TAP descriptors process pid holds; only Linux can
// tell.
func HeldTAPs(pid int) ([]HeldTAP, error) { return nil, errUnsupported() }

// ParentExe returns the parent process's executable; only Linux can tell.
func ParentExe() (string, error) { return "", errUnsupported() }

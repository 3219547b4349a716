package helper

import (
	"fmt"

	"github.com/ifhook/ifhook/ifhook/exit"
	"golang.org/x/sys/unix"
)

// TAP is a TAP device made for QEMU. It exists while its descriptor is
// open: it is not persistent, so closing FD (here, and then in QEMU)
// removes it, and with it its bridge port.
type TAP struct {
	FD      int
	Name    string // the name the kernel gave it: tap0, tap1, ...
	VnetHdr bool   // made with IFF_VNET_HDR
}

// Close closes the descriptor: the TAP vanishes unless QEMU holds it.
func (t *TAP) Close() {
	if t != nil && t.FD >= 0 {
		unix.Close(t.FD)
		t.FD = -1
	}
}

// CreateTAP makes a TAP as qemu-bridge-helper does: /dev/net/tun,
// TUNSETIFF with the name "tap%d" (the kernel chooses it, so no caller
// can name a device that exists), IFF_TAP|IFF_NO_PI, and IFF_VNET_HDR
// when vnet is asked for and TUNGETFEATURES says the kernel has it. The
// device lands in the calling thread's network namespace.
func CreateTAP(vnet bool) (*TAP, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, exit.Sys(err, "open /dev/net/tun")
	}
	t := &TAP{FD: fd}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if vnet {
		if features, err := unix.IoctlGetUint32(fd, unix.TUNGETFEATURES); err == nil && features&unix.IFF_VNET_HDR != 0 {
			flags |= unix.IFF_VNET_HDR
			t.VnetHdr = true
		}
	}
	ifr, err := unix.NewIfreq("tap%d")
	if err != nil {
		t.Close()
		return nil, exit.New(exit.Internal, "TAP name template: %w", err)
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		t.Close()
		// qemu-bridge-helper's words first.
		return nil, exit.Sys(err, "failed to create tun device")
	}
	t.Name = ifr.Name()
	if t.Name == "" {
		t.Close()
		return nil, exit.New(exit.System, "failed to create tun device: the kernel gave it no name")
	}
	return t, nil
}

// TAPFlags returns the flags of the TAP behind fd (TUNGETIFF) and its
// name: what QEMU finds when it probes the descriptor it received.
func TAPFlags(fd int) (name string, flags uint16, err error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return "", 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return "", 0, fmt.Errorf("TUNGETIFF: %w", err)
	}
	return ifr.Name(), ifr.Uint16(), nil
}

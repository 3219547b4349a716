package plan

import (
	"errors"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"golang.org/x/sys/unix"
)

// AddAddr adds an address to a link; one that is there already is fine.
type AddAddr struct {
	Link LinkRef
	Addr kernel.Addr
}

// DelAddr removes an address from a link; one that is gone already is fine.
type DelAddr struct {
	Link LinkRef
	Addr kernel.Addr
}

func (s *AddAddr) String() string {
	return "ip addr add " + s.Addr.String() + " dev " + s.Link.String()
}
func (s *DelAddr) String() string {
	return "ip addr del " + s.Addr.Prefix.String() + " dev " + s.Link.String()
}

func (s *AddAddr) Do(k kernel.Kernel, r *Refs) error { return addAddr(k, r, s.Link, s.Addr, s, "") }
func (s *AddAddr) Undo(k kernel.Kernel, r *Refs) error {
	return delAddr(k, r, s.Link, s.Addr, s, "undo ")
}
func (s *DelAddr) Do(k kernel.Kernel, r *Refs) error { return delAddr(k, r, s.Link, s.Addr, s, "") }
func (s *DelAddr) Undo(k kernel.Kernel, r *Refs) error {
	return addAddr(k, r, s.Link, s.Addr, s, "undo ")
}

func addAddr(k kernel.Kernel, r *Refs, l LinkRef, a kernel.Addr, s Step, what string) error {
	i, err := r.Index(k, l)
	if err != nil {
		return exit.Sys(unix.ENODEV, "%s%s", what, s)
	}
	a.Index = i
	if err := k.AddAddr(a); err != nil && !errors.Is(err, unix.EEXIST) {
		return exit.Sys(err, "%s%s", what, s)
	}
	return nil
}

func delAddr(k kernel.Kernel, r *Refs, l LinkRef, a kernel.Addr, s Step, what string) error {
	i, err := r.Index(k, l)
	if err != nil {
		return nil // the link is gone, and its addresses with it
	}
	a.Index = i
	err = k.DelAddr(a)
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) {
		return exit.Sys(err, "%s%s", what, s)
	}
	return nil
}

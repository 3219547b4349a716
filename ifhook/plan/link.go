package plan

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"golang.org/x/sys/unix"
)

// Attrs are the link attributes a SetLink changes; zero fields are left
// alone.
type Attrs struct {
	MAC    net.HardwareAddr // nil: unchanged
	MTU    int              // 0: unchanged
	Master *LinkRef         // nil: unchanged; a LinkRef that IsNone: no master
	Up     *bool            // nil: unchanged
}

// IsZero reports whether the attributes change nothing.
func (a Attrs) IsZero() bool { return a.MAC == nil && a.MTU == 0 && a.Master == nil && a.Up == nil }

// merge returns a with every attribute b sets taken from b.
func (a Attrs) merge(b Attrs) Attrs {
	if b.MAC != nil {
		a.MAC = b.MAC
	}
	if b.MTU != 0 {
		a.MTU = b.MTU
	}
	if b.Master != nil {
		a.Master = b.Master
	}
	if b.Up != nil {
		a.Up = b.Up
	}
	return a
}

// args renders the attributes as ip(8) arguments, in the order the kernel
// applies them (do_setlink: address, MTU, master, flags).
func (a Attrs) args() string {
	var parts []string
	if a.MAC != nil {
		parts = append(parts, "address "+a.MAC.String())
	}
	if a.MTU != 0 {
		parts = append(parts, fmt.Sprintf("mtu %d", a.MTU))
	}
	if a.Master != nil {
		if a.Master.IsNone() {
			parts = append(parts, "nomaster")
		} else {
			parts = append(parts, "master "+a.Master.String())
		}
	}
	if a.Up != nil {
		if *a.Up {
			parts = append(parts, "up")
		} else {
			parts = append(parts, "down")
		}
	}
	return strings.Join(parts, " ")
}

func (a Attrs) change(k kernel.Links, r *Refs) (rtnl.Change, error) {
	ch := rtnl.Change{MAC: a.MAC, MTU: a.MTU, Up: a.Up}
	if a.Master != nil {
		i, err := r.Index(k, *a.Master)
		if err != nil {
			return ch, err
		}
		ch.Master = &i
	}
	return ch, nil
}

// Flag returns v as Attrs.Up takes it.
func Flag(v bool) *bool { return &v }

// SetLink changes attributes of one link; From holds what was there, for
// Undo. Consecutive SetLinks on one link are applied as one RTM_NEWLINK, as
// `ip link set dev X address A mtu M master B up` is: one round trip.
type SetLink struct {
	Link     LinkRef
	To, From Attrs
}

func (s *SetLink) String() string { return "ip link set dev " + s.Link.String() + " " + s.To.args() }

func (s *SetLink) Do(k kernel.Kernel, r *Refs) error { return s.set(k, r, s.To, "") }

func (s *SetLink) Undo(k kernel.Kernel, r *Refs) error { return s.set(k, r, s.From, "undo ") }

func (s *SetLink) set(k kernel.Kernel, r *Refs, a Attrs, what string) error {
	i, err := r.Index(k, s.Link)
	if err != nil {
		return exit.Sys(unix.ENODEV, "%s%s", what, s)
	}
	ch, err := a.change(k, r)
	if err != nil {
		return exit.Sys(unix.ENODEV, "%s%s: master %v", what, s, err)
	}
	if err := k.SetLink(i, ch); err != nil {
		if what != "" && kernel.IsNotFound(err) {
			return nil // undoing a change to a link that is gone
		}
		return exit.Sys(err, "%s%s", what, s)
	}
	return nil
}

// merged returns the batch as one SetLink: the changes in order, the undo
// in reverse, so that restoring all of it is right whatever part of a
// batch the kernel applied before failing (it does not roll back).
func merged(batch []Step) *SetLink {
	first := batch[0].(*SetLink)
	m := &SetLink{Link: first.Link}
	for _, s := range batch {
		m.To = m.To.merge(s.(*SetLink).To)
	}
	for i := len(batch) - 1; i >= 0; i-- {
		m.From = m.From.merge(batch[i].(*SetLink).From)
	}
	return m
}

// AddBridge makes a bridge, down, with its STP settings, MTU and MAC in the
// same message, so it never exists with the kernel's defaults.
type AddBridge struct {
	Name string
	Opts kernel.BridgeOptions
	// Index is, in a record, the index the bridge was made with (0: not
	// known, the plan was killed before it was recorded): a bridge of the
	// same name with another index is someone else's.
	Index int
}

func (s *AddBridge) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ip link add name %s", escape.String(s.Name))
	if s.Opts.MAC != nil {
		fmt.Fprintf(&b, " address %s", s.Opts.MAC)
	}
	if s.Opts.MTU != 0 {
		fmt.Fprintf(&b, " mtu %d", s.Opts.MTU)
	}
	stp := 0
	if s.Opts.STP {
		stp = 1
	}
	fmt.Fprintf(&b, " type bridge stp_state %d forward_delay %d", stp, s.Opts.ForwardDelay*100)
	return b.String()
}

// ErrAppeared is wrapped when a link a plan makes was made by someone else
// since the plan observed it missing: it is not ifhook's to take.
var ErrAppeared = errors.New("appeared meanwhile")

func (s *AddBridge) Do(k kernel.Kernel, r *Refs) error {
	i, err := k.CreateBridge(s.Name, s.Opts)
	if errors.Is(err, unix.EEXIST) {
		return exit.New(exit.Unavailable, "%s: %s %w (made by someone else, not ifhook); run again to use it", s, s.Name, ErrAppeared)
	}
	if err != nil {
		return exit.Sys(err, "%s", s)
	}
	r.Made(s.Name, i)
	return nil
}

func (s *AddBridge) Undo(k kernel.Kernel, r *Refs) error {
	i, ok := r.Get(s.Name)
	if !ok {
		return nil // never made
	}
	if err := k.DeleteLink(i); err != nil && !kernel.IsNotFound(err) {
		return exit.Sys(err, "undo %s", s)
	}
	return nil
}

// DelLink deletes a link (teardown of a bridge ifhook made). It cannot be
// undone: it only ever runs in a best-effort plan.
type DelLink struct{ Link LinkRef }

func (s *DelLink) String() string { return "ip link del dev " + s.Link.String() }

func (s *DelLink) Do(k kernel.Kernel, r *Refs) error {
	i, err := r.Index(k, s.Link)
	if err != nil {
		return nil // gone already
	}
	if err := k.DeleteLink(i); err != nil && !kernel.IsNotFound(err) {
		return exit.Sys(err, "%s", s)
	}
	return nil
}

func (s *DelLink) Undo(kernel.Kernel, *Refs) error { return nil }

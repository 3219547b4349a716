package plan

import (
	"errors"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"golang.org/x/sys/unix"
)

// AddRoute adds a route through a link; one that is there already is fine.
type AddRoute struct {
	Link  LinkRef
	Route kernel.Route
}

// DelRoute removes a route through a link; one that is gone is fine.
type DelRoute struct {
	Link  LinkRef
	Route kernel.Route
}

func family(r kernel.Route) string {
	if r.IPv6 {
		return "ip -6 route "
	}
	return "ip route "
}

func (s *AddRoute) String() string {
	return family(s.Route) + "add " + s.Route.String() + " dev " + s.Link.String()
}
func (s *DelRoute) String() string {
	return family(s.Route) + "del " + s.Route.String() + " dev " + s.Link.String()
}

func (s *AddRoute) Do(k kernel.Kernel, r *Refs) error { return addRoute(k, r, s.Link, s.Route, s, "") }
func (s *AddRoute) Undo(k kernel.Kernel, r *Refs) error {
	return delRoute(k, r, s.Link, s.Route, s, "undo ")
}
func (s *DelRoute) Do(k kernel.Kernel, r *Refs) error { return delRoute(k, r, s.Link, s.Route, s, "") }
func (s *DelRoute) Undo(k kernel.Kernel, r *Refs) error {
	return addRoute(k, r, s.Link, s.Route, s, "undo ")
}

func addRoute(k kernel.Kernel, r *Refs, l LinkRef, rt kernel.Route, s Step, what string) error {
	i, err := r.Index(k, l)
	if err != nil {
		return exit.Sys(unix.ENODEV, "%s%s", what, s)
	}
	rt.Index = i
	if err := k.AddRoute(rt); err != nil && !errors.Is(err, unix.EEXIST) {
		return exit.Sys(err, "%s%s", what, s)
	}
	return nil
}

func delRoute(k kernel.Kernel, r *Refs, l LinkRef, rt kernel.Route, s Step, what string) error {
	i, err := r.Index(k, l)
	if err != nil {
		return nil // the link is gone, and its routes with it
	}
	rt.Index = i
	err = k.DelRoute(rt)
	if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENODEV) {
		return exit.Sys(err, "%s%s", what, s)
	}
	return nil
}

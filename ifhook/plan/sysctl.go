package plan

import (
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
)

// SetSysctl writes a sysctl of the namespace; Old is what it held.
type SetSysctl struct {
	Key, Value, Old string
}

func (s *SetSysctl) String() string { return "sysctl -w " + s.Key + "=" + s.Value }

func (s *SetSysctl) Do(k kernel.Kernel, _ *Refs) error { return s.set(k, s.Value, "") }

func (s *SetSysctl) Undo(k kernel.Kernel, _ *Refs) error { return s.set(k, s.Old, "undo ") }

func (s *SetSysctl) set(k kernel.Kernel, v, what string) error {
	if !kernel.OwnedSysctl(s.Key) {
		return exit.New(exit.Internal, "%s%s: ifhook writes no such sysctl", what, s)
	}
	if err := k.SetSysctl(s.Key, v); err != nil {
		return exit.Sys(err, "%s%s", what, s)
	}
	return nil
}

package plan

import (
	"errors"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nftable"
)

// AddNAT adds a bridge's NAT rule to ifhook's nftables table; MakesTable
// says the table and its chain come with it (for the commands shown).
type AddNAT struct {
	Rule       nftable.NAT
	MakesTable bool
}

// DelNAT removes a bridge's NAT rule (and the table, with its last rule).
type DelNAT struct{ Rule nftable.NAT }

func (s *AddNAT) String() string {
	if s.MakesTable {
		return nftable.TableString() + "; " + s.Rule.String()
	}
	return s.Rule.String()
}

func (s *DelNAT) String() string { return s.Rule.DeleteString() }

func (s *AddNAT) Do(k kernel.Kernel, _ *Refs) error   { return natErr(k.AddNAT(s.Rule), s, "") }
func (s *AddNAT) Undo(k kernel.Kernel, _ *Refs) error { return natErr(k.DelNAT(s.Rule), s, "undo ") }
func (s *DelNAT) Do(k kernel.Kernel, _ *Refs) error   { return natErr(k.DelNAT(s.Rule), s, "") }
func (s *DelNAT) Undo(k kernel.Kernel, _ *Refs) error { return natErr(k.AddNAT(s.Rule), s, "undo ") }

func natErr(err error, s Step, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nftable.ErrUnavailable):
		return exit.New(exit.Unavailable, "%s%s: %w", what, s, err)
	}
	return exit.Sys(err, "%s%s", what, s)
}

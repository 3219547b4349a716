// Package plan is ifhook's one mechanism for changing the kernel: a plan is
// a list of steps, computed purely from policy and an observed snapshot
// (kernel.Model), printed as the ip(8), nft(8) and sysctl(8) commands they
// stand for (`ifhook explain`, -v and syslog show exactly these lines), then
// applied by an Applier:
//
//   - all or nothing (ifup, setup): when a step fails, or a signal asks to
//     stop, the steps already done are undone in reverse and the original
//     error is returned;
//   - best effort (ifdown, teardown): every step is tried, the failures are
//     joined on one line.
//
// A step acts on the kernel the applier passes it and holds no connection
// and no state of its own: the applier tracks what completed. A step on a
// link made earlier in the same plan names it by a LinkRef with no index,
// resolved when the step runs, so two links made in one plan are never
// mistaken for each other.
//
// Before the first change, the applier calls its Journal, which writes to
// disk what the plan is about to do and how each step is undone (the old
// values are in the steps); steps that outlive a plan in a record implement
// Recorded, whose Encode is that line of the record and whose Reverse
// computes, from a fresh observation, what undoes it. That is how a change
// killed at any point is finished or undone by the next ifhook.
package plan

import (
	"errors"
	"fmt"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/kernel"
)

// A Step is one change to the kernel. String is the command it stands for.
// Do and Undo tolerate finding the change already made (or undone): an
// address that is there already is not an error for "ip addr add".
type Step interface {
	String() string
	Do(k kernel.Kernel, r *Refs) error
	Undo(k kernel.Kernel, r *Refs) error
}

// LinkRef names the link a step acts on: an existing link by its index and
// name, or, with Index 0, a link an earlier step of the same plan makes,
// found by name when the step runs.
type LinkRef struct {
	Name  string
	Index int
}

// Ref returns the reference to an observed link.
func Ref(l *kernel.Link) LinkRef { return LinkRef{Name: l.Name, Index: l.Index} }

// New returns the reference to a link the plan makes.
func New(name string) LinkRef { return LinkRef{Name: name} }

// IsNone reports whether r names no link (no master).
func (r LinkRef) IsNone() bool { return r.Name == "" && r.Index == 0 }

// key identifies the link for batching: its index, or its name when the
// plan makes it.
func (r LinkRef) key() string {
	if r.Index != 0 {
		return fmt.Sprintf("#%d", r.Index)
	}
	return "new:" + r.Name
}

func (r LinkRef) String() string {
	if r.Name == "" {
		return fmt.Sprintf("index %d", r.Index)
	}
	return escape.String(r.Name)
}

// Refs resolves the LinkRefs of a plan being applied: links the plan makes
// are recorded by their name as they are made.
type Refs struct {
	made map[string]int
}

// Made records that the plan made link name, with index.
func (r *Refs) Made(name string, index int) {
	if r.made == nil {
		r.made = map[string]int{}
	}
	r.made[name] = index
}

// Get returns the index of a link the plan made (a nil Refs knows none).
func (r *Refs) Get(name string) (int, bool) {
	if r == nil {
		return 0, false
	}
	i, ok := r.made[name]
	return i, ok
}

// ErrUnresolved is wrapped when a step names a link that is not there.
var ErrUnresolved = errors.New("link not found")

// Index returns the index ref stands for: its own, or that of the link
// the plan made under its name, or, for a plan resumed from a record, the
// link of that name now.
func (r *Refs) Index(k kernel.Links, ref LinkRef) (int, error) {
	if ref.Index != 0 {
		return ref.Index, nil
	}
	if ref.Name == "" {
		return 0, nil
	}
	if i, ok := r.Get(ref.Name); ok {
		return i, nil
	}
	l, err := k.LinkByName(ref.Name)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", ref.Name, ErrUnresolved)
	}
	return l.Index, nil
}

// NoteKind says what a note is for.
type NoteKind uint8

const (
	Info    NoteKind = iota // for explain and -v
	Moved                   // the TAP leaves another bridge: shown even when quiet
	Warning                 // something the user should fix: shown even when quiet
)

// Note is something a plan says beside its steps.
type Note struct {
	Kind NoteKind
	Text string
}

// Notef returns a note of kind k.
func Notef(k NoteKind, format string, args ...any) Note {
	return Note{Kind: k, Text: fmt.Sprintf(format, args...)}
}

// Lines returns the steps as the commands they stand for.
func Lines(steps []Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.String()
	}
	return out
}

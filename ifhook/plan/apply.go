package plan

import (
	"fmt"
	"strings"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
)

// Batches groups steps as they are applied: consecutive SetLinks on one
// link (by its index, or by its name when the plan makes it) form one
// batch, sent as one message; any other step is a batch of its own.
func Batches(steps []Step) [][]Step {
	var out [][]Step
	for i := 0; i < len(steps); {
		j := i + 1
		if a, ok := steps[i].(*SetLink); ok {
			for j < len(steps) {
				b, ok := steps[j].(*SetLink)
				if !ok || b.Link.key() != a.Link.key() {
					break
				}
				j++
			}
		}
		out = append(out, steps[i:j])
		i = j
	}
	return out
}

// Describe says what a batch does in one line: one ip(8) command for a
// batch of link changes.
func Describe(batch []Step) string {
	if len(batch) == 1 {
		return batch[0].String()
	}
	return merged(batch).String()
}

func doBatch(k kernel.Kernel, r *Refs, batch []Step) error {
	if len(batch) == 1 {
		return batch[0].Do(k, r)
	}
	return merged(batch).Do(k, r)
}

func undoBatch(k kernel.Kernel, r *Refs, batch []Step) error {
	if len(batch) == 1 {
		return batch[0].Undo(k, r)
	}
	return merged(batch).Undo(k, r)
}

// Log is where an applier reports.
type Log interface {
	// Applied reports a batch of steps done.
	Applied(ctx string, batch []Step)
	// Change reports something worth keeping (syslog).
	Change(format string, args ...any)
	// Failure reports a failure (syslog).
	Failure(err error)
}

// Journal is a plan's write-ahead record. The applier calls Ahead before
// the first change, then Commit once every step is done, or Abort once a
// failed plan has been rolled back (undone says whether all of it was).
type Journal interface {
	Ahead() error
	Commit(r *Refs) error
	Abort(undone bool) error
}

// NoJournal journals nothing: the plan's steps need no record (explain's
// dry runs, tests).
type NoJournal struct{}

func (NoJournal) Ahead() error       { return nil }
func (NoJournal) Commit(*Refs) error { return nil }
func (NoJournal) Abort(bool) error   { return nil }

// Applier applies plans to one kernel.
type Applier struct {
	Kernel kernel.Kernel
	Log    Log // nil: report nothing
	// Stop reports which signal asked the process to stop, or "" (nil:
	// never). It is asked between batches: the current one always
	// finishes, so the kernel and the journal stay consistent.
	Stop func() string
	// Refs resolves the plan's link references; a fresh one when nil.
	Refs *Refs
}

func (a *Applier) refs() *Refs {
	if a.Refs == nil {
		a.Refs = &Refs{}
	}
	return a.Refs
}

func (a *Applier) applied(ctx string, b []Step) {
	if a.Log != nil {
		a.Log.Applied(ctx, b)
	}
}

func (a *Applier) stop() string {
	if a.Stop == nil {
		return ""
	}
	return a.Stop()
}

// All applies steps in order, all or nothing. When one fails, or a signal
// asks to stop, the batches already done are undone in reverse, and the
// original error is returned (with a note if the rollback itself failed),
// so its Kind, and the exit status, survive.
func (a *Applier) All(ctx string, steps []Step, j Journal) error {
	if j == nil {
		j = NoJournal{}
	}
	if len(steps) == 0 {
		return j.Commit(a.refs())
	}
	if err := j.Ahead(); err != nil {
		return err
	}
	r := a.refs()
	bs := Batches(steps)
	for i, b := range bs {
		err := doBatch(a.Kernel, r, b)
		if err == nil {
			a.applied(ctx, b)
			if i == len(bs)-1 {
				break
			}
			sig := a.stop()
			if sig == "" {
				continue
			}
			err = exit.New(exit.Temporary, "interrupted by %s after %d of %d changes", sig, i+1, len(bs))
		}
		// The batch that failed may have been applied in part (the
		// kernel applies a message's attributes one after another and
		// keeps those done): it is undone with the rest.
		return a.rollback(ctx, r, bs[:i+1], err, j)
	}
	return j.Commit(r)
}

func (a *Applier) rollback(ctx string, r *Refs, done [][]Step, err error, j Journal) error {
	var rbErrs []string
	for k := len(done) - 1; k >= 0; k-- {
		if rb := undoBatch(a.Kernel, r, done[k]); rb != nil {
			rbErrs = append(rbErrs, rb.Error())
		}
	}
	if jerr := j.Abort(len(rbErrs) == 0); jerr != nil {
		rbErrs = append(rbErrs, jerr.Error())
	}
	if len(rbErrs) > 0 {
		msg := strings.Join(rbErrs, "; ")
		if a.Log != nil {
			a.Log.Failure(fmt.Errorf("%s: rollback incomplete: %s", ctx, msg))
		}
		return exit.As(exit.KindOf(err), fmt.Errorf("%w (rollback incomplete: %s)", err, msg))
	}
	if a.Log != nil {
		a.Log.Change("%s: rolled back after failure: %v", ctx, err)
	}
	if exit.KindOf(err) == exit.Temporary {
		return exit.As(exit.Temporary, fmt.Errorf("%w; everything it changed was undone", err))
	}
	return err
}

// BestEffort tries every step even when some fail, as detaching and
// tearing down must, and returns the failures joined on one line; the Kind
// is the first's. A signal stops it between batches; the journal keeps
// what is left for the next run. Commit is called only when every step
// succeeded.
func (a *Applier) BestEffort(ctx string, steps []Step, j Journal) error {
	if j == nil {
		j = NoJournal{}
	}
	if len(steps) == 0 {
		return j.Commit(a.refs())
	}
	if err := j.Ahead(); err != nil {
		return err
	}
	r := a.refs()
	var errs []error
	bs := Batches(steps)
	for i, b := range bs {
		if err := doBatch(a.Kernel, r, b); err == nil {
			a.applied(ctx, b)
		} else if len(b) == 1 {
			errs = append(errs, err)
		} else {
			// One message for the batch failed: step by step, so that
			// what can be done is.
			for _, s := range b {
				if err := s.Do(a.Kernel, r); err != nil {
					errs = append(errs, err)
				} else {
					a.applied(ctx, []Step{s})
				}
			}
		}
		if sig := a.stop(); sig != "" && i < len(bs)-1 {
			errs = append(errs, exit.New(exit.Temporary, "interrupted by %s after %d of %d changes; run it again to finish", sig, i+1, len(bs)))
			break
		}
	}
	if len(errs) > 0 {
		if jerr := j.Abort(false); jerr != nil {
			errs = append(errs, jerr)
		}
		return exit.Join(errs...)
	}
	return j.Commit(r)
}

// Journals is several journals kept as one, in order: an ifup that makes
// its bridge journals the bridge's steps in the bridge's record and the
// TAP's in the TAP's.
type Journals []Journal

func (js Journals) Ahead() error {
	for _, j := range js {
		if err := j.Ahead(); err != nil {
			return err
		}
	}
	return nil
}

func (js Journals) Commit(r *Refs) error {
	var errs []error
	for _, j := range js {
		errs = append(errs, j.Commit(r))
	}
	return exit.Join(errs...)
}

func (js Journals) Abort(undone bool) error {
	var errs []error
	for _, j := range js {
		errs = append(errs, j.Abort(undone))
	}
	return exit.Join(errs...)
}

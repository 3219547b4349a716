package ifhook

import (
	"time"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/state"
)

// Listing is one record with what the kernel says of its TAP now.
type Listing struct {
	state.Record
	Present bool `json:"present"` // the TAP still exists (same device)
}

// List returns ifhook's records, each marked present or gone.
func (h *Hook) List() ([]Listing, error) {
	recs, err := h.State.List()
	out := make([]Listing, 0, len(recs))
	for _, r := range recs {
		present, _ := h.present(r)
		out = append(out, Listing{Record: *r, Present: present})
	}
	return out, exit.Op("list", "", err)
}

// present reports whether the record's TAP still exists as the same
// device. An error means the kernel could not say.
func (h *Hook) present(r *state.Record) (bool, error) {
	l, err := h.Kernel.LinkByName(r.TAP)
	if kernel.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return l.Index == r.Index, nil
}

// GC finishes or undoes changes a killed ifhook left, removes the records
// of TAPs that no longer exist and the temporary files of processes that
// are gone, and returns the names of the TAPs whose records it removed.
func (h *Hook) GC() ([]string, error) {
	if err := h.needAdmin("clean up after ifhook"); err != nil {
		return nil, exit.Op("gc", "", err)
	}
	lock, err := h.lock()
	if err != nil {
		return nil, exit.Op("gc", "", err)
	}
	defer lock.Unlock()
	_, release := h.Bridges.Catch()
	defer release()
	err = h.Bridges.RecoverAll()
	removed, serr := h.sweep("")
	lock.MarkSwept(h.now())
	tmp, terr := h.State.CollectTemp()
	for _, p := range tmp {
		h.Log.Change("gc: removed %s, left by a killed ifhook", p)
	}
	return removed, exit.Op("gc", "", exit.Join(err, serr, terr))
}

func (h *Hook) sweepIfDue(lock *state.Lock, except string) {
	every := h.cfg.SweepEvery
	if every == 0 {
		every = DefaultSweepEvery
	}
	now := h.now()
	if !lock.SweepDue(now, every) {
		return
	}
	if _, err := h.sweep(except); err != nil {
		h.Log.Debug("sweep: %v", err)
	}
	lock.MarkSwept(now)
}

// sweep removes records whose TAP is gone (or is another device now).
// Called with the lock held.
func (h *Hook) sweep(except string) ([]string, error) {
	recs, err := h.State.List()
	var removed []string
	for _, r := range recs {
		if r.TAP == except {
			continue
		}
		if present, perr := h.present(r); present || perr != nil {
			err = exit.Join(err, perr)
			continue
		}
		if rmErr := h.removeRecord(r.TAP, r); rmErr != nil {
			err = exit.Join(err, rmErr)
			continue
		}
		removed = append(removed, r.TAP)
		h.Log.Change("gc: removed the record of %s (bridge %s, since %s): the TAP is gone", r.TAP, r.Bridge, r.Since.Format(time.RFC3339))
	}
	return removed, err
}

package ifhook

import (
	"time"

	"github.com/ifhook/ifhook/ifhook/dhcp"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/state"
)

// Listing is one record with what the kernel says of its TAP now.
type Listing struct {
	state.Record
	Present bool `json:"present"` // the TAP still exists (same device)
	// State is "attached" (on the record's bridge), "detached" (there, but
	// not on it: the bridge went, or someone moved it) or "gone".
	State string `json:"state"`
	// Address is the guest's IPv4 address on a bridge that serves DHCP:
	// reserved for it, or leased to its MAC ("" when none is known).
	Address string `json:"address,omitempty"`
}

// List returns ifhook's records, each with its TAP's state now: root's,
// then the bridge helper's.
func (h *Hook) List() ([]Listing, error) {
	recs, err := h.State.List()
	if d := h.otherHelperDir(); d != nil {
		more, herr := d.List()
		recs, err = append(recs, more...), exit.Join(err, herr)
	}
	out := make([]Listing, 0, len(recs))
	leases := map[string][]dhcp.Lease{}
	for _, r := range recs {
		st, _ := h.tapState(r)
		out = append(out, Listing{Record: *r, Present: st != "gone", State: st, Address: h.guestAddr(r, leases)})
	}
	return out, exit.Op("list", "", err)
}

// tapState says where a record's TAP is now: "attached" to the record's
// bridge, "detached", or "gone" (or another device of the same name).
func (h *Hook) tapState(r *state.Record) (string, error) {
	l, err := h.Kernel.LinkByName(r.TAP)
	if kernel.IsNotFound(err) {
		return "gone", nil
	}
	if err != nil {
		return "", err
	}
	if l.Index != r.Index {
		return "gone", nil
	}
	if r.Bridge != "" && l.Master != 0 {
		if br, err := h.Kernel.LinkByIndex(l.Master); err == nil && br.Name == r.Bridge {
			return "attached", nil
		}
	}
	return "detached", nil
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
	defer h.signals.Release()
	err = h.Bridges.RecoverAll()
	removed, serr := h.sweep(h.State, "")
	lock.MarkSwept(h.now())
	tmp, terr := h.State.CollectTemp()
	var herr error
	if d := h.otherHelperDir(); d != nil {
		var more, htmp []string
		more, htmp, herr = h.gcHelper(d)
		removed, tmp = append(removed, more...), append(tmp, htmp...)
	}
	for _, p := range tmp {
		h.Log.Change("gc: removed %s, left by a killed ifhook", p)
	}
	return removed, exit.Op("gc", "", exit.Join(err, serr, terr, herr))
}

// gcHelper sweeps the bridge helper's directory, under its own lock.
func (h *Hook) gcHelper(d *state.Dir) (removed, tmp []string, err error) {
	lock, err := h.takeLock(d.Lock)
	if err != nil {
		return nil, nil, err
	}
	defer lock.Unlock()
	removed, err = h.sweep(d, "")
	lock.MarkSwept(h.now())
	tmp, terr := d.CollectTemp()
	return removed, tmp, exit.Join(err, terr)
}

// sweepIfDue sweeps when the last sweep is older than SweepEvery. A sweep
// changes other TAPs' records, so it needs the lock exclusively: a shared
// one is let go, and the sweep left to the next run if others hold it.
func (h *Hook) sweepIfDue(lock **state.Lock, except string) {
	every := h.cfg.SweepEvery
	if every == 0 {
		every = DefaultSweepEvery
	}
	now := h.now()
	if !(*lock).SweepDue(now, every) {
		return
	}
	if (*lock).Shared {
		(*lock).Unlock()
		x := h.State.TryLock()
		if x == nil {
			return // busy: the next ifup sweeps
		}
		*lock = x
	}
	if _, err := h.sweep(h.State, except); err != nil {
		h.Log.Debug("sweep: %v", err)
	}
	(*lock).MarkSwept(now)
	// The bridge helper's TAPs have no ifdown: root's sweep is what
	// removes their records too, when no helper run holds the lock.
	if d := h.otherHelperDir(); d != nil {
		if x := d.TryLock(); x != nil {
			if _, err := h.sweep(d, except); err != nil {
				h.Log.Debug("sweep %s: %v", d.Path, err)
			}
			x.MarkSwept(now)
			x.Unlock()
		}
	}
}

// sweep removes records whose TAP is gone (or is another device now),
// and reconciles those whose TAP is no longer on the record's bridge (a
// bridge torn down with --force, or deleted by hand): the guest's MAC is
// no longer claimed there, and the record keeps only what ifdown still
// restores (the TAP's MAC and MTU). Called with d's lock held.
func (h *Hook) sweep(d *state.Dir, except string) ([]string, error) {
	recs, err := d.List()
	var removed []string
	for _, r := range recs {
		if r.TAP == except {
			continue
		}
		st, serr := h.tapState(r)
		if serr != nil {
			err = exit.Join(err, serr)
			continue
		}
		if st == "detached" && r.Bridge != "" {
			h.releaseMAC(r)
			err = exit.Join(err, h.applyForget(r))
			h.Log.Change("gc: %s is no longer on %s: released its guest MAC; ifdown still restores its MAC and MTU", r.TAP, r.Bridge)
			rec := *r
			rec.Bridge, rec.Set.Master, rec.DHCP, rec.IP = "", "", false, ""
			err = exit.Join(err, d.Write(&rec))
			continue
		}
		if st != "gone" {
			continue
		}
		if ferr := h.applyForget(r); ferr != nil {
			err = exit.Join(err, ferr)
			continue
		}
		if rmErr := h.removeRecordIn(d, r.TAP, r); rmErr != nil {
			err = exit.Join(err, rmErr)
			continue
		}
		removed = append(removed, r.TAP)
		h.Log.Change("gc: removed the record of %s (bridge %s, since %s): the TAP is gone", r.TAP, r.Bridge, r.Since.Format(time.RFC3339))
	}
	return removed, exit.Join(err, h.adoptLearned(recs), h.sweepDHCPHosts())
}

// applyForget undoes a record's DHCP (its hosts entry, its leases) now.
func (h *Hook) applyForget(r *state.Record) error {
	steps := h.forgetDHCP(r)
	if len(steps) == 0 {
		return nil
	}
	a := &plan.Applier{Kernel: h.Kernel, Log: h.Log}
	return a.BestEffort("gc "+r.TAP, steps, nil)
}

package ifhook

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
)

// PlanDown computes the steps that detach a TAP and undo what ifup set,
// given its record (nil when there is none: detach and set down only). A
// MAC or MTU is restored only while it is still the one ifhook set: a later
// change by someone else is theirs to keep. It is pure.
func PlanDown(tap *rtnl.Link, rec *state.Record) []plan.Step {
	var prevMAC, ourMAC net.HardwareAddr
	var prevMTU, ourMTU int
	if rec != nil {
		prevMAC, _ = net.ParseMAC(rec.Prev.MAC)
		ourMAC, _ = net.ParseMAC(rec.Set.MAC)
		prevMTU, ourMTU = rec.Prev.MTU, rec.Set.MTU
	}
	ref := plan.Ref(tap)
	var steps []plan.Step
	if tap.Master != 0 {
		steps = append(steps, &plan.SetLink{Link: ref, To: plan.Attrs{Master: &plan.LinkRef{}}, From: plan.Attrs{Master: &plan.LinkRef{Index: tap.Master}}})
	}
	if tap.Up {
		steps = append(steps, &plan.SetLink{Link: ref, To: plan.Attrs{Up: plan.Flag(false)}, From: plan.Attrs{Up: plan.Flag(true)}})
	}
	if prevMAC != nil && ourMAC != nil && string(tap.MAC) == string(ourMAC) && string(prevMAC) != string(ourMAC) {
		steps = append(steps, &plan.SetLink{Link: ref, To: plan.Attrs{MAC: prevMAC}, From: plan.Attrs{MAC: tap.MAC}})
	}
	if prevMTU != 0 && ourMTU != 0 && tap.MTU == ourMTU && prevMTU != ourMTU {
		steps = append(steps, &plan.SetLink{Link: ref, To: plan.Attrs{MTU: prevMTU}, From: plan.Attrs{MTU: tap.MTU}})
	}
	return steps
}

// Down detaches tap (ifdown): off its bridge, down, and its MAC and MTU back
// to what they were before ifup, per the record. A TAP that is gone, or not
// attached, is success. Without CAP_NET_ADMIN (QEMU's -runas drops it
// before the downscript runs) it changes nothing and leaves the record for
// gc: the kernel detaches the TAP when QEMU closes it.
func (h *Hook) Down(tap string) (*TAPPlan, error) {
	p, err := h.down(tap)
	if err != nil {
		err = exit.Op("down", tap, err)
		h.Log.Failure(err)
	}
	return p, err
}

func (h *Hook) down(tap string) (*TAPPlan, error) {
	if err := policy.ValidIfName(tap); err != nil {
		return nil, exit.New(exit.BadTAP, "%w", err)
	}
	if !h.canAdmin() {
		p := &TAPPlan{Op: "down", TAP: tap}
		msg := fmt.Sprintf("down %s: no CAP_NET_ADMIN (uid %d, QEMU -runas?): changing nothing; the kernel detaches the TAP when QEMU closes it, and 'ifhook gc' removes the record", tap, os.Getuid())
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "%s", msg))
		h.Log.Change("%s", msg)
		return p, nil
	}
	lock, err := h.lockShared()
	if err != nil {
		return nil, err
	}
	defer func() { lock.Unlock() }()
	h.signals.Hold()
	defer h.signals.Release()
	if err := h.finishKilled(&lock); err != nil {
		return nil, err
	}
	p, rec, err := h.planDown(tap, true)
	if err != nil {
		return p, err
	}
	a := &plan.Applier{Kernel: h.Kernel, Log: h.Log, Stop: h.signals.Stop}
	if err := a.BestEffort("down "+tap, p.Steps, &downJournal{h: h, rec: rec, tap: tap, dir: p.recDir}); err != nil {
		return p, err // the record stays, for another ifdown or gc
	}
	if spec := h.Policy.Spec(p.Bridge); spec == nil || !spec.RemoveWhenEmpty {
		return p, nil
	}
	if err := h.exclusive(&lock); err != nil {
		return p, err
	}
	return p, h.Bridges.RemoveIfEmpty(p.Bridge)
}

// downJournal: the TAP's record is the journal; it goes once the TAP is
// detached and restored.
type downJournal struct {
	h   *Hook
	rec *state.Record
	tap string
	dir *state.Dir // where rec is: State, or the bridge helper's
}

func (j *downJournal) Ahead() error     { return nil }
func (j *downJournal) Abort(bool) error { return nil }
func (j *downJournal) Commit(*plan.Refs) error {
	if j.dir == nil {
		return nil
	}
	return j.h.removeRecordIn(j.dir, j.tap, j.rec)
}

// ExplainDown returns the plan Down would apply, changing nothing.
func (h *Hook) ExplainDown(tap string) (*TAPPlan, error) {
	if err := policy.ValidIfName(tap); err != nil {
		return nil, exit.Op("explain", tap, exit.New(exit.BadTAP, "%w", err))
	}
	p, _, err := h.planDown(tap, false)
	return p, exit.Op("explain", tap, err)
}

// planDown observes tap and its record and plans the detach. With forget, a
// record left by an earlier device of the same name is removed.
func (h *Hook) planDown(tap string, forget bool) (*TAPPlan, *state.Record, error) {
	p := &TAPPlan{Op: "down", TAP: tap}
	// A TAP of the bridge helper's has its record in the helper's
	// directory: root may take it down too.
	rec, dir, err := h.recordOf(tap)
	p.recDir = dir
	if err != nil && !forget {
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "cannot read the TAP's record: %v", err))
		rec = nil
	} else if err != nil {
		return p, nil, err
	}
	// What the bridge's dnsmasq was told of the guest goes first, whether
	// the TAP is still there or not.
	forgetDHCP := h.forgetDHCP(rec)
	link, err := h.Kernel.LinkByName(tap)
	if kernel.IsNotFound(err) {
		h.Log.Debug("down %s: already gone", tap)
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "already gone"))
		p.Steps = forgetDHCP
		return p, rec, nil
	}
	if err != nil {
		return p, nil, exit.Sys(err, "look up %s", tap)
	}
	if rec != nil && rec.Index != link.Index {
		h.Log.Debug("down %s: the record belongs to an earlier device of that name; ignoring it", tap)
		if forget {
			if err := h.removeRecordIn(dir, tap, rec); err != nil {
				return p, nil, err
			}
		}
		rec, p.recDir = nil, nil
	}
	if !link.IsTAP() {
		return p, nil, exit.New(exit.BadTAP, "%s is %s, not a TAP; refusing to touch it", escape.Quote(tap), link.Describe())
	}
	if rec != nil {
		p.Bridge = rec.Bridge
		p.Rule = "record from " + rec.Since.Local().Format(time.RFC3339)
	} else {
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "no record: detach and set down only"))
	}
	p.Steps = PlanDown(link, rec)
	if len(p.Steps) == 0 {
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "not attached"))
	}
	p.Steps = append(forgetDHCP, p.Steps...)
	return p, rec, nil
}

// removeRecordIn removes the record of tap from d, and its guest's MAC
// claim.
func (h *Hook) removeRecordIn(d *state.Dir, tap string, rec *state.Record) error {
	if rec == nil {
		return nil
	}
	h.releaseMAC(rec)
	return d.Remove(tap)
}

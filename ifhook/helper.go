package ifhook

import (
	"errors"
	"io/fs"
	"net"
	"os"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/qemu"
	"github.com/ifhook/ifhook/ifhook/state"
)

// The bridge helper's TAPs. ifhook run as qemu-bridge-helper (package
// ifhook/helper) makes a TAP for a user's QEMU and attaches it with
// UpHelper; QEMU runs no ifdown for it, and the TAP vanishes when QEMU
// closes it. Its record lives in the helper's shared directory
// (state.HelperDir: /run/ifhook-helper), since the helper, running as the
// user, cannot write root's. Root's list, gc, down and the sweep every
// ifup makes read that directory too, and when it exists its guest-MAC
// index is everybody's: root's ifup claims its guests' MACs there, so the
// duplicate-MAC guard sees helper TAPs and root's alike, from either side.

// helperState is the state directory of a Hook opened for the bridge
// helper: the shared directory; as root, when that is missing, root's own.
func (h *Hook) helperState(stateDir string) (*state.Dir, error) {
	path := h.cfg.HelperDir
	if path == "" || path == "-" {
		path = state.HelperDir(stateDir)
	}
	shared, err := state.OpenShared(path, h.cfg.HelperGID)
	if err != nil {
		return nil, err
	}
	ok, err := shared.Exists()
	if ok {
		h.helper, h.helperDone = shared, true
		return shared, nil
	}
	shared.Close()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		h.helperDone = true // none: root's own directory holds it all
		return state.Open(stateDir)
	}
	return nil, exit.New(exit.State, "the bridge helper's records directory %s is missing: root makes it with 'ifhook install-hooks --bridge-helper' (or systemd-tmpfiles --create at boot)", path)
}

// helperDir returns the bridge helper's shared directory when there is
// one, else nil. It asks once per Hook: one failed open on hosts without
// the helper.
func (h *Hook) helperDir() *state.Dir {
	if h.helperDone {
		return h.helper
	}
	h.helperDone = true
	path := h.cfg.HelperDir
	if path == "-" {
		return nil
	}
	if path == "" {
		path = state.HelperDir(h.State.Path)
	}
	d, err := state.OpenShared(path, -1)
	if err != nil {
		return nil
	}
	ok, err := d.Exists()
	if err != nil {
		h.Log.Notice("%v", err)
	}
	if !ok {
		d.Close()
		return nil
	}
	d.Report = h.State.Report
	h.helper = d
	h.close = append(h.close, d.Close)
	return d
}

// otherHelperDir is the helper's directory when it is not State itself.
func (h *Hook) otherHelperDir() *state.Dir {
	if d := h.helperDir(); d != nil && d != h.State {
		return d
	}
	return nil
}

// macIndex is the directory whose guest-MAC index this Hook uses: the
// helper's when there is one (everybody's, then), else State's.
func (h *Hook) macIndex() *state.Dir {
	if d := h.helperDir(); d != nil {
		return d
	}
	return h.State
}

// recordOf reads the record of tap: State's, else the helper's.
func (h *Hook) recordOf(tap string) (*state.Record, *state.Dir, error) {
	rec, err := h.State.Read(tap)
	if rec != nil || err != nil {
		return rec, h.State, err
	}
	if d := h.otherHelperDir(); d != nil {
		rec, err = d.Read(tap)
		if rec != nil || err != nil {
			return rec, d, err
		}
	}
	return nil, nil, nil
}

// HelperRuns counts the records of helper TAPs on bridge made for the
// QEMU of process pid: how many times that QEMU ran the helper for bridge
// before (see qemu.VM.NICForBridge).
func (h *Hook) HelperRuns(pid int, bridge string) int {
	recs, _ := h.State.List()
	n := 0
	for _, r := range recs {
		if r.Helper && r.PID == pid && r.Bridge == bridge {
			n++
		}
	}
	return n
}

// HelperGuest says what is known of the VM whose QEMU runs the bridge
// helper for bridge: QEMU is the helper's parent (or its shell's), and its
// command line holds the backend this run is for, by br= and the order
// QEMU creates backends in. Under libvirt's session daemon, which runs the
// helper itself and passes it no VM, nothing is known, and Note says so.
func (h *Hook) HelperGuest(bridge string) Guest {
	vm, err := qemu.FromHelperParent()
	switch {
	case errors.Is(err, qemu.ErrLibvirt):
		return Guest{Note: "run by libvirt's session daemon, which does not say for which VM: the VM, its guest MAC and the rules that need them are not known (" + err.Error() + ")"}
	case errors.Is(err, qemu.ErrNotQEMU):
		return Guest{Note: "not run by QEMU: " + err.Error()}
	case err != nil:
		return Guest{Note: "cannot read QEMU's command line: " + err.Error()}
	}
	return GuestOfBridge(vm, bridge, h.HelperRuns(vm.PID, bridge))
}

// GuestOfBridge returns what vm's command line says of the NIC behind the
// TAP of its nth bridge helper run for bridge.
func GuestOfBridge(vm *qemu.VM, bridge string, nth int) Guest {
	g := Guest{VM: vm.Name, PID: vm.PID}
	nic, ok, why := vm.NICForBridge(bridge, nth)
	if !ok {
		g.Note = "guest MAC unknown: " + why
		return g
	}
	return guestNIC(vm, g, nic)
}

// UpHelper attaches tap, a TAP the bridge helper has just made, to bridge,
// the bridge QEMU asked for and the ACL allowed. It is Up, but: the bridge
// is the one given, never the policy's choice, and never made (it must
// exist); nothing but the TAP changes (no bridge plan is recovered or
// made, no NAT, no forwarding); and the record says helper=true. There is
// no ifdown for it: the TAP vanishes when QEMU closes it, and the next
// sweep or gc removes the record.
func (h *Hook) UpHelper(tap, bridge string, g Guest) (*TAPPlan, error) {
	p, err := h.upHelper(tap, bridge, g)
	if err != nil {
		err = exit.Op("up", tap, err)
		h.Log.Failure(err)
	}
	return p, err
}

func (h *Hook) upHelper(tap, bridge string, g Guest) (*TAPPlan, error) {
	if err := policy.ValidIfName(tap); err != nil {
		return nil, exit.New(exit.BadTAP, "%w", err)
	}
	if err := policy.ValidIfName(bridge); err != nil {
		return nil, exit.New(exit.Usage, "bridge %s: %w", escape.Quote(bridge), err)
	}
	if err := h.needAdmin("attach a TAP"); err != nil {
		return nil, err
	}
	if g.Note != "" {
		h.Log.Debug("up %s: %s", tap, g.Note)
	}
	lock, err := h.lockShared()
	if err != nil {
		return nil, err
	}
	defer func() { lock.Unlock() }()
	h.signals.Hold()
	defer h.signals.Release()
	p, err := h.planAttach(tap, g, false, bridge)
	defer p.unlockMACs()
	if err != nil {
		return p, err
	}
	a := &plan.Applier{Kernel: h.Kernel, Log: h.Log, Stop: h.signals.Stop}
	if err := a.All("up "+tap, p.Steps, p.journal); err != nil {
		return p, h.annotate(err, p)
	}
	p.unlockMACs()
	h.signals.Release()
	h.sweepIfDue(&lock, tap)
	if p.wait > 0 {
		lock.Unlock()
		h.waitForwarding(tap, p.wait)
	}
	return p, nil
}

// describeHelperChoice says which policy setting applies to a helper TAP.
func describeHelperChoice(c policy.Choice) string {
	if c.Rule != nil {
		return c.Rule.String() + " at " + c.Where
	}
	return "no rule matched; bridge " + c.Bridge + " as QEMU asked (" + c.Where + ")"
}

// helperBridgeMissing is the error for a bridge the helper was asked for
// that is not there (or not a bridge): it never makes one.
func helperBridgeMissing(bridge, what string) error {
	hint := ""
	if what == "does not exist" {
		hint = " (root can make it: ifhook setup " + escape.Quote(bridge) + ", if the policy describes it)"
	}
	return exit.New(exit.Unavailable, "bridge %s %s; the bridge helper attaches only to a bridge that exists, and never makes one%s", escape.Quote(bridge), what, hint)
}

// releaseMACIn drops a record's entry from the guest-MAC index, and from
// State's own when the index is elsewhere (claims made before the helper's
// directory appeared).
func (h *Hook) releaseMAC(rec *state.Record) {
	if rec.GuestMAC == "" || rec.Bridge == "" {
		return
	}
	mac, err := net.ParseMAC(rec.GuestMAC)
	if err != nil {
		return
	}
	idx := h.macIndex()
	_ = idx.Release(rec.Bridge, mac, rec.TAP, rec.Index)
	if idx != h.State {
		if err := h.State.Release(rec.Bridge, mac, rec.TAP, rec.Index); err != nil && !errors.Is(err, fs.ErrNotExist) {
			h.Log.Debug("release %s on %s: %v", mac, rec.Bridge, err)
		}
	}
}

// ForgetHelperTAP removes the record (and guest-MAC claim) of a helper
// TAP that never reached QEMU: sending its descriptor failed, and closing
// it removed the TAP.
func (h *Hook) ForgetHelperTAP(tap string) error {
	rec, err := h.State.Read(tap)
	if err != nil || rec == nil || !rec.Helper {
		return err
	}
	return h.removeRecordIn(h.State, tap, rec)
}

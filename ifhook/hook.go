// Package ifhook attaches QEMU's TAP devices to bridges and detaches them,
// as /etc/qemu-ifup and /etc/qemu-ifdown, driven by a policy (package
// policy). It is a library: cmd/ifhook only wires argv, flags and exit codes.
//
// Every operation is planned first, from the policy and the observed kernel
// state, as a list of steps (`ifhook explain` prints them), then applied:
// ifup all or nothing, undoing what it did when a step fails; ifdown best
// effort. A TAP already as wanted gives an empty plan, so running either
// twice is safe. What ifup changed is recorded per TAP (package state) so
// ifdown undoes exactly that, whatever the policy says by then.
package ifhook

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

// DefaultLockTimeout is how long a change waits for another to finish.
const DefaultLockTimeout = 10 * time.Second

// DefaultSweepEvery is how often ifup looks for records of TAPs that are
// gone (QEMU killed with SIGKILL runs no downscript). Once per interval at
// most, so a burst of hundreds of VM starts pays for one sweep, not hundreds.
const DefaultSweepEvery = 30 * time.Second

// Hook is an ifhook instance: a policy, a view of the kernel's links, a
// state directory and a log.
type Hook struct {
	Policy *policy.Policy
	Links  Links
	// Net makes the policy's bridges ([bridges.NAME]); nil when the Hook
	// only attaches TAPs to bridges that exist. NewNet gives the real one.
	Net   Net
	State *state.Dir // may be nil for Explain
	Log   *Log
	// Guest tells what is known of the VM behind a TAP (from QEMU's command
	// line); nil when nothing is.
	Guest func(tap string) Guest

	LockTimeout time.Duration // 0: DefaultLockTimeout
	SweepEvery  time.Duration // 0: DefaultSweepEvery

	// HasNetAdmin reports whether the caller may change links; nil asks
	// the kernel for the effective CAP_NET_ADMIN.
	HasNetAdmin func() bool
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func (h *Hook) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Hook) canAdmin() bool {
	if h.HasNetAdmin != nil {
		return h.HasNetAdmin()
	}
	return HasNetAdmin()
}

// HasNetAdmin reports whether this process has CAP_NET_ADMIN in its
// effective set.
func HasNetAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.Geteuid() == 0
	}
	return data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) != 0
}

func wrap(op, tap string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return &Error{Kind: KindOf(err), Op: op, TAP: tap, Err: err}
}

// Up attaches tap to the bridge the policy chooses (ifup). It returns the
// plan it applied; an empty plan means the TAP was already as wanted.
func (h *Hook) Up(tap string) (*Plan, error) {
	p, err := h.up(tap)
	if err != nil {
		err = wrap("up", tap, err)
		h.Log.Failure(err)
	}
	return p, err
}

func (h *Hook) up(tap string) (*Plan, error) {
	if err := policy.ValidIfName(tap); err != nil {
		return nil, errorf(KindBadTAP, "%v", err)
	}
	if !h.canAdmin() {
		return nil, errorf(KindPermission, "needs CAP_NET_ADMIN to attach a TAP, and runs as uid %d without it (run QEMU as root, or give it only the TAPs: see qemu-bridge-helper)", os.Getuid())
	}
	lock, err := h.lock()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()

	plan, err := h.planUp(tap)
	if err != nil {
		return plan, err
	}
	if err := applyAll(h.Links, plan.Steps, h.Log, "up "+tap); err != nil {
		return plan, h.annotate(err, plan)
	}
	for _, n := range plan.Notes {
		switch {
		case strings.HasPrefix(n, "moving "):
			h.Log.Notice("up %s: moved %s", tap, strings.TrimPrefix(n, "moving "+tap+" "))
		case strings.HasPrefix(n, "warning: "):
			h.Log.Notice("up %s: %s", tap, n)
		}
	}
	if plan.record != nil {
		plan.record()
	}
	h.sweepIfDue(lock, tap)
	if plan.wait > 0 {
		// Other ifups need not wait while this port learns.
		lock.Unlock()
		h.waitForwarding(tap, plan.wait)
	}
	return plan, nil
}

// forwardWait is how long ifup waits for a new port of br to forward: with
// STP on, a port listens and learns for a forward delay each before it
// forwards, and a guest's first DHCP request sent meanwhile is lost. Zero
// when STP is off or the policy says not to wait.
func (h *Hook) forwardWait(br *rtnl.Link) time.Duration {
	if br == nil || !br.STP {
		return 0
	}
	spec := h.Policy.Spec(br.Name)
	if spec != nil && !spec.WaitForwarding {
		return 0
	}
	delay := time.Duration(br.ForwardDelay) * 10 * time.Millisecond
	if spec != nil && br.ForwardDelay == 0 {
		delay = time.Duration(spec.ForwardDelay) * time.Second // a bridge not made yet
	}
	return 2*delay + 2*time.Second
}

// waitForwarding polls the port's STP state until it forwards, at most
// for max. A port without carrier (nobody holds the TAP open) never
// forwards, so it is not waited for.
func (h *Hook) waitForwarding(tap string, max time.Duration) {
	deadline := time.Now().Add(max)
	state := -1
	for {
		l, err := h.Links.LinkByName(tap)
		if err != nil {
			return
		}
		state = l.PortState
		if state == rtnl.PortForwarding {
			h.Log.Debug("up %s: forwarding", tap)
			return
		}
		if !l.Carrier {
			h.Log.Debug("up %s: no carrier (no one holds the TAP open), not waiting for STP", tap)
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.Log.Notice("up %s: still %s after %s (STP); the guest may lose its first packets", tap, rtnl.PortStateName(state), max)
}

// annotate adds the policy setting behind a failed apply to its message.
func (h *Hook) annotate(err error, p *Plan) error {
	if p.Rule == "" {
		return err
	}
	return &kindError{KindOf(err), fmt.Errorf("%w (%s)", err, p.Rule)}
}

func (h *Hook) lock() (*state.Lock, error) {
	if h.State == nil {
		return nil, errorf(KindState, "no state directory")
	}
	timeout := h.LockTimeout
	if timeout == 0 {
		timeout = DefaultLockTimeout
	}
	lock, err := h.State.Lock(timeout)
	if errors.Is(err, state.ErrLockTimeout) {
		return nil, &kindError{KindLock, fmt.Errorf("%w (another ifhook is still working: see 'ifhook list')", err)}
	}
	if err != nil {
		return nil, &kindError{KindState, err}
	}
	return lock, nil
}

// Explain returns the plan Up would apply, changing nothing.
func (h *Hook) Explain(tap string) (*Plan, error) {
	if err := policy.ValidIfName(tap); err != nil {
		return nil, wrap("explain", tap, errorf(KindBadTAP, "%v", err))
	}
	p, err := h.planUp(tap)
	return p, wrap("explain", tap, err)
}

// planUp observes the TAP and the chosen bridge and plans the attach. The
// plan it returns on error says as much as was known (for explain).
func (h *Hook) planUp(tap string) (*Plan, error) {
	g := h.guest(tap)
	choice := h.Policy.MatchVM(tap, g.VM)
	plan := &Plan{Op: "up", TAP: tap, Policy: h.Policy.File, Rule: describeChoice(h.Policy, choice), Guest: g}

	tapLink, err := h.Links.LinkByName(tap)
	if err != nil && !errors.Is(err, rtnl.ErrNotFound) {
		return plan, sysErr(err, "look up %s", tap)
	}
	if err := checkTAP(tap, tapLink); err != nil {
		return plan, err
	}

	obs := Observed{TAPName: tap, TAP: tapLink}
	obs.BridgeName, plan.Reason, obs.Bridge, err = h.chooseBridge(choice)
	plan.Bridge = obs.BridgeName
	if err != nil {
		return plan, &kindError{KindOf(err), fmt.Errorf("%w (%s)", err, plan.Rule)}
	}
	var bp *bridgePlan
	if spec := h.Policy.Spec(obs.BridgeName); obs.Bridge == nil && spec != nil {
		// The policy describes the missing bridge: make it first, in
		// the same all-or-nothing plan.
		bp, err = h.planBridge(spec, nil, false)
		if err != nil {
			return plan, err
		}
		obs.Bridge = &rtnl.Link{Name: spec.Name, Kind: "bridge", MTU: bp.mtu, STP: bp.stp}
		obs.NewBridge = bp.ref
		plan.Notes = append(plan.Notes, fmt.Sprintf("makes bridge %s (model %s, bridges.%s at %s:%d)", spec.Name, spec.Model, spec.Name, h.Policy.File, spec.Line))
	}
	if tapLink.Master != 0 && obs.Bridge != nil && tapLink.Master != obs.Bridge.Index {
		obs.OldMaster, _ = h.Links.LinkByIndex(tapLink.Master)
	}
	want := Want{MTU: choice.MTU, MAC: h.hostMAC(tap, g)}
	if obs.Bridge != nil && obs.Bridge.IsBridge() {
		gnotes, err := h.checkGuestMAC(tap, g, obs.Bridge)
		plan.Notes = append(plan.Notes, gnotes...)
		if err != nil {
			return plan, err
		}
	}
	steps, notes, err := PlanUp(obs, want)
	plan.Notes = append(plan.Notes, notes...)
	if bp != nil {
		plan.Steps = append(bp.steps, steps...)
	} else {
		plan.Steps = steps
	}
	if err != nil {
		return plan, &kindError{KindOf(err), fmt.Errorf("%w (%s)", err, plan.Rule)}
	}
	if wait := h.forwardWait(obs.Bridge); wait > 0 {
		plan.Notes = append(plan.Notes, fmt.Sprintf("waits up to %s for %s to forward (STP on %s)", wait, tap, obs.BridgeName))
		plan.wait = wait
	}
	plan.record = func() {
		if bp != nil {
			if err := h.finishBridge(bp); err != nil {
				h.Log.Notice("up %s: made bridge %s, but could not record it: %v", tap, bp.spec.Name, err)
			}
		}
		h.recordUp(plan, obs, want)
	}
	return plan, nil
}

// describeChoice says which policy setting applies, with its file:line.
// (Concatenation, not fmt: this runs on every ifup.)
func describeChoice(p *policy.Policy, c policy.Choice) string {
	if c.Rule != nil {
		return c.Rule.String() + " at " + c.Where
	}
	return "no rule matched; bridge = " + strconv.Quote(p.Bridge) + " at " + c.Where
}

// chooseBridge resolves the policy's choice to a bridge: a name, or "auto".
func (h *Hook) chooseBridge(c policy.Choice) (name, reason string, link *rtnl.Link, err error) {
	switch c.Bridge {
	case "":
		if c.Rule != nil {
			return "", "", nil, errorf(KindNoBridge, "no bridge chosen: %s names none and the policy sets bridge = \"\"", c.Rule)
		}
		return "", "", nil, errorf(KindNoBridge, "no bridge chosen: no rule matches and the policy sets bridge = \"\"")
	case policy.Auto:
		return h.autoBridge()
	}
	reason = "named by the policy"
	if c.Rule != nil && c.Rule.Bridge != "" {
		reason = "named by " + c.Rule.String()
	}
	link, err = h.Links.LinkByName(c.Bridge)
	if errors.Is(err, rtnl.ErrNotFound) {
		return c.Bridge, reason, nil, nil // PlanUp reports it
	}
	if err != nil {
		return c.Bridge, reason, nil, sysErr(err, "look up bridge %s", c.Bridge)
	}
	return c.Bridge, reason, link, nil
}

// autoBridge implements bridge = "auto": the bridge holding the default
// route (IPv4, then IPv6), else the only bridge, else an error listing them.
// Unlike Debian's qemu-ifup, finding none is an error, not a warning: a VM
// started unconnected is worse than one that does not start.
func (h *Hook) autoBridge() (string, string, *rtnl.Link, error) {
	// One family at a time: most hosts answer from the IPv4 dump alone.
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		idx, err := h.Links.DefaultRouteLinks(family)
		if err != nil {
			return "", "", nil, sysErr(err, "list default routes")
		}
		for _, i := range idx {
			l, err := h.Links.LinkByIndex(i)
			if err != nil || !l.IsBridge() {
				continue
			}
			name := "IPv4"
			if family == unix.AF_INET6 {
				name = "IPv6"
			}
			return l.Name, "auto: holds the " + name + " default route", l, nil
		}
	}
	bridges, err := h.Links.Bridges()
	if err != nil {
		return "", "", nil, sysErr(err, "list bridges")
	}
	switch len(bridges) {
	case 1:
		return bridges[0].Name, "auto: the only bridge on the host", bridges[0], nil
	case 0:
		return "", "", nil, errorf(KindNoBridge, "bridge = \"auto\" found no bridge: none holds the default route and the host has none")
	}
	names := make([]string, len(bridges))
	for i, b := range bridges {
		names[i] = b.Name
	}
	sort.Strings(names)
	return "", "", nil, errorf(KindNoBridge, "bridge = \"auto\" cannot choose: no bridge holds the default route and there are %d (%s); name one in the policy", len(names), strings.Join(names, ", "))
}

// recordUp writes what an applied up plan changed, keeping the first
// record's "before" values when the TAP was already ours, so ifdown
// restores the TAP as QEMU made it.
func (h *Hook) recordUp(p *Plan, obs Observed, want Want) {
	tap := obs.TAP
	rec, err := h.State.Read(tap.Name)
	if err != nil || (rec != nil && rec.Index != tap.Index) {
		rec = nil // unreadable, or left by an earlier TAP of the same name
	}
	mtu := want.MTU
	if mtu == 0 {
		mtu = obs.Bridge.MTU
	}
	set := state.Snapshot{MTU: mtu, Master: obs.Bridge.Name, Up: true}
	if want.MAC != nil {
		set.MAC = want.MAC.String()
	} else {
		set.MAC = tap.MAC.String()
	}
	if rec != nil && len(p.Steps) == 0 && rec.Bridge == obs.Bridge.Name && rec.Set == set &&
		rec.VM == p.Guest.VM && rec.PID == p.Guest.PID && rec.GuestMAC == macString(p.Guest.MAC) {
		return // nothing changed, record already says so
	}
	if rec == nil || rec.Bridge != obs.Bridge.Name {
		prev := rec
		rec = &state.Record{TAP: tap.Name, Index: tap.Index, Since: h.now().UTC().Truncate(time.Second)}
		if prev != nil {
			rec.Prev = prev.Prev
		} else {
			rec.Prev = state.Snapshot{MAC: tap.MAC.String(), MTU: tap.MTU, Up: tap.Up}
			if obs.OldMaster != nil {
				rec.Prev.Master = obs.OldMaster.Name
			}
		}
	}
	rec.Bridge = obs.Bridge.Name
	rec.Rule = p.Rule
	rec.Set = set
	g := p.Guest
	rec.VM, rec.PID = g.VM, g.PID
	rec.GuestMAC = ""
	if g.MAC != nil {
		rec.GuestMAC = g.MAC.String()
		if err := h.State.ClaimMAC(obs.Bridge.Name, g.MAC, tap.Name); err != nil {
			h.Log.Notice("up %s: could not index guest MAC %s: %v", tap.Name, g.MAC, err)
		}
	}
	if err := h.State.Write(rec); err != nil {
		// The TAP is attached; losing the record only costs ifdown the
		// MAC/MTU restore, so say so rather than fail the VM's start.
		h.Log.Notice("up %s: attached, but could not record it: %v", tap.Name, err)
	}
}

// Down detaches tap (ifdown): off its bridge, down, and its MAC and MTU back
// to what they were before ifup, per the record. A TAP that is gone, or not
// attached, is success. Without CAP_NET_ADMIN (QEMU's -runas drops it
// before the downscript runs) it changes nothing and leaves the record for
// gc: the kernel detaches the TAP when QEMU closes it.
func (h *Hook) Down(tap string) (*Plan, error) {
	p, err := h.down(tap)
	if err != nil {
		err = wrap("down", tap, err)
		h.Log.Failure(err)
	}
	return p, err
}

func (h *Hook) down(tap string) (*Plan, error) {
	if err := policy.ValidIfName(tap); err != nil {
		return nil, errorf(KindBadTAP, "%v", err)
	}
	if !h.canAdmin() {
		plan := &Plan{Op: "down", TAP: tap}
		msg := fmt.Sprintf("down %s: no CAP_NET_ADMIN (uid %d, QEMU -runas?): changing nothing; the kernel detaches the TAP when QEMU closes it, and 'ifhook gc' removes the record", tap, os.Getuid())
		plan.Notes = append(plan.Notes, msg)
		h.Log.Change("%s", msg)
		return plan, nil
	}
	lock, err := h.lock()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()

	plan, rec, err := h.planDown(tap, true)
	if err != nil || plan.gone {
		if rmErr := h.removeRecord(tap, rec); err == nil {
			err = rmErr
		}
		return plan, err
	}
	if len(plan.Steps) == 0 {
		h.Log.Debug("down %s: not attached; nothing to do", tap)
	}
	if err := applyBestEffort(h.Links, plan.Steps, h.Log, "down "+tap); err != nil {
		return plan, err // the record stays, for another ifdown or gc
	}
	if err := h.removeRecord(tap, rec); err != nil {
		return plan, err
	}
	return plan, h.removeIfEmpty(plan.Bridge)
}

// removeIfEmpty tears down a bridge whose policy says remove_when_empty
// once its last guest port has left. Called with the lock held.
func (h *Hook) removeIfEmpty(bridge string) error {
	spec := h.Policy.Spec(bridge)
	if bridge == "" || spec == nil || !spec.RemoveWhenEmpty {
		return nil
	}
	if rec, err := h.State.ReadBridge(bridge); err != nil || rec == nil {
		return nil // not ours to remove
	}
	_, err := h.teardownOne(bridge, false)
	if KindOf(err) == KindNoBridge {
		return nil // still has ports: not empty yet
	}
	return err
}

// planDown observes tap and its record and plans the detach. With
// forget, a record left by an earlier device of the same name is removed.
// When the TAP is gone, plan.gone is set and rec is the (stale) record.
func (h *Hook) planDown(tap string, forget bool) (plan *Plan, rec *state.Record, err error) {
	plan = &Plan{Op: "down", TAP: tap}
	if h.State != nil {
		var recErr error
		rec, recErr = h.State.Read(tap)
		if recErr != nil {
			h.Log.Notice("down %s: ignoring unreadable record: %v", tap, recErr)
		}
	}
	link, err := h.Links.LinkByName(tap)
	if errors.Is(err, rtnl.ErrNotFound) {
		h.Log.Debug("down %s: already gone", tap)
		plan.Notes = append(plan.Notes, "already gone")
		plan.gone = true
		return plan, rec, nil
	}
	if err != nil {
		return plan, nil, sysErr(err, "look up %s", tap)
	}
	if rec != nil && rec.Index != link.Index {
		h.Log.Debug("down %s: the record belongs to an earlier device of that name; ignoring it", tap)
		if forget {
			if err := h.removeRecord(tap, rec); err != nil {
				return plan, nil, err
			}
		}
		rec = nil
	}
	if !link.IsTAP() {
		return plan, nil, errorf(KindBadTAP, "%q is %s, not a TAP; refusing to touch it", tap, link.Describe())
	}
	var prevMAC, ourMAC net.HardwareAddr
	var prevMTU, ourMTU int
	if rec != nil {
		plan.Bridge = rec.Bridge
		plan.Rule = "record from " + rec.Since.Format(time.RFC3339)
		prevMAC, _ = net.ParseMAC(rec.Prev.MAC)
		ourMAC, _ = net.ParseMAC(rec.Set.MAC)
		prevMTU, ourMTU = rec.Prev.MTU, rec.Set.MTU
	} else {
		plan.Notes = append(plan.Notes, "no record: detach and set down only")
	}
	plan.Steps = PlanDown(link, prevMAC, ourMAC, prevMTU, ourMTU)
	if len(plan.Steps) == 0 {
		plan.Notes = append(plan.Notes, "not attached")
	}
	return plan, rec, nil
}

func (h *Hook) removeRecord(tap string, rec *state.Record) error {
	if rec == nil {
		return nil
	}
	h.releaseMAC(rec)
	if err := h.State.Remove(tap); err != nil {
		return &kindError{KindState, err}
	}
	return nil
}

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
	if err != nil {
		return out, wrap("list", "", &kindError{KindState, err})
	}
	return out, nil
}

// present reports whether the record's TAP still exists as the same
// device. An error means the kernel could not say.
func (h *Hook) present(r *state.Record) (bool, error) {
	l, err := h.Links.LinkByName(r.TAP)
	if errors.Is(err, rtnl.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return l.Index == r.Index, nil
}

// GC removes the records of TAPs that no longer exist and returns their
// names.
func (h *Hook) GC() ([]string, error) {
	lock, err := h.lock()
	if err != nil {
		return nil, wrap("gc", "", err)
	}
	defer lock.Unlock()
	removed, err := h.sweep("")
	lock.MarkSwept(h.now())
	return removed, wrap("gc", "", err)
}

func (h *Hook) sweepIfDue(lock *state.Lock, except string) {
	every := h.SweepEvery
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
			err = errors.Join(err, perr)
			continue
		}
		if rmErr := h.State.Remove(r.TAP); rmErr != nil {
			err = errors.Join(err, rmErr)
			continue
		}
		h.releaseMAC(r)
		removed = append(removed, r.TAP)
		h.Log.Change("gc: removed the record of %s (bridge %s, since %s): the TAP is gone", r.TAP, r.Bridge, r.Since.Format(time.RFC3339))
	}
	if err != nil {
		return removed, &kindError{KindState, err}
	}
	return removed, nil
}

// Op is an operation on a TAP.
type Op int

const (
	OpUp   Op = iota + 1 // attach (qemu-ifup)
	OpDown               // detach (qemu-ifdown)
)

func (o Op) String() string {
	if o == OpDown {
		return "down"
	}
	return "up"
}

// ExplainDown returns the plan Down would apply, changing nothing.
func (h *Hook) ExplainDown(tap string) (*Plan, error) {
	if err := policy.ValidIfName(tap); err != nil {
		return nil, wrap("explain", tap, errorf(KindBadTAP, "%v", err))
	}
	plan, _, err := h.planDown(tap, false)
	return plan, wrap("explain", tap, err)
}

// releaseMAC drops a record's entry from the guest-MAC index.
func (h *Hook) releaseMAC(rec *state.Record) {
	if rec.GuestMAC == "" || rec.Bridge == "" {
		return
	}
	if mac, err := net.ParseMAC(rec.GuestMAC); err == nil {
		_ = h.State.ReleaseMAC(rec.Bridge, mac, rec.TAP)
	}
}

func macString(m net.HardwareAddr) string {
	if m == nil {
		return ""
	}
	return m.String()
}

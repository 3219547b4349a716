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

	"github.com/ifhook/ifhook/ifhook/bridge"
	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

// TAPPlan is what an operation will do (or did) to one TAP, and why.
type TAPPlan struct {
	Op     string // "up" or "down"
	TAP    string
	Policy string // the policy's file
	Rule   string // the policy setting that applies
	Bridge string // the bridge chosen (up) or left (down)
	Reason string // why that bridge
	Guest  Guest  // for up: what is known of the VM
	// Steps are the whole plan: the bridge's (when Makes is set) and then
	// the TAP's.
	Steps []plan.Step
	Notes []plan.Note
	// Makes is the plan of the bridge this ifup makes first, or completes
	// (its dnsmasq found dead), when it does.
	Makes *bridge.Plan
	// DHCP is what the guest gets from the bridge's dnsmasq, when the
	// bridge serves DHCP.
	DHCP *DHCPView

	journal plan.Journal
	wait    time.Duration // up: how long to wait for the port to forward (STP)
	unlock  func()        // up: lets go of the bridge's MAC index
	dhcp    *dhcpUp       // up: the guest's hosts entry and address
	helper  bool          // up: a TAP the bridge helper made (UpHelper)
	recDir  *state.Dir    // down: the directory of the TAP's record, if any
}

// unlockMACs lets go of the bridge's MAC index, once the guest's MAC is
// claimed (or the plan given up); a nil plan or one that took no lock is
// fine.
func (p *TAPPlan) unlockMACs() {
	if p != nil && p.unlock != nil {
		p.unlock()
		p.unlock = nil
	}
}

// Lines returns the steps as the commands they stand for.
func (p *TAPPlan) Lines() []string { return plan.Lines(p.Steps) }

// View is a plan as `ifhook explain --json` prints it, with the error the
// operation would end with, if any.
type View struct {
	Op       string    `json:"op"`
	TAP      string    `json:"tap"`
	Policy   string    `json:"policy,omitempty"`
	Rule     string    `json:"rule,omitempty"`
	Bridge   string    `json:"bridge,omitempty"`
	Reason   string    `json:"bridge_reason,omitempty"`
	VM       string    `json:"vm,omitempty"`
	GuestMAC string    `json:"guest_mac,omitempty"`
	DHCP     *DHCPView `json:"dhcp,omitempty"`
	Steps    []string  `json:"steps"`
	Notes    []string  `json:"notes,omitempty"`
	Error    string    `json:"error,omitempty"`
	Exit     int       `json:"exit,omitempty"`
}

// View returns the plan as explain reports it, with err (nil: none).
func (p *TAPPlan) View(err error) View {
	v := View{Op: p.Op, TAP: p.TAP, Policy: p.Policy, Rule: p.Rule, Bridge: p.Bridge, Reason: p.Reason,
		VM: p.Guest.VM, GuestMAC: macString(p.Guest.MAC), DHCP: p.DHCP, Steps: p.Lines()}
	for _, n := range p.Notes {
		v.Notes = append(v.Notes, n.Text)
	}
	if err != nil {
		v.Error, v.Exit = err.Error(), exit.Code(err)
	}
	return v
}

// Text renders the plan for people, as `ifhook explain` prints it.
func (p *TAPPlan) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", p.Op, escape.String(p.TAP))
	if p.Policy != "" {
		fmt.Fprintf(&b, "  policy: %s\n", escape.String(p.Policy))
	}
	if p.Guest.VM != "" || p.Guest.MAC != nil {
		fmt.Fprintf(&b, "  guest:  VM %s, MAC %s", escape.Quote(p.Guest.VM), macString(p.Guest.MAC))
		if p.Guest.DefaultMAC {
			b.WriteString(" (QEMU's default)")
		}
		b.WriteByte('\n')
	}
	if p.Rule != "" {
		fmt.Fprintf(&b, "  rule:   %s\n", escape.String(p.Rule))
	}
	if p.Bridge != "" {
		fmt.Fprintf(&b, "  bridge: %s", escape.String(p.Bridge))
		if p.Reason != "" {
			fmt.Fprintf(&b, " (%s)", escape.String(p.Reason))
		}
		b.WriteByte('\n')
	}
	if d := p.DHCP; d != nil {
		b.WriteString("  dhcp:   ")
		if d.IP != "" {
			b.WriteString(d.IP + " ")
		}
		fmt.Fprintf(&b, "(%s)", escape.String(d.How))
		if d.Name != "" {
			fmt.Fprintf(&b, ", name %s", escape.String(d.Name))
		}
		b.WriteByte('\n')
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "  note:   %s\n", escape.String(n.Text))
	}
	if len(p.Steps) == 0 {
		b.WriteString("  nothing to do\n")
	} else {
		b.WriteString("  steps:\n")
		for i, s := range p.Steps {
			fmt.Fprintf(&b, "    %d. %s\n", i+1, s)
		}
	}
	return b.String()
}

// Observed is the state an up plan is computed from. Nil links are missing.
type Observed struct {
	TAPName    string
	TAP        *rtnl.Link
	BridgeName string
	Bridge     *rtnl.Link
	OldMaster  *rtnl.Link // the TAP's master when it is not Bridge
	// NewBridge is set when the bridge is made earlier in the same plan:
	// Bridge then describes it as it will be, and has no index yet.
	NewBridge bool
}

// Want is how the policy wants the TAP configured.
type Want struct {
	MTU int              // 0: the bridge's MTU
	MAC net.HardwareAddr // nil: leave the MAC alone
}

// checkTAP returns why link cannot be used as the TAP named name.
func checkTAP(name string, link *rtnl.Link) error {
	if link == nil {
		return exit.New(exit.BadTAP, "no such device")
	}
	if !link.IsTAP() {
		return exit.New(exit.BadTAP, "%s is %s, not a TAP; refusing to touch it", escape.Quote(name), link.Describe())
	}
	return nil
}

// PlanUp computes the steps that attach obs.TAP to obs.Bridge as wanted. It
// is pure: the same observation always gives the same steps, and a TAP that
// is already as wanted gives none. Order matters and follows libvirt: MAC
// and MTU before enslaving (a port's MAC and MTU can change the bridge's),
// up last; the applier sends them as one message.
func PlanUp(obs Observed, want Want) (steps []plan.Step, notes []plan.Note, err error) {
	if err := checkTAP(obs.TAPName, obs.TAP); err != nil {
		return nil, nil, err
	}
	br := obs.Bridge
	switch {
	case br == nil:
		return nil, nil, exit.New(exit.Unavailable, "bridge %s does not exist", escape.Quote(obs.BridgeName))
	case !br.IsBridge():
		return nil, nil, exit.New(exit.Unavailable, "%s is %s, not a bridge", escape.Quote(obs.BridgeName), br.Describe())
	}
	tap := obs.TAP
	ref := plan.Ref(tap)
	if want.MAC != nil && string(want.MAC) != string(tap.MAC) {
		steps = append(steps, &plan.SetLink{Link: ref, To: plan.Attrs{MAC: want.MAC}, From: plan.Attrs{MAC: tap.MAC}})
	}
	mtu := want.MTU
	if mtu == 0 {
		mtu = br.MTU
	}
	if mtu != 0 && mtu != tap.MTU {
		steps = append(steps, &plan.SetLink{Link: ref, To: plan.Attrs{MTU: mtu}, From: plan.Attrs{MTU: tap.MTU}})
	}
	if obs.NewBridge || tap.Master != br.Index {
		to := plan.Ref(br)
		if obs.NewBridge {
			to = plan.New(br.Name)
		}
		from := plan.LinkRef{}
		if tap.Master != 0 {
			from = plan.LinkRef{Index: tap.Master}
			name := fmt.Sprintf("index %d", tap.Master)
			if obs.OldMaster != nil {
				from.Name, name = obs.OldMaster.Name, obs.OldMaster.Name
			}
			notes = append(notes, plan.Notef(plan.Moved, "moving %s from %s to %s", tap.Name, name, br.Name))
		}
		steps = append(steps, &plan.SetLink{Link: ref, To: plan.Attrs{Master: &to}, From: plan.Attrs{Master: &from}})
	}
	if !tap.Up {
		steps = append(steps, &plan.SetLink{Link: ref, To: plan.Attrs{Up: plan.Flag(true)}, From: plan.Attrs{Up: plan.Flag(false)}})
	}
	return steps, notes, nil
}

// Up attaches tap to the bridge the policy chooses (ifup). It returns the
// plan it applied; an empty plan means the TAP was already as wanted.
func (h *Hook) Up(tap string) (*TAPPlan, error) {
	p, err := h.up(tap)
	if err != nil {
		err = exit.Op("up", tap, err)
		h.Log.Failure(err)
	}
	return p, err
}

func (h *Hook) up(tap string) (*TAPPlan, error) {
	if err := policy.ValidIfName(tap); err != nil {
		return nil, exit.New(exit.BadTAP, "%w", err)
	}
	if err := h.needAdmin("attach a TAP"); err != nil {
		return nil, exit.New(exit.Permission, "%w (run QEMU as root, or give it only the TAPs: see qemu-bridge-helper)", err)
	}
	// What QEMU's command line says is read before the lock: other ifups
	// need not wait for it.
	g := h.guest(tap)
	// Attaching a TAP to a bridge that is there changes only the TAP and
	// its record: ifups share the lock and run side by side. Making the
	// bridge, or finishing what a killed run left, takes it exclusively.
	lock, err := h.lockShared()
	if err != nil {
		return nil, err
	}
	defer func() { lock.Unlock() }()
	// The change is finished, never cut: a signal waits for its end (one
	// message, nearly always), or, for a plan of many steps, stops it
	// between two and undoes it.
	h.signals.Hold()
	defer h.signals.Release()
	if err := h.finishKilled(&lock); err != nil {
		return nil, err
	}
	p, err := h.planUp(tap, g, false)
	if err == nil && p.Makes != nil && lock.Shared {
		// Made by someone else meanwhile, or not: the plan is made again
		// under the exclusive lock.
		p.unlockMACs()
		if err := h.exclusive(&lock); err != nil {
			return nil, err
		}
		p, err = h.planUp(tap, g, false)
	}
	defer p.unlockMACs()
	if err != nil {
		return p, err
	}
	if len(plan.Batches(p.Steps)) > 2 {
		h.signals.Catch()
	}
	a := &plan.Applier{Kernel: h.Kernel, Log: h.Log, Stop: h.signals.Stop}
	if err := a.All("up "+tap, p.Steps, p.journal); err != nil {
		return p, h.annotate(err, p)
	}
	p.unlockMACs()
	for _, n := range p.Notes {
		switch n.Kind {
		case plan.Moved:
			h.Log.Notice("up %s: moved %s", tap, strings.TrimPrefix(n.Text, "moving "+tap+" "))
		case plan.Warning:
			h.Log.Notice("up %s: warning: %s", tap, n.Text)
		}
	}
	h.signals.Release()
	h.sweepIfDue(&lock, tap)
	if p.wait > 0 {
		// Other ifups need not wait while this port learns.
		lock.Unlock()
		h.waitForwarding(tap, p.wait)
	}
	return p, nil
}

// annotate adds the policy setting behind a failed apply to its message.
func (h *Hook) annotate(err error, p *TAPPlan) error {
	if p.Rule == "" {
		return err
	}
	return exit.As(exit.KindOf(err), fmt.Errorf("%w (%s)", err, p.Rule))
}

// ExplainUp returns the plan Up would apply, changing nothing.
func (h *Hook) ExplainUp(tap string) (*TAPPlan, error) {
	if err := policy.ValidIfName(tap); err != nil {
		return nil, exit.Op("explain", tap, exit.New(exit.BadTAP, "%w", err))
	}
	p, err := h.planUp(tap, h.guest(tap), true)
	return p, exit.Op("explain", tap, err)
}

// planUp observes the TAP and the chosen bridge and plans the attach, and
// the bridge first when the policy describes it and it is missing. The
// plan it returns on error says as much as was known (for explain); for
// explain, a record it cannot read (root's, read by a user) is a note.
func (h *Hook) planUp(tap string, g Guest, explain bool) (*TAPPlan, error) {
	return h.planAttach(tap, g, explain, "")
}

// planAttach is planUp; with helperBridge, for a TAP the bridge helper
// made: that bridge, which must exist, and no other change.
func (h *Hook) planAttach(tap string, g Guest, explain bool, helperBridge string) (*TAPPlan, error) {
	choice := h.Policy.MatchVM(tap, g.VM)
	if helperBridge != "" {
		choice = h.Policy.MatchHelper(tap, g.VM, helperBridge)
	}
	p := &TAPPlan{Op: "up", TAP: tap, Policy: h.Policy.File, Rule: describeChoice(h.Policy, choice), Guest: g, helper: helperBridge != ""}
	if p.helper {
		p.Rule = describeHelperChoice(choice)
	}
	tapLink, err := h.Kernel.LinkByName(tap)
	if err != nil && !kernel.IsNotFound(err) {
		return p, exit.Sys(err, "look up %s", tap)
	}
	if tapLink == nil && explain && (g.VM != "" || g.MAC != nil) {
		// Before QEMU makes the TAP: what ifup will do to a fresh one (down,
		// on no bridge), and the address the VM will get.
		tapLink = &rtnl.Link{Name: tap, Kind: "tun", TunType: rtnl.TunTypeTAP, MTU: 1500, PortState: -1}
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "%s does not exist yet: the steps are for the TAP QEMU will make", tap))
	}
	if err := checkTAP(tap, tapLink); err != nil {
		return p, err
	}
	obs := Observed{TAPName: tap, TAP: tapLink}
	if p.helper {
		// The bridge asked for, as named: never "auto" resolved, nor a
		// rule's choice; the ACL allowed this name and no other.
		obs.BridgeName, p.Reason = helperBridge, "QEMU's --br=, allowed by the ACL"
		obs.Bridge, err = h.Kernel.LinkByName(helperBridge)
		if err != nil && !kernel.IsNotFound(err) {
			return p, exit.Sys(err, "look up bridge %s", helperBridge)
		}
	} else {
		obs.BridgeName, p.Reason, obs.Bridge, err = h.chooseBridge(choice)
	}
	p.Bridge = obs.BridgeName
	if err != nil && !p.helper {
		return p, exit.As(exit.KindOf(err), fmt.Errorf("%w (%s)", err, p.Rule))
	}
	if p.helper {
		switch {
		case obs.Bridge == nil:
			return p, helperBridgeMissing(obs.BridgeName, "does not exist")
		case !obs.Bridge.IsBridge():
			return p, helperBridgeMissing(obs.BridgeName, "is "+obs.Bridge.Describe()+", not a bridge")
		}
	}
	var journals plan.Journals
	spec := h.Policy.Spec(obs.BridgeName)
	if obs.Bridge == nil && spec != nil && !p.helper {
		// The policy describes the missing bridge: make it first, in the
		// same all-or-nothing plan.
		bp, err := h.Bridges.Ensure(spec)
		if err != nil {
			return p, err
		}
		p.Makes = bp
		p.Steps = append(p.Steps, bp.Steps...)
		journals = append(journals, h.Bridges.Journal(bp))
		obs.Bridge = &rtnl.Link{Name: spec.Name, Kind: "bridge", MTU: bp.MTU, STP: bp.STP, ForwardDelay: bp.ForwardDelay * 100}
		obs.NewBridge = true
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "makes bridge %s (model %s, bridges.%s at %s:%d)", spec.Name, spec.Model, spec.Name, h.Policy.File, spec.Line))
	} else if spec != nil && spec.DHCP != nil && obs.Bridge.IsBridge() && !p.helper {
		// The bridge's dnsmasq: one pid file read and a kill(pid, 0) when
		// it runs, as it nearly always does; started again when it died.
		sv, err := h.Kernel.DHCPServer(spec.Name, false)
		if err != nil {
			return p, err
		}
		if !sv.Running {
			bp, err := h.Bridges.EnsureDHCP(spec)
			if err != nil {
				return p, err
			}
			if bp != nil {
				p.Makes = bp
				p.Steps = append(p.Steps, bp.Steps...)
				p.Notes = append(p.Notes, bp.Notes...)
				journals = append(journals, h.Bridges.Journal(bp))
			}
		}
	}
	if tapLink.Master != 0 && obs.Bridge != nil && tapLink.Master != obs.Bridge.Index {
		obs.OldMaster, _ = h.Kernel.LinkByIndex(tapLink.Master)
	}
	want := Want{MTU: choice.MTU, MAC: h.hostMAC(tap, g)}
	if obs.Bridge != nil && obs.Bridge.IsBridge() {
		if g.MAC != nil && !explain && !obs.NewBridge {
			// From the check to the claim, no other ifup on this bridge
			// may look: two VMs started at once with one MAC must not both
			// find it free.
			if p.unlock, err = h.macIndex().LockMACsWithin(obs.Bridge.Name, h.lockTimeout()); errors.Is(err, state.ErrMACsBusy) {
				// Held too long by another (a bridge helper its user
				// stopped, say): check without it rather than wait.
				h.Log.Notice("up %s: %v; checking guest MAC %s without it", tap, err, g.MAC)
			} else if err != nil {
				return p, err
			}
		}
		gnotes, err := h.checkGuestMAC(tap, g, obs.Bridge, obs.NewBridge)
		p.Notes = append(p.Notes, gnotes...)
		if err != nil {
			return p, err
		}
	}
	steps, notes, err := PlanUp(obs, want)
	p.Notes = append(p.Notes, notes...)
	if err != nil {
		p.Steps = nil
		return p, exit.As(exit.KindOf(err), fmt.Errorf("%w (%s)", err, p.Rule))
	}
	p.Steps = append(p.Steps, steps...)
	if spec != nil && spec.DHCP != nil && !p.helper {
		// (The bridge helper runs as its caller, who may not write
		// dnsmasq's hosts entries: its guests get dynamic leases.)
		if p.dhcp, err = h.planDHCPUp(p, spec, tap, g); err != nil {
			return p, err
		}
		if p.dhcp != nil && p.dhcp.step != nil {
			p.Steps = append(p.Steps, p.dhcp.step)
		}
	}
	if wait := h.forwardWait(obs.Bridge); wait > 0 {
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "waits up to %s for %s to forward (STP on %s)", wait, tap, obs.BridgeName))
		p.wait = wait
	}
	j, err := h.tapJournal(p, obs, want)
	if err != nil && explain {
		p.Notes = append(p.Notes, plan.Notef(plan.Info, "cannot read the TAP's record: %v", err))
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if j.old != nil && j.old.Bridge != obs.Bridge.Name {
		// Moved from a bridge that served it DHCP: its entry there goes.
		p.Steps = append(p.Steps, h.forgetDHCP(j.old)...)
	}
	p.journal = append(journals, j)
	return p, nil
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
			return "", "", nil, exit.New(exit.Unavailable, "no bridge chosen: %s names none and the policy sets bridge = \"\"", c.Rule)
		}
		return "", "", nil, exit.New(exit.Unavailable, "no bridge chosen: no rule matches and the policy sets bridge = \"\"")
	case policy.Auto:
		return h.autoBridge()
	}
	reason = "named by the policy"
	if c.Rule != nil && c.Rule.Bridge != "" {
		reason = "named by " + c.Rule.String()
	}
	link, err = h.Kernel.LinkByName(c.Bridge)
	if kernel.IsNotFound(err) {
		return c.Bridge, reason, nil, nil // PlanUp reports it
	}
	if err != nil {
		return c.Bridge, reason, nil, exit.Sys(err, "look up bridge %s", c.Bridge)
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
		idx, err := h.Kernel.DefaultRouteLinks(family)
		if err != nil {
			return "", "", nil, exit.Sys(err, "list default routes")
		}
		for _, i := range idx {
			l, err := h.Kernel.LinkByIndex(i)
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
	bridges, err := h.Kernel.Bridges()
	if err != nil {
		return "", "", nil, exit.Sys(err, "list bridges")
	}
	switch len(bridges) {
	case 1:
		return bridges[0].Name, "auto: the only bridge on the host", bridges[0], nil
	case 0:
		return "", "", nil, exit.New(exit.Unavailable, "bridge = \"auto\" found no bridge: none holds the default route and the host has none")
	}
	names := make([]string, len(bridges))
	for i, b := range bridges {
		names[i] = escape.String(b.Name)
	}
	sort.Strings(names)
	return "", "", nil, exit.New(exit.Unavailable, "bridge = \"auto\" cannot choose: no bridge holds the default route and there are %d (%s); name one in the policy", len(names), strings.Join(names, ", "))
}

// tapJournal is an up plan's write-ahead record: the TAP's record, written
// before the change with what the TAP had (Prev) and what ifhook sets
// (Set), so ifdown restores exactly that whatever point a killed ifup
// reached; and the guest's MAC claimed on the bridge.
type tapJournal struct {
	h        *Hook
	old, rec *state.Record // the record before (nil: none) and after
	claim    net.HardwareAddr
	dhcp     *dhcpUp // the guest's address, to record in the bridge's book
	written  bool
}

// tapJournal builds the record an up plan leaves, keeping the first
// record's "before" values when the TAP was already ours (a move to
// another bridge, a second ifup), so ifdown restores the TAP as QEMU made
// it.
func (h *Hook) tapJournal(p *TAPPlan, obs Observed, want Want) (*tapJournal, error) {
	tap := obs.TAP
	old, err := h.State.Read(tap.Name)
	if err != nil {
		return nil, err
	}
	if old != nil && old.Index != tap.Index {
		old = nil // left by an earlier TAP of the same name
	}
	mtu := want.MTU
	if mtu == 0 {
		mtu = obs.Bridge.MTU
	}
	set := state.Snapshot{MTU: mtu, Master: obs.Bridge.Name, Up: true, MAC: tap.MAC.String()}
	if want.MAC != nil {
		set.MAC = want.MAC.String()
	}
	rec := &state.Record{TAP: tap.Name, Index: tap.Index, Since: h.now().UTC().Truncate(time.Second)}
	switch {
	case old != nil && old.Bridge == obs.Bridge.Name:
		r := *old
		rec = &r
	case old != nil:
		rec.Prev = old.Prev
	default:
		rec.Prev = state.Snapshot{MAC: tap.MAC.String(), MTU: tap.MTU, Up: tap.Up}
		if obs.OldMaster != nil {
			rec.Prev.Master = obs.OldMaster.Name
		}
	}
	rec.Bridge, rec.Rule, rec.Set = obs.Bridge.Name, p.Rule, set
	if p.helper {
		rec.Helper, rec.UID = true, os.Getuid()
	}
	g := p.Guest
	rec.VM, rec.PID, rec.GuestMAC = g.VM, g.PID, macString(g.MAC)
	rec.DHCP, rec.IP = false, ""
	if d := p.dhcp; d != nil {
		rec.DHCP = true
		if d.choice.IP.IsValid() {
			rec.IP = d.choice.IP.String()
		}
	}
	j := &tapJournal{h: h, old: old, rec: rec, dhcp: p.dhcp}
	if g.MAC != nil {
		j.claim = g.MAC
	}
	return j, nil
}

func (j *tapJournal) write() error {
	if j.written {
		return nil
	}
	j.written = true
	if err := j.dhcp.writeGrant(j.h); err != nil {
		return err
	}
	if j.old != nil && *j.old == *j.rec {
		return nil // the record already says so
	}
	if err := j.h.State.Write(j.rec); err != nil {
		return err
	}
	if j.claim != nil {
		if err := j.h.macIndex().Claim(j.rec.Bridge, j.claim, j.rec.TAP, j.rec.Index); err != nil {
			j.h.Log.Notice("up %s: could not index guest MAC %s: %v", j.rec.TAP, j.claim, err)
		}
	}
	if j.old != nil && j.old.Bridge != j.rec.Bridge {
		j.h.releaseMAC(j.old)
	}
	return nil
}

func (j *tapJournal) Ahead() error { return j.write() }

// Commit writes the record when the plan had no step (Ahead was not
// called): a TAP already attached whose VM's details are new.
func (j *tapJournal) Commit(*plan.Refs) error { return j.write() }

func (j *tapJournal) Abort(undone bool) error {
	if !undone {
		return nil // the record says what ifdown must still restore
	}
	if j.old != nil {
		return j.h.State.Write(j.old)
	}
	j.h.releaseMAC(j.rec)
	return j.h.State.Remove(j.rec.TAP)
}

func macString(m net.HardwareAddr) string {
	if m == nil {
		return ""
	}
	return m.String()
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
	return 2*delay + 2*time.Second
}

// waitForwarding polls the port's STP state until it forwards, at most
// for max. A port without carrier (nobody holds the TAP open) never
// forwards, so it is not waited for.
func (h *Hook) waitForwarding(tap string, max time.Duration) {
	deadline := h.now().Add(max)
	st := -1
	for {
		l, err := h.Kernel.LinkByName(tap)
		if err != nil {
			return
		}
		st = l.PortState
		if st == rtnl.PortForwarding {
			h.Log.Debug("up %s: forwarding", tap)
			return
		}
		if !l.Carrier {
			h.Log.Debug("up %s: no carrier (no one holds the TAP open), not waiting for STP", tap)
			return
		}
		if h.now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.Log.Notice("up %s: still %s after %s (STP); the guest may lose its first packets", tap, rtnl.PortStateName(st), max)
}

package ifhook

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook/rtnl"
)

// Links is the part of the kernel's link table ifhook's core uses.
// *rtnl.Conn is the real one; tests wrap it to inject failures.
type Links interface {
	LinkByName(name string) (*rtnl.Link, error)
	LinkByIndex(index int) (*rtnl.Link, error)
	SetLink(index int, ch rtnl.Change) error
	Bridges() ([]*rtnl.Link, error)
	DefaultRouteLinks(family int) ([]int, error)
}

var _ Links = (*rtnl.Conn)(nil)

// A Step is one reversible change. String is the ip(8) command it stands
// for, which is what `ifhook explain`, -v and syslog print.
type Step interface {
	String() string
	Do(l Links) error
	Undo(l Links) error
}

// A linkStep changes attributes of one link. Apply sends consecutive
// linkSteps on the same link as one RTM_NEWLINK, the way `ip link set dev X
// address A mtu M master B up` does: one round trip instead of four.
type linkStep interface {
	Step
	linkIndex() int
	linkName() string
	args() string // the ip(8) arguments: "mtu 1500"
	changes() (do, undo rtnl.Change)
}

// Plan is what an operation will do (or did) to one TAP, and why.
type Plan struct {
	Op     string // "up" or "down"
	TAP    string
	Policy string // the policy's file
	Rule   string // the policy setting that applies
	Bridge string // the bridge chosen (up) or left (down)
	Reason string // why that bridge
	Steps  []Step
	Notes  []string
	Guest  Guest // for Up: what is known of the VM

	record  func()          // for Up: what to record once applied
	wait    time.Duration   // for Up: how long to wait for the port to forward (STP)
	gone    bool            // for Down: the TAP no longer exists
	handoff []sysctlHandoff // for Teardown: sysctls another bridge now answers for
}

// StepStrings returns the steps as ip(8) commands.
func (p *Plan) StepStrings() []string {
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		out[i] = s.String()
	}
	return out
}

// MarshalJSON renders the plan for `ifhook explain --json`.
func (p *Plan) MarshalJSON() ([]byte, error) { return json.Marshal(p.View(nil)) }

// PlanView is a plan as `ifhook explain --json` prints it, with the error
// the operation would end with, if any.
type PlanView struct {
	Op       string   `json:"op"`
	TAP      string   `json:"tap"`
	Policy   string   `json:"policy,omitempty"`
	Rule     string   `json:"rule,omitempty"`
	Bridge   string   `json:"bridge,omitempty"`
	Reason   string   `json:"bridge_reason,omitempty"`
	VM       string   `json:"vm,omitempty"`
	GuestMAC string   `json:"guest_mac,omitempty"`
	Steps    []string `json:"steps"`
	Notes    []string `json:"notes,omitempty"`
	Error    string   `json:"error,omitempty"`
	Exit     int      `json:"exit,omitempty"`
}

// View returns the plan as explain reports it, with err (nil: none).
func (p *Plan) View(err error) PlanView {
	v := PlanView{p.Op, p.TAP, p.Policy, p.Rule, p.Bridge, p.Reason, p.Guest.VM, macString(p.Guest.MAC), p.StepStrings(), p.Notes, "", 0}
	if err != nil {
		v.Error, v.Exit = err.Error(), Exit(err)
	}
	return v
}

// Text renders the plan for people, as `ifhook explain` prints it.
func (p *Plan) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", p.Op, p.TAP)
	if p.Policy != "" {
		fmt.Fprintf(&b, "  policy: %s\n", p.Policy)
	}
	if p.Guest.VM != "" || p.Guest.MAC != nil {
		fmt.Fprintf(&b, "  guest:  VM %q, MAC %s", p.Guest.VM, macString(p.Guest.MAC))
		if p.Guest.DefaultMAC {
			b.WriteString(" (QEMU's default)")
		}
		b.WriteByte('\n')
	}
	if p.Rule != "" {
		fmt.Fprintf(&b, "  rule:   %s\n", p.Rule)
	}
	if p.Bridge != "" {
		fmt.Fprintf(&b, "  bridge: %s", p.Bridge)
		if p.Reason != "" {
			fmt.Fprintf(&b, " (%s)", p.Reason)
		}
		b.WriteByte('\n')
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "  note:   %s\n", n)
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
	// Bridge then describes it as it will be, and its index comes later.
	NewBridge *linkRef
}

// Want is how the policy wants the TAP configured.
type Want struct {
	MTU int              // 0: the bridge's MTU
	MAC net.HardwareAddr // nil: leave the MAC alone
}

// checkTAP returns why link cannot be used as the TAP named name.
func checkTAP(name string, link *rtnl.Link) error {
	if link == nil {
		return errorf(KindBadTAP, "no such device")
	}
	if !link.IsTAP() {
		return errorf(KindBadTAP, "%q is %s, not a TAP; refusing to touch it", name, link.Describe())
	}
	return nil
}

// PlanUp computes the steps that attach obs.TAP to obs.Bridge as wanted. It
// is pure: the same observation always gives the same steps, and a TAP that
// is already as wanted gives none. Order matters and follows libvirt: MAC
// and MTU before enslaving (a port's MAC and MTU can change the bridge's),
// up last.
func PlanUp(obs Observed, want Want) (steps []Step, notes []string, err error) {
	if err := checkTAP(obs.TAPName, obs.TAP); err != nil {
		return nil, nil, err
	}
	br := obs.Bridge
	switch {
	case br == nil:
		return nil, nil, errorf(KindNoBridge, "bridge %q does not exist", obs.BridgeName)
	case !br.IsBridge():
		return nil, nil, errorf(KindNoBridge, "%q is %s, not a bridge", obs.BridgeName, br.Describe())
	}
	tap := obs.TAP
	if want.MAC != nil && !macEqual(want.MAC, tap.MAC) {
		steps = append(steps, &setAddress{dev: tap.Name, index: tap.Index, to: want.MAC, from: tap.MAC})
	}
	mtu := want.MTU
	if mtu == 0 {
		mtu = br.MTU
	}
	if mtu != 0 && mtu != tap.MTU {
		steps = append(steps, &setMTU{dev: tap.Name, index: tap.Index, to: mtu, from: tap.MTU})
	}
	if tap.Master != br.Index || obs.NewBridge != nil {
		s := &setMaster{dev: tap.Name, index: tap.Index, master: br.Name, masterIndex: br.Index, masterRef: obs.NewBridge, fromIndex: tap.Master}
		if tap.Master != 0 {
			s.from = fmt.Sprintf("index %d", tap.Master)
			if obs.OldMaster != nil {
				s.from = obs.OldMaster.Name
			}
			notes = append(notes, fmt.Sprintf("moving %s from %s to %s", tap.Name, s.from, br.Name))
		}
		steps = append(steps, s)
	}
	if !tap.Up {
		steps = append(steps, &setUp{dev: tap.Name, index: tap.Index, up: true, from: false})
	}
	return steps, notes, nil
}

// PlanDown computes the steps that detach a TAP and undo what ifup set,
// given what ifup set (set, nil when unknown) and what was there before
// (prev). A MAC or MTU is restored only while it is still the one ifhook
// set: a later change by someone else is theirs to keep.
func PlanDown(tap *rtnl.Link, prevMAC, ourMAC net.HardwareAddr, prevMTU, ourMTU int) []Step {
	var steps []Step
	if tap.Master != 0 {
		steps = append(steps, &setMaster{dev: tap.Name, index: tap.Index, fromIndex: tap.Master})
	}
	if tap.Up {
		steps = append(steps, &setUp{dev: tap.Name, index: tap.Index, up: false, from: true})
	}
	if prevMAC != nil && ourMAC != nil && macEqual(tap.MAC, ourMAC) && !macEqual(prevMAC, ourMAC) {
		steps = append(steps, &setAddress{dev: tap.Name, index: tap.Index, to: prevMAC, from: tap.MAC})
	}
	if prevMTU != 0 && ourMTU != 0 && tap.MTU == ourMTU && prevMTU != ourMTU {
		steps = append(steps, &setMTU{dev: tap.Name, index: tap.Index, to: prevMTU, from: tap.MTU})
	}
	return steps
}

func macEqual(a, b net.HardwareAddr) bool { return string(a) == string(b) }

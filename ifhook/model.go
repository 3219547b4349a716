package ifhook

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook/nat"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

// Forwarding sysctls, per address family.
const (
	sysctlIPv4Forward = "net.ipv4.ip_forward"
	sysctlIPv6Forward = "net.ipv6.conf.all.forwarding"
)

// bridgePlan is what making (or completing) one policy bridge takes.
type bridgePlan struct {
	spec  *policy.BridgeSpec
	ref   *linkRef
	steps []Step
	mtu   int                 // the bridge's MTU once made
	stp   bool                // the bridge runs STP
	rec   *state.BridgeRecord // what to record once the steps are applied
}

// stableBridgeMAC is the MAC ifhook gives a bridge it makes: locally
// administered, derived from the name, so guests keep their gateway's ARP
// entry when the bridge is re-made, and fixed, so the bridge never takes
// its ports' MACs as TAPs come and go.
func stableBridgeMAC(name string) net.HardwareAddr {
	h := fnv.New64a()
	h.Write([]byte("ifhook bridge " + name))
	sum := h.Sum64()
	mac := net.HardwareAddr{0x02, byte(sum >> 32), byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)}
	return mac
}

// net returns the Net provisioning needs, or an error naming the bridge.
func (h *Hook) net(bridge string) (Net, error) {
	if h.Net == nil {
		return nil, errorf(KindInternal, "the policy describes bridge %s, but this Hook has no Net to make it with", bridge)
	}
	return h.Net, nil
}

// planBridge plans making the bridge spec describes when br is nil, or,
// with repair, completing an existing one (addresses, forwarding, NAT,
// uplink). It checks what would make the change fail half-way before
// planning any of it.
func (h *Hook) planBridge(spec *policy.BridgeSpec, br *rtnl.Link, repair bool) (*bridgePlan, error) {
	n, err := h.net(spec.Name)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("bridges.%s at %s:%d", spec.Name, h.Policy.File, spec.Line)
	bp := &bridgePlan{spec: spec, ref: &linkRef{name: spec.Name}, stp: spec.STP, mtu: spec.MTU}
	bp.rec = &state.BridgeRecord{Bridge: spec.Name, Model: string(spec.Model), Since: h.now().UTC().Truncate(time.Second)}
	if h.State != nil && br != nil {
		if old, _ := h.State.ReadBridge(spec.Name); old != nil {
			bp.rec = old
		}
	}
	if br != nil && !br.IsBridge() {
		return nil, errorf(KindNoBridge, "%s is %s, not a bridge (%s)", spec.Name, br.Describe(), where)
	}

	var uplink *rtnl.Link
	if spec.Uplink != "" {
		uplink, err = n.LinkByName(spec.Uplink)
		if errors.Is(err, rtnl.ErrNotFound) {
			return nil, errorf(KindNoBridge, "uplink %s of bridge %s does not exist (%s)", spec.Uplink, spec.Name, where)
		}
		if err != nil {
			return nil, sysErr(err, "look up uplink %s", spec.Uplink)
		}
		if uplink.IsBridge() {
			return nil, errorf(KindPolicy, "uplink %s of bridge %s is itself a bridge (%s)", spec.Uplink, spec.Name, where)
		}
	}
	if spec.Model == policy.Bridged && uplink.Master != 0 && (br == nil || uplink.Master != br.Index) {
		m, _ := n.LinkByIndex(uplink.Master)
		name := fmt.Sprintf("index %d", uplink.Master)
		if m != nil {
			name = m.Name
		}
		return nil, errorf(KindNoBridge, "uplink %s of bridge %s is already a port of %s (%s)", spec.Uplink, spec.Name, name, where)
	}

	if br == nil {
		opts := rtnl.BridgeOptions{STP: spec.STP, ForwardDelay: spec.ForwardDelay, MTU: spec.MTU, MAC: stableBridgeMAC(spec.Name)}
		if spec.Model == policy.Bridged {
			// The bridge takes the uplink's place on the LAN: same MAC (DHCP
			// leases and neighbours' ARP caches stay valid), same MTU.
			opts.MAC = uplink.MAC
			if opts.MTU == 0 {
				opts.MTU = uplink.MTU
			}
		}
		if opts.MTU == 0 {
			opts.MTU = 1500 // a new bridge's MTU
		}
		bp.mtu = opts.MTU
		bp.steps = append(bp.steps, &createBridge{net: n, ref: bp.ref, opts: opts})
	} else {
		bp.ref.index = br.Index
		bp.mtu, bp.stp = br.MTU, br.STP
		if !repair {
			return bp, nil
		}
	}

	if spec.Model == policy.Bridged && (br == nil || uplink.Master != br.Index) {
		if err := h.planUplink(n, bp, uplink); err != nil {
			return nil, err
		}
	} else if br == nil || !br.Up {
		bp.steps = append(bp.steps, &setUp{dev: spec.Name, ref: bp.ref, up: true, from: false})
	}

	if spec.Model.Routes() {
		if err := h.planAddresses(n, bp, br); err != nil {
			return nil, err
		}
		if err := h.planForwarding(n, bp); err != nil {
			return nil, err
		}
	}
	if spec.Model == policy.NAT {
		t, err := n.NAT()
		if err != nil {
			return nil, errorf(KindNoBridge, "bridge %s needs NAT, and nftables is unavailable: %v (%s)", spec.Name, err, where)
		}
		for _, subnet := range spec.NATSubnets() {
			rule := nat.Rule{Bridge: spec.Name, Subnet: subnet, OutIf: spec.Uplink, SNATTo: spec.SNATTo}
			has, err := t.Has(rule)
			if err != nil {
				return nil, errorf(KindNoBridge, "bridge %s needs NAT, and nftables is unavailable: %v (%s)", spec.Name, err, where)
			}
			if !has {
				bp.steps = append(bp.steps, &natStep{net: n, rule: rule})
			}
		}
	}
	return bp, nil
}

// planAddresses adds the bridge's addresses that are missing, refusing an
// address some other link holds.
func (h *Hook) planAddresses(n Net, bp *bridgePlan, br *rtnl.Link) error {
	all, err := n.Addrs(0)
	if err != nil {
		return sysErr(err, "list addresses")
	}
	for _, want := range bp.spec.Addresses {
		mine := false
		for _, a := range all {
			if a.Prefix.Addr() != want.Addr() {
				continue
			}
			if br != nil && a.Index == br.Index {
				mine = true
				continue
			}
			other := fmt.Sprintf("index %d", a.Index)
			if l, err := n.LinkByIndex(a.Index); err == nil {
				other = l.Name
			}
			return errorf(KindNoBridge, "address %s of bridge %s is already on %s (bridges.%s at %s:%d)", want, bp.spec.Name, other, bp.spec.Name, h.Policy.File, bp.spec.Line)
		}
		if !mine {
			bp.steps = append(bp.steps, &addrStep{net: n, ref: bp.ref, addr: Addr{Prefix: want}, owned: true})
		}
	}
	return nil
}

// forwardingKeys returns the forwarding sysctls of the families the
// bridge routes.
func forwardingKeys(spec *policy.BridgeSpec) []string {
	var keys []string
	v4, v6 := spec.Families()
	if v4 {
		keys = append(keys, sysctlIPv4Forward)
	}
	if v6 {
		keys = append(keys, sysctlIPv6Forward)
	}
	return keys
}

// planForwarding turns forwarding on for the families the bridge routes.
func (h *Hook) planForwarding(n Net, bp *bridgePlan) error {
	for _, key := range forwardingKeys(bp.spec) {
		old, err := n.Sysctl(key)
		if err != nil {
			return sysErr(err, "read %s", key)
		}
		if old != "1" {
			bp.steps = append(bp.steps, &sysctlStep{net: n, key: key, value: "1", old: old})
		}
	}
	return nil
}

// planUplink moves the uplink into the bridge: enslave it, then move its
// routes and addresses to the bridge. Routes go first off the uplink and
// last onto the bridge, as a route needs its gateway reachable.
func (h *Hook) planUplink(n Net, bp *bridgePlan, uplink *rtnl.Link) error {
	up := &linkRef{name: uplink.Name, index: uplink.Index}
	bp.steps = append(bp.steps,
		&setMaster{dev: uplink.Name, index: uplink.Index, master: bp.spec.Name, masterRef: bp.ref, fromIndex: uplink.Master},
		&setUp{dev: bp.spec.Name, ref: bp.ref, up: true, from: false})
	if !uplink.Up {
		bp.steps = append(bp.steps, &setUp{dev: uplink.Name, index: uplink.Index, up: true, from: false})
	}
	addrs, err := n.Addrs(uplink.Index)
	if err != nil {
		return sysErr(err, "list addresses of %s", uplink.Name)
	}
	routes, err := n.Routes(uplink.Index)
	if err != nil {
		return sysErr(err, "list routes of %s", uplink.Name)
	}
	var moveAddrs []Addr
	for _, a := range addrs {
		if !a.Dynamic {
			moveAddrs = append(moveAddrs, a)
		}
	}
	var moveRoutes []Route
	for _, r := range routes {
		// Routes the kernel makes for an address come back with it on the
		// bridge; router advertisements make their own again.
		if r.Protocol == unix.RTPROT_KERNEL || r.Protocol == unix.RTPROT_RA || r.Table == unix.RT_TABLE_LOCAL {
			continue
		}
		moveRoutes = append(moveRoutes, r)
	}
	for _, r := range moveRoutes {
		bp.steps = append(bp.steps, &routeStep{net: n, ref: up, route: r, del: true})
	}
	for _, a := range moveAddrs {
		bp.steps = append(bp.steps, &addrStep{net: n, ref: up, addr: a, del: true})
	}
	for _, a := range moveAddrs {
		bp.steps = append(bp.steps, &addrStep{net: n, ref: bp.ref, addr: a})
	}
	for _, r := range moveRoutes {
		bp.steps = append(bp.steps, &routeStep{net: n, ref: bp.ref, route: r})
	}
	bp.rec.Uplink, bp.rec.UplinkUp = uplink.Name, uplink.Up
	bp.rec.UplinkAddrs, bp.rec.UplinkRoutes = nil, nil
	for _, a := range moveAddrs {
		bp.rec.UplinkAddrs = append(bp.rec.UplinkAddrs, a.Prefix.String())
	}
	for _, r := range moveRoutes {
		bp.rec.UplinkRoutes = append(bp.rec.UplinkRoutes, r.Encode())
	}
	return nil
}

// finish updates the plan's record from the steps that were applied and
// writes it.
func (h *Hook) finishBridge(bp *bridgePlan) error {
	for _, s := range bp.steps {
		if r, ok := s.(recorder); ok {
			r.record(bp.rec)
		}
	}
	if err := h.State.WriteBridge(bp.rec); err != nil {
		return &kindError{KindState, err}
	}
	return nil
}

// Setup makes the policy's bridges now (all when names is empty), or
// completes those that exist, all or nothing per bridge. It returns the
// plans it applied.
func (h *Hook) Setup(names ...string) ([]*Plan, error) {
	lock, err := h.lock()
	if err != nil {
		return nil, wrap("setup", "", err)
	}
	defer lock.Unlock()
	specs, err := h.specs(names)
	if err != nil {
		return nil, wrap("setup", "", err)
	}
	var plans []*Plan
	for _, spec := range specs {
		p, err := h.setupOne(spec)
		plans = append(plans, p)
		if err != nil {
			err = wrap("setup", "", fmt.Errorf("%s: %w", spec.Name, err))
			h.Log.Failure(err)
			return plans, err
		}
	}
	return plans, nil
}

func (h *Hook) setupOne(spec *policy.BridgeSpec) (*Plan, error) {
	plan := &Plan{Op: "setup", TAP: spec.Name, Policy: h.Policy.File, Bridge: spec.Name,
		Rule: fmt.Sprintf("bridges.%s at %s:%d", spec.Name, h.Policy.File, spec.Line), Reason: "model " + string(spec.Model)}
	bp, err := h.observeAndPlanBridge(spec, true)
	if err != nil {
		return plan, err
	}
	plan.Steps = bp.steps
	if err := applyAll(h.Links, bp.steps, h.Log, "setup "+spec.Name); err != nil {
		return plan, err
	}
	if len(bp.steps) == 0 {
		return plan, nil
	}
	return plan, h.finishBridge(bp)
}

// observeAndPlanBridge looks the bridge up and plans it.
func (h *Hook) observeAndPlanBridge(spec *policy.BridgeSpec, repair bool) (*bridgePlan, error) {
	br, err := h.Links.LinkByName(spec.Name)
	if err != nil && !errors.Is(err, rtnl.ErrNotFound) {
		return nil, sysErr(err, "look up %s", spec.Name)
	}
	return h.planBridge(spec, br, repair)
}

// ExplainSetup returns the plans Setup would apply, changing nothing.
func (h *Hook) ExplainSetup(names ...string) ([]*Plan, error) {
	specs, err := h.specs(names)
	if err != nil {
		return nil, wrap("explain", "", err)
	}
	var plans []*Plan
	for _, spec := range specs {
		plan := &Plan{Op: "setup", TAP: spec.Name, Policy: h.Policy.File, Bridge: spec.Name, Reason: "model " + string(spec.Model)}
		bp, err := h.observeAndPlanBridge(spec, true)
		if err != nil {
			return append(plans, plan), wrap("explain", "", fmt.Errorf("%s: %w", spec.Name, err))
		}
		plan.Steps = bp.steps
		plans = append(plans, plan)
	}
	return plans, nil
}

// specs returns the policy's bridge specs by name (all when none given).
func (h *Hook) specs(names []string) ([]*policy.BridgeSpec, error) {
	if len(names) == 0 {
		names = h.Policy.BridgeNames()
	}
	var out []*policy.BridgeSpec
	for _, name := range names {
		spec := h.Policy.Spec(name)
		if spec == nil {
			return nil, errorf(KindUsage, "%s has no [bridges.%s] table in %s", name, name, h.Policy.File)
		}
		out = append(out, spec)
	}
	return out, nil
}

// Teardown removes what ifhook made for the named bridges (all it made,
// with none): the NAT rule, the forwarding it turned on when no other bridge
// of ifhook's still routes that family, the addresses, the bridge; a bridged
// model's uplink gets its addresses and routes back. A bridge with ports
// other than its uplink is refused unless force: those are running guests.
func (h *Hook) Teardown(force bool, names ...string) ([]*Plan, error) {
	lock, err := h.lock()
	if err != nil {
		return nil, wrap("teardown", "", err)
	}
	defer lock.Unlock()
	return h.teardown(force, names)
}

func (h *Hook) teardown(force bool, names []string) ([]*Plan, error) {
	if len(names) == 0 {
		recs, err := h.State.ListBridges()
		if err != nil {
			return nil, wrap("teardown", "", &kindError{KindState, err})
		}
		for _, r := range recs {
			names = append(names, r.Bridge)
		}
	}
	var plans []*Plan
	var errs []error
	for _, name := range names {
		p, err := h.teardownOne(name, force)
		if p != nil {
			plans = append(plans, p)
		}
		if err != nil {
			err = wrap("teardown", "", fmt.Errorf("%s: %w", name, err))
			h.Log.Failure(err)
			errs = append(errs, err)
		}
	}
	return plans, joinErrors(errs)
}

// ExplainTeardown returns the plans Teardown would apply, changing nothing.
func (h *Hook) ExplainTeardown(force bool, names ...string) ([]*Plan, error) {
	if len(names) == 0 {
		recs, err := h.State.ListBridges()
		if err != nil {
			return nil, wrap("explain", "", &kindError{KindState, err})
		}
		for _, r := range recs {
			names = append(names, r.Bridge)
		}
	}
	var plans []*Plan
	for _, name := range names {
		p, _, err := h.planTeardown(name, force)
		plans = append(plans, p)
		if err != nil {
			return plans, wrap("explain", "", fmt.Errorf("%s: %w", name, err))
		}
	}
	return plans, nil
}

func (h *Hook) teardownOne(name string, force bool) (*Plan, error) {
	plan, rec, err := h.planTeardown(name, force)
	if err != nil || rec == nil {
		return plan, err
	}
	if err := applyBestEffort(h.Links, plan.Steps, h.Log, "teardown "+name); err != nil {
		return plan, err // the record stays: teardown can be run again
	}
	for _, ho := range plan.handoff {
		other, err := h.State.ReadBridge(ho.to)
		if err != nil || other == nil {
			continue
		}
		if other.Sysctls == nil {
			other.Sysctls = map[string]string{}
		}
		if _, ok := other.Sysctls[ho.key]; !ok {
			other.Sysctls[ho.key] = ho.old
			if err := h.State.WriteBridge(other); err != nil {
				return plan, &kindError{KindState, err}
			}
		}
	}
	if err := h.State.RemoveBridge(name); err != nil {
		return plan, &kindError{KindState, err}
	}
	return plan, nil
}

// planTeardown plans undoing the bridge's record.
func (h *Hook) planTeardown(name string, force bool) (*Plan, *state.BridgeRecord, error) {
	plan := &Plan{Op: "teardown", TAP: name, Bridge: name}
	if err := policy.ValidIfName(name); err != nil {
		return plan, nil, errorf(KindUsage, "%q: %v", name, err)
	}
	rec, err := h.State.ReadBridge(name)
	if err != nil {
		return plan, nil, &kindError{KindState, err}
	}
	if rec == nil {
		return plan, nil, errorf(KindNoBridge, "ifhook did not make %s (no record in %s); nothing to tear down", name, h.State.Path)
	}
	n, err := h.net(name)
	if err != nil {
		return plan, nil, err
	}
	plan.Rule = "record from " + rec.Since.Format(time.RFC3339)
	plan.Reason = "model " + rec.Model
	br, err := n.LinkByName(name)
	if err != nil && !errors.Is(err, rtnl.ErrNotFound) {
		return plan, nil, sysErr(err, "look up %s", name)
	}
	ref := &linkRef{name: name}
	if br != nil {
		ref.index = br.Index
		ports, err := n.Ports(br.Index)
		if err != nil {
			return plan, nil, sysErr(err, "list ports of %s", name)
		}
		var guests []string
		for _, p := range ports {
			if p.Name != rec.Uplink {
				guests = append(guests, p.Name)
			}
		}
		if len(guests) > 0 && !force {
			return plan, nil, errorf(KindNoBridge, "%s still has ports %s (guests running?); stop them first, or use --force", name, strings.Join(guests, ", "))
		}
	} else {
		plan.Notes = append(plan.Notes, name+" is already gone")
	}

	if rec.NAT {
		plan.Steps = append(plan.Steps, &natStep{net: n, rule: nat.Rule{Bridge: name}, del: true})
	}
	if err := h.planRestoreForwarding(n, plan, rec); err != nil {
		return plan, nil, err
	}
	if br != nil {
		for _, a := range rec.Addrs {
			if p, err := netip.ParsePrefix(a); err == nil {
				plan.Steps = append(plan.Steps, &addrStep{net: n, ref: ref, addr: Addr{Prefix: p}, del: true})
			}
		}
	}
	if rec.Uplink != "" {
		if err := h.planReleaseUplink(n, plan, rec, ref, br != nil); err != nil {
			return plan, nil, err
		}
	}
	if br != nil && rec.Created {
		plan.Steps = append(plan.Steps, &deleteBridge{net: n, ref: ref})
	} else if br != nil {
		plan.Notes = append(plan.Notes, name+" existed before ifhook set it up; it stays")
	}
	return plan, rec, nil
}

// planRestoreForwarding puts back forwarding sysctls ifhook turned on for
// this bridge, unless another bridge of ifhook's still routes that family.
func (h *Hook) planRestoreForwarding(n Net, plan *Plan, rec *state.BridgeRecord) error {
	if len(rec.Sysctls) == 0 {
		return nil
	}
	others, err := h.State.ListBridges()
	if err != nil {
		return &kindError{KindState, err}
	}
	keys := make([]string, 0, len(rec.Sysctls))
	for k := range rec.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		var users []string
		for _, o := range others {
			if o.Bridge != rec.Bridge && routesFamily(o, key) {
				users = append(users, o.Bridge)
			}
		}
		if len(users) > 0 {
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s stays on: %s still routes", key, strings.Join(users, ", ")))
			// The bridge that still routes inherits the duty of putting
			// the old value back when it goes.
			plan.handoff = append(plan.handoff, sysctlHandoff{key: key, old: rec.Sysctls[key], to: users[0]})
			continue
		}
		cur, err := n.Sysctl(key)
		if err != nil {
			return sysErr(err, "read %s", key)
		}
		if cur == "1" && rec.Sysctls[key] != "1" {
			plan.Steps = append(plan.Steps, &sysctlStep{net: n, key: key, value: rec.Sysctls[key], old: cur})
		}
	}
	return nil
}

// routesFamily reports whether a bridge ifhook made routes the family the
// forwarding sysctl key governs.
func routesFamily(r *state.BridgeRecord, key string) bool {
	if m := policy.Model(r.Model); !m.Routes() {
		return false
	}
	for _, a := range r.Addrs {
		p, err := netip.ParsePrefix(a)
		if err == nil && p.Addr().Is4() == (key == sysctlIPv4Forward) {
			return true
		}
	}
	return false
}

// planReleaseUplink gives a bridged model's uplink back what it had.
func (h *Hook) planReleaseUplink(n Net, plan *Plan, rec *state.BridgeRecord, br *linkRef, brExists bool) error {
	uplink, err := n.LinkByName(rec.Uplink)
	if errors.Is(err, rtnl.ErrNotFound) {
		plan.Notes = append(plan.Notes, "uplink "+rec.Uplink+" is gone; nothing to give back")
		return nil
	}
	if err != nil {
		return sysErr(err, "look up uplink %s", rec.Uplink)
	}
	up := &linkRef{name: uplink.Name, index: uplink.Index}
	var routes []Route
	for _, s := range rec.UplinkRoutes {
		r, err := DecodeRoute(s)
		if err != nil {
			return &kindError{KindState, err}
		}
		routes = append(routes, r)
	}
	var addrs []Addr
	for _, s := range rec.UplinkAddrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return &kindError{KindState, fmt.Errorf("record of %s: address %q: %w", rec.Bridge, s, err)}
		}
		addrs = append(addrs, Addr{Prefix: p})
	}
	if brExists {
		for i := len(routes) - 1; i >= 0; i-- {
			plan.Steps = append(plan.Steps, &routeStep{net: n, ref: br, route: routes[i], del: true})
		}
		for _, a := range addrs {
			plan.Steps = append(plan.Steps, &addrStep{net: n, ref: br, addr: a, del: true})
		}
	}
	if uplink.Master != 0 && (!brExists || uplink.Master == br.index) {
		plan.Steps = append(plan.Steps, &setMaster{dev: uplink.Name, index: uplink.Index, fromIndex: uplink.Master})
	}
	if uplink.Up != rec.UplinkUp {
		plan.Steps = append(plan.Steps, &setUp{dev: uplink.Name, index: uplink.Index, up: rec.UplinkUp, from: uplink.Up})
	}
	for _, a := range addrs {
		plan.Steps = append(plan.Steps, &addrStep{net: n, ref: up, addr: a})
	}
	for _, r := range routes {
		plan.Steps = append(plan.Steps, &routeStep{net: n, ref: up, route: r})
	}
	return nil
}

// sysctlHandoff passes the value a sysctl had before ifhook to the record
// of another bridge that still needs the sysctl as ifhook set it.
type sysctlHandoff struct {
	key, old, to string
}

// joinErrors joins errors on one line ("; "), keeping the first's Kind.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return &kindError{KindOf(errs[0]), fmt.Errorf("%s", strings.Join(msgs, "; "))}
}

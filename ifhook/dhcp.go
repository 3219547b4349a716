package ifhook

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/ifhook/ifhook/ifhook/dhcp"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
)

// DHCPView is what ifup gives a guest on a bridge that serves DHCP, as
// explain shows it.
type DHCPView struct {
	IP   string `json:"ip,omitempty"`   // reserved for it; "" when dnsmasq leases one
	How  string `json:"how"`            // why that address
	Name string `json:"name,omitempty"` // its DNS name: LABEL.DOMAIN
}

// dhcpUp is the part of an up plan for the guest of a bridge that serves
// DHCP: its hosts entry, and the grant to record in the bridge's book
// before the change.
type dhcpUp struct {
	step   plan.Step // nil: the entry is there already
	entry  dhcp.Entry
	choice dhcp.Choice
	book   *dhcp.Book
	bridge string
}

// writeGrant records the choice in the bridge's book, when it is new: the
// VM keeps the address across restarts and reboots.
func (d *dhcpUp) writeGrant(h *Hook) error {
	if d == nil || d.choice.Grant == nil {
		return nil
	}
	d.book.Set(*d.choice.Grant)
	if err := h.DHCP.WriteBook(d.bridge, d.book); err != nil {
		return err
	}
	if e := d.choice.Evicted; e != nil {
		h.Log.Notice("up: %s's range is full: VM %q takes over %s, granted to VM %q (not running)", d.bridge, d.choice.Grant.VM, e.IP, e.VM)
	}
	return nil
}

// planDHCPUp chooses the guest's address on a bridge that serves DHCP
// and plans its hosts entry. The caller holds the lock that keeps two
// ifups on the bridge from choosing at once (the bridge's MAC lock, or
// the exclusive one).
func (h *Hook) planDHCPUp(p *TAPPlan, spec *policy.BridgeSpec, tap string, g Guest) (*dhcpUp, error) {
	if g.MAC == nil {
		p.DHCP = &DHCPView{How: "dynamic: the guest's MAC is not known (QEMU's command line could not be read), so dnsmasq leases any address of the range and the VM's name is not in DNS"}
		return nil, nil
	}
	book, problem, err := h.DHCP.Book(spec.Name)
	if err != nil {
		return nil, err
	}
	if problem != "" {
		h.Log.Notice("up %s: %s", tap, problem)
	}
	in := dhcp.Input{VM: g.VM, MAC: g.MAC, Book: book, Now: h.now()}
	c, err := dhcp.Choose(spec, in)
	if err == nil && c.Grant != nil {
		// A new address: chosen again knowing dnsmasq's leases and the
		// addresses of the guests attached now.
		leases, _, lerr := h.Kernel.DHCPLeases(spec.Name)
		if lerr != nil {
			return nil, lerr
		}
		in.Leases = leases
		in.InUse = h.addrsInUse(spec.Name, tap)
		c, err = dhcp.Choose(spec, in)
	}
	if err != nil {
		return nil, exit.New(exit.Unavailable, "%s (bridges.%s.dhcp at %s:%d): %w", spec.Name, spec.Name, h.Policy.File, spec.DHCP.Line, err)
	}
	d := &dhcpUp{choice: c, book: book, bridge: spec.Name}
	d.entry = dhcp.Entry{MAC: g.MAC, IP: c.IP}
	view := &DHCPView{How: c.How}
	if c.IP.IsValid() {
		view.IP = c.IP.String()
	}
	if spec.DHCP.DNS() {
		if d.entry.Name = dhcp.Label(g.VM); d.entry.Name != "" {
			view.Name = d.entry.Name + "." + spec.DHCP.Domain
		}
	}
	p.DHCP = view
	old, had, err := h.Kernel.DHCPHost(spec.Name, tap)
	if err != nil {
		return nil, err
	}
	if had && old.String() == d.entry.String() {
		return d, nil
	}
	set := &plan.SetDHCPHost{Bridge: spec.Name, TAP: tap, Entry: d.entry, Dir: h.DHCP.Layout.Paths(spec.Name).HostsDir}
	if had {
		set.Old = &old
	}
	d.step = set
	return d, nil
}

// addrsInUse returns a lazy test of whether an address belongs to a guest
// attached to the bridge now (another TAP's hosts entry holds it).
func (h *Hook) addrsInUse(bridge, except string) func(netip.Addr) bool {
	var used map[netip.Addr]bool
	return func(a netip.Addr) bool {
		if used == nil {
			used = map[netip.Addr]bool{}
			entries, _ := h.Kernel.DHCPHosts(bridge)
			for tap, e := range entries {
				if tap != except && e.IP.IsValid() {
					used[e.IP] = true
				}
			}
		}
		return used[a]
	}
}

// forgetDHCP plans what undoes a record's DHCP: the TAP's hosts entry
// removed and dnsmasq told (SIGHUP), and the guest's leases released, so
// its name stops resolving and its address is free at once. Nil when the
// record made none.
func (h *Hook) forgetDHCP(rec *state.Record) []plan.Step {
	if rec == nil || rec.Bridge == "" || h.DHCP == nil {
		return nil
	}
	if spec := h.Policy.Spec(rec.Bridge); !rec.DHCP && (spec == nil || spec.DHCP == nil) {
		return nil // no entry was written, and none could have been
	}
	e, had, err := h.Kernel.DHCPHost(rec.Bridge, rec.TAP)
	if err != nil || (!had && !rec.DHCP) {
		return nil
	}
	del := &plan.DelDHCPHost{Bridge: rec.Bridge, TAP: rec.TAP, Dir: h.DHCP.Layout.Paths(rec.Bridge).HostsDir}
	if had {
		del.Entry = &e
	}
	mac, _ := net.ParseMAC(rec.GuestMAC)
	if mac == nil && had {
		mac = e.MAC
	}
	if mac != nil {
		del.Releases = h.releases(rec.Bridge, mac, e.Name)
	}
	return []plan.Step{del}
}

// releases lists the live leases of mac on the bridge: its DHCPv4 leases,
// each with the bridge's address that serves it, and its DHCPv6 leases,
// known by a client DUID made from mac or, for a DUID that names no MAC,
// by the name its hosts entry gave it (name; "": none).
func (h *Hook) releases(bridge string, mac net.HardwareAddr, name string) []plan.Release {
	leases, _, err := h.Kernel.DHCPLeases(bridge)
	if err != nil || len(leases) == 0 {
		return nil
	}
	br, err := h.Kernel.LinkByName(bridge)
	if err != nil {
		return nil // the bridge is gone, and its dnsmasq with it
	}
	addrs, err := h.Kernel.Addrs(br.Index)
	if err != nil {
		return nil
	}
	var out []plan.Release
	now := h.now()
	for _, l := range leases {
		if l.Expired(now) {
			continue
		}
		if l.IPv6 {
			if l.HasMAC(mac) || (name != "" && l.Hostname == name) {
				out = append(out, plan.Release{IP: l.IP, MAC: mac, ClientID: dhcp.ClientID(l.ClientID), IAID: l.IAID, TA: l.TA, ServerDUID: dhcp.ClientID(l.ServerDUID)})
			}
			continue
		}
		if !l.HasMAC(mac) {
			continue
		}
		for _, a := range addrs {
			if a.Prefix.Addr().Is4() && a.Prefix.Masked().Contains(l.IP) {
				out = append(out, plan.Release{Server: a.Prefix.Addr(), IP: l.IP, MAC: mac, ClientID: dhcp.ClientID(l.ClientID)})
				break
			}
		}
	}
	return out
}

// sweepDHCPHosts removes the hosts entries no record accounts for (a TAP
// moved to another bridge, an ifup killed between its record and its
// entry), so dnsmasq never keeps an address for a guest that is gone.
// Called with the lock held.
func (h *Hook) sweepDHCPHosts() error {
	if h.DHCP == nil {
		return nil
	}
	recs, err := h.State.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range h.Policy.BridgeNames() {
		entries, err := h.Kernel.DHCPHosts(name)
		if err != nil || len(entries) == 0 {
			errs = append(errs, err)
			continue
		}
		for tap := range entries {
			if slices.ContainsFunc(recs, func(r *state.Record) bool { return r.TAP == tap && r.Bridge == name && r.DHCP }) {
				continue
			}
			steps := h.forgetDHCP(&state.Record{TAP: tap, Bridge: name, DHCP: true})
			a := &plan.Applier{Kernel: h.Kernel, Log: h.Log}
			if err := a.BestEffort("gc "+tap, steps, nil); err != nil {
				errs = append(errs, err)
				continue
			}
			h.Log.Change("gc: removed %s's hosts entry for %s's dnsmasq: no record accounts for it", tap, name)
		}
	}
	return exit.Join(errs...)
}

// Lease is one row of `ifhook leases`: a guest's lease, or the entry that
// waits for its guest to ask.
type Lease struct {
	Bridge string `json:"bridge"`
	MAC    string `json:"mac,omitempty"` // "" for DHCPv6 leases (dnsmasq keys them by DUID)
	IP     string `json:"ip,omitempty"`
	VM     string `json:"vm,omitempty"`
	TAP    string `json:"tap,omitempty"`
	Name   string `json:"name,omitempty"` // the DNS name the lease has
	// Expiry is when the lease runs out; nil for an infinite lease or an
	// entry with no lease yet.
	Expiry *time.Time `json:"expiry,omitempty"`
	// Kind is "reserved" (an address set aside for it) or "dynamic".
	Kind string `json:"kind"`
	// State is "leased", "waiting" (an entry, no lease yet) or "expired".
	State string `json:"state"`
}

// Leases lists the leases and hosts entries of the bridges that serve
// DHCP (the named ones, or all of the policy's).
func (h *Hook) Leases(bridges ...string) ([]Lease, error) {
	if len(bridges) == 0 {
		for _, n := range h.Policy.BridgeNames() {
			if h.Policy.Spec(n).DHCP != nil {
				bridges = append(bridges, n)
			}
		}
	}
	recs, err := h.State.List()
	if err != nil {
		return nil, exit.Op("leases", "", err)
	}
	var out []Lease
	now := h.now()
	for _, br := range bridges {
		if err := policy.ValidIfName(br); err != nil {
			return out, exit.Op("leases", "", exit.New(exit.Usage, "%q: %v", br, err))
		}
		spec := h.Policy.Spec(br)
		if spec == nil || spec.DHCP == nil {
			return out, exit.Op("leases", br, exit.New(exit.Usage, "%s serves no DHCP: the policy has no [bridges.%s.dhcp] table", br, br))
		}
		leases, problems, err := h.Kernel.DHCPLeases(br)
		if err != nil {
			return out, exit.Op("leases", br, err)
		}
		for _, p := range problems {
			h.Log.Notice("leases %s: %s", br, p)
		}
		entries, err := h.Kernel.DHCPHosts(br)
		if err != nil {
			return out, exit.Op("leases", br, err)
		}
		byMAC := map[string]string{} // MAC -> TAP
		for tap, e := range entries {
			byMAC[e.MAC.String()] = tap
		}
		vmOf := func(tap string) string {
			for _, r := range recs {
				if r.TAP == tap && r.Bridge == br {
					return r.VM
				}
			}
			return ""
		}
		taps := slices.Sorted(maps.Keys(entries))
		seen := map[string]bool{}
		for _, l := range leases {
			row := Lease{Bridge: br, IP: l.IP.String(), Name: l.Hostname, Kind: "dynamic", State: "leased"}
			if !l.Expiry.IsZero() {
				exp := l.Expiry
				row.Expiry = &exp
				if l.Expired(now) {
					row.State = "expired"
				}
			}
			if l.MAC != nil {
				row.MAC = l.MAC.String()
				if tap, ok := byMAC[row.MAC]; ok {
					row.TAP, row.VM = tap, vmOf(tap)
					if entries[tap].IP == l.IP {
						row.Kind = "reserved"
					}
					seen[tap] = true
				}
				if spec.Host("", l.MAC) != nil {
					row.Kind = "reserved"
				}
			}
			if l.IPv6 {
				// dnsmasq keys a DHCPv6 lease by the client's DUID: it is a
				// guest's when the DUID is made from its MAC, or when it
				// carries the name the guest's entry gave.
				for _, tap := range taps {
					if e := entries[tap]; l.HasMAC(e.MAC) || (e.Name != "" && e.Name == l.Hostname) {
						row.MAC, row.TAP, row.VM = e.MAC.String(), tap, vmOf(tap)
						break
					}
				}
			}
			out = append(out, row)
		}
		for tap, e := range entries {
			if seen[tap] {
				continue
			}
			row := Lease{Bridge: br, MAC: e.MAC.String(), TAP: tap, VM: vmOf(tap), Name: e.Name, Kind: "dynamic", State: "waiting"}
			if e.IP.IsValid() {
				row.IP, row.Kind = e.IP.String(), "reserved"
			}
			out = append(out, row)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Bridge != out[j].Bridge {
			return out[i].Bridge < out[j].Bridge
		}
		a, _ := netip.ParseAddr(out[i].IP)
		b, _ := netip.ParseAddr(out[j].IP)
		return a.Less(b)
	})
	return out, nil
}

// guestAddr is the IPv4 address a record's guest has on its bridge: the
// one reserved for it, else the lease dnsmasq gave its MAC, else "".
func (h *Hook) guestAddr(r *state.Record, leases map[string][]dhcp.Lease) string {
	if r.IP != "" || !r.DHCP || h.DHCP == nil {
		return r.IP
	}
	ls, ok := leases[r.Bridge]
	if !ok {
		ls, _, _ = h.Kernel.DHCPLeases(r.Bridge)
		leases[r.Bridge] = ls
	}
	mac, err := net.ParseMAC(r.GuestMAC)
	if err != nil {
		return ""
	}
	// Its DHCPv4 address, else (a bridge with DHCPv6 alone) the first of
	// its DHCPv6 leases.
	now, v6 := h.now(), ""
	for _, l := range ls {
		if !l.HasMAC(mac) || l.Expired(now) {
			continue
		}
		if !l.IPv6 {
			return l.IP.String()
		}
		if v6 == "" {
			v6 = l.IP.String()
		}
	}
	return v6
}

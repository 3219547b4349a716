package bridge

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
)

// Finding is one trap `ifhook doctor` found: what is wrong, why it breaks
// guest networking, and how to fix it.
type Finding struct {
	Bridge  string `json:"bridge,omitempty"` // "" for host-wide findings
	Check   string `json:"check"`
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
}

func (f Finding) String() string {
	where := "host"
	if f.Bridge != "" {
		where = escape.String(f.Bridge)
	}
	return fmt.Sprintf("%s: %s: %s\n  fix: %s", where, f.Check, escape.String(f.Problem), escape.String(f.Fix))
}

// longForwardDelay is the STP forward delay past which doctor warns: a
// port waits twice that before it forwards a guest's first packet.
const longForwardDelay = 4 // seconds

// madeBy reports whether a record's steps made the bridge that is there now.
func madeBy(done []plan.Recorded, m *kernel.Model, name string) bool {
	for _, s := range done {
		if ab, ok := s.(*plan.AddBridge); ok && ab.Name == name {
			if steps, err := ab.Reverse(m); err == nil && len(steps) > 0 {
				return true
			}
		}
	}
	return false
}

// Doctor checks the bridges (the policy's and every bridge on the host when
// names is empty) for the traps that silently break guest networking. It
// changes nothing.
func (m *Manager) Doctor(names ...string) ([]Finding, error) {
	bridges, err := m.doctorBridges(names)
	if err != nil {
		return nil, exit.Op("doctor", "", err)
	}
	var out []Finding
	out = append(out, m.doctorNetfilter(len(bridges) > 0)...)
	for _, name := range bridges {
		fs, err := m.doctorBridge(name)
		if err != nil {
			return out, exit.Op("doctor", name, err)
		}
		out = append(out, fs...)
	}
	return out, nil
}

// doctorBridges returns the bridges to check.
func (m *Manager) doctorBridges(names []string) ([]string, error) {
	if len(names) > 0 {
		for _, name := range names {
			if err := policy.ValidIfName(name); err != nil {
				return nil, exit.New(exit.Usage, "%s: %v", escape.Quote(name), err)
			}
		}
		return names, nil
	}
	seen := map[string]bool{}
	for _, name := range m.Policy.BridgeNames() {
		seen[name] = true
	}
	brs, err := m.Kernel.Bridges()
	if err != nil {
		return nil, exit.Sys(err, "list bridges")
	}
	for _, b := range brs {
		seen[b.Name] = true
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

// doctorNetfilter: with br_netfilter loaded, bridged frames go through the
// IP firewall's FORWARD chain; a DROP policy there (Docker sets one)
// silently drops guests' traffic on the bridge.
func (m *Manager) doctorNetfilter(any bool) []Finding {
	if !any {
		return nil
	}
	v, err := m.Kernel.Sysctl("net.bridge.bridge-nf-call-iptables")
	if err != nil || v != "1" {
		return nil // br_netfilter not loaded, or not passing frames up
	}
	chains, err := m.Kernel.ForwardDropChains()
	if err != nil || len(chains) == 0 {
		return nil
	}
	return []Finding{{
		Check:   "br_netfilter",
		Problem: fmt.Sprintf("br_netfilter passes bridged frames to the IP firewall, and its forward chain drops them by default (%s): guests on a bridge cannot reach each other or the LAN", strings.Join(chains, "; ")),
		Fix:     "sysctl -w net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 (if nothing needs it), or accept bridged traffic: iptables -I FORWARD -m physdev --physdev-is-bridged -j ACCEPT",
	}}
}

func (m *Manager) doctorBridge(name string) ([]Finding, error) {
	spec := m.Policy.Spec(name)
	var out []Finding
	add := func(check, problem, fix string, args ...any) {
		out = append(out, Finding{Bridge: name, Check: check, Problem: problem, Fix: fmt.Sprintf(fix, args...)})
	}
	br, err := m.Kernel.LinkByName(name)
	if kernel.IsNotFound(err) {
		if spec == nil {
			add("exists", "no such bridge", "create it, or describe it in the policy as [bridges.%s]", name)
			return out, nil
		}
		return m.doctorSpecOnly(spec), nil
	}
	if err != nil {
		return nil, exit.Sys(err, "look up %s", name)
	}
	if !br.IsBridge() {
		add("exists", fmt.Sprintf("%s is %s, not a bridge", name, br.Describe()), "name a bridge")
		return out, nil
	}
	if delay := br.ForwardDelay / 100; br.STP && delay > longForwardDelay {
		add("stp", fmt.Sprintf("STP is on with a forward delay of %d s: each new port listens and learns for %d s before it forwards, and a guest's DHCP request in that time is lost", delay, 2*delay),
			"ip link set %s type bridge stp_state 0 (a bridge of guests seldom needs STP), or forward_delay 200 (2 s); in the policy: stp = false or forward_delay = 2", name)
	}
	pinned := ""
	if spec != nil {
		st, err := m.status(spec)
		if err != nil {
			return nil, err
		}
		for _, p := range st.Problems {
			fix := "ifhook setup " + name
			if st.Interrupted {
				fix = "ifhook setup " + name + " (or ifhook teardown " + name + ")"
			}
			add(problemCheck(p), p, "%s", fix)
		}
		if spec.Model == policy.Bridged {
			pinned = spec.Uplink // the bridge takes its uplink's MAC on purpose
		}
	}
	ports, err := m.Kernel.Ports(br.Index)
	if err != nil {
		return nil, exit.Sys(err, "list ports of %s", name)
	}
	for _, p := range ports {
		if p.MTU < br.MTU {
			add("mtu", fmt.Sprintf("port %s has MTU %d, below the bridge's %d: larger frames from other ports are dropped on it", p.Name, p.MTU, br.MTU),
				"ip link set %s mtu %d", p.Name, br.MTU)
		}
		if m.Kernel.IsWireless(p.Name) {
			add("wireless", fmt.Sprintf("port %s is a Wi-Fi interface: most access points drop frames from MACs they did not associate, so guests behind it get nothing", p.Name),
				"use a nat bridge (model = \"nat\", uplink = %q) for guests behind Wi-Fi", p.Name)
		}
		if string(p.MAC) == string(br.MAC) && p.Name != pinned {
			add("mac", fmt.Sprintf("the bridge uses port %s's MAC %s: it follows its lowest port's MAC, so when %s leaves, the bridge's MAC changes and neighbours lose it for a while", p.Name, br.MAC, p.Name),
				"pin it: ip link set %s address %s", name, br.MAC)
		}
	}
	if spec != nil && spec.Model == policy.Bridged && spec.Uplink != "" && m.Kernel.IsWireless(spec.Uplink) {
		add("wireless", fmt.Sprintf("uplink %s is a Wi-Fi interface: it cannot be bridged on most access points", spec.Uplink),
			"use model = \"nat\" with uplink = %q", spec.Uplink)
	}
	if spec != nil && spec.DHCP != nil {
		out = append(out, m.doctorFirewall(spec)...)
	}
	out = append(out, m.doctorGuestMACs(name, br, ports)...)
	return out, nil
}

// doctorFirewall: ifhook's own table accepts DHCP and DNS on the bridge,
// but an accept in one table does not override another table's drop: a
// firewalld, ufw or Docker chain whose policy is drop still drops the
// guests' DHCP and DNS (input), or their traffic past the host (forward).
func (m *Manager) doctorFirewall(spec *policy.BridgeSpec) []Finding {
	var out []Finding
	if chains, err := m.Kernel.InputDropChains(); err == nil && len(chains) > 0 {
		out = append(out, Finding{Bridge: spec.Name, Check: "firewall",
			Problem: fmt.Sprintf("the input chain %s drops by default: unless it accepts them, guests' DHCP and DNS queries to %s are dropped before dnsmasq sees them (ifhook's own accept cannot override another table's drop)", strings.Join(chains, "; "), spec.Name),
			Fix:     fmt.Sprintf("accept them in that chain, e.g. nft insert rule <family> <table> <chain> iifname %q meta l4proto { tcp, udp } th dport { 53, 67, 547 } accept; with firewalld: firewall-cmd --zone=trusted --change-interface=%s", spec.Name, spec.Name)})
	}
	if spec.Model.Routes() {
		if chains, err := m.Kernel.ForwardDropChains(); err == nil && len(chains) > 0 {
			out = append(out, Finding{Bridge: spec.Name, Check: "firewall",
				Problem: fmt.Sprintf("the forward chain %s drops by default: unless it accepts them, guests on %s reach nothing past the host", strings.Join(chains, "; "), spec.Name),
				Fix:     fmt.Sprintf("accept them there, e.g. nft insert rule <family> <table> <chain> iifname %q accept and oifname %q ct state established,related accept", spec.Name, spec.Name)})
		}
	}
	return out
}

// doctorGuestMACs: two ports of one bridge whose guests use the same MAC,
// by ifhook's records (the MAC read from QEMU's command line or libvirt)
// or by what the bridge learned (a NIC hot-plugged with no MAC at its
// ifup, a TAP ifhook did not attach): the bridge delivers that MAC's
// frames to one of them only, and both guests lose packets.
func (m *Manager) doctorGuestMACs(name string, br *kernel.Link, ports []*kernel.Link) []Finding {
	recs, _ := m.State.List()
	type carrier struct {
		port, vm, how string
	}
	byMAC := map[string][]carrier{}
	seen := map[string]bool{}
	addCarrier := func(mac, port, vm, how string) {
		if seen[mac+"\x00"+port] {
			return
		}
		seen[mac+"\x00"+port] = true
		byMAC[mac] = append(byMAC[mac], carrier{port, vm, how})
	}
	portByIndex := map[int]*kernel.Link{}
	vmOf := map[string]string{}
	for _, p := range ports {
		portByIndex[p.Index] = p
		for _, r := range recs {
			if r.TAP != p.Name || r.Index != p.Index {
				continue
			}
			vmOf[p.Name] = r.VM
			if r.GuestMAC != "" && r.Bridge == name {
				addCarrier(r.GuestMAC, p.Name, r.VM, "recorded")
			}
		}
	}
	if learned, err := m.Kernel.LearnedMACs(br.Index); err == nil {
		for _, e := range learned {
			if p := portByIndex[e.Port]; p != nil {
				addCarrier(e.MAC.String(), p.Name, vmOf[p.Name], "learned by the bridge")
			}
		}
	}
	var macs []string
	for mac, cs := range byMAC {
		if len(cs) > 1 {
			macs = append(macs, mac)
		}
	}
	sort.Strings(macs)
	var out []Finding
	for _, mac := range macs {
		var who, vms []string
		for _, c := range byMAC[mac] {
			d := c.port
			if c.vm != "" {
				d += " (VM " + escape.Quote(c.vm) + ")"
				vms = append(vms, c.vm)
			}
			who = append(who, d+", "+c.how)
		}
		hint := "ifhook mac NAME"
		if len(vms) > 0 {
			hint = "ifhook mac " + vms[len(vms)-1]
		}
		out = append(out, Finding{Bridge: name, Check: "guest-mac",
			Problem: fmt.Sprintf("ports %s carry the same guest MAC %s: the bridge sends its frames to one of them only, so both guests lose packets", strings.Join(who, " and "), mac),
			Fix:     fmt.Sprintf("give one of the guests another MAC (%s prints a stable one) and restart or re-plug its NIC", hint)})
	}
	return out
}

// problemCheck names the check a status problem belongs to.
func problemCheck(p string) string {
	switch {
	case strings.Contains(p, "dnsmasq"), strings.Contains(p, "DHCP"):
		return "dhcp"
	case strings.Contains(p, "NAT"):
		return "nat"
	case strings.Contains(p, "forward"):
		return "forwarding"
	case strings.Contains(p, "address"):
		return "address"
	case strings.Contains(p, "uplink"):
		return "uplink"
	case strings.Contains(p, "interrupted"):
		return "interrupted"
	}
	return "setup"
}

// doctorSpecOnly checks a policy bridge that does not exist yet.
func (m *Manager) doctorSpecOnly(spec *policy.BridgeSpec) []Finding {
	var out []Finding
	if spec.STP && spec.ForwardDelay > longForwardDelay {
		out = append(out, Finding{Bridge: spec.Name, Check: "stp", Problem: fmt.Sprintf("the policy asks for STP with a forward delay of %d s: guests wait %d s for the network", spec.ForwardDelay, 2*spec.ForwardDelay), Fix: "stp = false, or forward_delay = 2"})
	}
	if spec.Model == policy.Bridged && spec.Uplink != "" && m.Kernel.IsWireless(spec.Uplink) {
		out = append(out, Finding{Bridge: spec.Name, Check: "wireless", Problem: fmt.Sprintf("uplink %s is a Wi-Fi interface: it cannot be bridged on most access points", spec.Uplink), Fix: fmt.Sprintf("use model = \"nat\" with uplink = %q", spec.Uplink)})
	}
	if _, err := m.planSetup(spec, false); err != nil {
		out = append(out, Finding{Bridge: spec.Name, Check: "setup", Problem: err.Error(), Fix: "fix the policy or the host, then: ifhook setup " + spec.Name})
	}
	return out
}

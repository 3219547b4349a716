package bridge

import (
	"bytes"
	"fmt"

	"github.com/ifhook/ifhook/ifhook/dhcp"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nftable"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
)

// dhcpFeature is a bridge's DHCP and DNS server ([bridges.NAME.dhcp]): its
// rules in ifhook's nftables table, then dnsmasq, started with the
// configuration package dhcp renders, or restarted when that changed
// (setup) or it is dead (setup, and the next ifup).
type dhcpFeature struct{}

func (dhcpFeature) query(spec *policy.BridgeSpec, q *kernel.Query) {
	if spec.DHCP != nil {
		q.Servers = append(q.Servers, spec.Name)
	}
}

// Conf renders the configuration of spec's dnsmasq for a bridge of MTU
// mtu in the host env describes.
func Conf(pol *policy.Policy, spec *policy.BridgeSpec, mtu int, env kernel.DHCPEnv) []byte {
	return dhcp.Config{Spec: spec, Where: where(pol, spec), MTU: mtu, Paths: env.Layout.Paths(spec.Name), User: env.User}.Render()
}

func (dhcpFeature) plan(pl *planner) error {
	spec := pl.spec
	if spec.DHCP == nil {
		return nil
	}
	env := pl.m.DHCPEnv()
	if env.Missing != nil {
		return exit.As(exit.KindOf(env.Missing), fmt.Errorf("bridge %s serves DHCP (%s:%d): %w", spec.Name, pl.pol.File, spec.DHCP.Line, env.Missing))
	}
	rules := nftable.Services{Bridge: spec.Name}
	has, err := pl.m.HasServices(spec.Name)
	if err != nil {
		return err
	}
	if !has {
		if err := pl.add(&plan.AddServices{Rules: rules}); err != nil {
			return err
		}
	}
	mtu := pl.p.MTU
	conf := Conf(pl.pol, spec, mtu, env)
	sv, err := pl.m.DHCPServer(spec.Name, true)
	if err != nil {
		return err
	}
	start := &plan.StartDHCP{Bridge: spec.Name, Conf: conf, ConfPath: env.Layout.Paths(spec.Name).Conf}
	switch {
	case sv.Running && bytes.Equal(sv.Conf, conf):
		return nil
	case sv.Running && !pl.repair:
		return nil // ifup joins a running server as it is; setup updates it
	case sv.Running:
		start.Old, start.Why = sv.Conf, "restart: its configuration changed"
	case sv.HasConf || len(sv.Procs) > 0:
		start.Why = "restart: it is not running"
	}
	return pl.add(start)
}

func (dhcpFeature) status(spec *policy.BridgeSpec, m *kernel.Model, st *Status) {
	if spec.DHCP == nil {
		return
	}
	d := &DHCPStatus{Domain: spec.DHCP.Domain, IPv6: string(spec.DHCP.IPv6)}
	for _, r := range spec.DHCP.Ranges {
		d.Ranges = append(d.Ranges, r.String())
	}
	st.DHCP = d
	sv, err := m.DHCPServer(spec.Name, true)
	if err != nil {
		st.Problems = append(st.Problems, "cannot tell whether its dnsmasq runs: "+err.Error())
		return
	}
	d.PID, d.Running = sv.PID, sv.Running
	if has, err := m.HasServices(spec.Name); err == nil && !has && st.Exists {
		st.Problems = append(st.Problems, "its DHCP and DNS rules are missing from ifhook's nftables table")
	}
	switch {
	case sv.Running:
	case !st.Exists:
	case sv.HasConf:
		st.Problems = append(st.Problems, "its dnsmasq is not running: guests get no DHCP lease and no DNS (the next ifup restarts it)")
	default:
		st.Problems = append(st.Problems, "its dnsmasq is not running: guests get no DHCP lease and no DNS")
	}
}

// DHCPStatus is what status says of a bridge's DHCP and DNS server.
type DHCPStatus struct {
	Running   bool     `json:"running"`
	PID       int      `json:"pid,omitempty"`
	Listening []string `json:"listening,omitempty"`
	Ranges    []string `json:"ranges,omitempty"`
	Domain    string   `json:"domain"`
	IPv6      string   `json:"ipv6"`
	// Log is the last lines of its log when it is not running.
	Log []string `json:"log,omitempty"`
}

// EnsureDHCP plans starting the DHCP server of a bridge that exists but
// whose server an ifup found not running (dead, or never started because
// the policy gained its dhcp table since): the dhcp feature's steps only,
// for the ifup's plan, journalled with Journal. Nil when there is nothing
// to do.
func (m *Manager) EnsureDHCP(spec *policy.BridgeSpec) (*Plan, error) {
	var q kernel.Query
	q.Links = []string{spec.Name}
	dhcpFeature{}.query(spec, &q)
	obs, err := kernel.Observe(m.Kernel, q)
	if err != nil {
		return nil, observeErr(err, spec, m.Policy)
	}
	rec, _, _, err := m.readRecord(spec.Name)
	if err != nil {
		return nil, err
	}
	br, err := obs.LinkByName(spec.Name)
	if err != nil {
		return nil, exit.Sys(err, "look up %s", spec.Name)
	}
	p := &Plan{Op: "setup", Bridge: spec.Name, Model: spec.Model, Where: where(m.Policy, spec), record: rec, MTU: br.MTU}
	pl := &planner{pol: m.Policy, spec: spec, m: obs.Clone(), br: br, ref: plan.Ref(br), refs: &plan.Refs{}, p: p}
	if err := (dhcpFeature{}).plan(pl); err != nil {
		return p, err
	}
	if len(p.Steps) == 0 {
		return nil, nil
	}
	p.Notes = append(p.Notes, plan.Notef(plan.Warning, "%s's dnsmasq was not running: starting it", spec.Name))
	return p, nil
}

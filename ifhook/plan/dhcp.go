package plan

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ifhook/ifhook/ifhook/dhcp"
	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nftable"
)

// StartDHCP starts a bridge's DHCP and DNS server (dnsmasq) with Conf, or
// restarts it when Old, the configuration it runs with, differs. Undoing
// it stops the server (Old nil) or restarts it with Old.
type StartDHCP struct {
	Bridge string
	Conf   []byte
	Old    []byte
	// ConfPath is where the configuration goes, for the command shown
	// ("" from a record).
	ConfPath string
	// Why says why a server that exists is (re)started: "not running",
	// "configuration changed".
	Why string
}

// StopDHCP stops a bridge's server and removes its files but its leases;
// Conf, when known, lets the undo start it again.
type StopDHCP struct {
	Bridge string
	PID    int
	Conf   []byte
}

func (s *StartDHCP) String() string {
	path := s.ConfPath
	if path == "" {
		path = "…/dnsmasq/" + s.Bridge + ".conf"
	}
	out := "dnsmasq --conf-file=" + escape.String(path)
	if s.Why != "" {
		out += " # " + s.Why
	}
	return out
}

func (s *StopDHCP) String() string {
	pid := "$(cat " + s.Bridge + ".pid)"
	if s.PID != 0 {
		pid = strconv.Itoa(s.PID)
	}
	return "kill " + pid + " # " + escape.String(s.Bridge) + "'s dnsmasq; its files go, its leases stay"
}

func (s *StartDHCP) Do(k kernel.Kernel, _ *Refs) error {
	if s.Conf == nil {
		return exit.New(exit.Internal, "%s: no configuration (a recorded step is only undone)", s)
	}
	return serverErr(k.StartDHCPServer(s.Bridge, s.Conf), s, "")
}

func (s *StartDHCP) Undo(k kernel.Kernel, _ *Refs) error {
	if s.Old != nil {
		return serverErr(k.StartDHCPServer(s.Bridge, s.Old), s, "undo ")
	}
	return serverErr(k.StopDHCPServer(s.Bridge), s, "undo ")
}

func (s *StopDHCP) Do(k kernel.Kernel, _ *Refs) error {
	return serverErr(k.StopDHCPServer(s.Bridge), s, "")
}

func (s *StopDHCP) Undo(k kernel.Kernel, _ *Refs) error {
	if s.Conf == nil {
		return nil
	}
	return serverErr(k.StartDHCPServer(s.Bridge, s.Conf), s, "undo ")
}

// serverErr keeps the Kind of a server's failure (dnsmasq missing or
// refusing to start: Unavailable), whose message names the server already;
// an undo says which step it undid.
func serverErr(err error, s Step, what string) error {
	if err == nil || what == "" {
		return err
	}
	return exit.As(exit.KindOf(err), fmt.Errorf("%s%s: %w", what, s, err))
}

func (s *StartDHCP) Encode(*Refs) string {
	return newFields("dnsmasq").put("bridge", s.Bridge).String()
}

func (s *StartDHCP) Reverse(m *kernel.Model) ([]Step, error) {
	sv, err := m.DHCPServer(s.Bridge, true)
	if err != nil {
		return nil, err
	}
	if !sv.HasConf && !sv.Running && len(sv.Procs) == 0 {
		return nil, nil
	}
	return []Step{&StopDHCP{Bridge: s.Bridge, PID: sv.PID, Conf: sv.Conf}}, nil
}

func (s *StartDHCP) Needs(q *kernel.Query) { q.Servers = appendNew(q.Servers, s.Bridge) }

// AddServices adds a bridge's DHCP and DNS rules to ifhook's nftables
// table; DelServices removes them.
type AddServices struct{ Rules nftable.Services }

type DelServices struct{ Rules nftable.Services }

func (s *AddServices) String() string { return s.Rules.String() }
func (s *DelServices) String() string { return s.Rules.DeleteString() }

func (s *AddServices) Do(k kernel.Kernel, _ *Refs) error {
	return natErr(k.AddServices(s.Rules), s, "")
}
func (s *AddServices) Undo(k kernel.Kernel, _ *Refs) error {
	return natErr(k.DelServices(s.Rules), s, "undo ")
}
func (s *DelServices) Do(k kernel.Kernel, _ *Refs) error {
	return natErr(k.DelServices(s.Rules), s, "")
}
func (s *DelServices) Undo(k kernel.Kernel, _ *Refs) error {
	return natErr(k.AddServices(s.Rules), s, "undo ")
}

func (s *AddServices) Encode(*Refs) string {
	return newFields("nft-dhcp").put("bridge", s.Rules.Bridge).String()
}

func (s *AddServices) Reverse(m *kernel.Model) ([]Step, error) {
	has, err := m.HasServices(s.Rules.Bridge)
	if err != nil || !has {
		return nil, err
	}
	return []Step{&DelServices{Rules: s.Rules}}, nil
}

func (s *AddServices) Needs(q *kernel.Query) { q.Servers = appendNew(q.Servers, s.Rules.Bridge) }

// SetDHCPHost writes a TAP's hosts entry, which tells the bridge's server
// the guest's MAC, address and name; Old is the entry it replaces (nil:
// none). Dir is the hosts directory, for the command shown.
type SetDHCPHost struct {
	Bridge, TAP string
	Entry       dhcp.Entry
	Old         *dhcp.Entry
	Dir         string
}

// Release is a lease DelDHCPHost gives up on the guest's behalf.
type Release = kernel.Release

// DelDHCPHost removes a TAP's hosts entry and has the server forget it,
// then releases the guest's leases, so its name stops resolving and its
// address is free at once. Entry is what it removes (for the undo).
type DelDHCPHost struct {
	Bridge, TAP string
	Entry       *dhcp.Entry
	Releases    []Release
	Dir         string
}

func hostsPath(dir, bridge, tap string) string {
	if dir == "" {
		dir = "…/dnsmasq/" + bridge + ".hosts"
	}
	return escape.String(filepath.Join(dir, tap))
}

func (s *SetDHCPHost) String() string {
	return fmt.Sprintf("echo %s > %s", s.Entry, hostsPath(s.Dir, s.Bridge, s.TAP))
}

func (s *DelDHCPHost) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rm %s; kill -HUP $(cat %s.pid)", hostsPath(s.Dir, s.Bridge, s.TAP), s.Bridge)
	for _, r := range s.Releases {
		if r.IP.Is6() {
			// DUIDs in colon hex, as dhcp_release6 takes them (and as a
			// HardwareAddr of any length prints).
			fmt.Fprintf(&b, "; dhcp_release6 --iface %s --client-id %s --server-id %s --iaid %d --ip %s", escape.String(s.Bridge), net.HardwareAddr(r.ClientID), net.HardwareAddr(r.ServerDUID), r.IAID, r.IP)
			continue
		}
		fmt.Fprintf(&b, "; dhcp_release %s %s %s", escape.String(s.Bridge), r.IP, r.MAC)
	}
	return b.String()
}

func (s *SetDHCPHost) Do(k kernel.Kernel, _ *Refs) error {
	return hostErr(k.SetDHCPHost(s.Bridge, s.TAP, s.Entry), s, "")
}

func (s *SetDHCPHost) Undo(k kernel.Kernel, _ *Refs) error {
	if s.Old != nil {
		return hostErr(k.SetDHCPHost(s.Bridge, s.TAP, *s.Old), s, "undo ")
	}
	return hostErr(k.DelDHCPHost(s.Bridge, s.TAP), s, "undo ")
}

func (s *DelDHCPHost) Do(k kernel.Kernel, _ *Refs) error {
	if err := k.DelDHCPHost(s.Bridge, s.TAP); err != nil {
		return hostErr(err, s, "")
	}
	var errs []error
	for _, r := range s.Releases {
		errs = append(errs, k.ReleaseDHCP(s.Bridge, r))
	}
	return hostErr(exit.Join(errs...), s, "")
}

func (s *DelDHCPHost) Undo(k kernel.Kernel, _ *Refs) error {
	if s.Entry == nil {
		return nil
	}
	return hostErr(k.SetDHCPHost(s.Bridge, s.TAP, *s.Entry), s, "undo ")
}

func hostErr(err error, s Step, what string) error {
	if err == nil {
		return nil
	}
	return exit.As(exit.KindOf(err), fmt.Errorf("%s%s: %w", what, s, err))
}

package kernel

import (
	"errors"

	"github.com/ifhook/ifhook/ifhook/dhcp"
	"github.com/ifhook/ifhook/ifhook/dnsmasq"
)

// Server is what is known of a bridge's DHCP and DNS server.
type Server = dnsmasq.State

// Servers runs the bridges' DHCP and DNS servers (package dnsmasq) in the
// namespace, and keeps the hosts entries that tell them about guests.
type Servers interface {
	// DHCPEnv says where the servers' files are, which user they run as,
	// and whether dnsmasq is installed at all: what planning needs to
	// write their configuration.
	DHCPEnv() DHCPEnv
	// DHCPServer says how the bridge's server is: without full, as cheaply
	// as ifup's hot path needs (its pid file and a kill(pid, 0)).
	DHCPServer(bridge string, full bool) (Server, error)
	// StartDHCPServer (re)starts it with the configuration conf.
	StartDHCPServer(bridge string, conf []byte) error
	// StopDHCPServer ends it and removes its files but its leases; none
	// running is not an error.
	StopDHCPServer(bridge string) error
	// DHCPHost returns the TAP's hosts entry, and whether there is one.
	DHCPHost(bridge, tap string) (dhcp.Entry, bool, error)
	// SetDHCPHost writes it; DelDHCPHost removes it and has the server
	// forget it (none is not an error).
	SetDHCPHost(bridge, tap string, e dhcp.Entry) error
	DelDHCPHost(bridge, tap string) error
	// DHCPHosts returns every hosts entry of the bridge, by TAP.
	DHCPHosts(bridge string) (map[string]dhcp.Entry, error)
	// DHCPLeases returns what the bridge's lease file says, and what in it
	// could not be read.
	DHCPLeases(bridge string) ([]dhcp.Lease, []string, error)
	// ReleaseDHCP gives up a guest's lease on the bridge's server
	// (DHCPRELEASE).
	ReleaseDHCP(bridge string, r Release) error
}

// Release is a lease given up on a guest's behalf (dnsmasq.Release).
type Release = dnsmasq.Release

// DHCPEnv is what planning a bridge's DHCP server takes from the host.
type DHCPEnv struct {
	Layout dnsmasq.Layout
	User   string
	// Missing is why dnsmasq cannot run (not installed); nil when it can.
	Missing error
}

// DefaultDHCPEnv is a host with dnsmasq, its files in the default places.
func DefaultDHCPEnv() DHCPEnv {
	return DHCPEnv{Layout: dnsmasq.Layout{RunDir: "/run/ifhook/dnsmasq", DataDir: dnsmasq.DefaultDataDir}, User: "dnsmasq"}
}

// ErrNoServers is returned by a kernel that was given no way to run
// servers (Real without SetServers).
var ErrNoServers = errors.New("no DHCP server runner configured")

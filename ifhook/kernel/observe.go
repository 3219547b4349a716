package kernel

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Query says what Observe reads into a Model.
type Query struct {
	Links    []string // links by name, present or absent, and the master of each
	AllAddrs bool     // every address of every link (to find one already in use)
	Addrs    []string // the addresses of these links
	Routes   []string // the routes of these links
	Ports    []string // the ports of these bridges
	Sysctls  []string // sysctl keys; a missing key is not an error
	NAT      bool     // ifhook's NAT table and rules
	Wireless []string // whether these links are Wi-Fi interfaces
	Managers []string // the programs that configure these links
	Servers  []string // these bridges' DHCP servers (fully) and DHCP and DNS rules
	// RADefaults: the links holding an IPv6 default route, their routes
	// and their accept_ra (what turning IPv6 forwarding on would cost).
	RADefaults bool
}

// Observe reads what q asks for from k into a new Model. What it did not
// read, the Model does not pretend to know (ErrNotObserved).
func Observe(k Kernel, q Query) (*Model, error) {
	m := newPartial()
	look := func(name string) (*Link, error) {
		if l := m.byName(name); l != nil {
			return l, nil
		}
		if m.names[name] {
			return nil, nil
		}
		l, err := k.LinkByName(name)
		if IsNotFound(err) {
			m.names[name] = true
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("look up %s: %w", name, err)
		}
		m.AddLink(*l)
		if l.Master != 0 {
			if _, ok := m.links[l.Master]; !ok {
				ml, err := k.LinkByIndex(l.Master)
				if err == nil {
					m.AddLink(*ml)
				} else if !IsNotFound(err) {
					return nil, fmt.Errorf("look up the master of %s: %w", name, err)
				}
			}
		}
		return m.byName(name), nil
	}
	for _, name := range q.Links {
		if _, err := look(name); err != nil {
			return nil, err
		}
	}
	if q.AllAddrs {
		all, err := k.Addrs(0)
		if err != nil {
			return nil, fmt.Errorf("list addresses: %w", err)
		}
		m.addrs = all
		m.addrsOf[0] = true
		// The links those addresses are on, so a message can name them.
		for _, a := range all {
			if _, ok := m.links[a.Index]; !ok {
				if l, err := k.LinkByIndex(a.Index); err == nil {
					m.AddLink(*l)
				}
			}
		}
	}
	for _, name := range q.Addrs {
		l, err := look(name)
		if err != nil || l == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		if !m.addrsOf[0] {
			list, err := k.Addrs(l.Index)
			if err != nil {
				return nil, fmt.Errorf("list addresses of %s: %w", name, err)
			}
			m.addrs = append(m.addrs, list...)
		}
		m.addrsOf[l.Index] = true
	}
	for _, name := range q.Routes {
		l, err := look(name)
		if err != nil || l == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		list, err := k.Routes(l.Index)
		if err != nil {
			return nil, fmt.Errorf("list routes of %s: %w", name, err)
		}
		m.routes = append(m.routes, list...)
		m.routesOf[l.Index] = true
	}
	for _, name := range q.Ports {
		l, err := look(name)
		if err != nil || l == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		ports, err := k.Ports(l.Index)
		if err != nil {
			return nil, fmt.Errorf("list ports of %s: %w", name, err)
		}
		for _, p := range ports {
			if _, ok := m.links[p.Index]; !ok {
				m.AddLink(*p)
			}
		}
		m.portsOf[l.Index] = true
	}
	for _, key := range q.Sysctls {
		v, err := k.Sysctl(key)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		m.sysctls[key] = v
	}
	if q.NAT {
		has, err := k.HasNATTable()
		if err != nil {
			return nil, err
		}
		rules, err := k.NATRules("")
		if err != nil {
			return nil, err
		}
		m.natTable, m.rules, m.natKnown = has, rules, true
	}
	for _, name := range q.Wireless {
		if k.IsWireless(name) {
			m.wireless[name] = true
		}
	}
	for _, name := range q.Managers {
		l, err := look(name)
		if err != nil {
			return nil, err
		}
		m.managersKnown[name] = true
		if l == nil {
			continue
		}
		ms, err := k.Managers(l)
		if err != nil {
			return nil, fmt.Errorf("find what manages %s: %w", name, err)
		}
		if len(ms) > 0 {
			m.SetManagers(name, ms...)
		}
	}
	if q.RADefaults {
		idx, err := k.DefaultRouteLinks(unix.AF_INET6)
		if err != nil {
			return nil, fmt.Errorf("list IPv6 default routes: %w", err)
		}
		m.v6Defaults, m.v6DefaultsKnown = idx, true
		for _, i := range idx {
			l, err := k.LinkByIndex(i)
			if err != nil {
				continue // gone meanwhile
			}
			if _, ok := m.links[i]; !ok {
				m.AddLink(*l)
			}
			if !m.routesOf[i] {
				list, err := k.Routes(i)
				if err != nil {
					return nil, fmt.Errorf("list routes of %s: %w", l.Name, err)
				}
				m.routes = append(m.routes, list...)
				m.routesOf[i] = true
			}
			key := AcceptRA(l.Name)
			if v, err := k.Sysctl(key); err == nil {
				m.sysctls[key] = v
			}
		}
	}
	if len(q.Servers) > 0 {
		m.Env = k.DHCPEnv()
	}
	for _, b := range q.Servers {
		if m.serversKnown[b] {
			continue
		}
		sv, err := k.DHCPServer(b, true)
		if err != nil {
			return nil, fmt.Errorf("the DHCP server of %s: %w", b, err)
		}
		has, err := k.HasServices(b)
		if err != nil {
			return nil, err
		}
		if sv.HasConf || sv.Running || len(sv.Procs) > 0 {
			if m.servers == nil {
				m.servers = map[string]Server{}
			}
			m.servers[b] = sv
		}
		if has {
			if m.services == nil {
				m.services = map[string]bool{}
			}
			m.services[b] = true
		}
		m.serversKnown[b] = true
	}
	return m, nil
}

package bridge

import (
	"slices"
	"strings"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"golang.org/x/sys/unix"
)

// forwardingFeature turns forwarding on for the families a routed or nat
// bridge routes, keeping the value it found so teardown can put it back.
type forwardingFeature struct{}

// forwardingKeys returns the forwarding sysctls of the families the
// bridge routes.
func forwardingKeys(spec *policy.BridgeSpec) []string {
	var keys []string
	v4, v6 := spec.Families()
	if v4 {
		keys = append(keys, kernel.IPv4Forward)
	}
	if v6 {
		keys = append(keys, kernel.IPv6Forward)
	}
	return keys
}

func (forwardingFeature) query(spec *policy.BridgeSpec, q *kernel.Query) {
	keys := forwardingKeys(spec)
	q.Sysctls = append(q.Sysctls, keys...)
	if slices.Contains(keys, kernel.IPv6Forward) {
		q.RADefaults = true
	}
}

// raDependent names the links whose IPv6 default route comes from router
// advertisements they take only while forwarding is off (accept_ra = 1):
// with forwarding on the kernel ignores their RAs, and the host loses
// that route when it expires. libvirt refuses the same.
func raDependent(m *kernel.Model) ([]string, error) {
	idx, err := m.DefaultRouteLinks(unix.AF_INET6)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, i := range idx {
		l, err := m.LinkByIndex(i)
		if err != nil {
			continue
		}
		routes, err := m.Routes(i)
		if err != nil {
			return nil, err
		}
		ra := slices.ContainsFunc(routes, func(r kernel.Route) bool {
			return r.IPv6 && !r.Dst.IsValid() && r.Protocol == unix.RTPROT_RA
		})
		if v, _ := m.Sysctl(kernel.AcceptRA(l.Name)); ra && v == "1" {
			out = append(out, l.Name)
		}
	}
	return out, nil
}

func (forwardingFeature) plan(pl *planner) error {
	for _, key := range forwardingKeys(pl.spec) {
		old, err := pl.m.Sysctl(key)
		if err != nil {
			return err
		}
		if old != "1" && key == kernel.IPv6Forward {
			links, err := raDependent(pl.m)
			if err != nil {
				return err
			}
			if len(links) > 0 {
				return exit.New(exit.Unavailable, "bridge %s routes IPv6, and turning IPv6 forwarding on would make the kernel ignore the router advertisements %s takes the host's IPv6 default route from (accept_ra = 1): the host would lose it when it expires; first run sysctl -w %s=2 (and make it lasting), or give the host a static IPv6 route, or leave the IPv6 address off the bridge (%s)",
					pl.spec.Name, strings.Join(links, ", "), kernel.AcceptRA(links[0]), pl.where())
			}
		}
		if old != "1" {
			if err := pl.add(&plan.SetSysctl{Key: key, Value: "1", Old: old}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (forwardingFeature) status(spec *policy.BridgeSpec, m *kernel.Model, st *Status) {
	keys := forwardingKeys(spec)
	if len(keys) == 0 {
		return
	}
	st.Forwarding = map[string]string{}
	for _, key := range keys {
		v, _ := m.Sysctl(key)
		st.Forwarding[key] = v
		if v != "1" {
			st.Problems = append(st.Problems, key+" = "+v+": the host does not forward for this bridge")
		}
	}
}

package bridge

import (
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
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
	q.Sysctls = append(q.Sysctls, forwardingKeys(spec)...)
}

func (forwardingFeature) plan(pl *planner) error {
	for _, key := range forwardingKeys(pl.spec) {
		old, err := pl.m.Sysctl(key)
		if err != nil {
			return err
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

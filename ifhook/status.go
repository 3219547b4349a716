package ifhook

import (
	"errors"
	"fmt"
	"sort"

	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/rtnl"
)

// BridgeStatus is what `ifhook status` reports about one policy bridge.
type BridgeStatus struct {
	Name         string            `json:"name"`
	Model        string            `json:"model"`
	Exists       bool              `json:"exists"`
	Up           bool              `json:"up"`
	MadeByIfhook bool              `json:"made_by_ifhook"`
	STP          bool              `json:"stp"`
	MTU          int               `json:"mtu,omitempty"`
	Ports        []string          `json:"ports"`
	Addresses    []string          `json:"addresses"`
	Uplink       string            `json:"uplink,omitempty"`
	NAT          string            `json:"nat,omitempty"`        // "present", "missing"; "" when not a nat bridge
	Forwarding   map[string]string `json:"forwarding,omitempty"` // sysctl -> value, for routed and nat
	Missing      []string          `json:"missing,omitempty"`    // what `ifhook setup` would add
}

// Status reports on the policy's bridges (all when names is empty). It
// changes nothing.
func (h *Hook) Status(names ...string) ([]BridgeStatus, error) {
	specs, err := h.specs(names)
	if err != nil {
		return nil, wrap("status", "", err)
	}
	n, err := h.net("")
	if err != nil {
		return nil, wrap("status", "", err)
	}
	var out []BridgeStatus
	for _, spec := range specs {
		st := BridgeStatus{Name: spec.Name, Model: string(spec.Model), Uplink: spec.Uplink, Ports: []string{}, Addresses: []string{}}
		if h.State != nil {
			if rec, _ := h.State.ReadBridge(spec.Name); rec != nil {
				st.MadeByIfhook = true
			}
		}
		br, err := n.LinkByName(spec.Name)
		if err != nil && !errors.Is(err, rtnl.ErrNotFound) {
			return out, wrap("status", "", sysErr(err, "look up %s", spec.Name))
		}
		if br != nil {
			st.Exists, st.Up, st.STP, st.MTU = true, br.Up, br.STP, br.MTU
			ports, err := n.Ports(br.Index)
			if err != nil {
				return out, wrap("status", "", sysErr(err, "list ports of %s", spec.Name))
			}
			for _, p := range ports {
				st.Ports = append(st.Ports, p.Name)
			}
			sort.Strings(st.Ports)
			addrs, err := n.Addrs(br.Index)
			if err != nil {
				return out, wrap("status", "", sysErr(err, "list addresses of %s", spec.Name))
			}
			for _, a := range addrs {
				st.Addresses = append(st.Addresses, a.Prefix.String())
			}
		}
		if keys := forwardingKeys(spec); len(keys) > 0 {
			st.Forwarding = map[string]string{}
			for _, key := range keys {
				st.Forwarding[key], _ = n.Sysctl(key)
			}
		}
		if spec.Model == "nat" {
			st.NAT = "missing"
			if t, err := n.NAT(); err == nil {
				if ok, _ := t.HasBridge(spec.Name); ok {
					st.NAT = "present"
				}
			} else {
				st.NAT = "unavailable: " + err.Error()
			}
		}
		// What setup would do is the plan for the bridge as it is.
		if bp, err := h.planBridge(spec, br, true); err == nil {
			for _, s := range bp.steps {
				st.Missing = append(st.Missing, s.String())
			}
		} else {
			st.Missing = append(st.Missing, fmt.Sprintf("cannot be set up: %v", err))
		}
		out = append(out, st)
	}
	return out, nil
}

// CheckBridges checks the policy's bridges against the host: what would
// make setting one up fail (a missing or enslaved uplink, an address some
// other link holds, no nftables for NAT). It changes nothing; `ifhook
// check` reports these beside the policy's own problems.
func (h *Hook) CheckBridges() []error {
	var errs []error
	for _, spec := range h.specsOrNil() {
		br, err := h.Links.LinkByName(spec.Name)
		if err != nil && !errors.Is(err, rtnl.ErrNotFound) {
			errs = append(errs, fmt.Errorf("bridges.%s: %w", spec.Name, err))
			continue
		}
		if _, err := h.planBridge(spec, br, true); err != nil {
			errs = append(errs, fmt.Errorf("bridges.%s: %w", spec.Name, err))
		}
	}
	return errs
}

func (h *Hook) specsOrNil() []*policy.BridgeSpec {
	specs, _ := h.specs(nil)
	return specs
}

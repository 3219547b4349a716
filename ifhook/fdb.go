package ifhook

import (
	"fmt"
	"net"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
)

// A NIC hot-plugged through QEMU's monitor (netdev_add, then device_add)
// has no MAC when its ifup runs: QEMU creates the TAP first, and the
// device that says the MAC comes later. The bridge learns the MAC once the
// guest sends (or QEMU announces it), so the duplicate guard compares what
// the bridge learned with the records: an ifup refuses a guest MAC the
// bridge learned on another port, and a sweep (gc, or an ifup's periodic
// one) writes a hot-plugged TAP's learned MAC into its record.

// learnedElsewhere returns the port of bridge, other than tap, on which
// the bridge learned mac, and that port's record (nil: none), or "".
func (h *Hook) learnedElsewhere(bridge *rtnl.Link, mac net.HardwareAddr, tap string) (string, *state.Record) {
	entries, err := h.Kernel.LearnedMACs(bridge.Index)
	if err != nil {
		h.Log.Debug("up %s: cannot read what %s learned: %v", tap, bridge.Name, err)
		return "", nil
	}
	for _, e := range entries {
		if string(e.MAC) != string(mac) {
			continue
		}
		port, err := h.Kernel.LinkByIndex(e.Port)
		if err != nil || port.Name == tap {
			continue
		}
		rec, _ := h.State.Read(port.Name)
		if rec != nil && rec.Index != port.Index {
			rec = nil
		}
		return port.Name, rec
	}
	return "", nil
}

// describePort names a port and its VM for a message.
func describePort(name string, rec *state.Record) string {
	if rec != nil && rec.VM != "" {
		return fmt.Sprintf("%s (VM %s)", name, escape.Quote(rec.VM))
	}
	return name
}

// adoptLearned gives the records of TAPs that are on their bridge with no
// guest MAC (hot-plugged NICs) the one MAC the bridge learned on them, and
// claims it; a MAC another live TAP's record claims on that bridge is
// reported, not claimed. Called by sweep, with the lock held.
func (h *Hook) adoptLearned(recs []*state.Record) error {
	learned := map[string]map[int][]net.HardwareAddr{} // bridge, port: MACs
	var errs error
	for _, r := range recs {
		if r.GuestMAC != "" || r.Bridge == "" {
			continue
		}
		if st, err := h.tapState(r); err != nil || st != "attached" {
			continue
		}
		byPort, ok := learned[r.Bridge]
		if !ok {
			byPort = map[int][]net.HardwareAddr{}
			learned[r.Bridge] = byPort
			br, err := h.Kernel.LinkByName(r.Bridge)
			if err != nil {
				continue
			}
			entries, err := h.Kernel.LearnedMACs(br.Index)
			if err != nil {
				h.Log.Debug("gc: cannot read what %s learned: %v", r.Bridge, err)
				continue
			}
			for _, e := range entries {
				byPort[e.Port] = append(byPort[e.Port], e.MAC)
			}
		}
		macs := byPort[r.Index]
		if len(macs) != 1 || macs[0][0]&1 != 0 {
			continue // nothing sent yet, or several guests behind one TAP
		}
		mac := macs[0]
		if owner, index, _ := h.macIndex().MACClaim(r.Bridge, mac); owner != "" && owner != r.TAP {
			br, err := h.Kernel.LinkByName(r.Bridge)
			if err == nil {
				if other, live := h.liveGuestMAC(owner, index, br, mac); live {
					h.Log.Notice("gc: %s and %s carry the same guest MAC %s on %s; give one of them another MAC (ifhook mac NAME)",
						describePort(owner, other), describePort(r.TAP, r), mac, r.Bridge)
					continue
				}
			}
		}
		d := *r
		d.GuestMAC = mac.String()
		if err := h.State.Write(&d); err != nil {
			errs = err
			continue
		}
		if err := h.macIndex().Claim(r.Bridge, mac, r.TAP, r.Index); err != nil {
			errs = err
			continue
		}
		h.Log.Change("gc: %s learned guest MAC %s on %s (a NIC hot-plugged with no MAC at its ifup): recorded", r.TAP, mac, r.Bridge)
	}
	return errs
}

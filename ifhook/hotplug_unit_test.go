package ifhook

import (
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/rtnl"
)

// TestHotPluggedMACCaughtLater: a TAP attached with no guest MAC (a NIC
// hot-plugged through the monitor) whose guest then sends: the next ifup
// of that MAC on the bridge is refused, naming it, and gc writes the MAC
// into its record and claims it.
func TestHotPluggedMACCaughtLater(t *testing.T) {
	hp := unitTAP(func(l *rtnl.Link) { l.Name, l.Index = "tap0", 10 })
	other := unitTAP(func(l *rtnl.Link) { l.Name, l.Index, l.MAC = "vnet1", 11, mustMAC("52:54:00:00:00:11") })
	m := unitModel(hp, other, unitBridge("br0", 3, 1500))
	mac := mustMAC("52:54:00:aa:00:07")
	guests := map[string]Guest{
		"tap0":  {VM: "hot", PID: 4242, Note: "guest MAC unknown: added through the monitor"},
		"vnet1": {VM: "cold", MAC: mac, NIC: "-nic"},
	}
	h, _ := unitHook(t, m, "bridge = \"br0\"\n")
	h.cfg.Guest = func(tap string) Guest { return guests[tap] }
	if _, err := h.Up("tap0"); err != nil {
		t.Fatal(err)
	}
	m.Learn(10, mac) // the guest sends, or QEMU announces it
	_, err := h.Up("vnet1")
	if exit.Code(err) != 65 || !strings.Contains(err.Error(), `guest MAC 52:54:00:aa:00:07 is already used on br0 by tap0 (VM "hot") (the bridge learned it there)`) {
		t.Fatalf("Up(vnet1) = %v (exit %d)", err, exit.Code(err))
	}
	if _, err := h.GC(); err != nil {
		t.Fatal(err)
	}
	rec, err := h.State.Read("tap0")
	if err != nil || rec == nil || rec.GuestMAC != mac.String() || rec.VM != "hot" || rec.PID != 4242 {
		t.Fatalf("tap0's record after gc: %+v, %v", rec, err)
	}
	if owner, _ := h.State.MACOwner("br0", mac); owner != "tap0" {
		t.Errorf("MAC index owner %q, want tap0", owner)
	}
	// From now on the index alone refuses it.
	if _, err := h.Up("vnet1"); exit.Code(err) != 65 || strings.Contains(err.Error(), "learned") {
		t.Errorf("Up(vnet1) after gc = %v", err)
	}
}

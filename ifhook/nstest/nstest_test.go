package nstest

import (
	"testing"

	"github.com/vishvananda/netlink"
)

func TestMain(m *testing.M) { GuardRootNS(m) }

// TestTAPLandsInNamespace proves the one thing everything else relies on:
// a TAP made through AddTAP exists in the test namespace and not in the
// host's.
func TestTAPLandsInNamespace(t *testing.T) {
	ns := New(t)
	ns.AddTAP(t, "nstest-tap0")
	if !ns.HasLink("nstest-tap0") {
		t.Fatal("TAP not visible in the test namespace")
	}
	if _, err := netlink.LinkByName("nstest-tap0"); err == nil {
		t.Fatal("TAP visible in the host's namespace")
	}
}

func TestNamespacesAreSeparate(t *testing.T) {
	a, b := New(t), New(t)
	a.AddBridge(t, "br0")
	if b.HasLink("br0") {
		t.Fatal("bridge from one namespace visible in another")
	}
}

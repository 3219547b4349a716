package qemu

import (
	"strings"
	"testing"
)

// TestNICForBridge: the TAPs the bridge helper makes have no name on the
// command line; which backend a helper run is for follows from br= and
// the order QEMU creates backends in.
func TestNICForBridge(t *testing.T) {
	type want struct {
		bridge string
		nth    int
		mac    string // "" when no NIC is expected
		why    string
	}
	for _, tc := range []struct {
		name string
		args []string
		want []want
	}{
		{
			name: "one -netdev bridge",
			args: []string{"qemu-system-x86_64", "-name", "a", "-netdev", "bridge,id=n0,br=br0,helper=/usr/lib/qemu/qemu-bridge-helper", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01"},
			want: []want{{"br0", 0, "52:54:00:00:00:01", ""}, {"br0", 1, "", "1 bridge helper backend(s) for br=br0"}, {"br1", 0, "", "0 bridge helper backend(s)"}},
		},
		{
			name: "br0 is the default, and -nic bridge is one",
			args: []string{"qemu-system-x86_64", "-nic", "bridge,mac=52:54:00:00:00:02"},
			want: []want{{"br0", 0, "52:54:00:00:00:02", ""}},
		},
		{
			name: "two on one bridge, in command-line order",
			args: []string{"qemu-system-x86_64", "-netdev", "bridge,id=a,br=br0", "-netdev", "bridge,id=b,br=br0",
				"-device", "e1000,netdev=b,mac=52:54:00:00:00:0b", "-device", "e1000,netdev=a,mac=52:54:00:00:00:0a"},
			want: []want{{"br0", 0, "52:54:00:00:00:0a", ""}, {"br0", 1, "52:54:00:00:00:0b", ""}},
		},
		{
			name: "-nic and -net after every -netdev, JSON -netdev before them all",
			args: []string{"qemu-system-x86_64",
				"-nic", "bridge,br=br0,mac=52:54:00:00:00:03",
				"-netdev", "bridge,id=kv,br=br0",
				"-device", "virtio-net-pci,netdev=kv,mac=52:54:00:00:00:02",
				"-netdev", `{"type":"bridge","id":"js","br":"br0"}`,
				"-device", `{"driver":"virtio-net-pci","netdev":"js","mac":"52:54:00:00:00:01"}`},
			want: []want{{"br0", 0, "52:54:00:00:00:01", ""}, {"br0", 1, "52:54:00:00:00:02", ""}, {"br0", 2, "52:54:00:00:00:03", ""}},
		},
		{
			name: "other bridges do not count",
			args: []string{"qemu-system-x86_64", "-netdev", "bridge,id=a,br=br1", "-netdev", "bridge,id=b,br=br0",
				"-device", "e1000,netdev=a,mac=52:54:00:00:00:0a", "-device", "e1000,netdev=b,mac=52:54:00:00:00:0b"},
			want: []want{{"br0", 0, "52:54:00:00:00:0b", ""}, {"br1", 0, "52:54:00:00:00:0a", ""}},
		},
		{
			name: "-netdev tap with helper= runs the helper too",
			args: []string{"qemu-system-x86_64", "-netdev", "tap,id=t,helper=/usr/libexec/qemu-bridge-helper,br=lab",
				"-netdev", "tap,id=u,ifname=vnet0", "-device", "e1000,netdev=t", "-device", "e1000,netdev=u"},
			want: []want{{"lab", 0, "52:54:00:12:34:56", ""}, {"br0", 0, "", "0 bridge helper backend(s)"}},
		},
		{
			name: "legacy -net bridge on a hub",
			args: []string{"qemu-system-x86_64", "-net", "nic,macaddr=52:54:00:00:00:07", "-net", "bridge,br=br0"},
			want: []want{{"br0", 0, "52:54:00:00:00:07", ""}},
		},
		{
			name: "a bridge backend wired to no NIC",
			args: []string{"qemu-system-x86_64", "-netdev", "bridge,id=n0"},
			want: []want{{"br0", 0, "", "is wired to no NIC"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vm, err := Parse(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				nic, ok, why := vm.NICForBridge(w.bridge, w.nth)
				switch {
				case w.mac != "" && (!ok || nic.MAC.String() != w.mac):
					t.Errorf("NICForBridge(%s, %d) = %v, %v, %q; want MAC %s", w.bridge, w.nth, nic.MAC, ok, why, w.mac)
				case w.mac == "" && (ok || !strings.Contains(why, w.why)):
					t.Errorf("NICForBridge(%s, %d) = %v, %v, %q; want none, saying %q", w.bridge, w.nth, nic.MAC, ok, why, w.why)
				}
			}
		})
	}
	var nilVM *VM
	if _, ok, _ := nilVM.NICForBridge("br0", 0); ok {
		t.Fatal("a nil VM has a NIC")
	}
}

// TestBridgeTAPHasNoName: a helper's TAP is never found by a name.
func TestBridgeTAPHasNoName(t *testing.T) {
	vm, _ := Parse([]string{"qemu-system-x86_64", "-netdev", "bridge,id=n0,br=br0", "-device", "e1000,netdev=n0"})
	_, ok, why := vm.NICForTAP("tap0")
	if ok || !strings.Contains(why, "bridge helper makes it") {
		t.Fatalf("NICForTAP(tap0) = %v, %q", ok, why)
	}
}

package qemu

import (
	"reflect"
	"strings"
	"testing"
)

// held makes a HeldTAP list from names, one descriptor each, from fd 8.
func held(names ...string) []HeldTAP {
	out := make([]HeldTAP, len(names))
	for i, n := range names {
		out[i] = HeldTAP{FD: 8 + i, Name: n}
	}
	return out
}

// mixedCmd is the command line TestHeldTAPOrderQEMU (cmd/ifhook) runs real
// QEMU 7.2 with; QEMU named the TAPs js1=tap0, kv1=tap1, mq=tap2 (two
// descriptors), kv2=named0, the -nic tap3 and the -net tap tap4, and ran
// the scripts in that order.
var mixedCmd = []string{"qemu-system-x86_64",
	"-net", "nic,model=e1000", "-net", "tap,script=S,downscript=no",
	"-nic", "tap,script=S,downscript=no,model=e1000",
	"-netdev", "tap,id=kv1,script=S,downscript=no", "-device", "e1000,netdev=kv1",
	"-netdev", `{"type":"tap","id":"js1","script":"S","downscript":"no"}`, "-device", "e1000,netdev=js1",
	"-netdev", "tap,id=mq,queues=2,script=S,downscript=no", "-device", "virtio-net-pci,netdev=mq,mq=on",
	"-netdev", "tap,id=kv2,ifname=named0,script=S,downscript=no", "-device", "e1000,netdev=kv2",
}

func TestNICForHeldTAP(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		tap  string
		held []HeldTAP
		mac  string // "" when no NIC is expected
		why  string // a substring of the reason then
	}{
		// What QEMU 7.2 held at each script run of mixedCmd; the MACs are
		// the ones `info network` showed.
		{"json netdev first", mixedCmd, "tap0", held("tap0"), "52:54:00:12:34:59", ""},
		{"then key=value netdevs", mixedCmd, "tap1", held("tap0", "tap1"), "52:54:00:12:34:58", ""},
		{"queues= opens one TAP", mixedCmd, "tap2", held("tap2", "tap0", "tap1"), "52:54:00:12:34:5a", ""},
		{"-nic after every -netdev", mixedCmd, "tap3", held("tap2", "tap2", "named0", "tap3", "tap0", "tap1"), "52:54:00:12:34:56", ""},
		{"-net last", mixedCmd, "tap4", held("tap2", "tap2", "named0", "tap3", "tap4", "tap0", "tap1"), "52:54:00:12:34:57", ""},
		{"named TAP missing", mixedCmd, "tap3", held("tap2", "tap2", "other", "tap3", "tap0", "tap1"), "", "named0 (opened before it) is not among them"},
		{"named TAP early", mixedCmd, "tap1", held("tap0", "named0"), "", "QEMU holds no TAP named tap1"},
		{"named TAP open too early", mixedCmd, "tap1", held("tap0", "tap1", "named0"), "", "named0 (opened after it) is already open"},
		{"not held", mixedCmd, "tap7", held("tap0"), "", "QEMU holds no TAP named tap7"},
		{"hot-plugged", mixedCmd, "tap5", held("tap0", "tap1", "tap2", "named0", "tap3", "tap4", "tap5"), "", "added through the monitor"},
		{"hot-plugged, nothing on the command line",
			[]string{"qemu", "-nodefaults"}, "tap0", held("tap0"), "", "added through the monitor"},
		{"the TAP being set up has a fixed name",
			[]string{"qemu", "-netdev", "tap,id=a,ifname=fixed", "-device", "e1000,netdev=a", "-netdev", "tap,id=b", "-device", "e1000,netdev=b"},
			"tap0", held("tap0"), "", "which runs no script under a name the kernel picks"},
		{"fd= is open from the start",
			[]string{"qemu", "-netdev", "tap,id=a", "-device", "e1000,netdev=a,mac=52:54:00:00:00:0a", "-netdev", "tap,id=b,fd=3", "-device", "e1000,netdev=b"},
			"tap1", held("tap0", "tap1"), "52:54:00:00:00:0a", ""},
		{"only fd= TAPs", []string{"qemu", "-netdev", "tap,id=b,fd=3", "-device", "e1000,netdev=b"},
			"tap0", held("tap0"), "", "no more than the 1 its command line gives it as fd="},
		{"bridge helper counts",
			[]string{"qemu", "-netdev", "bridge,id=h,br=br0", "-device", "e1000,netdev=h", "-netdev", "tap,id=a", "-device", "e1000,netdev=a,mac=52:54:00:00:00:0b"},
			"tap1", held("tap0", "tap1"), "52:54:00:00:00:0b", ""},
		{"-net tap on a hub with one NIC",
			[]string{"qemu", "-net", "nic,macaddr=52:54:00:00:00:0c", "-net", "tap"},
			"tap0", held("tap0"), "52:54:00:00:00:0c", ""},
		{"-net tap on a hub with two NICs",
			[]string{"qemu", "-net", "nic", "-net", "nic", "-net", "tap"},
			"tap0", held("tap0"), "", "reaches 2 NICs"},
		{"two -nic tap",
			[]string{"qemu", "-nic", "tap,mac=52:54:00:00:00:01", "-nic", "tap,mac=52:54:00:00:00:02"},
			"tap7", held("tap3", "tap7"), "52:54:00:00:00:02", ""},
		{"an ifname= template is the kernel's too",
			[]string{"qemu", "-nic", "tap,ifname=vm%d,mac=52:54:00:00:00:03"},
			"vm0", held("vm0"), "52:54:00:00:00:03", ""},
		{"no command line", nil, "tap0", held("tap0"), "", "no QEMU command line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var vm *VM
			if tt.args != nil {
				var err error
				if vm, err = Parse(tt.args); err != nil {
					t.Fatal(err)
				}
			}
			nic, ok, why := vm.NICForHeldTAP(tt.tap, tt.held)
			if tt.mac == "" {
				if ok || !strings.Contains(why, tt.why) {
					t.Errorf("NICForHeldTAP(%s) = %+v, %v, %q; want no NIC, reason containing %q", tt.tap, nic, ok, why, tt.why)
				}
				return
			}
			if !ok || nic.MAC.String() != tt.mac {
				t.Errorf("NICForHeldTAP(%s) = %+v, %v, %q; want MAC %s", tt.tap, nic, ok, why, tt.mac)
			}
		})
	}
}

func TestMixedCmdMatchesQEMU(t *testing.T) {
	// The MACs `info network` showed for mixedCmd: default MACs in NIC
	// creation order (-nic, -net nic, then -device).
	vm, err := Parse(mixedCmd)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range vm.NICs {
		got = append(got, n.MAC.String())
	}
	want := []string{"52:54:00:12:34:56", "52:54:00:12:34:57", "52:54:00:12:34:58", "52:54:00:12:34:59", "52:54:00:12:34:5a", "52:54:00:12:34:5b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MACs %v, want %v", got, want)
	}
	if !vm.HasKernelNamedTAP() {
		t.Error("HasKernelNamedTAP = false")
	}
	named, _ := Parse([]string{"qemu", "-nic", "tap,ifname=x", "-netdev", "tap,id=a,fd=4"})
	if named.HasKernelNamedTAP() {
		t.Error("HasKernelNamedTAP with ifname= and fd= only")
	}
}

func TestIffName(t *testing.T) {
	for in, want := range map[string]string{
		"pos:\t0\nflags:\t0104002\nmnt_id:\t25\nino:\t1045\niff:\ttap0\n": "tap0",
		"iff:\tvnet0.1":            "vnet0.1",
		"iff:  x\n":                "x",
		"pos:\t0\n":                "",
		"iff:\t\n":                 "",
		"iff:\ta/b\n":              "",
		"iff:\tsixteen-bytes!!!\n": "",
		"iff:\tbad\x1bname\n":      "",
		"xiff:\ttap0\n":            "",
	} {
		if got := iffName([]byte(in)); got != want {
			t.Errorf("iffName(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzNICForHeldTAP feeds command lines and what QEMU holds: whatever it
// answers is one of the VM's NICs, with a MAC, and the same every time.
func FuzzNICForHeldTAP(f *testing.F) {
	f.Add(strings.Join(mixedCmd, "\x00"), "tap3", "tap2,tap2,named0,tap3,tap0,tap1")
	f.Add("qemu\x00-nic\x00tap\x00-net\x00nic\x00-net\x00tap,fd=3", "tap0", "tap0,tap9")
	f.Add("qemu\x00-netdev\x00bridge,id=h\x00-netdev\x00tap,id=t,queues=4\x00-device\x00e1000,netdev=t", "tap1", "tap0,tap1,tap1")
	f.Fuzz(func(t *testing.T, cmdline, tap, names string) {
		args := strings.Split(cmdline, "\x00")
		vm, err := Parse(args)
		if err != nil {
			return
		}
		var h []HeldTAP
		for i, n := range strings.Split(names, ",") {
			h = append(h, HeldTAP{FD: i, Name: n})
		}
		nic, ok, why := vm.NICForHeldTAP(tap, h)
		if !ok {
			if why == "" {
				t.Errorf("no NIC and no reason")
			}
			return
		}
		if why != "" || len(nic.MAC) != 6 {
			t.Errorf("NIC %+v with reason %q", nic, why)
		}
		found := false
		for _, n := range vm.NICs {
			if reflect.DeepEqual(n, nic) {
				found = true
			}
		}
		if !found {
			t.Errorf("NIC %+v is not one of the VM's", nic)
		}
		again, ok2, _ := vm.NICForHeldTAP(tap, h)
		if ok2 != ok || !reflect.DeepEqual(again, nic) {
			t.Errorf("not deterministic")
		}
	})
}

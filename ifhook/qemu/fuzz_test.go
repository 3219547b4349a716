package qemu

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// checkInvariants checks what must hold for any VM Parse returns.
func checkInvariants(t *testing.T, vm *VM, args []string) {
	t.Helper()
	if !reflect.DeepEqual(vm.Args, args) {
		t.Errorf("Args = %q, want %q", vm.Args, args)
	}
	if len(vm.Notes) > maxNotes {
		t.Errorf("%d notes, limit %d", len(vm.Notes), maxNotes)
	}
	for i, nic := range vm.NICs {
		if nic.MAC != nil && len(nic.MAC) != 6 {
			t.Errorf("NICs[%d].MAC = %v: %d bytes", i, nic.MAC, len(nic.MAC))
		}
		if nic.DefaultMAC && (nic.MAC == nil || !bytes.Equal(nic.MAC[:5], defaultPrefix[:])) {
			t.Errorf("NICs[%d]: DefaultMAC with MAC %v", i, nic.MAC)
		}
		if nic.Option == "default -net nic" && !nic.DefaultMAC {
			t.Errorf("NICs[%d]: QEMU's default NIC without a default MAC", i)
		}
		if nic.MAC != nil && !nic.DefaultMAC && bytes.Equal(nic.MAC, make([]byte, 6)) {
			t.Errorf("NICs[%d]: all-zero MAC left unset", i)
		}
		if nic.TAP == "" {
			continue
		}
		// A NIC that reaches exactly one TAP is what that TAP reaches,
		// unless the TAP reaches other NICs too or its name is taken twice.
		got, ok, why := vm.NICForTAP(nic.TAP)
		if ok && !reflect.DeepEqual(got, nic) {
			t.Errorf("NICs[%d] has TAP %q, but NICForTAP(%q) = %+v", i, nic.TAP, nic.TAP, got)
		}
		if !ok && nic.MAC != nil && !strings.Contains(why, "reaches") && !strings.Contains(why, "times") {
			t.Errorf("NICs[%d] has TAP %q, but NICForTAP says: %s", i, nic.TAP, why)
		}
	}
	for i := range vm.taps {
		checkLookup(t, vm, vm.taps[i].name)
		if br := vm.taps[i].bridge; br != "" {
			for nth := 0; nth < 3; nth++ {
				checkBridgeLookup(t, vm, br, nth)
			}
		}
	}
}

// checkBridgeLookup checks one NICForBridge answer against vm.NICs.
func checkBridgeLookup(t *testing.T, vm *VM, bridge string, nth int) {
	t.Helper()
	nic, ok, why := vm.NICForBridge(bridge, nth)
	if !ok {
		if why == "" {
			t.Errorf("NICForBridge(%q, %d): no NIC and no reason", bridge, nth)
		}
		return
	}
	if why != "" || len(nic.MAC) != 6 {
		t.Errorf("NICForBridge(%q, %d) = %+v, %q", bridge, nth, nic, why)
	}
	for _, n := range vm.NICs {
		if reflect.DeepEqual(n, nic) {
			return
		}
	}
	t.Errorf("NICForBridge(%q, %d) = %+v, not one of NICs", bridge, nth, nic)
}

// checkLookup checks one NICForTAP answer against vm.NICs.
func checkLookup(t *testing.T, vm *VM, tap string) {
	t.Helper()
	nic, ok, why := vm.NICForTAP(tap)
	if !ok {
		if why == "" {
			t.Errorf("NICForTAP(%q): no NIC and no reason", tap)
		}
		return
	}
	if why != "" {
		t.Errorf("NICForTAP(%q): found, with reason %q", tap, why)
	}
	if len(nic.MAC) != 6 {
		t.Errorf("NICForTAP(%q).MAC = %v", tap, nic.MAC)
	}
	if nic.TAP != "" && nic.TAP != tap {
		t.Errorf("NICForTAP(%q).TAP = %q", tap, nic.TAP)
	}
	for _, n := range vm.NICs {
		if reflect.DeepEqual(n, nic) {
			return
		}
	}
	t.Errorf("NICForTAP(%q) = %+v, not one of NICs", tap, nic)
}

// FuzzParse feeds command lines, NUL-separated as in /proc/PID/cmdline, and
// a TAP name to look up.
func FuzzParse(f *testing.F) {
	for _, tt := range cmdlineTests {
		args := tt.args
		if args == nil {
			args = strings.Fields(tt.cmd)
		}
		tap := "vnet0"
		if len(tt.taps) > 0 {
			tap = tt.taps[0].tap
		}
		f.Add(strings.Join(args, "\x00"), tap)
	}
	f.Add("qemu\x00-netdev\x00{\"type\":\"tap\",\"ifname\":\"x\",\"id\":\"a\"}\x00-device\x00{\"driver\":\"e1000\",\"netdev\":\"a\",\"mac\":7}", "x")
	f.Add("qemu\x00-netdev\x00hubport,id=h,hubid=0x10,netdev=t\x00-netdev\x00tap,id=t,ifname=x\x00-net\x00nic,vlan=16", "x")
	f.Add("qemu\x00-netdev\x00bridge,id=a,br=x\x00-nic\x00bridge,br=x\x00-device\x00e1000,netdev=a", "tap0")
	f.Add("qemu\x00--\x00-\x00---name\x00x\x00-set\x00...=\x00-global\x00e1000.mac=1", "")
	f.Fuzz(func(t *testing.T, cmdline, tap string) {
		args := strings.Split(cmdline, "\x00")
		vm, err := Parse(args)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLong) {
				t.Fatalf("Parse: unexpected error %v", err)
			}
			return
		}
		checkInvariants(t, vm, args)
		checkLookup(t, vm, tap)
		again, _ := Parse(args)
		if !reflect.DeepEqual(vm, again) {
			t.Errorf("Parse is not deterministic")
		}
	})
}

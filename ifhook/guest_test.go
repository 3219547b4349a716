package ifhook

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/libvirt"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/qemu"
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestGuestOf(t *testing.T) {
	for _, tc := range []struct {
		name, tap string
		argv      []string
		want      Guest
		note      string
	}{
		{"README first", "vnet0.0",
			[]string{"qemu-kvm", "-name", "first", "-net", "nic,macaddr=52:54:00:11:22:33", "-net", "tap,ifname=vnet0.0,script=/etc/qemu-ifup"},
			Guest{VM: "first", MAC: mustMAC("52:54:00:11:22:33"), NIC: "-net nic"}, ""},
		{"README second, no MAC", "vnet0.1",
			[]string{"qemu-kvm", "-name", "second", "-net", "nic", "-net", "tap,ifname=vnet0.1"},
			Guest{VM: "second", MAC: mustMAC("52:54:00:12:34:56"), DefaultMAC: true, NIC: "-net nic"}, ""},
		{"second device NIC", "t1",
			[]string{"qemu-system-x86_64", "-netdev", "tap,id=a,ifname=t0", "-device", "e1000,netdev=a,mac=52:54:00:00:00:01",
				"-netdev", "tap,id=b,ifname=t1", "-device", "virtio-net-pci,netdev=b"},
			Guest{MAC: mustMAC("52:54:00:12:34:56"), DefaultMAC: true, NIC: "-device virtio-net-pci", NICIndex: 1}, ""},
		{"hot-plugged TAP", "vnet9",
			[]string{"qemu-system-x86_64", "-name", "x"}, Guest{VM: "x"}, "no TAP named vnet9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vm, err := qemu.Parse(tc.argv)
			if err != nil {
				t.Fatal(err)
			}
			g := GuestOf(vm, tc.tap)
			note := g.Note
			g.Note = ""
			if g.VM != tc.want.VM || !bytes.Equal(g.MAC, tc.want.MAC) || g.DefaultMAC != tc.want.DefaultMAC || g.NIC != tc.want.NIC || g.NICIndex != tc.want.NICIndex {
				t.Fatalf("GuestOf = %+v, want %+v", g, tc.want)
			}
			if !strings.Contains(note, tc.note) {
				t.Errorf("note %q lacks %q", note, tc.note)
			}
		})
	}
}

func TestHostMAC(t *testing.T) {
	pol, _ := policy.Parse([]byte(""), "p")
	h := &Hook{Policy: pol}
	if got := h.hostMAC("vnet0", Guest{MAC: mustMAC("52:54:00:aa:bb:cc")}); got.String() != "fe:54:00:aa:bb:cc" {
		t.Errorf("known guest MAC: %s", got)
	}
	// QEMU's default is every VM's: fall back to the TAP-name hash.
	if got := h.hostMAC("vnet0", Guest{MAC: mustMAC("52:54:00:12:34:56"), DefaultMAC: true}); !bytes.Equal(got, policy.HostTAPMAC(pol.MACPrefix, "vnet0")) {
		t.Errorf("default guest MAC: %s", got)
	}
	if got := h.hostMAC("vnet0", Guest{}); !bytes.Equal(got, policy.HostTAPMAC(pol.MACPrefix, "vnet0")) {
		t.Errorf("unknown guest: %s", got)
	}
	keep, _ := policy.Parse([]byte(`tap_mac = "keep"`), "p")
	if got := (&Hook{Policy: keep}).hostMAC("vnet0", Guest{MAC: mustMAC("52:54:00:aa:bb:cc")}); got != nil {
		t.Errorf("tap_mac = keep: %s", got)
	}
}

func TestCheckGuestMACWarnings(t *testing.T) {
	for _, tc := range []struct {
		mode, mac string
		want      string // note or error fragment; "" for neither
		refuse    bool
	}{
		{"warn", "52:54:00:11:22:33", "", false},
		{"warn", "52:54:00:12:34:56", "QEMU's default", false},
		{"warn", "02:00:00:00:00:01", "lacks the prefix", false},
		{"enforce", "02:00:00:00:00:01", "lacks the prefix", true},
		{"enforce", "52:54:00:12:34:57", "QEMU's default", true},
		{"off", "52:54:00:12:34:56", "", false},
	} {
		pol, err := policy.Parse([]byte("guest_mac = \""+tc.mode+"\"\n"), "p")
		if err != nil {
			t.Fatal(err)
		}
		h := &Hook{Policy: pol}
		notes, err := h.checkGuestMAC("vnet0", Guest{MAC: mustMAC(tc.mac), NIC: "-net nic"}, nil, false)
		var texts []string
		for _, n := range notes {
			texts = append(texts, n.Text)
		}
		got := strings.Join(texts, ";")
		if err != nil {
			got = err.Error()
		}
		if (err != nil) != tc.refuse || !strings.Contains(got, tc.want) || (tc.want == "" && got != "") {
			t.Errorf("%s %s: notes %q, err %v; want %q, refuse %v", tc.mode, tc.mac, notes, err, tc.want, tc.refuse)
		}
		if err != nil && exit.Code(err) != 65 {
			t.Errorf("%s %s: exit %d, want 65", tc.mode, tc.mac, exit.Code(err))
		}
	}
}

func TestGuestOfHeld(t *testing.T) {
	vm, err := qemu.Parse([]string{"qemu-system-x86_64", "-name", "two",
		"-nic", "tap,mac=52:54:00:00:00:01,script=S", "-nic", "tap,mac=52:54:00:00:00:02,script=S"})
	if err != nil {
		t.Fatal(err)
	}
	vm.PID = 4242
	g := GuestOf(vm, "tap1")
	if g.MAC != nil || !strings.Contains(g.Note, "no ifname=") {
		t.Fatalf("GuestOf(tap1) = %+v", g)
	}
	g = GuestOfHeld(vm, "tap1", []qemu.HeldTAP{{FD: 9, Name: "tap1"}, {FD: 8, Name: "tap0"}})
	if g.VM != "two" || g.PID != 4242 || g.MAC.String() != "52:54:00:00:00:02" || g.NIC != "-nic" || g.NICIndex != 1 || !strings.Contains(g.Source, "/proc/4242/fdinfo") {
		t.Errorf("GuestOfHeld(tap1) = %+v", g)
	}
	g = GuestOfHeld(vm, "tap2", []qemu.HeldTAP{{FD: 8, Name: "tap0"}, {FD: 9, Name: "tap1"}, {FD: 10, Name: "tap2"}})
	if g.MAC != nil || g.VM != "two" || !strings.Contains(g.Note, "added through the monitor") {
		t.Errorf("GuestOfHeld(hot-plugged tap2) = %+v", g)
	}
}

func TestLibvirtGuest(t *testing.T) {
	pol, _ := policy.Parse([]byte(""), "test.toml")
	h := &Hook{Policy: pol}
	snap := &libvirt.Snapshot{LibDir: "/var/lib/libvirt/qemu", Starting: []string{"domain-3-lv-web"}}
	g := LibvirtGuest("vnet0", mustMAC("fe:54:00:5a:00:01"), 0x52, snap)
	if g.VM != "lv-web" || g.MAC.String() != "52:54:00:5a:00:01" || !g.KeepMAC || !strings.Contains(g.Source, "domain-3-lv-web") || !strings.Contains(g.Source, "assumed") {
		t.Fatalf("LibvirtGuest = %+v", g)
	}
	// tap_mac = "derive" is libvirt's own MAC: the TAP keeps it.
	if got := h.hostMAC("vnet0", g); got.String() != "fe:54:00:5a:00:01" {
		t.Errorf("hostMAC = %s, want libvirt's fe:54:00:5a:00:01", got)
	}
	// Nothing answers: the MAC libvirt set is kept all the same.
	g = LibvirtGuest("vnet0", mustMAC("fe:54:00:5a:00:01"), 0x52, &libvirt.Snapshot{})
	if g.MAC != nil || !g.KeepMAC || !strings.Contains(g.Note, "keeping the MAC libvirt gave") {
		t.Fatalf("LibvirtGuest(nothing) = %+v", g)
	}
	if got := h.hostMAC("vnet0", g); got != nil {
		t.Errorf("hostMAC = %s, want none (keep libvirt's)", got)
	}
	if !strings.Contains(g.macOption(), "<mac address=") {
		t.Errorf("macOption = %q", g.macOption())
	}
}

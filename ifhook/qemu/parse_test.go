package qemu

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// tapWant is what NICForTAP should say about one TAP.
type tapWant struct {
	tap        string
	mac        string // "" when no NIC is expected
	defaultMAC bool
	why        string // a substring of the reason when no NIC is expected
}

// cmdlineTests are QEMU command lines as people and libvirt write them.
// args, when set, is used instead of splitting cmd on spaces.
var cmdlineTests = []struct {
	name  string
	cmd   string
	args  []string
	vm    string    // expected VM name
	taps  []tapWant // expected NICForTAP answers
	nics  int       // expected len(NICs), -1 to skip
	macs  []string  // when set, every NIC's MAC in order ("" for nil)
	notes []string  // substrings expected among the notes
}{
	{
		name: "README first: -net nic with macaddr",
		cmd:  "qemu-kvm -m 128 -name first -drive file=IMG,if=virtio -nographic -net nic,macaddr=52:54:00:11:22:33 -net tap,ifname=vnet0.0,script=/etc/qemu-ifup,downscript=/etc/qemu-ifdown",
		vm:   "first",
		taps: []tapWant{{tap: "vnet0.0", mac: "52:54:00:11:22:33"}},
		nics: 1,
	},
	{
		name: "README second: -net nic without macaddr",
		cmd:  "qemu-kvm -m 128 -name second -drive file=IMG,if=virtio -nographic -net nic -net tap,ifname=vnet0.1,script=/etc/qemu-ifup,downscript=/etc/qemu-ifdown",
		vm:   "second",
		taps: []tapWant{{tap: "vnet0.1", mac: "52:54:00:12:34:56", defaultMAC: true}, {tap: "vnet0.0", why: "no TAP named vnet0.0"}},
		nics: 1,
	},
	{
		name: "two -net nic on different vlans (QEMU before 3.0)",
		cmd:  "qemu-system-x86_64 -name twovlan -net nic,vlan=0,macaddr=52:54:00:aa:00:01 -net tap,vlan=0,ifname=tap-a,script=/etc/qemu-ifup -net nic,vlan=1,model=e1000 -net tap,vlan=1,ifname=tap-b,script=/etc/qemu-ifup",
		vm:   "twovlan",
		taps: []tapWant{{tap: "tap-a", mac: "52:54:00:aa:00:01"}, {tap: "tap-b", mac: "52:54:00:12:34:56", defaultMAC: true}},
		nics: 2,
	},
	{
		name: "vlan pairing is by number, not by position",
		cmd:  "qemu-system-i386 -net tap,vlan=7,ifname=late -net nic,vlan=3 -net tap,vlan=3,ifname=early -net nic,vlan=7,macaddr=52:54:00:00:00:07",
		taps: []tapWant{{tap: "late", mac: "52:54:00:00:00:07"}, {tap: "early", mac: "52:54:00:12:34:56", defaultMAC: true}},
		nics: 2,
	},
	{
		name: "two -net nic without vlan share hub 0",
		cmd:  "qemu-system-x86_64 -net nic -net tap,ifname=t0 -net nic -net tap,ifname=t1",
		taps: []tapWant{{tap: "t0", why: "reaches 2 NICs through hub 0"}, {tap: "t1", why: "52:54:00:12:34:57"}},
		nics: 2,
		macs: []string{"52:54:00:12:34:56", "52:54:00:12:34:57"},
	},
	{
		name: "-nic tap with mac",
		cmd:  "qemu-system-x86_64 -enable-kvm -name nicvm -nic tap,ifname=tap0,script=no,downscript=no,mac=52:54:00:ab:cd:ef,model=virtio-net-pci",
		vm:   "nicvm",
		taps: []tapWant{{tap: "tap0", mac: "52:54:00:ab:cd:ef"}},
		nics: 1,
	},
	{
		name: "-nic tap without mac, after a -nic user",
		cmd:  "qemu-system-x86_64 -nic user,model=e1000 -nic tap,ifname=tap1,script=/etc/qemu-ifup",
		taps: []tapWant{{tap: "tap1", mac: "52:54:00:12:34:57", defaultMAC: true}},
		nics: 2,
		macs: []string{"52:54:00:12:34:56", "52:54:00:12:34:57"},
	},
	{
		name: "-device listed before its -netdev",
		cmd:  "qemu-system-x86_64 -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:10,id=nic0 -netdev tap,id=n0,ifname=vm0-eth0,script=no,downscript=no --name vm0",
		vm:   "vm0",
		taps: []tapWant{{tap: "vm0-eth0", mac: "52:54:00:00:00:10"}},
		nics: 1,
	},
	{
		name: "several NICs without MAC count up",
		cmd:  "qemu-system-x86_64 -netdev tap,id=a,ifname=ta -device e1000,netdev=a -netdev tap,id=b,ifname=tb -device e1000,netdev=b -netdev tap,id=c,ifname=tc -device virtio-net-pci,netdev=c",
		taps: []tapWant{
			{tap: "ta", mac: "52:54:00:12:34:56", defaultMAC: true},
			{tap: "tb", mac: "52:54:00:12:34:57", defaultMAC: true},
			{tap: "tc", mac: "52:54:00:12:34:58", defaultMAC: true},
		},
		nics: 3,
	},
	{
		name: "-net nic gets its MAC before a -device listed earlier",
		cmd:  "qemu-system-x86_64 -netdev tap,id=d,ifname=dev0 -device e1000,netdev=d -net nic -net tap,ifname=net0",
		taps: []tapWant{
			{tap: "net0", mac: "52:54:00:12:34:56", defaultMAC: true},
			{tap: "dev0", mac: "52:54:00:12:34:57", defaultMAC: true},
		},
		nics: 2,
	},
	{
		name: "an explicit 52:54:00:12:34:56 is skipped by later defaults",
		cmd:  "qemu-system-x86_64 -nic tap,ifname=first,mac=52:54:00:12:34:56 -netdev tap,id=x,ifname=second -device e1000,netdev=x",
		taps: []tapWant{
			{tap: "first", mac: "52:54:00:12:34:56"},
			{tap: "second", mac: "52:54:00:12:34:57", defaultMAC: true},
		},
		nics: 2,
	},
	{
		name: "an explicit MAC on a later NIC can duplicate a default, as in QEMU",
		cmd:  "qemu-system-x86_64 -net nic -net tap,ifname=old -netdev tap,id=x,ifname=new -device e1000,netdev=x,mac=52:54:00:12:34:56",
		taps: []tapWant{
			{tap: "old", mac: "52:54:00:12:34:56", defaultMAC: true},
			{tap: "new", mac: "52:54:00:12:34:56"},
		},
		nics: 2,
	},
	{
		name: "key=value -device NICs are created before JSON ones",
		args: []string{"qemu-system-x86_64",
			"-netdev", "tap,id=a,ifname=json0", "-device", `{"driver":"e1000","netdev":"a"}`,
			"-netdev", "tap,id=b,ifname=kv0", "-device", "e1000,netdev=b"},
		taps: []tapWant{
			{tap: "kv0", mac: "52:54:00:12:34:56", defaultMAC: true},
			{tap: "json0", mac: "52:54:00:12:34:57", defaultMAC: true},
		},
		nics: 2,
	},
	{
		name: "a NIC with no backend still takes a default MAC",
		cmd:  "qemu-system-x86_64 -device rtl8139 -netdev type=tap,id=n1,ifname=tap1 -device rtl8139,netdev=n1",
		taps: []tapWant{{tap: "tap1", mac: "52:54:00:12:34:57", defaultMAC: true}},
		nics: 2,
	},
	{
		name: "-name guest= with debug-threads",
		cmd:  "qemu-system-x86_64 -name guest=foo,debug-threads=on -netdev tap,id=hn0,ifname=vnet3,vhost=on -device virtio-net-pci,netdev=hn0,id=net0,mac=52:54:00:1a:2b:3c",
		vm:   "foo",
		taps: []tapWant{{tap: "vnet3", mac: "52:54:00:1a:2b:3c"}},
		nics: 1,
	},
	{
		name: "escaped commas in values",
		args: []string{"qemu-system-x86_64", "-name", "my,,vm,process=qemu-my", "-netdev", "tap,id=n0,ifname=vm,,0,script=/etc/qemu,,ifup", "-device", "e1000,netdev=n0,mac=52:54:00:00:00:01"},
		vm:   "my,vm",
		taps: []tapWant{{tap: "vm,0", mac: "52:54:00:00:00:01"}},
		nics: 1,
	},
	{
		name: "libvirt: JSON -netdev passed as fd=",
		cmd: `/usr/bin/qemu-system-x86_64 -name guest=debian12,debug-threads=on -S ` +
			`-object {"qom-type":"secret","id":"masterKey0","format":"raw","file":"/var/lib/libvirt/qemu/domain-1-debian12/master-key.aes"} ` +
			`-machine pc-q35-7.2,usb=off,vmport=off,dump-guest-core=off,memory-backend=pc.ram,hpet=off,acpi=on -accel kvm -cpu host,migratable=on ` +
			`-m size=2097152k -object {"qom-type":"memory-backend-ram","id":"pc.ram","size":2147483648} -overcommit mem-lock=off ` +
			`-smp 2,sockets=2,cores=1,threads=1 -uuid 1c2f3a4b-5c6d-7e8f-9a0b-1c2d3e4f5a6b -no-user-config -nodefaults ` +
			`-chardev socket,id=charmonitor,fd=31,server=on,wait=off -mon chardev=charmonitor,id=monitor,mode=control ` +
			`-rtc base=utc,driftfix=slew -global kvm-pit.lost_tick_policy=delay -no-shutdown ` +
			`-global ICH9-LPC.disable_s3=1 -global ICH9-LPC.disable_s4=1 -boot strict=on ` +
			`-device {"driver":"pcie-root-port","port":16,"chassis":1,"id":"pci.1","bus":"pcie.0","multifunction":true,"addr":"0x2"} ` +
			`-device {"driver":"pcie-root-port","port":17,"chassis":2,"id":"pci.2","bus":"pcie.0","addr":"0x2.0x1"} ` +
			`-blockdev {"driver":"file","filename":"/var/lib/libvirt/images/debian12.qcow2","node-name":"libvirt-1-storage","auto-read-only":true,"discard":"unmap"} ` +
			`-blockdev {"node-name":"libvirt-1-format","read-only":false,"driver":"qcow2","file":"libvirt-1-storage"} ` +
			`-device {"driver":"virtio-blk-pci","bus":"pci.2","addr":"0x0","drive":"libvirt-1-format","id":"virtio-disk0","bootindex":1} ` +
			`-netdev {"type":"tap","fd":"33","vhost":true,"vhostfd":"35","id":"hostnet0"} ` +
			`-device {"driver":"virtio-net-pci","netdev":"hostnet0","id":"net0","mac":"52:54:00:6b:3c:58","bus":"pci.1","addr":"0x0"} ` +
			`-chardev pty,id=charserial0 -device {"driver":"isa-serial","chardev":"charserial0","id":"serial0","index":0} ` +
			`-audiodev {"id":"audio1","driver":"none"} -vnc 127.0.0.1:0,audiodev=audio1 ` +
			`-device {"driver":"virtio-vga","id":"video0","max_outputs":1,"bus":"pcie.0","addr":"0x1"} ` +
			`-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny -msg timestamp=on`,
		vm:   "debian12",
		taps: []tapWant{{tap: "vnet0", why: "fd="}},
		nics: 1,
	},
	{
		name: "libvirt: JSON -netdev with ifname and a script",
		cmd: `/usr/bin/qemu-system-x86_64 -name guest=web,debug-threads=on -S -no-user-config -nodefaults ` +
			`-netdev {"type":"tap","ifname":"vnet7","script":"/etc/qemu-ifup","downscript":"no","id":"hostnet0"} ` +
			`-device {"driver":"virtio-net-pci","netdev":"hostnet0","id":"net0","mac":"52:54:00:6b:3c:59","bus":"pci.1","addr":"0x0"} ` +
			`-netdev {"type":"tap","ifname":"vnet8","id":"hostnet1"} ` +
			`-device {"driver":"e1000","netdev":"hostnet1","id":"net1"}`,
		vm: "web",
		taps: []tapWant{
			{tap: "vnet7", mac: "52:54:00:6b:3c:59"},
			{tap: "vnet8", mac: "52:54:00:12:34:56", defaultMAC: true},
		},
		nics: 2,
	},
	{
		name: "-net nic,netdev= wires the NIC to the -netdev, not to a hub",
		cmd:  "qemu-system-x86_64 -netdev tap,id=foo,ifname=tap9 -net nic,model=e1000,netdev=foo,macaddr=52-54-00-09-09-09 -net nic -net user",
		taps: []tapWant{{tap: "tap9", mac: "52:54:00:09:09:09"}},
		nics: 2,
	},
	{
		name: "-netdev hubport joins a TAP to a NIC",
		cmd:  "qemu-system-x86_64 -netdev tap,id=t0,ifname=hubtap -netdev hubport,id=p0,hubid=2,netdev=t0 -netdev hubport,id=p1,hubid=2 -device e1000,netdev=p1,mac=52:54:00:00:00:99",
		taps: []tapWant{{tap: "hubtap", mac: "52:54:00:00:00:99"}},
		nics: 1,
	},
	{
		name: "-set changes a -device given before it",
		cmd:  "qemu-system-x86_64 -netdev tap,id=n0,ifname=t0 -device e1000,id=net0,netdev=n0,mac=52:54:00:00:00:01 -set device.net0.mac=52:54:00:01:02:03",
		taps: []tapWant{{tap: "t0", mac: "52:54:00:01:02:03"}},
		nics: 1,
	},
	{
		name:  "-readconfig is noted, and a TAP defined there is not found",
		cmd:   "qemu-system-x86_64 -name cfg -readconfig /etc/qemu/vm.cfg -nodefaults",
		vm:    "cfg",
		taps:  []tapWant{{tap: "vnet0", why: "-readconfig"}},
		nics:  0,
		notes: []string{"-readconfig \"/etc/qemu/vm.cfg\" not read"},
	},
	{
		name:  "no network options: QEMU's default -net nic takes 52:54:00:12:34:56",
		cmd:   "qemu-system-x86_64 -m 512 -netdev-missing -device virtio-net-pci,netdev=hot0",
		taps:  []tapWant{{tap: "tap0", why: "monitor"}},
		nics:  2,
		macs:  []string{"52:54:00:12:34:56", "52:54:00:12:34:57"},
		notes: []string{"default -net nic", "unknown option \"-netdev-missing\"", "netdev=hot0 names no -netdev"},
	},
	{
		name:  "TAP named by the kernel",
		cmd:   "qemu-system-x86_64 -netdev tap,id=n0 -device e1000,netdev=n0 -netdev tap,id=n1,ifname=tap%d -device e1000,netdev=n1",
		taps:  []tapWant{{tap: "tap0", why: "2 TAPs have no fixed name"}},
		nics:  2,
		notes: nil,
	},
	{
		name:  "ifname longer than IFNAMSIZ is cut as the kernel cuts it",
		cmd:   "qemu-system-x86_64 -netdev tap,id=n0,ifname=averyveryverylongname -device e1000,netdev=n0,mac=52:54:00:00:00:02",
		taps:  []tapWant{{tap: "averyveryverylo", mac: "52:54:00:00:00:02"}, {tap: "averyveryverylongname", why: "no TAP named"}},
		nics:  1,
		notes: []string{"longer than 15 bytes"},
	},
	{
		name: "option names: -name=x is not an option, an argument may start with '-'",
		args: []string{"qemu-system-x86_64", "-name=bad", "-kernel", "-net", "nic", "-net", "tap,ifname=t9", "-name", "-dashed-"},
		vm:   "-dashed-",
		taps: []tapWant{{tap: "t9", why: "wired to no NIC"}},
		nics: 0,
		notes: []string{
			"unknown option \"-name=bad\"",
		},
	},
	{
		name: "lenient -net nic macaddr forms",
		cmd:  "qemu-system-x86_64 -net nic,vlan=1,macaddr=0x123456 -net tap,vlan=1,ifname=num -net nic,vlan=2,macaddr=52:54:0:a:b:c -net tap,vlan=2,ifname=short -net nic,vlan=3,macaddr=0 -net tap,vlan=3,ifname=zero",
		taps: []tapWant{
			{tap: "num", mac: "00:00:00:12:34:56"},
			{tap: "short", mac: "52:54:00:0a:0b:0c"},
			{tap: "zero", mac: "52:54:00:12:34:56", defaultMAC: true},
		},
		nics: 3,
	},
	{
		name: "malformed options are noted, not fatal",
		args: []string{"qemu-system-x86_64", "-device", `{"driver":"e1000",`, "-net", "nic,macaddr=zz:zz", "-net", "tap,ifname=bad",
			"-device", "e1000,mac=52:54:00:00:00", "-netdev", "tap,ifname=noid", "-set", "device.nosuch.mac=1", "-net", "vlan=3", "-netdev"},
		taps: []tapWant{{tap: "bad", why: "whose MAC QEMU would not accept"}, {tap: "noid", why: "no TAP named"}},
		nics: 2,
		macs: []string{"", ""},
		notes: []string{
			"not understood as JSON",
			"macaddr=zz:zz is not a MAC",
			"mac=52:54:00:00:00 is not a MAC",
			"no id=",
			"no -device with id=nosuch",
			"no type",
			"-netdev has no argument",
		},
	},
	{
		name: "same ifname twice",
		cmd:  "qemu-system-x86_64 -netdev tap,id=a,ifname=dup -device e1000,netdev=a -netdev tap,id=b,ifname=dup -device e1000,netdev=b",
		taps: []tapWant{{tap: "dup", why: "given 2 times"}},
		nics: 2,
		macs: []string{"52:54:00:12:34:56", "52:54:00:12:34:57"},
	},
}

func TestParseCommandLines(t *testing.T) {
	if len(cmdlineTests) < 15 {
		t.Fatalf("only %d command lines", len(cmdlineTests))
	}
	for _, tt := range cmdlineTests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args == nil {
				args = strings.Fields(tt.cmd)
			}
			vm, err := Parse(args)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if vm.Name != tt.vm {
				t.Errorf("Name = %q, want %q", vm.Name, tt.vm)
			}
			if tt.nics >= 0 && len(vm.NICs) != tt.nics {
				t.Errorf("%d NICs, want %d: %+v", len(vm.NICs), tt.nics, vm.NICs)
			}
			if tt.macs != nil {
				var macs []string
				for _, nic := range vm.NICs {
					mac := ""
					if nic.MAC != nil {
						mac = nic.MAC.String()
					}
					macs = append(macs, mac)
				}
				if fmt.Sprint(macs) != fmt.Sprint(tt.macs) {
					t.Errorf("MACs = %q, want %q", macs, tt.macs)
				}
			}
			for _, w := range tt.taps {
				nic, ok, why := vm.NICForTAP(w.tap)
				switch {
				case w.mac == "" && ok:
					t.Errorf("NICForTAP(%q) = %v, want none (%s)", w.tap, nic.MAC, w.why)
				case w.mac == "" && !strings.Contains(why, w.why):
					t.Errorf("NICForTAP(%q): why = %q, want it to mention %q", w.tap, why, w.why)
				case w.mac != "" && !ok:
					t.Errorf("NICForTAP(%q): none: %s", w.tap, why)
				case w.mac != "" && (nic.MAC.String() != w.mac || nic.DefaultMAC != w.defaultMAC):
					t.Errorf("NICForTAP(%q) = %v default=%v, want %s default=%v", w.tap, nic.MAC, nic.DefaultMAC, w.mac, w.defaultMAC)
				}
			}
			for _, want := range tt.notes {
				if !containsSub(vm.Notes, want) {
					t.Errorf("no note mentions %q; notes: %q", want, vm.Notes)
				}
			}
			checkInvariants(t, vm, args)
		})
	}
}

func containsSub(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestParseNICFields(t *testing.T) {
	vm, err := Parse(strings.Fields("qemu-system-x86_64 -netdev tap,id=hn0,ifname=vnet0 -device virtio-net-pci,id=net0,netdev=hn0 -nic tap,id=n1,ifname=vnet1,model=e1000 -net nic,name=legacy,model=rtl8139 -net tap,ifname=vnet2"))
	if err != nil {
		t.Fatal(err)
	}
	want := []NIC{
		{TAP: "vnet1", Model: "e1000", ID: "n1", Option: "-nic"},
		{TAP: "vnet2", Model: "rtl8139", ID: "legacy", Option: "-net nic"},
		{TAP: "vnet0", Model: "virtio-net-pci", ID: "net0", Option: "-device"},
	}
	if len(vm.NICs) != len(want) {
		t.Fatalf("NICs = %+v", vm.NICs)
	}
	for i, w := range want {
		got := vm.NICs[i]
		w.MAC, w.DefaultMAC = got.MAC, true
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("NICs[%d] = %+v, want %+v", i, got, w)
		}
		if wantMAC := fmt.Sprintf("52:54:00:12:34:%02x", 0x56+i); got.MAC.String() != wantMAC {
			t.Errorf("NICs[%d].MAC = %v, want %s", i, got.MAC, wantMAC)
		}
	}
}

func TestParseName(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-name", "plain"}, "plain"},
		{[]string{"--name", "double"}, "double"},
		{[]string{"-name", "guest=g,process=p,debug-threads=on"}, "g"},
		{[]string{"-name", "process=p"}, ""},
		{[]string{"-name", ""}, ""},
		{[]string{"-name", "a,,b"}, "a,b"},
		{[]string{"-name", "first", "-name", "debug-threads=on"}, "first"},
		{[]string{"-name", "first", "-name", "second"}, "second"},
		{[]string{"-name", "guest=x,guest=y"}, "y"},
		{[]string{"-name=nope"}, ""},
		{[]string{"-append", "-name evil", "-name", "good"}, "good"},
		{[]string{"disk.img", "-name", "after-disk"}, "after-disk"},
		{[]string{"-name"}, ""},
	} {
		vm, err := Parse(append([]string{"qemu-system-x86_64"}, tt.args...))
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if vm.Name != tt.want {
			t.Errorf("%q: Name = %q, want %q", tt.args, vm.Name, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := Parse(nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("Parse(nil) = %v, want ErrEmpty", err)
	}
	if _, err := Parse(make([]string, maxArgs+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("too many args: %v, want ErrTooLong", err)
	}
	if _, err := Parse([]string{"qemu", strings.Repeat("x", maxBytes)}); !errors.Is(err, ErrTooLong) {
		t.Errorf("too many bytes: %v, want ErrTooLong", err)
	}
	vm, err := Parse([]string{"qemu-system-x86_64"})
	if err != nil || vm.Name != "" {
		t.Errorf("bare argv[0]: %+v, %v", vm, err)
	}
	var nilVM *VM
	if _, ok, why := nilVM.NICForTAP("vnet0"); ok || why == "" {
		t.Errorf("nil VM: ok=%v why=%q", ok, why)
	}
}

// TestParseBounded feeds the largest hostile inputs Parse accepts and checks
// the work stays roughly linear.
func TestParseBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	inputs := map[string][]string{}
	hub := []string{"qemu"}
	for len(hub)+4 <= maxArgs {
		hub = append(hub, "-net", "nic", "-net", "tap,ifname=t")
	}
	inputs["one hub, many NICs and TAPs"] = hub
	devs := []string{"qemu"}
	for i := 0; len(devs)+4 <= maxArgs; i++ {
		devs = append(devs, "-netdev", fmt.Sprintf("tap,id=n%d,ifname=t%d", i, i), "-device", fmt.Sprintf("e1000,netdev=n%d", i))
	}
	inputs["many -device NICs"] = devs
	inputs["one huge escaped value"] = []string{"qemu", "-name", strings.Repeat(",,", maxBytes/2-16)}
	inputs["unknown options"] = append([]string{"qemu"}, strings.Fields(strings.Repeat("-x -y -z ", maxArgs/3-1))...)
	sets := []string{"qemu", "-device", "e1000,id=d"}
	for len(sets)+2 <= maxArgs {
		sets = append(sets, "-set", "device.d.mac=52:54:00:00:00:01")
	}
	inputs["many -set"] = sets
	for name, args := range inputs {
		start := time.Now()
		vm, err := Parse(args)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		vm.NICForTAP("t")
		vm.NICForTAP("t5")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v", name, d)
		}
		if len(vm.Notes) > maxNotes {
			t.Errorf("%s: %d notes", name, len(vm.Notes))
		}
	}
}

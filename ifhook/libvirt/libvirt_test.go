package libvirt

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestParseStatus(t *testing.T) {
	data, err := os.ReadFile("testdata/lv-one.status.xml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseStatus(data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "lv-one" || d.State != "paused" || d.PID != 19045 || len(d.Interfaces) != 2 {
		t.Fatalf("ParseStatus = %+v", d)
	}
	if i := d.Interfaces[0]; i.Type != "ethernet" || i.MAC.String() != "52:54:00:5a:00:01" || i.Target != "vnet0" {
		t.Errorf("interface 0 = %+v", i)
	}
	if _, err := ParseConfig(data); err == nil {
		t.Error("ParseConfig took a status file")
	}
}

func TestParseRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"empty":         "",
		"not xml":       "hello",
		"wrong root":    "<domain><name>x</name></domain>",
		"no name":       "<domstatus><domain></domain></domstatus>",
		"bad pid":       "<domstatus pid='-1'><domain><name>x</name></domain></domstatus>",
		"huge pid":      "<domstatus pid='99999999999'><domain><name>x</name></domain></domstatus>",
		"doctype":       "<!DOCTYPE x [<!ENTITY a 'b'>]><domstatus><domain><name>&a;</name></domain></domstatus>",
		"unclosed":      "<domstatus><domain><name>x</name>",
		"charset":       "<?xml version='1.0' encoding='ISO-8859-1'?><domstatus><domain><name>x</name></domain></domstatus>",
		"too large":     "<domstatus>" + strings.Repeat(" ", MaxXML) + "</domstatus>",
		"long name":     "<domstatus><domain><name>" + strings.Repeat("x", 600) + "</name></domain></domstatus>",
		"name not utf8": "<domstatus><domain><name>\xff</name></domain></domstatus>",
	} {
		if d, err := ParseStatus([]byte(in)); err == nil {
			t.Errorf("%s: ParseStatus = %+v", name, d)
		}
	}
	d, err := ParseConfig([]byte("<domain type='qemu'><name> x </name><devices><interface type='ethernet'><mac address='nonsense'/></interface></devices></domain>"))
	if err != nil || d.Name != "x" || len(d.Interfaces) != 1 || d.Interfaces[0].MAC != nil {
		t.Errorf("ParseConfig = %+v, %v", d, err)
	}
}

func dom(name string, pid int, ifaces ...Interface) *Domain {
	return &Domain{Name: name, PID: pid, Interfaces: ifaces}
}

func TestResolve(t *testing.T) {
	m1 := mac("52:54:00:5a:00:01")
	one := Interface{Type: "ethernet", MAC: m1, Target: "vnet0"}
	cfg := func(name string, m net.HardwareAddr) File {
		return File{Path: "/etc/libvirt/qemu/" + name + ".xml", Domain: dom(name, 0, Interface{Type: "ethernet", MAC: m})}
	}
	for _, tt := range []struct {
		name     string
		tap      string
		tapMAC   string
		s        Snapshot
		domain   string
		mac      string
		pid      int
		inferred bool
		source   string
		why      string
	}{
		{name: "status names the TAP", tap: "vnet0", tapMAC: "fe:54:00:5a:00:01",
			s:      Snapshot{Status: []File{{Path: "/run/libvirt/qemu/lv-one.xml", Domain: dom("lv-one", 42, one)}}},
			domain: "lv-one", mac: "52:54:00:5a:00:01", pid: 42, source: "status /run/libvirt/qemu/lv-one.xml"},
		{name: "status with a stale TAP of that name", tap: "vnet0", tapMAC: "fe:54:00:99:00:01",
			s:   Snapshot{Status: []File{{Path: "/run/libvirt/qemu/lv-one.xml", Domain: dom("lv-one", 42, one)}}},
			why: "stale?"},
		{name: "config of a persistent domain", tap: "vnet1", tapMAC: "fe:54:00:5a:00:02",
			s:      Snapshot{Config: []File{cfg("a", mac("52:54:00:5a:00:01")), cfg("b", mac("52:54:00:5a:00:02"))}},
			domain: "b", mac: "52:54:00:5a:00:02", source: "configuration /etc/libvirt/qemu/b.xml"},
		{name: "config: the running twin is left out", tap: "vnet1", tapMAC: "fe:54:00:5a:00:01",
			s: Snapshot{
				Status: []File{{Path: "/run/libvirt/qemu/a.xml", Domain: dom("a", 42, one)}},
				Config: []File{cfg("a", m1), cfg("b", m1)}},
			domain: "b", mac: "52:54:00:5a:00:01"},
		{name: "config: two domains stopped with one MAC", tap: "vnet1", tapMAC: "fe:54:00:5a:00:01",
			s:   Snapshot{Config: []File{cfg("a", m1), cfg("b", m1)}},
			why: "2 domains (a, b)"},
		{name: "the one domain starting", tap: "vnet1", tapMAC: "fe:54:00:5a:00:01",
			s:      Snapshot{LibDir: "/var/lib/libvirt/qemu", Starting: []string{"domain-2-lv-two"}},
			domain: "lv-two", mac: "52:54:00:5a:00:01", inferred: true, source: "domain-2-lv-two"},
		{name: "starting, guest MAC began with fe", tap: "vnet1", tapMAC: "fa:54:00:5a:00:01",
			s:      Snapshot{Starting: []string{"domain-2-lv-two"}},
			domain: "lv-two", mac: "fe:54:00:5a:00:01"},
		{name: "two starting", tap: "vnet1", tapMAC: "fe:54:00:5a:00:01",
			s:   Snapshot{Starting: []string{"domain-2-a", "domain-3-b"}},
			why: "2 domains are starting"},
		{name: "nothing", tap: "vnet1", tapMAC: "fe:54:00:5a:00:01", why: "none is starting"},
		{name: "not libvirt's MAC", tap: "vnet1", tapMAC: "52:54:00:5a:00:01",
			s:   Snapshot{Starting: []string{"domain-2-lv-two"}},
			why: "not one libvirt sets"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, ok, why := Resolve(tt.tap, mac(tt.tapMAC), 0x52, &tt.s)
			if tt.why != "" {
				if ok || !strings.Contains(why, tt.why) {
					t.Errorf("Resolve = %+v, %v, %q; want no answer, %q", f, ok, why, tt.why)
				}
				return
			}
			if !ok || f.Domain != tt.domain || f.MAC.String() != tt.mac || f.PID != tt.pid || f.Inferred != tt.inferred || !strings.Contains(f.Source, tt.source) {
				t.Errorf("Resolve = %+v, %v, %q", f, ok, why)
			}
		})
	}
}

func TestRead(t *testing.T) {
	root := t.TempDir()
	dirs := Dirs{Status: filepath.Join(root, "run"), Config: filepath.Join(root, "etc"), Lib: filepath.Join(root, "lib")}
	for _, d := range []string{dirs.Status, dirs.Config, dirs.Lib + "/domain-1-lv-one", dirs.Lib + "/domain-2-lv-two", dirs.Lib + "/channel"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	status, _ := os.ReadFile("testdata/lv-one.status.xml")
	os.WriteFile(filepath.Join(dirs.Status, "lv-one.xml"), status, 0o600)
	os.WriteFile(filepath.Join(dirs.Status, "junk.xml"), []byte("<nope/>"), 0o600)
	os.Symlink("/etc/passwd", filepath.Join(dirs.Config, "link.xml"))
	unix.Mkfifo(filepath.Join(dirs.Config, "fifo.xml"), 0o600)
	os.WriteFile(filepath.Join(dirs.Config, "lv-three.xml"), []byte("<domain><name>lv-three</name><devices><interface type='ethernet'><mac address='52:54:00:5a:00:03'/></interface></devices></domain>"), 0o600)
	s := Read(dirs)
	if len(s.Starting) != 1 || s.Starting[0] != "domain-2-lv-two" {
		t.Errorf("Starting = %q", s.Starting)
	}
	if len(s.Notes) != 3 {
		t.Errorf("notes %q, want 3 (junk, link, fifo)", s.Notes)
	}
	f, ok, why := Resolve("vnet0", mac("fe:54:00:5a:00:01"), 0x52, s)
	if !ok || f.Domain != "lv-one" || f.PID != 19045 {
		t.Errorf("Resolve(vnet0) = %+v, %v, %q", f, ok, why)
	}
	f, ok, why = Resolve("vnet5", mac("fe:54:00:5a:00:03"), 0x52, s)
	if !ok || f.Domain != "lv-three" {
		t.Errorf("Resolve(vnet5) = %+v, %v, %q", f, ok, why)
	}
	f, ok, why = Resolve("vnet6", mac("fe:54:00:5a:00:09"), 0x52, s)
	if !ok || f.Domain != "lv-two" || !f.Inferred {
		t.Errorf("Resolve(vnet6) = %+v, %v, %q", f, ok, why)
	}
	if empty := Read(Dirs{Status: "/nonexistent", Config: "/nonexistent", Lib: "/nonexistent"}); len(empty.Notes) != 0 || len(empty.Status) != 0 {
		t.Errorf("missing dirs: %+v", empty)
	}
}

func TestIsDaemon(t *testing.T) {
	for exe, want := range map[string]bool{"/usr/sbin/libvirtd": true, "/usr/sbin/virtqemud": true, "/usr/sbin/virtqemud (deleted)": true,
		"/usr/bin/qemu-system-x86_64": false, "/usr/sbin/virtlogd": false, "": false} {
		if IsDaemon(exe) != want {
			t.Errorf("IsDaemon(%q) = %v", exe, !want)
		}
	}
}

// FuzzParseStatus: whatever the bytes, ParseStatus returns a bounded
// domain or an error, never panics.
func FuzzParseStatus(f *testing.F) {
	data, _ := os.ReadFile("testdata/lv-one.status.xml")
	f.Add(data)
	f.Add([]byte("<domstatus pid='1'><domain><name>x</name><devices><interface><target dev='v'/></interface></devices></domain></domstatus>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseStatus(data)
		if err != nil {
			return
		}
		if d.Name == "" || len(d.Name) > maxName || d.PID < 0 {
			t.Errorf("ParseStatus = %+v", d)
		}
		for _, i := range d.Interfaces {
			if len(i.Target) > 64 || (i.MAC != nil && len(i.MAC) != 6) {
				t.Errorf("interface %+v", i)
			}
		}
		Resolve("vnet0", mac("fe:54:00:00:00:01"), 0x52, &Snapshot{Status: []File{{Domain: d}}, Config: []File{{Domain: d}}})
	})
}

package guest

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseResults: the marker lines of init.sh, as Result.
func TestParseResults(t *testing.T) {
	c := newConsole()
	for _, l := range []string{
		"IFHOOK-GUEST BOOT uptime=1.00",
		"IFHOOK-GUEST RESULT dhcp4 ok=1 ip=192.168.77.120/24 router=none dns=192.168.77.1,192.168.77.2 mtu=1400 lease=3600 hostname=first domain=vm server=192.168.77.1",
		"IFHOOK-GUEST RESULT slaac ok=1 ip=fd00:0042:0000:0000:5054:00ff:fe12:3456/64 router=fe80::1 mtu=1280",
		"IFHOOK-GUEST READY if=eth0 mac=52:54:00:12:34:56 ip=none gw4=none gw6=fe80::1 uptime=3.00",
		"IFHOOK-GUEST RESULT resolve name=first.vm ok=1 addr=192.168.77.10,fd00:42::10 tries=2 err=none",
		"IFHOOK-GUEST RESULT resolve name=nope.vm ok=0 addr=none tries=9 err=NXDOMAIN",
		"IFHOOK-GUEST RESULT ping=192.168.77.1 ok=1 tries=1",
		"IFHOOK-GUEST DONE",
	} {
		c.line(l)
	}
	if err := c.parseError(); err != nil {
		t.Fatal(err)
	}
	r := c.result()
	wantLease := Lease{OK: true, IP: netip.MustParsePrefix("192.168.77.120/24"),
		DNS: []netip.Addr{netip.MustParseAddr("192.168.77.1"), netip.MustParseAddr("192.168.77.2")},
		MTU: 1400, Lease: time.Hour, Hostname: "first", Domain: "vm", Server: netip.MustParseAddr("192.168.77.1")}
	if l := *r.DHCP; l.OK != wantLease.OK || l.IP != wantLease.IP || l.Router.IsValid() || !slices.Equal(l.DNS, wantLease.DNS) ||
		l.MTU != wantLease.MTU || l.Lease != wantLease.Lease || l.Hostname != wantLease.Hostname || l.Domain != wantLease.Domain || l.Server != wantLease.Server {
		t.Errorf("lease %+v, want %+v", l, wantLease)
	}
	if a := *r.SLAAC; a != (Autoconf{OK: true, IP: netip.MustParsePrefix("fd00:42::5054:ff:fe12:3456/64"), Router: netip.MustParseAddr("fe80::1"), MTU: 1280}) {
		t.Errorf("slaac %+v", a)
	}
	if r.Via4.IsValid() || r.Via6 != netip.MustParseAddr("fe80::1") {
		t.Errorf("via %v %v", r.Via4, r.Via6)
	}
	if got := r.Resolved("first.vm"); len(got) != 2 || got[1] != netip.MustParseAddr("fd00:42::10") {
		t.Errorf("first.vm: %v", got)
	}
	if l := r.Lookups[1]; l.OK || l.Err != "NXDOMAIN" || l.Tries != 9 || r.Resolved("nope.vm") != nil {
		t.Errorf("nope.vm: %+v", l)
	}
	if !r.OK("192.168.77.1") || len(r.Pings) != 1 {
		t.Errorf("pings %+v", r.Pings)
	}

	for _, bad := range []string{
		"IFHOOK-GUEST RESULT dhcp4 ok=1 ip=192.168.77.120 router=none",
		"IFHOOK-GUEST RESULT slaac ok=1 ip=fd00::1/64 router=nonsense mtu=1280",
		"IFHOOK-GUEST RESULT resolve name=x ok=1 addr=none tries=1",
		"IFHOOK-GUEST RESULT resolve ok=1 addr=192.0.2.1",
		"IFHOOK-GUEST RESULT dhcp6 ok=1",
		"IFHOOK-GUEST RESULT ping=192.0.2.1 stray ok=1",
		"IFHOOK-GUEST READY gw4=192.0.2.300",
	} {
		c := newConsole()
		c.line(bad)
		if c.parseError() == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzResultLine: no console line makes the parser panic, and a line that
// parses gives values that print back as parseable.
func FuzzResultLine(f *testing.F) {
	for _, s := range []string{
		"dhcp4 ok=1 ip=192.168.77.120/24 router=192.168.77.1 dns=192.168.77.1 mtu=none lease=3600 hostname=none domain=none server=192.168.77.1",
		"slaac ok=0 ip=none router=none mtu=1500",
		"resolve name=a ok=1 addr=::1 tries=1 err=none",
		"ping=192.0.2.1 ok=1 tries=3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := newConsole()
		c.line("IFHOOK-GUEST RESULT " + s)
		c.line("IFHOOK-GUEST READY " + s)
		r := c.result()
		if r.DHCP != nil && r.DHCP.OK && !r.DHCP.IP.IsValid() {
			t.Errorf("%q: a lease without an address", s)
		}
		for _, l := range r.Lookups {
			if l.OK && len(l.Addrs) == 0 {
				t.Errorf("%q: resolved to nothing", s)
			}
		}
	})
}

// TestNetArgs: DHCP, SLAAC and name lookups reach the kernel command line,
// and are refused when they would garble it or contradict each other.
func TestNetArgs(t *testing.T) {
	img := &Image{Kernel: "k", Initrd: "i"}
	base := Options{Name: "first", MAC: "52:54:00:ab:cd:ef", TAP: "t0", Accel: "tcg"}
	for _, bad := range []func(o *Options){
		func(o *Options) { o.DHCP, o.Gateway = true, "192.0.2.1" },
		func(o *Options) { o.DHCPHostname = "x" },
		func(o *Options) { o.DHCP, o.DHCPHostname = true, "a b" },
		func(o *Options) { o.Resolve = []string{"a,b"} },
		func(o *Options) { o.Resolve = []string{"a..b"} },
		func(o *Options) { o.Resolve = []string{"x ifhook.hold=-1"} },
		func(o *Options) { o.DNSServer = "localhost" },
	} {
		o := base
		bad(&o)
		if _, err := img.args(o); err == nil {
			t.Errorf("args(%+v) accepted", o)
		}
	}

	o := base
	o.DHCP, o.DHCPHostname, o.SLAAC, o.NetWait = true, "first", true, 4*time.Second
	o.Resolve, o.DNSServer, o.Gateway = []string{"first.vm", "b"}, "192.168.77.1", "fd00:42::1"
	args, err := img.args(o)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{"ifhook.dhcp=1", "ifhook.hostname=first", "ifhook.slaac=1", "ifhook.netwait=4",
		"ifhook.resolve=first.vm,b", "ifhook.rwait=10", "ifhook.dns=192.168.77.1", "ifhook.gw=fd00:42::1"} {
		if !strings.Contains(line, want) {
			t.Errorf("command line lacks %q:\n%s", want, line)
		}
	}
}

package bridge

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nftable"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// testLog collects what the manager reports.
type testLog struct{ lines []string }

func (l *testLog) Applied(ctx string, b []plan.Step) {
	l.lines = append(l.lines, ctx+": "+plan.Describe(b))
}
func (l *testLog) Change(f string, a ...any) { l.lines = append(l.lines, fmt.Sprintf(f, a...)) }
func (l *testLog) Failure(err error)         { l.lines = append(l.lines, "failure: "+err.Error()) }
func (l *testLog) Notice(f string, a ...any) {
	l.lines = append(l.lines, "notice: "+fmt.Sprintf(f, a...))
}
func (l *testLog) Debug(f string, a ...any) {}

// host is a machine with one NIC, eth0: IPv4 and IPv6 addresses, a default
// route of each family and a route with a metric, as a bridged model finds
// a real NIC; a second NIC, eth1, for NAT to leave by.
func host() *kernel.Model {
	m := kernel.NewModel()
	eth := m.AddLink(kernel.Link{Name: "eth0", Type: unix.ARPHRD_ETHER, Up: true, MTU: 1500, MAC: mac("52:54:00:aa:00:01")})
	must(m.AddAddr(kernel.Addr{Index: eth, Prefix: netip.MustParsePrefix("198.51.100.7/24"), Broadcast: netip.MustParseAddr("198.51.100.255"), Label: "eth0"}))
	must(m.AddAddr(kernel.Addr{Index: eth, Prefix: netip.MustParsePrefix("2001:db8:1::7/64"), Flags: unix.IFA_F_NODAD}))
	must(m.AddRoute(kernel.Route{Index: eth, Gw: netip.MustParseAddr("198.51.100.1"), Protocol: unix.RTPROT_BOOT}))
	must(m.AddRoute(kernel.Route{Index: eth, Dst: netip.MustParsePrefix("203.0.113.0/24"), Gw: netip.MustParseAddr("198.51.100.254"), Metric: 50, Protocol: unix.RTPROT_STATIC}))
	must(m.AddRoute(kernel.Route{Index: eth, Gw: netip.MustParseAddr("2001:db8:1::1"), Metric: 1024, Protocol: unix.RTPROT_STATIC, IPv6: true}))
	eth1 := m.AddLink(kernel.Link{Name: "eth1", Kind: "veth", Up: true, MTU: 1500, MAC: mac("52:54:00:aa:00:02")})
	must(m.AddAddr(kernel.Addr{Index: eth1, Prefix: netip.MustParsePrefix("203.0.113.9/24")}))
	return m
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

const (
	isolatedPolicy = `
[bridges.br-iso]
model = "isolated"
`
	routedPolicy = `
[bridges.br-rt]
model = "routed"
address = ["192.0.2.1/24", "2001:db8:2::1/64"]
`
	natPolicy = `
[bridges.br-nat]
model = "nat"
address = "192.168.100.1/24"
uplink = "eth1"
`
	bridgedPolicy = `
[bridges.br-lan]
model = "bridged"
uplink = "eth0"
`
	natDHCPPolicy = `
[bridges.br-dh]
model = "nat"
address = ["192.168.110.1/24", "fd00:110::1/64"]
[bridges.br-dh.dhcp]
`
	isolatedDHCPPolicy = `
[bridges.br-idh]
model = "isolated"
address = "192.168.120.1/24"
[bridges.br-idh.dhcp]
domain = ""
`
)

var models = []struct{ name, bridge, policy string }{
	{"isolated", "br-iso", isolatedPolicy},
	{"routed", "br-rt", routedPolicy},
	{"nat", "br-nat", natPolicy},
	{"bridged", "br-lan", bridgedPolicy},
	{"nat-dhcp", "br-dh", natDHCPPolicy},
	{"isolated-dhcp", "br-idh", isolatedDHCPPolicy},
}

func parse(t *testing.T, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(text), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func manager(t *testing.T, k kernel.Kernel, pol *policy.Policy, dir string) (*Manager, *testLog) {
	t.Helper()
	sd, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sd.Close)
	log := &testLog{}
	sd.Report = func(err error) { log.Notice("%v", err) }
	return &Manager{Policy: pol, Kernel: k, State: sd, Log: log,
		Lock: func() (*state.Lock, error) { return sd.Lock(time.Second) },
		Now:  func() time.Time { return time.Unix(1700000000, 0) }}, log
}

// TestPlanSetup: the steps of each model, from a fresh host, as explain
// prints them.
func TestPlanSetup(t *testing.T) {
	for _, tt := range []struct {
		model string
		want  []string
	}{
		{"isolated", []string{
			"ip link add name br-iso address " + StableMAC("br-iso").String() + " mtu 1500 type bridge stp_state 0 forward_delay 0",
			"ip link set dev br-iso up",
		}},
		{"routed", []string{
			"ip link add name br-rt address " + StableMAC("br-rt").String() + " mtu 1500 type bridge stp_state 0 forward_delay 0",
			"ip link set dev br-rt up",
			"sysctl -w net.ipv4.ip_forward=1",
			"sysctl -w net.ipv6.conf.all.forwarding=1",
			"ip addr add 192.0.2.1/24 dev br-rt",
			"ip addr add 2001:db8:2::1/64 nodad dev br-rt",
		}},
		{"nat", []string{
			"ip link add name br-nat address " + StableMAC("br-nat").String() + " mtu 1500 type bridge stp_state 0 forward_delay 0",
			"ip link set dev br-nat up",
			"sysctl -w net.ipv4.ip_forward=1",
			"ip addr add 192.168.100.1/24 dev br-nat",
			nftable.TableString() + `; nft add rule inet ifhook postrouting ip saddr 192.168.100.0/24 ip daddr != 192.168.100.0/24 oifname "eth1" masquerade comment "ifhook:br-nat 192.168.100.0/24"`,
		}},
		{"bridged", []string{
			"ip link add name br-lan address 52:54:00:aa:00:01 mtu 1500 type bridge stp_state 0 forward_delay 0",
			"ip link set dev br-lan up",
			"ip -6 route del default via 2001:db8:1::1 proto 4 metric 1024 dev eth0",
			"ip route del 203.0.113.0/24 via 198.51.100.254 proto 4 metric 50 dev eth0",
			"ip route del default via 198.51.100.1 dev eth0",
			"ip addr del 198.51.100.7/24 dev eth0",
			"ip addr del 2001:db8:1::7/64 dev eth0",
			"ip link set dev eth0 master br-lan",
			"ip addr add 198.51.100.7/24 brd 198.51.100.255 label br-lan dev br-lan",
			"ip addr add 2001:db8:1::7/64 nodad dev br-lan",
			"ip route add default via 198.51.100.1 dev br-lan",
			"ip route add 203.0.113.0/24 via 198.51.100.254 proto 4 metric 50 dev br-lan",
			"ip -6 route add default via 2001:db8:1::1 proto 4 metric 1024 dev br-lan",
		}},
	} {
		t.Run(tt.model, func(t *testing.T) {
			for _, m := range models {
				if m.name != tt.model {
					continue
				}
				pol := parse(t, m.policy)
				k := host()
				obs, err := kernel.Observe(k, setupQuery(pol.Spec(m.bridge)))
				if err != nil {
					t.Fatal(err)
				}
				p, err := PlanSetup(pol, pol.Spec(m.bridge), obs, nil, true)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, p.Lines()); diff != "" {
					t.Errorf("steps (-want +got):\n%s", diff)
				}
				if !p.Makes {
					t.Error("Makes = false for a missing bridge")
				}
			}
		})
	}
}

func TestPlanSetupRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, policy, bridge string
		prep                 func(k *kernel.Model)
		code                 int
		want                 string
	}{
		{"uplink missing", "[bridges.br0]\nmodel = \"bridged\"\nuplink = \"eth9\"\n", "br0", nil, 69, "uplink eth9 of bridge br0 does not exist (bridges.br0 at test.toml:1)"},
		{"uplink is a bridge", "[bridges.br0]\nmodel = \"bridged\"\nuplink = \"brx\"\n", "br0", func(k *kernel.Model) { k.CreateBridge("brx", kernel.BridgeOptions{}) }, 78, "uplink brx of bridge br0 is itself a bridge"},
		{"uplink enslaved", bridgedPolicy, "br-lan", func(k *kernel.Model) {
			i, _ := k.CreateBridge("other", kernel.BridgeOptions{})
			eth, _ := k.LinkByName("eth0")
			k.SetLink(eth.Index, kernel.Change{Master: &i})
		}, 69, "uplink eth0 of bridge br-lan is already a port of other"},
		{"address taken", "[bridges.br0]\nmodel = \"routed\"\naddress = \"198.51.100.7/24\"\n", "br0", nil, 69, "address 198.51.100.7/24 of bridge br0 is already on eth0"},
		{"not a bridge", "[bridges.eth1]\nmodel = \"isolated\"\n", "eth1", nil, 69, "eth1 is a veth, not a bridge"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pol := parse(t, tt.policy)
			k := host()
			if tt.prep != nil {
				tt.prep(k)
			}
			spec := pol.Spec(tt.bridge)
			obs, err := kernel.Observe(k, setupQuery(spec))
			if err != nil {
				t.Fatal(err)
			}
			p, err := PlanSetup(pol, spec, obs, nil, true)
			if exit.Code(err) != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("PlanSetup = %v (exit %d), want %d and %q", err, exit.Code(err), tt.code, tt.want)
			}
			if len(p.Steps) != 0 {
				t.Fatalf("a refused plan has steps: %v", p.Lines())
			}
		})
	}
}

// TestBridgedRefusesManagedUplink: an uplink a DHCP client or a network
// manager configures is refused, saying what to do for that manager, and
// nothing is planned.
func TestBridgedRefusesManagedUplink(t *testing.T) {
	for _, tt := range []struct {
		name string
		prep func(k *kernel.Model)
		want []string
	}{
		{"udhcpc", func(k *kernel.Model) {
			k.SetManagers("eth0", kernel.Manager{Name: "udhcpc", PID: 42, How: "process 42"})
		},
			[]string{"is configured by udhcpc (process 42)", "stop udhcpc on eth0", "kill -USR2 then kill 42", `use model = "nat" with uplink = "eth0"`}},
		{"NetworkManager", func(k *kernel.Model) { k.SetManagers("eth0", kernel.Manager{Name: "NetworkManager", PID: 7}) },
			[]string{"nmcli connection add type bridge ifname br-lan", "nmcli connection add type bridge-slave ifname eth0 master br-lan", `set bridge = "br-lan"`}},
		{"systemd-networkd", func(k *kernel.Model) { k.SetManagers("eth0", kernel.Manager{Name: "systemd-networkd"}) },
			[]string{"br-lan.netdev with [NetDev] Name=br-lan Kind=bridge", "Bridge=br-lan", "networkctl reload"}},
		{"ifupdown", func(k *kernel.Model) {
			k.SetManagers("eth0", kernel.Manager{Name: "ifupdown", How: "/run/network/ifstate"})
		},
			[]string{"iface br-lan inet dhcp / bridge_ports eth0", "iface eth0 inet manual"}},
		{"a lease and no client", func(k *kernel.Model) {
			eth, _ := k.LinkByName("eth0")
			k.AddAddr(kernel.Addr{Index: eth.Index, Prefix: netip.MustParsePrefix("198.51.100.99/24"), Dynamic: true})
		}, []string{"has the dynamic address 198.51.100.99/24", "give eth0 a static address"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pol := parse(t, bridgedPolicy)
			k := host()
			tt.prep(k)
			spec := pol.Spec("br-lan")
			obs, err := kernel.Observe(k, setupQuery(spec))
			if err != nil {
				t.Fatal(err)
			}
			p, err := PlanSetup(pol, spec, obs, nil, true)
			if exit.Code(err) != 69 || len(p.Steps) != 0 {
				t.Fatalf("PlanSetup = %v, %v; want 69 and no steps", p.Lines(), err)
			}
			for _, w := range append(tt.want, "nothing was changed", "(bridges.br-lan at test.toml:2)") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Error("error spans lines")
			}
		})
	}
}

// TestSetupAndTeardown: for each model, setup changes the host, a second
// setup has nothing to do, and teardown gives back exactly the host as it
// was; a second teardown succeeds with nothing to do.
func TestSetupAndTeardown(t *testing.T) {
	for _, md := range models {
		t.Run(md.name, func(t *testing.T) {
			k := host()
			before := k.Dump()
			m, _ := manager(t, k, parse(t, md.policy), filepath.Join(t.TempDir(), "state"))
			plans, err := m.Setup()
			if err != nil || len(plans) != 1 || len(plans[0].Steps) == 0 {
				t.Fatalf("Setup = %v, %v", plans, err)
			}
			if cmp.Equal(before, k.Dump()) {
				t.Fatal("setup changed nothing")
			}
			plans, err = m.Setup()
			if err != nil || len(plans[0].Steps) != 0 {
				t.Fatalf("second Setup: %v, %v", plans[0].Lines(), err)
			}
			if _, err := m.Teardown(false, md.bridge); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, k.Dump()); diff != "" {
				t.Fatalf("teardown left (-before +after):\n%s", diff)
			}
			if rec, _ := m.State.ReadBridge(md.bridge); rec != nil {
				t.Fatal("the record stayed")
			}
			plans, err = m.Teardown(false, md.bridge)
			if err != nil || len(plans) != 1 || len(plans[0].Notes) == 0 {
				t.Fatalf("second Teardown = %v, %v", plans, err)
			}
		})
	}
}

// killed is the panic a dying kernel raises: the process is gone there and
// then, its journal as it wrote it.
type killed struct{}

// dying is a kernel that is "killed" just before (or just after) its nth
// change.
type dying struct {
	kernel.Kernel
	n     int
	after bool
	count int
}

func (d *dying) change(f func() error) error {
	d.count++
	if d.count == d.n && !d.after {
		panic(killed{})
	}
	err := f()
	if d.count == d.n && d.after {
		panic(killed{})
	}
	return err
}

func (d *dying) SetLink(i int, ch kernel.Change) error {
	return d.change(func() error { return d.Kernel.SetLink(i, ch) })
}
func (d *dying) CreateBridge(n string, o kernel.BridgeOptions) (i int, err error) {
	err = d.change(func() error { i, err = d.Kernel.CreateBridge(n, o); return err })
	return
}
func (d *dying) DeleteLink(i int) error {
	return d.change(func() error { return d.Kernel.DeleteLink(i) })
}
func (d *dying) AddAddr(a kernel.Addr) error {
	return d.change(func() error { return d.Kernel.AddAddr(a) })
}
func (d *dying) DelAddr(a kernel.Addr) error {
	return d.change(func() error { return d.Kernel.DelAddr(a) })
}
func (d *dying) AddRoute(r kernel.Route) error {
	return d.change(func() error { return d.Kernel.AddRoute(r) })
}
func (d *dying) DelRoute(r kernel.Route) error {
	return d.change(func() error { return d.Kernel.DelRoute(r) })
}
func (d *dying) SetSysctl(k, v string) error {
	return d.change(func() error { return d.Kernel.SetSysctl(k, v) })
}
func (d *dying) AddNAT(r nftable.NAT) error {
	return d.change(func() error { return d.Kernel.AddNAT(r) })
}
func (d *dying) DelNAT(r nftable.NAT) error {
	return d.change(func() error { return d.Kernel.DelNAT(r) })
}
func (d *dying) AddServices(r nftable.Services) error {
	return d.change(func() error { return d.Kernel.AddServices(r) })
}
func (d *dying) DelServices(r nftable.Services) error {
	return d.change(func() error { return d.Kernel.DelServices(r) })
}
func (d *dying) StartDHCPServer(b string, conf []byte) error {
	return d.change(func() error { return d.Kernel.StartDHCPServer(b, conf) })
}
func (d *dying) StopDHCPServer(b string) error {
	return d.change(func() error { return d.Kernel.StopDHCPServer(b) })
}

// run runs f, reporting whether the dying kernel killed it.
func run(f func()) (died bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(killed); !ok {
				panic(r)
			}
			died = true
		}
	}()
	f()
	return false
}

// TestKilledAnywhere kills setup, and then teardown, before and after each
// of their changes in turn: whatever point it reached, the next teardown
// (or setup, then teardown) gives back exactly the host as it was.
func TestKilledAnywhere(t *testing.T) {
	for _, md := range models {
		for _, after := range []bool{false, true} {
			for _, next := range []string{"teardown", "setup"} {
				name := fmt.Sprintf("%s/setup killed %s/then %s", md.name, map[bool]string{false: "before", true: "after"}[after], next)
				t.Run(name, func(t *testing.T) {
					for n := 1; ; n++ {
						k := host()
						before := k.Dump()
						dir := filepath.Join(t.TempDir(), "state")
						d := &dying{Kernel: k, n: n, after: after}
						m, _ := manager(t, d, parse(t, md.policy), dir)
						if !run(func() { m.Setup() }) {
							if n == 1 {
								t.Fatal("setup made no change")
							}
							t.Logf("killed at each of %d changes", n-1)
							return // past the last change
						}
						m2, _ := manager(t, k, parse(t, md.policy), dir)
						if next == "setup" {
							if _, err := m2.Setup(); err != nil {
								t.Fatalf("n=%d: setup after the kill: %v", n, err)
							}
							if p, _ := m2.ExplainSetup(); len(p[0].Steps) != 0 {
								t.Fatalf("n=%d: setup after the kill left work: %v", n, p[0].Lines())
							}
						}
						if _, err := m2.Teardown(false); err != nil {
							t.Fatalf("n=%d: teardown after the kill: %v", n, err)
						}
						if diff := cmp.Diff(before, k.Dump()); diff != "" {
							t.Fatalf("n=%d: left (-before +after):\n%s", n, diff)
						}
					}
				})
			}
		}
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/teardown killed %v", md.name, after), func(t *testing.T) {
				for n := 1; ; n++ {
					k := host()
					before := k.Dump()
					dir := filepath.Join(t.TempDir(), "state")
					m, _ := manager(t, k, parse(t, md.policy), dir)
					if _, err := m.Setup(); err != nil {
						t.Fatal(err)
					}
					d := &dying{Kernel: k, n: n, after: after}
					m.Kernel = d
					if !run(func() { m.Teardown(false) }) {
						return
					}
					m2, _ := manager(t, k, parse(t, md.policy), dir)
					if _, err := m2.Teardown(false); err != nil {
						t.Fatalf("n=%d: teardown again: %v", n, err)
					}
					if diff := cmp.Diff(before, k.Dump()); diff != "" {
						t.Fatalf("n=%d: left (-before +after):\n%s", n, diff)
					}
				}
			})
		}
	}
}

// TestRemadeBridgeKeepsWhatTheOldRecordOwed: a nat bridge deleted by hand
// and re-made by the next setup keeps one record, so teardown still turns
// forwarding back off and removes the NAT rule.
func TestRemadeBridgeKeepsWhatTheOldRecordOwed(t *testing.T) {
	k := host()
	before := k.Dump()
	m, _ := manager(t, k, parse(t, natPolicy), filepath.Join(t.TempDir(), "state"))
	if _, err := m.Setup(); err != nil {
		t.Fatal(err)
	}
	br, _ := k.LinkByName("br-nat")
	k.DeleteLink(br.Index) // by hand
	plans, err := m.Setup()
	if err != nil {
		t.Fatal(err)
	}
	// Forwarding is on and the NAT rule is there: the new plan only
	// re-makes the bridge and its address.
	if got := plans[0].Lines(); len(got) != 3 {
		t.Fatalf("re-make plan: %v", got)
	}
	if _, err := m.Teardown(false); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, k.Dump()); diff != "" {
		t.Fatalf("left (-before +after):\n%s", diff)
	}
}

// TestForwardingHandedOff: two routing bridges; the first torn down leaves
// forwarding on for the second, whose teardown then puts it back.
func TestForwardingHandedOff(t *testing.T) {
	k := host()
	before := k.Dump()
	pol := parse(t, `
[bridges.br-a]
model = "routed"
address = "192.0.2.1/25"
[bridges.br-b]
model = "routed"
address = "192.0.2.129/25"
`)
	m, _ := manager(t, k, pol, filepath.Join(t.TempDir(), "state"))
	if _, err := m.Setup(); err != nil {
		t.Fatal(err)
	}
	plans, err := m.Teardown(false, "br-a")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := k.Sysctl(kernel.IPv4Forward); v != "1" {
		t.Fatalf("forwarding turned off while br-b routes: %v", plans[0].Lines())
	}
	if _, err := m.Teardown(false, "br-b"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, k.Dump()); diff != "" {
		t.Fatalf("left (-before +after):\n%s", diff)
	}
}

func TestTeardownRefusesGuests(t *testing.T) {
	k := host()
	m, _ := manager(t, k, parse(t, natPolicy), filepath.Join(t.TempDir(), "state"))
	if _, err := m.Setup(); err != nil {
		t.Fatal(err)
	}
	br, _ := k.LinkByName("br-nat")
	tap := k.AddLink(kernel.Link{Name: "vnet0", Kind: "tun", TunType: 2, MTU: 1500})
	k.SetLink(tap, kernel.Change{Master: &br.Index})
	_, err := m.Teardown(false, "br-nat")
	if exit.Code(err) != 69 || !strings.Contains(err.Error(), "still has ports vnet0") {
		t.Fatalf("Teardown with a guest = %v", err)
	}
	if _, err := m.Teardown(true, "br-nat"); err != nil {
		t.Fatalf("Teardown --force: %v", err)
	}
	if l, _ := k.LinkByIndex(tap); l.Master != 0 {
		t.Fatal("the guest's TAP is still enslaved")
	}
}

// TestRandomReplay applies random sequences of setups, teardowns, kills and
// changes made by hand to all four models at once: after any sequence,
// setup leaves nothing to do, and tearing everything down gives back the
// host as it was.
func TestRandomReplay(t *testing.T) {
	pol := parse(t, isolatedPolicy+routedPolicy+natPolicy+natDHCPPolicy+isolatedDHCPPolicy+`
[bridges.br-lan]
model = "bridged"
uplink = "eth0"
`)
	names := pol.BridgeNames()
	for seed := uint64(1); seed <= 60; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed*7))
		k := host()
		before := k.Dump()
		dir := filepath.Join(t.TempDir(), "state")
		var trail []string
		for step := 0; step < 12; step++ {
			m, _ := manager(t, k, pol, dir)
			name := names[rng.IntN(len(names))]
			switch op := rng.IntN(6); op {
			case 0, 1:
				trail = append(trail, "setup "+name)
				if _, err := m.Setup(name); err != nil {
					t.Fatalf("seed %d %v: %v", seed, trail, err)
				}
			case 2:
				trail = append(trail, "teardown "+name)
				if _, err := m.Teardown(true, name); err != nil {
					t.Fatalf("seed %d %v: %v", seed, trail, err)
				}
			case 3:
				n := 1 + rng.IntN(12)
				trail = append(trail, fmt.Sprintf("setup %s killed at %d", name, n))
				m.Kernel = &dying{Kernel: k, n: n, after: rng.IntN(2) == 0}
				run(func() { m.Setup(name) })
			case 4:
				n := 1 + rng.IntN(12)
				trail = append(trail, fmt.Sprintf("teardown %s killed at %d", name, n))
				m.Kernel = &dying{Kernel: k, n: n, after: rng.IntN(2) == 0}
				run(func() { m.Teardown(true, name) })
			case 5:
				if br, err := k.LinkByName(name); err == nil {
					trail = append(trail, "delete "+name+" by hand")
					k.DeleteLink(br.Index)
					k.KillDHCPServer(name) // and its dnsmasq dies too, as if killed
				}
			}
		}
		m, _ := manager(t, k, pol, dir)
		if _, err := m.Setup(); err != nil {
			t.Fatalf("seed %d %v: final setup: %v", seed, trail, err)
		}
		plans, err := m.ExplainSetup()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range plans {
			if len(p.Steps) != 0 {
				t.Fatalf("seed %d %v: setup left work for %s: %v", seed, trail, p.Bridge, p.Lines())
			}
		}
		if _, err := m.Teardown(true); err != nil {
			t.Fatalf("seed %d %v: final teardown: %v", seed, trail, err)
		}
		if diff := cmp.Diff(before, k.Dump()); diff != "" {
			t.Fatalf("seed %d %v: left (-before +after):\n%s", seed, trail, diff)
		}
	}
}

// TestDHCPSetup: a bridge with a dhcp table gets its rules and then its
// dnsmasq, last; a dead one is started again, a changed configuration
// restarts it, and teardown stops it first. Without dnsmasq, or when it
// refuses to start, setup fails with nothing left.
func TestDHCPSetup(t *testing.T) {
	k := host()
	before := k.Dump()
	pol := parse(t, natDHCPPolicy)
	m, _ := manager(t, k, pol, filepath.Join(t.TempDir(), "state"))
	plans, err := m.Setup()
	if err != nil {
		t.Fatal(err)
	}
	lines := plans[0].Lines()
	n := len(lines)
	if n < 3 || !strings.HasPrefix(lines[n-2], "nft add chain inet ifhook input") || lines[n-1] != "dnsmasq --conf-file=/run/ifhook/dnsmasq/br-dh.conf" {
		t.Fatalf("setup steps:\n%s", strings.Join(lines, "\n"))
	}
	sv, _ := k.DHCPServer("br-dh", true)
	if !sv.Running || !strings.Contains(string(sv.Conf), "dhcp-range=192.168.110.2,192.168.110.254,255.255.255.0,3600") || !strings.Contains(string(sv.Conf), "bridges.br-dh at test.toml:2") {
		t.Fatalf("server: %+v\n%s", sv, sv.Conf)
	}
	k.KillDHCPServer("br-dh")
	st, _ := m.Status("br-dh")
	if st[0].DHCP == nil || st[0].DHCP.Running || !slices.ContainsFunc(st[0].Problems, func(p string) bool { return strings.Contains(p, "dnsmasq is not running") }) {
		t.Fatalf("status of a dead dnsmasq: %+v", st[0])
	}
	f, _ := m.Doctor("br-dh")
	if !slices.ContainsFunc(f, func(f Finding) bool { return f.Check == "dhcp" }) {
		t.Fatalf("doctor misses the dead dnsmasq: %v", f)
	}
	plans, err = m.Setup()
	if err != nil || len(plans[0].Steps) != 1 || !strings.HasSuffix(plans[0].Lines()[0], "# restart: it is not running") {
		t.Fatalf("setup of a dead dnsmasq: %v, %v", plans[0].Lines(), err)
	}
	rec, _ := m.State.ReadBridge("br-dh")
	count := 0
	for _, l := range rec.Steps {
		if l.Line == "dnsmasq bridge=br-dh" {
			count++
		}
	}
	if count != 1 {
		t.Errorf("the record holds the dnsmasq step %d times", count)
	}
	// The policy changes: setup restarts dnsmasq with the new configuration.
	m.Policy = parse(t, strings.Replace(natDHCPPolicy, "[bridges.br-dh.dhcp]\n", "[bridges.br-dh.dhcp]\nlease = \"2h\"\n", 1))
	plans, err = m.Setup()
	if err != nil || len(plans[0].Steps) != 1 || !strings.Contains(plans[0].Lines()[0], "configuration changed") {
		t.Fatalf("setup after a policy change: %v, %v", plans[0].Lines(), err)
	}
	if sv, _ := k.DHCPServer("br-dh", true); !strings.Contains(string(sv.Conf), ",7200\n") {
		t.Fatalf("not restarted with the new lease:\n%s", sv.Conf)
	}
	plans, err = m.Teardown(false)
	if err != nil {
		t.Fatal(err)
	}
	if first := plans[0].Lines()[0]; !strings.HasPrefix(first, "kill ") {
		t.Errorf("teardown does not stop dnsmasq first: %v", plans[0].Lines())
	}
	if diff := cmp.Diff(before, k.Dump()); diff != "" {
		t.Fatalf("teardown left (-before +after):\n%s", diff)
	}

	// No dnsmasq: refused, 69, naming the package; nothing changed.
	k.Env.Missing = exit.New(exit.Unavailable, "dnsmasq is not installed: install dnsmasq-base")
	_, err = m.Setup()
	if exit.Code(err) != 69 || !strings.Contains(err.Error(), "dnsmasq-base") || !strings.Contains(err.Error(), "test.toml:5") {
		t.Fatalf("setup without dnsmasq: %v", err)
	}
	if diff := cmp.Diff(before, k.Dump()); diff != "" {
		t.Fatalf("a refused setup changed (-before +after):\n%s", diff)
	}
	// dnsmasq refuses to start: everything else is rolled back.
	k.Env.Missing = nil
	k.StartError = exit.New(exit.Unavailable, "dnsmasq for br-dh: it refused to start: failed to create listening socket for 192.168.110.1: Address already in use")
	_, err = m.Setup()
	if exit.Code(err) != 69 || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("setup with a dnsmasq that refuses: %v", err)
	}
	if diff := cmp.Diff(before, k.Dump()); diff != "" {
		t.Fatalf("a failed setup left (-before +after):\n%s", diff)
	}
	if rec, _ := m.State.ReadBridge("br-dh"); rec != nil {
		t.Fatalf("a record of a failed setup: %+v", rec)
	}
}

// TestIPv6ForwardingKeepsRARoutes: a host whose IPv6 default route comes
// from router advertisements it takes only while forwarding is off is not
// given IPv6 forwarding (it would lose that route): setup refuses, saying
// what to do, and changes nothing; with accept_ra = 2 it goes ahead.
func TestIPv6ForwardingKeepsRARoutes(t *testing.T) {
	k := host()
	eth0, _ := k.LinkByName("eth0")
	must(k.DelRoute(kernel.Route{Index: eth0.Index, Metric: 1024, IPv6: true}))
	must(k.AddRoute(kernel.Route{Index: eth0.Index, Gw: netip.MustParseAddr("fe80::1"), Metric: 1024, Protocol: unix.RTPROT_RA, IPv6: true}))
	k.PutSysctl(kernel.AcceptRA("eth0"), "1")
	before := k.Dump()
	m, _ := manager(t, k, parse(t, routedPolicy), filepath.Join(t.TempDir(), "state"))
	_, err := m.Setup()
	if exit.Code(err) != 69 || !strings.Contains(err.Error(), "sysctl -w net.ipv6.conf.eth0.accept_ra=2") || !strings.Contains(err.Error(), "router advertisements eth0") {
		t.Fatalf("setup = %v", err)
	}
	if diff := cmp.Diff(before, k.Dump()); diff != "" {
		t.Fatalf("a refused setup changed (-before +after):\n%s", diff)
	}
	k.PutSysctl(kernel.AcceptRA("eth0"), "2")
	if _, err := m.Setup(); err != nil {
		t.Fatalf("with accept_ra = 2: %v", err)
	}
	// An IPv4-only bridge never asks.
	k2 := host()
	eth, _ := k2.LinkByName("eth0")
	must(k2.DelRoute(kernel.Route{Index: eth.Index, Metric: 1024, IPv6: true}))
	must(k2.AddRoute(kernel.Route{Index: eth.Index, Gw: netip.MustParseAddr("fe80::1"), Metric: 1024, Protocol: unix.RTPROT_RA, IPv6: true}))
	k2.PutSysctl(kernel.AcceptRA("eth0"), "1")
	m2, _ := manager(t, k2, parse(t, natPolicy), filepath.Join(t.TempDir(), "state2"))
	if _, err := m2.Setup(); err != nil {
		t.Fatalf("an IPv4 nat bridge refused: %v", err)
	}
}

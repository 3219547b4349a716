package ifhook

// Pure tests of Hook: the kernel is a kernel.Model (behind a recorder that
// counts what is asked of it and injects failures) and the state directory
// a temporary one, so these need no root and touch no network namespace.

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nftable"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

var unitNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// recorder stands between a Hook and its kernel (a Model): it counts every
// question (lookups), records every change (calls; a SetLink as
// describeChange renders it), and fails what a test asks it to.
type recorder struct {
	kernel.Kernel
	calls   []string
	lookups int
	// fail, when set, is asked before each attribute of a SetLink is
	// applied, in the kernel's order ("address", "mtu", "master",
	// "flags"); an error stops the change there, and, as the kernel does,
	// the attributes already applied stay.
	fail func(attr string, index int, ch kernel.Change) error
	// lookupErr, when set, is returned by LinkByName and LinkByIndex.
	lookupErr error
	// goneRoutes adds, per family, default routes through links that are
	// gone by the time they are looked up (a race with their deletion).
	goneRoutes map[int][]int
}

func newRecorder(m *kernel.Model) *recorder { return &recorder{Kernel: m} }

func (r *recorder) change(format string, args ...any) {
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

func (r *recorder) LinkByName(name string) (*kernel.Link, error) {
	r.lookups++
	if r.lookupErr != nil {
		return nil, r.lookupErr
	}
	return r.Kernel.LinkByName(name)
}

func (r *recorder) LinkByIndex(index int) (*kernel.Link, error) {
	r.lookups++
	if r.lookupErr != nil {
		return nil, r.lookupErr
	}
	return r.Kernel.LinkByIndex(index)
}

func (r *recorder) Bridges() ([]*kernel.Link, error) {
	r.lookups++
	return r.Kernel.Bridges()
}

func (r *recorder) Ports(master int) ([]*kernel.Link, error) {
	r.lookups++
	return r.Kernel.Ports(master)
}

func (r *recorder) DefaultRouteLinks(family int) ([]int, error) {
	r.lookups++
	idx, err := r.Kernel.DefaultRouteLinks(family)
	return append(idx, r.goneRoutes[family]...), err
}

func (r *recorder) SetLink(index int, ch kernel.Change) error {
	r.change("SetLink(%d, %s)", index, describeChange(ch))
	if r.fail == nil {
		return r.Kernel.SetLink(index, ch)
	}
	// Apply the attributes one by one, as the kernel does, keeping those
	// done when one fails.
	attrs := []struct {
		name  string
		set   bool
		apply func(*kernel.Change)
	}{
		{"address", ch.MAC != nil, func(c *kernel.Change) { c.MAC = ch.MAC }},
		{"mtu", ch.MTU != 0, func(c *kernel.Change) { c.MTU = ch.MTU }},
		{"master", ch.Master != nil, func(c *kernel.Change) { c.Master = ch.Master }},
		{"flags", ch.Up != nil, func(c *kernel.Change) { c.Up = ch.Up }},
	}
	var done kernel.Change
	applied := false
	for _, a := range attrs {
		if !a.set {
			continue
		}
		if err := r.fail(a.name, index, ch); err != nil {
			if applied {
				if perr := r.Kernel.SetLink(index, done); perr != nil {
					return perr
				}
			}
			return err
		}
		a.apply(&done)
		applied = true
	}
	return r.Kernel.SetLink(index, ch)
}

func (r *recorder) CreateBridge(name string, o kernel.BridgeOptions) (int, error) {
	r.change("CreateBridge(%s)", name)
	return r.Kernel.CreateBridge(name, o)
}

func (r *recorder) DeleteLink(index int) error {
	r.change("DeleteLink(%d)", index)
	return r.Kernel.DeleteLink(index)
}

func (r *recorder) Addrs(index int) ([]kernel.Addr, error) {
	r.lookups++
	return r.Kernel.Addrs(index)
}

func (r *recorder) AddAddr(a kernel.Addr) error {
	r.change("AddAddr(%s)", a)
	return r.Kernel.AddAddr(a)
}

func (r *recorder) DelAddr(a kernel.Addr) error {
	r.change("DelAddr(%s)", a)
	return r.Kernel.DelAddr(a)
}

func (r *recorder) Routes(index int) ([]kernel.Route, error) {
	r.lookups++
	return r.Kernel.Routes(index)
}

func (r *recorder) AddRoute(rt kernel.Route) error {
	r.change("AddRoute(%s)", rt)
	return r.Kernel.AddRoute(rt)
}

func (r *recorder) DelRoute(rt kernel.Route) error {
	r.change("DelRoute(%s)", rt)
	return r.Kernel.DelRoute(rt)
}

func (r *recorder) Sysctl(key string) (string, error) {
	r.lookups++
	return r.Kernel.Sysctl(key)
}

func (r *recorder) SetSysctl(key, value string) error {
	r.change("SetSysctl(%s=%s)", key, value)
	return r.Kernel.SetSysctl(key, value)
}

func (r *recorder) NATRules(bridge string) ([]nftable.NAT, error) {
	r.lookups++
	return r.Kernel.NATRules(bridge)
}

func (r *recorder) HasNATTable() (bool, error) {
	r.lookups++
	return r.Kernel.HasNATTable()
}

func (r *recorder) AddNAT(rule nftable.NAT) error {
	r.change("AddNAT(%s)", rule.Comment())
	return r.Kernel.AddNAT(rule)
}

func (r *recorder) DelNAT(rule nftable.NAT) error {
	r.change("DelNAT(%s)", rule.Comment())
	return r.Kernel.DelNAT(rule)
}

func (r *recorder) ForwardDropChains() ([]string, error) {
	r.lookups++
	return r.Kernel.ForwardDropChains()
}

func (r *recorder) IsWireless(name string) bool {
	r.lookups++
	return r.Kernel.IsWireless(name)
}

func describeChange(ch kernel.Change) string {
	var parts []string
	if ch.MAC != nil {
		parts = append(parts, "address "+ch.MAC.String())
	}
	if ch.MTU != 0 {
		parts = append(parts, fmt.Sprintf("mtu %d", ch.MTU))
	}
	if ch.Master != nil {
		if *ch.Master == 0 {
			parts = append(parts, "nomaster")
		} else {
			parts = append(parts, fmt.Sprintf("master %d", *ch.Master))
		}
	}
	if ch.Up != nil {
		if *ch.Up {
			parts = append(parts, "up")
		} else {
			parts = append(parts, "down")
		}
	}
	return strings.Join(parts, " ")
}

// failOn returns a recorder.fail that fails attr on index with err, when
// want (if not nil) approves of the change.
func failOn(attr string, index int, err error, want func(kernel.Change) bool) func(string, int, kernel.Change) error {
	return func(a string, i int, ch kernel.Change) error {
		if a == attr && i == index && (want == nil || want(ch)) {
			return err
		}
		return nil
	}
}

func enslavingTo(master int) func(kernel.Change) bool {
	return func(ch kernel.Change) bool { return ch.Master != nil && *ch.Master == master }
}

// linkOf returns the current state of the model's link with the index.
func linkOf(t *testing.T, m *kernel.Model, index int) kernel.Link {
	t.Helper()
	l, err := m.LinkByIndex(index)
	if err != nil {
		t.Fatal(err)
	}
	return *l
}

// defaultRoute gives link index a default route of the family through a
// gateway on an address of its own (the model, like the kernel, refuses a
// gateway it cannot reach). Each route has its own metric: two default
// routes of a family with one metric are one entry of the routing table.
func defaultRoute(t *testing.T, m *kernel.Model, family, index int) {
	t.Helper()
	addr, gw := fmt.Sprintf("10.%d.0.1/24", index), fmt.Sprintf("10.%d.0.254", index)
	if family == unix.AF_INET6 {
		addr, gw = fmt.Sprintf("2001:db8:%x::1/64", index), fmt.Sprintf("2001:db8:%x::fe", index)
	}
	if err := m.AddAddr(kernel.Addr{Index: index, Prefix: netip.MustParsePrefix(addr)}); err != nil {
		t.Fatalf("address %s on index %d: %v", addr, index, err)
	}
	r := kernel.Route{Index: index, Gw: netip.MustParseAddr(gw), Metric: 100 + index, IPv6: family == unix.AF_INET6}
	if err := m.AddRoute(r); err != nil {
		t.Fatalf("route %s on index %d: %v", r, index, err)
	}
}

// unitHook returns a Hook over k with the policy text, a temporary state
// directory (not made yet), CAP_NET_ADMIN, a fixed clock, and stderr in the
// buffer.
func unitHook(t *testing.T, k kernel.Kernel, policyText string) (*Hook, *bytes.Buffer) {
	t.Helper()
	pol, err := policy.Parse([]byte(policyText), "test.toml")
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	var buf bytes.Buffer
	h, err := Open(Config{
		Policy: pol, Kernel: k, StateDir: filepath.Join(t.TempDir(), "state"), DataDir: filepath.Join(t.TempDir(), "data"), Log: &Log{Stderr: &buf},
		HasNetAdmin: func() bool { return true },
		Now:         func() time.Time { return unitNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, &buf
}

func derivedMAC(tap string) string {
	return policy.HostTAPMAC(policy.DefaultMACPrefix, tap).String()
}

func noteTexts(notes []plan.Note) []string {
	var out []string
	for _, n := range notes {
		out = append(out, n.Text)
	}
	return out
}

func TestHookExplain(t *testing.T) {
	eth0 := &rtnl.Link{Name: "eth0", Index: 2, MTU: 1500, Up: true, Type: unix.ARPHRD_ETHER}
	br0, br1 := unitBridge("br0", 3, 9000), unitBridge("br1", 4, 1500)
	tests := []struct {
		name   string
		policy string
		links  []*rtnl.Link
		// defaults are the links holding a default route, per family, in
		// the order of the routing table; gone are those whose link is
		// gone when it is looked up.
		defaults, gone map[int][]int
		tap            string
		wantRule       string
		wantBridge     string
		wantReason     string
		wantSteps      []string
		wantExit       int
		wantErr        string // exact
		bug            string
	}{
		{
			name:       "named bridge",
			policy:     `bridge = "br0"`,
			links:      []*rtnl.Link{unitTAP(), br0},
			tap:        "vnet0",
			wantRule:   `no rule matched; bridge = "br0" at test.toml:1`,
			wantBridge: "br0", wantReason: "named by the policy",
			wantSteps: []string{
				"ip link set dev vnet0 address " + derivedMAC("vnet0"),
				"ip link set dev vnet0 mtu 9000",
				"ip link set dev vnet0 master br0",
				"ip link set dev vnet0 up",
			},
		},
		{
			name:       "rule with bridge and MTU, MAC kept",
			policy:     "bridge = \"br0\"\ntap_mac = \"keep\"\n[[rule]]\ntap = \"vnet*\"\nbridge = \"br1\"\nmtu = 1400\n",
			links:      []*rtnl.Link{unitTAP(), br0, br1},
			tap:        "vnet0",
			wantRule:   `rule 1 (tap = "vnet*") at test.toml:3`,
			wantBridge: "br1", wantReason: `named by rule 1 (tap = "vnet*")`,
			wantSteps: []string{
				"ip link set dev vnet0 mtu 1400",
				"ip link set dev vnet0 master br1",
				"ip link set dev vnet0 up",
			},
		},
		{
			name:       "rule without bridge",
			policy:     "bridge = \"br0\"\ntap_mac = \"keep\"\n[[rule]]\ntap = \"vnet*\"\nmtu = 1500\n",
			links:      []*rtnl.Link{unitTAP(), br0},
			tap:        "vnet0",
			wantRule:   `rule 1 (tap = "vnet*") at test.toml:3`,
			wantBridge: "br0", wantReason: "named by the policy",
			wantSteps: []string{"ip link set dev vnet0 master br0", "ip link set dev vnet0 up"},
		},
		{
			name:       "auto: IPv4 default route",
			policy:     "tap_mac = \"keep\"",
			links:      []*rtnl.Link{unitTAP(func(l *rtnl.Link) { l.Up = true }), eth0, br0, br1},
			defaults:   map[int][]int{unix.AF_INET: {2, 4}, unix.AF_INET6: {3}},
			tap:        "vnet0",
			wantRule:   `no rule matched; bridge = "auto" at test.toml`,
			wantBridge: "br1", wantReason: "auto: holds the IPv4 default route",
			wantSteps: []string{"ip link set dev vnet0 master br1"},
		},
		{
			name:       "auto: IPv6 default route",
			policy:     "bridge = \"auto\"\ntap_mac = \"keep\"",
			links:      []*rtnl.Link{unitTAP(func(l *rtnl.Link) { l.Up = true }), eth0, br0, br1},
			defaults:   map[int][]int{unix.AF_INET: {2}, unix.AF_INET6: {3}},
			gone:       map[int][]int{unix.AF_INET: {99}},
			tap:        "vnet0",
			wantRule:   `no rule matched; bridge = "auto" at test.toml:1`,
			wantBridge: "br0", wantReason: "auto: holds the IPv6 default route",
			wantSteps: []string{"ip link set dev vnet0 mtu 9000", "ip link set dev vnet0 master br0"},
		},
		{
			name:       "auto: the only bridge",
			policy:     "tap_mac = \"keep\"",
			links:      []*rtnl.Link{unitTAP(func(l *rtnl.Link) { l.Up = true }), eth0, br1},
			defaults:   map[int][]int{unix.AF_INET: {2}},
			tap:        "vnet0",
			wantRule:   `no rule matched; bridge = "auto" at test.toml`,
			wantBridge: "br1", wantReason: "auto: the only bridge on the host",
			wantSteps: []string{"ip link set dev vnet0 master br1"},
		},
		{
			name:     "auto: no bridge at all",
			policy:   "",
			links:    []*rtnl.Link{unitTAP(), eth0},
			tap:      "vnet0",
			wantRule: `no rule matched; bridge = "auto" at test.toml`,
			wantExit: 69,
			wantErr:  `explain vnet0: bridge = "auto" found no bridge: none holds the default route and the host has none (no rule matched; bridge = "auto" at test.toml)`,
		},
		{
			name:     "auto: several bridges",
			policy:   "",
			links:    []*rtnl.Link{unitTAP(), br1, br0},
			tap:      "vnet0",
			wantRule: `no rule matched; bridge = "auto" at test.toml`,
			wantExit: 69,
			wantErr:  `explain vnet0: bridge = "auto" cannot choose: no bridge holds the default route and there are 2 (br0, br1); name one in the policy (no rule matched; bridge = "auto" at test.toml)`,
		},
		{
			name:       "bridge missing",
			policy:     `bridge = "br9"`,
			links:      []*rtnl.Link{unitTAP(), br0},
			tap:        "vnet0",
			wantRule:   `no rule matched; bridge = "br9" at test.toml:1`,
			wantBridge: "br9", wantReason: "named by the policy",
			wantExit: 69,
			wantErr:  `explain vnet0: bridge "br9" does not exist (no rule matched; bridge = "br9" at test.toml:1)`,
		},
		{
			name:       "bridge is not a bridge",
			policy:     `bridge = "eth0"`,
			links:      []*rtnl.Link{unitTAP(), eth0},
			tap:        "vnet0",
			wantRule:   `no rule matched; bridge = "eth0" at test.toml:1`,
			wantBridge: "eth0", wantReason: "named by the policy",
			wantExit: 69,
			wantErr:  `explain vnet0: "eth0" is a physical device, not a bridge (no rule matched; bridge = "eth0" at test.toml:1)`,
		},
		{
			name:       "bridge is the loopback device",
			policy:     `bridge = "lo"`,
			links:      []*rtnl.Link{unitTAP()},
			tap:        "vnet0",
			wantRule:   `no rule matched; bridge = "lo" at test.toml:1`,
			wantBridge: "lo", wantReason: "named by the policy",
			wantExit: 69,
			wantErr:  `explain vnet0: "lo" is the loopback device, not a bridge (no rule matched; bridge = "lo" at test.toml:1)`,
		},
		{
			name:     "no bridge chosen",
			policy:   `bridge = ""`,
			links:    []*rtnl.Link{unitTAP(), br0},
			tap:      "vnet0",
			wantRule: `no rule matched; bridge = "" at test.toml:1`,
			wantExit: 69,
			wantErr:  `explain vnet0: no bridge chosen: no rule matches and the policy sets bridge = "" (no rule matched; bridge = "" at test.toml:1)`,
		},
		{
			name:     "a rule matched but names no bridge, and there is no default",
			policy:   "bridge = \"\"\n[[rule]]\ntap = \"vnet*\"\nmtu = 9000\n",
			links:    []*rtnl.Link{unitTAP(), br0},
			tap:      "vnet0",
			wantRule: `rule 1 (tap = "vnet*") at test.toml:2`,
			wantExit: 69,
			wantErr:  `explain vnet0: no bridge chosen: rule 1 (tap = "vnet*") names none and the policy sets bridge = "" (rule 1 (tap = "vnet*") at test.toml:2)`,
			bug:      `hook.go chooseBridge says "no rule matches" when a rule matched but set no bridge (and bridge = ""), so the message contradicts its own "(rule 1 ...)" annotation`,
		},
		{
			name:     "TAP missing",
			policy:   `bridge = "br0"`,
			links:    []*rtnl.Link{br0},
			tap:      "vnet0",
			wantRule: `no rule matched; bridge = "br0" at test.toml:1`,
			wantExit: 65,
			wantErr:  "explain vnet0: no such device",
		},
		{
			name:     "not a TAP",
			policy:   `bridge = "br0"`,
			links:    []*rtnl.Link{eth0, br0},
			tap:      "eth0",
			wantRule: `no rule matched; bridge = "br0" at test.toml:1`,
			wantExit: 65,
			wantErr:  `explain eth0: "eth0" is a physical device, not a TAP; refusing to touch it`,
		},
		{
			name:     "the loopback device is not a TAP",
			policy:   `bridge = "br0"`,
			links:    []*rtnl.Link{br0},
			tap:      "lo",
			wantRule: `no rule matched; bridge = "br0" at test.toml:1`,
			wantExit: 65,
			wantErr:  `explain lo: "lo" is the loopback device, not a TAP; refusing to touch it`,
		},
		{
			name:     "bad name",
			policy:   `bridge = "br0"`,
			links:    []*rtnl.Link{br0},
			tap:      "vnet0:1",
			wantExit: 65,
			wantErr:  `explain "vnet0:1": interface name contains ':'`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = tt.bug // fixed; says what the case once caught
			m := unitModel(tt.links...)
			for family, idx := range tt.defaults {
				for _, i := range idx {
					defaultRoute(t, m, family, i)
				}
			}
			k := newRecorder(m)
			k.goneRoutes = tt.gone
			h, _ := unitHook(t, k, tt.policy)
			p, err := h.ExplainUp(tt.tap)
			if len(k.calls) != 0 {
				t.Errorf("ExplainUp changed the kernel: %q", k.calls)
			}
			// Explain writes nothing either: not even the state directory.
			if _, serr := os.Stat(h.State.Path); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("ExplainUp made the state directory (stat: %v)", serr)
			}
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ExplainUp succeeded, want %q", tt.wantErr)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("error = %q\n want %q", err, tt.wantErr)
				}
				if exit.Code(err) != tt.wantExit {
					t.Errorf("exit.Code = %d, want %d", exit.Code(err), tt.wantExit)
				}
			} else if err != nil {
				t.Fatalf("ExplainUp: %v", err)
			}
			if p == nil {
				if tt.wantRule != "" {
					t.Fatalf("no plan, want one with rule %q", tt.wantRule)
				}
				return
			}
			if p.Op != "up" || p.TAP != tt.tap || p.Policy != "test.toml" {
				t.Errorf("plan = %s %s from %s", p.Op, p.TAP, p.Policy)
			}
			if p.Rule != tt.wantRule || p.Bridge != tt.wantBridge || p.Reason != tt.wantReason {
				t.Errorf("plan rule %q, bridge %q, reason %q\n want rule %q, bridge %q, reason %q",
					p.Rule, p.Bridge, p.Reason, tt.wantRule, tt.wantBridge, tt.wantReason)
			}
			if diff := cmp.Diff(tt.wantSteps, p.Lines(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHookUpDownCycle(t *testing.T) {
	m := unitModel(unitTAP(), unitBridge("br0", 3, 9000))
	k := newRecorder(m)
	initial := linkOf(t, m, 10)
	h, stderr := unitHook(t, k, `bridge = "br0"`)

	p, err := h.Up("vnet0")
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if len(p.Steps) != 4 {
		t.Errorf("Up steps = %q, want 4", p.Lines())
	}
	// The four steps go to the kernel as one RTM_NEWLINK.
	if want := []string{"SetLink(10, address " + derivedMAC("vnet0") + " mtu 9000 master 3 up)"}; !cmp.Equal(want, k.calls) {
		t.Errorf("Up sent %q, want %q", k.calls, want)
	}
	attached := initial
	attached.MAC, attached.MTU, attached.Master, attached.Up = mustMAC(derivedMAC("vnet0")), 9000, 3, true
	attached.SlaveKind, attached.PortState = "bridge", rtnl.PortForwarding
	if diff := cmp.Diff(attached, linkOf(t, m, 10)); diff != "" {
		t.Errorf("TAP after Up (-want +got):\n%s", diff)
	}
	wantRec := &state.Record{
		TAP: "vnet0", Index: 10, Bridge: "br0", Since: unitNow,
		Rule: `no rule matched; bridge = "br0" at test.toml:1`,
		Prev: state.Snapshot{MAC: kernelMAC, MTU: 1500},
		Set:  state.Snapshot{MAC: derivedMAC("vnet0"), MTU: 9000, Master: "br0", Up: true},
	}
	rec, err := h.State.Read("vnet0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantRec, rec); diff != "" {
		t.Errorf("record after Up (-want +got):\n%s", diff)
	}

	// Up again: nothing to do, nothing sent, the record kept as it was.
	calls := len(k.calls)
	h.cfg.Now = func() time.Time { return unitNow.Add(time.Hour) }
	p, err = h.Up("vnet0")
	if err != nil || len(p.Steps) != 0 {
		t.Errorf("second Up = %q, %v; want nothing to do", p.Lines(), err)
	}
	if len(k.calls) != calls {
		t.Errorf("second Up sent %q", k.calls[calls:])
	}
	if rec, _ := h.State.Read("vnet0"); !cmp.Equal(wantRec, rec) {
		t.Errorf("second Up changed the record to %+v", rec)
	}

	// Down restores the TAP as QEMU made it and removes the record.
	p, err = h.Down("vnet0")
	if err != nil {
		t.Fatalf("Down: %v", err)
	}
	wantDown := []string{
		"ip link set dev vnet0 nomaster",
		"ip link set dev vnet0 down",
		"ip link set dev vnet0 address " + kernelMAC,
		"ip link set dev vnet0 mtu 1500",
	}
	if diff := cmp.Diff(wantDown, p.Lines()); diff != "" {
		t.Errorf("Down steps (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(initial, linkOf(t, m, 10)); diff != "" {
		t.Errorf("TAP after Down (-initial +got):\n%s", diff)
	}
	if rec, err := h.State.Read("vnet0"); rec != nil || err != nil {
		t.Errorf("record after Down = %+v, %v; want none", rec, err)
	}

	// Down again: nothing to do, success.
	calls = len(k.calls)
	p, err = h.Down("vnet0")
	if err != nil || len(p.Steps) != 0 || len(k.calls) != calls {
		t.Errorf("second Down = %q, %v, sent %q; want nothing", p.Lines(), err, k.calls[calls:])
	}
	if want := []string{"no record: detach and set down only", "not attached"}; !cmp.Equal(want, noteTexts(p.Notes)) {
		t.Errorf("second Down notes = %q, want %q", noteTexts(p.Notes), want)
	}
	if stderr.Len() != 0 {
		t.Errorf("quiet run wrote to stderr: %q", stderr)
	}
}

func TestHookUpMovesAndNotices(t *testing.T) {
	m := unitModel(unitTAP(func(l *rtnl.Link) { l.Master, l.Up = 4, true }), unitBridge("br0", 3, 1500), unitBridge("br1", 4, 1500))
	h, stderr := unitHook(t, m, "bridge = \"br0\"\ntap_mac = \"keep\"\n")
	p, err := h.Up("vnet0")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ip link set dev vnet0 master br0"}; !cmp.Equal(want, p.Lines()) {
		t.Errorf("steps = %q, want %q", p.Lines(), want)
	}
	if want := []plan.Note{{Kind: plan.Moved, Text: "moving vnet0 from br1 to br0"}}; !cmp.Equal(want, p.Notes) {
		t.Errorf("notes = %+v, want %+v", p.Notes, want)
	}
	if got, want := stderr.String(), "ifhook: up vnet0: moved from br1 to br0\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	if l := linkOf(t, m, 10); l.Master != 3 {
		t.Errorf("TAP master = %d after Up, want 3 (br0)", l.Master)
	}
	rec, _ := h.State.Read("vnet0")
	if rec == nil || rec.Prev.Master != "br1" || !rec.Prev.Up || rec.Set.MAC != kernelMAC {
		t.Errorf("record = %+v; want prev master br1, prev up, set MAC unchanged", rec)
	}
}

func TestHookRefusesEarly(t *testing.T) {
	tests := []struct {
		name     string
		tap      string
		noAdmin  bool
		op       func(h *Hook, tap string) (*TAPPlan, error)
		wantExit int
		wantErr  string // prefix
	}{
		{"up: colon", "a:b", false, (*Hook).Up, 65, `up "a:b": interface name contains ':'`},
		{"up: 16 bytes", "abcdefghijklmnop", false, (*Hook).Up, 65, `up "abcdefghijklmnop": interface name is 16 bytes, longer than 15`},
		{"up: empty", "", false, (*Hook).Up, 65, "up: empty interface name"},
		{"down: newline", "vnet0\n", false, (*Hook).Down, 65, `down "vnet0\n": interface name contains whitespace`},
		{"up: no CAP_NET_ADMIN", "vnet0", true, (*Hook).Up, 77, "up vnet0: needs CAP_NET_ADMIN to attach a TAP, and runs as uid "},
		{"up: bad name wins over no CAP_NET_ADMIN", "a/b", true, (*Hook).Up, 65, `up "a/b": interface name contains '/'`},
		{"gc: no CAP_NET_ADMIN", "", true, func(h *Hook, _ string) (*TAPPlan, error) { _, err := h.GC(); return nil, err }, 77, "gc: needs CAP_NET_ADMIN to clean up after ifhook, and runs as uid "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newRecorder(unitModel(unitTAP(), unitBridge("br0", 3, 1500)))
			h, _ := unitHook(t, k, `bridge = "br0"`)
			if tt.noAdmin {
				h.cfg.HasNetAdmin = func() bool { return false }
			}
			_, err := tt.op(h, tt.tap)
			if err == nil {
				t.Fatal("succeeded")
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error = %q, want one line starting %q", err, tt.wantErr)
			}
			if exit.Code(err) != tt.wantExit {
				t.Errorf("exit.Code = %d, want %d", exit.Code(err), tt.wantExit)
			}
			if k.lookups != 0 || len(k.calls) != 0 {
				t.Errorf("looked at the kernel %d times and changed it (%q) before refusing", k.lookups, k.calls)
			}
			if _, err := os.Stat(filepath.Join(h.State.Path, "lock")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the lock file was created before refusing (stat: %v)", err)
			}
		})
	}
}

func TestHookDownWithoutCapability(t *testing.T) {
	k := newRecorder(unitModel(unitTAP(func(l *rtnl.Link) { l.Master, l.Up = 3, true }), unitBridge("br0", 3, 1500)))
	h, _ := unitHook(t, k, `bridge = "br0"`)
	if err := h.State.Write(&state.Record{TAP: "vnet0", Index: 10, Bridge: "br0"}); err != nil {
		t.Fatal(err)
	}
	h.cfg.HasNetAdmin = func() bool { return false }
	p, err := h.Down("vnet0")
	if err != nil {
		t.Fatalf("Down without CAP_NET_ADMIN = %v, want success", err)
	}
	if len(p.Steps) != 0 || len(p.Notes) != 1 || !strings.Contains(p.Notes[0].Text, "no CAP_NET_ADMIN") {
		t.Errorf("plan = steps %q, notes %q", p.Lines(), noteTexts(p.Notes))
	}
	if k.lookups != 0 || len(k.calls) != 0 {
		t.Errorf("Down without CAP_NET_ADMIN used the kernel (%d lookups, changes %q)", k.lookups, k.calls)
	}
	if rec, _ := h.State.Read("vnet0"); rec == nil {
		t.Error("the record was removed; gc should get it")
	}
}

func TestHookUpRollsBack(t *testing.T) {
	rule := ` (no rule matched; bridge = "br0" at test.toml:1)`
	failed := "up vnet0: ip link set dev vnet0 address " + derivedMAC("vnet0") + " mtu 9000 master br0 up: device or resource busy"

	t.Run("rollback completes: no record", func(t *testing.T) {
		m := unitModel(unitTAP(), unitBridge("br0", 3, 9000))
		k := newRecorder(m)
		before := linkOf(t, m, 10)
		k.fail = failOn("master", 10, unix.EBUSY, enslavingTo(3))
		h, _ := unitHook(t, k, `bridge = "br0"`)
		_, err := h.Up("vnet0")
		if err == nil || err.Error() != failed+rule {
			t.Fatalf("Up = %v\n want %s", err, failed+rule)
		}
		if exit.Code(err) != 71 || !errors.Is(err, unix.EBUSY) {
			t.Errorf("exit.Code = %d, errors.Is(EBUSY) = %v; want 71, true", exit.Code(err), errors.Is(err, unix.EBUSY))
		}
		// The change was applied in part (MAC and MTU), then undone whole.
		want := []string{
			"SetLink(10, address " + derivedMAC("vnet0") + " mtu 9000 master 3 up)",
			"SetLink(10, address " + kernelMAC + " mtu 1500 nomaster down)",
		}
		if diff := cmp.Diff(want, k.calls); diff != "" {
			t.Errorf("SetLink calls (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(before, linkOf(t, m, 10)); diff != "" {
			t.Errorf("TAP after failed Up (-before +after):\n%s", diff)
		}
		if rec, _ := h.State.Read("vnet0"); rec != nil {
			t.Errorf("failed Up left a record: %+v", rec)
		}
	})

	t.Run("an earlier record is restored", func(t *testing.T) {
		// The TAP was ours already (attached to br1); moving it to br0
		// fails and is undone: the record of br1 is back.
		m := unitModel(unitTAP(func(l *rtnl.Link) { l.Master, l.Up, l.MTU, l.MAC = 4, true, 9000, mustMAC(derivedMAC("vnet0")) }),
			unitBridge("br0", 3, 9000), unitBridge("br1", 4, 9000))
		k := newRecorder(m)
		before := linkOf(t, m, 10)
		h, _ := unitHook(t, k, `bridge = "br0"`)
		old := &state.Record{TAP: "vnet0", Index: 10, Bridge: "br1", Since: unitNow.Add(-time.Hour), Rule: "earlier",
			Prev: state.Snapshot{MAC: kernelMAC, MTU: 1500},
			Set:  state.Snapshot{MAC: derivedMAC("vnet0"), MTU: 9000, Master: "br1", Up: true}}
		if err := h.State.Write(old); err != nil {
			t.Fatal(err)
		}
		k.fail = failOn("master", 10, unix.EBUSY, enslavingTo(3))
		_, err := h.Up("vnet0")
		if want := "up vnet0: ip link set dev vnet0 master br0: device or resource busy" + rule; err == nil || err.Error() != want {
			t.Fatalf("Up = %v\n want %s", err, want)
		}
		if diff := cmp.Diff(before, linkOf(t, m, 10)); diff != "" {
			t.Errorf("TAP after failed Up (-before +after):\n%s", diff)
		}
		rec, _ := h.State.Read("vnet0")
		if diff := cmp.Diff(old, rec); diff != "" {
			t.Errorf("record after failed Up (-before +after):\n%s", diff)
		}
	})

	t.Run("rollback incomplete: the record stays for ifdown", func(t *testing.T) {
		m := unitModel(unitTAP(), unitBridge("br0", 3, 9000))
		k := newRecorder(m)
		before := linkOf(t, m, 10)
		enslave := failOn("master", 10, unix.EBUSY, enslavingTo(3))
		k.fail = func(attr string, index int, ch kernel.Change) error {
			if attr == "address" && ch.MAC.String() == kernelMAC {
				return unix.EPERM // the undo fails
			}
			return enslave(attr, index, ch)
		}
		h, _ := unitHook(t, k, `bridge = "br0"`)
		_, err := h.Up("vnet0")
		want := failed + " (rollback incomplete: undo ip link set dev vnet0 address " + derivedMAC("vnet0") + " mtu 9000 master br0 up: operation not permitted (needs CAP_NET_ADMIN))" + rule
		if err == nil || err.Error() != want {
			t.Fatalf("Up = %v\n want %s", err, want)
		}
		if exit.Code(err) != 71 || !errors.Is(err, unix.EBUSY) {
			t.Errorf("exit.Code = %d, errors.Is(EBUSY) = %v; want the failure's: 71, true", exit.Code(err), errors.Is(err, unix.EBUSY))
		}
		rec, _ := h.State.Read("vnet0")
		wantRec := &state.Record{
			TAP: "vnet0", Index: 10, Bridge: "br0", Since: unitNow,
			Rule: `no rule matched; bridge = "br0" at test.toml:1`,
			Prev: state.Snapshot{MAC: kernelMAC, MTU: 1500},
			Set:  state.Snapshot{MAC: derivedMAC("vnet0"), MTU: 9000, Master: "br0", Up: true},
		}
		if diff := cmp.Diff(wantRec, rec); diff != "" {
			t.Errorf("record after an incomplete rollback (-want +got):\n%s", diff)
		}
		// With the record, ifdown restores what the rollback could not.
		k.fail = nil
		p, err := h.Down("vnet0")
		if err != nil {
			t.Fatalf("Down: %v", err)
		}
		if want := []string{"ip link set dev vnet0 address " + kernelMAC, "ip link set dev vnet0 mtu 1500"}; !cmp.Equal(want, p.Lines()) {
			t.Errorf("Down steps = %q, want %q", p.Lines(), want)
		}
		if diff := cmp.Diff(before, linkOf(t, m, 10)); diff != "" {
			t.Errorf("TAP after Down (-before +after):\n%s", diff)
		}
		if rec, _ := h.State.Read("vnet0"); rec != nil {
			t.Errorf("record after Down: %+v", rec)
		}
	})
}

func TestHookLockTimeout(t *testing.T) {
	k := newRecorder(unitModel(unitTAP(), unitBridge("br0", 3, 1500)))
	h, _ := unitHook(t, k, `bridge = "br0"`)
	held, err := h.State.Lock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	h.cfg.LockTimeout = 100 * time.Millisecond
	for _, op := range []func(string) (*TAPPlan, error){h.Up, h.Down} {
		_, err := op("vnet0")
		if !errors.Is(err, state.ErrLockTimeout) || exit.Code(err) != 75 {
			t.Errorf("with the lock held: %v (exit %d); want ErrLockTimeout, 75", err, exit.Code(err))
		}
		if err != nil && !strings.HasSuffix(err.Error(), "timed out waiting for the lock after 100ms (another ifhook is still working: see 'ifhook list')") {
			t.Errorf("message = %q", err)
		}
	}
	if len(k.calls) != 0 {
		t.Errorf("changed the kernel without the lock: %q", k.calls)
	}
	if _, err := h.GC(); exit.Code(err) != 75 {
		t.Errorf("GC with the lock held = %v (exit %d), want a lock timeout (75)", err, exit.Code(err))
	}
}

// TestHookBadStateDir: a state directory that cannot be used is exit 73,
// before anything changes. (A Hook always has one now: Open makes it.)
func TestHookBadStateDir(t *testing.T) {
	t.Run("relative path", func(t *testing.T) {
		pol, _ := policy.Parse([]byte(`bridge = "br0"`), "test.toml")
		_, err := Open(Config{Policy: pol, Kernel: kernel.NewModel(), StateDir: "state"})
		if exit.Code(err) != 73 || err.Error() != "state directory state: not an absolute path" {
			t.Errorf("Open with a relative state dir = %v (exit %d)", err, exit.Code(err))
		}
	})
	t.Run("writable by others", func(t *testing.T) {
		k := newRecorder(unitModel(unitTAP(), unitBridge("br0", 3, 1500)))
		h, _ := unitHook(t, k, `bridge = "br0"`)
		if err := os.Mkdir(h.State.Path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(h.State.Path, 0o777); err != nil {
			t.Fatal(err)
		}
		_, err := h.Up("vnet0")
		if exit.Code(err) != 73 || err == nil || !strings.HasPrefix(err.Error(), "up vnet0: state directory "+h.State.Path+" is writable by its group or others") {
			t.Errorf("Up with a world-writable state dir = %v (exit %d), want \"up vnet0: state directory ... is writable ...\", 73", err, exit.Code(err))
		}
		if len(k.calls) != 0 {
			t.Errorf("changed the kernel: %q", k.calls)
		}
	})
}

func TestHookDownCases(t *testing.T) {
	t.Run("TAP gone: success, record removed", func(t *testing.T) {
		h, _ := unitHook(t, unitModel(unitBridge("br0", 3, 1500)), `bridge = "br0"`)
		if err := h.State.Write(&state.Record{TAP: "vnet0", Index: 10}); err != nil {
			t.Fatal(err)
		}
		p, err := h.Down("vnet0")
		if err != nil || !cmp.Equal([]string{"already gone"}, noteTexts(p.Notes)) {
			t.Errorf("Down = notes %q, %v; want \"already gone\", nil", noteTexts(p.Notes), err)
		}
		if rec, _ := h.State.Read("vnet0"); rec != nil {
			t.Errorf("record kept: %+v", rec)
		}
	})
	t.Run("not a TAP", func(t *testing.T) {
		k := newRecorder(unitModel(&rtnl.Link{Name: "eth0", Index: 2, Master: 3, Up: true}, unitBridge("br0", 3, 1500)))
		h, _ := unitHook(t, k, `bridge = "br0"`)
		_, err := h.Down("eth0")
		if err == nil || err.Error() != `down eth0: "eth0" is a physical device, not a TAP; refusing to touch it` || exit.Code(err) != 65 {
			t.Errorf("Down(eth0) = %v (exit %d)", err, exit.Code(err))
		}
		if len(k.calls) != 0 {
			t.Errorf("changed the kernel: %q", k.calls)
		}
	})
	t.Run("the loopback device is not a TAP", func(t *testing.T) {
		k := newRecorder(unitModel())
		h, _ := unitHook(t, k, `bridge = "br0"`)
		_, err := h.Down("lo")
		if err == nil || err.Error() != `down lo: "lo" is the loopback device, not a TAP; refusing to touch it` || exit.Code(err) != 65 {
			t.Errorf("Down(lo) = %v (exit %d)", err, exit.Code(err))
		}
		if len(k.calls) != 0 {
			t.Errorf("changed the kernel: %q", k.calls)
		}
	})
	t.Run("record of an earlier device of that name is ignored and removed", func(t *testing.T) {
		h, _ := unitHook(t, unitModel(unitTAP(func(l *rtnl.Link) { l.Master, l.Up, l.MAC = 3, true, mustMAC(hostMAC) }), unitBridge("br0", 3, 1500)), `bridge = "br0"`)
		old := &state.Record{TAP: "vnet0", Index: 9, Prev: state.Snapshot{MAC: kernelMAC, MTU: 1400}, Set: state.Snapshot{MAC: hostMAC, MTU: 1500}}
		if err := h.State.Write(old); err != nil {
			t.Fatal(err)
		}
		p, err := h.Down("vnet0")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"ip link set dev vnet0 nomaster", "ip link set dev vnet0 down"}; !cmp.Equal(want, p.Lines()) {
			t.Errorf("steps = %q, want %q (no restore from another device's record)", p.Lines(), want)
		}
		if rec, _ := h.State.Read("vnet0"); rec != nil {
			t.Errorf("stale record kept: %+v", rec)
		}
	})
	t.Run("lookup failure", func(t *testing.T) {
		k := newRecorder(unitModel(unitTAP()))
		k.lookupErr = unix.EIO
		h, _ := unitHook(t, k, `bridge = "br0"`)
		_, err := h.Down("vnet0")
		if err == nil || err.Error() != "down vnet0: look up vnet0: input/output error" || exit.Code(err) != 71 {
			t.Errorf("Down = %v (exit %d)", err, exit.Code(err))
		}
	})
	t.Run("failures: best effort, the record kept", func(t *testing.T) {
		// Detaching fails; the rest is still done, one change at a time,
		// and the record stays for another ifdown (or gc).
		m := unitModel(unitTAP(func(l *rtnl.Link) { l.Master, l.Up, l.MTU, l.MAC = 3, true, 9000, mustMAC(hostMAC) }), unitBridge("br0", 3, 9000))
		k := newRecorder(m)
		k.fail = failOn("master", 10, unix.EBUSY, enslavingTo(0))
		h, _ := unitHook(t, k, `bridge = "br0"`)
		rec := &state.Record{TAP: "vnet0", Index: 10, Bridge: "br0", Since: unitNow,
			Prev: state.Snapshot{MAC: kernelMAC, MTU: 1500},
			Set:  state.Snapshot{MAC: hostMAC, MTU: 9000, Master: "br0", Up: true}}
		if err := h.State.Write(rec); err != nil {
			t.Fatal(err)
		}
		_, err := h.Down("vnet0")
		if err == nil || err.Error() != "down vnet0: ip link set dev vnet0 nomaster: device or resource busy" || exit.Code(err) != 71 {
			t.Errorf("Down = %v (exit %d)", err, exit.Code(err))
		}
		want := []string{
			"SetLink(10, address 52:54:00:12:34:56 mtu 1500 nomaster down)",
			"SetLink(10, nomaster)",
			"SetLink(10, down)",
			"SetLink(10, address 52:54:00:12:34:56)",
			"SetLink(10, mtu 1500)",
		}
		if diff := cmp.Diff(want, k.calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
		left := *unitTAP(func(l *rtnl.Link) { l.Master, l.SlaveKind, l.PortState = 3, "bridge", rtnl.PortForwarding })
		if diff := cmp.Diff(left, linkOf(t, m, 10)); diff != "" {
			t.Errorf("TAP after a failed Down (-want +got):\n%s", diff)
		}
		if got, _ := h.State.Read("vnet0"); !cmp.Equal(rec, got) {
			t.Errorf("record after a failed Down = %+v, want it kept: %+v", got, rec)
		}
	})
}

func TestHookGCAndSweep(t *testing.T) {
	setup := func(t *testing.T) *Hook {
		h, _ := unitHook(t, unitModel(unitTAP(), unitBridge("br0", 3, 1500)), "bridge = \"br0\"\ntap_mac = \"keep\"\n")
		for _, r := range []*state.Record{
			{TAP: "vnet0", Index: 10, Bridge: "br0"}, // present
			{TAP: "vnet7", Index: 17, Bridge: "br0"}, // gone
			{TAP: "vnet8", Index: 18, Bridge: "br0"}, // gone
		} {
			if err := h.State.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		return h
	}
	records := func(h *Hook) []string {
		recs, _ := h.State.List()
		var names []string
		for _, r := range recs {
			names = append(names, r.TAP)
		}
		return names
	}

	t.Run("list", func(t *testing.T) {
		h := setup(t)
		items, err := h.List()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range items {
			got = append(got, it.TAP+map[bool]string{true: " present", false: " gone"}[it.Present])
		}
		if want := []string{"vnet0 present", "vnet7 gone", "vnet8 gone"}; !cmp.Equal(want, got) {
			t.Errorf("List = %q, want %q", got, want)
		}
	})
	t.Run("gc", func(t *testing.T) {
		h := setup(t)
		removed, err := h.GC()
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"vnet7", "vnet8"}; !cmp.Equal(want, removed) {
			t.Errorf("GC removed %q, want %q", removed, want)
		}
		if want := []string{"vnet0"}; !cmp.Equal(want, records(h)) {
			t.Errorf("records after GC = %q, want %q", records(h), want)
		}
	})
	t.Run("up sweeps when due", func(t *testing.T) {
		h := setup(t)
		h.cfg.SweepEvery = time.Minute
		h.cfg.Now = func() time.Time { return time.Now().Add(time.Hour) }
		if _, err := h.Up("vnet0"); err != nil {
			t.Fatal(err)
		}
		if want := []string{"vnet0"}; !cmp.Equal(want, records(h)) {
			t.Errorf("records after a due sweep = %q, want %q", records(h), want)
		}
	})
	t.Run("up does not sweep before it is due", func(t *testing.T) {
		h := setup(t)
		h.cfg.SweepEvery = time.Hour
		h.cfg.Now = time.Now
		if _, err := h.Up("vnet0"); err != nil {
			t.Fatal(err)
		}
		if want := []string{"vnet0", "vnet7", "vnet8"}; !cmp.Equal(want, records(h)) {
			t.Errorf("records after Up = %q, want all kept: %q", records(h), want)
		}
	})
}

// TestHookMoveKeepsTheFirstRecordsValues: a second ifup that moves an
// attached TAP to another bridge (the policy changed) keeps what the TAP
// had before ifhook first touched it, so ifdown restores the kernel's MAC
// and MTU, not the first ifup's.
func TestHookMoveKeepsTheFirstRecordsValues(t *testing.T) {
	m := unitModel(unitTAP(), unitBridge("br0", 3, 9000), unitBridge("br1", 4, 1400))
	h, _ := unitHook(t, m, "bridge = \"br0\"\n")
	if _, err := h.Up("vnet0"); err != nil {
		t.Fatal(err)
	}
	if l := linkOf(t, m, 10); l.MTU != 9000 || l.MAC.String() != derivedMAC("vnet0") {
		t.Fatalf("after the first up: %+v", l)
	}
	pol, err := policy.Parse([]byte("bridge = \"br1\"\n[[rule]]\ntap = \"vnet0\"\nmtu = 1400\n"), "moved.toml")
	if err != nil {
		t.Fatal(err)
	}
	h.Policy, h.Bridges.Policy = pol, pol
	if _, err := h.Up("vnet0"); err != nil {
		t.Fatal(err)
	}
	rec, _ := h.State.Read("vnet0")
	if rec == nil || rec.Bridge != "br1" || rec.Prev.MAC != kernelMAC || rec.Prev.MTU != 1500 || rec.Prev.Master != "" {
		t.Fatalf("record after the move = %+v; want bridge br1 and the kernel's MAC %s, MTU 1500, no master", rec, kernelMAC)
	}
	if _, err := h.Down("vnet0"); err != nil {
		t.Fatal(err)
	}
	if l := linkOf(t, m, 10); l.MTU != 1500 || l.MAC.String() != kernelMAC || l.Master != 0 || l.Up {
		t.Fatalf("after down: %+v; want the TAP as the kernel made it", l)
	}
}

// TestHookRefusesAMACALivePortHas: a guest MAC already claimed on the
// bridge by a TAP that is still a port of it is refused (65), naming the
// other TAP and its VM; a claim left by a TAP that is gone is not.
func TestHookRefusesAMACALivePortHas(t *testing.T) {
	m := unitModel(unitTAP(), unitTAP(func(l *rtnl.Link) { l.Name, l.Index, l.MAC = "vnet1", 11, mustMAC("52:54:00:00:00:11") }), unitBridge("br0", 3, 1500))
	guests := map[string]Guest{
		"vnet0": {VM: "first", MAC: mustMAC("52:54:00:aa:00:01"), NIC: "-nic"},
		"vnet1": {VM: "second", MAC: mustMAC("52:54:00:aa:00:01"), NIC: "-nic"},
	}
	h, _ := unitHook(t, m, "bridge = \"br0\"\n")
	h.cfg.Guest = func(tap string) Guest { return guests[tap] }
	if _, err := h.Up("vnet0"); err != nil {
		t.Fatal(err)
	}
	before := linkOf(t, m, 11)
	_, err := h.Up("vnet1")
	if exit.Code(err) != 65 || !strings.Contains(err.Error(), `guest MAC 52:54:00:aa:00:01 is already used on br0 by vnet0 (VM "first")`) || !strings.Contains(err.Error(), "try: ifhook mac second") {
		t.Fatalf("second Up = %v (exit %d)", err, exit.Code(err))
	}
	if after := linkOf(t, m, 11); !cmp.Equal(before, after) {
		t.Fatalf("the refused TAP was changed: %+v", after)
	}
	// vnet0 leaves the bridge without its ifdown (QEMU killed): its claim
	// stays in the index, but no live port has the MAC, so vnet1 may.
	m.SetLink(10, kernel.Change{Master: rtnl.Ptr(0)})
	if _, err := h.Up("vnet1"); err != nil {
		t.Fatalf("Up with a stale claim: %v", err)
	}
}

package ifhook

// Pure tests of the TAP planners, PlanUp and PlanDown, and of how a TAP
// plan renders. No kernel: observations are built by hand, or read from a
// kernel.Model.

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/plan"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

const (
	kernelMAC = "52:54:00:12:34:56" // what the kernel gave the TAP
	hostMAC   = "fe:54:00:aa:bb:cc" // what the policy wants
)

// unitTAP is a TAP as QEMU leaves it: down, no master, MTU 1500.
func unitTAP(mods ...func(*rtnl.Link)) *rtnl.Link {
	l := &rtnl.Link{Name: "vnet0", Index: 10, Kind: "tun", TunType: rtnl.TunTypeTAP, MTU: 1500, MAC: mustMAC(kernelMAC), PortState: -1}
	for _, m := range mods {
		m(l)
	}
	return l
}

func unitBridge(name string, index, mtu int) *rtnl.Link {
	return &rtnl.Link{Name: name, Index: index, Kind: "bridge", MTU: mtu, Up: true, MAC: mustMAC("02:00:00:00:00:01"), PortState: -1}
}

// unitModel returns a complete in-memory namespace holding links (and the
// loopback device every namespace has, index 1). A link with a master is a
// forwarding bridge port, as the kernel reports one.
func unitModel(links ...*rtnl.Link) *kernel.Model {
	m := kernel.NewModel()
	for _, l := range links {
		c := *l
		if c.Master != 0 && c.SlaveKind == "" {
			c.SlaveKind, c.PortState = "bridge", rtnl.PortForwarding
		}
		m.AddLink(c)
	}
	return m
}

func TestPlanUpSteps(t *testing.T) {
	br0 := unitBridge("br0", 3, 9000)
	br1 := unitBridge("br1", 4, 1500)
	attached := func(l *rtnl.Link) { l.Master, l.Up, l.MTU, l.MAC = 3, true, 9000, mustMAC(hostMAC) }
	tests := []struct {
		name      string
		obs       Observed
		want      Want
		wantSteps []string
		wantNotes []plan.Note
		wantExit  int
		wantErr   string // exact message; "" for success
	}{
		{
			name:     "TAP missing",
			obs:      Observed{TAPName: "vnet0", BridgeName: "br0", Bridge: br0},
			wantExit: 65, wantErr: "no such device",
		},
		{
			name:     "veth",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(func(l *rtnl.Link) { l.Kind, l.TunType = "veth", 0 }), BridgeName: "br0", Bridge: br0},
			wantExit: 65, wantErr: `"vnet0" is a veth, not a TAP; refusing to touch it`,
		},
		{
			name:     "TUN",
			obs:      Observed{TAPName: "tun0", TAP: unitTAP(func(l *rtnl.Link) { l.Name, l.TunType = "tun0", rtnl.TunTypeTUN }), BridgeName: "br0", Bridge: br0},
			wantExit: 65, wantErr: `"tun0" is a TUN device (layer 3), not a TAP; refusing to touch it`,
		},
		{
			name:     "tuntap of unknown mode",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(func(l *rtnl.Link) { l.TunType = 0 }), BridgeName: "br0", Bridge: br0},
			wantExit: 65, wantErr: `"vnet0" is a tuntap device of unknown mode, not a TAP; refusing to touch it`,
		},
		{
			name:     "physical device",
			obs:      Observed{TAPName: "eth0", TAP: unitTAP(func(l *rtnl.Link) { l.Name, l.Kind, l.TunType = "eth0", "", 0 }), BridgeName: "br0", Bridge: br0},
			wantExit: 65, wantErr: `"eth0" is a physical device, not a TAP; refusing to touch it`,
		},
		{
			name:     "physical device with an Ethernet hardware type",
			obs:      Observed{TAPName: "eth0", TAP: unitTAP(func(l *rtnl.Link) { l.Name, l.Kind, l.TunType, l.Type = "eth0", "", 0, unix.ARPHRD_ETHER }), BridgeName: "br0", Bridge: br0},
			wantExit: 65, wantErr: `"eth0" is a physical device, not a TAP; refusing to touch it`,
		},
		{
			name:     "loopback",
			obs:      Observed{TAPName: "lo", TAP: &rtnl.Link{Name: "lo", Index: 1, Type: unix.ARPHRD_LOOPBACK, Up: true, MTU: 65536}, BridgeName: "br0", Bridge: br0},
			wantExit: 65, wantErr: `"lo" is the loopback device, not a TAP; refusing to touch it`,
		},
		{
			name:     "a bridge named as the TAP",
			obs:      Observed{TAPName: "br1", TAP: br1, BridgeName: "br0", Bridge: br0},
			wantExit: 65, wantErr: `"br1" is a bridge, not a TAP; refusing to touch it`,
		},
		{
			name:     "odd kind",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(func(l *rtnl.Link) { l.Kind = "wireguard" }), BridgeName: "br0", Bridge: br0},
			wantExit: 65, wantErr: `"vnet0" is a "wireguard" device, not a TAP; refusing to touch it`,
		},
		{
			name:     "bridge missing",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(), BridgeName: "br9"},
			wantExit: 69, wantErr: `bridge "br9" does not exist`,
		},
		{
			name:     "bridge is not a bridge",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(), BridgeName: "eth0", Bridge: &rtnl.Link{Name: "eth0", Index: 2, MTU: 1500}},
			wantExit: 69, wantErr: `"eth0" is a physical device, not a bridge`,
		},
		{
			name:     "bridge is a TAP",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(), BridgeName: "vnet1", Bridge: unitTAP(func(l *rtnl.Link) { l.Name, l.Index = "vnet1", 11 })},
			wantExit: 69, wantErr: `"vnet1" is a TAP, not a bridge`,
		},
		{
			name: "already attached and configured",
			obs:  Observed{TAPName: "vnet0", TAP: unitTAP(attached), BridgeName: "br0", Bridge: br0},
			want: Want{MAC: mustMAC(hostMAC)},
		},
		{
			name: "everything to do, in order",
			obs:  Observed{TAPName: "vnet0", TAP: unitTAP(), BridgeName: "br0", Bridge: br0},
			want: Want{MAC: mustMAC(hostMAC)},
			wantSteps: []string{
				"ip link set dev vnet0 address fe:54:00:aa:bb:cc",
				"ip link set dev vnet0 mtu 9000",
				"ip link set dev vnet0 master br0",
				"ip link set dev vnet0 up",
			},
		},
		{
			name: "MAC left alone (tap_mac = keep)",
			obs:  Observed{TAPName: "vnet0", TAP: unitTAP(), BridgeName: "br0", Bridge: br0},
			wantSteps: []string{
				"ip link set dev vnet0 mtu 9000",
				"ip link set dev vnet0 master br0",
				"ip link set dev vnet0 up",
			},
		},
		{
			name: "rule MTU wins over the bridge's",
			obs:  Observed{TAPName: "vnet0", TAP: unitTAP(attached), BridgeName: "br0", Bridge: br0},
			want: Want{MAC: mustMAC(hostMAC), MTU: 1400},
			wantSteps: []string{
				"ip link set dev vnet0 mtu 1400",
			},
		},
		{
			name: "rule MTU equal to the TAP's: nothing",
			obs:  Observed{TAPName: "vnet0", TAP: unitTAP(), BridgeName: "br0", Bridge: br0},
			want: Want{MTU: 1500},
			wantSteps: []string{
				"ip link set dev vnet0 master br0",
				"ip link set dev vnet0 up",
			},
		},
		{
			name: "bridge MTU unknown (0): no MTU step",
			obs:  Observed{TAPName: "vnet0", TAP: unitTAP(func(l *rtnl.Link) { l.Up = true }), BridgeName: "br5", Bridge: unitBridge("br5", 5, 0)},
			wantSteps: []string{
				"ip link set dev vnet0 master br5",
			},
		},
		{
			name: "only the MAC",
			obs:  Observed{TAPName: "vnet0", TAP: unitTAP(attached, func(l *rtnl.Link) { l.MAC = mustMAC(kernelMAC) }), BridgeName: "br0", Bridge: br0},
			want: Want{MAC: mustMAC(hostMAC)},
			wantSteps: []string{
				"ip link set dev vnet0 address fe:54:00:aa:bb:cc",
			},
		},
		{
			name: "only up",
			obs:  Observed{TAPName: "vnet0", TAP: unitTAP(attached, func(l *rtnl.Link) { l.Up = false }), BridgeName: "br0", Bridge: br0},
			want: Want{MAC: mustMAC(hostMAC)},
			wantSteps: []string{
				"ip link set dev vnet0 up",
			},
		},
		{
			name: "attached to another bridge: moved, with a note",
			obs: Observed{
				TAPName: "vnet0", TAP: unitTAP(attached, func(l *rtnl.Link) { l.Master = 4 }),
				BridgeName: "br0", Bridge: br0, OldMaster: br1,
			},
			want:      Want{MAC: mustMAC(hostMAC)},
			wantSteps: []string{"ip link set dev vnet0 master br0"},
			wantNotes: []plan.Note{{Kind: plan.Moved, Text: "moving vnet0 from br1 to br0"}},
		},
		{
			name: "attached to an unknown master",
			obs: Observed{
				TAPName: "vnet0", TAP: unitTAP(func(l *rtnl.Link) { l.Master = 77 }),
				BridgeName: "br0", Bridge: br0,
			},
			want: Want{MAC: mustMAC(hostMAC)},
			wantSteps: []string{
				"ip link set dev vnet0 address fe:54:00:aa:bb:cc",
				"ip link set dev vnet0 mtu 9000",
				"ip link set dev vnet0 master br0",
				"ip link set dev vnet0 up",
			},
			wantNotes: []plan.Note{{Kind: plan.Moved, Text: "moving vnet0 from index 77 to br0"}},
		},
		{
			// The bridge is made earlier in the same plan: it has no index
			// yet, so "the TAP has no master and the bridge has index 0"
			// must not read as "already attached".
			name: "bridge made in the same plan",
			obs: Observed{
				TAPName: "vnet0", TAP: unitTAP(),
				BridgeName: "br5", Bridge: &rtnl.Link{Name: "br5", Kind: "bridge", MTU: 1500}, NewBridge: true,
			},
			wantSteps: []string{
				"ip link set dev vnet0 master br5",
				"ip link set dev vnet0 up",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, notes, err := PlanUp(tt.obs, tt.want)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("PlanUp = %q, want error %q", plan.Lines(steps), tt.wantErr)
				}
				if got := exit.Code(err); got != tt.wantExit {
					t.Errorf("exit.Code(%q) = %d, want %d", err, got, tt.wantExit)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("error = %q, want %q", err, tt.wantErr)
				}
				if steps != nil || notes != nil {
					t.Errorf("PlanUp returned steps %q, notes %q with its error", plan.Lines(steps), notes)
				}
				return
			}
			if err != nil {
				t.Fatalf("PlanUp: %v", err)
			}
			if diff := cmp.Diff(tt.wantSteps, plan.Lines(steps), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantNotes, notes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanUpIsPure: planning twice gives the same steps, and applying
// the plan to the observation gives a plan with nothing to do.
func TestPlanUpIsPure(t *testing.T) {
	m := unitModel(unitTAP(), unitBridge("br0", 3, 9000))
	want := Want{MAC: mustMAC(hostMAC)}
	obs := func() Observed {
		tap, err := m.LinkByName("vnet0")
		if err != nil {
			t.Fatal(err)
		}
		br, err := m.LinkByName("br0")
		if err != nil {
			t.Fatal(err)
		}
		return Observed{TAPName: "vnet0", TAP: tap, BridgeName: "br0", Bridge: br}
	}
	first, _, err := PlanUp(obs(), want)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) == 0 {
		t.Fatal("PlanUp of a TAP as QEMU leaves it: nothing to do")
	}
	second, _, _ := PlanUp(obs(), want)
	if !cmp.Equal(plan.Lines(first), plan.Lines(second)) {
		t.Errorf("PlanUp gave %q, then %q", plan.Lines(first), plan.Lines(second))
	}
	if err := (&plan.Applier{Kernel: m}).All("up vnet0", first, nil); err != nil {
		t.Fatal(err)
	}
	again, notes, err := PlanUp(obs(), want)
	if err != nil || len(again) != 0 || len(notes) != 0 {
		t.Errorf("after applying: PlanUp = %q, %q, %v; want nothing to do", plan.Lines(again), notes, err)
	}
}

func TestPlanDownSteps(t *testing.T) {
	attached := func(l *rtnl.Link) { l.Master, l.Up, l.MTU, l.MAC = 3, true, 9000, mustMAC(hostMAC) }
	// record is what ifup left: what was there (prev) and what it set.
	record := func(prevMAC string, prevMTU int, setMAC string, setMTU int) *state.Record {
		return &state.Record{TAP: "vnet0", Index: 10, Bridge: "br0",
			Prev: state.Snapshot{MAC: prevMAC, MTU: prevMTU},
			Set:  state.Snapshot{MAC: setMAC, MTU: setMTU, Master: "br0", Up: true}}
	}
	tests := []struct {
		name string
		tap  *rtnl.Link
		rec  *state.Record
		want []string
	}{
		{
			name: "restores what ifhook set",
			tap:  unitTAP(attached), rec: record(kernelMAC, 1500, hostMAC, 9000),
			want: []string{
				"ip link set dev vnet0 nomaster",
				"ip link set dev vnet0 down",
				"ip link set dev vnet0 address 52:54:00:12:34:56",
				"ip link set dev vnet0 mtu 1500",
			},
		},
		{
			name: "no record: detach and down only",
			tap:  unitTAP(attached),
			want: []string{
				"ip link set dev vnet0 nomaster",
				"ip link set dev vnet0 down",
			},
		},
		{
			name: "MAC changed since by someone else: kept",
			tap:  unitTAP(attached, func(l *rtnl.Link) { l.MAC = mustMAC("02:11:22:33:44:55") }), rec: record(kernelMAC, 1500, hostMAC, 9000),
			want: []string{
				"ip link set dev vnet0 nomaster",
				"ip link set dev vnet0 down",
				"ip link set dev vnet0 mtu 1500",
			},
		},
		{
			name: "MTU changed since by someone else: kept",
			tap:  unitTAP(attached, func(l *rtnl.Link) { l.MTU = 1400 }), rec: record(kernelMAC, 1500, hostMAC, 9000),
			want: []string{
				"ip link set dev vnet0 nomaster",
				"ip link set dev vnet0 down",
				"ip link set dev vnet0 address 52:54:00:12:34:56",
			},
		},
		{
			name: "ifhook set what was there: nothing to restore",
			tap:  unitTAP(attached), rec: record(hostMAC, 9000, hostMAC, 9000),
			want: []string{
				"ip link set dev vnet0 nomaster",
				"ip link set dev vnet0 down",
			},
		},
		{
			name: "already detached and down, MAC and MTU restored",
			tap:  unitTAP(), rec: record(kernelMAC, 1500, hostMAC, 9000),
			want: nil,
		},
		{
			name: "detached but still ours",
			tap:  unitTAP(attached, func(l *rtnl.Link) { l.Master, l.Up = 0, false }), rec: record(kernelMAC, 1500, hostMAC, 9000),
			want: []string{
				"ip link set dev vnet0 address 52:54:00:12:34:56",
				"ip link set dev vnet0 mtu 1500",
			},
		},
		{
			name: "half a record (no MAC set, MTU unknown)",
			tap:  unitTAP(attached), rec: record(kernelMAC, 1500, "", 0),
			want: []string{
				"ip link set dev vnet0 nomaster",
				"ip link set dev vnet0 down",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan.Lines(PlanDown(tt.tap, tt.rec))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("PlanDown (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanDownUndoesPlanUp: on a model, PlanDown after PlanUp, with the
// record ifup would write, gives back the TAP as QEMU made it.
func TestPlanDownUndoesPlanUp(t *testing.T) {
	m := unitModel(unitTAP(), unitBridge("br0", 3, 9000))
	before, _ := m.LinkByIndex(10)
	br, _ := m.LinkByIndex(3)
	up, _, err := PlanUp(Observed{TAPName: "vnet0", TAP: before, BridgeName: "br0", Bridge: br}, Want{MAC: mustMAC(hostMAC)})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&plan.Applier{Kernel: m}).All("up vnet0", up, nil); err != nil {
		t.Fatal(err)
	}
	rec := &state.Record{TAP: "vnet0", Index: 10, Bridge: "br0",
		Prev: state.Snapshot{MAC: kernelMAC, MTU: 1500},
		Set:  state.Snapshot{MAC: hostMAC, MTU: 9000, Master: "br0", Up: true}}
	tap, _ := m.LinkByIndex(10)
	if err := (&plan.Applier{Kernel: m}).BestEffort("down vnet0", PlanDown(tap, rec), nil); err != nil {
		t.Fatal(err)
	}
	after, _ := m.LinkByIndex(10)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("TAP after up and down (-before +after):\n%s", diff)
	}
	if steps := PlanDown(after, rec); len(steps) != 0 {
		t.Errorf("PlanDown once done = %q, want nothing", plan.Lines(steps))
	}
}

func TestPlanRender(t *testing.T) {
	steps, notes, err := PlanUp(Observed{
		TAPName: "vnet0", TAP: unitTAP(func(l *rtnl.Link) { l.Master = 4 }),
		BridgeName: "br0", Bridge: unitBridge("br0", 3, 1500), OldMaster: unitBridge("br1", 4, 1500),
	}, Want{})
	if err != nil {
		t.Fatal(err)
	}
	p := &TAPPlan{
		Op: "up", TAP: "vnet0", Policy: "/etc/ifhook/config.toml",
		Rule:   `rule 1 (tap = "vnet*") at /etc/ifhook/config.toml:2`,
		Bridge: "br0", Reason: "named by rule 1", Steps: steps, Notes: notes,
	}
	wantText := `up vnet0
  policy: /etc/ifhook/config.toml
  rule:   rule 1 (tap = "vnet*") at /etc/ifhook/config.toml:2
  bridge: br0 (named by rule 1)
  note:   moving vnet0 from br1 to br0
  steps:
    1. ip link set dev vnet0 master br0
    2. ip link set dev vnet0 up
`
	if diff := cmp.Diff(wantText, p.Text()); diff != "" {
		t.Errorf("Text (-want +got):\n%s", diff)
	}
	if got, want := p.Lines(), []string{"ip link set dev vnet0 master br0", "ip link set dev vnet0 up"}; !cmp.Equal(want, got) {
		t.Errorf("Lines = %q, want %q", got, want)
	}

	asJSON := func(v View) map[string]any {
		t.Helper()
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	wantJSON := map[string]any{
		"op": "up", "tap": "vnet0", "policy": "/etc/ifhook/config.toml",
		"rule":   `rule 1 (tap = "vnet*") at /etc/ifhook/config.toml:2`,
		"bridge": "br0", "bridge_reason": "named by rule 1",
		"steps": []any{"ip link set dev vnet0 master br0", "ip link set dev vnet0 up"},
		"notes": []any{"moving vnet0 from br1 to br0"},
	}
	if diff := cmp.Diff(wantJSON, asJSON(p.View(nil))); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
	// With the error the operation would end with, and its exit status.
	wantJSON["error"], wantJSON["exit"] = "no bridge", float64(69)
	if diff := cmp.Diff(wantJSON, asJSON(p.View(exit.New(exit.Unavailable, "no bridge")))); diff != "" {
		t.Errorf("JSON with an error (-want +got):\n%s", diff)
	}

	empty := &TAPPlan{Op: "down", TAP: "vnet0"}
	if got, want := empty.Text(), "down vnet0\n  nothing to do\n"; got != want {
		t.Errorf("empty Text = %q, want %q", got, want)
	}
	data, _ := json.Marshal(empty.View(nil))
	if !strings.Contains(string(data), `"steps":[]`) {
		t.Errorf("empty plan JSON %s: want \"steps\":[] (not null)", data)
	}
}

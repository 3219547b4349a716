package ifhook

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ifhook/ifhook/ifhook/rtnl"
)

func mustMAC(s string) net.HardwareAddr {
	mac, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return mac
}

const (
	kernelMAC = "52:54:00:12:34:56" // what the kernel gave the TAP
	hostMAC   = "fe:54:00:aa:bb:cc" // what the policy wants
)

// unitTAP is a TAP as QEMU leaves it: down, no master, MTU 1500.
func unitTAP(mods ...func(*rtnl.Link)) *rtnl.Link {
	l := &rtnl.Link{Name: "vnet0", Index: 10, Kind: "tun", TunType: rtnl.TunTypeTAP, MTU: 1500, MAC: mustMAC(kernelMAC)}
	for _, m := range mods {
		m(l)
	}
	return l
}

func unitBridge(name string, index, mtu int) *rtnl.Link {
	return &rtnl.Link{Name: name, Index: index, Kind: "bridge", MTU: mtu, Up: true, MAC: mustMAC("02:00:00:00:00:01")}
}

func stepStrings(steps []Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.String()
	}
	return out
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
		wantNotes []string
		wantKind  Kind
		wantErr   string // exact message; "" for success
	}{
		{
			name:     "TAP missing",
			obs:      Observed{TAPName: "vnet0", BridgeName: "br0", Bridge: br0},
			wantKind: KindBadTAP, wantErr: "no such device",
		},
		{
			name:     "veth",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(func(l *rtnl.Link) { l.Kind, l.TunType = "veth", 0 }), BridgeName: "br0", Bridge: br0},
			wantKind: KindBadTAP, wantErr: `"vnet0" is a veth, not a TAP; refusing to touch it`,
		},
		{
			name:     "TUN",
			obs:      Observed{TAPName: "tun0", TAP: unitTAP(func(l *rtnl.Link) { l.Name, l.TunType = "tun0", rtnl.TunTypeTUN }), BridgeName: "br0", Bridge: br0},
			wantKind: KindBadTAP, wantErr: `"tun0" is a TUN device (layer 3), not a TAP; refusing to touch it`,
		},
		{
			name:     "tuntap of unknown mode",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(func(l *rtnl.Link) { l.TunType = 0 }), BridgeName: "br0", Bridge: br0},
			wantKind: KindBadTAP, wantErr: `"vnet0" is a tuntap device of unknown mode, not a TAP; refusing to touch it`,
		},
		{
			name:     "physical device",
			obs:      Observed{TAPName: "eth0", TAP: unitTAP(func(l *rtnl.Link) { l.Name, l.Kind, l.TunType = "eth0", "", 0 }), BridgeName: "br0", Bridge: br0},
			wantKind: KindBadTAP, wantErr: `"eth0" is a physical device, not a TAP; refusing to touch it`,
		},
		{
			name:     "a bridge named as the TAP",
			obs:      Observed{TAPName: "br1", TAP: br1, BridgeName: "br0", Bridge: br0},
			wantKind: KindBadTAP, wantErr: `"br1" is a bridge, not a TAP; refusing to touch it`,
		},
		{
			name:     "odd kind",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(func(l *rtnl.Link) { l.Kind = "wireguard" }), BridgeName: "br0", Bridge: br0},
			wantKind: KindBadTAP, wantErr: `"vnet0" is a "wireguard" device, not a TAP; refusing to touch it`,
		},
		{
			name:     "bridge missing",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(), BridgeName: "br9"},
			wantKind: KindNoBridge, wantErr: `bridge "br9" does not exist`,
		},
		{
			name:     "bridge is not a bridge",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(), BridgeName: "eth0", Bridge: &rtnl.Link{Name: "eth0", Index: 2, MTU: 1500}},
			wantKind: KindNoBridge, wantErr: `"eth0" is a physical device, not a bridge`,
		},
		{
			name:     "bridge is a TAP",
			obs:      Observed{TAPName: "vnet0", TAP: unitTAP(), BridgeName: "vnet1", Bridge: unitTAP(func(l *rtnl.Link) { l.Name, l.Index = "vnet1", 11 })},
			wantKind: KindNoBridge, wantErr: `"vnet1" is a TAP, not a bridge`,
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
			wantNotes: []string{"moving vnet0 from br1 to br0"},
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
			wantNotes: []string{"moving vnet0 from index 77 to br0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, notes, err := PlanUp(tt.obs, tt.want)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("PlanUp = %q, want error %q", stepStrings(steps), tt.wantErr)
				}
				if got := KindOf(err); got != tt.wantKind {
					t.Errorf("KindOf(%q) = %d, want %d", err, got, tt.wantKind)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("error = %q, want %q", err, tt.wantErr)
				}
				if steps != nil || notes != nil {
					t.Errorf("PlanUp returned steps %q, notes %q with its error", stepStrings(steps), notes)
				}
				return
			}
			if err != nil {
				t.Fatalf("PlanUp: %v", err)
			}
			if diff := cmp.Diff(tt.wantSteps, stepStrings(steps), cmpopts.EquateEmpty()); diff != "" {
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
	br0 := unitBridge("br0", 3, 9000)
	links := newMemLinks(unitTAP(), br0)
	want := Want{MAC: mustMAC(hostMAC)}
	obs := func() Observed {
		tap, _ := links.LinkByName("vnet0")
		return Observed{TAPName: "vnet0", TAP: tap, BridgeName: "br0", Bridge: br0}
	}
	first, _, err := PlanUp(obs(), want)
	if err != nil {
		t.Fatal(err)
	}
	second, _, _ := PlanUp(obs(), want)
	if !cmp.Equal(stepStrings(first), stepStrings(second)) {
		t.Errorf("PlanUp gave %q, then %q", stepStrings(first), stepStrings(second))
	}
	if err := applyAll(links, first, nil, "up vnet0"); err != nil {
		t.Fatal(err)
	}
	again, notes, err := PlanUp(obs(), want)
	if err != nil || len(again) != 0 || len(notes) != 0 {
		t.Errorf("after applying: PlanUp = %q, %q, %v; want nothing to do", stepStrings(again), notes, err)
	}
}

func TestPlanDownSteps(t *testing.T) {
	prev, ours := mustMAC(kernelMAC), mustMAC(hostMAC)
	attached := func(l *rtnl.Link) { l.Master, l.Up, l.MTU, l.MAC = 3, true, 9000, mustMAC(hostMAC) }
	tests := []struct {
		name            string
		tap             *rtnl.Link
		prevMAC, ourMAC net.HardwareAddr
		prevMTU, ourMTU int
		want            []string
	}{
		{
			name: "restores what ifhook set",
			tap:  unitTAP(attached), prevMAC: prev, ourMAC: ours, prevMTU: 1500, ourMTU: 9000,
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
			tap:  unitTAP(attached, func(l *rtnl.Link) { l.MAC = mustMAC("02:11:22:33:44:55") }), prevMAC: prev, ourMAC: ours, prevMTU: 1500, ourMTU: 9000,
			want: []string{
				"ip link set dev vnet0 nomaster",
				"ip link set dev vnet0 down",
				"ip link set dev vnet0 mtu 1500",
			},
		},
		{
			name: "MTU changed since by someone else: kept",
			tap:  unitTAP(attached, func(l *rtnl.Link) { l.MTU = 1400 }), prevMAC: prev, ourMAC: ours, prevMTU: 1500, ourMTU: 9000,
			want: []string{
				"ip link set dev vnet0 nomaster",
				"ip link set dev vnet0 down",
				"ip link set dev vnet0 address 52:54:00:12:34:56",
			},
		},
		{
			name: "ifhook set what was there: nothing to restore",
			tap:  unitTAP(attached), prevMAC: ours, ourMAC: ours, prevMTU: 9000, ourMTU: 9000,
			want: []string{
				"ip link set dev vnet0 nomaster",
				"ip link set dev vnet0 down",
			},
		},
		{
			name: "already detached and down, MAC and MTU restored",
			tap:  unitTAP(), prevMAC: prev, ourMAC: ours, prevMTU: 1500, ourMTU: 9000,
			want: nil,
		},
		{
			name: "detached but still ours",
			tap:  unitTAP(attached, func(l *rtnl.Link) { l.Master, l.Up = 0, false }), prevMAC: prev, ourMAC: ours, prevMTU: 1500, ourMTU: 9000,
			want: []string{
				"ip link set dev vnet0 address 52:54:00:12:34:56",
				"ip link set dev vnet0 mtu 1500",
			},
		},
		{
			name: "half a record (no MAC set, MTU unknown)",
			tap:  unitTAP(attached), prevMAC: prev, prevMTU: 1500,
			want: []string{
				"ip link set dev vnet0 nomaster",
				"ip link set dev vnet0 down",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := stepStrings(PlanDown(tt.tap, tt.prevMAC, tt.ourMAC, tt.prevMTU, tt.ourMTU))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("PlanDown (-want +got):\n%s", diff)
			}
		})
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
	p := &Plan{
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
	if got, want := p.StepStrings(), []string{"ip link set dev vnet0 master br0", "ip link set dev vnet0 up"}; !cmp.Equal(want, got) {
		t.Errorf("StepStrings = %q, want %q", got, want)
	}

	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	wantJSON := map[string]any{
		"op": "up", "tap": "vnet0", "policy": "/etc/ifhook/config.toml",
		"rule":   `rule 1 (tap = "vnet*") at /etc/ifhook/config.toml:2`,
		"bridge": "br0", "bridge_reason": "named by rule 1",
		"steps": []any{"ip link set dev vnet0 master br0", "ip link set dev vnet0 up"},
		"notes": []any{"moving vnet0 from br1 to br0"},
	}
	if diff := cmp.Diff(wantJSON, m); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}

	empty := &Plan{Op: "down", TAP: "vnet0"}
	if got, want := empty.Text(), "down vnet0\n  nothing to do\n"; got != want {
		t.Errorf("empty Text = %q, want %q", got, want)
	}
	data, _ = json.Marshal(empty)
	if !strings.Contains(string(data), `"steps":[]`) {
		t.Errorf("empty plan JSON %s: want \"steps\":[] (not null)", data)
	}
}

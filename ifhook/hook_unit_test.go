package ifhook

// Pure tests of Hook: the kernel is memLinks and the state directory a
// temporary one, so these need no root and touch no network namespace.

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

var unitNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// unitHook returns a Hook over links with the policy text, a temporary
// state directory, CAP_NET_ADMIN, a fixed clock, and stderr in the buffer.
func unitHook(t *testing.T, links *memLinks, policyText string) (*Hook, *bytes.Buffer) {
	t.Helper()
	pol, err := policy.Parse([]byte(policyText), "test.toml")
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	return &Hook{
		Policy: pol, Links: links, State: dir, Log: &Log{Stderr: &buf},
		HasNetAdmin: func() bool { return true },
		Now:         func() time.Time { return unitNow },
	}, &buf
}

func derivedMAC(tap string) string {
	return policy.HostTAPMAC(policy.DefaultMACPrefix, tap).String()
}

func TestHookExplain(t *testing.T) {
	eth0 := &rtnl.Link{Name: "eth0", Index: 2, MTU: 1500, Up: true}
	br0, br1 := unitBridge("br0", 3, 9000), unitBridge("br1", 4, 1500)
	tests := []struct {
		name       string
		policy     string
		links      []*rtnl.Link
		routes     map[int][]int
		tap        string
		wantRule   string
		wantBridge string
		wantReason string
		wantSteps  []string
		wantKind   Kind
		wantErr    string // exact
		bug        string
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
			routes:     map[int][]int{unix.AF_INET: {2, 4}, unix.AF_INET6: {3}},
			tap:        "vnet0",
			wantRule:   `no rule matched; bridge = "auto" at test.toml`,
			wantBridge: "br1", wantReason: "auto: holds the IPv4 default route",
			wantSteps: []string{"ip link set dev vnet0 master br1"},
		},
		{
			name:       "auto: IPv6 default route",
			policy:     "bridge = \"auto\"\ntap_mac = \"keep\"",
			links:      []*rtnl.Link{unitTAP(func(l *rtnl.Link) { l.Up = true }), eth0, br0, br1},
			routes:     map[int][]int{unix.AF_INET: {2, 99}, unix.AF_INET6: {3}},
			tap:        "vnet0",
			wantRule:   `no rule matched; bridge = "auto" at test.toml:1`,
			wantBridge: "br0", wantReason: "auto: holds the IPv6 default route",
			wantSteps: []string{"ip link set dev vnet0 mtu 9000", "ip link set dev vnet0 master br0"},
		},
		{
			name:       "auto: the only bridge",
			policy:     "tap_mac = \"keep\"",
			links:      []*rtnl.Link{unitTAP(func(l *rtnl.Link) { l.Up = true }), eth0, br1},
			routes:     map[int][]int{unix.AF_INET: {2}},
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
			wantKind: KindNoBridge,
			wantErr:  `explain vnet0: bridge = "auto" found no bridge: none holds the default route and the host has none (no rule matched; bridge = "auto" at test.toml)`,
		},
		{
			name:     "auto: several bridges",
			policy:   "",
			links:    []*rtnl.Link{unitTAP(), br1, br0},
			tap:      "vnet0",
			wantRule: `no rule matched; bridge = "auto" at test.toml`,
			wantKind: KindNoBridge,
			wantErr:  `explain vnet0: bridge = "auto" cannot choose: no bridge holds the default route and there are 2 (br0, br1); name one in the policy (no rule matched; bridge = "auto" at test.toml)`,
		},
		{
			name:       "bridge missing",
			policy:     `bridge = "br9"`,
			links:      []*rtnl.Link{unitTAP(), br0},
			tap:        "vnet0",
			wantRule:   `no rule matched; bridge = "br9" at test.toml:1`,
			wantBridge: "br9", wantReason: "named by the policy",
			wantKind: KindNoBridge,
			wantErr:  `explain vnet0: bridge "br9" does not exist (no rule matched; bridge = "br9" at test.toml:1)`,
		},
		{
			name:       "bridge is not a bridge",
			policy:     `bridge = "eth0"`,
			links:      []*rtnl.Link{unitTAP(), eth0},
			tap:        "vnet0",
			wantRule:   `no rule matched; bridge = "eth0" at test.toml:1`,
			wantBridge: "eth0", wantReason: "named by the policy",
			wantKind: KindNoBridge,
			wantErr:  `explain vnet0: "eth0" is a physical device, not a bridge (no rule matched; bridge = "eth0" at test.toml:1)`,
		},
		{
			name:     "no bridge chosen",
			policy:   `bridge = ""`,
			links:    []*rtnl.Link{unitTAP(), br0},
			tap:      "vnet0",
			wantRule: `no rule matched; bridge = "" at test.toml:1`,
			wantKind: KindNoBridge,
			wantErr:  `explain vnet0: no bridge chosen: no rule matches and the policy sets bridge = "" (no rule matched; bridge = "" at test.toml:1)`,
		},
		{
			name:     "a rule matched but names no bridge, and there is no default",
			policy:   "bridge = \"\"\n[[rule]]\ntap = \"vnet*\"\nmtu = 9000\n",
			links:    []*rtnl.Link{unitTAP(), br0},
			tap:      "vnet0",
			wantRule: `rule 1 (tap = "vnet*") at test.toml:2`,
			wantKind: KindNoBridge,
			wantErr:  `explain vnet0: no bridge chosen: rule 1 (tap = "vnet*") names none and the policy sets bridge = "" (rule 1 (tap = "vnet*") at test.toml:2)`,
			bug:      `hook.go chooseBridge says "no rule matches" when a rule matched but set no bridge (and bridge = ""), so the message contradicts its own "(rule 1 ...)" annotation`,
		},
		{
			name:     "TAP missing",
			policy:   `bridge = "br0"`,
			links:    []*rtnl.Link{br0},
			tap:      "vnet0",
			wantRule: `no rule matched; bridge = "br0" at test.toml:1`,
			wantKind: KindBadTAP,
			wantErr:  "explain vnet0: no such device",
		},
		{
			name:     "not a TAP",
			policy:   `bridge = "br0"`,
			links:    []*rtnl.Link{eth0, br0},
			tap:      "eth0",
			wantRule: `no rule matched; bridge = "br0" at test.toml:1`,
			wantKind: KindBadTAP,
			wantErr:  `explain eth0: "eth0" is a physical device, not a TAP; refusing to touch it`,
		},
		{
			name:     "bad name",
			policy:   `bridge = "br0"`,
			links:    []*rtnl.Link{br0},
			tap:      "vnet0:1",
			wantKind: KindBadTAP,
			wantErr:  `explain "vnet0:1": interface name contains ':'`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = tt.bug // fixed; says what the case once caught
			links := newMemLinks(tt.links...)
			if tt.routes != nil {
				links.routes = tt.routes
			}
			h, _ := unitHook(t, links, tt.policy)
			h.State = nil // explain needs none
			plan, err := h.Explain(tt.tap)
			if links.setCalls != 0 {
				t.Errorf("Explain changed links: %q", links.calls)
			}
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Explain succeeded, want %q", tt.wantErr)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("error = %q\n want %q", err, tt.wantErr)
				}
				if KindOf(err) != tt.wantKind {
					t.Errorf("KindOf = %d, want %d", KindOf(err), tt.wantKind)
				}
			} else if err != nil {
				t.Fatalf("Explain: %v", err)
			}
			if plan == nil {
				if tt.wantRule != "" {
					t.Fatalf("no plan, want one with rule %q", tt.wantRule)
				}
				return
			}
			if plan.Op != "up" || plan.TAP != tt.tap || plan.Policy != "test.toml" {
				t.Errorf("plan = %s %s from %s", plan.Op, plan.TAP, plan.Policy)
			}
			if plan.Rule != tt.wantRule || plan.Bridge != tt.wantBridge || plan.Reason != tt.wantReason {
				t.Errorf("plan rule %q, bridge %q, reason %q\n want rule %q, bridge %q, reason %q",
					plan.Rule, plan.Bridge, plan.Reason, tt.wantRule, tt.wantBridge, tt.wantReason)
			}
			if diff := cmp.Diff(tt.wantSteps, plan.StepStrings(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHookUpDownCycle(t *testing.T) {
	links := newMemLinks(unitTAP(), unitBridge("br0", 3, 9000))
	initial := links.link(10)
	h, stderr := unitHook(t, links, `bridge = "br0"`)

	plan, err := h.Up("vnet0")
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if len(plan.Steps) != 4 {
		t.Errorf("Up steps = %q, want 4", plan.StepStrings())
	}
	attached := initial
	attached.MAC, attached.MTU, attached.Master, attached.Up = mustMAC(derivedMAC("vnet0")), 9000, 3, true
	if diff := cmp.Diff(attached, links.link(10)); diff != "" {
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
	calls := len(links.calls)
	h.Now = func() time.Time { return unitNow.Add(time.Hour) }
	plan, err = h.Up("vnet0")
	if err != nil || len(plan.Steps) != 0 {
		t.Errorf("second Up = %q, %v; want nothing to do", plan.StepStrings(), err)
	}
	if len(links.calls) != calls {
		t.Errorf("second Up sent %q", links.calls[calls:])
	}
	if rec, _ := h.State.Read("vnet0"); !cmp.Equal(wantRec, rec) {
		t.Errorf("second Up changed the record to %+v", rec)
	}

	// Down restores the TAP as QEMU made it and removes the record.
	plan, err = h.Down("vnet0")
	if err != nil {
		t.Fatalf("Down: %v", err)
	}
	wantDown := []string{
		"ip link set dev vnet0 nomaster",
		"ip link set dev vnet0 down",
		"ip link set dev vnet0 address " + kernelMAC,
		"ip link set dev vnet0 mtu 1500",
	}
	if diff := cmp.Diff(wantDown, plan.StepStrings()); diff != "" {
		t.Errorf("Down steps (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(initial, links.link(10)); diff != "" {
		t.Errorf("TAP after Down (-initial +got):\n%s", diff)
	}
	if rec, err := h.State.Read("vnet0"); rec != nil || err != nil {
		t.Errorf("record after Down = %+v, %v; want none", rec, err)
	}

	// Down again: nothing to do, success.
	calls = len(links.calls)
	plan, err = h.Down("vnet0")
	if err != nil || len(plan.Steps) != 0 || len(links.calls) != calls {
		t.Errorf("second Down = %q, %v, sent %q; want nothing", plan.StepStrings(), err, links.calls[calls:])
	}
	if want := []string{"no record: detach and set down only", "not attached"}; !cmp.Equal(want, plan.Notes) {
		t.Errorf("second Down notes = %q, want %q", plan.Notes, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("quiet run wrote to stderr: %q", stderr)
	}
}

func TestHookUpMovesAndNotices(t *testing.T) {
	links := newMemLinks(unitTAP(func(l *rtnl.Link) { l.Master, l.Up = 4, true }), unitBridge("br0", 3, 1500), unitBridge("br1", 4, 1500))
	h, stderr := unitHook(t, links, "bridge = \"br0\"\ntap_mac = \"keep\"\n")
	plan, err := h.Up("vnet0")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ip link set dev vnet0 master br0"}; !cmp.Equal(want, plan.StepStrings()) {
		t.Errorf("steps = %q, want %q", plan.StepStrings(), want)
	}
	if got, want := stderr.String(), "ifhook: up vnet0: moved from br1 to br0\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
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
		op       func(h *Hook, tap string) (*Plan, error)
		wantKind Kind
		wantErr  string // prefix
	}{
		{"up: colon", "a:b", false, (*Hook).Up, KindBadTAP, `up "a:b": interface name contains ':'`},
		{"up: 16 bytes", "abcdefghijklmnop", false, (*Hook).Up, KindBadTAP, `up "abcdefghijklmnop": interface name is 16 bytes, longer than 15`},
		{"up: empty", "", false, (*Hook).Up, KindBadTAP, "up: empty interface name"},
		{"down: newline", "vnet0\n", false, (*Hook).Down, KindBadTAP, `down "vnet0\n": interface name contains whitespace`},
		{"up: no CAP_NET_ADMIN", "vnet0", true, (*Hook).Up, KindPermission, "up vnet0: needs CAP_NET_ADMIN to attach a TAP, and runs as uid "},
		{"up: bad name wins over no CAP_NET_ADMIN", "a/b", true, (*Hook).Up, KindBadTAP, `up "a/b": interface name contains '/'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			links := newMemLinks(unitTAP(), unitBridge("br0", 3, 1500))
			h, _ := unitHook(t, links, `bridge = "br0"`)
			if tt.noAdmin {
				h.HasNetAdmin = func() bool { return false }
			}
			_, err := tt.op(h, tt.tap)
			if err == nil {
				t.Fatal("succeeded")
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error = %q, want one line starting %q", err, tt.wantErr)
			}
			if KindOf(err) != tt.wantKind {
				t.Errorf("KindOf = %d, want %d", KindOf(err), tt.wantKind)
			}
			if links.lookups != 0 || links.setCalls != 0 {
				t.Errorf("looked at the kernel %d times and changed it %d times before refusing", links.lookups, links.setCalls)
			}
			if _, err := os.Stat(filepath.Join(h.State.Path, "lock")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the lock file was created before refusing (stat: %v)", err)
			}
		})
	}
}

func TestHookDownWithoutCapability(t *testing.T) {
	links := newMemLinks(unitTAP(func(l *rtnl.Link) { l.Master, l.Up = 3, true }), unitBridge("br0", 3, 1500))
	h, _ := unitHook(t, links, `bridge = "br0"`)
	if err := h.State.Write(&state.Record{TAP: "vnet0", Index: 10, Bridge: "br0"}); err != nil {
		t.Fatal(err)
	}
	h.HasNetAdmin = func() bool { return false }
	plan, err := h.Down("vnet0")
	if err != nil {
		t.Fatalf("Down without CAP_NET_ADMIN = %v, want success", err)
	}
	if len(plan.Steps) != 0 || len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "no CAP_NET_ADMIN") {
		t.Errorf("plan = steps %q, notes %q", plan.StepStrings(), plan.Notes)
	}
	if links.lookups != 0 || links.setCalls != 0 {
		t.Errorf("Down without CAP_NET_ADMIN used the kernel (%d lookups, %d changes)", links.lookups, links.setCalls)
	}
	if rec, _ := h.State.Read("vnet0"); rec == nil {
		t.Error("the record was removed; gc should get it")
	}
}

func TestHookUpRollsBack(t *testing.T) {
	links := newMemLinks(unitTAP(), unitBridge("br0", 3, 9000))
	before := links.link(10)
	links.fail = failOn("master", 10, unix.EBUSY, enslavingTo(3))
	h, _ := unitHook(t, links, `bridge = "br0"`)
	_, err := h.Up("vnet0")
	want := "up vnet0: ip link set dev vnet0 address " + derivedMAC("vnet0") + ` mtu 9000 master br0 up: device or resource busy (no rule matched; bridge = "br0" at test.toml:1)`
	if err == nil || err.Error() != want {
		t.Fatalf("Up = %v\n want %s", err, want)
	}
	if Exit(err) != 71 || !errors.Is(err, unix.EBUSY) {
		t.Errorf("Exit = %d, errors.Is(EBUSY) = %v; want 71, true", Exit(err), errors.Is(err, unix.EBUSY))
	}
	if diff := cmp.Diff(before, links.link(10)); diff != "" {
		t.Errorf("TAP after failed Up (-before +after):\n%s", diff)
	}
	if rec, _ := h.State.Read("vnet0"); rec != nil {
		t.Errorf("failed Up left a record: %+v", rec)
	}
}

func TestHookLockTimeout(t *testing.T) {
	links := newMemLinks(unitTAP(), unitBridge("br0", 3, 1500))
	h, _ := unitHook(t, links, `bridge = "br0"`)
	held, err := h.State.Lock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	h.LockTimeout = 100 * time.Millisecond
	for _, op := range []func(string) (*Plan, error){h.Up, h.Down} {
		_, err := op("vnet0")
		if !errors.Is(err, state.ErrLockTimeout) || KindOf(err) != KindLock || Exit(err) != 75 {
			t.Errorf("with the lock held: %v (kind %d, exit %d); want ErrLockTimeout, 75", err, KindOf(err), Exit(err))
		}
		if err != nil && !strings.HasSuffix(err.Error(), "timed out waiting for the lock after 100ms (another ifhook is still working: see 'ifhook list')") {
			t.Errorf("message = %q", err)
		}
	}
	if links.setCalls != 0 {
		t.Errorf("changed links without the lock: %q", links.calls)
	}
	if _, err := h.GC(); KindOf(err) != KindLock {
		t.Errorf("GC with the lock held = %v, want a lock timeout", err)
	}
}

func TestHookWithoutStateDir(t *testing.T) {
	links := newMemLinks(unitTAP(), unitBridge("br0", 3, 1500))
	h, _ := unitHook(t, links, `bridge = "br0"`)
	h.State = nil
	_, err := h.Up("vnet0")
	if KindOf(err) != KindState || Exit(err) != 73 || err.Error() != "up vnet0: no state directory" {
		t.Errorf("Up without a state dir = %v (exit %d), want \"up vnet0: no state directory\", 73", err, Exit(err))
	}
}

func TestHookDownCases(t *testing.T) {
	t.Run("TAP gone: success, record removed", func(t *testing.T) {
		links := newMemLinks(unitBridge("br0", 3, 1500))
		h, _ := unitHook(t, links, `bridge = "br0"`)
		if err := h.State.Write(&state.Record{TAP: "vnet0", Index: 10}); err != nil {
			t.Fatal(err)
		}
		plan, err := h.Down("vnet0")
		if err != nil || !cmp.Equal([]string{"already gone"}, plan.Notes) {
			t.Errorf("Down = notes %q, %v; want \"already gone\", nil", plan.Notes, err)
		}
		if rec, _ := h.State.Read("vnet0"); rec != nil {
			t.Errorf("record kept: %+v", rec)
		}
	})
	t.Run("not a TAP", func(t *testing.T) {
		links := newMemLinks(&rtnl.Link{Name: "eth0", Index: 2, Master: 3, Up: true}, unitBridge("br0", 3, 1500))
		h, _ := unitHook(t, links, `bridge = "br0"`)
		_, err := h.Down("eth0")
		if err == nil || err.Error() != `down eth0: "eth0" is a physical device, not a TAP; refusing to touch it` || Exit(err) != 65 {
			t.Errorf("Down(eth0) = %v (exit %d)", err, Exit(err))
		}
		if links.setCalls != 0 {
			t.Errorf("changed links: %q", links.calls)
		}
	})
	t.Run("record of an earlier device of that name is ignored and removed", func(t *testing.T) {
		links := newMemLinks(unitTAP(func(l *rtnl.Link) { l.Master, l.Up, l.MAC = 3, true, mustMAC(hostMAC) }), unitBridge("br0", 3, 1500))
		h, _ := unitHook(t, links, `bridge = "br0"`)
		old := &state.Record{TAP: "vnet0", Index: 9, Prev: state.Snapshot{MAC: kernelMAC, MTU: 1400}, Set: state.Snapshot{MAC: hostMAC, MTU: 1500}}
		if err := h.State.Write(old); err != nil {
			t.Fatal(err)
		}
		plan, err := h.Down("vnet0")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"ip link set dev vnet0 nomaster", "ip link set dev vnet0 down"}; !cmp.Equal(want, plan.StepStrings()) {
			t.Errorf("steps = %q, want %q (no restore from another device's record)", plan.StepStrings(), want)
		}
		if rec, _ := h.State.Read("vnet0"); rec != nil {
			t.Errorf("stale record kept: %+v", rec)
		}
	})
	t.Run("lookup failure", func(t *testing.T) {
		links := newMemLinks(unitTAP())
		links.lookupErr = unix.EIO
		h, _ := unitHook(t, links, `bridge = "br0"`)
		_, err := h.Down("vnet0")
		if err == nil || err.Error() != "down vnet0: look up vnet0: input/output error" || Exit(err) != 71 {
			t.Errorf("Down = %v (exit %d)", err, Exit(err))
		}
	})
}

func TestHookGCAndSweep(t *testing.T) {
	setup := func(t *testing.T) (*Hook, *memLinks) {
		links := newMemLinks(unitTAP(), unitBridge("br0", 3, 1500))
		h, _ := unitHook(t, links, "bridge = \"br0\"\ntap_mac = \"keep\"\n")
		for _, r := range []*state.Record{
			{TAP: "vnet0", Index: 10, Bridge: "br0"}, // present
			{TAP: "vnet7", Index: 17, Bridge: "br0"}, // gone
			{TAP: "vnet8", Index: 18, Bridge: "br0"}, // gone
		} {
			if err := h.State.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		return h, links
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
		h, _ := setup(t)
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
		h, _ := setup(t)
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
		h, _ := setup(t)
		h.SweepEvery = time.Minute
		h.Now = func() time.Time { return time.Now().Add(time.Hour) }
		if _, err := h.Up("vnet0"); err != nil {
			t.Fatal(err)
		}
		if want := []string{"vnet0"}; !cmp.Equal(want, records(h)) {
			t.Errorf("records after a due sweep = %q, want %q", records(h), want)
		}
	})
	t.Run("up does not sweep before it is due", func(t *testing.T) {
		h, _ := setup(t)
		h.SweepEvery = time.Hour
		h.Now = time.Now
		if _, err := h.Up("vnet0"); err != nil {
			t.Fatal(err)
		}
		if want := []string{"vnet0", "vnet7", "vnet8"}; !cmp.Equal(want, records(h)) {
			t.Errorf("records after Up = %q, want all kept: %q", records(h), want)
		}
	})
}

package ifhook

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"golang.org/x/sys/unix"
)

// memLinks is an in-memory link table standing in for the kernel. SetLink
// applies a change's attributes in the kernel's order (address, mtu,
// master, flags) and, like the kernel, keeps those applied before one
// fails. Every call is recorded.
type memLinks struct {
	links  map[int]*rtnl.Link
	routes map[int][]int // family -> links holding a default route
	// fail, when set, is asked before each attribute is applied
	// ("address", "mtu", "master", "flags"); an error stops the change there.
	fail func(attr string, index int, ch rtnl.Change) error
	// lookupErr, when set, is returned by LinkByName and LinkByIndex.
	lookupErr error

	calls    []string // SetLink calls, rendered by describeChange
	lookups  int      // every other call
	setCalls int
}

func newMemLinks(links ...*rtnl.Link) *memLinks {
	m := &memLinks{links: map[int]*rtnl.Link{}, routes: map[int][]int{}}
	for _, l := range links {
		cp := *l
		cp.MAC = append(net.HardwareAddr(nil), l.MAC...)
		m.links[l.Index] = &cp
	}
	return m
}

func (m *memLinks) copyOf(l *rtnl.Link) *rtnl.Link {
	cp := *l
	cp.MAC = append(net.HardwareAddr(nil), l.MAC...)
	return &cp
}

func (m *memLinks) LinkByName(name string) (*rtnl.Link, error) {
	m.lookups++
	if m.lookupErr != nil {
		return nil, m.lookupErr
	}
	for _, l := range m.links {
		if l.Name == name {
			return m.copyOf(l), nil
		}
	}
	return nil, fmt.Errorf("link %s: %w", name, rtnl.ErrNotFound)
}

func (m *memLinks) LinkByIndex(index int) (*rtnl.Link, error) {
	m.lookups++
	if m.lookupErr != nil {
		return nil, m.lookupErr
	}
	if l, ok := m.links[index]; ok {
		return m.copyOf(l), nil
	}
	return nil, fmt.Errorf("link index %d: %w", index, rtnl.ErrNotFound)
}

func (m *memLinks) Bridges() ([]*rtnl.Link, error) {
	m.lookups++
	var out []*rtnl.Link
	for _, l := range m.links {
		if l.IsBridge() {
			out = append(out, m.copyOf(l))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

func (m *memLinks) DefaultRouteLinks(family int) ([]int, error) {
	m.lookups++
	return m.routes[family], nil
}

func (m *memLinks) SetLink(index int, ch rtnl.Change) error {
	m.setCalls++
	m.calls = append(m.calls, fmt.Sprintf("SetLink(%d, %s)", index, describeChange(ch)))
	l, ok := m.links[index]
	if !ok {
		return fmt.Errorf("index %d: %w", index, rtnl.ErrNotFound)
	}
	check := func(attr string) error {
		if m.fail == nil {
			return nil
		}
		return m.fail(attr, index, ch)
	}
	if ch.MAC != nil {
		if err := check("address"); err != nil {
			return err
		}
		l.MAC = append(net.HardwareAddr(nil), ch.MAC...)
	}
	if ch.MTU != 0 {
		if err := check("mtu"); err != nil {
			return err
		}
		l.MTU = ch.MTU
	}
	if ch.Master != nil {
		if err := check("master"); err != nil {
			return err
		}
		if *ch.Master != 0 {
			if br, ok := m.links[*ch.Master]; !ok || !br.IsBridge() {
				return unix.EINVAL
			}
		}
		l.Master = *ch.Master
	}
	if ch.Up != nil {
		if err := check("flags"); err != nil {
			return err
		}
		l.Up = *ch.Up
	}
	return nil
}

// link returns the current state of the link with the index.
func (m *memLinks) link(index int) rtnl.Link { return *m.copyOf(m.links[index]) }

func describeChange(ch rtnl.Change) string {
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

// failOn returns a memLinks.fail that fails attr on index with err, when
// want (if not nil) approves of the change.
func failOn(attr string, index int, err error, want func(rtnl.Change) bool) func(string, int, rtnl.Change) error {
	return func(a string, i int, ch rtnl.Change) error {
		if a == attr && i == index && (want == nil || want(ch)) {
			return err
		}
		return nil
	}
}

func enslavingTo(master int) func(rtnl.Change) bool {
	return func(ch rtnl.Change) bool { return ch.Master != nil && *ch.Master == master }
}

// noteStep is a Step that is not a link change.
type noteStep struct {
	name       string
	did, undid *[]string
	err        error
}

func (s noteStep) String() string { return "note " + s.name }
func (s noteStep) Do(Links) error {
	*s.did = append(*s.did, s.name)
	return s.err
}
func (s noteStep) Undo(Links) error {
	*s.undid = append(*s.undid, s.name)
	return nil
}

func TestBatches(t *testing.T) {
	var did, undid []string
	steps := []Step{
		&setAddress{dev: "vnet0", index: 10, to: mustMAC(hostMAC)},
		&setMTU{dev: "vnet0", index: 10, to: 1500},
		&setMaster{dev: "vnet0", index: 10, master: "br0", masterIndex: 3},
		&setUp{dev: "vnet1", index: 11, up: true},
		noteStep{name: "n", did: &did, undid: &undid},
		&setMTU{dev: "vnet0", index: 10, to: 9000},
		&setUp{dev: "vnet0", index: 10, up: true},
		noteStep{name: "m", did: &did, undid: &undid},
		noteStep{name: "o", did: &did, undid: &undid},
	}
	var got [][]string
	for _, b := range batches(steps) {
		got = append(got, stepStrings(b))
	}
	want := [][]string{
		{"ip link set dev vnet0 address fe:54:00:aa:bb:cc", "ip link set dev vnet0 mtu 1500", "ip link set dev vnet0 master br0"},
		{"ip link set dev vnet1 up"},
		{"note n"},
		{"ip link set dev vnet0 mtu 9000", "ip link set dev vnet0 up"},
		{"note m"},
		{"note o"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
	if b := batches(nil); len(b) != 0 {
		t.Errorf("batches(nil) = %v", b)
	}
}

func TestDescribeBatch(t *testing.T) {
	up, _, err := PlanUp(Observed{TAPName: "vnet0", TAP: unitTAP(), BridgeName: "br0", Bridge: unitBridge("br0", 3, 1500)}, Want{MTU: 1500, MAC: mustMAC(hostMAC)})
	if err != nil {
		t.Fatal(err)
	}
	// MTU 1500 equals the TAP's, so there is no MTU step; force one.
	up = append(up[:1], append([]Step{&setMTU{dev: "vnet0", index: 10, to: 1500, from: 1400}}, up[1:]...)...)
	down := PlanDown(unitTAP(func(l *rtnl.Link) { l.Master, l.Up, l.MTU, l.MAC = 3, true, 9000, mustMAC(hostMAC) }),
		mustMAC(kernelMAC), mustMAC(hostMAC), 1500, 9000)
	tests := []struct {
		name  string
		steps []Step
		want  string
	}{
		{"up", up, "ip link set dev vnet0 address fe:54:00:aa:bb:cc mtu 1500 master br0 up"},
		{"down", down, "ip link set dev vnet0 nomaster down address 52:54:00:12:34:56 mtu 1500"},
		{"one step", up[3:], "ip link set dev vnet0 up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs := batches(tt.steps)
			if len(bs) != 1 {
				t.Fatalf("%d batches, want 1", len(bs))
			}
			if got := describeBatch(bs[0]); got != tt.want {
				t.Errorf("describeBatch = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestApplyAllOneMessage: a plan's link steps go to the kernel as one
// RTM_NEWLINK, and each is logged.
func TestApplyAllOneMessage(t *testing.T) {
	links := newMemLinks(unitTAP(), unitBridge("br0", 3, 9000))
	steps, _, err := PlanUp(Observed{TAPName: "vnet0", TAP: unitTAP(), BridgeName: "br0", Bridge: unitBridge("br0", 3, 9000)}, Want{MAC: mustMAC(hostMAC)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := applyAll(links, steps, &Log{Stderr: &buf, Verbose: true}, "up vnet0"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"SetLink(10, address fe:54:00:aa:bb:cc mtu 9000 master 3 up)"}; !cmp.Equal(want, links.calls) {
		t.Errorf("calls = %q, want %q", links.calls, want)
	}
	wantLog := `ifhook: up vnet0: ip link set dev vnet0 address fe:54:00:aa:bb:cc
ifhook: up vnet0: ip link set dev vnet0 mtu 9000
ifhook: up vnet0: ip link set dev vnet0 master br0
ifhook: up vnet0: ip link set dev vnet0 up
`
	if diff := cmp.Diff(wantLog, buf.String()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	if err := applyAll(links, nil, nil, "up vnet0"); err != nil || len(links.calls) != 1 {
		t.Errorf("applyAll(no steps) = %v, calls %q", err, links.calls)
	}
}

func TestApplyAllRollback(t *testing.T) {
	br0, br1 := unitBridge("br0", 3, 9000), unitBridge("br1", 4, 1500)
	errNotFound := fmt.Errorf("index 10: %w", rtnl.ErrNotFound)
	tests := []struct {
		name      string
		tap       *rtnl.Link
		old       *rtnl.Link // the TAP's master before, if any
		failErr   error
		wantCalls []string
		wantErr   string
		wantKind  Kind
		wantExit  int
	}{
		{
			name:    "enslaving fails after MAC and MTU were applied",
			tap:     unitTAP(),
			failErr: unix.EBUSY,
			wantCalls: []string{
				"SetLink(10, address fe:54:00:aa:bb:cc mtu 9000 master 3 up)",
				"SetLink(10, address 52:54:00:12:34:56 mtu 1500 nomaster down)",
			},
			wantErr:  "ip link set dev vnet0 address fe:54:00:aa:bb:cc mtu 9000 master br0 up: device or resource busy",
			wantKind: KindSystem, wantExit: 71,
		},
		{
			name:    "permission denied keeps its kind",
			tap:     unitTAP(),
			failErr: unix.EPERM,
			wantCalls: []string{
				"SetLink(10, address fe:54:00:aa:bb:cc mtu 9000 master 3 up)",
				"SetLink(10, address 52:54:00:12:34:56 mtu 1500 nomaster down)",
			},
			wantErr:  "ip link set dev vnet0 address fe:54:00:aa:bb:cc mtu 9000 master br0 up: operation not permitted (needs CAP_NET_ADMIN)",
			wantKind: KindPermission, wantExit: 77,
		},
		{
			name:    "device gone",
			tap:     unitTAP(),
			failErr: errNotFound,
			wantCalls: []string{
				"SetLink(10, address fe:54:00:aa:bb:cc mtu 9000 master 3 up)",
				"SetLink(10, address 52:54:00:12:34:56 mtu 1500 nomaster down)",
			},
			wantErr:  "ip link set dev vnet0 address fe:54:00:aa:bb:cc mtu 9000 master br0 up: index 10: no such device",
			wantKind: KindSystem, wantExit: 71,
		},
		{
			name:    "moving from another bridge: rollback returns it there",
			tap:     unitTAP(func(l *rtnl.Link) { l.Master, l.Up = 4, true }),
			old:     br1,
			failErr: unix.EBUSY,
			wantCalls: []string{
				"SetLink(10, address fe:54:00:aa:bb:cc mtu 9000 master 3)",
				"SetLink(10, address 52:54:00:12:34:56 mtu 1500 master 4)",
			},
			wantErr:  "ip link set dev vnet0 address fe:54:00:aa:bb:cc mtu 9000 master br0: device or resource busy",
			wantKind: KindSystem, wantExit: 71,
		},
		{
			name:    "a lone master step",
			tap:     unitTAP(func(l *rtnl.Link) { l.Up, l.MTU, l.MAC = true, 9000, mustMAC(hostMAC) }),
			failErr: unix.EBUSY,
			wantCalls: []string{
				"SetLink(10, master 3)",
				"SetLink(10, nomaster)",
			},
			wantErr:  "ip link set dev vnet0 master br0: device or resource busy",
			wantKind: KindSystem, wantExit: 71,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			links := newMemLinks(tt.tap, br0, br1)
			before := links.link(10)
			steps, _, err := PlanUp(Observed{TAPName: "vnet0", TAP: tt.tap, BridgeName: "br0", Bridge: br0, OldMaster: tt.old}, Want{MAC: mustMAC(hostMAC)})
			if err != nil {
				t.Fatal(err)
			}
			links.fail = failOn("master", 10, tt.failErr, enslavingTo(3))
			var buf bytes.Buffer
			err = applyAll(links, steps, &Log{Stderr: &buf, Verbose: true}, "up vnet0")
			if err == nil {
				t.Fatal("applyAll succeeded")
			}
			if diff := cmp.Diff(tt.wantCalls, links.calls); diff != "" {
				t.Errorf("SetLink calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, links.link(10)); diff != "" {
				t.Errorf("TAP after rollback (-before +after):\n%s", diff)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error = %q, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, tt.failErr) {
				t.Errorf("errors.Is(%q, %v) = false", err, tt.failErr)
			}
			if got := KindOf(err); got != tt.wantKind {
				t.Errorf("KindOf = %d, want %d", got, tt.wantKind)
			}
			if got := Exit(err); got != tt.wantExit {
				t.Errorf("Exit = %d, want %d", got, tt.wantExit)
			}
			if want := "ifhook: up vnet0: rolled back after failure: " + tt.wantErr + "\n"; buf.String() != want {
				t.Errorf("log = %q, want %q", buf.String(), want)
			}
		})
	}
}

// TestApplyAllRollbackAcrossLinks: batches already applied are undone in
// reverse order, the failed (maybe partly applied) one first.
func TestApplyAllRollbackAcrossLinks(t *testing.T) {
	vnet1 := unitTAP(func(l *rtnl.Link) { l.Name, l.Index = "vnet1", 11 })
	steps := []Step{
		&setMTU{dev: "vnet0", index: 10, to: 9000, from: 1500},
		&setMaster{dev: "vnet0", index: 10, master: "br0", masterIndex: 3},
		&setMTU{dev: "vnet1", index: 11, to: 9000, from: 1500},
		&setUp{dev: "vnet1", index: 11, up: true},
	}
	t.Run("rollback succeeds", func(t *testing.T) {
		links := newMemLinks(unitTAP(), vnet1, unitBridge("br0", 3, 9000))
		before0, before1 := links.link(10), links.link(11)
		links.fail = failOn("flags", 11, unix.ENOBUFS, func(ch rtnl.Change) bool { return *ch.Up })
		err := applyAll(links, steps, nil, "up")
		want := []string{
			"SetLink(10, mtu 9000 master 3)",
			"SetLink(11, mtu 9000 up)",
			"SetLink(11, mtu 1500 down)",
			"SetLink(10, mtu 1500 nomaster)",
		}
		if diff := cmp.Diff(want, links.calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(before0, links.link(10)); diff != "" {
			t.Errorf("vnet0 (-before +after):\n%s", diff)
		}
		if diff := cmp.Diff(before1, links.link(11)); diff != "" {
			t.Errorf("vnet1 (-before +after):\n%s", diff)
		}
		if got, want := fmt.Sprint(err), "ip link set dev vnet1 mtu 9000 up: no buffer space available"; got != want {
			t.Errorf("error = %q, want %q", got, want)
		}
	})
	t.Run("rollback fails too", func(t *testing.T) {
		links := newMemLinks(unitTAP(), vnet1, unitBridge("br0", 3, 9000))
		before0 := links.link(10)
		links.fail = func(attr string, index int, ch rtnl.Change) error {
			if index == 11 {
				return unix.EPERM
			}
			return nil
		}
		var buf bytes.Buffer
		err := applyAll(links, steps, &Log{Stderr: &buf}, "up")
		want := "ip link set dev vnet1 mtu 9000 up: operation not permitted (needs CAP_NET_ADMIN) (rollback incomplete: undo ip link set dev vnet1 mtu 9000 up: operation not permitted (needs CAP_NET_ADMIN))"
		if got := fmt.Sprint(err); got != want {
			t.Errorf("error = %q\n want %q", got, want)
		}
		if KindOf(err) != KindPermission || Exit(err) != 77 {
			t.Errorf("KindOf = %d, Exit = %d; want the failure's kind (permission, 77)", KindOf(err), Exit(err))
		}
		if !errors.Is(err, unix.EPERM) {
			t.Error("the error no longer wraps EPERM")
		}
		// The rest was still rolled back.
		if diff := cmp.Diff(before0, links.link(10)); diff != "" {
			t.Errorf("vnet0 (-before +after):\n%s", diff)
		}
		if len(links.calls) != 4 {
			t.Errorf("calls = %q, want 4", links.calls)
		}
	})
	t.Run("non-link steps are undone too", func(t *testing.T) {
		var did, undid []string
		steps := []Step{
			noteStep{name: "a", did: &did, undid: &undid},
			&setMTU{dev: "vnet0", index: 10, to: 9000, from: 1500},
			noteStep{name: "b", did: &did, undid: &undid, err: unix.EIO},
		}
		links := newMemLinks(unitTAP())
		err := applyAll(links, steps, nil, "up")
		if !errors.Is(err, unix.EIO) {
			t.Fatalf("applyAll = %v, want EIO", err)
		}
		if !cmp.Equal([]string{"a", "b"}, did) || !cmp.Equal([]string{"b", "a"}, undid) {
			t.Errorf("did %q, undid %q; want [a b], [b a]", did, undid)
		}
		if want := []string{"SetLink(10, mtu 9000)", "SetLink(10, mtu 1500)"}; !cmp.Equal(want, links.calls) {
			t.Errorf("calls = %q, want %q", links.calls, want)
		}
	})
}

func TestApplyBestEffort(t *testing.T) {
	attached := func(l *rtnl.Link) { l.Master, l.Up, l.MTU, l.MAC = 3, true, 9000, mustMAC(hostMAC) }
	detachSteps := func() []Step {
		return PlanDown(unitTAP(attached), mustMAC(kernelMAC), mustMAC(hostMAC), 1500, 9000)
	}
	tests := []struct {
		name      string
		fail      func(string, int, rtnl.Change) error
		steps     func() []Step
		wantCalls []string
		wantErr   string
		wantKind  Kind
		wantAfter rtnl.Link
	}{
		{
			name:      "all at once",
			steps:     detachSteps,
			wantCalls: []string{"SetLink(10, address 52:54:00:12:34:56 mtu 1500 nomaster down)"},
			wantAfter: *unitTAP(),
		},
		{
			name:  "one failure: the others still happen, one by one",
			fail:  failOn("master", 10, unix.EBUSY, enslavingTo(0)),
			steps: detachSteps,
			wantCalls: []string{
				"SetLink(10, address 52:54:00:12:34:56 mtu 1500 nomaster down)",
				"SetLink(10, nomaster)",
				"SetLink(10, down)",
				"SetLink(10, address 52:54:00:12:34:56)",
				"SetLink(10, mtu 1500)",
			},
			wantErr:   "ip link set dev vnet0 nomaster: device or resource busy",
			wantKind:  KindSystem,
			wantAfter: *unitTAP(func(l *rtnl.Link) { l.Master = 3 }),
		},
		{
			name: "two failures: joined on one line, the first's kind",
			fail: func(attr string, index int, ch rtnl.Change) error {
				switch {
				case attr == "master":
					return unix.EBUSY
				case attr == "flags":
					return unix.EPERM
				}
				return nil
			},
			steps: detachSteps,
			wantCalls: []string{
				"SetLink(10, address 52:54:00:12:34:56 mtu 1500 nomaster down)",
				"SetLink(10, nomaster)",
				"SetLink(10, down)",
				"SetLink(10, address 52:54:00:12:34:56)",
				"SetLink(10, mtu 1500)",
			},
			wantErr:   "ip link set dev vnet0 nomaster: device or resource busy; ip link set dev vnet0 down: operation not permitted (needs CAP_NET_ADMIN)",
			wantKind:  KindSystem,
			wantAfter: *unitTAP(func(l *rtnl.Link) { l.Master, l.Up = 3, true }),
		},
		{
			name: "a failed batch does not stop the next",
			fail: failOn("flags", 11, unix.ENODEV, nil),
			steps: func() []Step {
				return []Step{
					&setUp{dev: "vnet1", index: 11, up: false, from: true},
					&setMaster{dev: "vnet0", index: 10, fromIndex: 3},
					&setUp{dev: "vnet0", index: 10, up: false, from: true},
				}
			},
			wantCalls: []string{
				"SetLink(11, down)",
				"SetLink(10, nomaster down)",
			},
			wantErr:   "ip link set dev vnet1 down: no such device",
			wantKind:  KindSystem,
			wantAfter: *unitTAP(attached, func(l *rtnl.Link) { l.Master, l.Up = 0, false }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vnet1 := unitTAP(func(l *rtnl.Link) { l.Name, l.Index, l.Up = "vnet1", 11, true })
			links := newMemLinks(unitTAP(attached), vnet1, unitBridge("br0", 3, 9000))
			links.fail = tt.fail
			err := applyBestEffort(links, tt.steps(), nil, "down vnet0")
			if diff := cmp.Diff(tt.wantCalls, links.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantAfter, links.link(10), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("TAP after (-want +got):\n%s", diff)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("applyBestEffort: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("applyBestEffort succeeded, want %q", tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error = %q\n want %q", err, tt.wantErr)
			}
			if KindOf(err) != tt.wantKind {
				t.Errorf("KindOf = %d, want %d", KindOf(err), tt.wantKind)
			}
		})
	}
}

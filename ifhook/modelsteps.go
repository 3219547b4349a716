package ifhook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ifhook/ifhook/ifhook/nat"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

// linkRef names a link whose index may only be known once an earlier step
// has created it (a bridge made in the same plan as the TAP's attach).
type linkRef struct {
	name  string
	index int
}

// recorder is a step that changes a bridge's record once applied.
type recorder interface {
	record(r *state.BridgeRecord)
}

// createBridge makes a bridge (down) with its STP settings, MTU and MAC.
type createBridge struct {
	net     Net
	ref     *linkRef
	opts    rtnl.BridgeOptions
	created bool
}

func (s *createBridge) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ip link add name %s", s.ref.name)
	if s.opts.MAC != nil {
		fmt.Fprintf(&b, " address %s", s.opts.MAC)
	}
	if s.opts.MTU != 0 {
		fmt.Fprintf(&b, " mtu %d", s.opts.MTU)
	}
	stp := 0
	if s.opts.STP {
		stp = 1
	}
	fmt.Fprintf(&b, " type bridge stp_state %d forward_delay %d", stp, s.opts.ForwardDelay*100)
	return b.String()
}

func (s *createBridge) Do(Links) error {
	err := s.net.CreateBridge(s.ref.name, s.opts)
	switch {
	case errors.Is(err, unix.EEXIST):
		// Someone made it since we looked; use it if it is a bridge,
		// but it is not ours to delete.
	case err != nil:
		return sysErr(err, "%s", s)
	default:
		s.created = true
	}
	l, err := s.net.LinkByName(s.ref.name)
	if err != nil {
		return sysErr(err, "look up new bridge %s", s.ref.name)
	}
	if !l.IsBridge() {
		return errorf(KindNoBridge, "%s appeared meanwhile and is %s, not a bridge", s.ref.name, l.Describe())
	}
	s.ref.index = l.Index
	return nil
}

func (s *createBridge) Undo(Links) error {
	if !s.created {
		return nil
	}
	if err := s.net.DeleteLink(s.ref.index); err != nil && !errors.Is(err, rtnl.ErrNotFound) {
		return sysErr(err, "undo %s", s)
	}
	s.created = false
	return nil
}

func (s *createBridge) record(r *state.BridgeRecord) { r.Created = r.Created || s.created }

// deleteBridge removes a bridge ifhook made (teardown). Undo recreates it
// bare, which is all a best-effort teardown needs.
type deleteBridge struct {
	net Net
	ref *linkRef
}

func (s *deleteBridge) String() string { return "ip link del dev " + s.ref.name }
func (s *deleteBridge) Do(Links) error {
	if err := s.net.DeleteLink(s.ref.index); err != nil && !errors.Is(err, rtnl.ErrNotFound) {
		return sysErr(err, "%s", s)
	}
	return nil
}
func (s *deleteBridge) Undo(Links) error { return nil }

// addrStep adds (or, with del, removes) an address on a link.
type addrStep struct {
	net   Net
	ref   *linkRef
	addr  Addr
	del   bool
	done  bool // the change was made (not found already so)
	owned bool // for the record: the address is the bridge's own, not moved
}

func (s *addrStep) String() string {
	op := "add"
	if s.del {
		op = "del"
	}
	return fmt.Sprintf("ip addr %s %s dev %s", op, s.addr.Prefix, s.ref.name)
}

func (s *addrStep) apply(add bool) error {
	a := s.addr
	a.Index = s.ref.index
	if add {
		return s.net.AddAddr(a)
	}
	return s.net.DelAddr(a)
}

func (s *addrStep) Do(Links) error {
	err := s.apply(!s.del)
	switch {
	case !s.del && errors.Is(err, unix.EEXIST), s.del && errors.Is(err, unix.EADDRNOTAVAIL):
		return nil // already so
	case err != nil:
		return sysErr(err, "%s", s)
	}
	s.done = true
	return nil
}

func (s *addrStep) Undo(Links) error {
	if !s.done {
		return nil
	}
	if err := s.apply(s.del); err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return sysErr(err, "undo %s", s)
	}
	s.done = false
	return nil
}

func (s *addrStep) record(r *state.BridgeRecord) {
	if s.owned && s.done && !s.del {
		r.Addrs = appendNew(r.Addrs, s.addr.Prefix.String())
	}
}

// routeStep adds (or removes) a route through a link.
type routeStep struct {
	net   Net
	ref   *linkRef
	route Route
	del   bool
	done  bool
}

func (s *routeStep) String() string {
	op := "add"
	if s.del {
		op = "del"
	}
	fam := ""
	if s.route.IPv6 {
		fam = " -6"
	}
	return fmt.Sprintf("ip%s route %s %s dev %s", fam, op, s.route, s.ref.name)
}

func (s *routeStep) apply(add bool) error {
	r := s.route
	r.Index = s.ref.index
	if add {
		return s.net.AddRoute(r)
	}
	return s.net.DelRoute(r)
}

func (s *routeStep) Do(Links) error {
	err := s.apply(!s.del)
	switch {
	case !s.del && errors.Is(err, unix.EEXIST), s.del && errors.Is(err, unix.ESRCH):
		return nil
	case err != nil:
		return sysErr(err, "%s", s)
	}
	s.done = true
	return nil
}

func (s *routeStep) Undo(Links) error {
	if !s.done {
		return nil
	}
	if err := s.apply(s.del); err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ESRCH) {
		return sysErr(err, "undo %s", s)
	}
	s.done = false
	return nil
}

// sysctlStep sets a sysctl, remembering the value it found.
type sysctlStep struct {
	net   Net
	key   string
	value string
	old   string
	done  bool
}

func (s *sysctlStep) String() string { return fmt.Sprintf("sysctl -w %s=%s", s.key, s.value) }

func (s *sysctlStep) Do(Links) error {
	if err := s.net.SetSysctl(s.key, s.value); err != nil {
		return sysErr(err, "%s", s)
	}
	s.done = true
	return nil
}

func (s *sysctlStep) Undo(Links) error {
	if !s.done {
		return nil
	}
	if err := s.net.SetSysctl(s.key, s.old); err != nil {
		return sysErr(err, "undo %s", s)
	}
	s.done = false
	return nil
}

func (s *sysctlStep) record(r *state.BridgeRecord) {
	if !s.done {
		return
	}
	if r.Sysctls == nil {
		r.Sysctls = map[string]string{}
	}
	if _, ok := r.Sysctls[s.key]; !ok {
		r.Sysctls[s.key] = s.old
	}
}

// natStep adds a bridge's NAT rule, or with del removes it.
type natStep struct {
	net  Net
	rule nat.Rule
	del  bool
	done bool
}

func (s *natStep) String() string {
	if s.del {
		return fmt.Sprintf("nft delete rule inet %s %s (comment \"ifhook:%s\")", nat.TableName, nat.ChainName, s.rule.Bridge)
	}
	return s.rule.String()
}

func (s *natStep) table() (NATTable, error) {
	t, err := s.net.NAT()
	if err != nil {
		return nil, errorf(KindNoBridge, "NAT for %s needs nftables: %v", s.rule.Bridge, err)
	}
	return t, nil
}

func (s *natStep) Do(Links) error {
	t, err := s.table()
	if err != nil {
		return err
	}
	if s.del {
		s.done, err = t.Delete(s.rule.Bridge)
	} else {
		s.done, err = t.Ensure(s.rule)
	}
	if errors.Is(err, nat.ErrUnavailable) {
		return errorf(KindNoBridge, "NAT for %s needs nftables: %v", s.rule.Bridge, err)
	}
	if err != nil {
		return sysErr(err, "%s", s)
	}
	return nil
}

func (s *natStep) Undo(Links) error {
	if !s.done || s.del {
		return nil // a deleted rule is not put back by a best-effort teardown
	}
	t, err := s.table()
	if err != nil {
		return err
	}
	if _, err := t.Delete(s.rule.Bridge); err != nil {
		return sysErr(err, "undo %s", s)
	}
	s.done = false
	return nil
}

func (s *natStep) record(r *state.BridgeRecord) {
	if s.done && !s.del {
		r.NAT = true
	}
}

func appendNew(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

package plan

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/ifhook/ifhook/ifhook/kernel"
)

// lookup finds the link ref names in m, or nil: missing, or (with an
// index) another link of the same name now.
func lookup(m *kernel.Model, ref LinkRef) (*kernel.Link, error) {
	if ref.IsNone() {
		return nil, nil
	}
	l, err := m.LinkByName(ref.Name)
	if kernel.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if ref.Index != 0 && l.Index != ref.Index {
		return nil, nil
	}
	return l, nil
}

func (s *AddBridge) Reverse(m *kernel.Model) ([]Step, error) {
	l, err := lookup(m, LinkRef{Name: s.Name, Index: s.Index})
	if err != nil || l == nil || !l.IsBridge() {
		return nil, err
	}
	// Made before its index was recorded: ours if it has the MAC ifhook
	// gave it; a bridge someone made since has its own.
	if s.Index == 0 && (s.Opts.MAC == nil || string(l.MAC) != string(s.Opts.MAC)) {
		return nil, nil
	}
	return []Step{&DelLink{Link: Ref(l)}}, nil
}

func (s *SetLink) Reverse(m *kernel.Model) ([]Step, error) {
	l, err := lookup(m, s.Link)
	if err != nil || l == nil {
		return nil, err
	}
	var to, from Attrs
	if s.To.MAC != nil && s.From.MAC != nil && string(l.MAC) == string(s.To.MAC) && string(s.From.MAC) != string(s.To.MAC) {
		to.MAC, from.MAC = s.From.MAC, l.MAC
	}
	if s.To.MTU != 0 && s.From.MTU != 0 && l.MTU == s.To.MTU && s.From.MTU != s.To.MTU {
		to.MTU, from.MTU = s.From.MTU, l.MTU
	}
	if s.To.Master != nil && s.From.Master != nil {
		set := 0
		if !s.To.Master.IsNone() {
			ml, err := lookup(m, *s.To.Master)
			if err != nil {
				return nil, err
			}
			if ml != nil {
				set = ml.Index
			} else {
				set = -1 // the master it was given is gone: the link was freed with it
			}
		}
		if set >= 0 && l.Master == set {
			back := LinkRef{}
			if !s.From.Master.IsNone() {
				if old, err := lookup(m, *s.From.Master); err != nil {
					return nil, err
				} else if old != nil {
					back = Ref(old)
				}
			}
			if back.Index != l.Master {
				cur := LinkRef{}
				if l.Master != 0 {
					cur = LinkRef{Index: l.Master, Name: masterName(m, l.Master)}
				}
				to.Master, from.Master = &back, &cur
			}
		}
	}
	if s.To.Up != nil && s.From.Up != nil && l.Up == *s.To.Up && *s.From.Up != *s.To.Up {
		to.Up, from.Up = Flag(*s.From.Up), Flag(l.Up)
	}
	if to.IsZero() {
		return nil, nil
	}
	return []Step{&SetLink{Link: Ref(l), To: to, From: from}}, nil
}

func masterName(m *kernel.Model, index int) string {
	if l, err := m.LinkByIndex(index); err == nil {
		return l.Name
	}
	return ""
}

func hasAddr(m *kernel.Model, index int, p netip.Prefix) (bool, error) {
	list, err := m.Addrs(index)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(list, func(a kernel.Addr) bool { return a.Prefix == p }), nil
}

func (s *AddAddr) Reverse(m *kernel.Model) ([]Step, error) {
	l, err := lookup(m, s.Link)
	if err != nil || l == nil {
		return nil, err
	}
	has, err := hasAddr(m, l.Index, s.Addr.Prefix)
	if err != nil || !has {
		return nil, err
	}
	return []Step{&DelAddr{Link: Ref(l), Addr: s.Addr}}, nil
}

func (s *DelAddr) Reverse(m *kernel.Model) ([]Step, error) {
	l, err := lookup(m, s.Link)
	if err != nil || l == nil {
		return nil, err
	}
	has, err := hasAddr(m, l.Index, s.Addr.Prefix)
	if err != nil || has {
		return nil, err
	}
	return []Step{&AddAddr{Link: Ref(l), Addr: s.Addr}}, nil
}

func hasRoute(m *kernel.Model, index int, r kernel.Route) (bool, error) {
	list, err := m.Routes(index)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(list, r.Same), nil
}

func (s *AddRoute) Reverse(m *kernel.Model) ([]Step, error) {
	l, err := lookup(m, s.Link)
	if err != nil || l == nil {
		return nil, err
	}
	has, err := hasRoute(m, l.Index, s.Route)
	if err != nil || !has {
		return nil, err
	}
	return []Step{&DelRoute{Link: Ref(l), Route: s.Route}}, nil
}

func (s *DelRoute) Reverse(m *kernel.Model) ([]Step, error) {
	l, err := lookup(m, s.Link)
	if err != nil || l == nil {
		return nil, err
	}
	has, err := hasRoute(m, l.Index, s.Route)
	if err != nil || has {
		return nil, err
	}
	return []Step{&AddRoute{Link: Ref(l), Route: s.Route}}, nil
}

func (s *SetSysctl) Reverse(m *kernel.Model) ([]Step, error) {
	v, err := m.Sysctl(s.Key)
	if errors.Is(err, kernel.ErrNotObserved) {
		return nil, err
	}
	if err != nil || v != s.Value || s.Old == s.Value {
		return nil, nil
	}
	return []Step{&SetSysctl{Key: s.Key, Value: s.Old, Old: v}}, nil
}

func (s *AddNAT) Reverse(m *kernel.Model) ([]Step, error) {
	rules, err := m.NATRules(s.Rule.Bridge)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if r.Comment() == s.Rule.Comment() {
			return []Step{&DelNAT{Rule: r}}, nil
		}
	}
	return nil, nil
}

// Undoing lists the steps that undo recorded steps, last first, given the
// state m: each is judged against m as the ones before it leave it (m is
// changed as they would change the kernel), so a record that made the same
// thing twice undoes it once.
func Undoing(recorded []Recorded, m *kernel.Model) ([]Step, error) {
	var out []Step
	refs := &Refs{}
	for i := len(recorded) - 1; i >= 0; i-- {
		steps, err := recorded[i].Reverse(m)
		if err != nil {
			return out, err
		}
		for _, s := range steps {
			if err := s.Do(m, refs); err != nil {
				return out, err
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func needLink(q *kernel.Query, ref LinkRef, addrs, routes bool) {
	if ref.Name == "" {
		return
	}
	q.Links = appendNew(q.Links, ref.Name)
	if addrs {
		q.Addrs = appendNew(q.Addrs, ref.Name)
	}
	if routes {
		q.Routes = appendNew(q.Routes, ref.Name)
	}
}

func appendNew(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

func (s *AddBridge) Needs(q *kernel.Query) {
	needLink(q, LinkRef{Name: s.Name}, true, true)
	q.Ports = appendNew(q.Ports, s.Name)
}

func (s *SetLink) Needs(q *kernel.Query) {
	needLink(q, s.Link, false, false)
	for _, r := range []*LinkRef{s.To.Master, s.From.Master} {
		if r != nil {
			needLink(q, *r, false, false)
		}
	}
}

func (s *AddAddr) Needs(q *kernel.Query)   { needLink(q, s.Link, true, true) }
func (s *DelAddr) Needs(q *kernel.Query)   { needLink(q, s.Link, true, true) }
func (s *AddRoute) Needs(q *kernel.Query)  { needLink(q, s.Link, true, true) }
func (s *DelRoute) Needs(q *kernel.Query)  { needLink(q, s.Link, true, true) }
func (s *SetSysctl) Needs(q *kernel.Query) { q.Sysctls = appendNew(q.Sysctls, s.Key) }
func (s *AddNAT) Needs(q *kernel.Query)    { q.NAT = true }

package plan

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/nftable"
	"github.com/ifhook/ifhook/ifhook/policy"
	"golang.org/x/sys/unix"
)

// Recorded is a step that outlives its plan in a record: a bridge's record
// is the list of the Recorded steps that made it, which teardown undoes in
// reverse, and which a killed plan leaves pending for the next ifhook to
// undo.
type Recorded interface {
	Step
	// Encode renders the step as one line of a record, with the index of
	// any link the plan made filled in from r (nil: as planned).
	Encode(r *Refs) string
	// Reverse returns the steps that undo this one, given the state of
	// the kernel now (none when nothing is left to undo), judged only by
	// what the step itself set: a value someone changed since is theirs
	// to keep.
	Reverse(m *kernel.Model) ([]Step, error)
	// Needs adds to q what Reverse needs observed.
	Needs(q *kernel.Query)
}

// Record lines are "KIND key=value ..."; a value with a space, '=', a
// quote or a control character is quoted as Go quotes strings.

type fields struct {
	b strings.Builder
}

func newFields(kind string) *fields {
	f := &fields{}
	f.b.WriteString(kind)
	return f
}

func (f *fields) put(k, v string) *fields {
	f.b.WriteByte(' ')
	f.b.WriteString(k)
	f.b.WriteByte('=')
	if v == "" || strings.ContainsAny(v, " =\"\\") || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r >= 0x7f }) {
		v = strconv.Quote(v)
	}
	f.b.WriteString(v)
	return f
}

func (f *fields) int(k string, v int) *fields { return f.put(k, strconv.Itoa(v)) }

func (f *fields) bool(k string, v bool) *fields {
	if v {
		return f.put(k, "1")
	}
	return f.put(k, "0")
}

func (f *fields) String() string { return f.b.String() }

// ErrBadRecord is wrapped by every decoding failure.
var ErrBadRecord = errors.New("bad record line")

// parsed is a decoded line: its kind and fields, each to be taken once.
type parsed struct {
	kind string
	kv   map[string]string
	err  error
}

func parseLine(line string) (*parsed, error) {
	p := &parsed{kv: map[string]string{}}
	rest := line
	next := func() (string, bool) {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return "", false
		}
		i := strings.IndexByte(rest, ' ')
		if eq := strings.IndexByte(rest, '='); eq >= 0 && (i < 0 || eq < i) && eq+1 < len(rest) && rest[eq+1] == '"' {
			// key="quoted value": find the closing quote.
			q, err := strconv.QuotedPrefix(rest[eq+1:])
			if err != nil {
				return "", false
			}
			tok := rest[:eq+1+len(q)]
			rest = rest[eq+1+len(q):]
			return tok, true
		}
		if i < 0 {
			tok := rest
			rest = ""
			return tok, true
		}
		tok := rest[:i]
		rest = rest[i:]
		return tok, true
	}
	kind, ok := next()
	if !ok || strings.Contains(kind, "=") {
		return nil, fmt.Errorf("%w: no kind", ErrBadRecord)
	}
	p.kind = kind
	for {
		tok, ok := next()
		if !ok {
			if strings.TrimSpace(rest) != "" {
				return nil, fmt.Errorf("%w: bad quoting", ErrBadRecord)
			}
			break
		}
		k, v, found := strings.Cut(tok, "=")
		if !found || k == "" {
			return nil, fmt.Errorf("%w: %q is not key=value", ErrBadRecord, tok)
		}
		if strings.HasPrefix(v, `"`) {
			uq, err := strconv.Unquote(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: bad quoting", ErrBadRecord, k)
			}
			v = uq
		}
		if _, dup := p.kv[k]; dup {
			return nil, fmt.Errorf("%w: %s twice", ErrBadRecord, k)
		}
		p.kv[k] = v
	}
	return p, nil
}

func (p *parsed) fail(k, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s %s: %s", ErrBadRecord, p.kind, k, fmt.Sprintf(format, args...))
	}
}

// take returns the value of k and forgets it; required says it must be there.
func (p *parsed) take(k string, required bool) (string, bool) {
	v, ok := p.kv[k]
	if !ok && required {
		p.fail(k, "missing")
	}
	delete(p.kv, k)
	return v, ok
}

func (p *parsed) name(k string) string {
	v, ok := p.take(k, true)
	if ok {
		if err := policy.ValidIfName(v); err != nil {
			p.fail(k, "%v", err)
		}
	}
	return v
}

func (p *parsed) num(k string, lo, hi int64, required bool) (int64, bool) {
	v, ok := p.take(k, required)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		p.fail(k, "%q is not a number from %d to %d", v, lo, hi)
		return 0, false
	}
	return n, true
}

func (p *parsed) flag(k string) (bool, bool) {
	v, ok := p.take(k, false)
	if !ok {
		return false, false
	}
	if v != "0" && v != "1" {
		p.fail(k, "%q is not 0 or 1", v)
	}
	return v == "1", true
}

func (p *parsed) mac(k string, required bool) net.HardwareAddr {
	v, ok := p.take(k, required)
	if !ok {
		return nil
	}
	m, err := net.ParseMAC(v)
	if err != nil || len(m) != 6 {
		p.fail(k, "%q is not a MAC address", v)
		return nil
	}
	return m
}

func (p *parsed) addr(k string) netip.Addr {
	v, ok := p.take(k, false)
	if !ok {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		p.fail(k, "%q is not an IP address", v)
	}
	return a
}

func (p *parsed) prefix(k string, required bool) netip.Prefix {
	v, ok := p.take(k, required)
	if !ok || (v == "default" && !required) {
		return netip.Prefix{}
	}
	a, err := netip.ParsePrefix(v)
	if err != nil || a.Addr().Zone() != "" {
		p.fail(k, "%q is not an address with a prefix length", v)
	}
	return a
}

// ref reads a link reference: "-" for none, NAME for a link a plan made,
// NAME#INDEX for a link by its index.
func (p *parsed) ref(k string) *LinkRef {
	v, ok := p.take(k, false)
	if !ok {
		return nil
	}
	if v == "-" {
		return &LinkRef{}
	}
	name, idx, hasIdx := strings.Cut(v, "#")
	r := &LinkRef{Name: name}
	if err := policy.ValidIfName(name); err != nil {
		p.fail(k, "%v", err)
	}
	if hasIdx {
		n, err := strconv.Atoi(idx)
		if err != nil || n <= 0 || n > 1<<31-1 {
			p.fail(k, "%q: bad index", v)
		}
		r.Index = n
	}
	return r
}

func encodeRef(r *LinkRef, refs *Refs) string {
	switch {
	case r.IsNone():
		return "-"
	case r.Index != 0:
		return r.Name + "#" + strconv.Itoa(r.Index)
	}
	if i, ok := refs.Get(r.Name); ok {
		return r.Name + "#" + strconv.Itoa(i)
	}
	return r.Name
}

// link reads the step's own link: dev=NAME index=N (0: a link the plan made).
func (p *parsed) link() LinkRef {
	name := p.name("dev")
	n, _ := p.num("index", 0, 1<<31-1, true)
	return LinkRef{Name: name, Index: int(n)}
}

func (f *fields) link(l LinkRef, r *Refs) *fields {
	i := l.Index
	if i == 0 {
		i, _ = r.Get(l.Name)
	}
	return f.put("dev", l.Name).int("index", i)
}

func (p *parsed) done() error {
	if p.err != nil {
		return p.err
	}
	for k := range p.kv {
		return fmt.Errorf("%w: %s: unknown field %s", ErrBadRecord, p.kind, k)
	}
	return nil
}

// validLabel accepts an IPv4 address label as the kernel does: 1 to 15
// bytes, here printable ASCII without space, quote or '='.
func validLabel(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '=' || c == '"' {
			return false
		}
	}
	return true
}

// Decode parses one record line as the step it stands for, checking every
// field: a record is data from a file, and trusted only as far as it
// parses as something ifhook itself would have written.
func Decode(line string) (Recorded, error) {
	if len(line) > 1024 {
		return nil, fmt.Errorf("%w: %d bytes long", ErrBadRecord, len(line))
	}
	p, err := parseLine(line)
	if err != nil {
		return nil, err
	}
	var s Recorded
	switch p.kind {
	case "bridge-add":
		b := &AddBridge{Name: p.name("name")}
		b.Opts.MAC = p.mac("mac", false)
		if n, ok := p.num("mtu", 68, 65535, false); ok {
			b.Opts.MTU = int(n)
		}
		b.Opts.STP, _ = p.flag("stp")
		if n, ok := p.num("delay", 0, 30, false); ok {
			b.Opts.ForwardDelay = int(n)
		}
		if n, ok := p.num("index", 0, 1<<31-1, false); ok {
			b.Index = int(n)
		}
		s = b
	case "link-set":
		l := &SetLink{Link: p.link()}
		l.To.MAC, l.From.MAC = p.mac("mac", false), p.mac("from.mac", false)
		if n, ok := p.num("mtu", 68, 65535, false); ok {
			l.To.MTU = int(n)
		}
		if n, ok := p.num("from.mtu", 68, 65535, false); ok {
			l.From.MTU = int(n)
		}
		l.To.Master, l.From.Master = p.ref("master"), p.ref("from.master")
		if v, ok := p.flag("up"); ok {
			l.To.Up = Flag(v)
		}
		if v, ok := p.flag("from.up"); ok {
			l.From.Up = Flag(v)
		}
		if l.To.IsZero() {
			p.fail("", "changes nothing")
		}
		s = l
	case "addr-add", "addr-del":
		link := p.link()
		a := kernel.Addr{Prefix: p.prefix("addr", true), Broadcast: p.addr("brd")}
		if n, ok := p.num("flags", 0, 1<<32-1, false); ok {
			a.Flags = uint32(n) & kernel.Restorable
		}
		if n, ok := p.num("scope", 0, 255, false); ok {
			a.Scope = int(n)
		}
		if v, ok := p.take("label", false); ok {
			if !validLabel(v) {
				p.fail("label", "%q is not an address label", v)
			}
			a.Label = v
		}
		if a.Broadcast.IsValid() && (!a.Broadcast.Is4() || !a.Prefix.Addr().Is4()) {
			p.fail("brd", "only IPv4 addresses have one")
		}
		if p.kind == "addr-add" {
			s = &AddAddr{Link: link, Addr: a}
		} else {
			s = &DelAddr{Link: link, Addr: a}
		}
	case "route-add", "route-del":
		link := p.link()
		r := kernel.Route{Dst: p.prefix("dst", false), Gw: p.addr("gw"), Src: p.addr("src")}
		if n, ok := p.num("metric", 0, 1<<32-1, false); ok {
			r.Metric = int(n)
		}
		if n, ok := p.num("table", 0, 1<<32-1, false); ok {
			r.Table = int(n)
		}
		if n, ok := p.num("proto", 0, 255, false); ok {
			r.Protocol = int(n)
		}
		if n, ok := p.num("scope", 0, 255, false); ok {
			r.Scope = int(n)
		}
		if n, ok := p.num("flags", 0, unix.RTNH_F_ONLINK, false); ok {
			r.Flags = int(n) & unix.RTNH_F_ONLINK
		}
		r.IPv6, _ = p.flag("ipv6")
		for _, a := range []netip.Addr{r.Dst.Addr(), r.Gw, r.Src} {
			if a.IsValid() && a.Is6() != r.IPv6 {
				p.fail("ipv6", "the route mixes address families")
			}
		}
		if p.kind == "route-add" {
			s = &AddRoute{Link: link, Route: r}
		} else {
			s = &DelRoute{Link: link, Route: r}
		}
	case "sysctl":
		key, _ := p.take("key", true)
		v := &SetSysctl{Key: key}
		v.Value, _ = p.take("value", true)
		v.Old, _ = p.take("old", true)
		if !kernel.OwnedSysctl(key) {
			p.fail("key", "%q is not a sysctl ifhook changes", key)
		}
		for _, x := range []string{v.Value, v.Old} {
			if x != "0" && x != "1" && x != "2" {
				p.fail("value", "%q is not a forwarding setting", x)
			}
		}
		s = v
	case "nat-add":
		r := nftable.NAT{Bridge: p.name("bridge"), Subnet: p.prefix("subnet", true), SNATTo: p.addr("snat")}
		if v, ok := p.take("oif", false); ok {
			if err := policy.ValidIfName(v); err != nil {
				p.fail("oif", "%v", err)
			}
			r.OutIf = v
		}
		if r.Subnet.IsValid() && (!r.Subnet.Addr().Is4() || r.Subnet != r.Subnet.Masked()) {
			p.fail("subnet", "%s is not an IPv4 subnet", r.Subnet)
		}
		if r.SNATTo.IsValid() && !r.SNATTo.Is4() {
			p.fail("snat", "not an IPv4 address")
		}
		s = &AddNAT{Rule: r}
	case "dnsmasq":
		s = &StartDHCP{Bridge: p.name("bridge")}
	case "nft-dhcp":
		s = &AddServices{Rules: nftable.Services{Bridge: p.name("bridge")}}
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrBadRecord, p.kind)
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *AddBridge) Encode(r *Refs) string {
	f := newFields("bridge-add").put("name", s.Name)
	if s.Opts.MAC != nil {
		f.put("mac", s.Opts.MAC.String())
	}
	if s.Opts.MTU != 0 {
		f.int("mtu", s.Opts.MTU)
	}
	f.bool("stp", s.Opts.STP).int("delay", s.Opts.ForwardDelay)
	i := s.Index
	if j, ok := r.Get(s.Name); ok {
		i = j
	}
	return f.int("index", i).String()
}

func (s *SetLink) Encode(r *Refs) string {
	f := newFields("link-set").link(s.Link, r)
	if s.To.MAC != nil {
		f.put("mac", s.To.MAC.String())
	}
	if s.From.MAC != nil {
		f.put("from.mac", s.From.MAC.String())
	}
	if s.To.MTU != 0 {
		f.int("mtu", s.To.MTU)
	}
	if s.From.MTU != 0 {
		f.int("from.mtu", s.From.MTU)
	}
	if s.To.Master != nil {
		f.put("master", encodeRef(s.To.Master, r))
	}
	if s.From.Master != nil {
		f.put("from.master", encodeRef(s.From.Master, r))
	}
	if s.To.Up != nil {
		f.bool("up", *s.To.Up)
	}
	if s.From.Up != nil {
		f.bool("from.up", *s.From.Up)
	}
	return f.String()
}

func encodeAddr(kind string, l LinkRef, a kernel.Addr, r *Refs) string {
	f := newFields(kind).link(l, r).put("addr", a.Prefix.String())
	if a.Flags&kernel.Restorable != 0 {
		f.int("flags", int(a.Flags&kernel.Restorable))
	}
	if a.Scope != 0 {
		f.int("scope", a.Scope)
	}
	if a.Broadcast.IsValid() {
		f.put("brd", a.Broadcast.String())
	}
	if a.Label != "" {
		f.put("label", a.Label)
	}
	return f.String()
}

func (s *AddAddr) Encode(r *Refs) string { return encodeAddr("addr-add", s.Link, s.Addr, r) }
func (s *DelAddr) Encode(r *Refs) string { return encodeAddr("addr-del", s.Link, s.Addr, r) }

func encodeRoute(kind string, l LinkRef, rt kernel.Route, r *Refs) string {
	f := newFields(kind).link(l, r)
	if rt.Dst.IsValid() {
		f.put("dst", rt.Dst.String())
	} else {
		f.put("dst", "default")
	}
	if rt.Gw.IsValid() {
		f.put("gw", rt.Gw.String())
	}
	if rt.Src.IsValid() {
		f.put("src", rt.Src.String())
	}
	return f.int("metric", rt.Metric).int("table", rt.Table).int("proto", rt.Protocol).int("scope", rt.Scope).
		int("flags", rt.Flags).bool("ipv6", rt.IPv6).String()
}

func (s *AddRoute) Encode(r *Refs) string { return encodeRoute("route-add", s.Link, s.Route, r) }
func (s *DelRoute) Encode(r *Refs) string { return encodeRoute("route-del", s.Link, s.Route, r) }

func (s *SetSysctl) Encode(*Refs) string {
	return newFields("sysctl").put("key", s.Key).put("value", s.Value).put("old", s.Old).String()
}

func (s *AddNAT) Encode(*Refs) string {
	f := newFields("nat-add").put("bridge", s.Rule.Bridge).put("subnet", s.Rule.Subnet.String())
	if s.Rule.OutIf != "" {
		f.put("oif", s.Rule.OutIf)
	}
	if s.Rule.SNATTo.IsValid() {
		f.put("snat", s.Rule.SNATTo.String())
	}
	return f.String()
}

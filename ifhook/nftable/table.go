// Package nftable keeps ifhook's rules in an nftables table of its own
// ("inet ifhook"), so they never collide with firewalld's, libvirt's,
// Docker's or the admin's rules, and removing ifhook's is removing that
// table's rules. Two kinds live there:
//
//   - NAT: the source NAT of a nat bridge's IPv4 subnet, in the postrouting
//     chain, commented "ifhook:BRIDGE SUBNET";
//   - Services: what a bridge's DHCP and DNS server needs (services.go), in
//     the input and output chains, commented "ifhook:BRIDGE dhcp".
//
// The comment is how ifhook finds a rule again: adding is idempotent,
// deleting removes exactly the bridge's rules, and the table goes with the
// last rule of either kind.
package nftable

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// TableName and ChainName name ifhook's table and its NAT chain.
const (
	TableName = "ifhook"
	ChainName = "postrouting"
)

// InputChain and OutputChain are the filter chains of the Services rules.
const (
	InputChain  = "input"
	OutputChain = "output"
)

// NAT is the source NAT of one bridge's IPv4 subnet.
type NAT struct {
	Bridge string
	Subnet netip.Prefix // the guests' subnet (masked)
	OutIf  string       // only traffic leaving through this interface; "" = any
	SNATTo netip.Addr   // translate to this address; invalid: masquerade
	Handle uint64       // the rule's handle in the kernel, when listed; 0 otherwise
}

// String renders the rule as the nft(8) command that would add it.
func (r NAT) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nft add rule inet %s %s ip saddr %s ip daddr != %s", TableName, ChainName, r.Subnet, r.Subnet)
	if r.OutIf != "" {
		fmt.Fprintf(&b, " oifname %q", r.OutIf)
	}
	if r.SNATTo.IsValid() {
		fmt.Fprintf(&b, " snat ip to %s", r.SNATTo)
	} else {
		b.WriteString(" masquerade")
	}
	fmt.Fprintf(&b, " comment %q", r.Comment())
	return b.String()
}

// DeleteString renders the nft(8) command that deletes the rule: by its
// handle, which is how nft names a rule.
func (r NAT) DeleteString() string {
	if r.Handle == 0 {
		return fmt.Sprintf("nft delete rule inet %s %s handle ? # the rule commented %q", TableName, ChainName, r.Comment())
	}
	return fmt.Sprintf("nft delete rule inet %s %s handle %d # %s", TableName, ChainName, r.Handle, r.Comment())
}

// TableString renders the nft(8) commands that make ifhook's table and its
// NAT chain, which the first rule needs.
func TableString() string {
	return fmt.Sprintf("nft add table inet %s; nft add chain inet %s %s '{ type nat hook postrouting priority srcnat; policy accept; }'", TableName, TableName, ChainName)
}

// Comment tags a rule with its bridge and subnet: "ifhook:br0 192.168.1.0/24".
func (r NAT) Comment() string { return "ifhook:" + r.Bridge + " " + r.Subnet.Masked().String() }

// parseComment returns the bridge and subnet a NAT rule's comment names, or
// false if the rule is not one of ifhook's NAT rules.
func parseComment(comment string) (bridge string, subnet netip.Prefix, ok bool) {
	rest, ok := strings.CutPrefix(comment, "ifhook:")
	if !ok {
		return "", netip.Prefix{}, false
	}
	bridge, sub, _ := strings.Cut(rest, " ")
	if sub == servicesTag {
		return "", netip.Prefix{}, false
	}
	subnet, _ = netip.ParsePrefix(sub)
	return bridge, subnet, bridge != ""
}

// ErrUnavailable wraps failures to reach nftables at all (no nf_tables in
// the kernel, no permission): the host cannot do NAT through ifhook.
var ErrUnavailable = errors.New("nftables unavailable")

// Table is a connection to ifhook's nftables table in one network
// namespace.
type Table struct {
	conn          *nftables.Conn
	table         *nftables.Table
	chain         *nftables.Chain // postrouting, for NAT
	input, output *nftables.Chain // for Services
}

// Open connects to nftables in the namespace nsfd (-1: the process's own).
func Open(nsfd int) (*Table, error) {
	conn, err := connect(nsfd)
	if err != nil {
		return nil, err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	accept := nftables.ChainPolicyAccept
	return &Table{
		conn:  conn,
		table: t,
		chain: &nftables.Chain{
			Name:     ChainName,
			Table:    t,
			Type:     nftables.ChainTypeNAT,
			Hooknum:  nftables.ChainHookPostrouting,
			Priority: nftables.ChainPriorityNATSource,
		},
		input: &nftables.Chain{Name: InputChain, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept},
		output: &nftables.Chain{Name: OutputChain, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &accept},
	}, nil
}

// tagged returns the rules of one of ifhook's chains that carry an ifhook
// comment, with the comments.
func (t *Table) tagged(c *nftables.Chain) ([]*nftables.Rule, []string, error) {
	raw, err := t.conn.GetRules(t.table, c)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil, nil // no table or chain yet
	}
	if err != nil {
		return nil, nil, classify(fmt.Errorf("list nftables rules: %w", err))
	}
	var keep []*nftables.Rule
	var comments []string
	for _, r := range raw {
		c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		if !strings.HasPrefix(c, "ifhook:") {
			continue
		}
		keep = append(keep, r)
		comments = append(comments, c)
	}
	return keep, comments, nil
}

// deleteTagged removes, in one transaction, the rules of ifhook's chains
// whose comment is comment, and the table when no rule of ifhook's is
// left in it. It reports whether there was anything to delete.
func (t *Table) deleteTagged(comment string) (bool, error) {
	left, deleted := 0, 0
	for _, c := range []*nftables.Chain{t.chain, t.input, t.output} {
		raw, comments, err := t.tagged(c)
		if err != nil {
			return false, err
		}
		for i, x := range comments {
			if x != comment {
				left++
				continue
			}
			if err := t.conn.DelRule(raw[i]); err != nil {
				return false, err
			}
			deleted++
		}
	}
	if deleted == 0 {
		return false, nil
	}
	if left == 0 {
		t.conn.DelTable(t.table)
	}
	return true, t.conn.Flush()
}

// rules returns the kernel's rules of ifhook's chain that carry an ifhook
// comment, with the rule each stands for.
func (t *Table) rules() ([]*nftables.Rule, []NAT, error) {
	raw, comments, err := t.tagged(t.chain)
	if err != nil {
		return nil, nil, err
	}
	var keep []*nftables.Rule
	var out []NAT
	for i, r := range raw {
		b, subnet, ok := parseComment(comments[i])
		if !ok {
			continue
		}
		rule := NAT{Bridge: b, Subnet: subnet, Handle: r.Handle}
		decode(&rule, r.Exprs)
		keep = append(keep, r)
		out = append(out, rule)
	}
	return keep, out, nil
}

// List returns ifhook's rules of bridge (all bridges when "").
func (t *Table) List(bridge string) ([]NAT, error) {
	_, all, err := t.rules()
	var out []NAT
	for _, r := range all {
		if bridge == "" || r.Bridge == bridge {
			out = append(out, r)
		}
	}
	return out, err
}

// Exists reports whether ifhook's table is there.
func (t *Table) Exists() (bool, error) {
	tables, err := t.conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, classify(fmt.Errorf("list nftables tables: %w", err))
	}
	for _, x := range tables {
		if x.Name == TableName {
			return true, nil
		}
	}
	return false, nil
}

// Has reports whether the rule for r's bridge and subnet is there.
func (t *Table) Has(r NAT) (bool, error) {
	_, all, err := t.rules()
	for _, x := range all {
		if x.Comment() == r.Comment() {
			return true, err
		}
	}
	return false, err
}

// Add adds the rule in one transaction with the table and chain (which
// nftables keeps if they are there).
func (t *Table) Add(r NAT) error {
	if !r.Subnet.Addr().Is4() {
		return fmt.Errorf("NAT of %s: only IPv4 subnets are translated", r.Subnet)
	}
	t.conn.AddTable(t.table)
	t.conn.AddChain(t.chain)
	t.conn.AddRule(&nftables.Rule{Table: t.table, Chain: t.chain, Exprs: exprs(r),
		UserData: userdata.AppendString(nil, userdata.TypeComment, r.Comment())})
	if err := t.conn.Flush(); err != nil {
		return classify(fmt.Errorf("add NAT rule for %s: %w", r.Bridge, err))
	}
	return nil
}

// Delete removes the rules of r's bridge and subnet, and the table once it
// holds no rule of ifhook's, in one transaction.
func (t *Table) Delete(r NAT) error {
	if _, err := t.deleteTagged(r.Comment()); err != nil {
		return classify(fmt.Errorf("delete NAT rule of %s: %w", r.Bridge, err))
	}
	return nil
}

// connect opens nftables in the namespace nsfd (-1: the process's own).
func connect(nsfd int) (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if nsfd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsfd))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return conn, nil
}

func classify(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EAFNOSUPPORT) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// exprs builds: meta nfproto ipv4 ip saddr SUBNET ip daddr != SUBNET
// [oifname OUT] masquerade|snat ip to ADDR
func exprs(r NAT) []expr.Any {
	net := r.Subnet.Masked()
	addr := net.Addr().As4()
	mask := prefixMask(net.Bits())
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		// IPv4 source address: network header offset 12, 4 bytes.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
		// IPv4 destination address: offset 16. Traffic between guests, or
		// to the bridge, is not translated.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: addr[:]},
	}
	if r.OutIf != "" {
		name := make([]byte, unix.IFNAMSIZ)
		copy(name, r.OutIf)
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name})
	}
	if r.SNATTo.IsValid() {
		to := r.SNATTo.As4()
		e = append(e,
			&expr.Immediate{Register: 1, Data: to[:]},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, Specified: true})
	} else {
		e = append(e, &expr.Masq{})
	}
	return e
}

func prefixMask(bits int) []byte {
	m := make([]byte, 4)
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

// Hooks ForwardDropChains and DropChains look at.
const (
	HookForward = "forward"
	HookInput   = "input"
)

// ForwardDropChains lists the base chains on the forward hook, in any
// table, whose policy is drop, as "FAMILY TABLE CHAIN". With br_netfilter
// loaded, bridged guest traffic passes these chains and is dropped (Docker
// sets FORWARD to drop). Chains of iptables-legacy are not visible here.
func ForwardDropChains(nsfd int) ([]string, error) { return DropChains(nsfd, HookForward) }

// DropChains lists the base chains on hook (HookForward, HookInput), in
// any table and family, whose policy is drop, as "FAMILY TABLE CHAIN". On
// the input hook, such a chain (firewalld's, ufw's) drops the DHCP and DNS
// queries guests send the bridge unless it accepts them itself: an accept
// in ifhook's own table does not override another table's drop.
func DropChains(nsfd int, hook string) ([]string, error) {
	var want nftables.ChainHook
	switch hook {
	case HookForward:
		want = *nftables.ChainHookForward
	case HookInput:
		want = *nftables.ChainHookInput
	default:
		return nil, fmt.Errorf("no hook %q", hook)
	}
	conn, err := connect(nsfd)
	if err != nil {
		return nil, err
	}
	chains, err := conn.ListChains()
	if err != nil {
		return nil, classify(fmt.Errorf("list nftables chains: %w", err))
	}
	var out []string
	for _, c := range chains {
		if c.Hooknum == nil || *c.Hooknum != want || c.Policy == nil || *c.Policy != nftables.ChainPolicyDrop {
			continue
		}
		if c.Table.Family == nftables.TableFamilyNetdev {
			continue // netdev's hooks are ingress and egress, numbered alike
		}
		out = append(out, fmt.Sprintf("%s %s %s", familyName(c.Table.Family), c.Table.Name, c.Name))
	}
	return out, nil
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return fmt.Sprintf("family%d", f)
}

// Matched is what a rule's expressions match, read back from the kernel:
// the source subnet and the destination it excludes (exprs' order).
type Matched struct {
	Source, NotDest netip.Prefix
}

// Match decodes what the kernel's copy of a rule matches, to check it
// against its comment (tests, doctor).
func (t *Table) Match(r NAT) (Matched, error) {
	raw, all, err := t.rules()
	if err != nil {
		return Matched{}, err
	}
	for i, x := range all {
		if x.Comment() == r.Comment() {
			return match(raw[i].Exprs), nil
		}
	}
	return Matched{}, fmt.Errorf("no rule %q", r.Comment())
}

// match reads the payload-bitwise-compare triples on the IPv4 source
// (offset 12) and destination (16).
func match(es []expr.Any) Matched {
	var m Matched
	for i := 0; i+2 < len(es); i++ {
		p, ok1 := es[i].(*expr.Payload)
		b, ok2 := es[i+1].(*expr.Bitwise)
		c, ok3 := es[i+2].(*expr.Cmp)
		if !ok1 || !ok2 || !ok3 || p.Base != expr.PayloadBaseNetworkHeader || p.Len != 4 || len(c.Data) != 4 || len(b.Mask) != 4 {
			continue
		}
		addr, _ := netip.AddrFromSlice(c.Data)
		bits := 0
		for _, x := range b.Mask {
			for ; x&0x80 != 0; x <<= 1 {
				bits++
			}
		}
		pfx := netip.PrefixFrom(addr, bits)
		switch {
		case p.Offset == 12 && c.Op == expr.CmpOpEq:
			m.Source = pfx
		case p.Offset == 16 && c.Op == expr.CmpOpNeq:
			m.NotDest = pfx
		}
	}
	return m
}

// decode fills in the parts of r its comment does not say, from the
// rule's expressions: the output interface and the SNAT address.
func decode(r *NAT, es []expr.Any) {
	for i, e := range es {
		switch e := e.(type) {
		case *expr.Meta:
			if e.Key == expr.MetaKeyOIFNAME && i+1 < len(es) {
				if c, ok := es[i+1].(*expr.Cmp); ok {
					r.OutIf = unix.ByteSliceToString(c.Data)
				}
			}
		case *expr.Immediate:
			if a, ok := netip.AddrFromSlice(e.Data); ok && len(e.Data) == 4 {
				r.SNATTo = a
			}
		}
	}
}

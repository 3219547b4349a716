// Package nat keeps the source NAT rules of ifhook's nat bridges in an
// nftables table of ifhook's own ("inet ifhook"), so they never collide with
// firewalld's, libvirt's, Docker's or the admin's rules, and removing
// ifhook's is removing that table's rules. Each rule carries the comment
// "ifhook:BRIDGE SUBNET", which is how ifhook finds it again: adding is
// idempotent and deleting removes exactly the bridge's rules.
package nat

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
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

// Rule is the source NAT of one bridge's IPv4 subnet.
type Rule struct {
	Bridge string
	Subnet netip.Prefix // the guests' subnet (masked)
	OutIf  string       // only traffic leaving through this interface; "" = any
	SNATTo netip.Addr   // translate to this address; invalid: masquerade
}

// String renders the rule as the nft(8) command that would add it.
func (r Rule) String() string {
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
	fmt.Fprintf(&b, " comment %q", r.comment())
	return b.String()
}

// comment tags a rule with its bridge and subnet: "ifhook:br0 192.168.1.0/24".
func (r Rule) comment() string { return "ifhook:" + r.Bridge + " " + r.Subnet.Masked().String() }

// bridgeOf returns the bridge a comment names, or false if it is not ours.
func bridgeOf(comment string) (string, bool) {
	rest, ok := strings.CutPrefix(comment, "ifhook:")
	if !ok {
		return "", false
	}
	bridge, _, _ := strings.Cut(rest, " ")
	return bridge, true
}

// ErrUnavailable wraps failures to reach nftables at all (no nf_tables in
// the kernel, no permission): the host cannot do NAT through ifhook.
var ErrUnavailable = errors.New("nftables unavailable")

// Table is a connection to ifhook's nftables table in one network
// namespace.
type Table struct {
	conn  *nftables.Conn
	table *nftables.Table
	chain *nftables.Chain
}

// Open connects to nftables in the namespace nsfd (-1: the process's own).
func Open(nsfd int) (*Table, error) {
	conn, err := connect(nsfd)
	if err != nil {
		return nil, err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
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
	}, nil
}

// Rules returns the rules ifhook has for bridge (all bridges when "").
func (t *Table) Rules(bridge string) ([]*nftables.Rule, error) {
	rules, err := t.conn.GetRules(t.table, t.chain)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil // no table or chain yet
	}
	if err != nil {
		return nil, classify(fmt.Errorf("list nftables rules: %w", err))
	}
	var out []*nftables.Rule
	for _, r := range rules {
		c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		if b, ok := bridgeOf(c); ok && (bridge == "" || b == bridge) {
			out = append(out, r)
		}
	}
	return out, nil
}

// HasBridge reports whether the bridge has a NAT rule.
func (t *Table) HasBridge(bridge string) (bool, error) {
	rules, err := t.Rules(bridge)
	return len(rules) > 0, err
}

// Has reports whether the rule for r's bridge and subnet is there.
func (t *Table) Has(r Rule) (bool, error) {
	rules, err := t.Rules(r.Bridge)
	for _, x := range rules {
		if c, _ := userdata.GetString(x.UserData, userdata.TypeComment); c == r.comment() {
			return true, err
		}
	}
	return false, err
}

// Ensure adds the rule unless it is there already, in one transaction with
// the table and chain. It reports whether it added it.
func (t *Table) Ensure(r Rule) (bool, error) {
	if !r.Subnet.Addr().Is4() {
		return false, fmt.Errorf("NAT of %s: only IPv4 subnets are translated", r.Subnet)
	}
	has, err := t.Has(r)
	if err != nil || has {
		return false, err
	}
	t.conn.AddTable(t.table)
	t.conn.AddChain(t.chain)
	t.conn.AddRule(&nftables.Rule{Table: t.table, Chain: t.chain, Exprs: exprs(r),
		UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment())})
	if err := t.conn.Flush(); err != nil {
		return false, classify(fmt.Errorf("add NAT rule for %s: %w", r.Bridge, err))
	}
	return true, nil
}

// Delete removes the bridge's rules, and the table once it holds no rule
// of any bridge. It reports whether it removed a rule.
func (t *Table) Delete(bridge string) (bool, error) {
	rules, err := t.Rules(bridge)
	if err != nil || len(rules) == 0 {
		return false, err
	}
	for _, r := range rules {
		if err := t.conn.DelRule(r); err != nil {
			return false, fmt.Errorf("delete NAT rule of %s: %w", bridge, err)
		}
	}
	if err := t.conn.Flush(); err != nil {
		return false, classify(fmt.Errorf("delete NAT rule of %s: %w", bridge, err))
	}
	if rest, err := t.Rules(""); err == nil && len(rest) == 0 {
		t.conn.DelTable(t.table)
		_ = t.conn.Flush() // an empty table left behind is harmless
	}
	return true, nil
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
func exprs(r Rule) []expr.Any {
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

// Describe summarises the bridge's rules for `ifhook status`.
func Describe(rules []*nftables.Rule) []string {
	out := make([]string, 0, len(rules))
	for _, r := range rules {
		c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		kind := "masquerade"
		if slices.ContainsFunc(r.Exprs, func(e expr.Any) bool { _, ok := e.(*expr.NAT); return ok }) {
			kind = "snat"
		}
		out = append(out, fmt.Sprintf("%s (%s, handle %d)", c, kind, r.Handle))
	}
	return out
}

// ForwardDropChains lists the base chains on the forward hook, in any
// table, whose policy is drop, as "FAMILY TABLE CHAIN". With br_netfilter
// loaded, bridged guest traffic passes these chains and is dropped (Docker
// sets FORWARD to drop). Chains of iptables-legacy are not visible here.
func ForwardDropChains(nsfd int) ([]string, error) {
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
		if c.Hooknum == nil || *c.Hooknum != *nftables.ChainHookForward || c.Policy == nil || *c.Policy != nftables.ChainPolicyDrop {
			continue
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

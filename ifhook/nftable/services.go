package nftable

import (
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// servicesTag ends the comment of a bridge's Services rules:
// "ifhook:BRIDGE dhcp".
const servicesTag = "dhcp"

// Services are the rules a bridge's DHCP and DNS server (dnsmasq) needs,
// as Incus has them: in the input chain, DHCP, DHCPv6 and DNS from the
// bridge and the ICMPv6 router and neighbour messages are accepted; in
// the output chain, the UDP checksum of DHCP replies to the bridge is set
// to zero (valid for IPv4: "no checksum"), so a guest whose DHCP client
// reads raw packets does not drop a reply whose checksum was left to an
// offload that never happens (what libvirt's iptables CHECKSUM
// --checksum-fill rule was for).
//
// The chains accept by default: the accepts document what the bridge
// needs and keep it working under a policy of ifhook's own, but cannot
// override another table's drop (DropChains finds those for doctor).
type Services struct {
	Bridge string
}

// Comment tags the rules: "ifhook:br0 dhcp".
func (s Services) Comment() string { return "ifhook:" + s.Bridge + " " + servicesTag }

// serviceRule is one rule of Services: its chain, what nft(8) calls it,
// and its expressions.
type serviceRule struct {
	output bool
	text   string
	exprs  []expr.Any
}

func ifnameData(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func (s Services) rules() []serviceRule {
	in := func(proto byte, port uint16) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(s.Bridge)},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			// The destination port: transport header offset 2.
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}
	}
	q := fmt.Sprintf("%q", s.Bridge)
	return []serviceRule{
		{text: "iifname " + q + " udp dport 67 accept", exprs: in(unix.IPPROTO_UDP, 67)},
		{text: "iifname " + q + " udp dport 547 accept", exprs: in(unix.IPPROTO_UDP, 547)},
		{text: "iifname " + q + " udp dport 53 accept", exprs: in(unix.IPPROTO_UDP, 53)},
		{text: "iifname " + q + " tcp dport 53 accept", exprs: in(unix.IPPROTO_TCP, 53)},
		{text: "iifname " + q + " icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept",
			exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(s.Bridge)},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
				// The ICMPv6 type, transport offset 0: 133 to 136.
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
				&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{133}, ToData: []byte{136}},
				&expr.Verdict{Kind: expr.VerdictAccept},
			}},
		{output: true, text: "oifname " + q + " meta nfproto ipv4 udp sport 67 udp checksum set 0",
			exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(s.Bridge)},
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
				// The source port: transport offset 0.
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(67)},
				&expr.Immediate{Register: 1, Data: []byte{0, 0}},
				// The checksum itself, offset 6: written as it is, with no
				// checksum update of its own.
				&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 6, Len: 2},
			}},
	}
}

// String renders the rules as the nft(8) commands that add them, with the
// chains they need.
func (s Services) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nft add chain inet %s %s '{ type filter hook input priority filter; policy accept; }'; ", TableName, InputChain)
	fmt.Fprintf(&b, "nft add chain inet %s %s '{ type filter hook output priority filter; policy accept; }'", TableName, OutputChain)
	for _, r := range s.rules() {
		chain := InputChain
		if r.output {
			chain = OutputChain
		}
		fmt.Fprintf(&b, "; nft add rule inet %s %s %s comment %q", TableName, chain, r.text, s.Comment())
	}
	return b.String()
}

// DeleteString renders the nft(8) commands that delete the rules.
func (s Services) DeleteString() string {
	return fmt.Sprintf("nft delete rule inet %s %s|%s handle ... # every rule commented %q", TableName, InputChain, OutputChain, s.Comment())
}

// HasServices reports whether every rule of s is there.
func (t *Table) HasServices(s Services) (bool, error) {
	n, err := t.countServices(s)
	return n == len(s.rules()), err
}

// ServicesBridges lists the bridges that have Services rules (any of them).
func (t *Table) ServicesBridges() ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, c := range []*nftables.Chain{t.input, t.output} {
		_, comments, err := t.tagged(c)
		if err != nil {
			return nil, err
		}
		for _, x := range comments {
			rest, _ := strings.CutPrefix(x, "ifhook:")
			if b, tag, ok := strings.Cut(rest, " "); ok && tag == servicesTag && !seen[b] {
				seen[b] = true
				out = append(out, b)
			}
		}
	}
	return out, nil
}

func (t *Table) countServices(s Services) (int, error) {
	n := 0
	for _, c := range []*nftables.Chain{t.input, t.output} {
		_, comments, err := t.tagged(c)
		if err != nil {
			return 0, err
		}
		for _, x := range comments {
			if x == s.Comment() {
				n++
			}
		}
	}
	return n, nil
}

// AddServices adds the rules of s, with the table and chains, in one
// transaction; rules of s already there (a part left by an interrupted
// run) are replaced, so the bridge ends with exactly one set.
func (t *Table) AddServices(s Services) error {
	if n, err := t.countServices(s); err != nil {
		return err
	} else if n > 0 {
		if err := t.DeleteServices(s); err != nil {
			return err
		}
	}
	t.conn.AddTable(t.table)
	t.conn.AddChain(t.input)
	t.conn.AddChain(t.output)
	for _, r := range s.rules() {
		c := t.input
		if r.output {
			c = t.output
		}
		t.conn.AddRule(&nftables.Rule{Table: t.table, Chain: c, Exprs: r.exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, s.Comment())})
	}
	if err := t.conn.Flush(); err != nil {
		return classify(fmt.Errorf("add the DHCP and DNS rules of %s: %w", s.Bridge, err))
	}
	return nil
}

// DeleteServices removes the rules of s, and the table with ifhook's last
// rule; none there is not an error.
func (t *Table) DeleteServices(s Services) error {
	if _, err := t.deleteTagged(s.Comment()); err != nil {
		return classify(fmt.Errorf("delete the DHCP and DNS rules of %s: %w", s.Bridge, err))
	}
	return nil
}

// Package policy is ifhook's TOML policy: which bridge a TAP joins and how the
// host side of the TAP is configured. It is pure (no netlink, no root) so that
// parsing, validation and rule matching are tested anywhere.
package policy

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
)

// DefaultPath is where ifhook looks for its policy.
const DefaultPath = "/etc/ifhook/config.toml"

// BuiltinName names the embedded default policy in messages.
const BuiltinName = "(built-in policy)"

// Auto as a bridge name means: the bridge that holds the default route (IPv4,
// then IPv6), else the only bridge on the host.
const Auto = "auto"

//go:embed default.toml
var defaultTOML []byte

// Default returns the built-in policy.
func Default() []byte { return defaultTOML }

// TAPMAC says what ifup does to the host side's MAC address.
type TAPMAC string

const (
	// TAPMACDerive gives the TAP a stable, high MAC (see HostTAPMAC).
	TAPMACDerive TAPMAC = "derive"
	// TAPMACKeep leaves the kernel's random MAC alone.
	TAPMACKeep TAPMAC = "keep"
)

// GuestMACMode says what ifup does when it learns the guest's MAC from
// QEMU's command line.
type GuestMACMode string

const (
	// GuestMACOff ignores the guest's MAC beyond deriving the TAP's own.
	GuestMACOff GuestMACMode = "off"
	// GuestMACWarn warns about a MAC without mac_prefix or one QEMU chose
	// (the default), and refuses a MAC another TAP on the bridge uses.
	GuestMACWarn GuestMACMode = "warn"
	// GuestMACEnforce refuses all three.
	GuestMACEnforce GuestMACMode = "enforce"
)

// Policy is a parsed, validated policy.
type Policy struct {
	File      string // file it came from, or BuiltinName
	Bridge    string // for TAPs no rule matches: Auto, a bridge name, or "" (an error)
	MACPrefix MACPrefix
	TAPMAC    TAPMAC
	GuestMAC  GuestMACMode // what to do about guest MACs read from QEMU's command line
	Rules     []Rule
	Bridges   map[string]*BridgeSpec // [bridges.NAME] tables: bridges ifhook may create
	Helper    Helper                 // [helper]: who may use the bridge helper (helper.go)

	lines keyLines
}

// Rule is one [[rule]] table. All matchers given must match; a rule with none
// matches every TAP.
type Rule struct {
	N      int    // 1-based position among the rules
	Line   int    // line of its [[rule]] header
	TAP    string // glob on the TAP name; "" matches any
	VM     string // glob on the VM's name (QEMU's -name); "" matches any
	Bridge string // bridge to join; "" means the top-level bridge setting
	MTU    int    // 0: the bridge's MTU
}

// Choice is what the policy says for one TAP.
type Choice struct {
	Rule   *Rule  // nil when no rule matched and the top-level bridge applies
	Bridge string // Auto, a name, or "" (no bridge chosen)
	MTU    int    // 0: use the bridge's
	Where  string // "file:line" of the setting that chose the bridge
}

// Where returns "file:line" for a key path, e.g. "bridge" or "rule.0".
func (p *Policy) Where(keyPath string) string {
	if n := p.lines.Line(keyPath); n > 0 {
		return p.File + ":" + strconv.Itoa(n)
	}
	return p.File
}

// String names a rule for messages: "rule 2 (tap = "vnet*", vm = "web-*")".
func (r *Rule) String() string {
	var m []string
	if r.TAP != "" {
		m = append(m, fmt.Sprintf("tap = %q", r.TAP))
	}
	if r.VM != "" {
		m = append(m, fmt.Sprintf("vm = %q", r.VM))
	}
	if len(m) == 0 {
		return fmt.Sprintf("rule %d", r.N)
	}
	return fmt.Sprintf("rule %d (%s)", r.N, strings.Join(m, ", "))
}

// Matches reports whether the rule applies to the TAP of the VM (vm ""
// when the VM is not known: a rule with a vm matcher then does not match).
func (r *Rule) Matches(tap, vm string) bool {
	if r.TAP != "" {
		if ok, _ := path.Match(r.TAP, tap); !ok {
			return false
		}
	}
	if r.VM != "" {
		if ok, _ := path.Match(r.VM, vm); !ok || vm == "" {
			return false
		}
	}
	return true
}

// Match returns what the policy says for tap when the VM is not known.
func (p *Policy) Match(tap string) Choice { return p.MatchVM(tap, "") }

// MatchVM returns what the policy says for the TAP of the VM named vm (""
// when not known): the first rule whose matchers all match wins; with
// none, the top-level bridge setting.
func (p *Policy) MatchVM(tap, vm string) Choice {
	for i := range p.Rules {
		r := &p.Rules[i]
		if !r.Matches(tap, vm) {
			continue
		}
		c := Choice{Rule: r, Bridge: r.Bridge, MTU: r.MTU, Where: p.File + ":" + strconv.Itoa(r.Line)}
		if c.Bridge == "" {
			c.Bridge = p.Bridge
		}
		return c
	}
	return Choice{Bridge: p.Bridge, Where: p.Where("bridge")}
}

// MaxSize is the largest policy ifhook reads: a real one is a few KiB.
const MaxSize = 1 << 20

// Load reads the policy at file. When file is DefaultPath and does not
// exist, the built-in policy applies: ifhook works before anyone writes one.
// A file named explicitly (IFHOOK_CONFIG, --config) must exist. The file
// must be a regular file of at most MaxSize bytes: a FIFO would block QEMU's
// start forever, a device fill memory.
func Load(file string) (*Policy, error) {
	data, err := rawfile.Read(file, MaxSize)
	if errors.Is(err, fs.ErrNotExist) && file == DefaultPath {
		return Parse(defaultTOML, BuiltinName)
	}
	if err != nil {
		return nil, Problems{{File: file, Msg: fmt.Sprintf("cannot read policy: %v", unwrapPathError(err))}}
	}
	return Parse(data, file)
}

func unwrapPathError(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// Parse decodes and validates a policy. name is used in messages. Every
// problem is reported (as Problems), each with its line and key.
func Parse(data []byte, name string) (*Policy, error) {
	if e := checkShape(string(data), name); e != nil {
		return nil, Problems{e}
	}
	text := blankComments(data)
	var tree map[string]any
	if _, err := toml.Decode(text, &tree); err != nil {
		return nil, Problems{fromTOML(name, []byte(text), err)}
	}
	d := &decoder{file: name, lines: scanKeyLines(text)}
	p := d.policy(d.table("", tree))
	if len(d.probs) > 0 {
		sort.SliceStable(d.probs, func(i, j int) bool { return d.probs[i].Line < d.probs[j].Line })
		return nil, d.probs
	}
	return p, nil
}

// blankComments empties the lines that hold only a comment, keeping every
// line where it is. The policy runs on every ifup, and the installed
// example is mostly comments, which toml's lexer reads a rune at a time:
// blanking them halves the time a hook spends on its policy. Without a
// multi-line string in the text, a line whose first non-blank character
// is '#' can only be a comment (even inside a multi-line array).
func blankComments(data []byte) string {
	if bytes.Contains(data, []byte(`"""`)) || bytes.Contains(data, []byte("'''")) || !bytes.Contains(data, []byte("#")) {
		return string(data)
	}
	out := make([]byte, 0, len(data))
	for len(data) > 0 {
		line := data
		next := len(data)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, next = data[:i+1], i+1
		}
		if t := bytes.TrimLeft(line, " \t"); len(t) > 0 && t[0] == '#' && plainComment(t) {
			if line[len(line)-1] == '\n' {
				out = append(out, '\n')
			}
		} else {
			out = append(out, line...)
		}
		data = data[next:]
	}
	return string(out)
}

// plainComment reports whether a comment line holds only what TOML allows
// in a comment (valid UTF-8, no control character but tab), so that
// blanking it hides no error toml would report.
func plainComment(line []byte) bool {
	if bytes.HasSuffix(line, []byte("\r\n")) {
		line = line[:len(line)-2]
	} else {
		line = bytes.TrimSuffix(line, []byte("\n"))
	}
	for _, c := range line {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(line)
}

func fromTOML(name string, data []byte, err error) *Error {
	if pe, ok := errors.AsType[toml.ParseError](err); ok {
		// toml's line is where its lexer stood, one past a token that
		// ends its line; the token's start offset is exact.
		line := pe.Position.Line
		if start := pe.Position.Start; start > 0 && start <= len(data) {
			line = 1 + strings.Count(string(data[:start]), "\n")
		}
		return &Error{File: name, Line: line, Msg: "TOML syntax: " + pe.Message}
	}
	return &Error{File: name, Msg: "TOML: " + err.Error()}
}

// topKeys are the keys a policy may have at its top level.
var topKeys = []string{"bridge", "mac_prefix", "tap_mac", "guest_mac", "rule", "bridges", "helper"}

var ruleKeys = []string{"tap", "vm", "bridge", "mtu"}

func (d *decoder) policy(t *table) *Policy {
	p := &Policy{File: d.file, Bridge: Auto, MACPrefix: DefaultMACPrefix, TAPMAC: TAPMACDerive, GuestMAC: GuestMACWarn, lines: d.lines}

	if s, ok := t.str("bridge", Auto); ok {
		if s != Auto && s != "" {
			if err := ValidIfName(s); err != nil {
				d.problem("bridge", "%q: %v", s, err)
			}
		}
		p.Bridge = s
	}
	if s, ok := t.str("mac_prefix", ""); ok {
		prefix, err := ParseMACPrefix(s)
		if err != nil {
			d.problem("mac_prefix", "%v", err)
		} else {
			p.MACPrefix = prefix
		}
	}
	if s, ok := t.str("tap_mac", ""); ok {
		switch TAPMAC(s) {
		case TAPMACDerive, TAPMACKeep:
			p.TAPMAC = TAPMAC(s)
		default:
			d.problem("tap_mac", "%q: want \"derive\" or \"keep\"", s)
		}
	}
	if s, ok := t.str("guest_mac", ""); ok {
		switch GuestMACMode(s) {
		case GuestMACOff, GuestMACWarn, GuestMACEnforce:
			p.GuestMAC = GuestMACMode(s)
		default:
			d.problem("guest_mac", "%q: want \"off\", \"warn\" or \"enforce\"", s)
		}
	}
	for i, rt := range t.tables("rule") {
		p.Rules = append(p.Rules, d.rule(rt, i))
	}
	names, tabs := t.subtables("bridges")
	if len(names) > 0 {
		p.Bridges = make(map[string]*BridgeSpec, len(names))
	}
	for i, name := range names {
		p.Bridges[name] = d.bridge(name, tabs[i])
	}
	d.checkBridges(p)
	p.Helper = d.helper(t)
	t.done(topKeys...)
	return p
}

func (d *decoder) rule(t *table, i int) Rule {
	r := Rule{N: i + 1, Line: d.lines.Line(t.path)}
	if s, ok := t.str("tap", ""); ok {
		if err := validGlob(s); err != nil {
			d.problem(t.key("tap"), "%v", err)
		} else if s == "" {
			d.problem(t.key("tap"), "empty pattern matches nothing; leave the key out to match every TAP")
		}
		r.TAP = s
	}
	if s, ok := t.str("vm", ""); ok {
		if err := validGlob(s); err != nil {
			d.problem(t.key("vm"), "%v", err)
		} else if s == "" {
			d.problem(t.key("vm"), "empty pattern matches nothing; leave the key out to match every VM")
		}
		r.VM = s
	}
	if s, ok := t.str("bridge", ""); ok {
		switch {
		case s == "":
			d.problem(t.key("bridge"), "empty; leave the key out to use the top-level bridge setting")
		case s == Auto:
		default:
			if err := ValidIfName(s); err != nil {
				d.problem(t.key("bridge"), "%q: %v", s, err)
			}
		}
		r.Bridge = s
	}
	if n, ok := t.integer("mtu", 0, 0, 65535); ok {
		if n != 0 && n < 68 {
			d.problem(t.key("mtu"), "%d is below the minimum Ethernet MTU of 68 (0 means the bridge's MTU)", n)
		}
		r.MTU = int(n)
	}
	t.done(ruleKeys...)
	return r
}

package helper

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/policy"
)

// DefaultACLFile is QEMU's ACL for the bridge helper
// (CONFIG_QEMU_CONFDIR "/bridge.conf").
const DefaultACLFile = "/etc/qemu/bridge.conf"

// MaxACLSize is the largest ACL file read: real ones are a few lines.
const MaxACLSize = 1 << 20

// maxLine is qemu-bridge-helper's line buffer (fgets into char[4096]): a
// longer line it cut silently; ifhook refuses it.
const maxLine = 4095

// maxIncludes bounds the include nesting (qemu-bridge-helper has no
// bound, and an include of itself recursed until the stack ran out).
const maxIncludes = 8

// maxFiles bounds the files one ACL reads, includes of includes
// counted; maxUnreadSaid how many unread ones a denial names.
const (
	maxFiles      = 64
	maxUnreadSaid = 3
)

// ifnamsiz is IFNAMSIZ: a name and its NUL.
const ifnamsiz = 16

// The failures, in qemu-bridge-helper's words first, so that searches for
// them still find what they mean.
const (
	msgParse  = "failed to parse default acl file"
	msgDenied = "access denied by acl file"
)

// ACLRule is one allow or deny line of bridge.conf or a file it includes.
type ACLRule struct {
	File   string
	Line   int
	Deny   bool
	All    bool   // allow all, deny all
	Bridge string // the bridge, when not All
}

// String is the rule with its file:line: "/etc/qemu/bridge.conf:3: deny br-prod".
func (r ACLRule) String() string {
	verb := "allow"
	if r.Deny {
		verb = "deny"
	}
	arg := r.Bridge
	if r.All {
		arg = "all"
	}
	return r.File + ":" + strconv.Itoa(r.Line) + ": " + verb + " " + escape.String(arg)
}

// matches reports whether the rule is about bridge.
func (r ACLRule) matches(bridge string) bool { return r.All || r.Bridge == bridge }

// ACL is bridge.conf with the files it includes, read as the helper's
// caller reads them.
type ACL struct {
	File    string // the top file
	Missing bool   // it does not exist
	Rules   []ACLRule
	// Unread are the includes that could not be read, each "PATH
	// (included at FILE:LINE): why". qemu-bridge-helper skips them in
	// silence; an include the caller may not read is how bridge.conf
	// grants per group, so it is no error, but it is said.
	Unread []string
	Files  int // files read, the top one included
}

// Reader reads an ACL file: its bytes, or an error. An error wrapping
// fs.ErrNotExist or fs.ErrPermission leaves an include unread; any other
// is a failure.
type Reader func(path string) ([]byte, error)

// ACLError is a problem with an ACL file, at a line (0: the file).
type ACLError struct {
	File string
	Line int
	Msg  string
}

func (e *ACLError) Error() string {
	if e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.File + ": " + e.Msg
}

// LoadACL reads the ACL at path with read. A missing top file is an ACL
// with Missing set (whether that is allowed depends on the policy: see
// Check); an unreadable one is an error.
func LoadACL(path string, read Reader) (*ACL, error) {
	acl := &ACL{File: path}
	data, err := read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		acl.Missing = true
		return acl, nil
	case err != nil:
		return nil, aclFailure(path, &ACLError{File: path, Msg: describe(err)})
	}
	p := &aclParser{acl: acl, read: read, open: map[string]bool{filepath.Clean(path): true}}
	if err := p.parse(path, data, 0); err != nil {
		return nil, aclFailure(path, err)
	}
	return acl, nil
}

// ParseACL parses data as the ACL file name, reading includes with read.
func ParseACL(name string, data []byte, read Reader) (*ACL, error) {
	acl := &ACL{File: name}
	p := &aclParser{acl: acl, read: read, open: map[string]bool{filepath.Clean(name): true}}
	if err := p.parse(name, data, 0); err != nil {
		return nil, aclFailure(name, err)
	}
	return acl, nil
}

// aclFailure is the one line for an ACL that cannot be used.
func aclFailure(top string, err error) error {
	return exit.New(exit.Policy, "%s `%s' (%w)", msgParse, escape.String(top), err)
}

func describe(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

type aclParser struct {
	acl  *ACL
	read Reader
	open map[string]bool // files being parsed: an include of one is a cycle
}

// isSpace is C's isspace in the C locale, which qemu-bridge-helper uses.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// parse reads one file's lines as qemu-bridge-helper's parse_acl_file
// does: blank lines and lines starting with '#' (after blanks) skipped;
// a command, blanks, an argument (trailing blanks dropped); "allow" and
// "deny" with a bridge name or "all", "include" with a file.
func (p *aclParser) parse(name string, data []byte, depth int) error {
	p.acl.Files++
	text := string(data)
	for n := 1; text != ""; n++ {
		line := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		if len(line) > maxLine {
			return &ACLError{File: name, Line: n, Msg: fmt.Sprintf("line longer than %d bytes (qemu-bridge-helper would cut it)", maxLine)}
		}
		if strings.IndexByte(line, 0) >= 0 {
			return &ACLError{File: name, Line: n, Msg: "a NUL byte in the line"}
		}
		line = trimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			return &ACLError{File: name, Line: n, Msg: fmt.Sprintf("Invalid config line: %s (want allow BRIDGE, deny BRIDGE, allow all, deny all or include FILE)", escape.Quote(line))}
		}
		// The line is trimmed: what follows the command is not empty.
		cmd, arg := line[:i], trimSpace(line[i+1:])
		switch cmd {
		case "allow", "deny":
			if len(arg) >= ifnamsiz {
				return &ACLError{File: name, Line: n, Msg: fmt.Sprintf("name `%s' too long: %d (an interface name is at most %d bytes)", escape.String(arg), len(arg), ifnamsiz-1)}
			}
			r := ACLRule{File: name, Line: n, Deny: cmd == "deny"}
			if arg == "all" {
				r.All = true
			} else {
				r.Bridge = arg
			}
			p.acl.Rules = append(p.acl.Rules, r)
		case "include":
			if err := p.include(name, n, arg, depth); err != nil {
				return err
			}
		default:
			return &ACLError{File: name, Line: n, Msg: fmt.Sprintf("Unknown command `%s' (want allow, deny or include)", escape.String(cmd))}
		}
	}
	return nil
}

// include reads the file an include line names. A relative path is taken
// relative to the including file's directory: qemu-bridge-helper takes it
// relative to its working directory, which is the caller's to choose.
func (p *aclParser) include(from string, line int, path string, depth int) error {
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(from), path)
	}
	path = filepath.Clean(path)
	if depth+1 >= maxIncludes {
		return &ACLError{File: from, Line: line, Msg: fmt.Sprintf("include %s: includes nested more than %d deep", escape.String(path), maxIncludes)}
	}
	if p.acl.Files+len(p.acl.Unread) >= maxFiles {
		return &ACLError{File: from, Line: line, Msg: fmt.Sprintf("include %s: more than %d files included in all", escape.String(path), maxFiles)}
	}
	if p.open[path] {
		return &ACLError{File: from, Line: line, Msg: fmt.Sprintf("include %s: it includes itself, through this line", escape.String(path))}
	}
	data, err := p.read(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		p.acl.Unread = append(p.acl.Unread, fmt.Sprintf("%s (included at %s:%d): %s", path, from, line, describe(err)))
		return nil
	}
	if err != nil {
		return &ACLError{File: from, Line: line, Msg: fmt.Sprintf("include %s: %s", escape.String(path), describe(err))}
	}
	p.open[path] = true
	defer delete(p.open, path)
	return p.parse(path, data, depth+1)
}

// Decision is what the ACL and the policy say of one caller and bridge.
type Decision struct {
	Allowed bool
	// Why is the rule that decided ("/etc/qemu/bridge.conf:2: allow
	// br0"), or why none did.
	Why string
	// Err is the failure a denied caller gets: one line, starting with
	// qemu-bridge-helper's "access denied by acl file".
	Err error
}

// Check decides whether caller may attach a TAP to bridge, as
// qemu-bridge-helper decides from bridge.conf (every rule read, any
// matching allow allows, any matching deny denies, deny wins, nothing is
// allowed by default), with the policy's [[helper.allow]] and
// [[helper.deny]] on top, deny winning across both.
func Check(acl *ACL, pol *policy.Policy, caller policy.HelperCaller, bridge string) Decision {
	var allow string
	for _, r := range acl.Rules {
		if !r.matches(bridge) {
			continue
		}
		if r.Deny {
			return denied(r.String(), caller, bridge, !r.All)
		}
		if allow == "" {
			allow = r.String()
		}
	}
	for i := range pol.Helper.Deny {
		if r := &pol.Helper.Deny[i]; r.Matches(caller, bridge) {
			return denied(r.Where()+": "+r.String(), caller, bridge, false)
		}
	}
	for i := range pol.Helper.Allow {
		if r := &pol.Helper.Allow[i]; r.Matches(caller, bridge) && allow == "" {
			allow = r.Where() + ": " + r.String()
		}
	}
	if allow != "" {
		return Decision{Allowed: true, Why: allow}
	}
	why := "no allow for " + escape.String(bridge) + " in " + escape.String(acl.File)
	if acl.Missing {
		why = "no " + escape.String(acl.File) + " and no [[helper.allow]] for " + escape.String(bridge)
	}
	if len(pol.Helper.Allow) > 0 || !acl.Missing {
		why += " nor in [[helper.allow]] of " + escape.String(pol.File)
	}
	for i, u := range acl.Unread {
		if i == maxUnreadSaid {
			why += fmt.Sprintf("; and %d more not read", len(acl.Unread)-i)
			break
		}
		why += "; not read: " + escape.String(u)
	}
	d := denied(why, caller, bridge, false)
	d.Err = exit.As(exit.Permission, fmt.Errorf("%w; to grant it, add \"allow %s\" to %s or [[helper.allow]] bridges = [%q] to %s", d.Err, escape.String(bridge), escape.String(acl.File), bridge, escape.String(pol.File)))
	return d
}

// denied is the decision and failure for why; named says the rule names
// the bridge already.
func denied(why string, caller policy.HelperCaller, bridge string, named bool) Decision {
	who := "user " + escape.String(caller.String())
	if !named {
		who += ", bridge " + escape.String(bridge)
	}
	return Decision{Why: why, Err: exit.New(exit.Permission, "%s (%s; %s)", msgDenied, why, who)}
}

// NeedsACL returns the error for a host where nobody can be allowed
// anything: no bridge.conf and no [[helper.allow]]. It says how to grant
// access.
func NeedsACL(acl *ACL, pol *policy.Policy) error {
	if !acl.Missing || len(pol.Helper.Allow) > 0 {
		return nil
	}
	return exit.New(exit.Policy, "%s `%s' (it does not exist, and %s has no [[helper.allow]]: nobody may use the bridge helper; to let users attach to br0, write \"allow br0\" in %s, or add [[helper.allow]] with bridges = [\"br0\"] (and user = or group =) to %s)",
		msgParse, escape.String(acl.File), escape.String(pol.File), escape.String(acl.File), escape.String(pol.File))
}

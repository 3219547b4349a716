package helper

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/policy"
	"golang.org/x/sys/unix"
)

// Explanation is what `ifhook explain --helper` says: whether a user may
// attach a TAP to a bridge through the bridge helper, and why.
type Explanation struct {
	Bridge     string   `json:"bridge"`
	User       string   `json:"user"`
	UID        int      `json:"uid"`
	Groups     []string `json:"groups"`
	ACL        string   `json:"acl"`
	ACLRules   int      `json:"acl_rules"`
	ACLFiles   int      `json:"acl_files"`
	ACLMissing bool     `json:"acl_missing,omitempty"`
	Unread     []string `json:"unread,omitempty"`
	Policy     string   `json:"policy"`
	Allowed    bool     `json:"allowed"`
	Why        string   `json:"why"`
	// BridgeState is "exists", "missing" or what the link is instead.
	BridgeState string `json:"bridge_state,omitempty"`
	Error       string `json:"error,omitempty"`
	Exit        int    `json:"exit,omitempty"`
}

// Explain decides as a helper run by c would, reading bridge.conf as c
// may read it (an include c may not read grants nothing), and says
// whether bridge is there to attach to (k nil: not looked at). The error
// is the one the helper would end with.
func Explain(aclFile string, pol *policy.Policy, c policy.HelperCaller, bridge string, k kernel.Kernel) (*Explanation, error) {
	x := &Explanation{Bridge: bridge, User: c.String(), UID: c.UID, ACL: aclFile, Policy: pol.File}
	for i, g := range c.GIDs {
		if i < len(c.Groups) && c.Groups[i] != "" {
			x.Groups = append(x.Groups, c.Groups[i])
		} else {
			x.Groups = append(x.Groups, fmt.Sprint(g))
		}
	}
	err := x.decide(aclFile, pol, c, bridge, k)
	if err != nil {
		x.Error, x.Exit = err.Error(), exit.Code(err)
	}
	return x, err
}

func (x *Explanation) decide(aclFile string, pol *policy.Policy, c policy.HelperCaller, bridge string, k kernel.Kernel) error {
	if err := policy.ValidIfName(bridge); err != nil || len(bridge) >= ifnamsiz {
		return exit.New(exit.Usage, "bridge %s: %v", escape.Quote(bridge), err)
	}
	acl, err := LoadACL(aclFile, ReaderFor(c))
	if err != nil {
		return err
	}
	x.ACLRules, x.ACLFiles, x.ACLMissing, x.Unread = len(acl.Rules), acl.Files, acl.Missing, acl.Unread
	if err := NeedsACL(acl, pol); err != nil {
		return err
	}
	d := Check(acl, pol, c, bridge)
	x.Allowed, x.Why = d.Allowed, d.Why
	if !d.Allowed {
		return d.Err
	}
	if k == nil {
		return nil
	}
	l, err := k.LinkByName(bridge)
	switch {
	case kernel.IsNotFound(err):
		x.BridgeState = "missing"
		return exit.New(exit.Unavailable, "bridge %s does not exist; the bridge helper attaches only to a bridge that exists, and never makes one", escape.Quote(bridge))
	case err != nil:
		return exit.Sys(err, "look up bridge %s", bridge)
	case !l.IsBridge():
		x.BridgeState = l.Describe()
		return exit.New(exit.Unavailable, "%s is %s, not a bridge", escape.Quote(bridge), l.Describe())
	}
	x.BridgeState = "exists"
	return nil
}

// Text renders the explanation for people.
func (x *Explanation) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bridge helper: %s on %s\n", escape.String(x.User), escape.String(x.Bridge))
	fmt.Fprintf(&b, "  user:    %s (uid %d; groups %s)\n", escape.String(x.User), x.UID, escape.String(strings.Join(x.Groups, ", ")))
	switch {
	case x.ACLMissing:
		fmt.Fprintf(&b, "  acl:     %s (none)\n", escape.String(x.ACL))
	case x.ACLFiles > 0:
		fmt.Fprintf(&b, "  acl:     %s (%d rule(s) in %d file(s))\n", escape.String(x.ACL), x.ACLRules, x.ACLFiles)
	}
	for _, u := range x.Unread {
		fmt.Fprintf(&b, "  note:    not read as %s: %s\n", escape.String(x.User), escape.String(u))
	}
	fmt.Fprintf(&b, "  policy:  %s\n", escape.String(x.Policy))
	if x.Why != "" {
		verdict := "denied"
		if x.Allowed {
			verdict = "allowed"
		}
		fmt.Fprintf(&b, "  %-8s %s\n", verdict+":", escape.String(x.Why))
	}
	if x.BridgeState != "" {
		fmt.Fprintf(&b, "  bridge:  %s\n", escape.String(x.BridgeState))
	}
	return b.String()
}

// ReaderFor reads a file, as root may, only if the caller c could read
// it by its permission bits (and search every directory above it): what
// explain needs to judge bridge.conf's includes as the helper run by c
// would.
func ReaderFor(c policy.HelperCaller) Reader {
	return func(path string) ([]byte, error) {
		if c.UID != 0 {
			if err := mayRead(c, path); err != nil {
				return nil, err
			}
		}
		return rawfile.Read(path, MaxACLSize)
	}
}

func mayRead(c policy.HelperCaller, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			return &fs.PathError{Op: "stat", Path: dir, Err: err}
		}
		if !allowed(c, &st, 1) {
			return &fs.PathError{Op: "open", Path: path, Err: fs.ErrPermission}
		}
		if dir == "/" {
			break
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(abs, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if !allowed(c, &st, 4) {
		return &fs.PathError{Op: "open", Path: path, Err: fs.ErrPermission}
	}
	return nil
}

// allowed is the permission-bit check of the kernel (no ACLs, no
// capabilities) for bit (4 read, 1 search).
func allowed(c policy.HelperCaller, st *unix.Stat_t, bit uint32) bool {
	if int(st.Uid) == c.UID {
		return st.Mode&(bit<<6) != 0
	}
	for _, g := range c.GIDs {
		if int(st.Gid) == g {
			return st.Mode&(bit<<3) != 0
		}
	}
	return st.Mode&bit != 0
}

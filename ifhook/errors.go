package ifhook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"golang.org/x/sys/unix"
)

// Kind classifies a failure. Each Kind has exactly one exit status; see
// ExitCodes, the only place that knows the numbers.
type Kind uint8

const (
	KindInternal   Kind = iota // a bug in ifhook
	KindUsage                  // wrong program name, missing or extra argument, bad flag
	KindBadTAP                 // the argument is not a usable TAP: bad name, missing, not a TAP
	KindNoBridge               // no bridge to join: none chosen, missing, not a bridge
	KindSystem                 // a netlink or system call failed
	KindState                  // the state directory is unusable
	KindLock                   // timed out waiting for the lock
	KindPermission             // no CAP_NET_ADMIN
	KindPolicy                 // the policy is broken
)

// ExitCode is one documented exit status (sysexits.h numbers).
type ExitCode struct {
	Code    int
	Name    string // sysexits name
	Kind    Kind
	Meaning string
}

// ExitCodes lists every status ifhook exits with, in order. `ifhook help`,
// the README and the man page are all checked against it.
var ExitCodes = []ExitCode{
	{0, "EX_OK", 0, "done (attached, detached, or nothing to do)"},
	{64, "EX_USAGE", KindUsage, "usage: unknown program name or subcommand, missing or extra argument, bad flag"},
	{65, "EX_DATAERR", KindBadTAP, "the argument is not a usable TAP: bad name, no such device, not a TAP"},
	{69, "EX_UNAVAILABLE", KindNoBridge, "no bridge to join (none chosen, missing, not a bridge) or it cannot be made as the policy says"},
	{70, "EX_SOFTWARE", KindInternal, "internal error in ifhook (a bug: please report it)"},
	{71, "EX_OSERR", KindSystem, "a netlink or system call failed"},
	{73, "EX_CANTCREAT", KindState, "the state directory (or, for install-hooks, /etc/qemu-ifup) cannot be written"},
	{75, "EX_TEMPFAIL", KindLock, "timed out waiting for another ifhook to finish (lock held over 10 s)"},
	{77, "EX_NOPERM", KindPermission, "permission denied: no CAP_NET_ADMIN"},
	{78, "EX_CONFIG", KindPolicy, "the policy is broken (file:line says where)"},
}

// Error is a failure of one ifhook operation on one TAP. Its message is the
// single line ifhook prints: "up vnet0: <what>: <why>".
type Error struct {
	Kind Kind
	Op   string // "up", "down", "explain", "gc", ...
	TAP  string // may be empty
	Err  error
}

func (e *Error) Error() string {
	var parts []string
	if e.Op != "" {
		parts = append(parts, e.Op)
	}
	if e.TAP != "" {
		if policy.ValidIfName(e.TAP) == nil {
			parts = append(parts, e.TAP)
		} else {
			parts = append(parts, fmt.Sprintf("%q", e.TAP))
		}
	}
	if len(parts) == 0 {
		return e.Err.Error()
	}
	return strings.Join(parts, " ") + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// kindError carries a Kind from deep in a call to the operation that wraps it
// into an *Error.
type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

func errorf(kind Kind, format string, args ...any) error {
	return &kindError{kind, fmt.Errorf(format, args...)}
}

// KindOf returns the class of err: the first Kind found while unwrapping,
// else what the underlying error says (errno, policy problem).
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	if e, ok := errors.AsType[*kindError](err); ok {
		return e.kind
	}
	return classify(err)
}

// classify maps an unclassified error to a Kind by what it wraps.
func classify(err error) Kind {
	switch {
	case err == nil:
		return KindInternal
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return KindPermission
	case errors.Is(err, rtnl.ErrNotFound):
		return KindSystem
	}
	if _, ok := errors.AsType[policy.Problems](err); ok {
		return KindPolicy
	}
	if _, ok := errors.AsType[*policy.Error](err); ok {
		return KindPolicy
	}
	if _, ok := errors.AsType[unix.Errno](err); ok {
		return KindSystem
	}
	return KindInternal
}

// Exit returns the exit status for err (0 for nil).
func Exit(err error) int {
	if err == nil {
		return 0
	}
	k := KindOf(err)
	for _, c := range ExitCodes {
		if c.Code != 0 && c.Kind == k {
			return c.Code
		}
	}
	return 70
}

// sysErr classifies a failed system call made while doing what.
func sysErr(err error, format string, args ...any) error {
	k := classify(err)
	if k == KindInternal {
		k = KindSystem
	}
	msg := fmt.Sprintf(format, args...)
	if k == KindPermission {
		return &kindError{k, fmt.Errorf("%s: %w (needs CAP_NET_ADMIN)", msg, err)}
	}
	return &kindError{k, fmt.Errorf("%s: %w", msg, err)}
}

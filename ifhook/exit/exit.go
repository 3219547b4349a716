// Package exit classifies ifhook's failures and maps each class to the one
// exit status that documents it. It is a leaf: every package of ifhook may
// use it, and Table is the only place that knows the numbers (`ifhook help`,
// the README and the man page are all checked against it).
package exit

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ifhook/ifhook/ifhook/escape"
	"golang.org/x/sys/unix"
)

// Kind classifies a failure. Each Kind has exactly one exit status.
type Kind uint8

const (
	Internal    Kind = iota // a bug in ifhook
	Usage                   // wrong program name, missing or extra argument, bad flag
	BadTAP                  // the argument is not a usable TAP: bad name, missing, not a TAP; a guest MAC refused
	Unavailable             // no bridge to join, or a bridge cannot be made or changed as the policy says
	System                  // a netlink or system call failed
	State                   // the state directory or a record is unusable
	Temporary               // timed out waiting for the lock, or interrupted by a signal (the change was undone)
	Permission              // no CAP_NET_ADMIN
	Policy                  // the policy is broken
	Findings                // doctor found problems (not a failure of ifhook's)
)

// Row is one documented exit status (sysexits.h numbers, and 1 for doctor).
type Row struct {
	Code    int
	Name    string // sysexits name
	Kind    Kind
	Meaning string
}

// Table lists every status ifhook exits with, in order.
var Table = []Row{
	{0, "EX_OK", Internal, "done (attached, detached, or nothing to do)"},
	{1, "FINDINGS", Findings, "doctor found problems (each is printed with its fix)"},
	{64, "EX_USAGE", Usage, "usage: unknown program name or subcommand, missing or extra argument, bad flag"},
	{65, "EX_DATAERR", BadTAP, "the argument is not a usable TAP: bad name, no such device, not a TAP; or its guest MAC is refused"},
	{69, "EX_UNAVAILABLE", Unavailable, "no bridge to join (none chosen, missing, not a bridge) or it cannot be made as the policy says"},
	{70, "EX_SOFTWARE", Internal, "internal error in ifhook (a bug: please report it)"},
	{71, "EX_OSERR", System, "a netlink or system call failed"},
	{73, "EX_CANTCREAT", State, "the state directory or a record is unusable (or, for install-hooks, /etc/qemu-ifup cannot be written)"},
	{75, "EX_TEMPFAIL", Temporary, "try again: another ifhook held the lock too long, or a signal interrupted the change (it was undone)"},
	{77, "EX_NOPERM", Permission, "permission denied: no CAP_NET_ADMIN"},
	{78, "EX_CONFIG", Policy, "the policy is broken (file:line says where)"},
}

// Code returns the exit status for err: 0 for nil.
func Code(err error) int {
	if err == nil {
		return 0
	}
	k := KindOf(err)
	for _, r := range Table {
		if r.Code != 0 && r.Kind == k {
			return r.Code
		}
	}
	return 70
}

// Error is a failure of one ifhook operation. Its message is the single line
// ifhook prints: "up vnet0: <what>: <why>".
type Error struct {
	Kind    Kind
	Op      string // "up", "down", "setup", "gc", ...; may be empty
	Subject string // the TAP or bridge; may be empty
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Subject != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if plain(e.Subject) {
			b.WriteString(e.Subject)
		} else {
			b.WriteString(escape.Quote(e.Subject))
		}
	}
	if b.Len() == 0 {
		return e.Err.Error()
	}
	return b.String() + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// plain reports whether a name reads unambiguously without quotes: an
// interface name as people write them. Anything else (a name with a colon,
// a space, a control character) is quoted, so the line shows where it ends.
func plain(s string) bool {
	if s == "." || s == ".." || len(s) > 15 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '@' || c == '+') {
			return false
		}
	}
	return true
}

// kindError carries a Kind from deep in a call to whatever reports it.
type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

// New returns an error of kind k with a formatted message (%w wraps).
func New(k Kind, format string, args ...any) error {
	return &kindError{k, fmt.Errorf(format, args...)}
}

// As gives err the kind k, keeping its message and chain.
func As(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{k, err}
}

// Op wraps err as the failure of operation op on subject, keeping its Kind.
// An err that already is an *Error is returned as is: it names its own
// operation.
func Op(op, subject string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return &Error{Kind: KindOf(err), Op: op, Subject: subject, Err: err}
}

// KindOf returns the class of err: the first Kind found while unwrapping,
// else what the underlying error says (an errno).
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	if e, ok := errors.AsType[*kindError](err); ok {
		return e.kind
	}
	return classify(err)
}

// classify maps an unclassified error to a Kind by the errno it wraps.
func classify(err error) Kind {
	switch {
	case err == nil:
		return Internal
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return Permission
	}
	if _, ok := errors.AsType[unix.Errno](err); ok {
		return System
	}
	return Internal
}

// Sys classifies a failed system call made while doing what: a permission
// error says it needs CAP_NET_ADMIN, anything else is System.
func Sys(err error, format string, args ...any) error {
	k := classify(err)
	if k == Internal {
		k = System
	}
	msg := fmt.Sprintf(format, args...)
	if k == Permission {
		return &kindError{k, fmt.Errorf("%s: %w (needs CAP_NET_ADMIN)", msg, err)}
	}
	return &kindError{k, fmt.Errorf("%s: %w", msg, err)}
}

// joined is several failures reported on one line ("; "): errors.Join would
// put newlines between them, and every failure prints as one line.
type joined struct{ errs []error }

func (j *joined) Error() string {
	msgs := make([]string, len(j.errs))
	for i, e := range j.errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j *joined) Unwrap() []error { return j.errs }

// Join joins errors on one line, keeping the first one's Kind; nil errors
// are dropped, and none gives nil.
func Join(errs ...error) error {
	var keep []error
	for _, e := range errs {
		if e != nil {
			keep = append(keep, e)
		}
	}
	switch len(keep) {
	case 0:
		return nil
	case 1:
		return keep[0]
	}
	return &kindError{KindOf(keep[0]), &joined{keep}}
}

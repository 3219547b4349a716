package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// Error is one problem in a policy file: where it is and what is wrong.
type Error struct {
	File string // the policy's file name, or BuiltinName
	Line int    // 1-based; 0 when unknown
	Key  string // the key path, e.g. "rule.mtu"; "" for syntax errors
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(printable(e.File))
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(printable(e.Key))
		b.WriteString(": ")
	}
	b.WriteString(printable(e.Msg))
	return b.String()
}

// printable escapes control characters (a key or a TOML message may quote
// raw input), so that a problem always prints on one line.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// Problems is every problem found in one policy, in file order. As an error
// it prints the first on one line and counts the rest, because QEMU shows the
// hook's stderr and one clear line beats a wall of text; `ifhook check` prints
// them all.
type Problems []*Error

func (ps Problems) Error() string {
	switch len(ps) {
	case 0:
		return "no problems"
	case 1:
		return ps[0].Error()
	}
	return fmt.Sprintf("%s (and %d more; run 'ifhook check')", ps[0].Error(), len(ps)-1)
}

// Unwrap lets errors.As find each *Error.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

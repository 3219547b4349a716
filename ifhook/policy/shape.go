package policy

import "fmt"

// The TOML decoder's cost grows with the square of a document's nesting:
// a 16 KB policy of nested inline tables took it seconds and gigabytes.
// ifhook's schema nests three levels deep at most ([bridges.NAME.dhcp],
// address = [...]), so before the decoder sees a policy, one linear pass
// refuses any deeper: arrays and inline tables nested past MaxNesting, and
// keys of more than MaxKeyParts dotted parts. With the file capped at
// MaxSize, no policy of any shape takes long, or much memory, to reject.
const (
	MaxNesting  = 8
	MaxKeyParts = 8
)

// checkShape scans text as TOML's lexer would (strings, comments, keys
// and values) and returns where it nests too deep, or nil.
func checkShape(text, name string) *Error {
	line := 1
	depth := 0      // arrays and inline tables open in a value
	var open []byte // what each level is: '[' or '{'
	keyCtx := true  // at the start of a key (line start, or in an inline table)
	parts := 1      // dotted parts of the key being read
	header := false // in a [table] or [[array]] header
	fail := func(format string, args ...any) *Error {
		return &Error{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '\n':
			line++
			if depth == 0 {
				keyCtx, parts, header = true, 1, false
			}
		case c == '#':
			for i+1 < len(text) && text[i+1] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			end, nl := skipString(text, i)
			line += nl
			i = end
		case keyCtx && c == '.':
			parts++
			if parts > MaxKeyParts {
				return fail("a key of more than %d dotted parts: no key of ifhook's goes past 3", MaxKeyParts)
			}
		case keyCtx && depth == 0 && c == '[' && !header:
			header, parts = true, 1
			if i+1 < len(text) && text[i+1] == '[' {
				i++
			}
		case header && c == ']':
			header, keyCtx = false, false
		case keyCtx && c == '=':
			keyCtx = false
		case !keyCtx && (c == '[' || c == '{'):
			depth++
			open = append(open, c)
			if depth > MaxNesting {
				return fail("arrays and inline tables nested more than %d deep: ifhook's policy nests 3 levels at most", MaxNesting)
			}
			if c == '{' {
				keyCtx, parts = true, 1
			}
		case depth > 0 && (c == ']' || c == '}'):
			depth--
			open = open[:len(open)-1]
			keyCtx = false
		case depth > 0 && c == ',' && open[len(open)-1] == '{':
			keyCtx, parts = true, 1
		}
	}
	return nil
}

// skipString returns the index of the last byte of the string starting
// at i (basic or literal, single- or multi-line) and how many newlines it
// holds. An unterminated string runs to the end; the decoder reports it.
func skipString(text string, i int) (end, newlines int) {
	q := text[i]
	multi := i+2 < len(text) && text[i+1] == q && text[i+2] == q
	j := i + 1
	if multi {
		j = i + 3
	}
	for ; j < len(text); j++ {
		switch c := text[j]; {
		case c == '\\' && q == '"':
			j++
			if j < len(text) && text[j] == '\n' {
				newlines++
			}
		case c == '\n':
			newlines++
			if !multi {
				return j - 1, newlines - 1 // the newline ends the line, not the string
			}
		case c == q && !multi:
			return j, newlines
		case c == q && multi && j+2 < len(text) && text[j+1] == q && text[j+2] == q:
			// Up to two more quotes may close it: """a""""" is a"".
			j += 2
			for j+1 < len(text) && text[j+1] == q {
				j++
			}
			return j, newlines
		}
	}
	return len(text) - 1, newlines
}

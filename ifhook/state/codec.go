package state

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Records are "key=value" lines. A record is read and written on the hot
// path of every ifup and ifdown, so the codec is a table of fields per
// record type, not reflection: each field is named once, with how it is
// written and how it is read back and checked. Reading is strict: a key
// ifhook does not write, a key twice, a value that does not parse, is a
// corrupt record (ErrCorrupt), never a record partly trusted.

// ErrCorrupt is wrapped by every failure to decode a record.
var ErrCorrupt = errors.New("corrupt record")

type field[R any] struct {
	key string
	// get returns the value to write ("" writes nothing); each, for a
	// field that repeats, the values.
	get  func(r *R) string
	each func(r *R) []string
	// set reads one value back; it is called once (or once per line for
	// a repeated field).
	set func(r *R, v string) error
}

type codec[R any] struct {
	fields []field[R]
	index  map[string]int
}

func newCodec[R any](fields ...field[R]) *codec[R] {
	c := &codec[R]{fields: fields, index: make(map[string]int, len(fields))}
	for i, f := range fields {
		c.index[f.key] = i
	}
	return c
}

func (c *codec[R]) encode(r *R) []byte {
	var b bytes.Buffer
	for _, f := range c.fields {
		if f.each != nil {
			for _, v := range f.each(r) {
				putLine(&b, f.key, v)
			}
			continue
		}
		putLine(&b, f.key, f.get(r))
	}
	return b.Bytes()
}

func needsQuote(v string) bool {
	if v[0] == '"' || v[0] == ' ' || v[len(v)-1] == ' ' {
		return true
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return true
		}
	}
	return false
}

// putLine appends "k=v\n", quoting v when it would not survive as is; an
// empty v writes nothing.
func putLine(b *bytes.Buffer, k, v string) {
	if v == "" {
		return
	}
	if needsQuote(v) {
		v = strconv.Quote(v)
	}
	b.WriteString(k)
	b.WriteByte('=')
	b.WriteString(v)
	b.WriteByte('\n')
}

func (c *codec[R]) decode(data []byte, r *R) error {
	seen := make([]bool, len(c.fields))
	for n, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%w: line %d: no '='", ErrCorrupt, n+1)
		}
		i, known := c.index[k]
		if !known {
			return fmt.Errorf("%w: line %d: unknown key %q", ErrCorrupt, n+1, truncate(k))
		}
		f := c.fields[i]
		if seen[i] && f.each == nil {
			return fmt.Errorf("%w: line %d: %s twice", ErrCorrupt, n+1, k)
		}
		seen[i] = true
		if strings.HasPrefix(v, `"`) {
			uq, err := strconv.Unquote(v)
			if err != nil {
				return fmt.Errorf("%w: line %d: %s: bad quoting", ErrCorrupt, n+1, k)
			}
			v = uq
		}
		if v == "" {
			return fmt.Errorf("%w: line %d: %s is empty", ErrCorrupt, n+1, k)
		}
		if err := f.set(r, v); err != nil {
			return fmt.Errorf("%w: line %d: %s: %w", ErrCorrupt, n+1, k, err)
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func btoa(b bool) string { return strconv.FormatBool(b) }

// atoi reads into dst a number from lo to hi.
func atoi(dst *int, v string, lo, hi int) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return fmt.Errorf("%q is not a number from %d to %d", truncate(v), lo, hi)
	}
	*dst = n
	return nil
}

func atob(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not true or false", truncate(v))
	}
	*dst = b
	return nil
}

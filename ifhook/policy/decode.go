package policy

import (
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
)

// decoder turns the untyped tree toml produces into a Policy. Doing the typing
// ourselves, rather than letting toml fill a struct, gives every problem an
// exact line (array-of-table elements included), catches keys that differ from
// ours only by case (toml's struct decoding matches them case-insensitively),
// and lets one pass report every problem rather than the first.
type decoder struct {
	file  string
	lines keyLines
	probs Problems
}

func (d *decoder) problem(path, format string, args ...any) {
	d.probs = append(d.probs, &Error{File: d.file, Line: d.lines.Line(path), Key: displayKey(path), Msg: fmt.Sprintf(format, args...)})
}

// displayKey drops array indexes from a path: "rule.1.mtu" -> "rule.mtu"
// (the line number tells which element).
func displayKey(p string) string {
	parts := strings.Split(p, ".")
	out := parts[:0]
	for _, s := range parts {
		if _, err := strconv.Atoi(s); err == nil && len(out) > 0 {
			continue
		}
		out = append(out, s)
	}
	return strings.Join(out, ".")
}

// table reads the keys of one TOML table and remembers which it used, so
// done can report the rest as unknown.
type table struct {
	d    *decoder
	path string
	m    map[string]any
	used map[string]bool
}

func (d *decoder) table(path string, m map[string]any) *table {
	return &table{d: d, path: path, m: m, used: map[string]bool{}}
}

func (t *table) key(k string) string { return join(t.path, k) }

func (t *table) get(k string) (any, bool) {
	t.used[k] = true
	v, ok := t.m[k]
	return v, ok
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

// str returns the string at k, def when absent, and whether it was present.
func (t *table) str(k, def string) (string, bool) {
	v, ok := t.get(k)
	if !ok {
		return def, false
	}
	s, isStr := v.(string)
	if !isStr {
		t.d.problem(t.key(k), "must be a string, not %s", typeName(v))
		return def, false
	}
	return s, true
}

// integer returns the integer at k within [lo, hi], def when absent or bad.
func (t *table) integer(k string, def, lo, hi int64) (int64, bool) {
	v, ok := t.get(k)
	if !ok {
		return def, false
	}
	n, isInt := v.(int64)
	if !isInt {
		t.d.problem(t.key(k), "must be an integer, not %s", typeName(v))
		return def, false
	}
	if n < lo || n > hi {
		t.d.problem(t.key(k), "%d is out of range %d..%d", n, lo, hi)
		return def, false
	}
	return n, true
}

func (t *table) boolean(k string, def bool) (bool, bool) {
	v, ok := t.get(k)
	if !ok {
		return def, false
	}
	b, isBool := v.(bool)
	if !isBool {
		t.d.problem(t.key(k), "must be true or false, not %s", typeName(v))
		return def, false
	}
	return b, true
}

// strings returns a string or a list of strings at k.
func (t *table) strings(k string) ([]string, bool) {
	v, ok := t.get(k)
	if !ok {
		return nil, false
	}
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, isStr := e.(string)
			if !isStr {
				t.d.problem(t.key(k), "must be a string or a list of strings, and holds %s", typeName(e))
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	t.d.problem(t.key(k), "must be a string or a list of strings, not %s", typeName(v))
	return nil, false
}

// tables returns the array of tables at k ([[k]]).
func (t *table) tables(k string) []*table {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	list, isList := v.([]map[string]any)
	if !isList {
		t.d.problem(t.key(k), "must be an array of tables ([[%s]]), not %s", k, typeName(v))
		return nil
	}
	out := make([]*table, len(list))
	for i, m := range list {
		out[i] = t.d.table(join(t.key(k), strconv.Itoa(i)), m)
	}
	return out
}

// subtables returns the named tables under k ([k.NAME]), sorted by name.
func (t *table) subtables(k string) (names []string, tabs []*table) {
	v, ok := t.get(k)
	if !ok {
		return nil, nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		t.d.problem(t.key(k), "must be a table ([%s.NAME]), not %s", k, typeName(v))
		return nil, nil
	}
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sub, isMap := m[name].(map[string]any)
		if !isMap {
			t.d.problem(join(t.key(k), name), "must be a table ([%s.%s]), not %s", k, name, typeName(m[name]))
			sub = map[string]any{}
		}
		tabs = append(tabs, t.d.table(join(t.key(k), name), sub))
	}
	return names, tabs
}

// done reports every key of the table that no reader asked for, naming
// the known key it most resembles.
func (t *table) done(known ...string) {
	var unknown []string
	for k := range t.m {
		if !t.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Slice(unknown, func(i, j int) bool {
		return t.d.lines.Line(t.key(unknown[i])) < t.d.lines.Line(t.key(unknown[j]))
	})
	for _, k := range unknown {
		if s := suggest(k, known); s != "" {
			t.d.problem(t.key(k), "unknown key (did you mean %q?)", s)
		} else {
			t.d.problem(t.key(k), "unknown key (known here: %s)", strings.Join(known, ", "))
		}
	}
}

// suggest returns the known key closest to k, if it is close enough to be a typo.
func suggest(k string, known []string) string {
	best, bestD := "", math.MaxInt
	for _, c := range known {
		if strings.EqualFold(c, k) {
			return c
		}
		if d := editDistance(strings.ToLower(k), c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= 2 && bestD < len(k) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// validGlob reports whether pattern is a well-formed path.Match pattern.
func validGlob(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("%q is not a valid glob pattern", pattern)
	}
	return nil
}

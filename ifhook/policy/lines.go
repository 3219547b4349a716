package policy

import (
	"strconv"
	"strings"
)

// keyLines maps key paths to the line they are written on. BurntSushi/toml
// keeps positions only per key name, so every [[rule]] would share one line;
// this scanner counts array tables itself and gives each element its own path
// ("rule.1.mtu"). It runs only on text that toml has already parsed, so it can
// afford to be simple: it needs to understand headers and "key =" starts, and to
// skip multi-line strings and arrays.
type keyLines map[string]int

func scanKeyLines(text string) keyLines {
	kl := keyLines{}
	arrayLen := map[string]int{} // "rule" -> number of [[rule]] seen so far
	table := ""                  // current table path, array elements resolved
	var inString string          // `"""` or `'''` while inside a multi-line string
	depth := 0                   // open brackets of a multi-line value
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		s := strings.TrimSpace(line)
		if inString != "" {
			if strings.Count(s, inString)%2 == 1 {
				inString = ""
			}
			continue
		}
		if depth > 0 {
			depth += bracketDelta(s)
			continue
		}
		if s == "" || s[0] == '#' {
			continue
		}
		if strings.HasPrefix(s, "[[") {
			name := resolve(arrayLen, splitKey(strings.TrimSpace(s[2:strings.Index(s+"]]", "]]")])))
			idx := arrayLen[name]
			arrayLen[name] = idx + 1
			table = join(name, strconv.Itoa(idx))
			setOnce(kl, table, n)
			continue
		}
		if s[0] == '[' {
			end := strings.Index(s, "]")
			if end < 0 {
				continue
			}
			table = resolve(arrayLen, splitKey(strings.TrimSpace(s[1:end])))
			setOnce(kl, table, n)
			continue
		}
		eq := keyEnd(s)
		if eq < 0 {
			continue
		}
		path := table
		for _, k := range splitKey(strings.TrimSpace(s[:eq])) {
			path = join(path, k)
		}
		setOnce(kl, path, n)
		value := strings.TrimSpace(s[eq+1:])
		for _, q := range []string{`"""`, `'''`} {
			if strings.HasPrefix(value, q) && strings.Count(value, q) == 1 {
				inString = q
			}
		}
		if inString == "" {
			depth = bracketDelta(value)
		}
	}
	return kl
}

// Line returns the line of path, or of its closest enclosing key or table,
// or 0 when nothing encloses it.
func (kl keyLines) Line(path string) int {
	for path != "" {
		if n, ok := kl[path]; ok {
			return n
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func setOnce(kl keyLines, path string, n int) {
	if _, ok := kl[path]; !ok {
		kl[path] = n
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// resolve turns a header's key parts into a path, pointing any part that
// names an array of tables at its latest element, as TOML does.
func resolve(arrayLen map[string]int, parts []string) string {
	path := ""
	for _, p := range parts {
		path = join(path, p)
		if n, ok := arrayLen[path]; ok {
			path = join(path, strconv.Itoa(n-1))
		}
	}
	return path
}

// splitKey splits a dotted key, honouring quoted parts.
func splitKey(s string) []string {
	var parts []string
	var cur strings.Builder
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

// keyEnd returns the index of the '=' that ends the key on a line, or -1.
func keyEnd(s string) int {
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			return i
		case c == '#':
			return -1
		}
	}
	return -1
}

// bracketDelta counts '[' minus ']' outside strings and comments.
func bracketDelta(s string) int {
	d := 0
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == '\\' && quote == '"':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return d
		case c == '[' || c == '{':
			d++
		case c == ']' || c == '}':
			d--
		}
	}
	return d
}

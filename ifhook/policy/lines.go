package policy

import (
	"strconv"
	"strings"
)

// keyLines maps key paths to the line they are written on. BurntSushi/toml
// keeps positions only per key name, so every [[rule]] would share one line;
// this scanner counts array tables itself and gives each element its own path
// ("rule.1.mtu"). It runs only on text toml has already parsed, so it needs
// to understand headers and where keys start, and to step over strings
// (one- and multi-line), arrays, inline tables and comments.
type keyLines map[string]int

// scanner walks TOML text one byte at a time, keeping the line number.
type scanner struct {
	s    string
	i    int
	line int
}

func (sc *scanner) eof() bool  { return sc.i >= len(sc.s) }
func (sc *scanner) peek() byte { return sc.s[sc.i] }
func (sc *scanner) next() byte {
	c := sc.s[sc.i]
	sc.i++
	if c == '\n' {
		sc.line++
	}
	return c
}
func (sc *scanner) has(p string) bool { return strings.HasPrefix(sc.s[sc.i:], p) }

// skipBlank skips spaces and tabs (not newlines).
func (sc *scanner) skipBlank() {
	for !sc.eof() && (sc.peek() == ' ' || sc.peek() == '\t') {
		sc.i++
	}
}

// skipLine skips to the start of the next line.
func (sc *scanner) skipLine() {
	for !sc.eof() && sc.next() != '\n' {
	}
}

// skipString skips a string starting at the current quote, one- or
// multi-line, basic or literal.
func (sc *scanner) skipString() {
	q := sc.peek()
	if sc.has(strings.Repeat(string(q), 3)) {
		delim := strings.Repeat(string(q), 3)
		sc.i += 3
		for !sc.eof() {
			if q == '"' && sc.peek() == '\\' {
				sc.next()
				if !sc.eof() {
					sc.next()
				}
				continue
			}
			if sc.has(delim) {
				sc.i += 3
				// Up to two more quotes may close the string ("""a"""").
				for n := 0; n < 2 && !sc.eof() && sc.peek() == q; n++ {
					sc.i++
				}
				return
			}
			sc.next()
		}
		return
	}
	sc.i++
	for !sc.eof() {
		c := sc.peek()
		if c == '\n' {
			return // unterminated: toml refused it already
		}
		sc.i++
		if q == '"' && c == '\\' && !sc.eof() {
			sc.i++
			continue
		}
		if c == q {
			return
		}
	}
}

// skipValue skips a value, which may span lines inside brackets or
// multi-line strings, and the comment after it.
func (sc *scanner) skipValue() {
	depth := 0
	for !sc.eof() {
		c := sc.peek()
		switch {
		case c == '"' || c == '\'':
			sc.skipString()
			continue
		case c == '#':
			sc.skipLine()
			if depth == 0 {
				return
			}
			continue
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		case c == '\n' && depth <= 0:
			sc.next()
			return
		}
		sc.next()
	}
}

// readKey reads a (dotted, possibly quoted) key up to stop ('=' or ']'),
// returning its parts.
func (sc *scanner) readKey(stop byte) []string {
	var parts []string
	var cur strings.Builder
	for !sc.eof() {
		c := sc.peek()
		switch {
		case c == stop || c == '\n':
			return append(parts, strings.TrimSpace(cur.String()))
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
			sc.i++
		case c == '"' || c == '\'':
			start := sc.i
			sc.skipString()
			q := sc.s[start:sc.i]
			if c == '"' {
				if uq, err := strconv.Unquote(q); err == nil {
					cur.WriteString(uq)
					continue
				}
			}
			cur.WriteString(strings.Trim(q, string(c)))
		default:
			cur.WriteByte(c)
			sc.i++
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

func scanKeyLines(text string) keyLines {
	kl := keyLines{}
	arrayLen := map[string]int{} // "rule" -> number of [[rule]] seen so far
	table := ""                  // the current table's path, array elements resolved
	sc := &scanner{s: strings.TrimPrefix(text, "\ufeff"), line: 1}
	for !sc.eof() {
		sc.skipBlank()
		if sc.eof() {
			break
		}
		line := sc.line
		switch c := sc.peek(); {
		case c == '\n' || c == '\r':
			sc.next()
		case c == '#':
			sc.skipLine()
		case sc.has("[["):
			sc.i += 2
			parts := sc.readKey(']')
			// The last part is the array; the parts before it resolve
			// to their latest elements.
			name := join(resolve(arrayLen, parts[:len(parts)-1]), parts[len(parts)-1])
			idx := arrayLen[name]
			arrayLen[name] = idx + 1
			table = join(name, strconv.Itoa(idx))
			setOnce(kl, name, line)
			setOnce(kl, table, line)
			sc.skipLine()
		case c == '[':
			sc.i++
			table = resolve(arrayLen, sc.readKey(']'))
			setPrefixes(kl, table, line)
			sc.skipLine()
		default:
			path := table
			for _, k := range sc.readKey('=') {
				path = join(path, k)
				setOnce(kl, path, line) // dotted keys define their tables here
			}
			if !sc.eof() && sc.peek() == '=' {
				sc.i++
				sc.skipBlank()
				sc.skipValue()
			} else {
				sc.skipLine()
			}
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

// setPrefixes records a header's line for its path and every table it
// implies ([a.b.c] defines a and a.b too, unless they came earlier).
func setPrefixes(kl keyLines, path string, n int) {
	for p := path; p != ""; {
		setOnce(kl, p, n)
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// resolve turns key parts into a path, pointing any part that names an
// array of tables at its latest element, as TOML does.
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

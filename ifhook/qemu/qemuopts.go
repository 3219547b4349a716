package qemu

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"unicode/utf8"
)

// pair is one name=value element of an option argument.
type pair struct{ name, value string }

// opts is one option argument (what follows -netdev, -device, ...) split the
// way QEMU's QemuOpts parser splits it (util/qemu-option.c).
type opts struct {
	id    string // the id= QEMU files the argument under
	hasID bool
	pairs []pair // in order, without id=
}

// get returns the value of name. Later pairs override earlier ones, as in
// qemu_opt_find (util/qemu-option.c), which scans from the tail, and in the
// opts visitor (qapi/opts-visitor.c), which takes the last occurrence.
func (o *opts) get(name string) (string, bool) {
	for i := len(o.pairs) - 1; i >= 0; i-- {
		if o.pairs[i].name == name {
			return o.pairs[i].value, true
		}
	}
	return "", false
}

// has reports whether name is set.
func (o *opts) has(name string) bool {
	_, ok := o.get(name)
	return ok
}

// parseOpts splits an option argument as qemu_opts_parse does with
// permit_abbrev set (util/qemu-option.c: opts_parse, opts_parse_id,
// opts_do_parse). implied is the list's implied_opt_name: "type" for -netdev,
// -nic and -net, "driver" for -device, "guest" for -name.
//
// The id is the first id= in the argument (opts_parse_id stops there), found
// with no implied name, so a leading "tap" is a flag named tap there; id=
// pairs are then dropped from the list (opts_do_parse skips them).
func parseOpts(s, implied string) opts {
	var o opts
	for rest := s; rest != ""; {
		var name, value string
		name, value, rest = nextPair(rest, "")
		if name == "id" {
			o.id, o.hasID = value, true
			break
		}
	}
	for rest, first := s, true; rest != ""; first = false {
		firstname := ""
		if first {
			firstname = implied
		}
		var name, value string
		name, value, rest = nextPair(rest, firstname)
		if name != "id" {
			o.pairs = append(o.pairs, pair{name, value})
		}
	}
	return o
}

// nextPair takes the first element of s as get_opt_name_value does
// (util/qemu-option.c) and returns what follows its separating comma.
//
//   - "name=value": a value runs to the first single comma; ",," stands for
//     one comma (get_opt_value). Names end at the first '=' or ',' and know
//     no escaping.
//   - "value" with an implied name (first element only): name is implied.
//   - "name" otherwise: a flag, "name=on"; "noname" means "name=off".
func nextPair(s, implied string) (name, value, rest string) {
	n := strings.IndexAny(s, "=,")
	switch {
	case n >= 0 && s[n] == '=':
		name = s[:n]
		value, rest = optValue(s[n+1:])
	case implied != "":
		name = implied
		value, rest = optValue(s)
	default:
		if n < 0 {
			n = len(s)
		}
		name, rest = s[:n], s[n:]
		value = "on"
		if strings.HasPrefix(name, "no") {
			name, value = name[2:], "off"
		}
	}
	// rest is empty or starts with the separating comma.
	if rest != "" {
		rest = rest[1:]
	}
	return name, value, rest
}

// optValue reads a value up to the first comma that is not doubled, turning
// each ",," into ",", as get_opt_value (util/qemu-option.c) does. rest starts
// at the terminating comma, or is empty.
func optValue(s string) (value, rest string) {
	i := strings.IndexByte(s, ',')
	if i < 0 {
		return s, ""
	}
	if i+1 >= len(s) || s[i+1] != ',' {
		return s[:i], s[i:]
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			b.WriteString(s)
			return b.String(), ""
		}
		if i+1 < len(s) && s[i+1] == ',' {
			b.WriteString(s[:i+1])
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		return b.String(), s[i:]
	}
}

// errNotObject says a JSON option argument is not a JSON object.
var errNotObject = errors.New("not a JSON object")

// parseJSONOpts reads an option argument written in JSON, which QEMU accepts
// for -device (system/vl.c: optarg[0] == '{', qobject_from_json) and -netdev
// (net/net.c: netdev_is_modern, netdev_parse_modern). Strings and numbers
// become values as they are written; booleans become "on"/"off"; nested
// objects and arrays are skipped, no property we read takes one.
func parseJSONOpts(s string) (opts, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return opts{}, err
	}
	if m == nil {
		return opts{}, errNotObject
	}
	if strings.Trim(s[d.InputOffset():], " \t\n\r") != "" {
		return opts{}, errors.New("text after the JSON object")
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic order for notes and tests
	var o opts
	for _, name := range names {
		value, ok := jsonScalar(m[name])
		if !ok {
			continue
		}
		if name == "id" {
			o.id, o.hasID = value, true
			continue
		}
		o.pairs = append(o.pairs, pair{name, value})
	}
	return o, nil
}

// jsonScalar turns a decoded JSON scalar into the text QemuOpts would hold.
func jsonScalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "on", true
		}
		return "off", true
	}
	return "", false
}

// isJSON reports whether QEMU reads an option argument as JSON: it looks at
// the very first byte, with no space skipped (system/vl.c, net/net.c).
func isJSON(s string) bool { return s != "" && s[0] == '{' }

// setOption is a parsed -set group.id.name=value (qemu_set_option in
// system/vl.c: sscanf "%63[^.].%63[^.].%63[^=]" and a '='; the value is the
// rest of the argument, with no comma escaping).
type setOption struct{ group, id, name, value string }

// parseSet splits the argument of -set; ok is false when QEMU would refuse it.
func parseSet(s string) (setOption, bool) {
	group, rest, ok := strings.Cut(s, ".")
	if !ok || group == "" {
		return setOption{}, false
	}
	id, rest, ok := strings.Cut(rest, ".")
	if !ok || id == "" {
		return setOption{}, false
	}
	name, value, ok := strings.Cut(rest, "=")
	if !ok || name == "" {
		return setOption{}, false
	}
	return setOption{group, id, name, value}, true
}

// shorten trims an argument for a note, at a UTF-8 boundary.
func shorten(s string) string {
	const max = 96
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

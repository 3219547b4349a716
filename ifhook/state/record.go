package state

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Encode renders the record as "key=value" lines.
func (r *Record) Encode() []byte {
	var b bytes.Buffer
	put := func(k, v string) { putLine(&b, k, v) }
	putInt := func(k string, v int) {
		if v != 0 {
			put(k, strconv.Itoa(v))
		}
	}
	put("tap", r.TAP)
	putInt("ifindex", r.Index)
	put("bridge", r.Bridge)
	if !r.Since.IsZero() {
		// Seconds since the epoch: formatting a date costs every ifup
		// the time-formatting code, and list renders it anyway.
		put("since", strconv.FormatInt(r.Since.Unix(), 10))
	}
	put("rule", r.Rule)
	for _, s := range []struct {
		prefix string
		snap   *Snapshot
	}{{"prev.", &r.Prev}, {"set.", &r.Set}} {
		put(s.prefix+"mac", s.snap.MAC)
		putInt(s.prefix+"mtu", s.snap.MTU)
		put(s.prefix+"master", s.snap.Master)
		put(s.prefix+"up", strconv.FormatBool(s.snap.Up))
	}
	put("vm", r.VM)
	putInt("qemu_pid", r.PID)
	put("guest_mac", r.GuestMAC)
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

// putLine appends "k=v\n", quoting v when it would not survive as is;
// an empty v writes nothing.
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

// eachLine calls set for each "key=value" line of a record, unquoting
// quoted values, and says which line a failure is on.
func eachLine(data []byte, set func(k, v string) error) error {
	for n, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("line %d: no '='", n+1)
		}
		if strings.HasPrefix(v, `"`) {
			uq, err := strconv.Unquote(v)
			if err != nil {
				return fmt.Errorf("line %d: %s: bad quoting", n+1, k)
			}
			v = uq
		}
		if err := set(k, v); err != nil {
			return fmt.Errorf("line %d: %s: %w", n+1, k, err)
		}
	}
	return nil
}

// Decode parses a record written by Encode. Unknown keys are skipped.
func Decode(data []byte) (*Record, error) {
	r := &Record{}
	if err := eachLine(data, r.set); err != nil {
		return nil, err
	}
	if r.TAP == "" {
		return nil, errors.New("no tap= line")
	}
	return r, nil
}

func (r *Record) set(k, v string) error {
	var err error
	atoi := func(dst *int) {
		*dst, err = strconv.Atoi(v)
	}
	snap := &r.Prev
	if rest, ok := strings.CutPrefix(k, "set."); ok {
		snap, k = &r.Set, "snap."+rest
	} else if rest, ok := strings.CutPrefix(k, "prev."); ok {
		k = "snap." + rest
	}
	switch k {
	case "tap":
		r.TAP = v
	case "ifindex":
		atoi(&r.Index)
	case "bridge":
		r.Bridge = v
	case "since":
		r.Since, err = parseSince(v)
	case "rule":
		r.Rule = v
	case "vm":
		r.VM = v
	case "qemu_pid":
		atoi(&r.PID)
	case "guest_mac":
		r.GuestMAC = v
	case "snap.mac":
		snap.MAC = v
	case "snap.mtu":
		atoi(&snap.MTU)
	case "snap.master":
		snap.Master = v
	case "snap.up":
		snap.Up, err = strconv.ParseBool(v)
	}
	return err
}

// parseSince reads a record's time: seconds since the epoch, or RFC 3339.
func parseSince(v string) (time.Time, error) {
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 || secs > 253402300799 { // 9999-12-31T23:59:59Z
			return time.Time{}, fmt.Errorf("%s is out of range", v)
		}
		return time.Unix(secs, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return t, err
	}
	t = t.UTC()
	if t.Year() > 9999 {
		return t, fmt.Errorf("%s is past year 9999", v)
	}
	return t, nil
}

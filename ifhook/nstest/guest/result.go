package guest

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The guest's marker lines carry "key=value" fields (see init.sh), with
// "none" for a value it does not have. A RESULT line's first word says
// what it is about, except a ping's (RESULT ping=A ok=1 tries=N), whose
// format predates the others.

// fields splits "kind k=v k=v" into its kind ("" when the first word is a
// field) and fields.
func fields(rest string) (kind string, kv map[string]string, err error) {
	kv = map[string]string{}
	for i, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			if i > 0 {
				return "", nil, fmt.Errorf("word %q is not key=value", f)
			}
			kind = f
			continue
		}
		kv[k] = v
	}
	return kind, kv, nil
}

// parseReady reads the default routes from a READY line.
func (r *Result) parseReady(rest string) error {
	_, kv, err := fields(rest)
	if err != nil {
		return fmt.Errorf("READY %s: %w", rest, err)
	}
	if r.Via4, err = optAddr(kv, "gw4"); err != nil {
		return fmt.Errorf("READY %s: %w", rest, err)
	}
	if r.Via6, err = optAddr(kv, "gw6"); err != nil {
		return fmt.Errorf("READY %s: %w", rest, err)
	}
	return nil
}

// parseResult adds one RESULT line to r.
func (r *Result) parseResult(rest string) error {
	kind, kv, err := fields(rest)
	if err == nil {
		switch kind {
		case "":
			err = r.parsePing(kv)
		case "dhcp4":
			err = r.parseLease(kv)
		case "slaac":
			err = r.parseAutoconf(kv)
		case "resolve":
			err = r.parseLookup(kv)
		default:
			err = fmt.Errorf("unknown kind")
		}
	}
	if err != nil {
		return fmt.Errorf("RESULT %s: %w", rest, err)
	}
	return nil
}

func (r *Result) parsePing(kv map[string]string) error {
	t, ok := kv["ping"]
	if !ok {
		return fmt.Errorf("no ping=")
	}
	tries, _ := strconv.Atoi(kv["tries"])
	r.Pings = append(r.Pings, Ping{Target: t, OK: kv["ok"] == "1", Tries: tries})
	return nil
}

func (r *Result) parseLease(kv map[string]string) error {
	l := &Lease{OK: kv["ok"] == "1"}
	if l.OK {
		var err error
		if l.IP, err = netip.ParsePrefix(kv["ip"]); err != nil {
			return err
		}
		if l.Router, err = optAddr(kv, "router"); err != nil {
			return err
		}
		if l.DNS, err = addrList(kv, "dns"); err != nil {
			return err
		}
		if l.MTU, err = optInt(kv, "mtu"); err != nil {
			return err
		}
		secs, err := optInt(kv, "lease")
		if err != nil {
			return err
		}
		l.Lease = time.Duration(secs) * time.Second
		l.Hostname, l.Domain = optString(kv, "hostname"), optString(kv, "domain")
		if l.Server, err = optAddr(kv, "server"); err != nil {
			return err
		}
	}
	r.DHCP = l
	return nil
}

func (r *Result) parseAutoconf(kv map[string]string) error {
	a := &Autoconf{OK: kv["ok"] == "1"}
	var err error
	if a.OK {
		if a.IP, err = netip.ParsePrefix(kv["ip"]); err != nil {
			return err
		}
	}
	if a.Router, err = optAddr(kv, "router"); err != nil {
		return err
	}
	if a.MTU, err = optInt(kv, "mtu"); err != nil {
		return err
	}
	r.SLAAC = a
	return nil
}

func (r *Result) parseLookup(kv map[string]string) error {
	name, ok := kv["name"]
	if !ok {
		return fmt.Errorf("no name=")
	}
	l := Lookup{Name: name, OK: kv["ok"] == "1"}
	var err error
	if l.Addrs, err = addrList(kv, "addr"); err != nil {
		return err
	}
	if l.OK && len(l.Addrs) == 0 {
		return fmt.Errorf("ok=1 and no address")
	}
	l.Tries, _ = strconv.Atoi(kv["tries"])
	if !l.OK {
		l.Err = optString(kv, "err")
	}
	r.Lookups = append(r.Lookups, l)
	return nil
}

// optString is kv[k], "" for none or missing.
func optString(kv map[string]string, k string) string {
	if v := kv[k]; v != "none" {
		return v
	}
	return ""
}

// optAddr is kv[k] as an address, invalid for none or missing.
func optAddr(kv map[string]string, k string) (netip.Addr, error) {
	v := optString(kv, k)
	if v == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: %w", k, err)
	}
	return a, nil
}

// optInt is kv[k] as a number, 0 for none or missing.
func optInt(kv map[string]string, k string) (int, error) {
	v := optString(kv, k)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: not a count", k, v)
	}
	return n, nil
}

// addrList is kv[k] as comma-separated addresses, nil for none or missing.
func addrList(kv map[string]string, k string) ([]netip.Addr, error) {
	v := optString(kv, k)
	if v == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, s := range strings.Split(v, ",") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// clone is a deep copy, safe to hand out while the console goes on.
func (r Result) clone() Result {
	r.Pings = append([]Ping(nil), r.Pings...)
	r.Lookups = append([]Lookup(nil), r.Lookups...)
	for i := range r.Lookups {
		r.Lookups[i].Addrs = append([]netip.Addr(nil), r.Lookups[i].Addrs...)
	}
	if r.DHCP != nil {
		l := *r.DHCP
		l.DNS = append([]netip.Addr(nil), l.DNS...)
		r.DHCP = &l
	}
	if r.SLAAC != nil {
		a := *r.SLAAC
		r.SLAAC = &a
	}
	return r
}

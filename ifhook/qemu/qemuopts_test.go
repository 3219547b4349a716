package qemu

import (
	"fmt"
	"testing"
)

func TestParseOpts(t *testing.T) {
	for _, tt := range []struct {
		in, implied string
		id          string // "-" for none
		pairs       string
	}{
		{"tap,id=n0,ifname=vnet0", "type", "n0", "[{type tap} {ifname vnet0}]"},
		{"type=tap,ifname=vnet0,id=n0", "type", "n0", "[{type tap} {ifname vnet0}]"},
		{"id=first,tap,id=second", "type", "first", "[{tap on}]"},
		{"tap,,x,id=a", "type", "a", "[{type tap,x}]"},
		{"a=1,,2,b=,c", "type", "-", "[{a 1,2} {b } {c on}]"},
		{"a=x,,,b=y", "", "-", "[{a x,} {b y}]"},
		{"novhost,vhost", "", "-", "[{vhost off} {vhost on}]"},
		{"no", "", "-", "[{ off}]"},
		{"e1000,,x", "", "-", "[{e1000 on} { on} {x on}]"},
		{"", "type", "-", "[]"},
		{",", "type", "-", "[{type }]"},
		{"tap,", "type", "-", "[{type tap}]"},
		{"=v", "type", "-", "[{ v}]"},
		{"guest=a=b", "guest", "-", "[{guest a=b}]"},
		// opts_parse_id reads a bare "id" as the flag id=on.
		{"id", "type", "on", "[{type id}]"},
		{"tap,id", "type", "on", "[{type tap}]"},
	} {
		o := parseOpts(tt.in, tt.implied)
		id := "-"
		if o.hasID {
			id = o.id
		}
		if pairs := fmt.Sprint(o.pairs); id != tt.id || pairs != tt.pairs {
			t.Errorf("parseOpts(%q, %q) = id %s %s, want id %s %s", tt.in, tt.implied, id, pairs, tt.id, tt.pairs)
		}
	}
}

func TestOptsGetLastWins(t *testing.T) {
	o := parseOpts("e1000,mac=52:54:00:00:00:01,netdev=a,mac=52:54:00:00:00:02", "driver")
	if v, _ := o.get("mac"); v != "52:54:00:00:00:02" {
		t.Errorf("mac = %q", v)
	}
	if v, ok := o.get("driver"); !ok || v != "e1000" {
		t.Errorf("driver = %q, %v", v, ok)
	}
	if _, ok := o.get("vlan"); ok {
		t.Error("vlan set")
	}
}

func TestParseJSONOpts(t *testing.T) {
	for _, tt := range []struct {
		in    string
		ok    bool
		id    string
		pairs string
	}{
		{`{"type":"tap","ifname":"vnet0","id":"n0","vhost":true,"queues":4}`, true, "n0", "[{ifname vnet0} {queues 4} {type tap} {vhost on}]"},
		{`{"driver":"e1000","bus":{"x":1},"list":[1]} `, true, "", "[{driver e1000}]"},
		{`{"a":"b"} {"c":"d"}`, false, "", ""},
		{`{"a":"b"}x`, false, "", ""},
		{`{"a":`, false, "", ""},
		{`{}`, true, "", "[]"},
		{`null`, false, "", ""},
		{`["a"]`, false, "", ""},
	} {
		o, err := parseJSONOpts(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("parseJSONOpts(%q): err = %v", tt.in, err)
			continue
		}
		if tt.ok && (o.id != tt.id || fmt.Sprint(o.pairs) != tt.pairs) {
			t.Errorf("parseJSONOpts(%q) = id %q %v, want id %q %s", tt.in, o.id, o.pairs, tt.id, tt.pairs)
		}
	}
}

func TestParseSet(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
		s  setOption
	}{
		{"device.net0.mac=52:54:00:00:00:01", true, setOption{"device", "net0", "mac", "52:54:00:00:00:01"}},
		{"netdev.n0.ifname=a,b", true, setOption{"netdev", "n0", "ifname", "a,b"}},
		{"device.d.x.y=z", true, setOption{"device", "d", "x.y", "z"}},
		{"device.net0.mac", false, setOption{}},
		{"device..mac=1", false, setOption{}},
		{".a.b=c", false, setOption{}},
		{"device.a.=c", false, setOption{}},
	} {
		s, ok := parseSet(tt.in)
		if ok != tt.ok || s != tt.s {
			t.Errorf("parseSet(%q) = %+v, %v; want %+v, %v", tt.in, s, ok, tt.s, tt.ok)
		}
	}
}

func TestIsQEMU(t *testing.T) {
	for exe, want := range map[string]bool{
		"/usr/bin/qemu-system-x86_64":            true,
		"/usr/bin/qemu-system-aarch64 (deleted)": true,
		"qemu-system-x86_64":                     true,
		"/usr/libexec/qemu-kvm":                  true,
		"/usr/bin/kvm":                           true,
		"/usr/bin/qemu-system-":                  false,
		"/usr/bin/qemu-img":                      false,
		"/usr/bin/qemu-x86_64":                   false,
		"/usr/bin/bash":                          false,
		"/opt/qemu-system-x86_64/bin/python":     false,
		"":                                       false,
	} {
		if got := IsQEMU(exe); got != want {
			t.Errorf("IsQEMU(%q) = %v, want %v", exe, got, want)
		}
	}
}

func TestShorten(t *testing.T) {
	long := ""
	for len(long) < 200 {
		long += "é"
	}
	s := shorten(long)
	if len(s) > 100 || s[len(s)-len("…"):] != "…" {
		t.Errorf("shorten: %q", s)
	}
	for _, r := range s {
		if r == 0xFFFD {
			t.Errorf("shorten cut a rune: %q", s)
		}
	}
	if shorten("abc") != "abc" {
		t.Error("shorten changed a short string")
	}
}

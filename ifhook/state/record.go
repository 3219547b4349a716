package state

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ifhook/ifhook/ifhook/policy"
)

// Snapshot is the part of a TAP's configuration ifhook may change.
type Snapshot struct {
	MAC    string `json:"mac,omitempty"`
	MTU    int    `json:"mtu,omitempty"`
	Master string `json:"master,omitempty"`
	Up     bool   `json:"up"`
}

// Record says what ifup did, or was about to do, to one TAP. It is written
// before the change (write-ahead): Prev holds what the TAP had before
// ifhook first touched it, Set what ifhook sets, so whatever point a
// killed ifup reached, ifdown restores exactly what ifhook changed: each
// value only while it is still the one ifhook set.
type Record struct {
	TAP    string    `json:"tap"`
	Index  int       `json:"ifindex"` // tells this TAP from a later one with the same name
	Bridge string    `json:"bridge"`
	Since  time.Time `json:"since"`
	Rule   string    `json:"rule,omitempty"` // which policy setting chose the bridge
	Prev   Snapshot  `json:"prev"`           // before ifhook first touched it
	Set    Snapshot  `json:"set"`            // what ifhook set

	VM       string `json:"vm,omitempty"`        // QEMU's -name, when known
	PID      int    `json:"qemu_pid,omitempty"`  // the QEMU that ran the hook
	GuestMAC string `json:"guest_mac,omitempty"` // the guest NIC's MAC, when known

	// DHCP says ifup wrote the TAP's hosts entry for the bridge's dnsmasq
	// (ifdown removes it and releases the guest's lease); IP is the
	// address it reserved there (none: dnsmasq leases one from its range).
	DHCP bool   `json:"dhcp,omitempty"`
	IP   string `json:"ip,omitempty"`
	// Helper marks a TAP the bridge helper made (qemu-bridge-helper):
	// there is no ifdown for it, and gc removes the record once the TAP
	// is gone, which it is as soon as QEMU closes it.
	Helper bool `json:"helper,omitempty"`
	UID    int  `json:"uid,omitempty"` // who ran the bridge helper (0: root)
}

// maxText bounds the free-text fields of a record (a VM's name, a rule's
// description): QEMU takes a -name of any length, a record does not.
const maxText = 512

func text(dst *string, v string) error {
	if len(v) > maxText || !utf8.ValidString(v) {
		return fmt.Errorf("not text of at most %d bytes", maxText)
	}
	*dst = v
	return nil
}

func ifname(dst *string, v string) error {
	if err := policy.ValidIfName(v); err != nil {
		return err
	}
	*dst = v
	return nil
}

func macText(dst *string, v string) error {
	m, err := net.ParseMAC(v)
	if err != nil || len(m) != 6 {
		return fmt.Errorf("%q is not a MAC address", truncate(v))
	}
	*dst = m.String()
	return nil
}

// Seconds since the epoch: formatting a date costs every ifup the
// time-formatting code, and list renders it anyway.
func sinceText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.Unix(), 10)
}

func parseSince(dst *time.Time, v string) error {
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs < 0 || secs > 253402300799 { // 9999-12-31T23:59:59Z
		return fmt.Errorf("%q is not a time", truncate(v))
	}
	*dst = time.Unix(secs, 0).UTC()
	return nil
}

func snapFields(prefix string, snap func(*Record) *Snapshot) []field[Record] {
	return []field[Record]{
		{key: prefix + "mac", get: func(r *Record) string { return snap(r).MAC },
			set: func(r *Record, v string) error { return macText(&snap(r).MAC, v) }},
		{key: prefix + "mtu", get: func(r *Record) string { return itoa(snap(r).MTU) },
			set: func(r *Record, v string) error { return atoi(&snap(r).MTU, v, 68, 65535) }},
		{key: prefix + "master", get: func(r *Record) string { return snap(r).Master },
			set: func(r *Record, v string) error { return ifname(&snap(r).Master, v) }},
		{key: prefix + "up", get: func(r *Record) string { return btoa(snap(r).Up) },
			set: func(r *Record, v string) error { return atob(&snap(r).Up, v) }},
	}
}

var recordCodec = newCodec(recordFields()...)

func recordFields() []field[Record] {
	fs := []field[Record]{
		{key: "tap", get: func(r *Record) string { return r.TAP }, set: func(r *Record, v string) error { return ifname(&r.TAP, v) }},
		{key: "ifindex", get: func(r *Record) string { return itoa(r.Index) }, set: func(r *Record, v string) error { return atoi(&r.Index, v, 1, 1<<31-1) }},
		{key: "bridge", get: func(r *Record) string { return r.Bridge }, set: func(r *Record, v string) error { return ifname(&r.Bridge, v) }},
		{key: "since", get: func(r *Record) string { return sinceText(r.Since) }, set: func(r *Record, v string) error { return parseSince(&r.Since, v) }},
		{key: "rule", get: func(r *Record) string { return r.Rule }, set: func(r *Record, v string) error { return text(&r.Rule, v) }},
	}
	fs = append(fs, snapFields("prev.", func(r *Record) *Snapshot { return &r.Prev })...)
	fs = append(fs, snapFields("set.", func(r *Record) *Snapshot { return &r.Set })...)
	return append(fs,
		field[Record]{key: "vm", get: func(r *Record) string { return r.VM }, set: func(r *Record, v string) error { return text(&r.VM, v) }},
		field[Record]{key: "qemu_pid", get: func(r *Record) string { return itoa(r.PID) }, set: func(r *Record, v string) error { return atoi(&r.PID, v, 1, 1<<22) }},
		field[Record]{key: "guest_mac", get: func(r *Record) string { return r.GuestMAC }, set: func(r *Record, v string) error { return macText(&r.GuestMAC, v) }},
		field[Record]{key: "dhcp", get: func(r *Record) string {
			if r.DHCP {
				return "true"
			}
			return ""
		}, set: func(r *Record, v string) error { return atob(&r.DHCP, v) }},
		field[Record]{key: "ip", get: func(r *Record) string { return r.IP }, set: func(r *Record, v string) error {
			a, err := netip.ParseAddr(v)
			if err != nil || !a.Is4() {
				return fmt.Errorf("%q is not an IPv4 address", truncate(v))
			}
			r.IP = a.String()
			return nil
		}},
		field[Record]{key: "helper", get: func(r *Record) string {
			if r.Helper {
				return "true"
			}
			return ""
		}, set: func(r *Record, v string) error {
			if v != "true" {
				return fmt.Errorf("%q: only helper=true is written", truncate(v))
			}
			r.Helper = true
			return nil
		}},
		field[Record]{key: "uid", get: func(r *Record) string { return itoa(r.UID) }, set: func(r *Record, v string) error { return atoi(&r.UID, v, 1, 1<<31-1) }},
	)
}

// Encode renders the record as "key=value" lines.
func (r *Record) Encode() []byte { return recordCodec.encode(r) }

// Decode parses a record written by Encode, refusing anything else.
func Decode(data []byte) (*Record, error) {
	r := &Record{}
	if err := recordCodec.decode(data, r); err != nil {
		return nil, err
	}
	if r.TAP == "" || r.Index == 0 {
		return nil, fmt.Errorf("%w: no tap= or ifindex= line", ErrCorrupt)
	}
	return r, nil
}

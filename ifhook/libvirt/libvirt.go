// Package libvirt finds the domain and guest NIC behind a TAP when libvirt
// runs ifhook: an <interface type='ethernet'> with <script path=.../>.
//
// libvirt creates the TAP itself (vnetN, or <target dev=.../>), gives it the
// guest's MAC with the first octet 0xfe (0xfa when the guest's starts with
// 0xfe), sets it up and runs the script (src/util/virnetdev.c:
// virNetDevRunEthernetScript), before QEMU starts: the script's parent is
// libvirtd (or virtqemud), QEMU has no command line to read yet, and the
// environment is cleared (only LC_ALL, PATH and HOME are passed). What is
// left is what libvirt keeps on disk, each source tried in turn and checked
// against the TAP's MAC:
//
//  1. the status XML of running domains (/run/libvirt/qemu/NAME.xml:
//     <domstatus pid=...> with the live <domain>), whose interface names the
//     TAP in <target dev=.../>; libvirt 9.0 writes it only once QEMU runs,
//     so it answers for a TAP set up again (ifhook up by hand, a restart of
//     ifhook), and for libvirt versions that write it earlier;
//  2. the configuration of persistent domains (/etc/libvirt/qemu/NAME.xml),
//     whose interface's MAC, turned into libvirt's host MAC, is the TAP's;
//     a domain that already runs with that MAC on another TAP is left out;
//  3. the domain being started: libvirt makes /var/lib/libvirt/qemu/
//     domain-ID-NAME before it sets up the network, and a domain with such
//     a directory and no status file is starting. Only one may be; its
//     guest MAC is the TAP's with the first octet libvirt replaced, which
//     only 0xfa tells (the guest's was 0xfe), so the caller says which to
//     assume (its MAC prefix's).
//
// Everything read is hostile input: regular files only, bounded in size
// and number, parsed with encoding/xml into the few fields used.
package libvirt

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Dirs are where libvirt's QEMU driver keeps its files (the defaults of a
// system libvirtd or virtqemud).
type Dirs struct {
	Status string // running domains' status XML
	Config string // persistent domains' XML
	Lib    string // per-domain directories domain-ID-NAME
}

// SystemDirs are the system daemon's.
var SystemDirs = Dirs{Status: "/run/libvirt/qemu", Config: "/etc/libvirt/qemu", Lib: "/var/lib/libvirt/qemu"}

// Limits on what is read.
const (
	MaxXML   = 4 << 20 // one status or config file (a status XML is some 10 KiB)
	MaxFiles = 4096    // files looked at in one directory
	maxName  = 512     // a domain name kept
)

// IsDaemon reports whether exe, a path, is libvirt's daemon for QEMU: the
// monolithic libvirtd or the modular virtqemud.
func IsDaemon(exe string) bool {
	base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	return base == "libvirtd" || base == "virtqemud"
}

// Interface is one <interface> of a domain.
type Interface struct {
	Type   string           // ethernet, bridge, network, ...
	MAC    net.HardwareAddr // nil when absent or not a MAC
	Target string           // <target dev=.../>: the TAP, once libvirt named it
}

// Domain is what a status or config file says of one domain.
type Domain struct {
	Name       string
	State      string // status only: running, paused, shutdown, ...
	PID        int    // status only: QEMU's process; 0 when not given
	Interfaces []Interface
}

type xmlIface struct {
	Type string `xml:"type,attr"`
	MAC  struct {
		Address string `xml:"address,attr"`
	} `xml:"mac"`
	Target struct {
		Dev string `xml:"dev,attr"`
	} `xml:"target"`
}

type xmlDomain struct {
	Name       string     `xml:"name"`
	Interfaces []xmlIface `xml:"devices>interface"`
}

type xmlStatus struct {
	State  string    `xml:"state,attr"`
	PID    string    `xml:"pid,attr"`
	Domain xmlDomain `xml:"domain"`
}

// ErrNotDomain says a file is not the XML it should be.
var ErrNotDomain = errors.New("not a libvirt domain XML")

// ParseStatus reads a status file (<domstatus> around a <domain>). It is
// pure; data past MaxXML is refused.
func ParseStatus(data []byte) (*Domain, error) {
	var s xmlStatus
	if err := decode(data, "domstatus", &s); err != nil {
		return nil, err
	}
	d, err := domain(&s.Domain)
	if err != nil {
		return nil, err
	}
	d.State = clean(s.State, 32)
	if s.PID != "" {
		pid, err := strconv.Atoi(s.PID)
		if err != nil || pid <= 0 || pid > 1<<22 {
			return nil, fmt.Errorf("%w: pid=%q", ErrNotDomain, clean(s.PID, 32))
		}
		d.PID = pid
	}
	return d, nil
}

// ParseConfig reads a domain's configuration (<domain>). It is pure.
func ParseConfig(data []byte) (*Domain, error) {
	var x xmlDomain
	if err := decode(data, "domain", &x); err != nil {
		return nil, err
	}
	return domain(&x)
}

func decode(data []byte, root string, v any) error {
	if len(data) > MaxXML {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrNotDomain, len(data), MaxXML)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	// No DTDs, entities or character sets beyond UTF-8: libvirt writes
	// none, and a file that has them is not libvirt's.
	d.CharsetReader = func(label string, _ io.Reader) (io.Reader, error) {
		return nil, fmt.Errorf("charset %q", clean(label, 32))
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotDomain, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != root {
				return fmt.Errorf("%w: root element <%s>, want <%s>", ErrNotDomain, clean(t.Name.Local, 32), root)
			}
			if err := d.DecodeElement(v, &t); err != nil {
				return fmt.Errorf("%w: %v", ErrNotDomain, err)
			}
			return nil
		case xml.Directive:
			return fmt.Errorf("%w: a <!%s> directive", ErrNotDomain, clean(strings.Fields(string(t) + " x")[0], 16))
		}
	}
}

func domain(x *xmlDomain) (*Domain, error) {
	name := strings.TrimSpace(x.Name)
	if name == "" || len(name) > maxName || !utf8.ValidString(name) {
		return nil, fmt.Errorf("%w: no usable <name>", ErrNotDomain)
	}
	d := &Domain{Name: name}
	for _, i := range x.Interfaces {
		iface := Interface{Type: clean(i.Type, 32), Target: clean(i.Target.Dev, 64)}
		if m, err := net.ParseMAC(i.MAC.Address); err == nil && len(m) == 6 {
			iface.MAC = m
		}
		d.Interfaces = append(d.Interfaces, iface)
	}
	return d, nil
}

// clean bounds a value read from a file for messages and comparisons.
func clean(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return s
}

// HostMAC is the MAC libvirt gives the host side of a TAP for guest MAC
// mac (virNetDevTapCreateInBridgePort, qemuInterfaceEthernetConnect): the
// first octet 0xfe, or 0xfa when the guest's is 0xfe.
func HostMAC(mac net.HardwareAddr) net.HardwareAddr {
	h := append(net.HardwareAddr(nil), mac...)
	if len(h) == 0 {
		return h
	}
	h[0] = 0xfe
	if mac[0] == 0xfe {
		h[0] = 0xfa
	}
	return h
}

// IsHostMAC reports whether tapMAC has the form libvirt gives a TAP.
func IsHostMAC(tapMAC net.HardwareAddr) bool {
	return len(tapMAC) == 6 && (tapMAC[0] == 0xfe || tapMAC[0] == 0xfa)
}

// sameMAC compares two MACs.
func sameMAC(a, b net.HardwareAddr) bool { return len(a) == 6 && bytes.Equal(a, b) }

// domainDir parses a per-domain directory name, domain-ID-NAME (libvirt
// shortens NAME to 20 bytes: virDomainDefGetShortName).
func domainDir(name string) (id int, short string, ok bool) {
	rest, ok := strings.CutPrefix(name, "domain-")
	if !ok {
		return 0, "", false
	}
	num, short, ok := strings.Cut(rest, "-")
	if !ok || short == "" {
		return 0, "", false
	}
	id, err := strconv.Atoi(num)
	if err != nil || id <= 0 {
		return 0, "", false
	}
	return id, short, true
}

// sortedNames sorts file names, for deterministic answers.
func sortedNames(names []string) []string {
	sort.Strings(names)
	return names
}

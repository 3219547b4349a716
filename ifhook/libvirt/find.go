package libvirt

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"

	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"golang.org/x/sys/unix"
)

// Found is the domain and NIC behind a TAP, and where libvirt said so.
type Found struct {
	Domain string
	PID    int              // QEMU's process, when the domain runs already; else 0
	MAC    net.HardwareAddr // the guest NIC's MAC
	// Inferred is set when MAC's first octet is not libvirt's word but
	// assumed: libvirt replaced it with 0xfe in the TAP's MAC.
	Inferred bool
	Source   string // the file or directory that answered, for -v
}

// File is one domain file read: its path and what it says (Err when it
// could not be read or parsed).
type File struct {
	Path   string
	Domain *Domain
	Err    error
}

// Snapshot is what libvirt keeps on disk, as Read found it.
type Snapshot struct {
	Status   []File
	Config   []File
	Starting []string // domain-ID-NAME directories of domains with no status file
	LibDir   string
	Notes    []string // files skipped, for -v
}

// Resolve finds the domain and NIC behind tap, whose MAC is tapMAC, in what
// libvirt keeps (see the package comment for the order); first is the
// octet to assume for a guest MAC only the TAP's tells (the policy's MAC
// prefix's). It is pure. ok is false, with why, when no source answers
// for certain: then nothing is guessed.
func Resolve(tap string, tapMAC net.HardwareAddr, first byte, s *Snapshot) (f Found, ok bool, why string) {
	var whys []string
	// 1. A running domain's live XML names the TAP.
	for _, st := range s.Status {
		if st.Domain == nil {
			continue
		}
		for _, i := range st.Domain.Interfaces {
			if i.Target != tap {
				continue
			}
			if i.MAC == nil {
				whys = append(whys, fmt.Sprintf("%s names %s with no MAC", st.Path, tap))
				continue
			}
			if !sameMAC(HostMAC(i.MAC), tapMAC) && !sameMAC(i.MAC, tapMAC) {
				whys = append(whys, fmt.Sprintf("%s names %s with guest MAC %s, but the TAP's MAC %s is not libvirt's for it (stale?)", st.Path, tap, i.MAC, tapMAC))
				continue
			}
			return Found{Domain: st.Domain.Name, PID: st.Domain.PID, MAC: i.MAC, Source: "libvirt's status " + st.Path}, true, ""
		}
	}
	if !IsHostMAC(tapMAC) {
		whys = append(whys, fmt.Sprintf("the TAP's MAC %s is not one libvirt sets (fe:... or fa:...)", tapMAC))
		return Found{}, false, strings.Join(whys, "; ")
	}
	// Guest MACs that run already, on other TAPs.
	running := map[string]bool{}
	for _, st := range s.Status {
		if st.Domain == nil {
			continue
		}
		for _, i := range st.Domain.Interfaces {
			if i.MAC != nil && i.Target != tap {
				running[st.Domain.Name+"\x00"+i.MAC.String()] = true
			}
		}
	}
	// 2. A persistent domain's configuration has the NIC.
	var matches []Found
	for _, c := range s.Config {
		if c.Domain == nil {
			continue
		}
		for _, i := range c.Domain.Interfaces {
			if i.MAC == nil || !sameMAC(HostMAC(i.MAC), tapMAC) || (i.Target != "" && i.Target != tap) {
				continue
			}
			if running[c.Domain.Name+"\x00"+i.MAC.String()] {
				continue // that one runs, on another TAP
			}
			matches = append(matches, Found{Domain: c.Domain.Name, MAC: i.MAC, Source: "libvirt's configuration " + c.Path})
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], true, ""
	case 0:
	default:
		var names []string
		for _, m := range matches {
			names = append(names, m.Domain)
		}
		return Found{}, false, fmt.Sprintf("the configurations of %d domains (%s) have a NIC whose MAC gives the TAP's %s: cannot tell", len(matches), strings.Join(names, ", "), tapMAC)
	}
	// 3. The one domain being started.
	switch len(s.Starting) {
	case 0:
		whys = append(whys, "no domain of libvirt's names "+tap+" or has its MAC, and none is starting")
		return Found{}, false, strings.Join(whys, "; ")
	case 1:
	default:
		return Found{}, false, fmt.Sprintf("%d domains are starting (%s): cannot tell which one %s is", len(s.Starting), strings.Join(s.Starting, ", "), tap)
	}
	_, short, _ := domainDir(s.Starting[0])
	mac := append(net.HardwareAddr(nil), tapMAC...)
	inferred := true
	if tapMAC[0] == 0xfa {
		mac[0], inferred = 0xfe, false
	} else {
		mac[0] = first
		if first == 0xfe || first&1 != 0 {
			return Found{Domain: short, Source: "libvirt's directory " + s.LibDir + "/" + s.Starting[0]}, false,
				fmt.Sprintf("domain %s is starting, but its guest MAC's first octet is not known (the TAP has libvirt's %s)", short, tapMAC)
		}
	}
	return Found{Domain: short, MAC: mac, Inferred: inferred, Source: "libvirt's directory " + s.LibDir + "/" + s.Starting[0] + " (the domain being started)"}, true, ""
}

// Read gathers what libvirt keeps in dirs. A directory that is missing is
// empty; a file that is not a regular file, too large or not a domain's
// XML is skipped with a note.
func Read(dirs Dirs) *Snapshot {
	s := &Snapshot{LibDir: dirs.Lib}
	s.Status = readDir(dirs.Status, ParseStatus, s)
	s.Config = readDir(dirs.Config, ParseConfig, s)
	statusOf := map[string]bool{}
	for _, st := range s.Status {
		if st.Domain != nil {
			statusOf[shortName(st.Domain.Name)] = true
		}
	}
	if d, err := rawfile.OpenDir(dirs.Lib, false, 0); err == nil {
		entries, _ := d.List()
		d.Close()
		var starting []string
		for i, e := range entries {
			if i >= MaxFiles {
				s.Notes = append(s.Notes, fmt.Sprintf("%s: more than %d entries, the rest not read", dirs.Lib, MaxFiles))
				break
			}
			if e.Type != unix.DT_DIR {
				continue
			}
			if _, short, ok := domainDir(e.Name); ok && !statusOf[short] {
				starting = append(starting, e.Name)
			}
		}
		s.Starting = sortedNames(starting)
	}
	return s
}

// shortName is libvirt's short domain name: the first 20 bytes.
func shortName(name string) string {
	if len(name) > 20 {
		return name[:20]
	}
	return name
}

func readDir(dir string, parse func([]byte) (*Domain, error), s *Snapshot) []File {
	d, err := rawfile.OpenDir(dir, false, 0)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.Notes = append(s.Notes, err.Error())
		}
		return nil
	}
	defer d.Close()
	entries, err := d.List()
	if err != nil {
		s.Notes = append(s.Notes, err.Error())
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name, ".xml") && !strings.HasPrefix(e.Name, ".") {
			names = append(names, e.Name)
		}
	}
	names = sortedNames(names)
	if len(names) > MaxFiles {
		s.Notes = append(s.Notes, fmt.Sprintf("%s: %d files, only the first %d read", dir, len(names), MaxFiles))
		names = names[:MaxFiles]
	}
	var out []File
	for _, name := range names {
		f := File{Path: dir + "/" + name}
		data, err := d.Read(name, MaxXML)
		if err == nil {
			f.Domain, err = parse(data)
		}
		if err != nil {
			f.Err = err
			s.Notes = append(s.Notes, fmt.Sprintf("%s skipped: %v", f.Path, err))
		}
		out = append(out, f)
	}
	return out
}

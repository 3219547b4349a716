package dnsmasq

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
)

// Status is what `ifhook status` says of a bridge's dnsmasq.
type Status struct {
	PID     int  `json:"pid,omitempty"`
	Running bool `json:"running"`
	// Listening are the sockets it has open, as "udp 192.168.100.1:53";
	// empty when this process may not look (not root).
	Listening []string `json:"listening,omitempty"`
	// Log is the last lines of its log when it is not running (this run's,
	// else the previous run's), escaped.
	Log []string `json:"log,omitempty"`
}

// Status reports on the bridge's dnsmasq.
func (r *Runner) Status(bridge string) (Status, error) {
	st, err := r.Observe(bridge, true)
	if err != nil {
		return Status{}, err
	}
	out := Status{PID: st.PID, Running: st.Running}
	if st.Running {
		out.Listening = listening(st.PID)
		return out, nil
	}
	run, err := rawfile.OpenDir(r.Layout.RunDir, false, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, nil
	}
	defer run.Close()
	for _, name := range []string{bridge + ".log", bridge + ".log.old"} {
		if b := tail(run, name, 2048); len(b) > 0 {
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 5 {
				lines = lines[len(lines)-5:]
			}
			for _, l := range lines {
				out.Log = append(out.Log, escape.String(l))
			}
			break
		}
	}
	return out, nil
}

// listening lists the sockets process pid has bound, from its namespace's
// /proc/PID/net tables, matched by inode to its descriptors.
func listening(pid int) []string {
	base := "/proc/" + strconv.Itoa(pid)
	fds, err := os.ReadDir(base + "/fd")
	if err != nil {
		return nil
	}
	inodes := map[string]bool{}
	for _, e := range fds {
		l, err := os.Readlink(base + "/fd/" + e.Name())
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, t := range []struct {
		file, proto string
		listen      string // the state of a bound socket: TCP LISTEN, UDP "closed"
	}{{"udp", "udp", "07"}, {"tcp", "tcp", "0A"}, {"udp6", "udp", "07"}, {"tcp6", "tcp", "0A"}} {
		b, err := rawfile.Read(base+"/net/"+t.file, 1<<20)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != t.listen || !inodes[f[9]] {
				continue
			}
			if a := procAddr(f[1]); a != "" {
				out = append(out, t.proto+" "+a)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// procAddr decodes /proc/net's "0100A8C0:0035" (the address as the
// kernel's 32-bit words in host order, the port in hex).
func procAddr(s string) string {
	h, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	raw, herr := hex.DecodeString(h)
	if !ok || err != nil || herr != nil || (len(raw) != 4 && len(raw) != 16) {
		return ""
	}
	// Each 32-bit word is the kernel's, printed as a number: its bytes
	// in memory order are those of the address.
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(raw[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(port)).String()
}

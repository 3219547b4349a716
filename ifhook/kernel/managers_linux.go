package kernel

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
	"golang.org/x/sys/unix"
)

// dhcpClients are the DHCP clients whose process names a link on its
// command line.
var dhcpClients = map[string]bool{"dhclient": true, "dhcpcd": true, "udhcpc": true, "dhcp6c": true, "dhcpcd-bin": true}

// Managers finds the programs that configure l in the namespace Real acts
// in: a network manager (NetworkManager, systemd-networkd) running there
// and not told to leave l alone, a DHCP client whose command line names l,
// and, in the host's own namespace, ifupdown when it brought l up. Only
// processes in this network namespace count: a client in another
// namespace configures another link of the same name.
func (k *Real) Managers(l *Link) ([]Manager, error) {
	ns, err := k.nsInode()
	if err != nil {
		return nil, err
	}
	var out []Manager
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := "/proc/" + p.Name()
		if inode(dir+"/ns/net") != ns {
			continue
		}
		comm, err := rawfile.Read(dir+"/comm", 64)
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		args := cmdline(dir)
		if name == "busybox" && len(args) > 1 {
			name = args[1] // busybox udhcpc ...
		} else if len(args) > 0 && strings.HasSuffix(args[0], "/udhcpc") {
			name = "udhcpc"
		}
		how := "process " + p.Name()
		switch {
		case name == "NetworkManager":
			if managedByNM(l) {
				out = append(out, Manager{Name: "NetworkManager", PID: pid, How: how})
			}
		case name == "systemd-network" || name == "systemd-networkd":
			if managedByNetworkd(l) {
				out = append(out, Manager{Name: "systemd-networkd", PID: pid, How: how})
			}
		case dhcpClients[name]:
			if namesLink(args, l.Name) {
				out = append(out, Manager{Name: name, PID: pid, How: how})
			}
		}
	}
	// ifupdown keeps no process, only its state, which is the host's.
	if host := inode("/proc/1/ns/net"); host == ns && upByIfupdown(l.Name) {
		out = append(out, Manager{Name: "ifupdown", How: "/run/network/ifstate"})
	}
	return out, nil
}

// nsInode is the inode of the network namespace Real acts in.
func (k *Real) nsInode() (uint64, error) {
	var st unix.Stat_t
	if ns := k.conn.Namespace(); ns.IsOpen() {
		err := unix.Fstat(int(ns), &st)
		return st.Ino, err
	}
	err := unix.Stat("/proc/self/ns/net", &st)
	return st.Ino, err
}

// inode is the inode of a namespace link (/proc/PID/ns/net), 0 when it
// cannot be read (another user's process, one that is gone).
func inode(path string) uint64 {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return 0
	}
	return st.Ino
}

func cmdline(dir string) []string {
	data, err := rawfile.Read(dir+"/cmdline", 64<<10)
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(string(bytes.TrimSuffix(data, []byte{0})), "\x00")
}

// namesLink reports whether a DHCP client's command line is about link
// name: "udhcpc -i eth0", "-ieth0", "--interface=eth0", "dhclient eth0",
// a pid or lease file such as /run/dhclient.eth0.pid.
func namesLink(args []string, name string) bool {
	for i, a := range args {
		switch {
		case i == 0:
		case a == name, a == "-i"+name, strings.HasSuffix(a, "="+name):
			return true
		case strings.Contains(a, "."+name+"."), strings.Contains(a, "-"+name+"."):
			return true
		}
	}
	return false
}

// managedByNM reads NetworkManager's state for the link: a device it was
// told not to manage says managed=0 (or false).
func managedByNM(l *Link) bool {
	data, err := rawfile.Read("/run/NetworkManager/devices/"+strconv.Itoa(l.Index), 64<<10)
	if err != nil {
		return true // NetworkManager manages every device it is not told to leave
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		if k == "managed" && (v == "0" || v == "false") {
			return false
		}
	}
	return true
}

// managedByNetworkd reads systemd-networkd's state for the link: one no
// .network file matches is "unmanaged".
func managedByNetworkd(l *Link) bool {
	data, err := rawfile.Read("/run/systemd/netif/links/"+strconv.Itoa(l.Index), 64<<10)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		if k == "ADMIN_STATE" {
			return v != "unmanaged"
		}
	}
	return false
}

// upByIfupdown reports whether ifupdown brought the link up: it is in
// /run/network/ifstate ("eth0=eth0"), or has its own ifstate.eth0 file
// (ifupdown2, newer ifupdown).
func upByIfupdown(name string) bool {
	if data, err := rawfile.Read("/run/network/ifstate."+name, 4096); err == nil && len(bytes.TrimSpace(data)) > 0 {
		return true
	}
	data, err := rawfile.Read("/run/network/ifstate", 1<<20)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, _, _ := strings.Cut(strings.TrimSpace(line), "="); k == name {
			return true
		}
	}
	return false
}

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// dhcpBench measures what serving DHCP costs ifup and ifdown: the same
// nat bridge br0, set up once with a [bridges.br0.dhcp] table (its dnsmasq
// running), joined by TAPs under a policy with the table and under one
// without. Each call runs under a stand-in for QEMU (a copy of /bin/sh
// named qemu-system-x86_64 whose command line names the VM and its MAC),
// so that ifhook knows the guest, as under QEMU, and the DHCP ifup does
// all it does for a guest: the dnsmasq check, the VM's address from the
// book and the hosts entry; ifdown removes the entry and looks for a
// lease to release. 32 VM names take turns, as VMs restarting on a host.
func dhcpBench(h *netlink.Handle, work, ifup, ifdown string, env []string, rounds int) {
	// dnsmasq's user reads the hosts entries: its directories must be
	// reachable (MkdirTemp makes 0700).
	check(os.Chmod(work, 0o755))
	base := "bridge = \"br0\"\n[bridges.br0]\nmodel = \"nat\"\naddress = \"192.0.2.1/24\"\n"
	plain := filepath.Join(work, "plain.toml")
	withDHCP := filepath.Join(work, "dhcp.toml")
	check(os.WriteFile(plain, []byte(base), 0o644))
	check(os.WriteFile(withDHCP, []byte(base+"[bridges.br0.dhcp]\nrange = \"192.0.2.100-192.0.2.250\"\n"), 0o644))
	data := filepath.Join(work, "data")
	envFor := func(policy string) []string {
		out := []string{"IFHOOK_CONFIG=" + policy, "IFHOOK_DATA_DIR=" + data}
		for _, e := range env {
			if !strings.HasPrefix(e, "IFHOOK_CONFIG=") {
				out = append(out, e)
			}
		}
		return out
	}
	ifhook := filepath.Join(work, "ifhook")
	target, err := os.Readlink(ifup)
	check(err)
	check(os.Symlink(target, ifhook))
	_, err = run([]string{ifhook, "setup", "br0"}, envFor(withDHCP))
	check(err)
	defer run([]string{ifhook, "teardown", "br0"}, envFor(withDHCP))

	fake := filepath.Join(work, "qemu-system-x86_64")
	copyFile("/bin/sh", fake)
	vm := func(tap string) (string, string) {
		var n int
		fmt.Sscanf(tap[strings.LastIndexByte(tap, '-')+1:], "%d", &n)
		return fmt.Sprintf("vm%d", n%32), fmt.Sprintf("52:54:00:00:01:%02x", n%32)
	}
	underQEMU := func(prog string) func(string) []string {
		return func(tap string) []string {
			name, mac := vm(tap)
			return []string{fake, "-c", prog + " " + tap, "-name", name, "-nic", "tap,ifname=" + tap + ",mac=" + mac}
		}
	}
	cs := []contender{
		{"nat bridge", underQEMU(ifup), envFor(plain), underQEMU(ifdown)},
		{"nat bridge + DHCP", underQEMU(ifup), envFor(withDHCP), underQEMU(ifdown)},
		{"nat, no guest known", func(t string) []string { return []string{ifup, t} }, envFor(plain), func(t string) []string { return []string{ifdown, t} }},
		{"nat + DHCP, no guest", func(t string) []string { return []string{ifup, t} }, envFor(withDHCP), func(t string) []string { return []string{ifdown, t} }},
	}
	fmt.Printf("\n== DHCP: %d calls each; the first two under a stand-in QEMU (sh) naming the VM and its MAC\n", rounds)
	taps := make([][]string, len(cs))
	for i := range cs {
		taps[i] = makeTAPs(h, fmt.Sprintf("d%d", i), rounds)
	}
	up, down := measure(cs, taps, rounds, nil)
	report("ifup (fresh TAP)", cs, up, false)
	report("ifdown (attached TAP)", cs, down, true)
	for i := range cs {
		deleteTAPs(h, taps[i])
	}
	fmt.Println("(vs ip: against the first row, the nat bridge without DHCP)")
}

func copyFile(from, to string) {
	src, err := os.Open(from)
	check(err)
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	check(err)
	_, err = io.Copy(dst, src)
	check(err)
	check(dst.Close())
}

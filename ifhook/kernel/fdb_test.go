package kernel

import (
	"bytes"
	"net"
	"os/exec"
	"testing"

	"github.com/ifhook/ifhook/ifhook/nstest"
)

func TestMain(m *testing.M) { nstest.GuardRootNS(m) }

// run runs a command (ip, bridge) inside ns.
func run(t *testing.T, ns *nstest.NS, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := ns.Run(cmd); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out.String())
	}
}

func hw(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// TestLearnedMACsReal: the bridge's dynamic entries, on the right ports;
// its local and static ones, and other bridges', left out.
func TestLearnedMACsReal(t *testing.T) {
	ns := nstest.New(t)
	ns.AddBridge(t, "br0")
	ns.AddBridge(t, "br1")
	for _, p := range [][2]string{{"pa", "br0"}, {"pb", "br0"}, {"pc", "br1"}} {
		ns.AddVeth(t, p[0], p[0]+"-peer")
		run(t, ns, "ip", "link", "set", p[0], "master", p[1], "up")
		run(t, ns, "ip", "link", "set", p[0]+"-peer", "up")
	}
	run(t, ns, "ip", "link", "set", "br0", "up")
	for _, args := range [][]string{
		{"fdb", "add", "52:54:00:00:00:0a", "dev", "pa", "master", "dynamic"},
		{"fdb", "add", "52:54:00:00:00:0b", "dev", "pb", "master", "dynamic"},
		{"fdb", "add", "52:54:00:00:00:0c", "dev", "pb", "master", "static"},
		{"fdb", "add", "52:54:00:00:00:0d", "dev", "pc", "master", "dynamic"},
	} {
		run(t, ns, "bridge", args...)
	}
	k, err := OpenAt(ns.NsHandle())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	br, _ := k.LinkByName("br0")
	pa, _ := k.LinkByName("pa")
	pb, _ := k.LinkByName("pb")
	got, err := k.LearnedMACs(br.Index)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"52:54:00:00:00:0a": pa.Index, "52:54:00:00:00:0b": pb.Index}
	// The peers send (IPv6 neighbour discovery) as soon as they are up:
	// the bridge learns them for real.
	for _, p := range []string{"pa", "pb"} {
		if l, err := k.LinkByName(p + "-peer"); err == nil {
			want[l.MAC.String()] = map[string]int{"pa": pa.Index, "pb": pb.Index}[p]
		}
	}
	seen := 0
	for _, e := range got {
		port, ok := want[e.MAC.String()]
		if !ok || port != e.Port {
			t.Errorf("entry %v, want only %v", e, want)
		}
		if e.MAC.String() == "52:54:00:00:00:0a" || e.MAC.String() == "52:54:00:00:00:0b" {
			seen++
		}
	}
	if seen != 2 {
		t.Errorf("LearnedMACs = %v, want the two dynamic entries added", got)
	}
}

func TestLearnedMACsModel(t *testing.T) {
	m := NewModel()
	br, _ := m.CreateBridge("br0", BridgeOptions{})
	a := m.AddLink(Link{Name: "a", Kind: "tun", Master: br})
	b := m.AddLink(Link{Name: "b", Kind: "tun", Master: br})
	mac := hw("52:54:00:00:00:01")
	m.Learn(a, mac)
	m.Learn(b, mac) // moves, as in the kernel
	got, _ := m.LearnedMACs(br)
	if len(got) != 1 || got[0].Port != b {
		t.Fatalf("LearnedMACs = %v, want the MAC on b only", got)
	}
	if err := m.SetLink(b, Change{Master: new(int)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.LearnedMACs(br); len(got) != 0 {
		t.Errorf("a port that left keeps its entries: %v", got)
	}
	if _, err := newPartial().LearnedMACs(br); err == nil {
		t.Error("a partial model answered LearnedMACs")
	}
}

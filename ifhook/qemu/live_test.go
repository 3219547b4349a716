package qemu

import (
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// nicLine matches a NIC in the monitor's "info network" output, e.g.
// " \ hub0port0: rtl8139.0: index=0,type=nic,model=rtl8139,macaddr=52:54:00:12:34:57".
var nicLine = regexp.MustCompile(`type=nic,model=([^,\s]+),macaddr=([0-9a-f:]{17})`)

// TestDefaultMACsMatchQEMU starts a paused QEMU whose NICs use QEMU's
// built-in user networking (no TAP, nothing on the host changes), asks its
// monitor for the MACs it gave them, and compares with Parse.
func TestDefaultMACsMatchQEMU(t *testing.T) {
	const bin = "/usr/bin/qemu-system-x86_64"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no %s", bin)
	}
	if testing.Short() {
		t.Skip("starts QEMU")
	}
	args := []string{bin, "-S", "-nodefaults", "-display", "none", "-machine", "pc", "-accel", "tcg", "-monitor", "stdio",
		"-device", "e1000,netdev=u1,id=kv1", "-netdev", "user,id=u1",
		"-device", `{"driver":"e1000","netdev":"u2","id":"json1"}`, "-netdev", "user,id=u2",
		"-net", "nic,model=rtl8139", "-net", "user",
		"-nic", "user,model=virtio-net-pci",
		"-device", "rtl8139,mac=52:54:00:12:34:59,id=explicit",
		"-device", "e1000,id=lone",
		"-nic", "user,model=e1000,mac=52:54:00:12:34:56",
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = strings.NewReader("info network\nquit\n")
	done := make(chan struct{})
	timer := time.AfterFunc(20*time.Second, func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill() // the QEMU this test started, by PID
		}
	})
	out, err := cmd.CombinedOutput()
	close(done)
	timer.Stop()
	if err != nil {
		t.Skipf("QEMU did not run: %v: %s", err, out)
	}
	var fromQEMU []string
	for _, m := range nicLine.FindAllStringSubmatch(string(out), -1) {
		fromQEMU = append(fromQEMU, m[1]+" "+m[2])
	}
	if len(fromQEMU) == 0 {
		t.Skipf("no NICs in QEMU's answer: %s", out)
	}

	vm, err := Parse(args)
	if err != nil {
		t.Fatal(err)
	}
	var fromParse []string
	for _, nic := range vm.NICs {
		fromParse = append(fromParse, nic.Model+" "+nic.MAC.String())
	}
	sort.Strings(fromQEMU)
	sort.Strings(fromParse)
	t.Logf("QEMU's NICs: %q", fromQEMU)
	if strings.Join(fromQEMU, "\n") != strings.Join(fromParse, "\n") {
		t.Errorf("QEMU says:\n%s\nParse says:\n%s", strings.Join(fromQEMU, "\n"), strings.Join(fromParse, "\n"))
	}
}

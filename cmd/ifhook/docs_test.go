package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook"
	"github.com/ifhook/ifhook/ifhook/state"

	"github.com/ifhook/ifhook/ifhook/exit"
)

// TestREADMEExitCodes keeps README's table equal to the one in the code
// (exit.Table), which `ifhook help` prints.
func TestREADMEExitCodes(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	help := Usage()
	for _, c := range exit.Table {
		row := fmt.Sprintf("| %d | %d | %s | %s |", c.Code, c.Code*256, c.Name, c.Meaning)
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row %q", row)
		}
		line := fmt.Sprintf("%3d  status %5d  %-15s %s", c.Code, c.Code*256, c.Name, c.Meaning)
		if !strings.Contains(help, line) {
			t.Errorf("ifhook help lacks %q", line)
		}
	}
}

// listJSONKeys are the keys `ifhook list --json` prints, as the README and
// the man page document them.
var listJSONKeys = []string{"tap", "ifindex", "bridge", "since", "rule", "prev", "set", "vm", "qemu_pid", "guest_mac", "dhcp", "ip", "helper", "uid", "address", "present", "state"}

// TestListJSONKeys checks the full set of keys list --json prints against
// the documented ones, and that both documents name each.
func TestListJSONKeys(t *testing.T) {
	full := ifhook.Listing{Record: state.Record{TAP: "vnet0", Index: 1, Bridge: "br0", Rule: "r", VM: "vm", PID: 1, GuestMAC: "52:54:00:00:00:01", DHCP: true, IP: "192.168.100.5", Helper: true, UID: 1000}, State: "attached", Address: "192.168.100.5"}
	data, _ := json.Marshal(full)
	var got map[string]json.RawMessage
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	want := append([]string(nil), listJSONKeys...)
	sort.Strings(keys)
	sort.Strings(want)
	if !equalStrings(keys, want) {
		t.Fatalf("list --json keys %v, documented %v", keys, want)
	}
	readme, _ := os.ReadFile("../../README.md")
	man := readMan(t)
	for _, k := range listJSONKeys {
		if !strings.Contains(string(readme), "`"+k+"`") {
			t.Errorf("README does not document the list --json key %q", k)
		}
		if !strings.Contains(man, k) {
			t.Errorf("the man page does not document the list --json key %q", k)
		}
	}
}

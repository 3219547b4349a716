package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/policy"
)

// manSource is the man page ifhook(8), rendered at build time by scdoc.
const manSource = "../../docs/ifhook.8.scd"

// manCommands is every way ifhook is run. Each must be a term of the man
// page (a line starting with "*qemu-ifup*", "*ifhook up*", ...) and a line
// of `ifhook help` (indented, then the same words). Add a row for each new
// subcommand.
var manCommands = []string{
	"qemu-ifup",
	"qemu-ifdown",
	"qemu-bridge-helper",
	"ifhook up",
	"ifhook down",
	"ifhook explain",
	"ifhook check",
	"ifhook list",
	"ifhook leases",
	"ifhook gc",
	"ifhook setup",
	"ifhook teardown",
	"ifhook status",
	"ifhook doctor",
	"ifhook mac",
	"ifhook install-hooks",
	"ifhook version",
	"ifhook help",
}

// manPolicyKeys is every policy key, each a term of the man page's POLICY
// section ("*key* = ...").
var manPolicyKeys = []string{
	// top level
	"bridge", "mac_prefix", "tap_mac", "guest_mac",
	// [[rule]]
	"tap", "vm", "mtu",
	// [bridges.NAME]
	"model", "address", "uplink", "snat_to", "stp", "forward_delay",
	"remove_when_empty", "wait_forwarding",
	// [[helper.allow]], [[helper.deny]]
	"user", "group", "bridges",
}

// manSections are the man page's sections, in order.
var manSections = []string{
	"NAME", "SYNOPSIS", "DESCRIPTION", "RUN BY QEMU", "THE BRIDGE HELPER", "COMMANDS", "OPTIONS",
	"POLICY", "EXIT STATUS", "FILES", "ENVIRONMENT", "EXAMPLES", "SEE ALSO",
}

func readMan(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(manSource)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestManCommands: `ifhook help` and the man page name the same commands.
func TestManCommands(t *testing.T) {
	man, help := readMan(t), Usage()
	for _, cmd := range manCommands {
		q := regexp.QuoteMeta(cmd)
		if !regexp.MustCompile(`(?m)^\*` + q + `\*`).MatchString(man) {
			t.Errorf("%s has no term for %q (a line starting with %q)", manSource, cmd, "*"+cmd+"*")
		}
		if !regexp.MustCompile(`(?m)^\s+` + q + `(\s|$)`).MatchString(help) {
			t.Errorf("ifhook help has no line for %q (indented, then %q)", cmd, cmd)
		}
	}
}

// TestManExitCodes: every exit status, with the number QEMU prints for it,
// is in the man page and in `ifhook help`, with the same meaning.
func TestManExitCodes(t *testing.T) {
	man, help := readMan(t), Usage()
	for _, c := range exit.Table {
		entry := fmt.Sprintf("*%d* (QEMU's status %d) %s\n\t%s\n", c.Code, c.Code*256, c.Name, c.Meaning)
		if !strings.Contains(man, entry) {
			t.Errorf("%s lacks the exit status entry %q", manSource, entry)
		}
		line := fmt.Sprintf("%3d  status %5d  %-15s %s", c.Code, c.Code*256, c.Name, c.Meaning)
		if !strings.Contains(help, line) {
			t.Errorf("ifhook help lacks %q", line)
		}
	}
}

// TestManPolicyKeys: every policy key is described.
func TestManPolicyKeys(t *testing.T) {
	man := readMan(t)
	for _, key := range manPolicyKeys {
		if !regexp.MustCompile(`(?m)^\*` + regexp.QuoteMeta(key) + `\* =`).MatchString(man) {
			t.Errorf("%s does not describe the policy key %q (a line starting with %q)", manSource, key, "*"+key+"* =")
		}
	}
}

// TestManPolicyExample: the example in POLICY is a valid policy.
func TestManPolicyExample(t *testing.T) {
	man := readMan(t)
	m := regexp.MustCompile("(?s)\n## Example\n\n```\n(.*?)```\n").FindStringSubmatch(man)
	if m == nil {
		t.Fatalf("%s: no policy example (\"## Example\" and a ``` block)", manSource)
	}
	if _, err := policy.Parse([]byte(m[1]), "ifhook(8) example"); err != nil {
		t.Errorf("the man page's policy example does not parse:\n%v", err)
	}
}

// TestManSections: the source has every section, in order.
func TestManSections(t *testing.T) {
	man := readMan(t)
	var got []string
	for _, line := range strings.Split(man, "\n") {
		if s, ok := strings.CutPrefix(line, "# "); ok {
			got = append(got, s)
		}
	}
	if strings.Join(got, "|") != strings.Join(manSections, "|") {
		t.Errorf("sections of %s:\n got %q\nwant %q", manSource, got, manSections)
	}
}

// TestManRender renders the page with scdoc, as the build does, and checks
// every section made it. Without scdoc it skips, except under CI.
func TestManRender(t *testing.T) {
	scdoc, err := exec.LookPath("scdoc")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("scdoc is not installed (Debian package scdoc); CI must render the man page")
		}
		t.Skip("scdoc is not installed (Debian package scdoc)")
	}
	src, err := os.Open(manSource)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out, errOut bytes.Buffer
	cmd := exec.Command(scdoc)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = src, &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("scdoc: %v: %s", err, errOut.String())
	}
	roff := out.String()
	if strings.TrimSpace(roff) == "" {
		t.Fatal("scdoc rendered nothing")
	}
	if !strings.Contains(roff, `.TH "ifhook" "8"`) {
		t.Errorf("no .TH header for ifhook(8) in scdoc's output")
	}
	for _, s := range manSections {
		if !regexp.MustCompile(`(?m)^\.SH "?` + regexp.QuoteMeta(s) + `"?$`).MatchString(roff) {
			t.Errorf("scdoc's output has no section %s", s)
		}
	}

	// And through man(1), when it is there: what `man ./ifhook.8` shows.
	man, err := exec.LookPath("man")
	if err != nil {
		return
	}
	page := t.TempDir() + "/ifhook.8"
	if err := os.WriteFile(page, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(man, "-l", page)
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat", "LANG=C.UTF-8")
	text, err := cmd.Output()
	if err != nil {
		t.Skipf("man -l did not run here: %v", err)
	}
	for _, s := range manSections {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(s) + `$`).Match(text) {
			t.Errorf("man -l shows no section %s", s)
		}
	}
}

// TestManCommandsAreTheDispatchedOnes keeps the man page's list of
// subcommands equal to the ones run dispatches.
func TestManCommandsAreTheDispatchedOnes(t *testing.T) {
	documented := map[string]bool{}
	for _, c := range manCommands {
		if sub, ok := strings.CutPrefix(c, "ifhook "); ok {
			documented[sub] = true
			if lookup(sub) == nil {
				t.Errorf("the man page documents %q, which run does not dispatch", c)
			}
		}
	}
	for _, c := range commands {
		if !documented[c.name] {
			t.Errorf("run dispatches %q, which the man page's table lacks", c.name)
		}
	}
}

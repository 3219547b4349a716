package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exitCodes is every status ifhook documents.
var exitCodes = map[int]bool{0: true, 1: true, 64: true, 65: true, 69: true, 70: true, 71: true, 73: true, 75: true, 77: true, 78: true}

// dispatchArgs turns fuzz input into argv, or reports false for inputs that
// could reach code that changes links: any name that runs as qemu-ifup or
// qemu-ifdown, the subcommands in changing, and --config (which could name
// a file such as /dev/zero). What is left only reads: usage, help,
// version, check, explain, list, mac, and gc of a temporary state directory.
func dispatchArgs(argv0, rest string) ([]string, bool) {
	args := []string{argv0}
	if rest != "" {
		args = append(args, strings.Split(rest, "\x00")...)
	}
	if len(args) > 6 {
		return nil, false
	}
	prog := filepath.Base(argv0)
	if strings.HasSuffix(prog, "ifup") || strings.HasSuffix(prog, "ifdown") || strings.HasSuffix(prog, "bridge-helper") {
		return nil, false // bridge-helper: makes a TAP, in the test's own namespace
	}
	for _, a := range args[1:] {
		if changing[a] || strings.Contains(a, "config") {
			return nil, false
		}
	}
	return args, true
}

// changing lists the subcommands that change links, addresses, nftables
// or files outside the test's directory, or read the host's network:
// never reached from fuzzing.
var changing = map[string]bool{"up": true, "down": true, "setup": true, "teardown": true, "status": true, "doctor": true, "install-hooks": true}

func FuzzDispatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"ifhook", ""},
		{"ifhook", "help"},
		{"/usr/sbin/ifhook", "version"},
		{"ifhook", "check"},
		{"ifhook", "-v\x00check"},
		{"ifhook", "-x"},
		{"ifhook", "check\x00-h"},
		{"ifhook", "explain\x00a:b"},
		{"ifhook", "explain\x00--json\x00abcdefghijklmnop"},
		{"ifhook", "explain\x00--down\x00ifhookfuzz9"},
		{"ifhook", "explain\x00--json\x00--down\x00lo"},
		{"ifhook", "explain\x00ifhookfuzz9"},
		{"ifhook", "list\x00--json"},
		{"ifhook", "gc"},
		{"ifhook", "nope\x00x"},
		{"ifhook-2", "--\x00version"},
		{"/etc/qemu-ifupx", "vnet0"},
		{"", ""},
		{"/", "x"},
	} {
		f.Add(seed[0], seed[1])
	}
	dir := f.TempDir()
	pol := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(pol, []byte("bridge = \"ifhookfuzz0\"\n[[rule]]\ntap = \"vnet*\"\nmtu = 1400\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	env := map[string]string{
		"IFHOOK_CONFIG":       pol,
		"IFHOOK_STATE_DIR":    filepath.Join(dir, "state"),
		"IFHOOK_BRIDGE_CONF":  filepath.Join(dir, "bridge.conf"),
		"IFHOOK_SYSLOG":       "off",
		"IFHOOK_LOCK_TIMEOUT": "100ms",
	}
	f.Fuzz(func(t *testing.T, argv0, rest string) {
		args, ok := dispatchArgs(argv0, rest)
		if !ok {
			t.Skip("could reach a change")
		}
		r := unitRun(args, env)
		if !exitCodes[r.code] {
			t.Fatalf("%q: undocumented exit %d\nstderr: %q", args, r.code, r.stderr)
		}
		if r.code == 70 || strings.Contains(r.stderr, "internal error") {
			t.Fatalf("%q: internal error (exit %d): %q", args, r.code, r.stderr)
		}
		verbose := false
		for _, a := range args[1:] {
			if strings.HasPrefix(a, "-") && strings.HasPrefix(strings.TrimLeft(a, "-"), "v") {
				verbose = true
			}
		}
		if verbose {
			return // -v may add lines of detail
		}
		n := len(lines(r.stderr))
		switch {
		case r.code == 0:
			if r.stderr != "" {
				t.Errorf("%q: exit 0 with stderr %q", args, r.stderr)
			}
		case r.code == 64:
			if n != 1 {
				t.Errorf("%q: usage error in %d lines: %q", args, n, r.stderr)
			}
		case r.code == 78 && len(args) > 1 && strings.Contains(strings.Join(args, " "), "check"):
			// check prints a line per problem
		default:
			if n != 1 || !strings.HasPrefix(r.stderr, "ifhook: ") {
				t.Errorf("%q: exit %d, stderr is not one \"ifhook: \" line: %q", args, r.code, r.stderr)
			}
		}
	})
}

package main

// Pure tests of run: a fake environment, temporary files, and only paths
// that fail (or finish) before anything could change a link, so they need
// no root and no namespace.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/policy"
)

type runOut struct {
	code           int
	stdout, stderr string
}

// unitRun calls run with env as the whole environment.
func unitRun(args []string, env map[string]string) runOut {
	var out, errb bytes.Buffer
	code := run(args, func(k string) string { return env[k] }, &out, &errb)
	return runOut{code, out.String(), errb.String()}
}

// unitEnv returns an environment with a good policy (naming a bridge that
// does not exist), a state directory that does not exist yet, and syslog off.
func unitEnv(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	return map[string]string{
		"IFHOOK_CONFIG":      writePolicy(t, dir, "good.toml", "bridge = \"ifhookunit0\"\n[[rule]]\ntap = \"vnet*\"\n"),
		"IFHOOK_STATE_DIR":   filepath.Join(dir, "state"),
		"IFHOOK_BRIDGE_CONF": filepath.Join(dir, "bridge.conf"),
		"IFHOOK_SYSLOG":      "off",
	}
}

func writePolicy(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// checkFailure asserts the output of a failed run: exactly one message
// line, and nothing on stdout.
func checkFailure(t *testing.T, r runOut, wantCode int, wantLine string) {
	t.Helper()
	if r.code != wantCode {
		t.Fatalf("exit %d, want %d\nstdout: %q\nstderr: %q", r.code, wantCode, r.stdout, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	msg := r.stderr
	got := lines(msg)
	switch {
	case wantLine == "" && len(got) == 0:
	case len(got) != 1:
		t.Errorf("stderr message is %d lines, want 1: %q", len(got), msg)
	case got[0] != wantLine:
		t.Errorf("stderr line = %q\n want %q", got[0], wantLine)
	}
}

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // the one line on stderr
	}{
		{"unknown program", []string{"/usr/bin/frob"}, `ifhook: run as "frob"; want a name ending in ifup, ifdown or bridge-helper (qemu-ifup, qemu-ifdown, qemu-bridge-helper) or ifhook; ` + usageLine()},
		{"unknown program with a TAP", []string{"qemu-ifupx", "vnet0"}, `ifhook: run as "qemu-ifupx"; want a name ending in ifup, ifdown or bridge-helper (qemu-ifup, qemu-ifdown, qemu-bridge-helper) or ifhook; ` + usageLine()},
		{"empty argv0", []string{""}, `ifhook: run as "."; want a name ending in ifup, ifdown or bridge-helper (qemu-ifup, qemu-ifdown, qemu-bridge-helper) or ifhook; ` + usageLine()},
		{"qemu-ifup without a TAP", []string{"/etc/qemu-ifup"}, "ifhook: up: want exactly one argument, the TAP's name (QEMU passes it); got 0 (run 'ifhook help')"},
		{"qemu-ifup with two", []string{"/etc/qemu-ifup", "vnet0", "vnet1"}, "ifhook: up: want exactly one argument, the TAP's name (QEMU passes it); got 2 (run 'ifhook help')"},
		{"qemu-ifdown without a TAP", []string{"qemu-ifdown"}, "ifhook: down: want exactly one argument, the TAP's name (QEMU passes it); got 0 (run 'ifhook help')"},
		{"qemu-ifdown with three", []string{"/usr/libexec/ifhook/qemu-ifdown", "a", "b", "c"}, "ifhook: down: want exactly one argument, the TAP's name (QEMU passes it); got 3 (run 'ifhook help')"},
		{"no subcommand", []string{"ifhook"}, "ifhook: no subcommand; " + usageLine()},
		{"no argv at all", nil, "ifhook: no subcommand; " + usageLine()},
		{"versioned name, no subcommand", []string{"/opt/ifhook-1.2"}, "ifhook: no subcommand; " + usageLine()},
		{"only flags", []string{"ifhook", "-v"}, "ifhook: no subcommand; " + usageLine()},
		{"unknown subcommand", []string{"ifhook", "frobnicate"}, `ifhook: unknown subcommand "frobnicate"; ` + usageLine()},
		{"unknown subcommand after flags", []string{"ifhook", "-v", "--config", "/x", "nope"}, `ifhook: unknown subcommand "nope"; ` + usageLine()},
		{"bad flag", []string{"ifhook", "-x"}, "ifhook: flag provided but not defined: -x (run 'ifhook help')"},
		{"bad subcommand flag", []string{"ifhook", "check", "--json"}, "ifhook: check: flag provided but not defined: -json (run 'ifhook help')"},
		{"flag without its value", []string{"ifhook", "--config"}, "ifhook: flag needs an argument: -config (run 'ifhook help')"},
		{"empty config", []string{"ifhook", "--config", "", "check"}, `ifhook: invalid value "" for flag -config: empty file name (run 'ifhook help')`},
		{"bad boolean", []string{"ifhook", "-v=maybe", "check"}, `ifhook: invalid boolean value "maybe" for -v: parse error (run 'ifhook help')`},
		{"up without a TAP", []string{"ifhook", "up"}, "ifhook: up: want one TAP name; got 0 argument(s) (run 'ifhook help')"},
		{"down with two", []string{"ifhook", "down", "a", "b"}, "ifhook: down: want one TAP name; got 2 argument(s) (run 'ifhook help')"},
		{"explain without a TAP", []string{"ifhook", "explain", "--json"}, "ifhook: explain: want one TAP name; got 0 argument(s) (run 'ifhook help')"},
		{"check with an argument", []string{"ifhook", "check", "extra"}, "ifhook: check: want no arguments; got 1 argument(s) (run 'ifhook help')"},
		{"list with an argument", []string{"ifhook", "list", "--json", "x"}, "ifhook: list: want no arguments; got 1 argument(s) (run 'ifhook help')"},
		{"gc with an argument", []string{"ifhook", "gc", "x"}, "ifhook: gc: want no arguments; got 1 argument(s) (run 'ifhook help')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := unitEnv(t)
			r := unitRun(tt.args, env)
			checkFailure(t, r, 64, tt.want)
			if _, err := os.Stat(env["IFHOOK_STATE_DIR"]); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a usage error created the state directory (stat: %v)", err)
			}
		})
	}
}

// TestRunFlagWithNewline: an unknown flag holding a newline must not break
// the one-line message. (Found by FuzzDispatch:
// testdata/fuzz/FuzzDispatch/5b9785649ec630ba.)
func TestRunFlagWithNewline(t *testing.T) {
	r := unitRun([]string{"ifhook", "-\n"}, unitEnv(t))
	checkFailure(t, r, 64, `ifhook: flag provided but not defined: -\n (run 'ifhook help')`)
}

func TestRunHelp(t *testing.T) {
	r := unitRun([]string{"ifhook", "help"}, unitEnv(t))
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("ifhook help: exit %d, stderr %q", r.code, r.stderr)
	}
	if r.stdout != Usage() {
		t.Errorf("ifhook help printed %q, want Usage()", r.stdout)
	}
	for _, sub := range []string{"up", "down", "explain", "check", "list", "gc", "version", "help"} {
		if !regexp.MustCompile(`(?m)^  ifhook ` + sub + `\b`).MatchString(r.stdout) {
			t.Errorf("help does not describe \"ifhook %s\"", sub)
		}
	}
	for _, name := range []string{"qemu-ifup TAP", "qemu-ifdown TAP", "IFHOOK_CONFIG", "IFHOOK_STATE_DIR", "IFHOOK_VERBOSE", "IFHOOK_LOCK_TIMEOUT", "IFHOOK_SYSLOG", policy.DefaultPath, "--config FILE", "-v, --verbose"} {
		if !strings.Contains(r.stdout, name) {
			t.Errorf("help does not mention %q", name)
		}
	}
	for _, c := range []struct {
		code int
		name string
	}{{0, "EX_OK"}, {64, "EX_USAGE"}, {65, "EX_DATAERR"}, {69, "EX_UNAVAILABLE"}, {70, "EX_SOFTWARE"}, {71, "EX_OSERR"}, {73, "EX_CANTCREAT"}, {75, "EX_TEMPFAIL"}, {77, "EX_NOPERM"}, {78, "EX_CONFIG"}} {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^ +%d +status +%d +%s +\S`, c.code, c.code*256, c.name))
		if !re.MatchString(r.stdout) {
			t.Errorf("help lacks a line for exit %d (status %d, %s)", c.code, c.code*256, c.name)
		}
	}
	if n := strings.Count(r.stdout, "  status "); n != len(exit.Table) {
		t.Errorf("help lists %d exit statuses, ExitCodes has %d", n, len(exit.Table))
	}

	for _, args := range [][]string{{"ifhook", "-h"}, {"ifhook", "--help"}, {"ifhook", "check", "-help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := unitRun(args, unitEnv(t))
			if r.code != 0 || r.stdout != Usage() {
				t.Errorf("exit %d, stdout %q; want 0 and Usage()", r.code, r.stdout)
			}
			if r.stderr != "" {
				t.Errorf("stderr = %q, want nothing", r.stderr)
			}
		})
	}
}

func TestRunVersion(t *testing.T) {
	r := unitRun([]string{"/usr/sbin/ifhook", "version"}, unitEnv(t))
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	want := regexp.MustCompile(`^ifhook \S+ \(` + regexp.QuoteMeta(runtime.Version()) + `\)\n$`)
	if !want.MatchString(r.stdout) {
		t.Errorf("version printed %q, want %v", r.stdout, want)
	}
	old := version
	version = "1.2.3"
	defer func() { version = old }()
	if r := unitRun([]string{"ifhook", "version"}, unitEnv(t)); r.stdout != "ifhook 1.2.3 ("+runtime.Version()+")\n" {
		t.Errorf("with version stamped: %q", r.stdout)
	}
}

func TestRunCheck(t *testing.T) {
	dir := t.TempDir()
	good := writePolicy(t, dir, "good.toml", "bridge = \"br0\"\n[[rule]]\ntap = \"vnet*\"\nmtu = 9000\n")
	bad := writePolicy(t, dir, "bad.toml", "bridge = 5\nmac_prefix = \"01:00:5e\"\n\ntap_mac = \"random\"\n")
	nl := writePolicy(t, dir, "nl.toml", "\"a\\nb\" = 1\n")
	syntax := writePolicy(t, dir, "syntax.toml", "bridge = \"br0\"\nbridge =\n")
	missing := filepath.Join(dir, "missing.toml")

	t.Run("good file", func(t *testing.T) {
		env := unitEnv(t)
		env["IFHOOK_CONFIG"] = good
		r := unitRun([]string{"ifhook", "check"}, env)
		if r.code != 0 || r.stderr != "" || r.stdout != good+": ok (1 rule(s), 0 bridge(s); bridge = \"br0\")\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("--config wins over IFHOOK_CONFIG", func(t *testing.T) {
		for _, args := range [][]string{{"ifhook", "--config", good, "check"}, {"ifhook", "check", "-config=" + good}} {
			env := unitEnv(t)
			env["IFHOOK_CONFIG"] = bad
			if r := unitRun(args, env); r.code != 0 || !strings.HasPrefix(r.stdout, good+": ok") {
				t.Errorf("%q: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
			}
		}
	})
	t.Run("bad file: one line per problem", func(t *testing.T) {
		env := unitEnv(t)
		env["IFHOOK_CONFIG"] = bad
		r := unitRun([]string{"ifhook", "check"}, env)
		want := []string{
			bad + ":1: bridge: must be a string, not an integer",
			bad + `:2: mac_prefix: mac prefix "01:00:5e" is multicast (lowest bit of the first octet is set)`,
			bad + `:4: tap_mac: "random": want "derive" or "keep"`,
			"ifhook: check: 3 problem(s) in " + bad,
		}
		if r.code != 78 || r.stdout != "" {
			t.Errorf("exit %d, stdout %q; want 78, nothing", r.code, r.stdout)
		}
		if got := lines(r.stderr); !equalStrings(want, got) {
			t.Errorf("stderr lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("problem with a newline in it stays on one line", func(t *testing.T) {
		env := unitEnv(t)
		env["IFHOOK_CONFIG"] = nl
		r := unitRun([]string{"ifhook", "check"}, env)
		if got := lines(r.stderr); r.code != 78 || len(got) != 2 || !strings.HasPrefix(got[0], nl+`:1: a\nb: unknown key`) {
			t.Errorf("exit %d, stderr %q; want 78 and two lines", r.code, r.stderr)
		}
	})
	t.Run("syntax error", func(t *testing.T) {
		env := unitEnv(t)
		env["IFHOOK_CONFIG"] = syntax
		r := unitRun([]string{"ifhook", "check"}, env)
		got := lines(r.stderr)
		if r.code != 78 || len(got) != 2 || !strings.HasPrefix(got[0], syntax+":2: TOML syntax: ") || got[1] != "ifhook: check: 1 problem(s) in "+syntax {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("missing named file", func(t *testing.T) {
		env := unitEnv(t)
		env["IFHOOK_CONFIG"] = missing
		r := unitRun([]string{"ifhook", "check"}, env)
		want := []string{missing + ": cannot read policy: no such file or directory", "ifhook: check: 1 problem(s) in " + missing}
		if got := lines(r.stderr); r.code != 78 || !equalStrings(want, got) {
			t.Errorf("exit %d, stderr %q; want 78, %q", r.code, r.stderr, want)
		}
	})
	t.Run("built-in policy", func(t *testing.T) {
		if _, err := os.Stat(policy.DefaultPath); err == nil {
			t.Skipf("%s exists here", policy.DefaultPath)
		}
		env := unitEnv(t)
		delete(env, "IFHOOK_CONFIG")
		r := unitRun([]string{"ifhook", "check"}, env)
		if r.code != 0 || r.stdout != policy.BuiltinName+": ok (0 rule(s), 0 bridge(s); bridge = \"auto\")\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("the shipped example", func(t *testing.T) {
		const example = "../../config.toml.example"
		if _, err := os.Stat(example); err != nil {
			t.Skip("no config.toml.example")
		}
		env := unitEnv(t)
		env["IFHOOK_CONFIG"] = example
		if r := unitRun([]string{"ifhook", "check"}, env); r.code != 0 {
			t.Errorf("ifhook check of the example: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// TestRunBadTAP: a bad TAP name is exit 65 before anything else is looked
// at: neither the (missing) policy nor the state directory.
func TestRunBadTAP(t *testing.T) {
	tests := []struct {
		tap  string
		want string
	}{
		{"a:b", `interface name contains ':'`},
		{"abcdefghijklmnop", "interface name is 16 bytes, longer than 15"},
		{"", "empty interface name"},
		{"a b", "interface name contains whitespace"},
		{"x/y", `interface name contains '/'`},
		{".", `"." and ".." are not interface names`},
		{"tap%d", `interface name contains '%'`},
		{"v\nx: y", "interface name contains whitespace"},
		{"\x1b[2J", "interface name contains a control character"},
	}
	for _, prog := range []string{"/etc/qemu-ifup", "/etc/qemu-ifdown"} {
		op := map[string]string{"/etc/qemu-ifup": "up", "/etc/qemu-ifdown": "down"}[prog]
		for _, tt := range tests {
			t.Run(op+" "+fmt.Sprintf("%q", tt.tap), func(t *testing.T) {
				env := unitEnv(t)
				env["IFHOOK_CONFIG"] = filepath.Join(t.TempDir(), "missing.toml") // 78 if it were read
				r := unitRun([]string{prog, tt.tap}, env)
				subject := op
				if tt.tap != "" {
					subject += " " + fmt.Sprintf("%q", tt.tap)
				}
				checkFailure(t, r, 65, "ifhook: "+subject+": "+tt.want)
				if _, err := os.Stat(env["IFHOOK_STATE_DIR"]); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the state directory was created (stat: %v)", err)
				}
			})
		}
	}
	t.Run("ifhook up", func(t *testing.T) {
		r := unitRun([]string{"ifhook", "up", "a:b"}, unitEnv(t))
		checkFailure(t, r, 65, `ifhook: up "a:b": interface name contains ':'`)
	})
	t.Run("ifhook explain", func(t *testing.T) {
		env := unitEnv(t)
		r := unitRun([]string{"ifhook", "explain", "a:b"}, env)
		checkFailure(t, r, 65, `ifhook: explain "a:b": interface name contains ':'`)
	})
}

func TestRunLockTimeoutEnv(t *testing.T) {
	for _, v := range []string{"garbage", "0", "-1s", "10"} {
		for _, args := range [][]string{{"/etc/qemu-ifup", "vnet0"}, {"ifhook", "check"}, {"ifhook", "version"}} {
			t.Run(v+" "+strings.Join(args, " "), func(t *testing.T) {
				env := unitEnv(t)
				env["IFHOOK_LOCK_TIMEOUT"] = v
				r := unitRun(args, env)
				checkFailure(t, r, 64, fmt.Sprintf("ifhook: IFHOOK_LOCK_TIMEOUT=%q is not a positive duration like 10s", v))
				if r.stderr != fmt.Sprintf("ifhook: IFHOOK_LOCK_TIMEOUT=%q is not a positive duration like 10s\n", v) {
					t.Errorf("stderr = %q, want only the one line (no usage: the command line was fine)", r.stderr)
				}
			})
		}
	}
	t.Run("valid", func(t *testing.T) {
		env := unitEnv(t)
		env["IFHOOK_LOCK_TIMEOUT"] = "250ms"
		if r := unitRun([]string{"ifhook", "check"}, env); r.code != 0 {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// TestRunBrokenPolicy: with a broken policy, ifup, ifdown and explain stop
// at loading it (before any netlink), exit 78, and say where.
func TestRunBrokenPolicy(t *testing.T) {
	dir := t.TempDir()
	bad := writePolicy(t, dir, "bad.toml", "bridge = 5\ntap_mac = \"random\"\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"/etc/qemu-ifup", "vnet0"}, "ifhook: up vnet0: policy: " + bad + ":1: bridge: must be a string, not an integer (and 1 more; run 'ifhook check')"},
		{[]string{"/etc/qemu-ifdown", "vnet0"}, "ifhook: down vnet0: policy: " + bad + ":1: bridge: must be a string, not an integer (and 1 more; run 'ifhook check')"},
		{[]string{"ifhook", "explain", "vnet0"}, "ifhook: explain vnet0: policy: " + bad + ":1: bridge: must be a string, not an integer (and 1 more; run 'ifhook check')"},
		{[]string{"ifhook", "explain", "--down", "--json", "vnet0"}, "ifhook: explain vnet0: policy: " + bad + ":1: bridge: must be a string, not an integer (and 1 more; run 'ifhook check')"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			env := unitEnv(t)
			env["IFHOOK_CONFIG"] = bad
			r := unitRun(tt.args, env)
			checkFailure(t, r, 78, tt.want)
			if _, err := os.Stat(env["IFHOOK_STATE_DIR"]); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the state directory was created (stat: %v)", err)
			}
		})
	}
	t.Run("missing named policy", func(t *testing.T) {
		env := unitEnv(t)
		missing := filepath.Join(dir, "missing.toml")
		env["IFHOOK_CONFIG"] = missing
		r := unitRun([]string{"/etc/qemu-ifup", "vnet0"}, env)
		checkFailure(t, r, 78, "ifhook: up vnet0: policy: "+missing+": cannot read policy: no such file or directory")
	})
}

// TestRunSyslog: a refused ifup is also reported to syslog, one datagram
// at error priority (daemon.err = 27).
func TestRunSyslog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Skipf("cannot listen on a unixgram socket: %v", err)
	}
	defer conn.Close()
	env := unitEnv(t)
	env["IFHOOK_SYSLOG"] = sock
	r := unitRun([]string{"/etc/qemu-ifup", "a:b"}, env)
	checkFailure(t, r, 65, `ifhook: up "a:b": interface name contains ':'`)

	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("nothing reached syslog: %v", err)
	}
	re := regexp.MustCompile(`^<27>ifhook\[\d+\]: up "a:b": interface name contains ':'$`)
	if !re.Match(buf[:n]) {
		t.Errorf("syslog got %q, want %v", buf[:n], re)
	}
}

package install

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run the repository's install.sh into temporary DESTDIRs and
// hold it to what the package promises: the files it installs, that
// running it twice changes nothing, that --uninstall removes everything
// and puts back what it replaced, and that its /etc/qemu-ifup handling is
// exactly Link's and Unlink's.

const repo = "../.."

// installSH runs install.sh with PREFIX=/usr into destdir, plus env.
func installSH(t *testing.T, destdir string, env []string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	cmd := exec.Command("sh", append([]string{filepath.Join(repo, "install.sh")}, args...)...)
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "DESTDIR", "PREFIX", "SYSCONFDIR", "IFHOOK_HOOKS", "IFHOOK_BINARY", "IFHOOK_VERSION", "SYSTEMD":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "DESTDIR="+destdir, "PREFIX=/usr")
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.ReplaceAll(out.String(), destdir, "ROOT"), err
}

// fakeBinary is enough for install.sh when only the hooks are compared.
func fakeBinary(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "ifhook")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho fake\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// realBinary builds ifhook (CGO_ENABLED=0, as install.sh does) once per
// test run.
func realBinary(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build ifhook with")
	}
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "ifhook-installsh-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "ifhook")
		cmd := exec.Command(goCmd, "build", "-trimpath", "-ldflags", "-X main.version=installsh-test", "-o", built.path, "./cmd/ifhook")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// manPageExpected says whether install.sh can install the man page here:
// scdoc renders it, or a packager rendered docs/ifhook.8 already.
func manPageExpected(t *testing.T) bool {
	if _, err := exec.LookPath("scdoc"); err == nil {
		return true
	}
	src, err1 := os.Stat(filepath.Join(repo, "docs/ifhook.8.scd"))
	page, err2 := os.Stat(filepath.Join(repo, "docs/ifhook.8"))
	if err1 == nil && err2 == nil && !src.ModTime().After(page.ModTime()) {
		return true
	}
	if os.Getenv("CI") != "" {
		t.Fatal("scdoc is not installed (Debian package scdoc); CI must install the man page")
	}
	t.Log("no scdoc: install.sh installs no man page here")
	return false
}

// files lists what is under root that is not a directory, by path relative
// to root, with what tree says of it.
func files(t *testing.T, root string) map[string]string {
	m := tree(t, root)
	for k, v := range m {
		if v == "dir" {
			delete(m, k)
		}
	}
	return m
}

func keys(m map[string]string) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// TestInstallSH installs into an empty DESTDIR with PREFIX=/usr and
// SYSTEMD=yes (what the RPM's %install does, plus the hooks) and checks
// every file, then installs again, then uninstalls.
func TestInstallSH(t *testing.T) {
	binary := realBinary(t)
	root := t.TempDir()
	out, err := installSH(t, root, []string{"IFHOOK_BINARY=" + binary, "SYSTEMD=yes"})
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	want := []string{
		"etc/ifhook/config.toml",
		"etc/qemu-ifdown",
		"etc/qemu-ifup",
		"usr/lib/systemd/system/ifhook-setup.service",
		"usr/lib/tmpfiles.d/ifhook-helper.conf",
		"usr/lib/tmpfiles.d/ifhook.conf",
		"usr/libexec/ifhook/qemu-bridge-helper",
		"usr/libexec/ifhook/qemu-ifdown",
		"usr/libexec/ifhook/qemu-ifup",
		"usr/sbin/ifhook",
	}
	if manPageExpected(t) {
		want = append(want, "usr/share/man/man8/ifhook.8")
		sort.Strings(want)
	}
	got := files(t, root)
	if !reflect.DeepEqual(keys(got), want) {
		t.Fatalf("install.sh installed\n%s\nwant\n%s\noutput:\n%s", strings.Join(keys(got), "\n"), strings.Join(want, "\n"), out)
	}

	read := func(p string) string {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	checks := map[string]string{
		"etc/qemu-ifup":                  "link /usr/sbin/ifhook",
		"etc/qemu-ifdown":                "link /usr/sbin/ifhook",
		"usr/libexec/ifhook/qemu-ifup":   "link ../../sbin/ifhook",
		"usr/libexec/ifhook/qemu-ifdown": "link ../../sbin/ifhook",
		"usr/sbin/ifhook":                "file " + read(binary),
		"etc/ifhook/config.toml":         "file(-rw-r--r--) " + read(filepath.Join(repo, "config.toml.example")),
		"usr/lib/tmpfiles.d/ifhook.conf": "file(-rw-r--r--) " + read(filepath.Join(repo, "packaging/systemd/ifhook.conf")),
		// The bridge helper: a copy, never a link (a file capability is
		// the file's); staged, its owner, mode and capability are the
		// package's to give.
		"usr/libexec/ifhook/qemu-bridge-helper": "file " + read(binary),
		"usr/lib/tmpfiles.d/ifhook-helper.conf": "file(-rw-r--r--) " + read(filepath.Join(repo, "packaging/systemd/ifhook-helper.conf")),
	}
	for rel, w := range checks {
		if got[rel] != w {
			g, ww := got[rel], w
			if len(g) > 80 {
				g, ww = g[:80]+"...", ww[:min(80, len(ww))]+"..."
			}
			t.Errorf("%s: got %q, want %q", rel, g, ww)
		}
	}
	unit := got["usr/lib/systemd/system/ifhook-setup.service"]
	if !strings.HasPrefix(unit, "file(-rw-r--r--) ") || !strings.Contains(unit, "\nExecStart=/usr/sbin/ifhook setup\n") || strings.Contains(unit, "@") {
		t.Errorf("the unit is not ifhook-setup.service.in with @SBINDIR@ = /usr/sbin, mode 0644:\n%s", unit)
	}
	if man, ok := got["usr/share/man/man8/ifhook.8"]; ok && (!strings.HasPrefix(man, "file(-rw-r--r--) ") || !strings.Contains(man, `.TH "ifhook" "8"`)) {
		t.Errorf("the man page is not ifhook(8) rendered, mode 0644: %.200s", man)
	}
	// The libexec hooks resolve inside the tree, wherever it is.
	if p, err := filepath.EvalSymlinks(filepath.Join(root, "usr/libexec/ifhook/qemu-ifup")); err != nil || p != filepath.Join(root, "usr/sbin/ifhook") {
		t.Errorf("usr/libexec/ifhook/qemu-ifup resolves to %q, %v", p, err)
	}
	if v, err := exec.Command(filepath.Join(root, "usr/sbin/ifhook"), "version").Output(); err != nil || !strings.Contains(string(v), "installsh-test") {
		t.Errorf("installed ifhook version = %q, %v", v, err)
	}

	// Again: nothing changes.
	before := tree(t, root)
	out, err = installSH(t, root, []string{"IFHOOK_BINARY=" + binary, "SYSTEMD=yes"})
	if err != nil {
		t.Fatalf("install.sh, second run: %v\n%s", err, out)
	}
	if after := tree(t, root); !reflect.DeepEqual(after, before) {
		t.Errorf("a second install.sh changed the tree:\nbefore %q\nafter  %q", keys(before), keys(after))
	}
	for _, w := range []string{"ROOT/etc/qemu-ifup already links to /usr/sbin/ifhook", "kept the existing ROOT/etc/ifhook/config.toml"} {
		if !strings.Contains(out, w) {
			t.Errorf("second install.sh did not say %q:\n%s", w, out)
		}
	}

	// Uninstall: nothing of ours is left.
	out, err = installSH(t, root, []string{"SYSTEMD=yes"}, "--uninstall")
	if err != nil {
		t.Fatalf("install.sh --uninstall: %v\n%s", err, out)
	}
	if left := files(t, root); len(left) != 0 {
		t.Errorf("install.sh --uninstall left %q\n%s", keys(left), out)
	}
}

// TestInstallSHRestoresForeignHook: a qemu-ifup that was there before
// install.sh comes back as it was (content, mode, time) after --uninstall,
// and a policy the admin changed is kept.
func TestInstallSHRestoresForeignHook(t *testing.T) {
	binary := fakeBinary(t)
	root := t.TempDir()
	up := filepath.Join(root, "etc/qemu-ifup")
	setup(t, root, map[string]string{"etc/qemu-ifup": "file #!/bin/sh\n# QEMU's own\nexit 0\n"})
	if err := os.Chmod(up, 0o750); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(up, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	foreign := files(t, root)

	out, err := installSH(t, root, []string{"IFHOOK_BINARY=" + binary, "SYSTEMD=yes"})
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	got := files(t, root)
	if got["etc/qemu-ifup"] != "link /usr/sbin/ifhook" || got["etc/qemu-ifup.orig"] != foreign["etc/qemu-ifup"] {
		t.Fatalf("after install.sh: qemu-ifup %q, qemu-ifup.orig %q\n%s", got["etc/qemu-ifup"], got["etc/qemu-ifup.orig"], out)
	}
	if !strings.Contains(out, "kept the previous ROOT/etc/qemu-ifup as ROOT/etc/qemu-ifup.orig") {
		t.Errorf("install.sh did not say it kept qemu-ifup:\n%s", out)
	}

	out, err = installSH(t, root, []string{"SYSTEMD=yes"}, "--uninstall")
	if err != nil {
		t.Fatalf("install.sh --uninstall: %v\n%s", err, out)
	}
	if left := files(t, root); !reflect.DeepEqual(left, foreign) {
		t.Errorf("after --uninstall:\n%q\nwant only the foreign hook back:\n%q\n%s", left, foreign, out)
	}
	if fi, err := os.Stat(up); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("the restored qemu-ifup has mtime %v (%v), want %v", fi.ModTime(), err, mtime)
	}

	// A changed policy survives --uninstall.
	if _, err := installSH(t, root, []string{"IFHOOK_BINARY=" + binary, "SYSTEMD=no"}); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(root, "etc/ifhook/config.toml")
	if err := os.WriteFile(policy, []byte("bridge = \"br0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = installSH(t, root, nil, "--uninstall")
	if err != nil {
		t.Fatalf("install.sh --uninstall: %v\n%s", err, out)
	}
	want := map[string]string{"etc/qemu-ifup": foreign["etc/qemu-ifup"], "etc/ifhook/config.toml": "file(-rw-r--r--) bridge = \"br0\"\n"}
	if left := files(t, root); !reflect.DeepEqual(left, want) {
		t.Errorf("after --uninstall with a changed policy:\n%q\nwant\n%q\n%s", left, want, out)
	}
}

// hookEntries keeps what tree says of the hooks (and their .orig).
func hookEntries(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if strings.HasPrefix(k, "etc/qemu-if") {
			out[k] = v
		}
	}
	return out
}

// hookLines keeps install.sh's lines about the hooks in /etc.
func hookLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "ROOT/etc/qemu-if") {
			lines = append(lines, strings.TrimPrefix(l, "install.sh: "))
		}
	}
	return lines
}

// TestInstallSHMatchesLink runs install.sh and Link on the same /etc, and
// install.sh --uninstall and Unlink, in every scenario, and wants the same
// result: the same files, the same refusals, the same words.
func TestInstallSHMatchesLink(t *testing.T) {
	binary := fakeBinary(t)
	for _, sc := range hookScenarios {
		t.Run(sc.name, func(t *testing.T) {
			for _, undo := range []bool{false, true} {
				shRoot, goRoot := t.TempDir(), t.TempDir()
				setup(t, shRoot, sc.before)
				setup(t, goRoot, sc.before)

				var out string
				var shErr error
				if undo {
					out, shErr = installSH(t, shRoot, []string{"SYSTEMD=no"}, "--uninstall")
				} else {
					out, shErr = installSH(t, shRoot, []string{"IFHOOK_BINARY=" + binary, "SYSTEMD=no"})
				}
				o := Options{Binary: "/usr/sbin/ifhook", Root: goRoot}
				var did []string
				var goErr error
				if undo {
					did, goErr = Unlink(o)
				} else {
					did, goErr = Link(o)
				}

				what := "install"
				if undo {
					what = "uninstall"
				}
				if (shErr == nil) != (goErr == nil) {
					t.Fatalf("%s: install.sh: %v, Go: %v\n%s", what, shErr, goErr, out)
				}
				shLines := hookLines(out)
				var goLines []string
				for _, l := range did {
					goLines = append(goLines, strings.ReplaceAll(l, goRoot, "ROOT"))
				}
				if goErr != nil {
					if !errors.Is(goErr, ErrConflict) {
						t.Errorf("%s: Go error %v, want ErrConflict", what, goErr)
					}
					msg := strings.ReplaceAll(goErr.Error(), goRoot, "ROOT")
					if len(shLines) != 1 || !strings.HasPrefix(msg, shLines[0]) {
						t.Errorf("%s: install.sh said %q, Go %q", what, shLines, msg)
					}
				} else if !reflect.DeepEqual(shLines, goLines) {
					t.Errorf("%s: install.sh said\n%q\nGo said\n%q", what, shLines, goLines)
				}
				sh, g := hookEntries(tree(t, shRoot)), hookEntries(tree(t, goRoot))
				if !reflect.DeepEqual(sh, g) {
					t.Errorf("%s: install.sh made\n%q\nGo made\n%q", what, sh, g)
				}
				if shErr != nil && !reflect.DeepEqual(g, hookEntries(sc.before)) {
					t.Errorf("%s: refused, yet the hooks changed:\n%q\nwant\n%q", what, g, hookEntries(sc.before))
				}
			}
		})
	}
}

package install

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const bin = "/usr/sbin/ifhook"

// tree describes every entry under root: "file CONTENT" (mode 0755),
// "file(MODE) CONTENT" (another mode), "link TARGET" or "dir", by path
// relative to root.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "link " + target
		case fi.IsDir():
			m[rel] = "dir"
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if fi.Mode().Perm() == 0o755 {
				m[rel] = "file " + string(data)
			} else {
				m[rel] = "file(" + fi.Mode().Perm().String() + ") " + string(data)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// setup makes the entries of want (as tree describes them) under root.
func setup(t *testing.T, root string, want map[string]string) {
	t.Helper()
	for rel, what := range want {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		kind, rest, _ := strings.Cut(what, " ")
		switch kind {
		case "link":
			if err := os.Symlink(rest, p); err != nil {
				t.Fatal(err)
			}
		case "file":
			if err := os.WriteFile(p, []byte(rest), 0o755); err != nil {
				t.Fatal(err)
			}
		case "dir":
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("bad entry %q", what)
		}
	}
}

// hookScenarios are the states /etc can be in, shared with the test that
// runs install.sh on each (installsh_test.go). Files are made 0755 with
// the text after "file ".
var hookScenarios = []struct {
	name   string
	before map[string]string
}{
	{"nothing, no etc", nil},
	{"empty etc", map[string]string{"etc": "dir"}},
	{"QEMU's scripts", map[string]string{"etc/qemu-ifup": "file #!/bin/sh\nqemu's ifup\n", "etc/qemu-ifdown": "file #!/bin/sh\nqemu's ifdown\n"}},
	{"only ifup", map[string]string{"etc/qemu-ifup": "file #!/bin/sh\n"}},
	{"foreign symlinks", map[string]string{"etc/qemu-ifup": "link /usr/share/qemu/ifup", "etc/qemu-ifdown": "link qemu-ifdown.real", "etc/qemu-ifdown.real": "file x"}},
	{"another ifhook's links", map[string]string{"etc/qemu-ifup": "link /usr/local/sbin/ifhook", "etc/qemu-ifdown": "link /usr/local/sbin/ifhook"}},
	{"ours already", map[string]string{"etc/qemu-ifup": "link " + bin, "etc/qemu-ifdown": "link " + bin}},
	{"ours, with orig", map[string]string{"etc/qemu-ifup": "link " + bin, "etc/qemu-ifup.orig": "file orig up", "etc/qemu-ifdown": "link " + bin, "etc/qemu-ifdown.orig": "file orig down"}},
	{"half ours", map[string]string{"etc/qemu-ifup": "link " + bin, "etc/qemu-ifup.orig": "file orig up", "etc/qemu-ifdown": "file qemu's ifdown"}},
	{"orig only", map[string]string{"etc/qemu-ifup.orig": "file orig up"}},
	{"conflict on ifup", map[string]string{"etc/qemu-ifup": "file new", "etc/qemu-ifup.orig": "file old", "etc/qemu-ifdown": "file down"}},
	{"conflict on ifdown", map[string]string{"etc/qemu-ifup": "file up", "etc/qemu-ifdown": "file new", "etc/qemu-ifdown.orig": "file old"}},
	{"dangling symlink and dangling orig", map[string]string{"etc/qemu-ifup": "link /nowhere", "etc/qemu-ifup.orig": "link /nowhere/either"}},
	{"dangling symlink", map[string]string{"etc/qemu-ifdown": "link /nowhere"}},
}

func TestLinkUnlink(t *testing.T) {
	root := t.TempDir()
	qemu := map[string]string{
		"etc":             "dir",
		"etc/qemu-ifup":   "file #!/bin/sh\nqemu's ifup\n",
		"etc/qemu-ifdown": "file #!/bin/sh\nqemu's ifdown\n",
	}
	setup(t, root, qemu)
	o := Options{Binary: bin, Root: root}

	did, err := Link(o)
	if err != nil {
		t.Fatal(err)
	}
	up, down := filepath.Join(root, "etc/qemu-ifup"), filepath.Join(root, "etc/qemu-ifdown")
	wantDid := []string{
		"kept the previous " + up + " as " + up + ".orig",
		"linked " + up + " -> " + bin,
		"kept the previous " + down + " as " + down + ".orig",
		"linked " + down + " -> " + bin,
	}
	if !reflect.DeepEqual(did, wantDid) {
		t.Errorf("Link did\n%q\nwant\n%q", did, wantDid)
	}
	linked := map[string]string{
		"etc":                  "dir",
		"etc/qemu-ifup":        "link " + bin,
		"etc/qemu-ifdown":      "link " + bin,
		"etc/qemu-ifup.orig":   qemu["etc/qemu-ifup"],
		"etc/qemu-ifdown.orig": qemu["etc/qemu-ifdown"],
	}
	if got := tree(t, root); !reflect.DeepEqual(got, linked) {
		t.Errorf("after Link:\n%q\nwant\n%q", got, linked)
	}

	// Twice: nothing changes.
	did, err = Link(o)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{up + " already links to " + bin, down + " already links to " + bin}; !reflect.DeepEqual(did, want) {
		t.Errorf("second Link did %q, want %q", did, want)
	}
	if got := tree(t, root); !reflect.DeepEqual(got, linked) {
		t.Errorf("after a second Link:\n%q\nwant\n%q", got, linked)
	}

	did, err = Unlink(o)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"removed " + up, "restored " + up, "removed " + down, "restored " + down}; !reflect.DeepEqual(did, want) {
		t.Errorf("Unlink did %q, want %q", did, want)
	}
	if got := tree(t, root); !reflect.DeepEqual(got, qemu) {
		t.Errorf("after Unlink:\n%q\nwant\n%q", got, qemu)
	}
	// Twice: nothing to do.
	did, err = Unlink(o)
	if err != nil || len(did) != 0 {
		t.Errorf("second Unlink = %q, %v; want nothing done", did, err)
	}
	if got := tree(t, root); !reflect.DeepEqual(got, qemu) {
		t.Errorf("after a second Unlink:\n%q\nwant\n%q", got, qemu)
	}
}

func TestLinkConflictChangesNothing(t *testing.T) {
	root := t.TempDir()
	before := map[string]string{
		"etc":                  "dir",
		"etc/qemu-ifup":        "file up",
		"etc/qemu-ifdown":      "file new",
		"etc/qemu-ifdown.orig": "file old",
	}
	setup(t, root, before)
	did, err := Link(Options{Binary: bin, Root: root})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Link = %q, %v; want ErrConflict", did, err)
	}
	p := filepath.Join(root, "etc/qemu-ifdown")
	if want := p + " exists and so does " + p + ".orig; move one of them away first"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	if len(did) != 0 {
		t.Errorf("Link did %q before refusing", did)
	}
	if got := tree(t, root); !reflect.DeepEqual(got, before) {
		t.Errorf("a refused Link changed things:\n%q\nwant\n%q", got, before)
	}
}

func TestUnlinkLeavesForeignFiles(t *testing.T) {
	root := t.TempDir()
	before := map[string]string{
		"etc":                "dir",
		"etc/qemu-ifup":      "link /usr/local/sbin/ifhook", // another ifhook's
		"etc/qemu-ifup.orig": "file orig",
		"etc/qemu-ifdown":    "file qemu's",
	}
	setup(t, root, before)
	did, err := Unlink(Options{Binary: bin, Root: root})
	if err != nil || len(did) != 0 {
		t.Errorf("Unlink = %q, %v; want nothing done", did, err)
	}
	if got := tree(t, root); !reflect.DeepEqual(got, before) {
		t.Errorf("Unlink changed foreign files:\n%q\nwant\n%q", got, before)
	}
}

func TestEtcDir(t *testing.T) {
	root := t.TempDir()
	o := Options{Binary: bin, Root: root, EtcDir: "/opt/etc"}
	if _, err := Link(o); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"opt": "dir", "opt/etc": "dir", "opt/etc/qemu-ifup": "link " + bin, "opt/etc/qemu-ifdown": "link " + bin}
	if got := tree(t, root); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if got := o.Path("qemu-ifup"); got != filepath.Join(root, "opt/etc/qemu-ifup") {
		t.Errorf("Path = %q", got)
	}
	if got := (Options{}).Path("qemu-ifdown"); got != "/etc/qemu-ifdown" {
		t.Errorf("default Path = %q", got)
	}
}

func TestBadOptions(t *testing.T) {
	root := t.TempDir()
	for _, o := range []Options{
		{Root: root},
		{Binary: "ifhook", Root: root},
		{Binary: bin, Root: root, EtcDir: "etc"},
	} {
		if _, err := Link(o); err == nil {
			t.Errorf("Link(%+v) succeeded", o)
		}
		if _, err := Unlink(o); err == nil {
			t.Errorf("Unlink(%+v) succeeded", o)
		}
	}
	if got := tree(t, root); len(got) != 0 {
		t.Errorf("bad options made %q", got)
	}
}

func TestExecutable(t *testing.T) {
	p, err := Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(p) {
		t.Errorf("Executable() = %q, not absolute", p)
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink != 0 {
		t.Errorf("Executable() = %q: %v, %v; want a file, not a symlink", p, fi, err)
	}
}

package install

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const helperTestGID = 64993

func TestDefaultHelperPath(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup []string // directories (ending in /) and files under root
		want  string
	}{
		{"Debian: /usr/lib/qemu exists", []string{"usr/lib/qemu/", "usr/libexec/"}, "/usr/lib/qemu/qemu-bridge-helper"},
		{"Fedora: /usr/libexec only", []string{"usr/libexec/"}, "/usr/libexec/qemu-bridge-helper"},
		{"Fedora's helper there", []string{"usr/lib/qemu/", "usr/libexec/qemu-bridge-helper"}, "/usr/libexec/qemu-bridge-helper"},
		{"Debian's helper there", []string{"usr/lib/qemu/qemu-bridge-helper", "usr/libexec/qemu-bridge-helper"}, "/usr/lib/qemu/qemu-bridge-helper"},
		{"nothing", nil, "/usr/libexec/qemu-bridge-helper"},
	} {
		root := t.TempDir()
		for _, p := range tc.setup {
			if strings.HasSuffix(p, "/") {
				os.MkdirAll(filepath.Join(root, p), 0o755)
			} else {
				os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
				os.WriteFile(filepath.Join(root, p), []byte("qemu's"), 0o755)
			}
		}
		if got := DefaultHelperPath(root); got != tc.want {
			t.Errorf("%s: DefaultHelperPath = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestLinkHelper: QEMU's own helper is kept as .orig and comes back on
// undo; the copy is root's and the helper group's, 2755, cap_net_admin+ep;
// twice is the same as once; a foreign file with an .orig beside it stops
// everything.
func TestLinkHelper(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root (chown, security.capability), and CI is set")
		}
		t.Skip("needs root: chown and the security.capability attribute")
	}
	binary := realBinary(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/lib/qemu"), 0o755)
	qemus := filepath.Join(root, "usr/lib/qemu/qemu-bridge-helper")
	os.WriteFile(qemus, []byte("QEMU's own helper"), 0o4755)
	o := HelperOptions{Binary: binary, Root: root, GID: helperTestGID, StateDir: "/run/ifhook"}
	for i := range 2 {
		did, err := LinkHelper(o)
		if err != nil {
			t.Fatalf("LinkHelper #%d: %v (%q)", i+1, err, did)
		}
		if err := CheckHelper(qemus, helperTestGID); err != nil {
			t.Fatalf("after LinkHelper #%d: %v", i+1, err)
		}
		if data, _ := os.ReadFile(qemus + OrigSuffix); string(data) != "QEMU's own helper" {
			t.Fatalf("after LinkHelper #%d, the .orig holds %q", i+1, data)
		}
		if i == 0 && (len(did) != 3 || !strings.Contains(did[0], "kept the previous")) {
			t.Errorf("LinkHelper said %q", did)
		}
		if i == 1 && strings.Contains(strings.Join(did, "\n"), "kept the previous") {
			t.Errorf("the second LinkHelper moved the copy aside: %q", did)
		}
	}
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(root, "run/ifhook-helper"), &st)
	if st.Uid != 0 || st.Gid != helperTestGID || st.Mode&0o7777 != 0o2770 {
		t.Errorf("the records' directory: %d:%d %04o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if IsIfhook(qemus + OrigSuffix) {
		t.Error("QEMU's helper is taken for ifhook")
	}
	did, err := UnlinkHelper(o)
	if err != nil || len(did) != 2 {
		t.Fatalf("UnlinkHelper = %q, %v", did, err)
	}
	if data, _ := os.ReadFile(qemus); string(data) != "QEMU's own helper" {
		t.Fatalf("after UnlinkHelper, the helper holds %q", data)
	}
	if did, err := UnlinkHelper(o); err != nil || len(did) != 0 {
		t.Fatalf("a second UnlinkHelper = %q, %v", did, err)
	}
	// A helper that is not ifhook, and an .orig too: nothing moves.
	os.WriteFile(qemus+OrigSuffix, []byte("an older one"), 0o755)
	if _, err := LinkHelper(o); !errors.Is(err, ErrConflict) {
		t.Fatalf("LinkHelper over a foreign helper and its .orig: %v", err)
	}
	if data, _ := os.ReadFile(qemus); string(data) != "QEMU's own helper" {
		t.Fatalf("the conflict changed the helper: %q", data)
	}
}

func TestIsIfhook(t *testing.T) {
	binary := realBinary(t)
	if !IsIfhook(binary) {
		t.Fatalf("%s is not recognized as ifhook", binary)
	}
	dir := t.TempDir()
	// The marker straddling two reads is still found.
	p := filepath.Join(dir, "straddle")
	data := make([]byte, 1<<20-5)
	os.WriteFile(p, append(data, []byte(Marker)...), 0o644)
	if !IsIfhook(p) {
		t.Error("a marker across the read boundary was missed")
	}
	os.WriteFile(p, data, 0o644)
	if IsIfhook(p) || IsIfhook(filepath.Join(dir, "none")) {
		t.Error("a file without the marker, or none, is ifhook")
	}
}

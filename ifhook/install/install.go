// Package install makes and undoes QEMU's hook symlinks, /etc/qemu-ifup and
// /etc/qemu-ifdown pointing at the ifhook binary: the logic of `ifhook
// install-hooks [--undo]`. It does exactly what install.sh does (a test runs
// both and compares): a file that is not ours is kept as FILE.orig and put
// back by Unlink; when both FILE and FILE.orig exist nothing is touched;
// running either twice changes nothing the second time.
//
// It is pure file operations (no netlink, no network), and every path can be
// put under a root directory, like install.sh's DESTDIR, for tests and
// staged installs.
package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultEtcDir is where QEMU looks for its default scripts.
const DefaultEtcDir = "/etc"

// Hooks are the two files QEMU runs by default, in the order they are made.
var Hooks = []string{"qemu-ifup", "qemu-ifdown"}

// OrigSuffix is appended to a file that was in a hook's place.
const OrigSuffix = ".orig"

// ErrConflict is wrapped by the error Link returns when a hook and its
// .orig both exist: moving the hook away would lose one of them.
var ErrConflict = errors.New("both exist")

// Options says where the hooks go and what they point at.
type Options struct {
	// Binary is the symlinks' target, an absolute path as the running
	// system sees it, e.g. /usr/sbin/ifhook. Unlink removes only symlinks
	// whose target is exactly this.
	Binary string
	// Root is put before every path touched (never before Binary), like
	// install.sh's DESTDIR. Empty means the real root.
	Root string
	// EtcDir is the directory of the hooks, like install.sh's SYSCONFDIR.
	// Empty means DefaultEtcDir.
	EtcDir string
}

func (o Options) check() error {
	if o.Binary == "" || !filepath.IsAbs(o.Binary) {
		return fmt.Errorf("install: the binary must be an absolute path, not %q", o.Binary)
	}
	if o.EtcDir != "" && !filepath.IsAbs(o.EtcDir) {
		return fmt.Errorf("install: the etc directory must be an absolute path, not %q", o.EtcDir)
	}
	return nil
}

// Path returns where the hook named name (see Hooks) lives, Root included.
func (o Options) Path(name string) string {
	etc := o.EtcDir
	if etc == "" {
		etc = DefaultEtcDir
	}
	// Plain concatenation, as install.sh does with $DESTDIR$SYSCONFDIR.
	return filepath.Clean(o.Root + "/" + etc + "/" + name)
}

// exists reports whether anything, a dangling symlink included, is at p.
func exists(p string) (bool, error) {
	_, err := os.Lstat(p)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// ours reports whether p is a symlink to the binary.
func (o Options) ours(p string) bool {
	target, err := os.Readlink(p)
	return err == nil && target == o.Binary
}

// Link makes each hook a symlink to o.Binary. A hook that already is one is
// left alone; anything else in its place (a file, another symlink, a
// dangling one) is renamed to HOOK.orig first. When a hook that is not ours
// and its .orig both exist, Link changes nothing at all and returns an
// error wrapping ErrConflict. It returns what it did, one line per action,
// in install.sh's words.
func Link(o Options) ([]string, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	// Check both before touching either: all or nothing.
	for _, h := range Hooks {
		p := o.Path(h)
		if o.ours(p) {
			continue
		}
		here, err := exists(p)
		if err != nil {
			return nil, err
		}
		orig, err := exists(p + OrigSuffix)
		if err != nil {
			return nil, err
		}
		if here && orig {
			return nil, fmt.Errorf("%s exists and so does %s; move one of them away first: %w", p, p+OrigSuffix, ErrConflict)
		}
	}
	var did []string
	for _, h := range Hooks {
		p := o.Path(h)
		if o.ours(p) {
			did = append(did, fmt.Sprintf("%s already links to %s", p, o.Binary))
			continue
		}
		here, err := exists(p)
		if err != nil {
			return did, err
		}
		if here {
			if err := os.Rename(p, p+OrigSuffix); err != nil {
				return did, err
			}
			did = append(did, fmt.Sprintf("kept the previous %s as %s", p, p+OrigSuffix))
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return did, err
		}
		if err := os.Symlink(o.Binary, p); err != nil {
			return did, err
		}
		did = append(did, fmt.Sprintf("linked %s -> %s", p, o.Binary))
	}
	return did, nil
}

// Unlink undoes Link: it removes each hook that is a symlink to o.Binary
// and, where the hook's place is then empty, renames HOOK.orig back. A hook
// that is not ours is left alone, and so is its .orig. It returns what it
// did, one line per action, in install.sh's words.
func Unlink(o Options) ([]string, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	var did []string
	for _, h := range Hooks {
		p := o.Path(h)
		var err error
		if did, err = unlinkOne(p, o.ours(p), did); err != nil {
			return did, err
		}
	}
	return did, nil
}

// unlinkOne removes p when it is ours and, where p's place is then empty,
// renames p.orig back. It appends what it did to did, in install.sh's words.
func unlinkOne(p string, ours bool, did []string) ([]string, error) {
	if ours {
		if err := os.Remove(p); err != nil {
			return did, err
		}
		did = append(did, "removed "+p)
	}
	orig, err := exists(p + OrigSuffix)
	if err != nil {
		return did, err
	}
	here, err := exists(p)
	if err != nil {
		return did, err
	}
	if orig && !here {
		if err := os.Rename(p+OrigSuffix, p); err != nil {
			return did, err
		}
		did = append(did, "restored "+p)
	}
	return did, nil
}

// Executable returns the path of the running binary with symlinks
// resolved, the natural Options.Binary for `ifhook install-hooks`.
func Executable() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

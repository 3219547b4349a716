// Package guest boots real, tiny QEMU guests for end-to-end tests: a Debian
// kernel and an initramfs of busybox, the virtio-net modules and an /init
// script that configures the NIC (static addresses, or a DHCP lease from
// udhcpc, or SLAAC from router advertisements, or both), looks up names
// with nslookup, pings what it is told to, prints one result line per
// thing asked on the serial console and powers off (or stays up to be
// pinged). The guests run inside nstest namespaces, so their TAPs, bridges
// and traffic never reach the host's network.
//
// Everything comes from the host's own Debian packages (see Packages):
// nothing is downloaded. When they are missing the tests skip, or fail when
// CI is set.
//
// Environment:
//
//	IFHOOK_GUEST_CACHE=DIR   keep the built image in DIR across runs
//	IFHOOK_GUEST_ACCEL=tcg   skip the KVM probe (kvm: force KVM)
//	CI=...                   missing prerequisites fail instead of skipping
//
// Typical use, with an ifup script that attaches the TAP somewhere:
//
//	img := guest.Build(t)
//	ns := nstest.New(t)
//	g := img.Start(t, ns, guest.Options{TAP: "tap0", Script: up, Addrs: []string{"192.0.2.10/24"}, Ping: []string{"192.0.2.1"}})
//	res, err := g.Wait(0)
//
// Or, on a bridge with a DHCP server, a guest named "first" (ifhook reads
// the name from QEMU's -name) that takes a lease and looks up a name:
//
//	g := img.Start(t, ns, guest.Options{Name: "first", TAP: "tap0", Script: up, DHCP: true, Resolve: []string{"second.vm"}})
//	res, err := g.Wait(0) // res.DHCP.IP, res.DHCP.Router, res.Resolved("second.vm")
package guest

import (
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Image is a bootable kernel and initramfs. The paths stay valid for the
// life of the test process (or for good, in the IFHOOK_GUEST_CACHE dir).
type Image struct {
	Kernel        string   // for qemu -kernel: vmlinux (PVH) or bzImage
	KernelFormat  string   // which of the two, and why
	Initrd        string   // gzip'd newc cpio, for qemu -initrd
	KernelVersion string   // e.g. 6.1.0-56-amd64
	Modules       []string // loaded by /init, in this order
}

const (
	formatPVH     = "vmlinux (PVH entry)"
	formatBzImage = "bzImage"
)

// Where the host's Debian packages put things.
var (
	bootDir     = "/boot"
	modulesDirs = []string{"/lib/modules", "/usr/lib/modules"}
	busyboxPath = "/bin/busybox"
)

// wantModules are what a virtio-net NIC on PCI needs. Their dependencies
// (virtio, virtio_ring, virtio_pci_{modern,legacy}_dev, net_failover,
// failover) come from modules.dep, so kernels that split or merge them
// differently still work; a module the kernel has built in is skipped.
var wantModules = []string{"virtio_pci", "virtio_net"}

//go:embed init.sh
var initScript []byte

// dhcpScript is udhcpc's script, /bin/ifhook-dhcp in the guest.
//
//go:embed dhcp.sh
var dhcpScript []byte

// buildVersion changes whenever the initramfs layout does, to invalidate
// IFHOOK_GUEST_CACHE entries made by older code.
const buildVersion = "2"

// missingError is a prerequisite not installed here: a reason to skip,
// except under CI.
type missingError struct{ msg string }

func (e *missingError) Error() string { return e.msg }

func missing(format string, args ...any) error {
	return &missingError{fmt.Sprintf(format, args...)}
}

// skipOrFail skips the test for a missing prerequisite, or fails it under
// CI, where the packages are installed on purpose and a skip would hide that
// the end-to-end tests never ran.
func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	var m *missingError
	if !errors.As(err, &m) {
		tb.Fatalf("guest: %v", err)
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("guest: %v (and CI is set, so this is a failure, not a skip; install: %s)", err, Packages)
	}
	tb.Skipf("guest: %v (install: %s)", err, Packages)
}

// Packages are the Debian packages the guests need on the host. xz-utils
// is optional: without it Debian's xz-compressed kernel boots, but seconds
// slower under TCG (see extractVmlinux).
const Packages = "qemu-system-x86 linux-image-amd64 busybox-static xz-utils"

var built struct {
	once sync.Once
	img  *Image
	err  error
}

// Build returns the guest image, assembled once per test process from the
// newest installed kernel, which is decompressed here when possible (see
// extractVmlinux): under TCG that saves seconds on every boot. With
// IFHOOK_GUEST_CACHE set, the image is kept in that directory and reused by
// later runs; otherwise it lives in memory files (memfd) that vanish with
// the process, so no temp dir is ever left behind.
func Build(tb testing.TB) *Image {
	tb.Helper()
	built.once.Do(func() {
		start := time.Now()
		built.img, built.err = build(os.Getenv("IFHOOK_GUEST_CACHE"))
		if built.err == nil {
			tb.Logf("guest: image of kernel %s, %s, modules %v, in %v",
				built.img.KernelVersion, built.img.KernelFormat, built.img.Modules, time.Since(start).Round(time.Millisecond))
		}
	})
	if built.err != nil {
		skipOrFail(tb, built.err)
	}
	return built.img
}

func build(cacheDir string) (*Image, error) {
	kver, kernel, modDir, err := newestKernel()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(busyboxPath); err != nil {
		return nil, missing("no %s (package busybox-static)", busyboxPath)
	}
	mods, err := resolveModules(modDir, wantModules)
	if err != nil {
		return nil, err
	}
	img := &Image{KernelVersion: kver}
	for _, m := range mods {
		img.Modules = append(img.Modules, m.name)
	}

	var dir string
	if cacheDir != "" {
		key, err := cacheKey(kernel, mods)
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(cacheDir, kver+"-"+key)
		img.Initrd = filepath.Join(dir, "initrd.gz")
		for _, f := range []struct{ name, format string }{{"vmlinux", formatPVH}, {"vmlinuz", formatBzImage}} {
			if p := filepath.Join(dir, f.name); fileExists(p) && fileExists(img.Initrd) {
				img.Kernel, img.KernelFormat = p, f.format+" (cached)"
				return img, nil
			}
		}
	}

	initrd, err := buildInitramfs(mods)
	if err != nil {
		return nil, err
	}
	// A copy, not the /boot path: an upgrade of the kernel package during
	// the run must not change what later guests boot.
	bz, err := os.ReadFile(kernel)
	if err != nil {
		return nil, err
	}
	kname, kdata := "vmlinuz", bz
	img.KernelFormat = formatBzImage
	if vmlinux, err := extractVmlinux(bz); err != nil {
		img.KernelFormat += fmt.Sprintf(" (slow boot: %v)", err)
	} else {
		kname, kdata, img.KernelFormat = "vmlinux", vmlinux, formatPVH
	}

	if dir != "" {
		img.Kernel = filepath.Join(dir, kname)
		return img, publishDir(dir, map[string][]byte{kname: kdata, "initrd.gz": initrd})
	}
	if img.Kernel, err = memFile("ifhook-guest-"+kname, kdata); err != nil {
		return nil, err
	}
	if img.Initrd, err = memFile("ifhook-guest-initrd", initrd); err != nil {
		return nil, err
	}
	return img, nil
}

// memFile puts data in a memfd that is never closed, and names it by a
// /proc path that QEMU (our child, same user) can open: a file that lives
// exactly as long as the test process.
func memFile(name string, data []byte) (string, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	// Keep f reachable forever: its finalizer would close the fd.
	memFiles = append(memFiles, f)
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd), nil
}

var memFiles []*os.File

// publishDir writes files into a fresh temp dir next to dir and renames it
// into place, so concurrent test processes (go test ./... runs packages in
// parallel) never see a half-written image; the loser of a race just
// discards its copy.
func publishDir(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil && !fileExists(filepath.Join(dir, "initrd.gz")) {
		return fmt.Errorf("publish guest image: %w", err)
	}
	return nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// cacheKey names a cache entry by what went into it, so a kernel, busybox
// or module upgrade (or a change to this package) makes a new entry.
func cacheKey(kernel string, mods []module) (string, error) {
	h := newHasher()
	h.str(buildVersion)
	h.bytes(initScript)
	h.bytes(dhcpScript)
	// Whether the kernel can be decompressed here decides its format.
	for _, tool := range []string{"xz", "zstd"} {
		p, _ := exec.LookPath(tool)
		h.str(p)
	}
	for _, p := range append([]string{kernel, busyboxPath}, modPaths(mods)...) {
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		h.str(fmt.Sprintf("%s %d %d", p, st.Size(), st.ModTime().UnixNano()))
	}
	return h.sum(), nil
}

func modPaths(mods []module) []string {
	var ps []string
	for _, m := range mods {
		ps = append(ps, m.path)
	}
	return ps
}

// newestKernel finds the newest /boot/vmlinuz-VER that has a module tree.
func newestKernel() (ver, kernel, modDir string, err error) {
	paths, _ := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	var vers []string
	dirs := map[string]string{}
	for _, p := range paths {
		v := strings.TrimPrefix(filepath.Base(p), "vmlinuz-")
		for _, md := range modulesDirs {
			d := filepath.Join(md, v)
			if fileExists(filepath.Join(d, "modules.dep")) {
				vers = append(vers, v)
				dirs[v] = d
				break
			}
		}
	}
	if len(vers) == 0 {
		return "", "", "", missing("no kernel: no %s/vmlinuz-VER with a /lib/modules/VER/modules.dep (package linux-image-amd64)", bootDir)
	}
	sort.Slice(vers, func(i, j int) bool { return versionLess(vers[i], vers[j]) })
	v := vers[len(vers)-1]
	return v, filepath.Join(bootDir, "vmlinuz-"+v), dirs[v], nil
}

// versionLess compares kernel versions the way people read them: runs of
// digits as numbers, so 6.10 > 6.9 and -56 > -9.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ra, rb := leadingRun(a), leadingRun(b)
		if ra != rb {
			da, db := isDigit(ra[0]), isDigit(rb[0])
			switch {
			case da && db:
				na, nb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
				if len(na) != len(nb) {
					return len(na) < len(nb)
				}
				if na != nb {
					return na < nb
				}
			default:
				return ra < rb
			}
		}
		a, b = a[len(ra):], b[len(rb):]
	}
	return len(a) < len(b)
}

func leadingRun(s string) string {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// module is one kernel module file, by its canonical name (underscores).
type module struct {
	name string // e.g. virtio_net
	path string // absolute, possibly .ko.xz/.ko.zst/.ko.gz
}

func modName(path string) string {
	b := filepath.Base(path)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// resolveModules returns want and everything they need, dependencies first,
// from modules.dep (lines "kernel/a.ko: kernel/b.ko kernel/c.ko", each
// listing the module's complete dependency closure). Built-in modules
// (modules.builtin) need nothing.
func resolveModules(modDir string, want []string) ([]module, error) {
	dep, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, missing("no modules.dep in %s: %v", modDir, err)
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(modDir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[modName(l)] = true
		}
	}
	paths := map[string]string{}
	deps := map[string][]string{}
	for _, line := range strings.Split(string(dep), "\n") {
		file, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n := modName(file)
		paths[n] = filepath.Join(modDir, file)
		for _, d := range strings.Fields(rest) {
			deps[n] = append(deps[n], modName(d))
		}
	}

	var out []module
	seen := map[string]bool{}
	var visit func(n string) error
	visit = func(n string) error {
		if seen[n] {
			return nil
		}
		seen[n] = true
		p, ok := paths[n]
		if !ok {
			if builtin[n] {
				return nil
			}
			return missing("kernel module %s not found in %s", n, modDir)
		}
		// modprobe loads a module's listed dependencies last to first;
		// visiting each one's own dependencies first gives the same order
		// whatever the listing.
		ds := deps[n]
		for i := len(ds) - 1; i >= 0; i-- {
			if err := visit(ds[i]); err != nil {
				return err
			}
		}
		out = append(out, module{name: n, path: p})
		return nil
	}
	for _, n := range want {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readModule returns a module's ELF object. Debian 12 ships plain .ko;
// other kernels compress them, and busybox insmod cannot read that, so we
// decompress here: gzip in Go, xz and zstd with their command-line tools
// (Go's library has neither).
func readModule(path string) ([]byte, error) {
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".ko.gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(path, ".ko.xz"):
		return decompressWith("xz", "xz-utils", path)
	case strings.HasSuffix(path, ".ko.zst"):
		return decompressWith("zstd", "zstd", path)
	}
	return nil, fmt.Errorf("kernel module %s: unknown compression", path)
}

func decompressWith(tool, pkg, path string) ([]byte, error) {
	if _, err := exec.LookPath(tool); err != nil {
		return nil, missing("kernel module %s is compressed and %s is not installed (package %s)", path, tool, pkg)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out, err := filter(tool, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

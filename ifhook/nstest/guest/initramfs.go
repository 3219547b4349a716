package guest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
)

// Mode bits of cpio entries (from <sys/stat.h>; the cpio format uses the
// kernel's values, whatever the host's).
const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFCHR = 0o020000
)

// buildInitramfs writes the guest's root filesystem as a gzip'd newc cpio,
// the format the kernel unpacks into its rootfs: busybox, the modules (as
// /lib/modules/NAME.ko plus load.order), /init and udhcpc's script
// /bin/ifhook-dhcp. It is written in Go
// rather than with cpio(1) so that no root, no staging tree and no extra
// package are needed, and the output is byte-for-byte reproducible.
func buildInitramfs(mods []module) ([]byte, error) {
	busybox, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, missing("read %s: %v (package busybox-static)", busyboxPath, err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	w := &cpioWriter{w: zw}
	for _, d := range []string{"bin", "dev", "etc", "lib", "lib/modules", "proc", "sbin", "sys", "tmp", "usr", "usr/bin", "usr/sbin"} {
		w.dir(d)
	}
	// The kernel opens /dev/console for init's stdin/out/err before init can
	// mount devtmpfs: without this node, /init would start with no console.
	w.node("dev/console", sIFCHR|0o600, 5, 1)
	w.file("bin/busybox", 0o755, busybox)
	w.file("init", 0o755, initScript)
	w.file("bin/ifhook-dhcp", 0o755, dhcpScript)
	var order strings.Builder
	for _, m := range mods {
		ko, err := readModule(m.path)
		if err != nil {
			return nil, err
		}
		w.file("lib/modules/"+m.name+".ko", 0o644, ko)
		fmt.Fprintln(&order, m.name)
	}
	w.file("lib/modules/load.order", 0o644, []byte(order.String()))
	w.trailer()
	if w.err != nil {
		return nil, w.err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// cpioWriter writes the "newc" format (magic 070701): a 110-byte ASCII
// header of 13 hex fields, the NUL-terminated name, then the data, both
// padded to 4 bytes. Owner is root, times are zero.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	err error
}

func (c *cpioWriter) dir(name string) { c.entry(name, sIFDIR|0o755, 0, 0, nil) }

func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.entry(name, sIFREG|perm, 0, 0, data)
}

func (c *cpioWriter) node(name string, mode, major, minor uint32) {
	c.entry(name, mode, major, minor, nil)
}

func (c *cpioWriter) trailer() { c.entry("TRAILER!!!", 0, 0, 0, nil) }

func (c *cpioWriter) entry(name string, mode, rmajor, rminor uint32, data []byte) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&sIFDIR != 0 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write(append([]byte(name), 0))
	c.pad(len(hdr) + len(name) + 1)
	c.write(data)
	c.pad(len(data))
}

func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) write(b []byte) {
	if c.err == nil && len(b) > 0 {
		_, c.err = c.w.Write(b)
	}
}

// hasher builds cache keys from length-prefixed fields, so that no two
// different lists of fields hash alike.
type hasher struct{ h hash.Hash }

func newHasher() *hasher { return &hasher{sha256.New()} }

func (h *hasher) bytes(b []byte) { fmt.Fprintf(h.h, "%d:", len(b)); h.h.Write(b) }
func (h *hasher) str(s string)   { h.bytes([]byte(s)) }
func (h *hasher) sum() string {
	return hex.EncodeToString(h.h.Sum(nil))[:16]
}

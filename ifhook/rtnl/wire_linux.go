package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The hot path (qemu-ifup, qemu-ifdown) runs as a fresh process per call,
// so what it costs is mostly what it touches: vishvananda/netlink's socket
// allocates and zeroes a 64 KiB buffer per receive and registers with Go's
// netpoller. Ours is a plain blocking socket and one receive buffer mapped
// once, of which only the pages the kernel writes are ever faulted in.

const recvBufSize = 64 << 10

var ne = binary.NativeEndian

// sock is a blocking NETLINK_ROUTE socket.
type sock struct {
	fd  int
	seq uint32
	buf []byte
}

func openSock() (*sock, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	// Extended ACKs carry the kernel's own reason for a failure ("Device
	// can not be enslaved while up"); kernels without them ignore this.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	return &sock{fd: fd}, nil
}

func (s *sock) close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
	if s.buf != nil {
		unix.Munmap(s.buf)
		s.buf = nil
	}
}

// msg builds one netlink request.
type msg struct{ b []byte }

func newMsg(typ, flags uint16) *msg {
	m := &msg{b: make([]byte, unix.SizeofNlMsghdr, 256)}
	ne.PutUint16(m.b[4:], typ)
	ne.PutUint16(m.b[6:], flags|unix.NLM_F_REQUEST)
	return m
}

// ifinfo appends a struct ifinfomsg.
func (m *msg) ifinfo(index int32, flags, change uint32) {
	var h [unix.SizeofIfInfomsg]byte
	ne.PutUint32(h[4:], uint32(index))
	ne.PutUint32(h[8:], flags)
	ne.PutUint32(h[12:], change)
	m.b = append(m.b, h[:]...)
}

// rtmsg appends a struct rtmsg for a dump of one family.
func (m *msg) rtmsg(family uint8) {
	var h [unix.SizeofRtMsg]byte
	h[0] = family
	m.b = append(m.b, h[:]...)
}

func (m *msg) attr(typ uint16, data []byte) {
	var h [4]byte
	ne.PutUint16(h[0:], uint16(4+len(data)))
	ne.PutUint16(h[2:], typ)
	m.b = append(m.b, h[:]...)
	m.b = append(m.b, data...)
	for len(m.b)%4 != 0 {
		m.b = append(m.b, 0)
	}
}

func (m *msg) u32(typ uint16, v uint32) {
	var d [4]byte
	ne.PutUint32(d[:], v)
	m.attr(typ, d[:])
}

func (m *msg) str(typ uint16, s string) { m.attr(typ, append([]byte(s), 0)) }

// nest starts a nested attribute; end closes it.
func (m *msg) nest(typ uint16) int {
	at := len(m.b)
	m.attr(typ, nil)
	return at
}

func (m *msg) end(at int) { ne.PutUint16(m.b[at:], uint16(len(m.b)-at)) }

// errDumpInterrupted reports a dump the kernel flagged NLM_F_DUMP_INTR.
var errDumpInterrupted = errors.New("dump interrupted")

// do sends m and calls f for each reply message of type want (0: none
// expected, wait for the ACK). It returns the kernel's error, with its
// extended ACK message when there is one.
func (s *sock) do(m *msg, want uint16, f func(payload []byte)) error {
	s.seq++
	seq := s.seq
	ne.PutUint32(m.b[0:], uint32(len(m.b)))
	ne.PutUint32(m.b[8:], seq)
	if err := unix.Sendto(s.fd, m.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("sendto", err)
	}
	if s.buf == nil {
		buf, err := unix.Mmap(-1, 0, recvBufSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return os.NewSyscallError("mmap", err)
		}
		s.buf = buf
	}
	dump := ne.Uint16(m.b[6:])&unix.NLM_F_DUMP == unix.NLM_F_DUMP
	intr := false
	for {
		n, _, err := unix.Recvfrom(s.fd, s.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("recvfrom", err)
		}
		b := s.buf[:n]
		for len(b) >= unix.SizeofNlMsghdr {
			l := int(ne.Uint32(b[0:]))
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return errors.New("malformed netlink message from the kernel")
			}
			typ, flags, mseq := ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:])
			payload := b[unix.SizeofNlMsghdr:l]
			b = b[min(nlmAlign(l), len(b)):]
			if mseq != seq {
				continue // a late answer to an earlier request
			}
			if flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch typ {
			case unix.NLMSG_ERROR:
				return ackError(payload, flags)
			case unix.NLMSG_DONE:
				if len(payload) >= 4 {
					if e := int32(ne.Uint32(payload)); e != 0 {
						return unix.Errno(-e)
					}
				}
				if intr {
					return errDumpInterrupted
				}
				return nil
			case want:
				f(payload)
			}
			if !dump && flags&unix.NLM_F_MULTI == 0 && typ == want {
				return nil
			}
		}
	}
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }
func rtaAlign(n int) int { return (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1) }

// ackError decodes an NLMSG_ERROR: errno 0 is the ACK itself.
func ackError(payload []byte, flags uint16) error {
	if len(payload) < 4 {
		return errors.New("short netlink error message")
	}
	e := int32(ne.Uint32(payload))
	if e == 0 {
		return nil
	}
	var err error = unix.Errno(-e)
	// With NLM_F_ACK_TLVS, attributes follow the echoed request header
	// (the request body is left out: NLM_F_CAPPED).
	if flags&unix.NLM_F_ACK_TLVS != 0 && len(payload) >= 4+unix.SizeofNlMsghdr {
		rest := payload[4:]
		skip := unix.SizeofNlMsghdr
		if flags&unix.NLM_F_CAPPED == 0 {
			skip = nlmAlign(int(ne.Uint32(rest)))
		}
		if skip <= len(rest) {
			eachAttr(rest[skip:], func(typ uint16, v []byte) {
				if typ == unix.NLMSGERR_ATTR_MSG {
					err = fmt.Errorf("%w (%s)", err, unix.ByteSliceToString(v))
				}
			})
		}
	}
	return err
}

// eachAttr calls f for each attribute in b.
func eachAttr(b []byte, f func(typ uint16, v []byte)) {
	for len(b) >= 4 {
		l := int(ne.Uint16(b[0:]))
		if l < 4 || l > len(b) {
			return
		}
		f(ne.Uint16(b[2:])&^unix.NLA_F_NESTED, b[4:l])
		b = b[min(rtaAlign(l), len(b)):]
	}
}

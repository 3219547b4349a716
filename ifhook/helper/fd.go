package helper

import (
	"fmt"

	"github.com/ifhook/ifhook/ifhook/exit"
	"golang.org/x/sys/unix"
)

// CheckSocket refuses a --fd= that is not a unix stream socket, before
// anything is read or made: QEMU and libvirt pass one end of
// socketpair(AF_UNIX, SOCK_STREAM).
func CheckSocket(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return exit.New(exit.Usage, "--fd=%d: %w (QEMU passes one end of a socketpair; run by hand, there is none)", fd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return exit.New(exit.Usage, "--fd=%d is not a socket (QEMU passes one end of a socketpair)", fd)
	}
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || domain != unix.AF_UNIX {
		return exit.New(exit.Usage, "--fd=%d is not a unix socket (QEMU passes one end of a socketpair)", fd)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil || typ != unix.SOCK_STREAM {
		return exit.New(exit.Usage, "--fd=%d is not a stream socket (QEMU passes one end of socketpair(AF_UNIX, SOCK_STREAM))", fd)
	}
	return nil
}

// SendFD sends fd over the unix socket sock as QEMU's recv_fd and
// libvirt's virSocketRecvFD expect it: one data byte, 0, with the
// descriptor in one SCM_RIGHTS message.
func SendFD(sock, fd int) error {
	for {
		err := unix.Sendmsg(sock, []byte{0}, unix.UnixRights(fd), nil, unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// qemu-bridge-helper's words first.
			return exit.Sys(err, "failed to write fd to unix socket %d", sock)
		}
		return nil
	}
}

// RecvFD receives what SendFD sends: what QEMU does, for tests. It
// returns the data bytes and the descriptors, failing unless there is
// exactly one SCM_RIGHTS message.
func RecvFD(sock int) (data []byte, fds []int, err error) {
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return buf[:n], nil, err
	}
	if len(msgs) != 1 {
		return buf[:n], nil, fmt.Errorf("%d control messages, want 1", len(msgs))
	}
	fds, err = unix.ParseUnixRights(&msgs[0])
	return buf[:n], fds, err
}

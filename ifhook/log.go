package ifhook

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/plan"
	"golang.org/x/sys/unix"
)

// DefaultSyslogSocket is where ifhook sends its syslog lines.
const DefaultSyslogSocket = "/dev/log"

// Syslog priorities (facility daemon).
const (
	prioErr     = 3<<3 | 3
	prioWarning = 3<<3 | 4
	prioInfo    = 3<<3 | 6
)

// Log is where ifhook reports. Stderr is what QEMU copies to the user's
// console, so it stays silent on success unless Verbose is set; every change
// and failure also goes to syslog when a syslog socket is there. Every line
// is escaped (escape.Line) as a whole: a VM's name with a newline in it
// cannot forge a second syslog line, nor an ESC reach the terminal.
type Log struct {
	Stderr  io.Writer // nil: nothing on stderr
	Verbose bool
	Syslog  *Syslog // nil: no syslog
}

func (l *Log) stderrf(format string, args ...any) {
	if l != nil && l.Stderr != nil {
		fmt.Fprintf(l.Stderr, "ifhook: %s\n", escape.Line(fmt.Sprintf(format, args...)))
	}
}

// Change reports a change made, or anything else worth keeping: syslog
// always, stderr when verbose.
func (l *Log) Change(format string, args ...any) {
	if l == nil {
		return
	}
	if l.Verbose {
		l.stderrf(format, args...)
	}
	l.Syslog.Send(prioInfo, format, args...)
}

// Notice reports what the user should see even when ifhook is quiet, such as
// a TAP moved off another bridge: stderr and syslog.
func (l *Log) Notice(format string, args ...any) {
	if l == nil {
		return
	}
	l.stderrf(format, args...)
	l.Syslog.Send(prioWarning, format, args...)
}

// Applied reports a batch of steps applied together: each step on stderr
// when verbose, one syslog line for the batch (a batch of link changes is
// one netlink message, so one line says what it did).
func (l *Log) Applied(ctx string, batch []plan.Step) {
	if l == nil {
		return
	}
	if l.Verbose {
		for _, s := range batch {
			l.stderrf("%s: %s", ctx, s)
		}
	}
	if l.Syslog != nil {
		l.Syslog.send(prioInfo, ctx+": "+plan.Describe(batch))
	}
}

// Debug reports detail for -v only.
func (l *Log) Debug(format string, args ...any) {
	if l != nil && l.Verbose {
		l.stderrf(format, args...)
	}
}

// Failure sends a failure to syslog (the caller prints the stderr line).
func (l *Log) Failure(err error) {
	if l != nil {
		l.Syslog.Send(prioErr, "%s", err)
	}
}

// Syslog writes RFC 3164 lines, as glibc's syslog(3) does, to a local
// datagram socket. It dials on first use and gives up quietly: a host
// without syslog is not an error.
type Syslog struct {
	Path string // socket; DefaultSyslogSocket when empty
	Tag  string // "ifhook" when empty
	fd   int    // -1 (or 0, the zero Syslog): not open yet
	dead bool
}

// Send writes one line; failures are ignored.
func (s *Syslog) Send(prio int, format string, args ...any) {
	if s == nil || s.dead {
		return
	}
	s.send(prio, fmt.Sprintf(format, args...))
}

// send writes msg. The line carries no timestamp: syslog daemons and
// journald stamp what they receive, and formatting one would cost every
// hook run the time-formatting code.
func (s *Syslog) send(prio int, msg string) {
	if s == nil || s.dead {
		return
	}
	if s.fd <= 0 {
		path := s.Path
		if path == "" {
			path = DefaultSyslogSocket
		}
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			s.dead = true
			return
		}
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
			unix.Close(fd)
			s.dead = true
			return
		}
		s.fd = fd
	}
	tag := s.Tag
	if tag == "" {
		tag = "ifhook"
	}
	line := "<" + strconv.Itoa(prio) + ">" + tag + "[" + strconv.Itoa(os.Getpid()) + "]: " + escape.Line(msg)
	if _, err := unix.Write(s.fd, []byte(line)); err != nil {
		s.dead = true
	}
}

// Close closes the socket.
func (s *Syslog) Close() {
	if s != nil && s.fd > 0 {
		unix.Close(s.fd)
		s.fd = 0
	}
}

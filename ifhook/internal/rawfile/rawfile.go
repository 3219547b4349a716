// Package rawfile reads and writes small files with plain system calls.
//
// The os package registers every file it opens with Go's network poller,
// which costs an epoll instance, an eventfd and a handful of fcntl calls
// the first time, and more code to fault in. A hook that lives for a
// millisecond and touches three small files does better without: on Linux
// these functions are open/read/write/close and nothing else. Errors are
// *fs.PathError, as os returns, so errors.Is(err, fs.ErrNotExist) works.
//
// Every read is bounded and refuses what is not a regular file: a FIFO
// would block a hook (and QEMU's start) forever, a device such as /dev/zero
// would fill memory. Files are opened non-blocking, so even opening a FIFO
// returns at once.
//
// Dir does the same relative to a directory file descriptor opened without
// following symlinks, creating files with O_CREAT|O_EXCL|O_NOFOLLOW: in a
// directory someone else can write, a planted symlink cannot send a write,
// a create or a remove anywhere else.
package rawfile

import (
	"errors"
	"fmt"
)

// ErrTooLarge is the error a bounded read wraps for a file over its limit.
var ErrTooLarge = errors.New("file too large")

// ErrNotRegular is the error a read wraps for what is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// NotRegularError says what a path is instead of a regular file.
type NotRegularError struct{ What string }

func (e *NotRegularError) Error() string        { return "is " + e.What + ", not a regular file" }
func (e *NotRegularError) Is(target error) bool { return target == ErrNotRegular }

// TooLargeError says how large a file is, past what limit.
type TooLargeError struct {
	Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("is larger than %s, the most ifhook reads", sizeString(e.Limit))
}
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

func sizeString(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

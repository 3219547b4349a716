// Package rawfile reads and writes small files with plain system calls.
//
// The os package registers every file it opens with Go's network poller,
// which costs an epoll instance, an eventfd and a handful of fcntl calls
// the first time, and more code to fault in. A hook that lives for a
// millisecond and touches three small files does better without: on Linux
// these functions are open/read/write/close and nothing else. Errors are
// *fs.PathError, as os returns, so errors.Is(err, fs.ErrNotExist) works.
package rawfile

import "errors"

// ErrTooLarge is the error ReadFileMax wraps for a file over its limit.
var ErrTooLarge = errors.New("file too large")

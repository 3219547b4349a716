//go:build killpoint

package kernel

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The killpoint build is for the kill-point tests only: with
// IFHOOK_KILLPOINT=before:N or after:N, the process sends itself a signal
// (IFHOOK_KILLSIG: KILL, the default, or TERM) just before or just after the
// Nth change it makes to the kernel. A SIGKILL stops it there and then,
// which is how the tests prove that whatever is interrupted, at whatever
// point, can be restored. With IFHOOK_KILLPOINT_MARK=FILE it creates FILE
// first, so the test knows the point was reached. The product binary is
// built without this file.
func init() {
	spec := os.Getenv("IFHOOK_KILLPOINT")
	when, n, ok := strings.Cut(spec, ":")
	at, err := strconv.Atoi(n)
	if !ok || err != nil || at < 1 || (when != "before" && when != "after") {
		return
	}
	sig := unix.SIGKILL
	if os.Getenv("IFHOOK_KILLSIG") == "TERM" {
		sig = unix.SIGTERM
	}
	mark := os.Getenv("IFHOOK_KILLPOINT_MARK")
	count := 0
	killpoint = func(after bool) {
		if !after {
			count++
		}
		if count == at && after == (when == "after") {
			if mark != "" {
				os.WriteFile(mark, []byte(spec+"\n"), 0o600)
			}
			unix.Kill(os.Getpid(), sig)
		}
	}
}

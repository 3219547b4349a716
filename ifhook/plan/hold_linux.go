//go:build linux && (amd64 || arm64)

package plan

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sigaction is the kernel's struct sigaction for rt_sigaction(2) on these
// architectures.
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const sigIgn = 1 // SIG_IGN

type heldSignal struct {
	sig int
	old sigaction
}

// hold sets the signals to SIG_IGN with rt_sigaction, keeping what was
// there. os/signal would do it too, but giving them back (signal.Reset)
// starts the runtime's signal-mask goroutine and thread, which costs a
// hook more than its whole change; putting the kernel's disposition back
// as it was costs one system call, and the runtime never sees a signal
// that was ignored.
func hold(sigs []os.Signal) []heldSignal {
	held := make([]heldSignal, 0, len(sigs))
	ign := sigaction{handler: sigIgn}
	for _, s := range sigs {
		n := int(s.(unix.Signal))
		var old sigaction
		if rtSigaction(n, &ign, &old) == nil {
			held = append(held, heldSignal{n, old})
		}
	}
	return held
}

func unhold(held []heldSignal) {
	for _, h := range held {
		rtSigaction(h.sig, &h.old, nil)
	}
}

func rtSigaction(sig int, act, old *sigaction) error {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

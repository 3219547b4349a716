//go:build !linux || !(amd64 || arm64)

package plan

import (
	"os"
	"os/signal"
)

type heldSignal struct{ sig os.Signal }

// hold ignores the signals through os/signal where the kernel's sigaction
// layout is not written out here; unhold gives them back with Reset.
func hold(sigs []os.Signal) []heldSignal {
	signal.Ignore(sigs...)
	held := make([]heldSignal, len(sigs))
	for i, s := range sigs {
		held[i] = heldSignal{s}
	}
	return held
}

func unhold(held []heldSignal) {
	for _, h := range held {
		signal.Reset(h.sig)
	}
}

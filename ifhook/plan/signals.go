package plan

import (
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// Signals decides what SIGTERM, SIGINT and SIGHUP do while a change is
// applied: never cut a step in half, and leave the journal consistent.
//
//   - Hold ignores them: the change goes on to its end. That is what a
//     change of one or two messages (nearly every ifup and ifdown) wants:
//     it is done in well under a millisecond, finishing it is "finishing the
//     current step", and holding costs two system calls.
//   - Catch makes them stop an applier between two batches (Stop reports
//     the one caught): ifup and setup then undo what they did, ifdown and
//     teardown leave the rest for the next run. It costs os/signal's
//     goroutine, so it is for plans of many steps (a setup, a teardown, a
//     recovery, an ifup that makes its bridge).
//   - Release gives them their default action back.
//
// A nil *Signals does nothing: a library caller keeps its own handling.
type Signals struct {
	mu     sync.Mutex
	held   []heldSignal // what Hold replaced, to put back
	ch     chan os.Signal
	caught string
}

var stopSignals = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP}

// Hold ignores the signals until Catch or Release.
func (s *Signals) Hold() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil && s.ch == nil {
		s.held = hold(stopSignals)
	}
}

// Catch makes the signals stop the applier between batches, until Release.
func (s *Signals) Catch() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		// The runtime's handler first: Notify does not put it back over
		// what Hold set, as the runtime thinks it is still there.
		unhold(s.held)
		s.held = nil
		s.ch = make(chan os.Signal, 1)
		signal.Notify(s.ch, stopSignals...)
	}
}

// Stop reports the signal that asked to stop ("" for none), for
// Applier.Stop.
func (s *Signals) Stop() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.caught == "" && s.ch != nil {
		select {
		case sig := <-s.ch:
			s.caught = unix.SignalName(sig.(unix.Signal))
		default:
		}
	}
	return s.caught
}

// Release gives the signals their default action back. A signal caught
// and not acted on (the change had finished) ends nothing: the change is
// complete.
func (s *Signals) Release() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		signal.Stop(s.ch)
		s.ch = nil
	}
	unhold(s.held)
	s.held = nil
}

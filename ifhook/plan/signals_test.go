package plan

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSignals runs itself as a child that holds, then catches, SIGTERM and
// sends it to itself: held, it is ignored and the child carries on;
// caught, Stop reports it; released, it kills as by default.
func TestSignals(t *testing.T) {
	if os.Getenv("IFHOOK_SIGNALS_CHILD") != "" {
		s := &Signals{}
		s.Hold()
		unix.Kill(os.Getpid(), unix.SIGTERM)
		time.Sleep(50 * time.Millisecond)
		if s.Stop() != "" {
			os.Exit(3) // a held signal is ignored, not caught
		}
		s.Catch()
		unix.Kill(os.Getpid(), unix.SIGTERM)
		deadline := time.Now().Add(5 * time.Second)
		for s.Stop() == "" {
			if time.Now().After(deadline) {
				os.Exit(4) // Catch after Hold does not catch
			}
			time.Sleep(time.Millisecond)
		}
		if s.Stop() != "SIGTERM" {
			os.Exit(5)
		}
		s.Release()
		s.Hold()
		s.Release()
		unix.Kill(os.Getpid(), unix.SIGTERM)
		time.Sleep(5 * time.Second)
		os.Exit(6) // released: SIGTERM should have killed
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignals$")
	cmd.Env = append(os.Environ(), "IFHOOK_SIGNALS_CHILD=1")
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("child: %v", err)
	}
	if st := ee.Sys().(interface{ Signaled() bool }); !st.Signaled() {
		t.Fatalf("child exited %d, want killed by SIGTERM at the end", ee.ExitCode())
	}
}

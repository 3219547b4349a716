package helper

import (
	"os"
	"testing"
)

// TestPrivilegedIsFalseHere: a test run got no privileges at exec.
func TestPrivilegedIsFalseHere(t *testing.T) {
	if Privileged() {
		t.Fatalf("Privileged() in a test (uid %d, euid %d)", os.Getuid(), os.Geteuid())
	}
}

// BenchmarkPrivileged is what every run pays for the check: a look at
// the auxiliary vector the runtime keeps, no system call.
func BenchmarkPrivileged(b *testing.B) {
	for b.Loop() {
		Privileged()
	}
}

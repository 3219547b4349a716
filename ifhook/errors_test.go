package ifhook

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook/policy"
	"github.com/ifhook/ifhook/ifhook/rtnl"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

// TestExitCodeTable checks the documented table itself: the numbers, one
// Kind per code, every Kind present.
func TestExitCodeTable(t *testing.T) {
	var codes []int
	kinds := map[Kind]int{}
	for _, c := range ExitCodes {
		codes = append(codes, c.Code)
		if c.Code == 0 {
			continue
		}
		if prev, dup := kinds[c.Kind]; dup {
			t.Errorf("Kind %d has codes %d and %d", c.Kind, prev, c.Code)
		}
		kinds[c.Kind] = c.Code
		if c.Name == "" || c.Meaning == "" || strings.Contains(c.Meaning, "\n") {
			t.Errorf("code %d: name %q, meaning %q", c.Code, c.Name, c.Meaning)
		}
	}
	if got, want := fmt.Sprint(codes), "[0 64 65 69 70 71 73 75 77 78]"; got != want {
		t.Errorf("codes = %s, want %s", got, want)
	}
	for k := KindInternal; k <= KindPolicy; k++ {
		if _, ok := kinds[k]; !ok {
			t.Errorf("Kind %d has no exit code", k)
		}
	}
}

func TestExit(t *testing.T) {
	opErr := func(k Kind) error { return &Error{Kind: k, Op: "up", TAP: "vnet0", Err: errors.New("x")} }
	probs := policy.Problems{{File: "p.toml", Line: 1, Key: "bridge", Msg: "bad"}}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"usage", opErr(KindUsage), 64},
		{"bad TAP", opErr(KindBadTAP), 65},
		{"no bridge", opErr(KindNoBridge), 69},
		{"internal", opErr(KindInternal), 70},
		{"system", opErr(KindSystem), 71},
		{"state", opErr(KindState), 73},
		{"lock", opErr(KindLock), 75},
		{"permission", opErr(KindPermission), 77},
		{"policy", opErr(KindPolicy), 78},
		{"unknown kind", opErr(Kind(200)), 70},

		{"kindError", errorf(KindNoBridge, "none"), 69},
		{"wrapped Error", fmt.Errorf("context: %w", opErr(KindLock)), 75},
		{"twice wrapped kindError", fmt.Errorf("a: %w", fmt.Errorf("b: %w", errorf(KindBadTAP, "x"))), 65},
		{"Error wins over what it wraps", &Error{Kind: KindState, Err: unix.EPERM}, 73},
		{"outer kindError wins", &kindError{KindLock, errorf(KindSystem, "x")}, 75},

		{"EPERM", unix.EPERM, 77},
		{"wrapped EACCES", fmt.Errorf("open: %w", unix.EACCES), 77},
		{"EBUSY", unix.EBUSY, 71},
		{"wrapped errno", fmt.Errorf("x: %w", unix.ENOBUFS), 71},
		{"not found", fmt.Errorf("link vnet0: %w", rtnl.ErrNotFound), 71},
		{"Problems", probs, 78},
		{"wrapped Problems", fmt.Errorf("policy: %w", probs), 78},
		{"one policy error", probs[0], 78},
		{"plain error", errors.New("what"), 70},
		{"lock timeout unwrapped", state.ErrLockTimeout, 70},

		{"sysErr of an unknown error", sysErr(errors.New("odd"), "x"), 71},
		{"sysErr of EPERM", sysErr(unix.EPERM, "x"), 77},
		{"sysErr of EACCES", sysErr(fmt.Errorf("w: %w", unix.EACCES), "x"), 77},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Exit(tt.err); got != tt.want {
				t.Errorf("Exit(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestSysErr(t *testing.T) {
	err := sysErr(unix.EPERM, "set %s", "vnet0")
	if got, want := err.Error(), "set vnet0: operation not permitted (needs CAP_NET_ADMIN)"; got != want {
		t.Errorf("sysErr(EPERM) = %q, want %q", got, want)
	}
	if !errors.Is(err, unix.EPERM) {
		t.Error("sysErr(EPERM) does not wrap EPERM")
	}
	err = sysErr(unix.EBUSY, "set %s", "vnet0")
	if got, want := err.Error(), "set vnet0: device or resource busy"; got != want {
		t.Errorf("sysErr(EBUSY) = %q, want %q", got, want)
	}
}

func TestErrorMessage(t *testing.T) {
	cause := errors.New("no such device")
	tests := []struct {
		name string
		err  *Error
		want string
		bug  string
	}{
		{"op and TAP", &Error{Op: "up", TAP: "vnet0", Err: cause}, "up vnet0: no such device", ""},
		{"colon in TAP is quoted", &Error{Op: "up", TAP: "a:b", Err: cause}, `up "a:b": no such device`, ""},
		{"16-byte TAP is quoted", &Error{Op: "down", TAP: "abcdefghijklmnop", Err: cause}, `down "abcdefghijklmnop": no such device`, ""},
		{"newline in TAP stays on one line", &Error{Op: "up", TAP: "vnet0\nrm -rf", Err: cause}, `up "vnet0\nrm -rf": no such device`, ""},
		{"escape sequence in TAP", &Error{Op: "up", TAP: "\x1b[31mred", Err: cause}, `up "\x1b[31mred": no such device`, ""},
		{"space in TAP", &Error{Op: "up", TAP: "a b", Err: cause}, `up "a b": no such device`, ""},
		{"no TAP", &Error{Op: "gc", Err: cause}, "gc: no such device", ""},
		{"nothing but the error", &Error{Err: cause}, "no such device", ""},
		{"TAP without op", &Error{TAP: "vnet0", Err: cause}, "vnet0: no such device",
			`errors.go (*Error).Error with Op "" and TAP "vnet0" gives " vnet0: no such device" (leading space)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = tt.bug // fixed; says what the case once caught
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if !errors.Is(tt.err, cause) {
				t.Error("Error does not unwrap to its cause")
			}
		})
	}
}

package exit

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestTable(t *testing.T) {
	seen := map[int]bool{}
	kinds := map[Kind]int{}
	for i, r := range Table {
		if seen[r.Code] {
			t.Errorf("code %d twice", r.Code)
		}
		seen[r.Code] = true
		if i > 0 && r.Code <= Table[i-1].Code {
			t.Errorf("table not in order at %d", r.Code)
		}
		if r.Code != 0 {
			if c, ok := kinds[r.Kind]; ok {
				t.Errorf("kind %d has codes %d and %d", r.Kind, c, r.Code)
			}
			kinds[r.Kind] = r.Code
		}
		if strings.Contains(r.Meaning, "\n") {
			t.Errorf("meaning of %d spans lines", r.Code)
		}
	}
	for k := Internal; k <= Findings; k++ {
		if _, ok := kinds[k]; !ok {
			t.Errorf("kind %d has no exit code", k)
		}
	}
}

func TestCode(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"plain", errors.New("x"), 70},
		{"usage", New(Usage, "bad"), 64},
		{"findings", New(Findings, "2 problems"), 1},
		{"eperm", fmt.Errorf("set: %w", unix.EPERM), 77},
		{"errno", fmt.Errorf("set: %w", unix.EBUSY), 71},
		{"sys", Sys(unix.ENODEV, "look up x"), 71},
		{"sys perm", Sys(unix.EACCES, "write"), 77},
		{"wrapped kind", fmt.Errorf("outer: %w", New(State, "dir")), 73},
		{"op keeps kind", Op("up", "vnet0", New(BadTAP, "no such device")), 65},
		{"as", As(Temporary, os.ErrDeadlineExceeded), 75},
		{"join keeps first", Join(New(Unavailable, "a"), New(System, "b")), 69},
	} {
		if got := Code(tt.err); got != tt.want {
			t.Errorf("%s: Code(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	e := Op("up", "vnet0", New(BadTAP, "no such device"))
	if got := e.Error(); got != "up vnet0: no such device" {
		t.Errorf("got %q", got)
	}
	e = Op("up", "bad\nname", New(BadTAP, "invalid"))
	if got := e.Error(); got != `up "bad\nname": invalid` {
		t.Errorf("got %q", got)
	}
	if got := Op("", "", errors.New("bare")).Error(); got != "bare" {
		t.Errorf("got %q", got)
	}
	// Op does not wrap twice.
	inner := Op("setup", "br0", errors.New("x"))
	if Op("up", "vnet0", inner) != inner {
		t.Error("Op rewrapped an *Error")
	}
}

func TestJoin(t *testing.T) {
	if Join() != nil || Join(nil, nil) != nil {
		t.Fatal("Join of nothing is not nil")
	}
	one := errors.New("one")
	if Join(nil, one) != one {
		t.Fatal("Join of one error is not that error")
	}
	sentinel := errors.New("sentinel")
	j := Join(New(State, "a: %w", sentinel), errors.New("b"))
	if j.Error() != "a: sentinel; b" || strings.Contains(j.Error(), "\n") {
		t.Fatalf("Join message %q", j.Error())
	}
	if !errors.Is(j, sentinel) {
		t.Fatal("Join lost the chain")
	}
}

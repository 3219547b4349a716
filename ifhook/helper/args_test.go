package helper

import (
	"errors"
	"strings"
	"testing"

	"github.com/ifhook/ifhook/ifhook/exit"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want Args
	}{
		{"QEMU's order", []string{"--use-vnet", "--fd=5", "--br=br0"}, Args{UseVnet: true, Bridge: "br0", FD: 5}},
		{"libvirt's order", []string{"--use-vnet", "--br=virbr0", "--fd=25"}, Args{UseVnet: true, Bridge: "virbr0", FD: 25}},
		{"libvirt without vnet", []string{"--br=br-lab", "--fd=3"}, Args{Bridge: "br-lab", FD: 3}},
		{"fd first", []string{"--fd=0", "--use-vnet", "--br=b"}, Args{UseVnet: true, Bridge: "b", FD: 0}},
		{"a 15-byte name", []string{"--br=br-production01", "--fd=3"}, Args{Bridge: "br-production01", FD: 3}},
	} {
		got, err := ParseArgs(tc.args)
		if err != nil || got != tc.want {
			t.Errorf("%s: ParseArgs(%q) = %+v, %v; want %+v", tc.name, tc.args, got, err, tc.want)
		}
	}
}

func TestParseArgsRefuses(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		badName bool
		want    string
	}{
		{nil, false, "no --br="},
		{[]string{"--br=br0"}, false, "no --fd="},
		{[]string{"--fd=3"}, false, "no --br="},
		{[]string{"--br=br0", "--fd=3", "-v"}, false, `unknown argument "-v"`},
		{[]string{"--br=br0", "--fd=3", "--config=/tmp/x"}, false, "unknown argument"},
		{[]string{"--br=br0", "--fd=x"}, false, "not a file descriptor number"},
		{[]string{"--br=br0", "--fd=-1"}, false, "not a file descriptor number"},
		{[]string{"--br=br0", "--fd=3", "--br=br1"}, false, "--br= given twice"},
		{[]string{"--br=br0", "--fd=3", "--fd=4"}, false, "--fd= given twice"},
		{[]string{"--use-vnet=1", "--br=br0", "--fd=3"}, false, "unknown argument"},
		{[]string{"br0"}, false, "unknown argument"},
		// CVE-2019-13164: a name the kernel would cut to 15 bytes.
		{[]string{"--br=br-production01X", "--fd=3"}, true, "name `br-production01X' too long: 16"},
		{[]string{"--br=", "--fd=3"}, true, "--br=: "},
		{[]string{"--br=br0/x", "--fd=3"}, true, "--br=br0/x"},
		{[]string{"--br=a b", "--fd=3"}, true, "--br=a b"},
		{[]string{"--br=eth0:1", "--fd=3"}, true, "--br=eth0:1"},
	} {
		_, err := ParseArgs(tc.args)
		if err == nil {
			t.Errorf("ParseArgs(%q) accepted", tc.args)
			continue
		}
		if exit.Code(err) != 64 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseArgs(%q) = exit %d, %v; want 64 saying %q", tc.args, exit.Code(err), err, tc.want)
		}
		if errors.Is(err, ErrBadName) != tc.badName || errors.Is(err, ErrUsage) == tc.badName {
			t.Errorf("ParseArgs(%q): ErrBadName %v, ErrUsage %v", tc.args, errors.Is(err, ErrBadName), errors.Is(err, ErrUsage))
		}
	}
}

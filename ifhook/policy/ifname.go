package policy

import (
	"errors"
	"fmt"
)

// MaxIfNameLen is the longest interface name the kernel accepts (IFNAMSIZ - 1).
const MaxIfNameLen = 15

var (
	errEmptyName = errors.New("empty interface name")
	errDotName   = errors.New(`"." and ".." are not interface names`)
)

// ValidIfName reports why name cannot be a Linux interface name, or nil when it
// can. It follows the kernel's dev_valid_name (net/core/dev.c): 1-15 bytes, not
// "." or "..", no '/', ':' or whitespace. It also refuses '%', which the kernel
// treats as a name template at creation so no TAP can carry it, and control
// characters, which would break our one-line error messages.
func ValidIfName(name string) error {
	switch {
	case name == "":
		return errEmptyName
	case len(name) > MaxIfNameLen:
		return fmt.Errorf("interface name is %d bytes, longer than %d", len(name), MaxIfNameLen)
	case name == "." || name == "..":
		return errDotName
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '/' || c == ':' || c == '%':
			return fmt.Errorf("interface name contains %q", c)
		// The kernel's isspace (lib/ctype.c) also counts 0xA0.
		case c == ' ' || (c >= '\t' && c <= '\r') || c == 0xa0:
			return errors.New("interface name contains whitespace")
		case c < 0x20 || c == 0x7f:
			return errors.New("interface name contains a control character")
		}
	}
	return nil
}

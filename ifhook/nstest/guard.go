package nstest

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// GuardRootNS runs the tests and then fails the run if the links of the
// process's own network namespace changed (names, masters, up/down): the
// tests must only ever touch namespaces they made. Use it as TestMain:
//
//	func TestMain(m *testing.M) { nstest.GuardRootNS(m) }
func GuardRootNS(m *testing.M) { os.Exit(GuardedRun(m)) }

// GuardedRun is GuardRootNS without the exit, for a TestMain that has
// cleanup to do after the tests: it returns the exit status.
func GuardedRun(m *testing.M) int {
	before, err := snapshot()
	code := m.Run()
	if err == nil {
		after, err2 := snapshot()
		if err2 == nil && after != before {
			fmt.Fprintf(os.Stderr, "nstest: the host's network namespace changed during the tests!\nbefore:\n%s\nafter:\n%s\n", before, after)
			code = 1
		}
	}
	return code
}

func snapshot() (string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return "", err
	}
	var lines []string
	for _, l := range links {
		a := l.Attrs()
		lines = append(lines, fmt.Sprintf("%s master=%d up=%v mtu=%d mac=%s", a.Name, a.MasterIndex, a.Flags&1 != 0, a.MTU, a.HardwareAddr))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

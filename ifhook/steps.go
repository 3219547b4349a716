package ifhook

import (
	"fmt"
	"net"
	"strings"

	"github.com/ifhook/ifhook/ifhook/rtnl"
)

// setAddress sets a link's MAC address; Undo puts back the one seen before.
type setAddress struct {
	dev      string
	index    int
	ref      *linkRef // when set, the index is resolved at apply time
	to, from net.HardwareAddr
}

func (s *setAddress) String() string { return linkCmd(s.dev, s.args()) }
func (s *setAddress) args() string   { return "address " + s.to.String() }
func (s *setAddress) linkIndex() int { return refIndex(s.ref, s.index) }
func (s *setAddress) changes() (rtnl.Change, rtnl.Change) {
	return rtnl.Change{MAC: s.to}, rtnl.Change{MAC: s.from}
}
func (s *setAddress) Do(l Links) error   { return doLink(l, s) }
func (s *setAddress) Undo(l Links) error { return undoLink(l, s) }

// setMTU sets a link's MTU.
type setMTU struct {
	dev      string
	index    int
	ref      *linkRef
	to, from int
}

func (s *setMTU) String() string     { return linkCmd(s.dev, s.args()) }
func (s *setMTU) args() string       { return fmt.Sprintf("mtu %d", s.to) }
func (s *setMTU) linkIndex() int     { return refIndex(s.ref, s.index) }
func (s *setMTU) Do(l Links) error   { return doLink(l, s) }
func (s *setMTU) Undo(l Links) error { return undoLink(l, s) }
func (s *setMTU) changes() (rtnl.Change, rtnl.Change) {
	return rtnl.Change{MTU: s.to}, rtnl.Change{MTU: s.from}
}

// setMaster enslaves a link to a bridge, or frees it when master is "".
// Undo returns it to the master it had (fromIndex, 0 for none).
type setMaster struct {
	dev         string
	index       int
	ref         *linkRef
	master      string
	masterIndex int
	masterRef   *linkRef // a bridge made earlier in the same plan
	from        string
	fromIndex   int
}

func (s *setMaster) String() string { return linkCmd(s.dev, s.args()) }
func (s *setMaster) args() string {
	if s.master == "" {
		return "nomaster"
	}
	return "master " + s.master
}
func (s *setMaster) linkIndex() int     { return refIndex(s.ref, s.index) }
func (s *setMaster) Do(l Links) error   { return doLink(l, s) }
func (s *setMaster) Undo(l Links) error { return undoLink(l, s) }
func (s *setMaster) changes() (rtnl.Change, rtnl.Change) {
	return rtnl.Change{Master: rtnl.Ptr(refIndex(s.masterRef, s.masterIndex))}, rtnl.Change{Master: rtnl.Ptr(s.fromIndex)}
}

// setUp sets a link administratively up or down.
type setUp struct {
	dev      string
	index    int
	ref      *linkRef
	up, from bool
}

func (s *setUp) String() string { return linkCmd(s.dev, s.args()) }
func (s *setUp) args() string {
	if s.up {
		return "up"
	}
	return "down"
}
func (s *setUp) linkIndex() int     { return refIndex(s.ref, s.index) }
func (s *setUp) Do(l Links) error   { return doLink(l, s) }
func (s *setUp) Undo(l Links) error { return undoLink(l, s) }
func (s *setUp) changes() (rtnl.Change, rtnl.Change) {
	return rtnl.Change{Up: rtnl.Ptr(s.up)}, rtnl.Change{Up: rtnl.Ptr(s.from)}
}

// refIndex is ref's index when there is a ref, else index.
func refIndex(ref *linkRef, index int) int {
	if ref != nil {
		return ref.index
	}
	return index
}

// linkCmd is the ip(8) command for changes to one link.
func linkCmd(dev string, args ...string) string {
	return "ip link set dev " + dev + " " + strings.Join(args, " ")
}

func doLink(l Links, s linkStep) error {
	do, _ := s.changes()
	if err := l.SetLink(s.linkIndex(), do); err != nil {
		return sysErr(err, "%s", s)
	}
	return nil
}

func undoLink(l Links, s linkStep) error {
	_, undo := s.changes()
	if err := l.SetLink(s.linkIndex(), undo); err != nil {
		return sysErr(err, "undo %s", s)
	}
	return nil
}
func (s *setAddress) linkName() string { return s.dev }
func (s *setMTU) linkName() string     { return s.dev }
func (s *setMaster) linkName() string  { return s.dev }
func (s *setUp) linkName() string      { return s.dev }

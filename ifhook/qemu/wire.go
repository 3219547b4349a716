package qemu

import (
	"strconv"
	"strings"
	"sync"
)

// ifnameMax is the longest interface name: QEMU copies ifname= into
// ifr_name[IFNAMSIZ] with pstrcpy (net/tap-linux.c: tap_open), so a longer
// one is cut to 15 bytes, and the script gets the name the kernel returns.
const ifnameMax = 15

// tap is one TAP backend: -netdev tap, -nic tap or -net tap, or one the
// bridge helper makes (type bridge, or tap with helper=).
type tap struct {
	name   string // what QEMU passes to the script; "" when the kernel picks it
	why    string // why name is "", for messages
	kernel bool   // QEMU opens it under a name the kernel picks (tap0, ...)
	label  string // the option as written
	direct []int  // NICs wired to it by netdev= (QEMU allows one)
	hub    *hub   // the hub it is on, if any

	// bridge is the br= QEMU passes to the bridge helper that makes this
	// TAP ("" when no helper does), and order the position of the helper
	// run among all of them: QEMU creates backends JSON -netdev first,
	// then key=value -netdev, then -nic, then -net (net/net.c:
	// net_init_clients), each in command-line order, and runs each
	// backend's helper then, waiting for it.
	bridge string
	order  [2]int
}

// defaultBridge is the bridge QEMU gives the helper when br= is not given
// (DEFAULT_BRIDGE_INTERFACE, net/tap.c).
const defaultBridge = "br0"

// Backend creation phases (net_init_clients).
const (
	phaseJSONNetdev = iota
	phaseNetdev
	phaseNicOption
	phaseNetOption
)

// helperBridge returns the bridge a backend's helper is asked for, or ""
// when no helper makes its TAP: -netdev bridge (and -nic bridge, -net
// bridge) always run one, -netdev tap only with helper=.
func helperBridge(typ string, o *opts) string {
	if typ != "bridge" && !(typ == "tap" && o.has("helper")) {
		return ""
	}
	if br, ok := o.get("br"); ok && br != "" {
		return br
	}
	return defaultBridge
}

// hub is a QEMU hub (net/hub.c): legacy -net options with the same vlan=
// (0 when not given; QEMU 3.0 and later have no vlan= and put every -net
// option on hub 0), -device vlan= (QEMU before 3.0), and -netdev hubport.
// Every frame one member sends reaches all the others.
type hub struct {
	id   int
	nics []int
	taps []int
}

// netdev is a backend that NICs can name with netdev=: a -netdev, or the
// backend a -nic creates.
type netdev struct {
	typ       string
	tap       int    // index in VM.taps, or -1
	hubID     int    // hubport: hubid=
	hubNetdev string // hubport: netdev=, a backend joined to the hub
	label     string
}

// Phases of NIC creation, in the order QEMU goes through them: net_param_nic
// and net_init_nic run from net_init_clients (net/net.c: -netdev first,
// then -nic, then -net), before the machine exists; -device NICs get their
// MAC when realized by qemu_create_cli_devices (system/vl.c), which creates
// the key=value ones first and the JSON ones after.
const (
	phaseNIC = iota
	phaseNet
	phaseDevice
	phaseJSONDevice
	phases
)

// nicSpec is a NIC before its MAC is known.
type nicSpec struct {
	nic    NIC
	mac    [6]byte
	macOK  bool
	netdev string // netdev=, "" if none
	hubID  int
	onHub  bool
	label  string
}

// builder turns the records into NICs and their wiring.
type builder struct {
	*parser
	netdevs map[string]*netdev
	ordered []*netdev // netdevs in command-line order
	hubs    map[int]*hub
	specs   [phases][]nicSpec
	nicTaps []int  // per NIC: how many TAPs it is wired to directly
	nicTap  []int  // per NIC: the last of them
	nicHub  []*hub // per NIC: its hub, if any
}

func (p *parser) build() {
	b := &builder{parser: p, netdevs: map[string]*netdev{}, hubs: map[int]*hub{}}
	for i, r := range p.records {
		switch r.group {
		case "netdev":
			b.addNetdev(r)
		case "nic":
			b.addNIC(r, i)
		case "net":
			b.addNet(r)
		case "device":
			b.addDevice(r)
		}
	}
	if !p.netOption && !p.nodefaults {
		// system/vl.c: with no -net, -netdev or -nic, and defaults on,
		// QEMU adds "-net nic" (and "-net user") after everything else.
		p.note("no -net, -netdev or -nic: QEMU adds a default -net nic")
		b.specs[phaseNet] = append(b.specs[phaseNet], nicSpec{
			nic: NIC{Option: "default -net nic"}, macOK: true, onHub: true, label: "default -net nic",
		})
	}
	b.vm.sortOpened()
	b.wire()
}

// addNetdev records a -netdev.
func (b *builder) addNetdev(r *record) {
	if !r.opts.hasID {
		b.note("%s: no id= (QEMU would have refused it)", r.label)
		return
	}
	b.newNetdev(r.opts.id, r)
}

// newNetdev files the backend r describes under id.
func (b *builder) newNetdev(id string, r *record) *netdev {
	if b.netdevs[id] != nil {
		b.note("%s: id=%s used twice (QEMU would have refused it)", r.label, id)
		return nil
	}
	typ, _ := r.opts.get("type")
	nd := &netdev{typ: typ, tap: -1, label: r.label}
	switch typ {
	case "tap", "bridge":
		nd.tap = b.addTap(r)
		b.opens(r, nd.tap)
	case "hubport":
		hubid, _ := r.opts.get("hubid")
		n, ok := parseCInt(hubid)
		if !ok {
			b.note("%s: hubid=%s is not a number (QEMU would have refused it)", r.label, hubid)
			return nil
		}
		nd.hubID = n
		nd.hubNetdev, _ = r.opts.get("netdev")
	}
	b.netdevs[id] = nd
	b.ordered = append(b.ordered, nd)
	return nd
}

// addTap records a TAP backend and returns its index.
func (b *builder) addTap(r *record) int {
	t := tap{label: r.label}
	t.name, t.why = tapName(&r.opts)
	typ, _ := r.opts.get("type")
	// A TAP the bridge helper makes runs no script: never one of those the
	// kernel names for a script to be told of.
	t.kernel = t.name == "" && !inherited(&r.opts) && !r.opts.has("helper") && typ != "bridge"
	if t.bridge = helperBridge(typ, &r.opts); t.bridge != "" {
		phase := map[string]int{"netdev": phaseNetdev, "nic": phaseNicOption, "net": phaseNetOption}[r.group]
		if r.json {
			phase = phaseJSONNetdev
		}
		t.order = [2]int{phase, len(b.vm.taps)}
	}
	if ifname, _ := r.opts.get("ifname"); t.name != "" && t.name != ifname {
		b.note("%s: ifname=%s is longer than %d bytes, the kernel gets %s", r.label, ifname, ifnameMax, t.name)
	}
	b.vm.taps = append(b.vm.taps, t)
	return len(b.vm.taps) - 1
}

// tapName is the name QEMU opens the TAP under and hands to the script
// (net/tap.c: net_init_tap, net/tap-linux.c: tap_open), or why there is
// none on the command line.
func tapName(o *opts) (name, why string) {
	if typ, _ := o.get("type"); typ == "bridge" {
		return "", "the bridge helper makes it, and the kernel names it tap0, tap1, ..."
	}
	for _, fd := range []string{"fd", "fds", "helper"} {
		if o.has(fd) {
			return "", "its file descriptor comes from outside (" + fd + "=)"
		}
	}
	ifname, _ := o.get("ifname")
	switch {
	case ifname == "":
		return "", "no ifname=, the kernel names it tap0, tap1, ..."
	case strings.Contains(ifname, "%"):
		return "", "ifname=" + ifname + " is a template the kernel fills in"
	case len(ifname) > ifnameMax:
		return ifname[:ifnameMax], ""
	}
	return ifname, ""
}

// addNIC records a -nic: a backend and a NIC wired to it (net/net.c:
// net_param_nic). type= defaults to user; type=none means no NIC at all.
func (b *builder) addNIC(r *record, index int) {
	typ, ok := r.opts.get("type")
	if typ == "none" {
		return
	}
	if !ok {
		r.opts.pairs = append(r.opts.pairs, pair{"type", "user"})
	}
	// QEMU names an id-less -nic backend "__org.qemu.nic%i"; ours cannot
	// clash with any id the command line could give.
	id := r.opts.id
	if !r.opts.hasID {
		id = "\x00nic" + strconv.Itoa(index)
	}
	if b.newNetdev(id, r) == nil {
		return
	}
	s := nicSpec{netdev: id, label: r.label}
	s.nic.Option, s.nic.ID = "-nic", r.opts.id
	s.nic.Model, _ = r.opts.get("model")
	b.legacyMAC(&s, r, "mac")
	b.specs[phaseNIC] = append(b.specs[phaseNIC], s)
}

// addNet records a legacy -net option: a NIC (type nic) or a backend, on
// hub vlan= (default 0), except a NIC with netdev=, which is wired to that
// backend instead (net/net.c: net_client_init1).
func (b *builder) addNet(r *record) {
	typ, ok := r.opts.get("type")
	switch {
	case !ok:
		b.note("%s: no type (QEMU would have refused it)", r.label)
		return
	case typ == "none":
		return
	}
	hubID := 0
	if vlan, ok := r.opts.get("vlan"); ok {
		n, ok := parseCInt(vlan)
		if !ok {
			b.note("%s: vlan=%s is not a number (QEMU would have refused it)", r.label, vlan)
			return
		}
		hubID = n
	}
	if typ != "nic" {
		if typ == "tap" || typ == "bridge" {
			t := b.addTap(r)
			b.joinTap(t, hubID)
			b.opens(r, t)
		}
		return
	}
	s := nicSpec{hubID: hubID, onHub: true, label: r.label}
	if nd, ok := r.opts.get("netdev"); ok {
		s.netdev, s.onHub = nd, false
	}
	s.nic.Option, s.nic.ID = "-net nic", r.opts.id
	if !r.opts.hasID {
		s.nic.ID, _ = r.opts.get("name")
	}
	s.nic.Model, _ = r.opts.get("model")
	b.legacyMAC(&s, r, "macaddr")
	b.specs[phaseNet] = append(b.specs[phaseNet], s)
}

// legacyMAC reads the MAC of a -nic or -net nic, which QEMU parses with
// net_parse_macaddr and refuses when multicast (net/net.c).
func (b *builder) legacyMAC(s *nicSpec, r *record, key string) {
	text, ok := r.opts.get(key)
	if !ok {
		s.macOK = true
		return
	}
	s.mac, s.macOK = parseMACLegacy(text)
	if s.macOK && s.mac[0]&1 != 0 {
		s.macOK = false
	}
	if !s.macOK {
		b.note("%s: %s=%s is not a MAC QEMU accepts", r.label, key, text)
	}
}

// nicDrivers are QEMU's NIC device types (hw/net/*), aliases included, so
// that a NIC with neither netdev= nor mac= still counts for default MACs.
var nicDrivers = sync.OnceValue(func() map[string]bool {
	return map[string]bool{
		"e1000": true, "e1000-82540em": true, "e1000-82544gc": true,
		"e1000-82545em": true, "e1000e": true, "igb": true,
		"i82550": true, "i82551": true, "i82557a": true, "i82557b": true,
		"i82557c": true, "i82558a": true, "i82558b": true, "i82559a": true,
		"i82559b": true, "i82559c": true, "i82559er": true, "i82562": true,
		"i82801": true, "ne2k_isa": true, "ne2k_pci": true, "pcnet": true,
		"rtl8139": true, "tulip": true, "usb-net": true, "vmxnet3": true,
		"virtio-net": true, "virtio-net-pci": true, "virtio-net-device": true,
		"virtio-net-ccw": true, "virtio-net-pci-transitional": true,
		"virtio-net-pci-non-transitional": true, "spapr-vlan": true,
		"sungem": true, "sunhme": true, "xen-net-device": true,
	}
})

// addDevice records a -device if it is a NIC: a known NIC driver, or any
// device with the NIC properties netdev=, mac= or vlan= (qdev's
// DEFINE_NIC_PROPERTIES). pvrdma's netdev= names a host interface instead.
func (b *builder) addDevice(r *record) {
	driver, _ := r.opts.get("driver")
	if driver == "pvrdma" || !(nicDrivers()[driver] || r.opts.has("netdev") || r.opts.has("mac") || r.opts.has("vlan")) {
		return
	}
	s := nicSpec{label: r.label, macOK: true}
	s.nic.Option, s.nic.ID, s.nic.Model = "-device", r.opts.id, driver
	if nd, ok := r.opts.get("netdev"); ok {
		s.netdev = nd
	} else if vlan, ok := r.opts.get("vlan"); ok {
		if n, ok := parseCInt(vlan); ok {
			s.hubID, s.onHub = n, true
		} else {
			b.note("%s: vlan=%s is not a number (QEMU would have refused it)", r.label, vlan)
		}
	}
	if text, ok := r.opts.get("mac"); ok {
		if s.mac, s.macOK = parseMACStrict(text); !s.macOK {
			b.note("%s: mac=%s is not a MAC QEMU accepts", r.label, text)
		}
	}
	phase := phaseDevice
	if r.json {
		phase = phaseJSONDevice
	}
	b.specs[phase] = append(b.specs[phase], s)
}

// hubFor returns hub id, creating it.
func (b *builder) hubFor(id int) *hub {
	h := b.hubs[id]
	if h == nil {
		h = &hub{id: id}
		b.hubs[id] = h
	}
	return h
}

// joinTap puts TAP t on hub id.
func (b *builder) joinTap(t, id int) {
	tp := &b.vm.taps[t]
	if tp.hub != nil {
		b.note("%s: joined to hub %d and %d (QEMU would have refused it)", tp.label, tp.hub.id, id)
		return
	}
	tp.hub = b.hubFor(id)
	tp.hub.taps = append(tp.hub.taps, t)
}

// wire gives every NIC its MAC, in creation order, and its connections.
func (b *builder) wire() {
	// Backends a hubport joins to its hub.
	for _, nd := range b.ordered {
		if nd.typ != "hubport" || nd.hubNetdev == "" {
			continue
		}
		if peer := b.netdevs[nd.hubNetdev]; peer != nil && peer.tap >= 0 {
			b.joinTap(peer.tap, nd.hubID)
		}
	}
	var table macTable
	for phase := range b.specs {
		for _, s := range b.specs[phase] {
			b.vm.NICs = append(b.vm.NICs, s.nic)
			b.nicTaps, b.nicTap, b.nicHub = append(b.nicTaps, 0), append(b.nicTap, -1), append(b.nicHub, nil)
			n := len(b.vm.NICs) - 1
			if s.macOK {
				mac := s.mac
				b.vm.NICs[n].DefaultMAC = table.assign(&mac)
				b.vm.NICs[n].MAC = hardwareAddr(mac)
			}
			b.connect(n, &s)
		}
	}
	b.vm.byName = map[string][]int{}
	for t, tp := range b.vm.taps {
		if tp.name != "" {
			b.vm.byName[tp.name] = append(b.vm.byName[tp.name], t)
		}
	}
	for n := range b.vm.NICs {
		b.vm.NICs[n].TAP = b.onlyTap(n)
	}
}

// connect wires NIC n to its backend or hub.
func (b *builder) connect(n int, s *nicSpec) {
	if s.netdev != "" {
		nd := b.netdevs[s.netdev]
		switch {
		case nd == nil:
			b.note("%s: netdev=%s names no -netdev (QEMU would have refused it)", s.label, s.netdev)
		case nd.typ == "hubport":
			b.joinNIC(n, nd.hubID)
		case nd.tap >= 0:
			t := &b.vm.taps[nd.tap]
			t.direct = append(t.direct, n)
			b.nicTaps[n]++
			b.nicTap[n] = nd.tap
		}
		return
	}
	if s.onHub {
		b.joinNIC(n, s.hubID)
	}
}

// joinNIC puts NIC n on hub id.
func (b *builder) joinNIC(n, id int) {
	h := b.hubFor(id)
	h.nics = append(h.nics, n)
	b.nicHub[n] = h
}

// onlyTap is the name of the one TAP NIC n reaches, or "".
func (b *builder) onlyTap(n int) string {
	count, t := b.nicTaps[n], b.nicTap[n]
	if h := b.nicHub[n]; h != nil {
		count += len(h.taps)
		if len(h.taps) > 0 {
			t = h.taps[0]
		}
	}
	if count != 1 {
		return ""
	}
	return b.vm.taps[t].name
}

// describe names NIC n for a message.
func (vm *VM) describe(n int) string {
	nic := vm.NICs[n]
	what := nic.Option
	if nic.Model != "" {
		what += " " + nic.Model
	}
	if nic.ID != "" {
		what += " id=" + nic.ID
	}
	if nic.MAC != nil {
		what += " " + nic.MAC.String()
	}
	return what
}

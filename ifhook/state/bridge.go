package state

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook/internal/rawfile"
)

// BridgeRecord says what ifhook made for one bridge of the policy, so
// teardown removes exactly that (and puts back what it moved), whatever the
// policy says by then. It lives at DIR/bridges/NAME.
type BridgeRecord struct {
	Bridge  string
	Model   string
	Since   time.Time
	Created bool     // ifhook created the bridge (teardown deletes it)
	Addrs   []string // addresses ifhook added to the bridge, CIDR
	// Sysctls ifhook changed, key -> the value before.
	Sysctls map[string]string
	NAT     bool // ifhook added the bridge's NAT rule

	// Bridged model: the uplink ifhook enslaved, and what it moved off it.
	Uplink       string
	UplinkUp     bool     // the uplink was up before
	UplinkMaster string   // its master before ("" = none)
	UplinkAddrs  []string // addresses moved to the bridge, CIDR
	UplinkRoutes []string // routes moved to the bridge (see Route)
}

func (d *Dir) bridgePath(name string) string { return filepath.Join(d.Path, "bridges", name) }

// ReadBridge returns the record of a bridge, or nil when there is none.
func (d *Dir) ReadBridge(name string) (*BridgeRecord, error) {
	return readRecord(d.bridgePath(name), DecodeBridge)
}

// WriteBridge stores a bridge record atomically.
func (d *Dir) WriteBridge(r *BridgeRecord) error {
	if err := rawfile.Mkdir(filepath.Join(d.Path, "bridges"), 0o700); err != nil {
		return fmt.Errorf("state directory %s: %w", d.Path, unwrap(err))
	}
	return writeAtomic(d.bridgePath(r.Bridge), r.Encode())
}

// RemoveBridge deletes a bridge record; a missing one is fine.
func (d *Dir) RemoveBridge(name string) error { return removeRecord(d.bridgePath(name)) }

// ListBridges returns every bridge record, sorted by name.
func (d *Dir) ListBridges() ([]*BridgeRecord, error) {
	return listRecords(d, "bridges", d.ReadBridge)
}

// Encode renders the record as "key=value" lines; list values repeat their
// key.
func (r *BridgeRecord) Encode() []byte {
	var b bytes.Buffer
	put := func(k, v string) { putLine(&b, k, v) }
	put("bridge", r.Bridge)
	put("model", r.Model)
	if !r.Since.IsZero() {
		put("since", strconv.FormatInt(r.Since.Unix(), 10))
	}
	put("created", strconv.FormatBool(r.Created))
	for _, a := range r.Addrs {
		put("addr", a)
	}
	keys := make([]string, 0, len(r.Sysctls))
	for k := range r.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		put("sysctl."+k, r.Sysctls[k])
	}
	put("nat", strconv.FormatBool(r.NAT))
	put("uplink", r.Uplink)
	if r.Uplink != "" {
		put("uplink.up", strconv.FormatBool(r.UplinkUp))
		put("uplink.master", r.UplinkMaster)
	}
	for _, a := range r.UplinkAddrs {
		put("uplink.addr", a)
	}
	for _, rt := range r.UplinkRoutes {
		put("uplink.route", rt)
	}
	return b.Bytes()
}

// DecodeBridge parses a record written by Encode. Unknown keys are skipped.
func DecodeBridge(data []byte) (*BridgeRecord, error) {
	r := &BridgeRecord{}
	if err := eachLine(data, r.set); err != nil {
		return nil, err
	}
	if r.Bridge == "" {
		return nil, errors.New("no bridge= line")
	}
	return r, nil
}

func (r *BridgeRecord) set(k, v string) error {
	var err error
	switch {
	case k == "bridge":
		r.Bridge = v
	case k == "model":
		r.Model = v
	case k == "since":
		r.Since, err = parseSince(v)
	case k == "created":
		r.Created, err = strconv.ParseBool(v)
	case k == "addr":
		r.Addrs = append(r.Addrs, v)
	case strings.HasPrefix(k, "sysctl."):
		if r.Sysctls == nil {
			r.Sysctls = map[string]string{}
		}
		r.Sysctls[strings.TrimPrefix(k, "sysctl.")] = v
	case k == "nat":
		r.NAT, err = strconv.ParseBool(v)
	case k == "uplink":
		r.Uplink = v
	case k == "uplink.up":
		r.UplinkUp, err = strconv.ParseBool(v)
	case k == "uplink.master":
		r.UplinkMaster = v
	case k == "uplink.addr":
		r.UplinkAddrs = append(r.UplinkAddrs, v)
	case k == "uplink.route":
		r.UplinkRoutes = append(r.UplinkRoutes, v)
	}
	return err
}

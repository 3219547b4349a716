package state

import (
	"fmt"
	"strings"
	"time"

	"github.com/ifhook/ifhook/ifhook/policy"
)

// BridgeRecord is what ifhook did for one bridge of the policy: the steps
// it applied, in order, each a line of package plan's record format with
// everything undoing it takes (the old values). Teardown undoes them in
// reverse, whatever the policy says by then. Steps of a plan being applied
// are written first as pending (write-ahead), and marked done once the
// plan completes: pending steps found later are those of a plan that was
// killed, which the next ifhook undoes before anything else. It lives at
// DIR/bridges/NAME.
type BridgeRecord struct {
	Bridge string
	Model  string
	Since  time.Time
	Steps  []StepLine
}

// StepLine is one step of a bridge record.
type StepLine struct {
	Pending bool   // written ahead of a plan not known to have completed
	Line    string // the step, in plan's record format
}

// Done returns the lines of the steps known to be done.
func (r *BridgeRecord) Done() []string { return r.lines(false) }

// Pending returns the lines of the steps of a plan that did not complete.
func (r *BridgeRecord) Pending() []string { return r.lines(true) }

func (r *BridgeRecord) lines(pending bool) []string {
	var out []string
	for _, s := range r.Steps {
		if s.Pending == pending {
			out = append(out, s.Line)
		}
	}
	return out
}

var bridgeCodec = newCodec(
	field[BridgeRecord]{key: "bridge", get: func(r *BridgeRecord) string { return r.Bridge },
		set: func(r *BridgeRecord, v string) error { return ifname(&r.Bridge, v) }},
	field[BridgeRecord]{key: "model", get: func(r *BridgeRecord) string { return r.Model },
		set: func(r *BridgeRecord, v string) error {
			for _, m := range policy.Models {
				if string(m) == v {
					r.Model = v
					return nil
				}
			}
			return fmt.Errorf("%q is not a network model", truncate(v))
		}},
	field[BridgeRecord]{key: "since", get: func(r *BridgeRecord) string { return sinceText(r.Since) },
		set: func(r *BridgeRecord, v string) error { return parseSince(&r.Since, v) }},
	field[BridgeRecord]{key: "step",
		each: func(r *BridgeRecord) []string {
			out := make([]string, len(r.Steps))
			for i, s := range r.Steps {
				state := "done "
				if s.Pending {
					state = "pending "
				}
				out[i] = state + s.Line
			}
			return out
		},
		set: func(r *BridgeRecord, v string) error {
			state, line, _ := strings.Cut(v, " ")
			if state != "done" && state != "pending" || line == "" {
				return fmt.Errorf("%q is not \"done STEP\" or \"pending STEP\"", truncate(v))
			}
			if len(r.Steps) >= maxSteps {
				return fmt.Errorf("more than %d steps", maxSteps)
			}
			r.Steps = append(r.Steps, StepLine{Pending: state == "pending", Line: line})
			return nil
		}},
)

// maxSteps bounds a bridge record: a bridge made and re-made many times
// still has a few dozen.
const maxSteps = 4096

// Encode renders the record as "key=value" lines; steps repeat their key.
func (r *BridgeRecord) Encode() []byte { return bridgeCodec.encode(r) }

// DecodeBridge parses a record written by Encode, refusing anything else.
// The steps' own lines are checked by package plan.
func DecodeBridge(data []byte) (*BridgeRecord, error) {
	r := &BridgeRecord{}
	if err := bridgeCodec.decode(data, r); err != nil {
		return nil, err
	}
	if r.Bridge == "" || r.Model == "" {
		return nil, fmt.Errorf("%w: no bridge= or model= line", ErrCorrupt)
	}
	return r, nil
}

// ReadBridge returns the record of a bridge, or nil when there is none
// (or when the one there could not be trusted: it is moved aside and
// reported).
func (d *Dir) ReadBridge(name string) (*BridgeRecord, error) {
	return readRecord(d, "bridges", name, DecodeBridge, func(r *BridgeRecord) string { return r.Bridge })
}

// Quarantine moves a bridge record aside that decoded but whose steps do
// not (package plan says), and reports it.
func (d *Dir) QuarantineBridge(name string, why error) {
	if dir, err := d.sub("bridges", false); err == nil {
		d.quarantine(dir, name, why)
	}
}

// WriteBridge stores a bridge record atomically and, as a bridge's record
// is what gives a host its uplink's addresses back, synced to disk.
func (d *Dir) WriteBridge(r *BridgeRecord) error {
	return writeRecord(d, "bridges", r.Bridge, r.Encode(), true)
}

// RemoveBridge deletes a bridge record; a missing one is fine.
func (d *Dir) RemoveBridge(name string) error { return removeRecord(d, "bridges", name) }

// ListBridges returns every bridge record, sorted by name.
func (d *Dir) ListBridges() ([]*BridgeRecord, error) {
	names, err := d.listNames("bridges")
	var out []*BridgeRecord
	for _, n := range names {
		r, rerr := d.ReadBridge(n)
		if rerr != nil {
			err = rerr
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, err
}

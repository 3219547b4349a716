package state

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var since = time.Date(2026, 11, 26, 17, 4, 5, 0, time.UTC)

func fullRecord() *Record {
	return &Record{
		TAP:      "vnet0",
		Index:    42,
		Bridge:   "br0",
		Since:    since,
		Rule:     `rule 1 (tap = "vnet*") at /etc/ifhook/config.toml:7`,
		Prev:     Snapshot{MAC: "52:54:00:12:34:56", MTU: 1500, Master: "br-old", Up: false},
		Set:      Snapshot{MAC: "fe:54:00:aa:bb:cc", MTU: 9000, Master: "br0", Up: true},
		VM:       "web-1",
		PID:      4242,
		GuestMAC: "52:54:00:01:02:03",
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		rec  *Record
		want string
	}{
		{
			name: "minimal",
			rec:  &Record{TAP: "vnet0"},
			want: "tap=vnet0\nprev.up=false\nset.up=false\n",
		},
		{
			name: "full",
			rec:  fullRecord(),
			want: `tap=vnet0
ifindex=42
bridge=br0
since=1795712645
rule=rule 1 (tap = "vnet*") at /etc/ifhook/config.toml:7
prev.mac=52:54:00:12:34:56
prev.mtu=1500
prev.master=br-old
prev.up=false
set.mac=fe:54:00:aa:bb:cc
set.mtu=9000
set.master=br0
set.up=true
vm=web-1
qemu_pid=4242
guest_mac=52:54:00:01:02:03
`,
		},
		{
			name: "since is written in UTC, to the second",
			rec:  &Record{TAP: "t", Since: time.Date(2026, 1, 2, 3, 4, 5, 999, time.FixedZone("X", 3600))},
			want: "tap=t\nsince=1767319445\nprev.up=false\nset.up=false\n",
		},
		{
			name: "values needing quotes",
			rec:  &Record{TAP: "t", VM: " padded ", Rule: "two\nlines", Bridge: `"quoted"`, GuestMAC: "tab\tin"},
			want: "tap=t\nbridge=\"\\\"quoted\\\"\"\nrule=\"two\\nlines\"\nprev.up=false\nset.up=false\nvm=\" padded \"\nguest_mac=\"tab\\tin\"\n",
		},
		{
			name: "values that need no quotes",
			rec:  &Record{TAP: "t", VM: `a "b" c=d`, Rule: "ends with quote\""},
			want: "tap=t\nrule=ends with quote\"\nprev.up=false\nset.up=false\nvm=a \"b\" c=d\n",
		},
		{
			name: "negative numbers",
			rec:  &Record{TAP: "t", Index: -1, PID: math.MinInt64},
			want: "tap=t\nifindex=-1\nprev.up=false\nset.up=false\nqemu_pid=-9223372036854775808\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.rec.Encode())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Encode (-want +got):\n%s", diff)
			}
			back, err := Decode([]byte(got))
			if err != nil {
				t.Fatalf("Decode(Encode()): %v", err)
			}
			want := *tt.rec
			want.Since = want.Since.UTC().Truncate(time.Second)
			if diff := cmp.Diff(&want, back); diff != "" {
				t.Errorf("Decode(Encode()) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    *Record
		wantErr string
	}{
		{
			name: "minimal",
			in:   "tap=vnet0\n",
			want: &Record{TAP: "vnet0"},
		},
		{
			name: "no final newline, blank lines",
			in:   "\n\ntap=vnet0\n\nifindex=7",
			want: &Record{TAP: "vnet0", Index: 7},
		},
		{
			name: "unknown keys are skipped",
			in:   "tap=vnet0\nfuture.key=1\nnetns=x\n",
			want: &Record{TAP: "vnet0"},
		},
		{
			name: "value holding '='",
			in:   "tap=vnet0\nvm=a=b\n",
			want: &Record{TAP: "vnet0", VM: "a=b"},
		},
		{
			name: "quoted value",
			in:   "tap=vnet0\nrule=\"a\\nb \\\"c\\\"\"\n",
			want: &Record{TAP: "vnet0", Rule: "a\nb \"c\""},
		},
		{
			name: "later line wins",
			in:   "tap=a\ntap=b\n",
			want: &Record{TAP: "b"},
		},
		{
			name: "since with an offset",
			in:   "tap=t\nsince=2026-11-26T18:04:05+01:00\n",
			want: &Record{TAP: "t", Since: since},
		},
		{name: "empty", in: "", wantErr: "no tap= line"},
		{name: "no tap", in: "bridge=br0\n", wantErr: "no tap= line"},
		{name: "empty tap", in: "tap=\n", wantErr: "no tap= line"},
		{name: "line without =", in: "tap=x\nbroken\n", wantErr: "line 2: no '='"},
		{name: "bad quoting", in: "tap=\"x\n", wantErr: "line 1: tap: bad quoting"},
		{name: "bad ifindex", in: "tap=x\n\nifindex=seven\n", wantErr: "line 3: ifindex: "},
		{name: "bad mtu", in: "tap=x\nset.mtu=1e3\n", wantErr: "line 2: set.mtu: "},
		{name: "bad up", in: "tap=x\nprev.up=maybe\n", wantErr: "line 2: prev.up: "},
		{name: "bad since", in: "tap=x\nsince=yesterday\n", wantErr: "line 2: since: "},
		{name: "bad pid", in: "tap=x\nqemu_pid=99999999999999999999\n", wantErr: "line 2: qemu_pid: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Decode = %+v, want error %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Decode error = %q, want it to contain %q", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("Decode returned %+v with its error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

// fuzzRecord builds a record from fuzzed values; since is clamped into the
// years RFC 3339 can write (1970-9999).
func fuzzRecord(tap, bridge, rule, vm, mac, master string, idx, mtu, pid int, up bool, sinceSec int64) *Record {
	r := &Record{
		TAP: tap, Index: idx, Bridge: bridge, Rule: rule,
		Prev:     Snapshot{MAC: mac, MTU: mtu, Master: master, Up: up},
		Set:      Snapshot{MAC: master, MTU: -mtu, Master: bridge, Up: !up},
		VM:       vm,
		PID:      pid,
		GuestMAC: mac + rule,
	}
	const maxSec = 253402300799 // 9999-12-31T23:59:59Z
	if sinceSec != 0 {
		if sinceSec < 0 {
			sinceSec = -(sinceSec + 1)
		}
		r.Since = time.Unix(sinceSec%maxSec, 0).UTC()
	}
	return r
}

func FuzzRecordDecode(f *testing.F) {
	f.Add(string(fullRecord().Encode()), "vnet0", "br0", "rule 1", "vm", "52:54:00:12:34:56", "br1", 42, 1500, 77, true, int64(1764176645))
	f.Add("tap=x\nrule=\"a\\nb\"\n", "", "", "", "", "", "", 0, 0, 0, false, int64(0))
	f.Add("tap=\"\\x80\"\nsince=2026-01-01T00:00:00.5Z\n", " lead", "trail ", "\"q", "a\nb", "\t", "\x00", -1, -1500, -9, false, int64(-5))
	f.Add("tap=x\n", "x=y", "=", "\"\"", "\\", "\r\n", "é", 1, 2, 3, true, int64(253402300799))
	f.Add("tap=x\nsince=9999-12-31T23:00:00-02:00\n", "t", "", "", "", "", "", 0, 0, 0, false, int64(0)) // known bug
	f.Fuzz(func(t *testing.T, data string, tap, bridge, rule, vm, mac, master string, idx, mtu, pid int, up bool, sinceSec int64) {
		// Decode never panics; what it accepts re-encodes to a fixed point.
		if r1, err := Decode([]byte(data)); err == nil {
			if r1.TAP == "" {
				t.Fatalf("Decode(%q) accepted a record without a TAP", data)
			}
			enc1 := r1.Encode()
			r2, err := Decode(enc1)
			if err != nil && r1.Since.UTC().Year() > 9999 {
			}
			if err != nil {
				t.Fatalf("Decode(%q) = %+v, whose encoding %q does not decode: %v", data, r1, enc1, err)
			}
			if enc2 := r2.Encode(); string(enc2) != string(enc1) {
				t.Errorf("encoding is not a fixed point:\n%q\n%q", enc1, enc2)
			}
		}

		// Records built from fuzzed values survive Encode then Decode.
		r := fuzzRecord(tap, bridge, rule, vm, mac, master, idx, mtu, pid, up, sinceSec)
		enc := r.Encode()
		for i, line := range strings.Split(strings.TrimSuffix(string(enc), "\n"), "\n") {
			if !strings.Contains(line, "=") {
				t.Fatalf("encoded line %d %q has no '='", i+1, line)
			}
		}
		got, err := Decode(enc)
		if tap == "" {
			if err == nil {
				t.Errorf("Decode of a record without a TAP succeeded: %+v", got)
			}
			return
		}
		if err != nil {
			t.Fatalf("Decode(%q): %v", enc, err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("Decode(Encode(r)) (-want +got):\n%s\nencoded: %q", diff, enc)
		}
	})
}

package state

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ifhook/ifhook/ifhook/exit"
)

func openTemp(t *testing.T) (*Dir, *[]error) {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "run", "ifhook"))
	if err != nil {
		t.Fatal(err)
	}
	var reports []error
	d.Report = func(err error) { reports = append(reports, err) }
	t.Cleanup(d.Close)
	return d, &reports
}

func fullRecord() *Record {
	return &Record{TAP: "vnet0", Index: 7, Bridge: "br0", Since: time.Unix(1700000000, 0).UTC(), Rule: `rule 1 (tap = "vnet*") at /etc/ifhook/config.toml:3`,
		Prev: Snapshot{MAC: "aa:bb:cc:dd:ee:ff", MTU: 1500, Up: false},
		Set:  Snapshot{MAC: "fe:54:00:00:00:01", MTU: 9000, Master: "br0", Up: true},
		VM:   "web \"1\"\nforged", PID: 4242, GuestMAC: "52:54:00:00:00:01", DHCP: true, IP: "192.168.100.23"}
}

func TestRecordRoundTrip(t *testing.T) {
	d, _ := openTemp(t)
	r := fullRecord()
	if err := d.Write(r); err != nil {
		t.Fatal(err)
	}
	got, err := d.Read("vnet0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	for _, p := range []string{d.Path, filepath.Join(d.Path, "taps")} {
		st, err := os.Stat(p)
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want a 0700 directory", p, st.Mode(), err)
		}
	}
	if got, _ := d.Read("vnet9"); got != nil {
		t.Fatal("a missing record read as one")
	}
	list, err := d.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	if err := d.Remove("vnet0"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("vnet0"); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

// TestCorruptRecords: every kind of record that cannot be trusted is moved
// aside, reported once, and read as none; it never blocks a later run.
func TestCorruptRecords(t *testing.T) {
	good := string(fullRecord().Encode())
	for _, tt := range []struct {
		name, content, why string
	}{
		{"garbage", "\x00\x01\x02", "no '='"},
		{"unknown key", good + "tap_path=../../victim\n", "unknown key"},
		{"duplicate", good + "tap=vnet0\n", "twice"},
		{"bad mtu", strings.Replace(good, "set.mtu=9000", "set.mtu=9999999", 1), "set.mtu"},
		{"path in a name", strings.Replace(good, "bridge=br0", "bridge=../../etc", 1), "bridge"},
		{"other tap", strings.Replace(good, "tap=vnet0", "tap=vnet1", 1), `names "vnet1"`},
		{"no ifindex", strings.Replace(good, "ifindex=7\n", "", 1), "no tap= or ifindex="},
		{"huge", good + "rule=" + strings.Repeat("x", MaxRecord) + "\n", "larger than 64 KiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, reports := openTemp(t)
			if err := d.Write(&Record{TAP: "vnet0", Index: 1}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(d.Path, "taps", "vnet0")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				r, err := d.Read("vnet0")
				if r != nil || err != nil {
					t.Fatalf("Read #%d = %+v, %v; want none", i, r, err)
				}
			}
			if len(*reports) != 1 || !strings.Contains((*reports)[0].Error(), tt.why) {
				t.Fatalf("reports %v, want one saying %q", *reports, tt.why)
			}
			if _, err := os.Stat(path + ":corrupt"); err != nil {
				t.Fatalf("not moved aside: %v", err)
			}
			if list, err := d.List(); err != nil || len(list) != 0 {
				t.Fatalf("List after = %v, %v", list, err)
			}
		})
	}
}

func TestRecordThatIsNotAFile(t *testing.T) {
	d, reports := openTemp(t)
	if err := d.Write(&Record{TAP: "vnet0", Index: 1}); err != nil {
		t.Fatal(err)
	}
	taps := filepath.Join(d.Path, "taps")
	if err := syscall.Mkfifo(filepath.Join(taps, "fifo0"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/etc/passwd", filepath.Join(taps, "link0"))
	// A sparse 2 GB record is refused by its size, never read.
	f, _ := os.Create(filepath.Join(taps, "big0"))
	f.Truncate(2 << 30)
	f.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		list, err := d.List()
		if err != nil || len(list) != 1 || list[0].TAP != "vnet0" {
			t.Errorf("List = %v, %v", list, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("List blocked on a FIFO")
	}
	if len(*reports) != 3 {
		t.Fatalf("reports %v, want 3", *reports)
	}
	for _, n := range []string{"fifo0", "link0", "big0"} {
		if _, err := os.Lstat(filepath.Join(taps, n+":corrupt")); err != nil {
			t.Errorf("%s not moved aside: %v", n, err)
		}
	}
}

func TestUnsafeDirectory(t *testing.T) {
	t.Run("world-writable", func(t *testing.T) {
		d, _ := openTemp(t)
		if err := os.MkdirAll(d.Path, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d.Path, 0o777)
		err := d.Write(&Record{TAP: "vnet0", Index: 1})
		if exit.Code(err) != 73 || !strings.Contains(err.Error(), "writable by its group or others (mode 0777)") {
			t.Fatalf("Write = %v", err)
		}
	})
	t.Run("subdir writable", func(t *testing.T) {
		d, _ := openTemp(t)
		os.MkdirAll(filepath.Join(d.Path, "taps"), 0o700)
		os.Chmod(filepath.Join(d.Path, "taps"), 0o770)
		err := d.Write(&Record{TAP: "vnet0", Index: 1})
		if exit.Code(err) != 73 || !strings.Contains(err.Error(), "taps is writable") {
			t.Fatalf("Write = %v", err)
		}
	})
	t.Run("symlinked dir", func(t *testing.T) {
		d, _ := openTemp(t)
		elsewhere := t.TempDir()
		os.MkdirAll(filepath.Dir(d.Path), 0o755)
		os.Symlink(elsewhere, d.Path)
		_, err := d.Lock(time.Second)
		if exit.Code(err) != 73 || !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("Lock = %v", err)
		}
		if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
			t.Fatalf("wrote through the symlink: %v", entries)
		}
	})
	t.Run("planted lock symlink", func(t *testing.T) {
		d, _ := openTemp(t)
		os.MkdirAll(d.Path, 0o700)
		victim := filepath.Join(t.TempDir(), "victim")
		os.Symlink(victim, filepath.Join(d.Path, "lock"))
		_, err := d.Lock(time.Second)
		if exit.Code(err) != 73 {
			t.Fatalf("Lock = %v", err)
		}
		if _, err := os.Stat(victim); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("the lock was created through a symlink")
		}
	})
	t.Run("owned by another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to chown")
		}
		d, _ := openTemp(t)
		os.MkdirAll(d.Path, 0o700)
		os.Chown(d.Path, 1234, 1234)
		err := d.Write(&Record{TAP: "vnet0", Index: 1})
		if exit.Code(err) != 73 || !strings.Contains(err.Error(), "owned by uid 1234") {
			t.Fatalf("Write = %v", err)
		}
	})
	t.Run("relative path", func(t *testing.T) {
		if _, err := Open("run/ifhook"); exit.Code(err) != 73 {
			t.Fatalf("Open of a relative path = %v", err)
		}
	})
}

func TestBridgeRecord(t *testing.T) {
	d, reports := openTemp(t)
	r := &BridgeRecord{Bridge: "br-nat", Model: "nat", Since: time.Unix(1700000000, 0).UTC(), Steps: []StepLine{
		{Line: "bridge-add name=br-nat stp=0 delay=0 index=5"},
		{Line: "sysctl key=net.ipv4.ip_forward value=1 old=0"},
		{Pending: true, Line: `addr-add dev=br-nat index=5 addr=192.0.2.1/24`},
	}}
	if err := d.WriteBridge(r); err != nil {
		t.Fatal(err)
	}
	got, err := d.ReadBridge("br-nat")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if len(got.Done()) != 2 || len(got.Pending()) != 1 {
		t.Fatalf("Done %v, Pending %v", got.Done(), got.Pending())
	}
	os.WriteFile(filepath.Join(d.Path, "bridges", "br-bad"), []byte("bridge=br-bad\nmodel=wormhole\n"), 0o600)
	list, err := d.ListBridges()
	if err != nil || len(list) != 1 || len(*reports) != 1 {
		t.Fatalf("ListBridges = %v, %v; reports %v", list, err, *reports)
	}
}

func TestInflightAndTemp(t *testing.T) {
	d, _ := openTemp(t)
	if d.Inflight() {
		t.Fatal("inflight before anything")
	}
	if err := d.MarkInflight("br0"); err != nil {
		t.Fatal(err)
	}
	if !d.Inflight() {
		t.Fatal("not inflight after MarkInflight")
	}
	if err := d.ClearInflight(); err != nil || d.Inflight() {
		t.Fatalf("ClearInflight: %v", err)
	}
	// A temporary file of a process that is gone is collected; one of a
	// live process (ours) is not.
	d.Write(&Record{TAP: "vnet0", Index: 1})
	dead := filepath.Join(d.Path, "taps", "vnet1:999999999.tmp")
	live := filepath.Join(d.Path, "taps", "vnet2:"+itoa(os.Getpid())+".tmp")
	os.WriteFile(dead, nil, 0o600)
	os.WriteFile(live, nil, 0o600)
	removed, err := d.CollectTemp()
	if err != nil || len(removed) != 1 || removed[0] != dead {
		t.Fatalf("CollectTemp = %v, %v", removed, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatal("a live process's temporary file was removed")
	}
}

func TestMACIndex(t *testing.T) {
	d, _ := openTemp(t)
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	if o, err := d.MACOwner("br0", mac); o != "" || err != nil {
		t.Fatalf("MACOwner of nothing = %q, %v", o, err)
	}
	if err := d.ClaimMAC("br0", mac, "vnet0"); err != nil {
		t.Fatal(err)
	}
	if o, _ := d.MACOwner("br0", mac); o != "vnet0" {
		t.Fatalf("owner %q", o)
	}
	if err := d.ReleaseMAC("br0", mac, "vnet1"); err != nil {
		t.Fatal(err)
	}
	if o, _ := d.MACOwner("br0", mac); o != "vnet0" {
		t.Fatal("another TAP released the claim")
	}
	if err := d.ReleaseMAC("br0", mac, "vnet0"); err != nil {
		t.Fatal(err)
	}
	if o, _ := d.MACOwner("br0", mac); o != "" {
		t.Fatal("not released")
	}
	if _, err := d.MACOwner("../x", mac); err == nil {
		t.Fatal("a path as a bridge name was accepted")
	}
}

func TestLockShared(t *testing.T) {
	d, _ := openTemp(t)
	a, err := d.LockShared(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := Open(d.Path)
	defer d2.Close()
	b, err := d2.LockShared(time.Second)
	if err != nil {
		t.Fatalf("a second shared holder waits: %v", err)
	}
	if d2.TryLock() != nil {
		t.Fatal("TryLock got the lock while it is held shared")
	}
	if _, err := d2.Lock(100 * time.Millisecond); exit.Code(err) != 75 {
		t.Fatalf("exclusive while shared = %v", err)
	}
	a.Unlock()
	b.Unlock()
	// The exclusive wait given up above is granted now, in its goroutine,
	// which lets it go at once: until then the lock is not free.
	l := d2.TryLock()
	for deadline := time.Now().Add(2 * time.Second); l == nil && time.Now().Before(deadline); l = d2.TryLock() {
		time.Sleep(time.Millisecond)
	}
	if l == nil {
		t.Fatal("TryLock failed on a free lock")
	}
	l.Unlock()
}

func TestLock(t *testing.T) {
	d, _ := openTemp(t)
	l, err := d.Lock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A second holder in this process (flock is per open file) waits,
	// then gives up with 75.
	d2, _ := Open(d.Path)
	defer d2.Close()
	start := time.Now()
	_, err = d2.Lock(200 * time.Millisecond)
	if exit.Code(err) != 75 || !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("contended Lock = %v", err)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("gave up after %v", el)
	}
	// It is granted the moment the holder lets go.
	go func() { time.Sleep(100 * time.Millisecond); l.Unlock() }()
	l2, err := d2.Lock(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The waiter that gave up holds nothing: a third can lock once l2 is
	// released.
	l2.Unlock()
	l3, err := d.Lock(time.Second)
	if err != nil {
		t.Fatalf("after an abandoned wait: %v", err)
	}
	l3.MarkSwept(time.Now())
	if l3.SweepDue(time.Now(), time.Hour) {
		t.Error("due right after a sweep")
	}
	if !l3.SweepDue(time.Now().Add(2*time.Hour), time.Hour) {
		t.Error("not due an hour after")
	}
	l3.Unlock()
}

func FuzzDecode(f *testing.F) {
	f.Add(fullRecord().Encode())
	f.Add([]byte("tap=vnet0\nifindex=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := Decode(r.Encode())
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(r, again); diff != "" {
			t.Fatalf("not stable:\n%s", diff)
		}
	})
}

func FuzzDecodeBridge(f *testing.F) {
	f.Add([]byte("bridge=br0\nmodel=nat\nstep=done sysctl key=net.ipv4.ip_forward value=1 old=0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeBridge(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if _, err := DecodeBridge(r.Encode()); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// testGID is the shared group of these tests: a number, not in
// /etc/group; the kernel needs no name.
const testGID = 64990

// sharedTemp makes a shared (bridge helper) directory as root does.
func sharedTemp(t *testing.T) *Dir {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root to chown a directory to the helper's group, and CI is set")
		}
		t.Skip("needs root to chown a directory to the helper's group")
	}
	base := t.TempDir()
	path := filepath.Join(base, "ifhook-helper")
	if err := MakeShared(path, testGID); err != nil {
		t.Fatal(err)
	}
	d, err := OpenShared(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func TestHelperDir(t *testing.T) {
	if got := HelperDir("/run/ifhook/"); got != "/run/ifhook-helper" {
		t.Fatalf("HelperDir = %q", got)
	}
	if DefaultHelperDir != "/run/ifhook-helper" {
		t.Fatalf("DefaultHelperDir = %q", DefaultHelperDir)
	}
}

// TestSharedModes: whatever the umask, what is made in a shared directory
// is exactly what every helper run needs to read it (files 0640,
// directories 2770 of the group, the lock 0660), and records there must
// say helper=true.
func TestSharedModes(t *testing.T) {
	d := sharedTemp(t)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	r := fullRecord()
	r.Helper, r.UID = true, 64001
	if err := d.Write(r); err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("52:54:00:ab:cd:ef")
	if err := d.Claim("br0", mac, "tap0", 42); err != nil {
		t.Fatal(err)
	}
	l, err := d.Lock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	for path, want := range map[string]os.FileMode{
		d.Path:                                             0o770 | os.ModeSetgid | os.ModeDir,
		filepath.Join(d.Path, "taps"):                      0o770 | os.ModeSetgid | os.ModeDir,
		filepath.Join(d.Path, "macs", "br0"):               0o770 | os.ModeSetgid | os.ModeDir,
		filepath.Join(d.Path, "taps", "vnet0"):             0o640,
		filepath.Join(d.Path, "macs", "br0", mac.String()): 0o640,
		filepath.Join(d.Path, "lock"):                      0o660,
	} {
		st, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), want)
		}
		if gid := st.Sys().(*syscall.Stat_t).Gid; gid != testGID {
			t.Errorf("%s: group %d, want %d", path, gid, testGID)
		}
	}
	got, err := d.Read("vnet0")
	if err != nil || got == nil || !got.Helper || got.UID != 64001 {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	if owner, index, err := d.MACClaim("br0", mac); owner != "tap0" || index != 42 || err != nil {
		t.Fatalf("MACClaim = %q, %d, %v", owner, index, err)
	}
	// Root's kind of record has no place here.
	plain := fullRecord()
	plain.TAP = "vnet1"
	if err := os.WriteFile(filepath.Join(d.Path, "taps", "vnet1"), plain.Encode(), 0o640); err != nil {
		t.Fatal(err)
	}
	var reports []error
	d.Report = func(err error) { reports = append(reports, err) }
	if got, err := d.Read("vnet1"); got != nil || err != nil {
		t.Fatalf("a record without helper=true read as %+v, %v", got, err)
	}
	if len(reports) != 1 || !strings.Contains(reports[0].Error(), "helper=true") {
		t.Fatalf("reports = %v", reports)
	}
}

// TestSharedRule: the looser rule is the shared directory's alone, and
// exactly as loose as it must be.
func TestSharedRule(t *testing.T) {
	d := sharedTemp(t)
	if _, err := d.sub("taps", false); err != nil {
		t.Fatalf("a good shared directory: %v", err)
	}
	// Root's kind of directory refuses the same tree: group-writable.
	plain, _ := Open(d.Path)
	defer plain.Close()
	if _, err := plain.List(); exit.Code(err) != 73 || !strings.Contains(err.Error(), "writable by its group") {
		t.Fatalf("as root's directory: %v", err)
	}
	// The helper's group must be the directory's.
	other, _ := OpenShared(d.Path, testGID+1)
	defer other.Close()
	if _, err := other.List(); exit.Code(err) != 73 || !strings.Contains(err.Error(), "not the bridge helper's group") {
		t.Fatalf("another group: %v", err)
	}
	// A subdirectory another user made is fine when it has the group, the
	// set-group-ID bit and nothing for others.
	macs := filepath.Join(d.Path, "macs")
	sub := filepath.Join(macs, "br1")
	os.Mkdir(sub, 0o700)
	os.Chown(sub, 64001, testGID)
	os.Chmod(sub, 0o770|os.ModeSetgid)
	mac, _ := net.ParseMAC("52:54:00:00:00:09")
	if _, err := d.MACOwner("br1", mac); err != nil {
		t.Fatalf("a helper-made subdirectory: %v", err)
	}
	for _, tc := range []struct {
		name  string
		setup func(path string)
		path  string
		want  string
	}{
		{"top not root's", func(p string) { os.Chown(p, 64001, testGID) }, d.Path, "not root"},
		{"top group root", func(p string) { os.Chown(p, 0, 0) }, d.Path, "group is root's"},
		{"top open to others", func(p string) { os.Chmod(p, 0o771|os.ModeSetgid) }, d.Path, "open to others"},
		{"sub open to others", func(p string) { os.Chmod(p, 0o775|os.ModeSetgid) }, sub, "open to others"},
		{"sub without setgid", func(p string) { os.Chmod(p, 0o770) }, sub, "set-group-ID"},
		{"sub of another group", func(p string) { os.Chown(p, 64001, testGID+1) }, sub, "not the bridge helper's group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st syscall.Stat_t
			syscall.Stat(tc.path, &st)
			t.Cleanup(func() {
				os.Chown(tc.path, int(st.Uid), int(st.Gid))
				os.Chmod(tc.path, os.FileMode(st.Mode&0o777)|os.ModeSetgid)
			})
			tc.setup(tc.path)
			fresh, _ := OpenShared(d.Path, testGID)
			defer fresh.Close()
			_, err := fresh.MACOwner("br1", mac)
			if exit.Code(err) != 73 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want exit 73 saying %q", err, tc.want)
			}
		})
	}
}

// TestSharedNotMade: a shared directory is made by root for its group,
// never on first use.
func TestSharedNotMade(t *testing.T) {
	d, err := OpenShared(filepath.Join(t.TempDir(), "ifhook-helper"), testGID)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if ok, err := d.Exists(); ok || err != nil {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	if err := d.Write(&Record{TAP: "tap0", Index: 1, Helper: true}); err == nil {
		t.Fatal("a record was written into a directory that was not there")
	}
	if _, err := os.Stat(d.Path); !os.IsNotExist(err) {
		t.Fatalf("the directory was made: %v", err)
	}
	if err := MakeShared(d.Path, 0); err == nil {
		t.Fatal("MakeShared accepted root's group")
	}
}

func TestParseClaim(t *testing.T) {
	for _, tc := range []struct {
		in    string
		tap   string
		index int
		ok    bool
	}{
		{"vnet0\n", "vnet0", 0, true},
		{"tap3 17\n", "tap3", 17, true},
		{"tap3 0\n", "", 0, false},
		{"tap3 x\n", "", 0, false},
		{"../x\n", "", 0, false},
		{"", "", 0, false},
	} {
		tap, index, ok := parseClaim(tc.in)
		if tap != tc.tap || index != tc.index || ok != tc.ok {
			t.Errorf("parseClaim(%q) = %q, %d, %v", tc.in, tap, index, ok)
		}
	}
}

// TestLockMACsWithin: a bridge's guest-MAC index held too long (a bridge
// helper its user stopped) is given up on, with ErrMACsBusy and 75.
func TestLockMACsWithin(t *testing.T) {
	d, _ := openTemp(t)
	unlock, err := d.LockMACs("br0")
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := Open(d.Path)
	defer d2.Close()
	start := time.Now()
	_, err = d2.LockMACsWithin("br0", 100*time.Millisecond)
	if !errors.Is(err, ErrMACsBusy) || exit.Code(err) != 75 || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("LockMACsWithin of a held index = %v after %v", err, time.Since(start))
	}
	go func() { time.Sleep(50 * time.Millisecond); unlock() }()
	u2, err := d2.LockMACsWithin("br0", 5*time.Second)
	if err != nil {
		t.Fatalf("LockMACsWithin once it is let go: %v", err)
	}
	u2()
}

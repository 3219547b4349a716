package helper

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ifhook/ifhook/ifhook"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/nstest"
	"github.com/ifhook/ifhook/ifhook/state"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { nstest.GuardRootNS(m) }

// helperGID is the shared group of these tests.
const helperGID = 64992

// runEnv is a helper run's files: policy, bridge.conf and state, all in
// a temporary directory, and the helper's shared directory beside the
// state directory.
type runEnv struct {
	t      *testing.T
	ns     *nstest.NS
	opts   Options
	logBuf strings.Builder
}

func newRunEnv(t *testing.T, policyText, bridgeConf string) *runEnv {
	t.Helper()
	ns := nstest.New(t)
	dir := t.TempDir()
	e := &runEnv{t: t, ns: ns}
	e.opts = Options{
		PolicyFile: filepath.Join(dir, "config.toml"),
		ACLFile:    filepath.Join(dir, "bridge.conf"),
		StateDir:   filepath.Join(dir, "state"),
		Log:        &ifhook.Log{Stderr: &e.logBuf},
	}
	os.WriteFile(e.opts.PolicyFile, []byte(policyText), 0o644)
	if bridgeConf != "" {
		os.WriteFile(e.opts.ACLFile, []byte(bridgeConf), 0o644)
	}
	if err := state.MakeShared(state.HelperDir(e.opts.StateDir), helperGID); err != nil {
		t.Fatal(err)
	}
	return e
}

// qemu plays QEMU's side of net_bridge_run_helper: a socketpair, the
// helper run with one end as --fd=N, and, once it returns, whatever it
// sent on the other. The run happens on a thread inside the namespace, as
// QEMU's child runs inside QEMU's.
func (e *runEnv) qemu(args ...string) (data []byte, fds []int, err error) {
	e.t.Helper()
	sv, serr := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if serr != nil {
		e.t.Fatal(serr)
	}
	defer unix.Close(sv[0])
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "FD", strconv.Itoa(sv[1]))
	}
	err = e.ns.Do(func() error { return Run(args, e.opts) })
	unix.Close(sv[1]) // the helper's end: QEMU's child exits
	if rerr := unix.SetNonblock(sv[0], true); rerr != nil {
		e.t.Fatal(rerr)
	}
	d, f, rerr := RecvFD(sv[0])
	if rerr == nil {
		data, fds = d, f
	} else if len(d) > 0 {
		e.t.Fatalf("received %q with no descriptor: %v", d, rerr)
	}
	return data, fds, err
}

func TestRunSendsOneTAP(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		vnet bool
	}{
		{"QEMU's arguments", []string{"--use-vnet", "--fd=FD", "--br=br0"}, true},
		{"libvirt's, without vnet", []string{"--br=br0", "--fd=FD"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRunEnv(t, "bridge = \"br9\"\n", "allow br0\n")
			br := e.ns.AddBridge(t, "br0")
			if err := e.ns.Handle.LinkSetMTU(br, 1400); err != nil {
				t.Fatal(err)
			}
			data, fds, err := e.qemu(tc.args...)
			if err != nil {
				t.Fatalf("Run: %v (log %q)", err, e.logBuf.String())
			}
			// Exactly one descriptor, with one zero byte.
			if string(data) != "\x00" || len(fds) != 1 {
				t.Fatalf("received %q and %d descriptors; want one zero byte and one", data, len(fds))
			}
			fd := fds[0]
			defer func() {
				if fd >= 0 {
					unix.Close(fd)
				}
			}()
			name, flags, err := TAPFlags(fd)
			if err != nil {
				t.Fatalf("the descriptor is not a TUN/TAP: %v", err)
			}
			if flags&unix.IFF_TAP == 0 || flags&unix.IFF_NO_PI == 0 {
				t.Errorf("flags %#x lack IFF_TAP|IFF_NO_PI", flags)
			}
			if got := flags&unix.IFF_VNET_HDR != 0; got != tc.vnet {
				t.Errorf("IFF_VNET_HDR = %v, want %v", got, tc.vnet)
			}
			if !strings.HasPrefix(name, "tap") {
				t.Errorf("TAP %q: the kernel names it tap%%d", name)
			}
			l := e.ns.Link(t, name).Attrs()
			if l.MasterIndex != br.Index || l.MTU != 1400 || l.Flags&1 == 0 || l.HardwareAddr[0] != 0xfe {
				t.Errorf("%s: master %d (br0 is %d), MTU %d, flags %v, MAC %s", name, l.MasterIndex, br.Index, l.MTU, l.Flags, l.HardwareAddr)
			}
			sd, _ := state.OpenShared(state.HelperDir(e.opts.StateDir), helperGID)
			defer sd.Close()
			rec, err := sd.Read(name)
			if err != nil || rec == nil || !rec.Helper || rec.Bridge != "br0" {
				t.Fatalf("record %+v, %v", rec, err)
			}
			// QEMU closes it: the TAP is gone.
			unix.Close(fd)
			fd = -1
			deadline := time.Now().Add(5 * time.Second)
			for e.ns.HasLink(name) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if e.ns.HasLink(name) {
				t.Fatalf("%s is still there after its last descriptor closed", name)
			}
		})
	}
}

// TestRunRefusals: what the helper refuses leaves no TAP, no descriptor
// and no record, and says why in one line.
func TestRunRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, policy, conf string
		args               []string
		code               int
		want               string
	}{
		{"denied", "", "allow br1\n", []string{"--use-vnet", "--fd=FD", "--br=br0"}, 77,
			"access denied by acl file (no allow for br0 in"},
		{"denied by a deny", "", "allow all\ndeny br0\n", []string{"--br=br0", "--fd=FD"}, 77,
			"access denied by acl file ("},
		{"no ACL at all", "", "", []string{"--br=br0", "--fd=FD"}, 78,
			"failed to parse default acl file"},
		{"a broken ACL", "", "allow br0\nalow br1\n", []string{"--br=br0", "--fd=FD"}, 78,
			":2: Unknown command `alow'"},
		{"a missing bridge the policy describes", "[bridges.br9]\nmodel = \"isolated\"\n", "allow all\n", []string{"--br=br9", "--fd=FD"}, 69,
			`bridge "br9" does not exist; the bridge helper attaches only to a bridge that exists, and never makes one`},
		{"a TAP as the bridge", "", "allow all\n", []string{"--br=vnet7", "--fd=FD"}, 69,
			`"vnet7" is a TAP, not a bridge`},
		{"not a socket", "", "allow all\n", []string{"--br=br0", "--fd=0"}, 64, "--fd=0 is not a socket"},
		{"no such descriptor", "", "allow all\n", []string{"--br=br0", "--fd=999"}, 64, "--fd=999: bad file descriptor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRunEnv(t, tc.policy, tc.conf)
			e.ns.AddBridge(t, "br0")
			e.ns.AddTAP(t, "vnet7")
			links, _ := e.ns.Handle.LinkList()
			if tc.args[1] == "--fd=0" {
				devnull, _ := os.Open(os.DevNull)
				defer devnull.Close()
				tc.args[1] = "--fd=" + strconv.Itoa(int(devnull.Fd()))
				tc.want = "is not a socket"
			}
			data, fds, err := e.qemu(tc.args...)
			if err == nil || exit.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Run = exit %d, %v; want %d saying %q", exit.Code(err), err, tc.code, tc.want)
			}
			if len(data) != 0 || len(fds) != 0 {
				t.Fatalf("received %q and %d descriptors from a refusal", data, len(fds))
			}
			after, _ := e.ns.Handle.LinkList()
			if len(after) != len(links) {
				t.Fatalf("%d links before, %d after", len(links), len(after))
			}
			sd, _ := state.OpenShared(state.HelperDir(e.opts.StateDir), helperGID)
			defer sd.Close()
			if recs, _ := sd.List(); len(recs) != 0 {
				t.Fatalf("records left: %+v", recs)
			}
		})
	}
}

package policy

import (
	"runtime"
	"strings"
	"testing"
)

// allocated returns how many bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// maxRejectAlloc bounds what rejecting any policy may allocate: a size,
// not a time, so the test holds on a slow or busy machine.
const maxRejectAlloc = 32 << 20

// hostile are the shapes that made the TOML decoder quadratic, at the
// largest size ifhook reads.
func hostile() map[string]string {
	return map[string]string{
		"nested inline tables": "a = " + strings.Repeat("{b=", 300000) + "1" + strings.Repeat("}", 300000),
		"nested arrays":        "a = " + strings.Repeat("[", 500000) + strings.Repeat("]", 500000),
		"dotted key":           "a" + strings.Repeat(".a", 500000) + " = 1\n",
		"dotted header":        "[a" + strings.Repeat(".a", 500000) + "]\n",
		"array of tables":      "a = [" + strings.Repeat("{b=[{c={d={e={f={g={h={i=1}}}}}}]},", 1000) + "]",
	}
}

func TestHostileShapesAreRefusedCheaply(t *testing.T) {
	for name, text := range hostile() {
		t.Run(name, func(t *testing.T) {
			if len(text) > MaxSize {
				text = text[:MaxSize]
			}
			var err error
			n := allocated(func() { _, err = Parse([]byte(text), "x.toml") })
			if err == nil {
				t.Fatal("accepted")
			}
			if n > maxRejectAlloc {
				t.Fatalf("rejecting it allocated %d MiB (limit %d MiB): %v", n>>20, maxRejectAlloc>>20, err)
			}
			if !strings.Contains(err.Error(), "x.toml:1:") {
				t.Errorf("error %q does not say where", err)
			}
		})
	}
}

func TestShapeAllowsTheSchema(t *testing.T) {
	for _, text := range []string{
		"[bridges.br0]\nmodel = \"routed\"\naddress = [\"192.0.2.1/24\", \"2001:db8::1/64\"]\n",
		"x = \"a.b.c.d.e.f.g.h.i.j\"\n", // dots in a string are not key parts
		"# [[[[[[[[[[[[[ in a comment\nbridge = \"br0\"\n",
		"a = '''\n[[[[[[[[[[[\n'''\n",
		"a = 1.5\nb = 1979-05-27T07:32:00.999999Z\n",
		"\"a.b.c.d.e.f.g.h.i\" = 1\n", // one quoted part
	} {
		if e := checkShape(text, "x"); e != nil {
			t.Errorf("checkShape(%q) = %v", text, e)
		}
	}
	for _, text := range []string{
		"a" + strings.Repeat(".b", MaxKeyParts) + " = 1\n",
		"x = " + strings.Repeat("[", MaxNesting+1) + strings.Repeat("]", MaxNesting+1),
		"t = {" + strings.Repeat("a.", MaxKeyParts) + "b = 1}",
	} {
		if e := checkShape(text, "x"); e == nil {
			t.Errorf("checkShape(%q) accepted it", text)
		}
	}
}

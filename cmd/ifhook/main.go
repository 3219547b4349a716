//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command ifhook is QEMU's network hook: symlinked as /etc/qemu-ifup and
// /etc/qemu-ifdown it attaches and detaches the TAP QEMU names, by policy;
// run as ifhook it explains, checks, lists and cleans up. See `ifhook help`.
//
// The go:debug lines above spare every run the cgroup lookups and the
// background goroutine behind GOMAXPROCS tracking: a hook lives about a
// millisecond and never runs parallel work.
package main

import "os"

func main() {
	os.Exit(run(os.Args, os.Getenv, os.Stdout, os.Stderr))
}

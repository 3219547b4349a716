package main

import (
	"fmt"

	"github.com/ifhook/ifhook/ifhook/escape"
	"github.com/ifhook/ifhook/ifhook/exit"
	"github.com/ifhook/ifhook/ifhook/helper"
	"github.com/ifhook/ifhook/ifhook/install"
	"github.com/ifhook/ifhook/ifhook/kernel"
	"github.com/ifhook/ifhook/ifhook/policy"
)

// checkBridgeConf is the part of `ifhook check` about the bridge helper:
// bridge.conf (and what it includes) must parse; with neither it nor a
// [helper] table, the helper is not in use and nothing is said.
func checkBridgeConf(c *ctx, pol *policy.Policy) error {
	acl, err := helper.LoadACL(c.bridgeConf, helper.ReadAsCaller)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s\n", escape.Line(err.Error()))
		return exit.New(exit.Policy, "check: 1 problem(s) in %s", c.bridgeConf)
	}
	inUse := len(pol.Helper.Allow)+len(pol.Helper.Deny) > 0
	switch {
	case acl.Missing && inUse:
		fmt.Fprintf(c.stdout, "%s: none; the bridge helper allows what [[helper.allow]] says (%d allow, %d deny)\n", escape.String(acl.File), len(pol.Helper.Allow), len(pol.Helper.Deny))
	case !acl.Missing:
		fmt.Fprintf(c.stdout, "%s: ok (%d rule(s) in %d file(s); the bridge helper also reads %d [[helper.allow]], %d [[helper.deny]])\n", escape.String(acl.File), len(acl.Rules), acl.Files, len(pol.Helper.Allow), len(pol.Helper.Deny))
	}
	for _, u := range acl.Unread {
		fmt.Fprintf(c.stdout, "%s: note: include not read: %s\n", escape.String(acl.File), escape.String(u))
	}
	return nil
}

// explainHelper is `ifhook explain --helper [--user NAME] BRIDGE`.
func explainHelper(c *ctx, bridge string) error {
	if c.opt.down || c.opt.vm != "" || c.opt.guestMAC != "" {
		return usageErr("explain: --helper takes no --down, --vm or --guest-mac")
	}
	caller := helper.CurrentCaller()
	if c.opt.user != "" {
		var err error
		if caller, err = helper.LookupCaller(c.opt.user); err != nil {
			return exit.Op("explain", "", err)
		}
	}
	pol, err := policy.Load(c.config)
	if err != nil {
		return exit.Op("explain", "", exit.New(exit.Policy, "policy: %w", err))
	}
	var k kernel.Kernel
	if real, err := kernel.Open(); err == nil {
		defer real.Close()
		k = real
	}
	x, err := helper.Explain(c.bridgeConf, pol, caller, bridge, k)
	if c.opt.json {
		emitJSON(c.stdout, x)
	} else {
		fmt.Fprint(c.stdout, x.Text())
	}
	return exit.Op("explain", "", err)
}

// installBridgeHelper is `ifhook install-hooks --bridge-helper [--undo]`.
func installBridgeHelper(c *ctx, bin string) error {
	opts := install.HelperOptions{Binary: bin, GID: -1, StateDir: c.stateDir}
	var done []string
	var err error
	if c.opt.undo {
		done, err = install.UnlinkHelper(opts)
	} else {
		done, err = install.LinkHelper(opts)
	}
	if err := installed(c, done, err); err != nil {
		return err
	}
	if !c.opt.undo {
		fmt.Fprintf(c.stdout, "QEMU's -netdev bridge,br=BR (and -nic bridge, libvirt's qemu:///session) now run ifhook as the bridge helper; grant users bridges in %s or with [[helper.allow]] in %s (see ifhook explain --helper)\n", escape.String(helper.DefaultACLFile), escape.String(policy.DefaultPath))
	}
	return nil
}

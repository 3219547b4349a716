package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ifhook/ifhook/ifhook"
	"github.com/ifhook/ifhook/ifhook/bridge"
	"github.com/ifhook/ifhook/ifhook/escape"
)

// emitJSON prints v as indented JSON. encoding/json escapes C0 control
// characters itself and replaces invalid UTF-8 with U+FFFD; escape.JSON
// escapes what it leaves raw (DEL, C1 controls, bidi overrides).
func emitJSON(w io.Writer, v any) {
	data, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintf(w, "%s\n", escape.JSON(data))
}

// orEmpty makes a nil list print as [] in JSON.
func orEmpty[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

func printPlans(w io.Writer, plans []*bridge.Plan) {
	for _, p := range plans {
		if p != nil {
			fmt.Fprint(w, p.Text())
		}
	}
}

// printNotes prints what plans that had nothing to do say about it
// ("ifhook has no record of br0: nothing to do").
func printNotes(w io.Writer, plans []*bridge.Plan) {
	for _, p := range plans {
		if p != nil && len(p.Steps) == 0 {
			for _, n := range p.Notes {
				fmt.Fprintf(w, "%s: %s\n", escape.String(p.Bridge), escape.String(n.Text))
			}
		}
	}
}

func printList(w io.Writer, items []ifhook.Listing) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TAP\tBRIDGE\tSINCE\tVM\tQEMU PID\tGUEST MAC\tIP\tSTATE")
	for _, it := range items {
		st := it.State
		switch st {
		case "gone":
			st = "gone (gc removes it)"
		case "detached":
			st = "detached (not on its bridge; ifdown restores it)"
		}
		if it.Helper {
			// No ifdown for these: QEMU closing the TAP removes it.
			st += fmt.Sprintf(", bridge helper's (uid %d)", it.UID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", escape.String(it.TAP), escape.String(it.Bridge), it.Since.Local().Format(time.DateTime),
			dash(escape.String(it.VM)), dashInt(it.PID), dash(it.GuestMAC), dash(it.Address), st)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dashInt(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func printStatus(w io.Writer, st bridge.Status) {
	exists := "missing"
	if st.Exists {
		exists = "exists"
		if !st.Up {
			exists += ", down"
		}
	}
	made := ""
	if st.MadeByIfhook {
		made = ", made by ifhook"
	}
	fmt.Fprintf(w, "%s: model %s, %s%s\n", escape.String(st.Name), st.Model, exists, made)
	if st.Exists {
		fmt.Fprintf(w, "  ports:     %s\n", orNone(st.Ports))
		fmt.Fprintf(w, "  addresses: %s\n", orNone(st.Addresses))
		if st.STP {
			fmt.Fprintf(w, "  stp:       on\n")
		}
	}
	if st.Uplink != "" {
		fmt.Fprintf(w, "  uplink:    %s\n", escape.String(st.Uplink))
	}
	for k, v := range st.Forwarding {
		fmt.Fprintf(w, "  %s = %s\n", k, escape.String(v))
	}
	if st.NAT != "" {
		fmt.Fprintf(w, "  NAT rule:  %s\n", escape.String(st.NAT))
	}
	if d := st.DHCP; d != nil {
		state := "not running"
		if d.Running {
			state = fmt.Sprintf("running, pid %d", d.PID)
			if len(d.Listening) > 0 {
				state += ", listening on " + strings.Join(d.Listening, ", ")
			}
		}
		fmt.Fprintf(w, "  dnsmasq:   %s\n", state)
		dns := "off"
		if d.Domain != "" {
			dns = "names under " + escape.String(d.Domain)
		}
		fmt.Fprintf(w, "  dhcp:      %s; dns %s; ipv6 %s\n", orNone(d.Ranges), dns, d.IPv6)
		for _, l := range d.Log {
			fmt.Fprintf(w, "  log:       %s\n", escape.String(l))
		}
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "  problem:   %s\n", escape.String(p))
	}
	if len(st.Missing) > 0 {
		fmt.Fprintf(w, "  setup would:\n")
		for _, m := range st.Missing {
			fmt.Fprintf(w, "    %s\n", escape.String(m))
		}
	}
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	for i, s := range list {
		list[i] = escape.String(s)
	}
	return strings.Join(list, ", ")
}

func printLeases(w io.Writer, leases []ifhook.Lease) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRIDGE\tMAC\tIP\tVM\tTAP\tNAME\tEXPIRES\tKIND\tSTATE")
	for _, l := range leases {
		exp := "-"
		if l.Expiry != nil {
			exp = l.Expiry.Local().Format(time.DateTime)
		} else if l.State != "waiting" {
			exp = "never"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", escape.String(l.Bridge), dash(l.MAC), dash(l.IP), dash(escape.String(l.VM)),
			dash(escape.String(l.TAP)), dash(escape.String(l.Name)), exp, l.Kind, l.State)
	}
	tw.Flush()
}

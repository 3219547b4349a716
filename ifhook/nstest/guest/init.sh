#!/bin/busybox sh
# /init of the ifhook test guest: PID 1 in an initramfs that holds only
# busybox, a few kernel modules, this script and /bin/ifhook-dhcp (udhcpc's
# script; see package guest).
#
# It takes its orders from the kernel command line. Dotted names are module
# parameters to the kernel, so they are neither passed to us as environment
# nor complained about: we read them back from /proc/cmdline.
#
#   ifhook.mac=52:54:00:..   MAC of the NIC to use (default: eth0)
#   ifhook.ip=A/N[,A/N...]   static addresses for it (IPv4 and/or IPv6)
#   ifhook.gw=A              default route via A
#   ifhook.dhcp=1            ask DHCP (udhcpc) for an IPv4 lease and apply it
#   ifhook.hostname=NAME     send NAME as the DHCP host name (option 12);
#                            default: send none
#   ifhook.slaac=1           accept router advertisements and wait for a
#                            global address from one (otherwise RAs are
#                            ignored: no address or route comes from them)
#   ifhook.netwait=S         seconds to wait for the lease and for the SLAAC
#                            address (default 15)
#   ifhook.resolve=N[,N...]  names to look up (nslookup), one RESULT each
#   ifhook.dns=A             the DNS server to ask (default: DHCP's first)
#   ifhook.rwait=S           seconds to keep trying each name (default 10)
#   ifhook.ping=A[,A...]     targets to ping, one RESULT line each
#   ifhook.wait=S            seconds to keep trying each target (default 10)
#   ifhook.hold=S            stay up S seconds afterwards, answering pings
#                            (-1: until killed); then power off
#   ifhook.probe=1           only say PROBE and power off (accelerator check)
#
# Everything the host needs is one line on the console that starts with
# "IFHOOK-GUEST ": BOOT, READY, RESULT, DONE, ERROR, HOLD, POWEROFF. The
# RESULT lines, in this order:
#
#   RESULT dhcp4 ok=1 ip=A/N router=R|none dns=D[,D...]|none mtu=M|none
#          lease=S|none hostname=H|none domain=D|none server=A|none uptime=T
#   RESULT dhcp4 ok=0 uptime=T
#   RESULT slaac ok=0|1 ip=A/N|none router=LLADDR|none mtu=M uptime=T
#   RESULT resolve name=N ok=0|1 addr=A[,A...]|none tries=T err=E|none
#   RESULT ping=A ok=0|1 tries=T

/bin/busybox mkdir -p /proc /sys /dev /tmp /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

say() { echo "IFHOOK-GUEST $*"; }

# Power off: QEMU runs with -no-reboot, so even the fallbacks (sysrq, or PID 1
# exiting, which panics, and panic=-1 reboots) end the QEMU process.
off() {
	say POWEROFF
	sync
	poweroff -f
	echo o >/proc/sysrq-trigger
	sleep 5
	exit 1
}

die() {
	say "ERROR $*"
	off
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# uptime_s: seconds since boot, to the hundredth, for the log.
uptime_s() { cut -d' ' -f1 /proc/uptime; }
say BOOT uptime="$(uptime_s)"

MAC= IPS= GW= PING= WAIT=10 HOLD=0 PROBE=
DHCP= DHCPHOST= SLAAC= NETWAIT=15 RESOLVE= DNS= RWAIT=10
set -f # split the command line into words, but never glob them
for kv in $(cat /proc/cmdline); do
	case "$kv" in
	ifhook.mac=*) MAC=${kv#*=} ;;
	ifhook.ip=*) IPS=${kv#*=} ;;
	ifhook.gw=*) GW=${kv#*=} ;;
	ifhook.ping=*) PING=${kv#*=} ;;
	ifhook.wait=*) WAIT=${kv#*=} ;;
	ifhook.hold=*) HOLD=${kv#*=} ;;
	ifhook.probe=*) PROBE=${kv#*=} ;;
	ifhook.dhcp=*) DHCP=${kv#*=} ;;
	ifhook.hostname=*) DHCPHOST=${kv#*=} ;;
	ifhook.slaac=*) SLAAC=${kv#*=} ;;
	ifhook.netwait=*) NETWAIT=${kv#*=} ;;
	ifhook.resolve=*) RESOLVE=${kv#*=} ;;
	ifhook.dns=*) DNS=${kv#*=} ;;
	ifhook.rwait=*) RWAIT=${kv#*=} ;;
	esac
done
set +f

if [ -n "$PROBE" ]; then
	say PROBE ok
	off
fi

# Modules, in dependency order (the host resolved modules.dep).
while read -r m; do
	[ -n "$m" ] || continue
	out=$(insmod "/lib/modules/$m.ko" 2>&1) || case "$out" in
	*exists*) ;; # already loaded: fine
	*) die "insmod $m: $out" ;;
	esac
done </lib/modules/load.order

# now prints whole seconds since boot: the only clock we can trust here.
now() {
	read -r up _ </proc/uptime
	echo "${up%.*}"
}

# Find the NIC by its MAC (the host chose it), waiting for the driver.
IF=
end=$(($(now) + 10))
while :; do
	if [ -z "$MAC" ]; then
		[ -e /sys/class/net/eth0 ] && IF=eth0
	else
		for d in /sys/class/net/*; do
			[ "$(cat "$d/address" 2>/dev/null)" = "$MAC" ] && IF=${d##*/}
		done
	fi
	[ -n "$IF" ] && break
	[ "$(now)" -ge "$end" ] && die "no interface with mac=${MAC:-any} (have: $(ls /sys/class/net | tr '\n' ' '))"
	usleep 100000
done

ip link set lo up
c=/proc/sys/net/ipv6/conf/$IF
# Duplicate address detection would hold IPv6 addresses back for a second or
# more; these guests have unique addresses by construction.
echo 0 >"$c/accept_dad" 2>/dev/null
if [ "$SLAAC" = 1 ]; then
	# Solicit routers every second rather than every 4 (the kernel's
	# default), for as long as none answers: the first router solicitation
	# may go unanswered (a bridge whose link-local address is still
	# tentative cannot send its advertisement).
	echo 0 >"$c/forwarding"
	echo 2 >"$c/accept_ra"
	echo 1 >"$c/autoconf"
	echo 0 >"$c/router_solicitation_delay" 2>/dev/null
	echo 1 >"$c/router_solicitation_interval" 2>/dev/null
	echo 1 >"$c/router_solicitation_max_interval" 2>/dev/null
	echo -1 >"$c/router_solicitations" 2>/dev/null || echo 100 >"$c/router_solicitations"
	# IPv6 stays off on the NIC until DHCP is done: a DHCP MTU resets the
	# NIC's IPv6 MTU, which would undo an RA's MTU that came before it.
	# Turning IPv6 on sends the first router solicitation.
	[ "$DHCP" = 1 ] && echo 1 >"$c/disable_ipv6"
else
	# Routes and addresses come only from what this guest was told.
	echo 0 >"$c/accept_ra"
fi
ip link set "$IF" up || die "ip link set $IF up failed"

end=$(($(now) + 10))
until [ "$(cat "/sys/class/net/$IF/carrier" 2>/dev/null)" = 1 ]; do
	[ "$(now)" -ge "$end" ] && die "no carrier on $IF"
	usleep 100000
done

# DHCP: udhcpc runs /bin/ifhook-dhcp, which applies the lease and writes what
# it got to /tmp/dhcp.lease. -n -q: give up, or quit once bound (the lease is
# kept, never renewed: a guest is short-lived); -O mtu: ask for option 26,
# which udhcpc does not by default. timeout bounds it whatever state it is
# stuck in.
if [ "$DHCP" = 1 ]; then
	set -- -i "$IF" -f -n -q -t "$NETWAIT" -T 1 -O mtu -s /bin/ifhook-dhcp
	[ -n "$DHCPHOST" ] && set -- "$@" -x "hostname:$DHCPHOST"
	timeout "$((NETWAIT + 2))" udhcpc "$@" >/tmp/udhcpc.log 2>&1
	if [ -s /tmp/dhcp.lease ]; then
		say RESULT dhcp4 ok=1 "$(cat /tmp/dhcp.lease)" uptime="$(uptime_s)"
	else
		sed 's/^/dhcp: /' /tmp/udhcpc.log | tail -n 5
		say RESULT dhcp4 ok=0 uptime="$(uptime_s)"
	fi
	set --
fi
[ "$SLAAC" = 1 ] && echo 0 >"$c/disable_ipv6"

for a in $(echo "$IPS" | tr , ' '); do
	ip addr add "$a" dev "$IF" || die "ip addr add $a dev $IF failed"
done
if [ -n "$GW" ]; then
	case "$GW" in
	*:*) ip -6 route add default via "$GW" dev "$IF" ;;
	*) ip route add default via "$GW" dev "$IF" ;;
	esac || die "ip route add default via $GW failed"
fi

# via -4|-6: the gateway of the NIC's first default route.
via() {
	ip "$1" route show 2>/dev/null | awk -v dev="$IF" '
		$1 == "default" {
			gw = ""; d = ""
			for (i = 2; i < NF; i++) {
				if ($i == "via") gw = $(i + 1)
				if ($i == "dev") d = $(i + 1)
			}
			if (gw != "" && d == dev) { print gw; exit }
		}'
}

# slaac_addr: the NIC's first global IPv6 address that the kernel made
# itself (not permanent: static addresses are), usable (not tentative,
# deprecated or failed) and not a temporary one, from /proc/net/if_inet6
# ("ADDR32HEX IFINDEX PREFIXLEN SCOPE FLAGS NAME", all hex), which does not
# change with busybox's version.
slaac_addr() {
	while read -r hex _ plen scope flags name; do
		[ "$name" = "$IF" ] && [ "$scope" = 00 ] || continue
		# IFA_F_PERMANENT 0x80, TENTATIVE 0x40, DEPRECATED 0x20,
		# DADFAILED 0x08, TEMPORARY 0x01
		[ $((0x$flags & 0xe9)) = 0 ] || continue
		echo "$(echo "$hex" | sed 's/..../&:/g; s/:$//')/$((0x$plen))"
		return
	done </proc/net/if_inet6
}

if [ "$SLAAC" = 1 ]; then
	ok=0 a= end=$(($(now) + NETWAIT))
	while :; do
		a=$(slaac_addr)
		[ -n "$a" ] && ok=1 && break
		[ "$(now)" -ge "$end" ] && break
		usleep 200000
	done
	r=$(via -6)
	say RESULT slaac ok=$ok ip="${a:-none}" router="${r:-none}" mtu="$(cat "$c/mtu")" uptime="$(uptime_s)"
fi

gw4=$(via -4) gw6=$(via -6)
say READY if="$IF" mac="$(cat "/sys/class/net/$IF/address")" ip="${IPS:-none}" gw4="${gw4:-none}" gw6="${gw6:-none}" uptime="$(uptime_s)"

# Names: each one retried until it resolves or RWAIT seconds have passed
# (the server may learn it later, e.g. from another guest's lease). The
# answer is read from nslookup's output, not its status, which is 1 when
# either the A or the AAAA query failed. Both formats of busybox's nslookup
# are understood: 1.28+ prints "Name:\tN" then "Address: A" per answer,
# after a header of "Server:" and "Address:\tS:53"; older ones "Name: N"
# then "Address 1: A [NAME]". -timeout/-retry (1.28+) keep a silent server
# from costing 5 s a try.
if [ -n "$RESOLVE" ]; then
	[ -z "$DNS" ] && [ -f /etc/resolv.conf ] && DNS=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)
	NSOPTS="-timeout=1 -retry=1"
	nslookup $NSOPTS localhost 127.0.0.1 2>&1 | grep -q Usage && NSOPTS=
fi
for n in $(echo "$RESOLVE" | tr , ' '); do
	ok=0 tries=0 addrs= err=none end=$(($(now) + RWAIT))
	while :; do
		tries=$((tries + 1))
		out=$(nslookup $NSOPTS "$n" $DNS 2>&1)
		addrs=$(echo "$out" | awk '
			/^Server:/ { answer = 0; next }
			/^Name:/ { answer = 1; next }
			answer && /^Address( [0-9]+)?:/ {
				sub(/^Address( [0-9]+)?:[ \t]*/, "")
				split($0, f, " ")
				printf "%s%s", sep, f[1]
				sep = ","
			}')
		[ -n "$addrs" ] && ok=1 err=none && break
		err=$(echo "$out" | sed -n "s/^\*\* server can't find [^:]*: *//p; s/^;; connection timed out.*/timeout/p; s/^nslookup: //p" | head -n 1)
		err=$(printf %s "$err" | tr -c 'A-Za-z0-9.:_-' '_' | tr -s _)
		[ "$(now)" -ge "$end" ] && break
		usleep 300000
	done
	say RESULT resolve name="$n" ok=$ok addr="${addrs:-none}" tries=$tries err="${err:-unknown}"
done

# Each target: retry until a reply or WAIT seconds, since the bridge port,
# ARP/ND and the peer may all need a moment. A failed try may return at once
# (unreachable neighbour), hence the pause.
for t in $(echo "$PING" | tr , ' '); do
	ok=0 tries=0 end=$(($(now) + WAIT))
	while :; do
		tries=$((tries + 1))
		if ping -c 1 -W 1 "$t" >/dev/null 2>&1; then
			ok=1
			break
		fi
		[ "$(now)" -ge "$end" ] && break
		usleep 300000
	done
	say RESULT ping="$t" ok=$ok tries=$tries
done
say DONE

case "$HOLD" in
0 | "") ;;
-1)
	say HOLD forever
	while :; do sleep 3600; done
	;;
*)
	say HOLD seconds="$HOLD"
	sleep "$HOLD"
	;;
esac
off

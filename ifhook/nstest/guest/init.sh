#!/bin/busybox sh
# /init of the ifhook test guest: PID 1 in an initramfs that holds only
# busybox, a few kernel modules and this script (see package guest).
#
# It takes its orders from the kernel command line. Dotted names are module
# parameters to the kernel, so they are neither passed to us as environment
# nor complained about: we read them back from /proc/cmdline.
#
#   ifhook.mac=52:54:00:..   MAC of the NIC to use (default: eth0)
#   ifhook.ip=A/N[,A/N...]   addresses for it (IPv4 and/or IPv6)
#   ifhook.gw=A              default route via A
#   ifhook.ping=A[,A...]     targets to ping, one RESULT line each
#   ifhook.wait=S            seconds to keep trying each target (default 10)
#   ifhook.hold=S            stay up S seconds afterwards, answering pings
#                            (-1: until killed); then power off
#   ifhook.probe=1           only say PROBE and power off (accelerator check)
#
# Everything the host needs is one line on the console that starts with
# "IFHOOK-GUEST ": BOOT, READY, RESULT, DONE, ERROR, HOLD, POWEROFF.

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
say BOOT uptime="$(cut -d' ' -f1 /proc/uptime)"

MAC= IPS= GW= PING= WAIT=10 HOLD=0 PROBE=
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
# Duplicate address detection would hold IPv6 addresses back for a second or
# more; these guests have unique addresses by construction.
echo 0 >"/proc/sys/net/ipv6/conf/$IF/accept_dad" 2>/dev/null
ip link set "$IF" up || die "ip link set $IF up failed"
for a in $(echo "$IPS" | tr , ' '); do
	ip addr add "$a" dev "$IF" || die "ip addr add $a dev $IF failed"
done

end=$(($(now) + 10))
until [ "$(cat "/sys/class/net/$IF/carrier" 2>/dev/null)" = 1 ]; do
	[ "$(now)" -ge "$end" ] && die "no carrier on $IF"
	usleep 100000
done

if [ -n "$GW" ]; then
	case "$GW" in
	*:*) ip -6 route add default via "$GW" dev "$IF" ;;
	*) ip route add default via "$GW" dev "$IF" ;;
	esac || die "ip route add default via $GW failed"
fi
say READY if="$IF" mac="$(cat "/sys/class/net/$IF/address")" ip="${IPS:-none}" uptime="$(cut -d' ' -f1 /proc/uptime)"

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

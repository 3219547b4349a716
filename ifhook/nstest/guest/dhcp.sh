#!/bin/busybox sh
# /bin/ifhook-dhcp: udhcpc's script in the ifhook test guest (see init.sh).
# udhcpc runs it with the event as $1 and the lease in its environment
# (interface, ip, mask, router, dns, mtu, lease, hostname, domain, serverid;
# a list is space-separated; an option the server did not send is unset).
# It applies a lease and writes one line of key=value pairs to
# /tmp/dhcp.lease for /init to report.
#
# Only what the lease says is applied: no router option, no default route
# (a test checks that an isolated bridge gives none).

export PATH=/bin:/sbin:/usr/bin:/usr/sbin

# word prints $1 safe for a key=value field: a server's strings are its own.
word() { printf %s "$1" | tr -c 'A-Za-z0-9.:/_-' '_'; }

# list prints its arguments comma-separated, or none.
list() {
	if [ $# -eq 0 ]; then
		echo none
	else
		printf %s "$*" | tr ' ' ',' | tr -c 'A-Za-z0-9.:,' '_'
	fi
}

case "$1" in
deconfig)
	# udhcpc starts with this. Static addresses are /init's: keep them.
	ip link set "$interface" up
	;;
bound | renew)
	# The prefix route comes with the address; the broadcast, as sent.
	ip addr replace "$ip/$mask" broadcast "${broadcast:-+}" dev "$interface" || exit 1
	[ -n "$mtu" ] && { ip link set "$interface" mtu "$mtu" || exit 1; }
	gw=none
	for r in $router; do
		ip route replace default via "$r" dev "$interface" || exit 1
		gw=$r
		break
	done
	{
		for d in $dns; do echo "nameserver $d"; done
		[ -n "$domain" ] && echo "search $domain"
	} >/etc/resolv.conf
	# shellcheck disable=SC2086 # lists are space-separated
	echo "ip=$(word "$ip/$mask") router=$(word "$gw") dns=$(list $dns)" \
		"mtu=$(word "${mtu:-none}") lease=$(word "${lease:-none}")" \
		"hostname=$(word "${hostname:-none}") domain=$(word "${domain:-none}")" \
		"server=$(word "${serverid:-none}")" >/tmp/dhcp.lease.new
	mv /tmp/dhcp.lease.new /tmp/dhcp.lease
	;;
esac
exit 0

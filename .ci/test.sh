#!/bin/bash
# The whole test suite, as README.md tells a newcomer to run it:
#
#   sudo bash .ci/test.sh [go test flags...]
#
# It installs the Debian packages the tests need when they are missing
# (QEMU for the real-client and guest tests, a kernel and busybox to build
# the tiny test guests), then runs every Go test. Tests that make network
# namespaces need root; without root they skip, saying why (under CI=true
# they fail instead). Nothing here touches the host's own network: every
# link, address, route and rule is made in a namespace a test created.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(qemu-system-x86 iproute2 busybox-static linux-image-amd64 xz-utils scdoc dnsmasq-base dhcpcd-base libcap2-bin libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients)
need_pkg() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || return 0
	return 1
}
missing=()
if command -v dpkg-query >/dev/null; then
	for p in "${packages[@]}"; do
		if need_pkg "$p"; then missing+=("$p"); fi
	done
fi
if ((${#missing[@]})); then
	if [ "$(id -u)" -ne 0 ]; then
		echo "test.sh: missing Debian packages: ${missing[*]}; run as root to install them (or install them yourself)" >&2
	else
		echo "test.sh: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "test.sh: not root: tests that need network namespaces will skip" >&2
fi
exec go test -count=1 -timeout 45m "$@" ./...

#!/bin/bash
# Benchmarks ifhook as qemu-ifup/qemu-ifdown against `ip` and Debian's
# qemu-ifup logic, in a network and mount namespace of its own (never the
# host's). Run as root from the repository: bash bench/run.sh [ifupbench flags]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$out/ifhook" ./cmd/ifhook
go build -o "$out/ifupbench" ./bench/ifupbench
# A binary written a moment ago has dirty page-cache pages, which the
# kernel maps into a new process more slowly: flush them first.
sync "$out/ifhook" "$out/ifupbench"
# A private mount namespace so that sysfs can be remounted to show the new
# network namespace's links (Debian's script reads /sys/class/net).
exec unshare --net --mount --propagation private sh -c \
	'mount -t sysfs sysfs /sys && exec "$0" "$@"' \
	"$out/ifupbench" -host-netns "$(stat -L -c %i /proc/self/ns/net)" -policy "$PWD/config.toml.example" -ifhook "$out/ifhook" -debian bench/debian-qemu-ifup "$@"

#!/bin/bash
# CI for the RPM (issue 5), as root on Debian:
#
#   bash .ci/rpm.sh [--head]
#
#  1. installs Debian's rpm, rpmlint, scdoc and cpio when missing;
#  2. builds the source and binary RPMs with packaging/rpm/build-rpm.sh
#     (from the working tree, or from HEAD with --head; on a clean clone
#     the two are the same);
#  3. rebuilds the source RPM with no network at all (a fresh network
#     namespace) and an empty Go module cache: the tarballs are enough;
#  4. runs rpmlint on the spec and both RPMs: no errors, and every warning
#     left is one the spec explains;
#  5. checks the binary RPM's file list (rpm -qlp) against the expected
#     one, and against what install.sh installs with the same settings;
#  6. extracts it (rpm2cpio | cpio) into a temporary root, runs the
#     extracted `ifhook version`, and runs the extracted
#     usr/libexec/ifhook/qemu-ifup and qemu-ifdown on a TAP and a bridge
#     made in a throwaway network namespace.
#
# Nothing here changes the host's network: every link is made inside the
# namespace `unshare --net` creates, which vanishes when its shell exits.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo "=== rpm: $* ($(($(date +%s) - start))s)"; }
fail() {
	echo "rpm.sh: FAIL: $*" >&2
	exit 1
}

from=(--worktree)
case "${1:-}" in
--head) from=() ;;
"") ;;
*)
	echo "usage: bash .ci/rpm.sh [--head]" >&2
	exit 64
	;;
esac

step "packages"
packages=(rpm rpmlint scdoc cpio iproute2)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in rpmbuild rpmlint rpm2cpio cpio scdoc unshare ip go; do
	command -v "$tool" >/dev/null || fail "$tool is not installed"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "build-rpm.sh"
bash packaging/rpm/build-rpm.sh "${from[@]}" "$tmp/out"
srpm='' rpm=''
for f in "$tmp"/out/*.rpm; do
	case $f in
	*.src.rpm) srpm=$f ;;
	*) rpm=$f ;;
	esac
done
if [ -z "$srpm" ] || [ -z "$rpm" ]; then
	fail "build-rpm.sh left no source and binary RPM in $tmp/out"
fi
vr=$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$rpm")
echo "built $(basename "$srpm") and $(basename "$rpm")"

step "rebuild the source RPM offline (no network namespace, empty module cache)"
nodeps=()
if ! rpm -q rpm >/dev/null 2>&1; then
	nodeps=(--nodeps) # no RPM database on Debian: see build-rpm.sh
fi
mkdir -p "$tmp/modcache" "$tmp/rebuild"
GOMODCACHE=$tmp/modcache GOPROXY=off unshare --net -- \
	rpmbuild --rebuild "${nodeps[@]}" --define "_topdir $tmp/rebuild" "$srpm" >"$tmp/rebuild.log" 2>&1 ||
	{
		tail -40 "$tmp/rebuild.log" >&2
		fail "the source RPM does not rebuild offline"
	}
rebuilt=$(ls "$tmp"/rebuild/RPMS/*/*.rpm) || fail "the offline rebuild made no RPM"
echo "rebuilt offline: $(basename "$rebuilt")"
[ "$(basename "$rebuilt")" = "$(basename "$rpm")" ] || fail "the source RPM rebuilds as $(basename "$rebuilt"), not $(basename "$rpm")"

step "rpmlint"
lint=0
rpmlint -c packaging/rpm/rpmlint.toml packaging/rpm/ifhook.spec "$srpm" "$rpm" | tee "$tmp/rpmlint.out" || lint=$?
grep -q ' 0 errors,' "$tmp/rpmlint.out" || fail "rpmlint reports errors"
[ "$lint" = 0 ] || fail "rpmlint exited $lint"
# Every warning must be explained in the spec's header comment.
grep -o ' W: [a-z0-9-]*' "$tmp/rpmlint.out" | awk '{print $2}' | sort -u >"$tmp/warnings"
while read -r w; do
	grep -q "^#.*$w" packaging/rpm/ifhook.spec || fail "rpmlint warning $w is not explained in packaging/rpm/ifhook.spec"
done <"$tmp/warnings"

step "the RPM's files"
# Fedora's %_docdir_fmt is %{NAME}, Debian's rpm's %{NAME}-%{VERSION}.
rpm -qlp "$rpm" | sed -E 's,^/usr/share/(doc|licenses)/ifhook-[^/]+,/usr/share/\1/ifhook,' >"$tmp/files"
cat >"$tmp/want" <<'EOF'
/etc/ifhook
/etc/ifhook/config.toml
/usr/lib/systemd/system/ifhook-setup.service
/usr/lib/tmpfiles.d/ifhook-helper.conf
/usr/lib/tmpfiles.d/ifhook.conf
/usr/libexec/ifhook
/usr/libexec/ifhook/qemu-bridge-helper
/usr/libexec/ifhook/qemu-ifdown
/usr/libexec/ifhook/qemu-ifup
/usr/sbin/ifhook
/usr/share/doc/ifhook
/usr/share/doc/ifhook/README.md
/usr/share/doc/ifhook/config.toml.example
/usr/share/licenses/ifhook
/usr/share/licenses/ifhook/LICENSE
/usr/share/man/man8/ifhook.8.gz
EOF
diff -u "$tmp/want" "$tmp/files" || fail "rpm -qlp differs from the expected list (- expected, + in the RPM)"
[ "$(rpm -qp --configfiles "$rpm")" = /etc/ifhook/config.toml ] || fail "the config files are not exactly /etc/ifhook/config.toml"
rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm" | grep -qx '/etc/ifhook/config.toml cn' ||
	fail "/etc/ifhook/config.toml is not %config(noreplace)"
rpm -qp --qf '[%{FILENAMES} -> %{FILELINKTOS}\n]' "$rpm" | grep '^/usr/libexec/ifhook/qemu-if' >"$tmp/links"
printf '%s\n' "/usr/libexec/ifhook/qemu-ifdown -> ../../sbin/ifhook" "/usr/libexec/ifhook/qemu-ifup -> ../../sbin/ifhook" |
	diff -u - "$tmp/links" || fail "the libexec hooks are not relative symlinks to ../../sbin/ifhook"
# The bridge helper: a file of its own (no link), root:ifhook-helper,
# set-group-ID, with the file capability and nothing else.
rpm -qp --qf '[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILECAPS}\n]' "$rpm" |
	grep '/qemu-bridge-helper ' >"$tmp/helper"
echo "/usr/libexec/ifhook/qemu-bridge-helper -rwxr-sr-x root:ifhook-helper cap_net_admin=ep" |
	diff -u - "$tmp/helper" || fail "the bridge helper is not root:ifhook-helper 2755 with cap_net_admin=ep"

step "extract the RPM"
root=$tmp/root
mkdir -p "$root"
(cd "$root" && rpm2cpio "$rpm" | cpio -idm --quiet)
out=$("$root/usr/sbin/ifhook" version)
echo "$out"
case $out in
"ifhook $vr "*) ;;
*) fail "the extracted ifhook says '$out', want ifhook $vr" ;;
esac
[ "$(readlink -f "$root/usr/libexec/ifhook/qemu-ifup")" = "$root/usr/sbin/ifhook" ] ||
	fail "the extracted usr/libexec/ifhook/qemu-ifup does not resolve to the extracted usr/sbin/ifhook"
IFHOOK_CONFIG=$root/etc/ifhook/config.toml "$root/usr/sbin/ifhook" check

step "install.sh installs the same files as the RPM"
# Same settings as the spec's %install; the RPM adds only the doc and
# license files, and compresses the man page.
stage=$tmp/stage
DESTDIR=$stage PREFIX=/usr IFHOOK_HOOKS=no SYSTEMD=yes IFHOOK_BINARY=$root/usr/sbin/ifhook sh ./install.sh >/dev/null
(cd "$stage" && find . ! -type d | sed 's,^\.,,' | sort) >"$tmp/installsh"
(cd "$root" && find . ! -type d | sed 's,^\.,,; s,\.gz$,,' | grep -v '^/usr/share/\(doc\|licenses\)/' | sort) >"$tmp/rpmfiles"
diff -u "$tmp/installsh" "$tmp/rpmfiles" || fail "install.sh and the RPM install different files (- install.sh, + RPM)"
for f in etc/ifhook/config.toml usr/lib/systemd/system/ifhook-setup.service usr/lib/tmpfiles.d/ifhook.conf usr/lib/tmpfiles.d/ifhook-helper.conf usr/libexec/ifhook/qemu-bridge-helper; do
	cmp "$stage/$f" "$root/$f" || fail "$f differs between install.sh and the RPM"
done

step "qemu-ifup and qemu-ifdown from the extracted RPM, in a throwaway network namespace"
state=$tmp/state
mkdir -p "$state"
host_ns=$(readlink /proc/self/ns/net)
# shellcheck disable=SC2016 # the script expands its own variables
IFHOOK_CONFIG=$root/etc/ifhook/config.toml IFHOOK_STATE_DIR=$state IFHOOK_SYSLOG=off \
	unshare --net -- bash -euo pipefail -c '
host_ns=$1 root=$2
# Refuse to touch links unless this is a network namespace of our own.
[ "$(readlink /proc/self/ns/net)" != "$host_ns" ] || { echo "still in the host network namespace" >&2; exit 1; }
ip link set lo up
ip link add br0 type bridge
ip link set br0 up
ip tuntap add dev tap0 mode tap
# QEMU runs the script by the path it is given, with the TAP as argv[1].
"$root/usr/libexec/ifhook/qemu-ifup" tap0
ip -o link show dev tap0
ip -o link show dev tap0 | grep -q " master br0 " || { echo "tap0 is not on br0 after qemu-ifup" >&2; exit 1; }
ip -o link show dev tap0 | grep -q "state UP\|,UP" || { echo "tap0 is not up after qemu-ifup" >&2; exit 1; }
[ -f "$IFHOOK_STATE_DIR/taps/tap0" ] || { echo "no record for tap0 in $IFHOOK_STATE_DIR/taps" >&2; exit 1; }
list=$("$root/usr/sbin/ifhook" list)
echo "$list"
echo "$list" | grep -q "^tap0 *br0 " || { echo "ifhook list does not show tap0 on br0" >&2; exit 1; }
"$root/usr/libexec/ifhook/qemu-ifdown" tap0
if ip -o link show dev tap0 | grep -q " master "; then echo "tap0 is still enslaved after qemu-ifdown" >&2; exit 1; fi
[ ! -e "$IFHOOK_STATE_DIR/taps/tap0" ] || { echo "the record of tap0 is still there after qemu-ifdown" >&2; exit 1; }
' _ "$host_ns" "$root" || fail "the extracted hooks did not attach and detach a TAP"
[ "$(readlink /proc/self/ns/net)" = "$host_ns" ] || fail "this script's network namespace changed"

step "done: $(basename "$rpm") builds, lints, installs the expected files and works as QEMU's hook"

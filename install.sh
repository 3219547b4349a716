#!/bin/sh
# install.sh: build ifhook and install it as QEMU's network hook.
#
#   sudo ./install.sh               build, install, link /etc/qemu-ifup and /etc/qemu-ifdown
#   sudo ./install.sh --uninstall   remove all of it and put back what it replaced
#   ./install.sh --help
#
# Environment: PREFIX (default /usr/local), DESTDIR (staged installs, for
# packagers), SYSCONFDIR (default /etc), GO (the go command, default go),
# IFHOOK_VERSION (default: git describe, else the VERSION file, else "dev"),
# IFHOOK_BINARY (install this prebuilt binary instead of building one),
# IFHOOK_HOOKS=no (do not touch /etc/qemu-ifup and /etc/qemu-ifdown: a
# package manager handles them; `ifhook install-hooks` does the same as
# this script), SYSTEMD=yes|no (default: yes when systemd is present:
# installs ifhook-setup.service, not enabled, and a tmpfiles.d entry),
# IFHOOK_HELPER=no (do not install the bridge helper, a copy of the binary
# as PREFIX/libexec/ifhook/qemu-bridge-helper, root:ifhook-helper mode 2755
# with the file capability cap_net_admin+ep, for QEMU's -netdev bridge run
# by users; `ifhook install-hooks --bridge-helper` also puts it where QEMU
# looks by default). The man page ifhook(8) is rendered with scdoc when it
# is installed. Running it twice is safe.
set -eu

usage() {
	sed -n '2,21s/^# \{0,1\}//p' "$0"
}

die() {
	echo "install.sh: $*" >&2
	exit 1
}

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
SYSCONFDIR=${SYSCONFDIR:-/etc}
GO=${GO:-go}
HOOKS=${IFHOOK_HOOKS:-yes}
HELPER=${IFHOOK_HELPER:-yes}
helper_group=ifhook-helper
src=$(cd "$(dirname "$0")" && pwd)

sbindir=$PREFIX/sbin
libexecdir=$PREFIX/libexec/ifhook
mandir=$PREFIX/share/man/man8
bin=$DESTDIR$sbindir/ifhook
confdir=$DESTDIR$SYSCONFDIR/ifhook
if [ -n "${SYSTEMD:-}" ]; then
	systemd=$SYSTEMD
elif [ -d /run/systemd/system ] || [ -d "$DESTDIR/usr/lib/systemd" ]; then
	systemd=yes
else
	systemd=no
fi
unitdir=$DESTDIR/usr/lib/systemd/system
tmpfilesdir=$DESTDIR/usr/lib/tmpfiles.d

# Our files: everything but the two hooks, which may replace a file of the
# QEMU package's and are handled apart.
helper=$DESTDIR$libexecdir/qemu-bridge-helper
files="$bin $DESTDIR$libexecdir/qemu-ifup $DESTDIR$libexecdir/qemu-ifdown $helper"

# hook_check refuses, before anything changes, when the place of hook $1
# holds a file that is not ours and $1.orig exists too.
hook_check() {
	path=$DESTDIR$SYSCONFDIR/$1
	if [ -L "$path" ] && [ "$(readlink "$path")" = "$sbindir/ifhook" ]; then
		return 0
	fi
	if { [ -e "$path" ] || [ -L "$path" ]; } && { [ -e "$path.orig" ] || [ -L "$path.orig" ]; }; then
		die "$path exists and so does $path.orig; move one of them away first"
	fi
}

# hook_link makes $1 a symlink to the binary, keeping a file that is not
# ours as $1.orig. `ifhook install-hooks` (package ifhook/install) does the
# same, word for word; a test compares the two.
hook_link() {
	path=$DESTDIR$SYSCONFDIR/$1
	target=$sbindir/ifhook
	if [ -L "$path" ] && [ "$(readlink "$path")" = "$target" ]; then
		echo "$path already links to $target"
		return 0
	fi
	if [ -e "$path" ] || [ -L "$path" ]; then
		hook_check "$1"
		mv "$path" "$path.orig"
		echo "kept the previous $path as $path.orig"
	fi
	mkdir -p "$(dirname "$path")"
	ln -s "$target" "$path"
	echo "linked $path -> $target"
}

# hook_unlink removes our symlink at $1 and puts $1.orig back
# (`ifhook install-hooks --undo`).
hook_unlink() {
	path=$DESTDIR$SYSCONFDIR/$1
	if [ -L "$path" ] && [ "$(readlink "$path")" = "$sbindir/ifhook" ]; then
		rm -f "$path"
		echo "removed $path"
	fi
	if { [ -e "$path.orig" ] || [ -L "$path.orig" ]; } && ! { [ -e "$path" ] || [ -L "$path" ]; }; then
		mv "$path.orig" "$path"
		echo "restored $path"
	fi
}

version() {
	if [ -n "${IFHOOK_VERSION:-}" ]; then
		echo "$IFHOOK_VERSION"
	elif v=$(git -C "$src" describe --tags --always --dirty 2>/dev/null); then
		echo "$v"
	elif [ -f "$src/VERSION" ]; then
		cat "$src/VERSION"
	else
		echo dev
	fi
}

build() {
	out=$1
	if ! command -v "$GO" >/dev/null 2>&1; then
		die "Go is needed to build ifhook and '$GO' was not found. Install Go 1.26 or newer (https://go.dev/dl/; on Debian, a golang package from bookworm-backports also works: it fetches the right toolchain itself), or set GO=/path/to/go."
	fi
	v=$(version)
	echo "building ifhook $v with $("$GO" version)"
	(cd "$src" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-X main.version=$v" -o "$out" ./cmd/ifhook) ||
		die "go build failed"
}

# man_page renders docs/ifhook.8.scd with scdoc into $1, or copies a
# docs/ifhook.8 a packager rendered already (and newer than its source);
# it fails when neither is possible.
man_page() {
	if [ -f "$src/docs/ifhook.8" ] && [ -z "$(find "$src/docs/ifhook.8.scd" -newer "$src/docs/ifhook.8" 2>/dev/null)" ]; then
		cp "$src/docs/ifhook.8" "$1"
	elif command -v scdoc >/dev/null 2>&1 && [ -f "$src/docs/ifhook.8.scd" ]; then
		scdoc <"$src/docs/ifhook.8.scd" >"$1"
	else
		return 1
	fi
}

# install_helper installs the bridge helper: a copy of the binary, never a
# link (a file capability belongs to the file, and would give every name of
# ifhook the privilege), set-group-ID to its own group (the directory of its
# records, /run/ifhook-helper, is that group's) and with cap_net_admin+ep.
# A staged install (DESTDIR) leaves the owner, mode and capability to the
# package (the RPM's %attr and %caps).
install_helper() {
	# (Not "src": sh has no local variables, and $src is the repository.)
	from=$1
	if [ -n "$DESTDIR" ]; then
		install -m 0755 "$from" "$helper"
		echo "installed $helper (the package gives it root:$helper_group, mode 2755 and cap_net_admin+ep)"
		return 0
	fi
	if ! getent group "$helper_group" >/dev/null 2>&1; then
		groupadd --system "$helper_group" || die "cannot make the group $helper_group (groupadd --system $helper_group)"
		echo "made the system group $helper_group (add no user to it)"
	fi
	# chown, then chmod, then setcap: chown clears set-ID bits and file
	# capabilities.
	install -m 0755 "$from" "$helper.new"
	chown "root:$helper_group" "$helper.new"
	chmod 2755 "$helper.new"
	if command -v setcap >/dev/null 2>&1 && setcap cap_net_admin+ep "$helper.new"; then
		mv -f "$helper.new" "$helper"
		echo "installed $helper (root:$helper_group, mode 2755, cap_net_admin+ep)"
	else
		mv -f "$helper.new" "$helper"
		echo "installed $helper, WITHOUT its file capability: setcap is missing (Debian: apt-get install libcap2-bin; Fedora: dnf install libcap) or failed; by hand, as root: setcap cap_net_admin+ep $helper" >&2
	fi
	install -d -m 2770 -o root -g "$helper_group" /run/ifhook-helper
	chmod 2770 /run/ifhook-helper
	echo "the bridge helper's records go in /run/ifhook-helper; grant bridges in /etc/qemu/bridge.conf (allow br0) or [[helper.allow]], then: -netdev bridge,id=n0,br=br0,helper=$libexecdir/qemu-bridge-helper (or ifhook install-hooks --bridge-helper, for QEMU's default helper path)"
}

install_all() {
	if [ "$HOOKS" = yes ]; then
		hook_check qemu-ifup
		hook_check qemu-ifdown
	fi
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$DESTDIR$sbindir" "$DESTDIR$libexecdir" "$confdir"
	if [ -n "${IFHOOK_BINARY:-}" ]; then
		install -m 0755 "$IFHOOK_BINARY" "$bin"
	else
		build "$tmp/ifhook"
		install -m 0755 "$tmp/ifhook" "$bin"
	fi
	echo "installed $bin"
	# Hooks under libexec, for QEMU's script=/downscript= and for
	# packages that must not own /etc/qemu-ifup. Relative links
	# (libexec/ifhook/X -> ../../sbin/ifhook, both under PREFIX), so they
	# also work in a staged or extracted tree.
	for hook in qemu-ifup qemu-ifdown; do
		ln -sfn ../../sbin/ifhook "$DESTDIR$libexecdir/$hook"
	done
	echo "linked $DESTDIR$libexecdir/qemu-ifup and qemu-ifdown -> ../../sbin/ifhook"
	if [ "$HELPER" = yes ]; then
		install_helper "$bin"
	fi
	if [ -e "$confdir/config.toml" ]; then
		echo "kept the existing $confdir/config.toml"
	else
		install -m 0644 "$src/config.toml.example" "$confdir/config.toml"
		echo "installed $confdir/config.toml"
	fi
	if man_page "$tmp/ifhook.8"; then
		mkdir -p "$DESTDIR$mandir"
		install -m 0644 "$tmp/ifhook.8" "$DESTDIR$mandir/ifhook.8"
		echo "installed $DESTDIR$mandir/ifhook.8"
	else
		echo "no man page: install scdoc to render docs/ifhook.8.scd" >&2
	fi
	if [ "$systemd" = yes ] && [ -d "$src/packaging/systemd" ]; then
		mkdir -p "$unitdir" "$tmpfilesdir"
		install -m 0644 "$src/packaging/systemd/ifhook.conf" "$tmpfilesdir/ifhook.conf"
		if [ "$HELPER" = yes ]; then
			install -m 0644 "$src/packaging/systemd/ifhook-helper.conf" "$tmpfilesdir/ifhook-helper.conf"
			echo "installed $tmpfilesdir/ifhook-helper.conf"
		fi
		sed "s|@SBINDIR@|$sbindir|g" "$src/packaging/systemd/ifhook-setup.service.in" >"$tmp/ifhook-setup.service"
		install -m 0644 "$tmp/ifhook-setup.service" "$unitdir/ifhook-setup.service"
		echo "installed $tmpfilesdir/ifhook.conf and $unitdir/ifhook-setup.service (not enabled: systemctl enable ifhook-setup.service)"
		if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
			systemctl daemon-reload || true
			systemd-tmpfiles --create ifhook.conf || true
		fi
	fi
	if [ "$HOOKS" = yes ]; then
		hook_link qemu-ifup
		hook_link qemu-ifdown
	fi
	if [ -z "$DESTDIR" ]; then
		"$bin" check >/dev/null || echo "warning: $SYSCONFDIR/ifhook/config.toml has problems: run 'ifhook check'" >&2
	fi
	echo "done: QEMU's -nic tap now runs ifhook (try: ifhook explain TAP)"
}

uninstall_all() {
	if [ "$HOOKS" = yes ]; then
		hook_unlink qemu-ifup
		hook_unlink qemu-ifdown
	fi
	for f in $files "$DESTDIR$mandir/ifhook.8" "$unitdir/ifhook-setup.service" "$tmpfilesdir/ifhook.conf" "$tmpfilesdir/ifhook-helper.conf"; do
		if [ -e "$f" ] || [ -L "$f" ]; then
			rm -f "$f"
			echo "removed $f"
		fi
	done
	rmdir "$DESTDIR$libexecdir" 2>/dev/null || true
	if [ -z "$DESTDIR" ] && getent group "$helper_group" >/dev/null 2>&1; then
		echo "kept the group $helper_group and /run/ifhook-helper (groupdel $helper_group; the directory goes at the next boot)"
	fi
	if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	if [ -e "$confdir/config.toml" ]; then
		if cmp -s "$confdir/config.toml" "$src/config.toml.example"; then
			rm -f "$confdir/config.toml"
			rmdir "$confdir" 2>/dev/null || true
			echo "removed $confdir/config.toml (unchanged from the example)"
		else
			echo "kept $confdir/config.toml: you changed it; remove it by hand if you want"
		fi
	fi
}

case "${1:-}" in
-h | --help) usage ;;
--uninstall) uninstall_all ;;
"") install_all ;;
*)
	usage >&2
	exit 64
	;;
esac

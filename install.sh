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
# package manager handles them), SYSTEMD=yes|no (default: yes when systemd
# is present). Running it twice is safe.
set -eu

usage() {
	sed -n '2,15s/^# \{0,1\}//p' "$0"
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
files="$bin $DESTDIR$libexecdir/qemu-ifup $DESTDIR$libexecdir/qemu-ifdown"

# hook_link makes $1 a symlink to the binary, keeping a file that is not
# ours as $1.orig.
hook_link() {
	path=$DESTDIR$SYSCONFDIR/$1
	target=$sbindir/ifhook
	if [ -L "$path" ] && [ "$(readlink "$path")" = "$target" ]; then
		return 0
	fi
	if [ -e "$path" ] || [ -L "$path" ]; then
		if [ -e "$path.orig" ] || [ -L "$path.orig" ]; then
			die "$path exists and so does $path.orig; move one of them away first"
		fi
		mv "$path" "$path.orig"
		echo "kept the previous $path as $path.orig"
	fi
	mkdir -p "$(dirname "$path")"
	ln -s "$target" "$path"
	echo "linked $path -> $target"
}

# hook_unlink removes our symlink at $1 and puts $1.orig back.
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

install_all() {
	mkdir -p "$DESTDIR$sbindir" "$DESTDIR$libexecdir" "$confdir"
	if [ -n "${IFHOOK_BINARY:-}" ]; then
		install -m 0755 "$IFHOOK_BINARY" "$bin"
	else
		tmp=$(mktemp -d)
		trap 'rm -rf "$tmp"' EXIT
		build "$tmp/ifhook"
		install -m 0755 "$tmp/ifhook" "$bin"
	fi
	echo "installed $bin"
	# Hooks under libexec, for QEMU's script=/downscript= and for
	# packages that must not own /etc/qemu-ifup.
	for hook in qemu-ifup qemu-ifdown; do
		ln -sfn "$sbindir/ifhook" "$DESTDIR$libexecdir/$hook"
	done
	if [ -e "$confdir/config.toml" ]; then
		echo "kept the existing $confdir/config.toml"
	else
		install -m 0644 "$src/config.toml.example" "$confdir/config.toml"
		echo "installed $confdir/config.toml"
	fi
	if [ -f "$src/docs/ifhook.8" ]; then
		mkdir -p "$DESTDIR$mandir"
		install -m 0644 "$src/docs/ifhook.8" "$DESTDIR$mandir/ifhook.8"
		files="$files $DESTDIR$mandir/ifhook.8"
	fi
	if [ "$systemd" = yes ] && [ -d "$src/packaging/systemd" ]; then
		mkdir -p "$unitdir" "$tmpfilesdir"
		install -m 0644 "$src/packaging/systemd/ifhook.conf" "$tmpfilesdir/ifhook.conf"
		sed "s|@SBINDIR@|$sbindir|g" "$src/packaging/systemd/ifhook-setup.service.in" >"$unitdir/ifhook-setup.service"
		chmod 0644 "$unitdir/ifhook-setup.service"
		echo "installed the systemd unit and tmpfiles entry"
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
	for f in $files "$DESTDIR$mandir/ifhook.8" "$unitdir/ifhook-setup.service" "$tmpfilesdir/ifhook.conf"; do
		if [ -e "$f" ] || [ -L "$f" ]; then
			rm -f "$f"
			echo "removed $f"
		fi
	done
	rmdir "$DESTDIR$libexecdir" 2>/dev/null || true
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

#!/bin/bash
# build-rpm.sh: build ifhook's source and binary RPMs from this git checkout.
#
#   packaging/rpm/build-rpm.sh [--worktree] OUTDIR [RPMBUILD-ARGS...]
#
# Makes Source0 (git archive of HEAD, as ifhook-VERSION.tar.gz with the
# prefix ifhook-VERSION/) and Source1 (ifhook-VERSION-vendor.tar.gz: the
# vendor/ directory `go mod vendor` makes from Source0's go.mod; this step
# needs the Go module cache or the module proxy), then runs rpmbuild -ba in
# a temporary _topdir, offline (the spec builds with -mod=vendor and
# GOPROXY=off), and leaves the .src.rpm and the binary .rpm in OUTDIR.
#
# --worktree archives the working tree instead of HEAD: tracked files as
# they are now plus untracked ones that are not ignored, so what you have
# can be packaged before it is committed (CI runs on a clean clone, where
# the two are the same). RPMBUILD-ARGS go to rpmbuild (e.g. --nocheck).
#
# The version: `git describe --tags` when a tag like v1.2.3 exists (1.2.3,
# release 1 on the tag, 1.N.gHASH N commits after it); with no tag, 0.1.0
# with release 0.N.gHASH (N = commits, HASH = the commit), a pre-release
# that sorts before a real 0.1.0-1. A dirty --worktree build adds ".dirty".
# Needs: git, go, rpmbuild (Debian: apt-get install rpm), scdoc, tar, gzip.
set -euo pipefail

usage() {
	sed -n '2,22s/^# \{0,1\}//p' "$0"
}
die() {
	echo "build-rpm.sh: $*" >&2
	exit 1
}

worktree=no
while [ $# -gt 0 ]; do
	case $1 in
	--worktree) worktree=yes ;;
	-h | --help) usage; exit 0 ;;
	-*) usage >&2; exit 64 ;;
	*) break ;;
	esac
	shift
done
[ $# -ge 1 ] || { usage >&2; exit 64; }
outdir=$1
shift
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

top=$(cd "$(dirname "$0")/../.." && git rev-parse --show-toplevel) || die "not in a git checkout"
GO=${GO:-go}
for tool in git "$GO" rpmbuild tar gzip; do
	command -v "$tool" >/dev/null || die "$tool is needed and was not found"
done

# --- version -----------------------------------------------------------
hash=$(git -C "$top" rev-parse --short=7 HEAD)
if desc=$(git -C "$top" describe --tags --long --match 'v[0-9]*' --match '[0-9]*' 2>/dev/null); then
	# TAG-N-gHASH
	rest=${desc%-g*}
	n=${rest##*-}
	tag=${rest%-*}
	version=${tag#v}
	version=${version//-/\~} # 1.0-rc1 -> 1.0~rc1: rpm's pre-release mark
	if [ "$n" = 0 ]; then
		release=1
	else
		release=1.$n.g$hash
	fi
else
	version=0.1.0
	release=0.$(git -C "$top" rev-list --count HEAD).g$hash
fi
if [ "$worktree" = yes ] && [ -n "$(git -C "$top" status --porcelain)" ]; then
	release=$release.dirty
fi
[[ $version =~ ^[A-Za-z0-9._+~^]+$ ]] || die "cannot make an RPM version of '$version' (from git describe)"
# Dates from the commit, so that rebuilding a commit gives the same
# changelog, man page date and file times.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct HEAD)}
date=$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y')
name=ifhook-$version
echo "build-rpm.sh: ifhook $version-$release from $top ($([ "$worktree" = yes ] && echo "working tree" || echo "HEAD $hash"))"

# --- sources -----------------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{BUILD,RPMS,SOURCES,SPECS,SRPMS,src}
tarflags=(--sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH")
if [ "$worktree" = yes ]; then
	# Tracked and untracked files, minus ignored and deleted ones; nothing
	# is written to the repository (no index, no objects).
	(
		cd "$top"
		git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do
				if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
			done |
			sort -zu |
			tar --null --no-recursion -T - "${tarflags[@]}" --transform "s,^,$name/," -cf - |
			gzip -n >"$tmp/SOURCES/$name.tar.gz"
	)
else
	git -C "$top" archive --format=tar --prefix="$name/" HEAD | gzip -n >"$tmp/SOURCES/$name.tar.gz"
fi
tar -C "$tmp/src" -xzf "$tmp/SOURCES/$name.tar.gz"
[ -f "$tmp/src/$name/packaging/rpm/ifhook.spec" ] || die "the archive has no packaging/rpm/ifhook.spec (not committed yet? try --worktree)"

# The vendor tarball, from the go.mod and go.sum in Source0.
(
	cd "$tmp/src/$name"
	GOFLAGS='' GOWORK=off GOTOOLCHAIN=local "$GO" mod vendor
	tar "${tarflags[@]}" -cf - vendor | gzip -n >"$tmp/SOURCES/$name-vendor.tar.gz"
) || die "go mod vendor failed"
# The spec, with this version written into it (so the source RPM rebuilds
# as the same version), and a changelog entry for it when the newest entry
# is another version (a snapshot between releases), as rpmdev-bumpspec
# would add.
spec=$tmp/SPECS/ifhook.spec
sed -e "s/^%{!?ifhook_version:.*/%global ifhook_version $version/" \
	-e "s/^%{!?ifhook_release:.*/%global ifhook_release $release/" \
	"$tmp/src/$name/packaging/rpm/ifhook.spec" >"$spec"
grep -q "^%global ifhook_release $release\$" "$spec" || die "could not set the version in the spec"
newest=$(sed -n '/^%changelog/,${/^\* /{s/.* - //p;q}}' "$spec")
if [ "$newest" != "$version-$release" ]; then
	entry="* $date The ifhook developers - $version-$release\n- Built from git $hash by packaging/rpm/build-rpm.sh.\n"
	sed -i "/^%changelog/a $entry" "$spec"
fi

# --- rpmbuild ----------------------------------------------------------
# The spec's BuildRequires (golang >= 1.26, scdoc, systemd-rpm-macros) are
# checked against the RPM database. On a host that does not install its
# software with RPM (Debian, Ubuntu: rpm is a tool there, and `rpm -q rpm`
# says "package rpm is not installed") that database is empty, so every
# build dependency would be "missing" even when go and scdoc are on the
# PATH: skip the check there with --nodeps. On an RPM-based host the check
# stays on.
nodeps=()
if ! rpm -q rpm >/dev/null 2>&1; then
	echo "build-rpm.sh: no RPM database here (rpm -q rpm: $(rpm -q rpm 2>&1 | head -1)): rpmbuild --nodeps"
	nodeps=(--nodeps)
fi
rpmbuild -ba "${nodeps[@]}" \
	--define "_topdir $tmp" \
	"$@" "$tmp/SPECS/ifhook.spec"

shopt -s nullglob
built=("$tmp"/SRPMS/*.src.rpm "$tmp"/RPMS/*/*.rpm)
[ ${#built[@]} -ge 2 ] || die "rpmbuild made no packages"
cp "${built[@]}" "$outdir/"
for f in "${built[@]}"; do
	echo "build-rpm.sh: $outdir/$(basename "$f")"
done

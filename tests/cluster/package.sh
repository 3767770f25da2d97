#!/bin/bash
# The Debian package: builds postgresql-15-mtl (dpkg-buildpackage with
# pg_buildext, debian/) from a copy of the tracked files, installs it, checks
# what it holds, runs the regression tests on a fresh cluster against the
# package's files, then removes the package and installs the tree's build
# again for the tests after this one. Needs root or sudo (dpkg -i).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
scripts/install_deps.sh debhelper

work=$(mktemp -d /tmp/mtl-deb.XXXXXX)
chmod 755 "$work"
port=$((40000 + RANDOM % 5000))
restore() {
	scripts/cluster.sh stop "$work/cluster" >/dev/null 2>&1 || true
	$sudo dpkg -r postgresql-15-mtl >/dev/null 2>&1 || true
	$sudo make -s -C "$root" install >/dev/null
	rm -rf "$work"
}
trap restore EXIT

mkdir "$work/mtl"
if git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files -z | xargs -0 tar -cf - | tar -xf - -C "$work/mtl"
else
	tar -cf - --exclude='*.o' --exclude='*.bc' --exclude='*.so' --exclude=results . | tar -xf - -C "$work/mtl"
fi
if ! (cd "$work/mtl" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1); then
	tail -40 "$work/build.log"
	echo "FAIL: dpkg-buildpackage"
	exit 1
fi
deb=$(ls "$work"/postgresql-15-mtl_*.deb)
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) kB)"
$sudo dpkg -i "$deb" >/dev/null
for f in /usr/lib/postgresql/15/lib/mtl.so /usr/share/postgresql/15/extension/mtl.control \
	/usr/share/postgresql/15/extension/mtl--0.2.sql /usr/share/postgresql/15/extension/mtl--0.1--0.2.sql \
	/usr/share/postgresql/15/extension/mtl_demo.control; do
	dpkg -S "$f" >/dev/null 2>&1 || { echo "FAIL: the package does not hold $f"; exit 1; }
done

scripts/cluster.sh start "$work/cluster" "$port" >/dev/null
export PGHOST=$work/cluster PGPORT=$port PGUSER=postgres
if ! make -s -C "$work/mtl" installcheck PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config; then
	cat "$work/mtl/regression.diffs"
	echo "FAIL: installcheck against the package"
	exit 1
fi
echo "package: built, installed, installcheck passed against it"

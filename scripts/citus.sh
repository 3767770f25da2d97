#!/bin/bash
# Make Citus available to the local PostgreSQL 15 for the scale-out tests:
# already installed, or built once from the vendored, unmodified source
# (../shared/vendor/citus-12.1.12.tar.gz, AGPL-3.0, checked against its
# sha256) into a cache directory, then installed. mtl never links to Citus or
# copies its code.
#   scripts/citus.sh     exit 0: citus.so is installed; 3: not possible here (reason printed)
# Environment: MTL_CACHE (default ~/.cache/mtl), MTL_VENDOR (default ../shared/vendor).
set -euo pipefail
cd "$(dirname "$0")/.."
version=12.1.12
libdir=$(pg_config --pkglibdir)
[ -f "$libdir/citus.so" ] && exit 0
vendor=${MTL_VENDOR:-$(pwd)/../shared/vendor}
tarball=$vendor/citus-$version.tar.gz
cache=${MTL_CACHE:-$HOME/.cache/mtl}
src=$cache/citus-$version
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
if [ ! -f "$tarball" ] || [ ! -f "$tarball.sha256" ]; then
	echo "Citus is not installed and its source is not at $tarball"
	exit 3
fi
if ! (cd "$vendor" && sha256sum -c --status "citus-$version.tar.gz.sha256" 2>/dev/null ||
	  [ "$(sha256sum < "$tarball" | cut -d' ' -f1)" = "$(cut -d' ' -f1 < "$tarball.sha256")" ]); then
	echo "the Citus tarball does not match its sha256"
	exit 3
fi
scripts/install_deps.sh build-essential libpq-dev libssl-dev libcurl4-openssl-dev liblz4-dev \
	libzstd-dev libkrb5-dev >/dev/null
if [ ! -f "$src/src/backend/distributed/citus.so" ]; then
	echo "building Citus $version once into $src (about 3 minutes)"
	rm -rf "$src"
	mkdir -p "$cache"
	tar -xzf "$tarball" -C "$cache"
	[ -d "$src" ] || mv "$cache/citus-$version"* "$src" 2>/dev/null || true
	(cd "$src" && ./configure --quiet >"$src/configure.log" 2>&1 && make -s -j"$(nproc)" >"$src/make.log" 2>&1) ||
		{ echo "building Citus failed: see $src/make.log"; exit 3; }
fi
(cd "$src" && $sudo make -s install >/dev/null)
[ -f "$libdir/citus.so" ]

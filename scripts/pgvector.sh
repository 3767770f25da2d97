#!/bin/bash
# Make pgvector available to the local PostgreSQL 15 for the similarity test:
# already installed, or built once from the vendored, unmodified source
# (../shared/vendor/pgvector-0.8.6.tar.gz, PostgreSQL licence, checked against
# its sha256) into a cache directory, then installed. mtl never links to
# pgvector or copies its code.
#   scripts/pgvector.sh     exit 0: vector.so is installed; 3: not possible here (reason printed)
# Environment: MTL_CACHE (default ~/.cache/mtl), MTL_VENDOR (default ../shared/vendor).
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.8.6
libdir=$(pg_config --pkglibdir)
[ -f "$libdir/vector.so" ] && exit 0
vendor=${MTL_VENDOR:-$(pwd)/../shared/vendor}
tarball=$vendor/pgvector-$version.tar.gz
cache=${MTL_CACHE:-$HOME/.cache/mtl}
src=$cache/pgvector-$version
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
if [ ! -f "$tarball" ] || [ ! -f "$tarball.sha256" ]; then
	echo "pgvector is not installed and its source is not at $tarball"
	exit 3
fi
if [ "$(sha256sum < "$tarball" | cut -d' ' -f1)" != "$(cut -d' ' -f1 < "$tarball.sha256")" ]; then
	echo "the pgvector tarball does not match its sha256"
	exit 3
fi
scripts/install_deps.sh build-essential >/dev/null
if [ ! -f "$src/vector.so" ]; then
	echo "building pgvector $version once into $src (under a minute)"
	rm -rf "$src"
	mkdir -p "$cache"
	unpack=$(mktemp -d "$cache/pgvector-unpack.XXXXXX")
	tar -xzf "$tarball" -C "$unpack"
	mv "$unpack"/* "$src"
	rmdir "$unpack"
	# OPTFLAGS="": no -march=native, so the build runs on any x86-64 the cache moves to
	(cd "$src" && make -s OPTFLAGS="" >"$src/make.log" 2>&1) ||
		{ echo "building pgvector failed: see $src/make.log"; exit 3; }
fi
(cd "$src" && $sudo make -s OPTFLAGS="" install >/dev/null)
[ -f "$libdir/vector.so" ]

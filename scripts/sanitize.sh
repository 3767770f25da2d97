#!/bin/bash
# mtl under the sanitizers:
# 1. the numeric core under AddressSanitizer and UndefinedBehaviorSanitizer
#    (leak checking included): the C unit tests built with both; then the
#    unit tests of training on helper threads under ThreadSanitizer
#    (OpenBLAS itself is not instrumented);
# 2. the whole extension built with UndefinedBehaviorSanitizer (any finding
#    aborts the backend) and pg_regress run against it on a throwaway
#    cluster; the server log is then searched for reports. The tree's own
#    build is installed again at the end, on failure too.
# The fuzzers (tests/fuzz/run.sh, run by tests/run_all.sh) are built with
# ASan and UBSan too. AddressSanitizer cannot run inside this server: with
# either clang's or gcc's runtime preloaded, `postgres --version` deadlocks
# in glibc's bindtextdomain (set_pglocale_pgservice) on Debian 12, so part 2
# uses UBSan alone.
#   scripts/sanitize.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
blas_cflags=$(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
work=$(mktemp -d /tmp/mtl-ubsan.XXXXXX)
chmod 755 "$work"
port=$((45000 + RANDOM % 5000))
cleanup() {
	make -s -C "$root/tests/unit" clean
	scripts/cluster.sh stop "$work/cluster" >/dev/null 2>&1 || true
	$sudo make -s -C "$root" install >/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

echo "== unit tests under ASan and UBSan"
make -s -C tests/unit clean
make -s -C tests/unit check CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $blas_cflags $flags" | tail -1

echo "== training on helper threads under ThreadSanitizer (the threads suite)"
# clang's runtime: gcc 12's ThreadSanitizer crashes at start on this kernel
clang -std=c11 -D_GNU_SOURCE $blas_cflags -fsanitize=thread -g -O1 -o "$work/run_tsan" \
	tests/unit/main.c tests/unit/test_*.c tests/unit/synthetic.c src/core/*.c \
	$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lm -pthread
TSAN_OPTIONS="halt_on_error=1" OPENBLAS_NUM_THREADS=1 "$work/run_tsan" threads | tail -1

echo "== pg_regress against mtl.so built with UBSan"
mkdir "$work/mtl"
if git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files -z | xargs -0 tar -cf - | tar -xf - -C "$work/mtl"
else
	tar -cf - --exclude='*.o' --exclude='*.bc' --exclude='*.so' --exclude=results . | tar -xf - -C "$work/mtl"
fi
ubsan="-fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
make -s -C "$work/mtl" COPT="$ubsan" LDFLAGS_SL="-fsanitize=undefined" with_llvm=no >/dev/null
$sudo make -s -C "$work/mtl" install with_llvm=no >/dev/null
scripts/cluster.sh start "$work/cluster" "$port"
export PGHOST=$work/cluster PGPORT=$port PGUSER=postgres
status=0
make -s -C "$work/mtl" installcheck with_llvm=no || status=1
reports=$(grep -c "runtime error" "$work/cluster/server.log" || true)
if [ "$status" -ne 0 ] || [ "$reports" -ne 0 ]; then
	grep -B2 -A8 "runtime error" "$work/cluster/server.log" | head -60 || true
	[ -f "$work/mtl/regression.diffs" ] && head -60 "$work/mtl/regression.diffs"
	echo "FAIL: pg_regress under UBSan ($reports reports)"
	exit 1
fi
echo "sanitizers: unit tests clean under ASan and UBSan, threads under TSan; pg_regress passed under UBSan with 0 reports"

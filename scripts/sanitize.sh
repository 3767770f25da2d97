#!/bin/bash
# The numeric core under AddressSanitizer and UndefinedBehaviorSanitizer
# (leak checking included): the C unit tests built with both. The fuzzers
# (tests/fuzz/run.sh, run by tests/run_all.sh) are built with both too.
#   scripts/sanitize.sh
# Not covered yet: pg_regress against a sanitized mtl.so. A PostgreSQL 15
# server started with libasan preloaded hung at start-up here (through
# pg_ctl and started directly), so that part needs a server built with the
# sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
trap 'make -s -C tests/unit clean' EXIT
make -s -C tests/unit clean
make -s -C tests/unit check \
	CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I/usr/include/x86_64-linux-gnu/openblas-pthread $flags"

#!/bin/bash
# Build the fuzzers with clang (libFuzzer, ASan, UBSan) and run each for the
# given number of seconds (default 60): the model decoder from a valid model,
# and the aggregate states' decoders from valid states.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
core=$(ls ../../src/core/*.c)
blas_cflags=$(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
blas_libs=$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
flags="-g -O1 -std=gnu11 $blas_cflags"
clang $flags -o make_seed make_seed.c ../unit/synthetic.c $core $blas_libs -lm -pthread
mkdir -p corpus state_corpus
./make_seed corpus/seed.model state_corpus
cp ../data/model_v1.mtl corpus/seed_v1.model
for target in decode state; do
	clang $flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-o fuzz_$target fuzz_$target.c $core $blas_libs -lm -pthread
done
# inputs that once failed, kept so that they never fail again
OPENBLAS_NUM_THREADS=1 ./fuzz_state regressions/state-* >regressions.log 2>&1 ||
	{ cat regressions.log; echo "a past fuzzing failure is back"; exit 1; }
OPENBLAS_NUM_THREADS=1 ./fuzz_decode regressions/decode-* >regressions.log 2>&1 ||
	{ cat regressions.log; echo "a past fuzzing failure is back"; exit 1; }
# a failure prints the fuzzer's report (and leaves its input as crash-*); a pass, the stats
fuzz() {
	OPENBLAS_NUM_THREADS=1 "./fuzz_$1" -max_total_time="$seconds" -max_len=65536 \
		-print_final_stats=1 "$2" >"fuzz_$1.log" 2>&1 ||
		{ grep -v "^#" "fuzz_$1.log" | tail -60; echo "fuzz_$1 failed"; exit 1; }
	tail -4 "fuzz_$1.log"
}
echo "model decoder:"
fuzz decode corpus
echo "aggregate states:"
fuzz state state_corpus

#!/bin/bash
# Build the decoder fuzzer with clang (libFuzzer, ASan, UBSan) and run it for
# the given number of seconds (default 60), starting from a valid model.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
core=$(ls ../../src/core/*.c)
flags="-g -O1 -std=gnu11 -I/usr/include/x86_64-linux-gnu/openblas-pthread"
clang $flags -o make_seed make_seed.c ../unit/synthetic.c $core -lopenblas -lm
mkdir -p corpus
./make_seed corpus/seed.model
cp ../data/model_v1.mtl corpus/seed_v1.model
clang $flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-o fuzz_decode fuzz_decode.c $core -lopenblas -lm
OPENBLAS_NUM_THREADS=1 ./fuzz_decode -max_total_time="$seconds" -max_len=65536 \
	-print_final_stats=1 corpus 2>&1 | tail -4

# mtl: multi-task recommendation models inside PostgreSQL (PGXS)
EXTENSION = mtl mtl_demo
EXTVERSION = 0.2
MODULE_big = mtl
# mtl--0.1.sql is the released 0.1, kept for upgrades from it
DATA = sql/mtl--0.2.sql sql/mtl--0.1.sql sql/mtl--0.1--0.2.sql sql/mtl_demo--0.1.sql

CORE_SRCS = $(wildcard src/core/*.c)
PG_SRCS = $(wildcard src/pg/*.c)
OBJS = $(CORE_SRCS:.c=.o) $(PG_SRCS:.c=.o)

REGRESS = config train fpmode spill predict info evaluate family recommend registry refresh update coldstart errors privacy rounds features tune embeddings sampling compress explain weights
REGRESS_OPTS = --load-extension=mtl --load-extension=mtl_demo

# OpenBLAS through pkg-config, else Debian's x86-64 pthread build; override
# with make OPENBLAS_CFLAGS=... OPENBLAS_LIBS=...
OPENBLAS_CFLAGS ?= $(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
OPENBLAS_LIBS ?= $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
# x86-64-v2 (SSE4.2, POPCNT) when the compiler targets x86-64 and takes it;
# the kernels add AVX2 clones themselves (src/core/layers.c). Override with
# make ARCH_CFLAGS= (none) or another -march.
ARCH_CFLAGS ?= $(shell $(CC) -dumpmachine 2>/dev/null | grep -q '^x86_64' && \
	$(CC) -march=x86-64-v2 -E -x c /dev/null >/dev/null 2>&1 && echo -march=x86-64-v2)
PG_CPPFLAGS = $(OPENBLAS_CFLAGS)
PG_CFLAGS = -std=gnu11 -O3 $(ARCH_CFLAGS)
# Adam's step vectorised, and bit for bit the scalar loop's (see adam.c)
src/core/adam.o: override CFLAGS += -fno-math-errno -ffp-contract=off
SHLIB_LINK = $(OPENBLAS_LIBS) -lm -pthread

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies; every object depends on every header.
$(OBJS): $(wildcard src/core/*.h src/pg/*.h)

# C unit tests of the core (no server needed)
unitcheck:
	$(MAKE) -C tests/unit check

.PHONY: unitcheck

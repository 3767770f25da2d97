# mtl: multi-task recommendation models inside PostgreSQL (PGXS)
EXTENSION = mtl mtl_demo
EXTVERSION = 0.2
MODULE_big = mtl
# mtl--0.1.sql is the released 0.1, kept for upgrades from it
DATA = sql/mtl--0.2.sql sql/mtl--0.1.sql sql/mtl--0.1--0.2.sql sql/mtl_demo--0.1.sql

CORE_SRCS = $(wildcard src/core/*.c)
PG_SRCS = $(wildcard src/pg/*.c)
OBJS = $(CORE_SRCS:.c=.o) $(PG_SRCS:.c=.o)

REGRESS = config train fpmode spill predict info evaluate family recommend registry refresh update coldstart errors privacy rounds
REGRESS_OPTS = --load-extension=mtl --load-extension=mtl_demo

OPENBLAS_INC ?= /usr/include/x86_64-linux-gnu/openblas-pthread
PG_CPPFLAGS = -I$(OPENBLAS_INC)
PG_CFLAGS = -std=gnu11 -O3 -march=x86-64-v2
SHLIB_LINK = -lopenblas -lm

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies; every object depends on every header.
$(OBJS): $(wildcard src/core/*.h src/pg/*.h)

# C unit tests of the core (no server needed)
unitcheck:
	$(MAKE) -C tests/unit check

.PHONY: unitcheck

/*
 * Module set-up: the core's allocations go to PostgreSQL memory contexts, so
 * an error unwinding out of training or decoding frees them.
 */
#include "mtl_pg.h"

#include <limits.h>

#include "fmgr.h"
#include "utils/guc.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

int			mtl_evaluate_max_memory_mb = 1024;

static void *
PgAllocZero(size_t size)
{
	return MemoryContextAllocExtended(CurrentMemoryContext, size ? size : 1,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
}

static void *
PgAlloc(size_t size)
{
	return MemoryContextAllocExtended(CurrentMemoryContext, size ? size : 1, MCXT_ALLOC_HUGE);
}

static void *
PgResize(void *ptr, size_t size)
{
	return repalloc_huge(ptr, size ? size : 1);
}

static void
PgRelease(void *ptr)
{
	pfree(ptr);
}

void
_PG_init(void)
{
	static const MtlAllocator allocator = {PgAllocZero, PgAlloc, PgResize, PgRelease};

	mtl_set_allocator(&allocator);
	MtlComputeInit();
	DefineCustomIntVariable("mtl.evaluate_max_memory_mb",
							"Memory one mtl_evaluate aggregate may hold for its scored rows.",
							"About 25 bytes per labelled row and task; an error beyond it.",
							&mtl_evaluate_max_memory_mb, 1024, 1, INT_MAX / 2,
							PGC_USERSET, GUC_UNIT_MB, NULL, NULL, NULL);
	MarkGUCPrefixReserved("mtl");
}

bytea *
MtlToBytea(const void *data, size_t len, const char *what, const char *hint)
{
	bytea	   *out;

	if (len > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s of %zu bytes exceeds the 1 GB limit of a bytea value", what, len),
				 hint ? errhint("%s", hint) : 0));
	out = palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), data, len);
	return out;
}

void
MtlDecodeOrError(const uint8 *data, size_t len, MtlTrained *trained)
{
	const MtlError *why = mtl_decode(data, len, trained, 1);

	if (why != NULL)
		ereport(ERROR,
				(errcode(MtlErrorSqlState(why)),
				 errmsg("invalid mtl model: %s", why->detail),
				 errhint("Pass a value returned by mtl_train, unmodified.")));
}

/*
 * An aggregate state of type bytea that lives in memory while rows arrive.
 *
 * Citus pushes a custom aggregate down to its shards only when the state
 * type is not a pseudo-type such as internal, and ships the state as text
 * through the type's output function. So the data-parallel aggregates keep
 * a bytea state, held as a PostgreSQL "expanded object": the datum is a
 * read-write pointer to our in-memory state (the executor and Citus keep it
 * without copying while the transition function returns the same pointer),
 * and it becomes a flat bytea only when something reads it as one: bytea's
 * output function on a shard, a parallel worker sending it to the leader, a
 * copy. Flattening calls the state's write function once, which may finish
 * work first (a round trains the rows still waiting, so the flat form never
 * carries rows).
 */
#include "mtl_pg.h"

#include "utils/expandeddatum.h"
#include "utils/memutils.h"

#include "expanded_state.h"

static Size
StateFlatSize(ExpandedObjectHeader *eohptr)
{
	MtlExpandedState *s = (MtlExpandedState *) eohptr;

	if (!s->flat_valid)
	{
		MemoryContext old = MemoryContextSwitchTo(s->hdr.eoh_context);

		if (s->flat.data != NULL)
			mtl_free(s->flat.data);
		memset(&s->flat, 0, sizeof(s->flat));
		s->write(s, &s->flat);
		s->flat_valid = true;
		MemoryContextSwitchTo(old);
	}
	if (s->flat.len > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("mtl aggregate state of %zu bytes exceeds the 1 GB limit of a bytea value",
						s->flat.len)));
	return VARHDRSZ + s->flat.len;
}

static void
StateFlatten(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	MtlExpandedState *s = (MtlExpandedState *) eohptr;

	Assert(s->flat_valid && allocated_size == VARHDRSZ + s->flat.len);
	SET_VARSIZE(result, allocated_size);
	memcpy(VARDATA(result), s->flat.data, s->flat.len);
}

static const ExpandedObjectMethods state_methods = {StateFlatSize, StateFlatten};

MtlExpandedState *
MtlExpandedStateCreate(MemoryContext parent, Size size, MtlStateWrite write)
{
	MemoryContext context = AllocSetContextCreate(parent, "mtl aggregate state",
												  ALLOCSET_DEFAULT_SIZES);
	MtlExpandedState *s = MemoryContextAllocZero(context, size);

	EOH_init_header(&s->hdr, &state_methods, context);
	s->write = write;
	return s;
}

Datum
MtlExpandedStateDatum(MtlExpandedState *s)
{
	return EOHPGetRWDatum(&s->hdr);
}

MtlExpandedState *
MtlExpandedStateOf(Datum d, MtlStateWrite write)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(d);
	MtlExpandedState *s;

	if (!VARATT_IS_EXTERNAL_EXPANDED(v))
		return NULL;
	s = (MtlExpandedState *) DatumGetEOHP(d);
	if (s->hdr.eoh_methods != &state_methods || s->write != write)
		return NULL;
	return s;
}

void
MtlExpandedStateChanged(MtlExpandedState *s)
{
	s->flat_valid = false;
}

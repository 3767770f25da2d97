/* expanded_state.c: an aggregate's bytea state kept in memory until it is read as bytes */
#ifndef MTL_EXPANDED_STATE_H
#define MTL_EXPANDED_STATE_H

#include "postgres.h"

#include "utils/expandeddatum.h"

#include "../core/bytes.h"

typedef struct MtlExpandedState MtlExpandedState;

/* Write the state's flat form (the bytea's content) into w; may finish pending work. */
typedef void (*MtlStateWrite) (MtlExpandedState *state, MtlWriter *w);

/* Embed first in a struct of the state's own (allocate it with MtlExpandedStateCreate). */
struct MtlExpandedState
{
	ExpandedObjectHeader hdr;
	MtlStateWrite write;
	bool		flat_valid;
	MtlWriter	flat;
};

/* A zeroed state of size bytes in a new context under parent (the aggregate's). */
MtlExpandedState *MtlExpandedStateCreate(MemoryContext parent, Size size, MtlStateWrite write);
/* The read-write datum to return from a transition function. */
Datum		MtlExpandedStateDatum(MtlExpandedState *s);
/* The in-memory state behind d when it is one of ours with this write function, else NULL. */
MtlExpandedState *MtlExpandedStateOf(Datum d, MtlStateWrite write);
/* The state changed: its flat form must be written again. */
void		MtlExpandedStateChanged(MtlExpandedState *s);

#endif

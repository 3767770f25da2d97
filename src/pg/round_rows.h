/* Row chunks of training in rounds: see round_rows.c. */
#ifndef MTL_ROUND_ROWS_H
#define MTL_ROUND_ROWS_H

#include "mtl_pg.h"

#include "../core/dataset.h"
#include "../core/rows.h"

/* The rows of a chunk made by mtl_round_rows, checked; n_tasks: the labels each row must have. */
MtlRowStore *MtlReadChunk(bytea *chunk, int n_tasks);
/* The same with its fields mapped to model m's and its ids and sets encoded for m into data. */
MtlRowStore *MtlReadChunkFor(bytea *chunk, const MtlTrained *m, MtlDataset *data);
/* A chunk's row's place in [0, 1): which rounds train it, whether it is held out (mtl_round_position). */
double		MtlChunkRowPosition(const MtlSpec *spec, const MtlRowStore *store, const MtlRowRef *ref);
/* ERROR (XX001): a chunk's content is not what mtl_round_rows writes */
void		MtlReportBadChunk(const char *why) pg_attribute_noreturn();

#endif

/* A training query's row packed into one bytea: see packed_row.c. */
#ifndef MTL_PACKED_ROW_H
#define MTL_PACKED_ROW_H

#include "mtl_pg.h"

#include "../core/bytes.h"

typedef struct MtlPackedRow
{
	uint8		flags;			/* MTL_HAS_USER, MTL_HAS_ITEM, sides given */
	int64		user_id;
	int64		item_id;
	float		labels[MTL_MAX_LABELS];	/* checked against the spec's tasks */
	uint32		n_features;		/* not read yet */
	MtlReader	reader;
} MtlPackedRow;

typedef struct MtlPackedFeature
{
	int			side;
	int			kind;
	const char *name;			/* not NUL-terminated; points into the packed bytes */
	int			len;
	uint64		value;
} MtlPackedFeature;

/* values/nulls as MtlTrainAddRow takes them */
bytea	   *MtlPackRow(const Datum *values, const bool *nulls, int n_values);
/* The header of packed (which must outlive row), checked; labels against spec. */
void		MtlUnpackRow(bytea *packed, const MtlSpec *spec, MtlPackedRow *row);
/* whether the row came with a features object for side */
bool		MtlPackedHasSide(const MtlPackedRow *row, int side);
/* The next feature, checked; false after the last. */
bool		MtlPackedNextFeature(MtlPackedRow *row, MtlPackedFeature *f);
/* predict.c: score a packed row with a cached model; one output per task */
const double *MtlScorePacked(ModelCache *cache, MtlPackedRow *row);
/* train_agg.c: add a packed row to a training state */
void		MtlTrainAddPackedRow(TrainState *state, MtlPackedRow *row, MemoryContext context);

#endif

/* mtl_auc(score, label): ROC AUC aggregate, ties counted one half. */
#include "mtl_pg.h"

#include <math.h>

#include "fmgr.h"

#include "../core/metrics.h"

typedef struct AucState
{
	int64		n;
	int64		cap;
	double	   *score;
	double	   *label;
} AucState;

PG_FUNCTION_INFO_V1(mtl_auc_step);
PG_FUNCTION_INFO_V1(mtl_auc_final);

/* Rows with a NULL score or label are skipped. */
Datum
mtl_auc_step(PG_FUNCTION_ARGS)
{
	MemoryContext context;
	AucState   *state = PG_ARGISNULL(0) ? NULL : (AucState *) PG_GETARG_POINTER(0);
	double		score,
				label;

	if (!AggCheckCallContext(fcinfo, &context))
		elog(ERROR, "mtl_auc_step called in non-aggregate context");
	if (state == NULL)
	{
		state = MemoryContextAllocZero(context, sizeof(AucState));
		state->cap = 1024;
		state->score = MemoryContextAllocHuge(context, sizeof(double) * state->cap);
		state->label = MemoryContextAllocHuge(context, sizeof(double) * state->cap);
	}
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(state);
	score = PG_GETARG_FLOAT8(1);
	label = PG_GETARG_FLOAT8(2);
	if (isnan(score) || (label != 0.0 && label != 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("mtl_auc needs a score that is not NaN and a label of 0 or 1")));
	if (state->n == state->cap)
	{
		state->cap *= 2;
		state->score = repalloc_huge(state->score, sizeof(double) * state->cap);
		state->label = repalloc_huge(state->label, sizeof(double) * state->cap);
	}
	state->score[state->n] = score;
	state->label[state->n] = label;
	state->n++;
	PG_RETURN_POINTER(state);
}

/* NULL when there are no rows or only one class. */
Datum
mtl_auc_final(PG_FUNCTION_ARGS)
{
	AucState   *state = PG_ARGISNULL(0) ? NULL : (AucState *) PG_GETARG_POINTER(0);
	double		auc;

	if (state == NULL || state->n == 0)
		PG_RETURN_NULL();
	auc = mtl_auc(state->score, state->label, state->n);
	if (isnan(auc))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(auc);
}

/*
 * mtl_recommend: the top k items of the whole catalog for one user, ranked
 * by an objective over the task outputs (see core/objective.h), scored in
 * batches through sgemm (core/recommend.h).
 */
#include "mtl_pg.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "../core/objective.h"
#include "../core/recommend.h"

PG_FUNCTION_INFO_V1(mtl_recommend);

typedef struct Ranked
{
	double		score;
	int64		pos;
} Ranked;

/* A min-heap of the best k so far: the root is the weakest kept. */
static void
SiftDown(Ranked *heap, int n, int i)
{
	for (;;)
	{
		int			least = i,
					l = 2 * i + 1,
					r = 2 * i + 2;
		Ranked		tmp;

		if (l < n && heap[l].score < heap[least].score)
			least = l;
		if (r < n && heap[r].score < heap[least].score)
			least = r;
		if (least == i)
			return;
		tmp = heap[i];
		heap[i] = heap[least];
		heap[least] = tmp;
		i = least;
	}
}

static int
CompareDesc(const void *a, const void *b)
{
	const Ranked *x = a,
			   *y = b;

	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Item positions to leave out, from an int8[] of item ids (NULL elements ignored). */
static bool *
Excluded(const MtlTrained *m, ArrayType *exclude, int64 n_items)
{
	bool	   *out = palloc0(n_items + 1);
	Datum	   *ids;
	bool	   *nulls;
	int			n;

	if (exclude == NULL)
		return out;
	if (ARR_NDIM(exclude) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("exclude must be a one-dimensional array of item ids")));
	deconstruct_array(exclude, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &ids, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		int64		pos;

		if (nulls[i])
			continue;
		pos = mtl_schema_find_id(&m->schema, MTL_SIDE_ITEM, DatumGetInt64(ids[i]));
		if (pos >= 0)
			out[pos] = true;
	}
	return out;
}

static void
ParseObjectiveOrError(const MtlTrained *m, text *objective, MtlObjective *obj)
{
	char		bad[128];
	char	   *s = objective != NULL ? text_to_cstring(objective) : NULL;
	const char *why = mtl_objective_parse(m, s, obj, bad, sizeof(bad));

	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid objective \"%s\": term \"%s\": %s", s, bad, why),
				 errhint("Write a product of task names, numbers and numeric item features, "
						 "such as 'ctr*cvr*price'.")));
}

/* Keep the k best by objective among the scored items, best first. */
static int
TopK(const MtlTrained *m, const MtlObjective *obj, const double *scores, const bool *excluded,
	 int64 n_items, int k, Ranked *heap)
{
	int			T = m->model.spec.n_tasks;
	int			n = 0;

	if (k <= 0)
		return 0;				/* a model without items */
	for (int64 i = 0; i < n_items; i++)
	{
		double		v;

		if (excluded[i])
			continue;
		v = mtl_objective_value(m, obj, scores + i * T, i);
		if (isnan(v))
			continue;
		if (n < k)
		{
			heap[n++] = (Ranked) {v, i};
			if (n == k)
				for (int j = k / 2 - 1; j >= 0; j--)
					SiftDown(heap, k, j);
		}
		else if (v > heap[0].score)
		{
			heap[0] = (Ranked) {v, i};
			SiftDown(heap, k, 0);
		}
	}
	qsort(heap, n, sizeof(Ranked), CompareDesc);
	return n;
}

/*
 * mtl_recommend(model, user_id, k, objective, exclude)
 * returns TABLE(item_id bigint, score float8, scores float8[]).
 */
Datum
mtl_recommend(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PredictCache *cache;
	const MtlTrained *m;
	struct MtlRecommender *rec;
	MtlObjective obj;
	int			k,
				n,
				T;
	int64		user_pos = -1;
	double	   *scores;
	bool	   *excluded;
	Ranked	   *best;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;		/* no model: no rows */
	if (PG_ARGISNULL(2) || PG_GETARG_INT32(2) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be a positive number of items")));
	k = PG_GETARG_INT32(2);
	cache = MtlModelForCall(fcinfo, 0);
	m = MtlCacheModel(cache);
	T = m->model.spec.n_tasks;
	ParseObjectiveOrError(m, PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3), &obj);
	rec = MtlCacheRecommender(cache);
	if (!PG_ARGISNULL(1))
		user_pos = mtl_schema_find_id(&m->schema, MTL_SIDE_USER, PG_GETARG_INT64(1));
	excluded = Excluded(m, PG_ARGISNULL(4) ? NULL : PG_GETARG_ARRAYTYPE_P(4), rec->n_items);
	scores = palloc_extended(sizeof(double) * (rec->n_items * T + 1), MCXT_ALLOC_HUGE);
	mtl_recommender_score(rec, user_pos, 0, scores);
	best = palloc(sizeof(Ranked) * (Min(k, rec->n_items) + 1));
	n = TopK(m, &obj, scores, excluded, rec->n_items, Min(k, (int) Min(rec->n_items, INT32_MAX)), best);
	for (int i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		Datum		outs[MTL_MAX_TASKS];

		for (int t = 0; t < T; t++)
			outs[t] = Float8GetDatum(scores[best[i].pos * T + t]);
		values[0] = Int64GetDatum(m->schema.ids[MTL_SIDE_ITEM].ids[best[i].pos]);
		values[1] = Float8GetDatum(best[i].score);
		values[2] = PointerGetDatum(construct_array(outs, T, FLOAT8OID, 8, FLOAT8PASSBYVAL,
													TYPALIGN_DOUBLE));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(scores);
	pfree(excluded);
	pfree(best);
	return (Datum) 0;
}

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
PG_FUNCTION_INFO_V1(mtl_recommend_named);

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
	const MtlError *why = mtl_objective_parse(m, s, obj, bad, sizeof(bad));

	if (why != NULL)
		ereport(ERROR,
				(errcode(MtlErrorSqlState(why)),
				 errmsg("invalid objective \"%s\": term \"%s\": %s", s, bad, why->detail),
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
 * The k best items of the catalog for a user (has_user false: anonymous) by
 * the objective (NULL: the first task), leaving out the exclude ids, in the
 * context given (NULL: none, the shared towers), with the user's features
 * given (NULL: the stored ones).
 */
void
MtlRecommendTop(ModelCache *cache, bool has_user, int64 user_id, int k, text *objective,
				ArrayType *exclude, Jsonb *context, Jsonb *user_features, MtlTopItems *out)
{
	const MtlTrained *m = MtlCacheModel(cache);
	struct MtlRecommender *rec;
	MtlObjective obj;
	int			T = m->model.spec.n_tasks;
	int64		user_pos = -1;
	double	   *scores;
	bool	   *excluded;
	Ranked	   *best;

	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be a positive number of items")));
	ParseObjectiveOrError(m, objective, &obj);
	rec = MtlCacheRecommender(cache);
	if (has_user)
		user_pos = mtl_schema_find_id(&m->schema, MTL_SIDE_USER, user_id);
	excluded = Excluded(m, exclude, rec->n_items);
	scores = palloc_extended(sizeof(double) * (rec->n_items * T + 1), MCXT_ALLOC_HUGE);
	if (context != NULL)
		MtlSetRowFeatures(m, context, MTL_SIDE_CONTEXT, rec->predictor->slots,
						  rec->predictor->nums, NULL);
	if (user_features != NULL)
		MtlSetRowFeatures(m, user_features, MTL_SIDE_USER, rec->predictor->slots,
						  rec->predictor->nums, NULL);
	MtlComputeBegin(0);
	mtl_recommender_score(rec, user_pos, user_features != NULL, context != NULL, scores);
	MtlComputeEnd();
	best = palloc(sizeof(Ranked) * (Min(k, rec->n_items) + 1));
	out->T = T;
	out->n = TopK(m, &obj, scores, excluded, rec->n_items, Min(k, (int) Min(rec->n_items, INT32_MAX)), best);
	out->item_ids = palloc(sizeof(int64) * (out->n + 1));
	out->score = palloc(sizeof(double) * (out->n + 1));
	out->scores = palloc(sizeof(double) * (out->n * T + 1));
	for (int i = 0; i < out->n; i++)
	{
		out->item_ids[i] = m->schema.ids[MTL_SIDE_ITEM].ids[best[i].pos];
		out->score[i] = best[i].score;
		memcpy(out->scores + i * T, scores + best[i].pos * T, sizeof(double) * T);
	}
	pfree(scores);
	pfree(excluded);
	pfree(best);
}

/* Emit the top items as rows (item_id, score, scores) of a materialized SRF. */
static void
EmitTop(FunctionCallInfo fcinfo, const MtlTopItems *top)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int i = 0; i < top->n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		Datum		outs[MTL_MAX_TASKS];

		for (int t = 0; t < top->T; t++)
			outs[t] = Float8GetDatum(top->scores[i * top->T + t]);
		values[0] = Int64GetDatum(top->item_ids[i]);
		values[1] = Float8GetDatum(top->score[i]);
		values[2] = PointerGetDatum(construct_array(outs, top->T, FLOAT8OID, 8, FLOAT8PASSBYVAL,
													TYPALIGN_DOUBLE));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/* Arguments 1-6 (user_id, k, objective, exclude, context, user_features) of both forms, for the model in cache. */
static void
RecommendForCall(FunctionCallInfo fcinfo, ModelCache *cache)
{
	MtlTopItems top;

	MtlRecommendTop(cache, !PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1),
					PG_GETARG_INT32(2), PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3),
					PG_ARGISNULL(4) ? NULL : PG_GETARG_ARRAYTYPE_P(4),
					PG_NARGS() > 5 && !PG_ARGISNULL(5) ? PG_GETARG_JSONB_P(5) : NULL,
					PG_NARGS() > 6 && !PG_ARGISNULL(6) ? PG_GETARG_JSONB_P(6) : NULL, &top);
	EmitTop(fcinfo, &top);
}

static void
CheckK(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(2) || PG_GETARG_INT32(2) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be a positive number of items")));
}

/*
 * mtl_recommend(model, user_id, k, objective, exclude, context, user_features)
 * returns TABLE(item_id bigint, score float8, scores float8[]).
 */
Datum
mtl_recommend(PG_FUNCTION_ARGS)
{
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;		/* no model: no rows */
	CheckK(fcinfo);
	RecommendForCall(fcinfo, MtlModelForCall(fcinfo, 0));
	return (Datum) 0;
}

/* mtl_recommend(name, user_id, k, objective, exclude, context, user_features): with the deployed version of name. */
Datum
mtl_recommend_named(PG_FUNCTION_ARGS)
{
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	CheckK(fcinfo);
	RecommendForCall(fcinfo, MtlRegistryModel(fcinfo, PG_GETARG_TEXT_PP(0)));
	return (Datum) 0;
}

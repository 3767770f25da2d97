/*
 * mtl_predict: score one (user, item) row with a model passed as bytea or
 * by name; the decoded models come from model_cache.c.
 */
#include "mtl_pg.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"

#include "model_cache.h"
#include "../core/dataset.h"

PG_FUNCTION_INFO_V1(mtl_predict);
PG_FUNCTION_INFO_V1(mtl_predict_named);

/*
 * Build the row whose ids are arguments user_arg and user_arg + 1 and, when
 * features_arg >= 0, whose feature objects are features_arg and the next,
 * and when context_arg >= 0, whose context object is that argument, in the
 * cache's predictor (slots and nums).
 */
void
MtlBuildRow(ModelCache *cache, FunctionCallInfo fcinfo, int user_arg, int features_arg,
			int context_arg)
{
	MtlPredictor *p = cache->predictor;
	const MtlTrained *m = &cache->trained;
	int64		user_pos = -1,
				item_pos = -1;

	if (!PG_ARGISNULL(user_arg))
		user_pos = mtl_schema_find_id(&m->schema, MTL_SIDE_USER, PG_GETARG_INT64(user_arg));
	if (!PG_ARGISNULL(user_arg + 1))
		item_pos = mtl_schema_find_id(&m->schema, MTL_SIDE_ITEM, PG_GETARG_INT64(user_arg + 1));
	mtl_predictor_row_from_ids(p, user_pos, item_pos);
	if (features_arg >= 0)
	{
		if (!PG_ARGISNULL(features_arg))
			MtlSetRowFeatures(m, PG_GETARG_JSONB_P(features_arg), MTL_SIDE_USER, p->slots, p->nums,
							  cache->hints[MTL_SIDE_USER]);
		if (!PG_ARGISNULL(features_arg + 1))
			MtlSetRowFeatures(m, PG_GETARG_JSONB_P(features_arg + 1), MTL_SIDE_ITEM, p->slots,
							  p->nums, cache->hints[MTL_SIDE_ITEM]);
	}
	if (context_arg >= 0 && !PG_ARGISNULL(context_arg))
		MtlSetRowFeatures(m, PG_GETARG_JSONB_P(context_arg), MTL_SIDE_CONTEXT, p->slots, p->nums,
						  cache->hints[MTL_SIDE_CONTEXT]);
}

/* Score the row MtlBuildRow builds: one output per task (owned by the cache). */
const double *
MtlScoreRow(ModelCache *cache, FunctionCallInfo fcinfo, int user_arg, int features_arg,
			int context_arg)
{
	MtlBuildRow(cache, fcinfo, user_arg, features_arg, context_arg);
	MtlComputeBegin(0);
	mtl_predictor_run(cache->predictor, cache->scores);
	MtlComputeEnd();
	return cache->scores;
}

/*
 * Score row ref of a chunk (mtl_round_rows) whose sets data encodes for the
 * cache's model: its ids, and its features in place of the stored ones of
 * each side it came with. Returns one output per task (owned by the cache).
 */
const double *
MtlScoreChunkRow(ModelCache *cache, const MtlDataset *data, const MtlRowRef *ref)
{
	MtlPredictor *p = cache->predictor;
	int32		item = data->item_row[ref->item];

	mtl_predictor_row_from_ids(p, data->user_row[ref->user],
							   item < 0 ? -1 : item - cache->trained.model.layout.item_row0);
	mtl_dataset_expand_sides(data, ref, p->slots, p->nums);
	MtlComputeBegin(0);
	mtl_predictor_run(p, cache->scores);
	MtlComputeEnd();
	return cache->scores;
}

/* The row's scores as float8[], one per task. */
static Datum
ScoreArray(ModelCache *cache, FunctionCallInfo fcinfo)
{
	int			T = cache->trained.model.spec.n_tasks;
	const double *scores = MtlScoreRow(cache, fcinfo, 1, PG_NARGS() >= 5 ? 3 : -1,
									   PG_NARGS() >= 6 ? 5 : -1);

	for (int t = 0; t < T; t++)
		cache->outputs[t] = Float8GetDatum(scores[t]);
	PG_RETURN_ARRAYTYPE_P(construct_array(cache->outputs, T, FLOAT8OID, 8, FLOAT8PASSBYVAL,
										  TYPALIGN_DOUBLE));
}

/*
 * mtl_predict(model, user_id, item_id [, user_features, item_features [, context]])
 * returns float8[]: one score per task, in the order of config.tasks.
 */
Datum
mtl_predict(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	return ScoreArray(MtlModelForCall(fcinfo, 0), fcinfo);
}

/* mtl_predict(name, ...): the same with the deployed version of a named model. */
Datum
mtl_predict_named(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	return ScoreArray(MtlRegistryModel(fcinfo, PG_GETARG_TEXT_PP(0)), fcinfo);
}

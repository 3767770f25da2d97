/*
 * mtl_predict: score one (user, item) row with a model passed as bytea.
 *
 * The decoded model is cached in fn_extra for the call site, keyed by the
 * datum's identity taken before detoasting: for a value stored out of line,
 * its TOAST pointer (relation and value id); otherwise the length, content
 * hash and CRC from the model's own header and trailer. So a query scoring a
 * million rows with a model from a table decodes it once and never refetches
 * it, and a call site fed different models in turn scores each with its own,
 * keeping the last four decoded.
 */
#include "mtl_pg.h"

#include "access/detoast.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/memutils.h"

#include "../core/predict.h"
#include "../core/recommend.h"

struct PredictCache
{
	bool		valid;
	bool		external;		/* key is the TOAST pointer */
	Oid			toastrelid;
	Oid			valueid;
	MtlModelKey key;
	MemoryContext context;		/* holds the decoded model */
	MtlTrained	trained;
	MtlPredictor *predictor;
	MtlRecommender *recommender;	/* built on first use by mtl_recommend */
	int32		hints[3][MTL_MAX_FIELDS];	/* field of each key position, per side */
	Datum		outputs[MTL_MAX_TASKS];
	double		scores[MTL_MAX_TASKS];
};

/*
 * A call site keeps the last few models it decoded, so a query that joins
 * rows to several models (one per seed, per version) decodes each once
 * instead of once per row as they alternate.
 */
#define MTL_MODELS_PER_SITE 4

typedef struct PredictSite
{
	PredictCache *entries[MTL_MODELS_PER_SITE];
	int			next_evict;
} PredictSite;

PG_FUNCTION_INFO_V1(mtl_predict);
PG_FUNCTION_INFO_V1(mtl_predict_named);

static bool
CacheHit(PredictCache *cache, struct varlena *raw, bool external, const MtlModelKey *key)
{
	if (!cache->valid || cache->external != external)
		return false;
	if (external)
	{
		struct varatt_external ptr;

		VARATT_EXTERNAL_GET_POINTER(ptr, raw);
		return ptr.va_toastrelid == cache->toastrelid && ptr.va_valueid == cache->valueid;
	}
	return key->len == cache->key.len && key->content_hash == cache->key.content_hash &&
		key->crc == cache->key.crc;
}

static void
CacheLoad(PredictCache *cache, struct varlena *raw, bool external, bytea *model)
{
	MemoryContext old;

	cache->valid = false;
	MemoryContextReset(cache->context);
	old = MemoryContextSwitchTo(cache->context);
	MtlDecodeOrError((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &cache->trained);
	cache->predictor = mtl_predictor_create(&cache->trained);
	cache->recommender = NULL;
	MemoryContextSwitchTo(old);
	memset(cache->hints, -1, sizeof(cache->hints));
	cache->external = external;
	if (external)
	{
		struct varatt_external ptr;

		VARATT_EXTERNAL_GET_POINTER(ptr, raw);
		cache->toastrelid = ptr.va_toastrelid;
		cache->valueid = ptr.va_valueid;
	}
	mtl_model_key((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &cache->key);
	cache->valid = true;
}

/* An empty cache entry whose decoded model will live in a child of parent. */
PredictCache *
MtlCacheCreate(MemoryContext parent)
{
	PredictCache *cache = MemoryContextAllocZero(parent, sizeof(PredictCache));

	cache->context = AllocSetContextCreate(parent, "mtl model cache", ALLOCSET_DEFAULT_SIZES);
	return cache;
}

/* Decode model (an in-memory value) into the entry, replacing what it held. */
void
MtlCacheLoad(PredictCache *cache, bytea *model)
{
	CacheLoad(cache, NULL, false, model);
}

static PredictSite *
SiteForCall(FunctionCallInfo fcinfo)
{
	PredictSite *site = fcinfo->flinfo->fn_extra;

	if (site == NULL)
	{
		site = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(PredictSite));
		for (int i = 0; i < MTL_MODELS_PER_SITE; i++)
			site->entries[i] = MtlCacheCreate(fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = site;
	}
	return site;
}

/* The decoded model for argument model_arg, from the call site's cache when it holds that value. */
PredictCache *
MtlModelForCall(FunctionCallInfo fcinfo, int model_arg)
{
	PredictSite *site = SiteForCall(fcinfo);
	PredictCache *cache;
	struct varlena *raw = (struct varlena *) DatumGetPointer(PG_GETARG_DATUM(model_arg));
	bool		external = VARATT_IS_EXTERNAL_ONDISK(raw);
	bytea	   *model = NULL;
	MtlModelKey key = {0};

	if (!external)
	{
		model = PG_GETARG_BYTEA_PP(model_arg);
		if (!mtl_model_key((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &key))
		{
			MtlTrained	rejected;	/* too short to be a model: decoding raises the error */

			MtlDecodeOrError((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &rejected);
		}
	}
	for (int i = 0; i < MTL_MODELS_PER_SITE; i++)
		if (CacheHit(site->entries[i], raw, external, &key))
			return site->entries[i];
	/* replace the entry decoded longest ago */
	cache = site->entries[site->next_evict];
	site->next_evict = (site->next_evict + 1) % MTL_MODELS_PER_SITE;
	if (model == NULL)
		model = PG_GETARG_BYTEA_PP(model_arg);
	CacheLoad(cache, raw, external, model);
	return cache;
}

static void
InterruptCallback(void *arg)
{
	CHECK_FOR_INTERRUPTS();
}

/* The cached model's recommender, built (item sides of the whole catalog) on first use. */
MtlRecommender *
MtlCacheRecommender(PredictCache *cache)
{
	if (cache->recommender == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(cache->context);

		MtlComputeBegin(0);
		cache->recommender = mtl_recommender_create(&cache->trained);
		MtlComputeEnd();
		cache->recommender->interrupt = InterruptCallback;
		MemoryContextSwitchTo(old);
	}
	return cache->recommender;
}

const MtlTrained *
MtlCacheModel(const PredictCache *cache)
{
	return &cache->trained;
}

const MtlModelKey *
MtlCacheKey(const PredictCache *cache)
{
	return &cache->key;
}

/*
 * Score the row whose ids are arguments user_arg and user_arg + 1 and, when
 * features_arg >= 0, whose feature objects are features_arg and the next,
 * and when context_arg >= 0, whose context object is that argument.
 * Returns one output per task (owned by the cache).
 */
const double *
MtlScoreRow(PredictCache *cache, FunctionCallInfo fcinfo, int user_arg, int features_arg,
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
	MtlComputeBegin(0);
	mtl_predictor_run(p, cache->scores);
	MtlComputeEnd();
	return cache->scores;
}

/* The row's scores as float8[], one per task. */
static Datum
ScoreArray(PredictCache *cache, FunctionCallInfo fcinfo)
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

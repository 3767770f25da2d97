/*
 * The decoded models of the PostgreSQL layer: the models of a call site
 * (fn_extra), for mtl_predict, mtl_recommend, mtl_evaluate and the round
 * functions, and the entries the registry keeps per named model.
 *
 * A call site's model is keyed by the datum's identity taken before
 * detoasting: for a value stored out of line, its TOAST pointer (relation and
 * value id); otherwise the length, content hash and CRC from the model's own
 * header and trailer. So a query scoring a million rows with a model from a
 * table decodes it once and never refetches it, and a call site fed
 * different models in turn scores each with its own, keeping the last four
 * decoded.
 */
#include "mtl_pg.h"

#include "access/detoast.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "model_cache.h"
#include "../core/explain.h"
#include "../core/recommend.h"


/*
 * A call site keeps the last few models it decoded, so a query that joins
 * rows to several models (one per seed, per version) decodes each once
 * instead of once per row as they alternate.
 */
#define MTL_MODELS_PER_SITE 4

typedef struct CallSite
{
	ModelCache *entries[MTL_MODELS_PER_SITE];
	int			next_evict;
} CallSite;

static bool
CacheHit(ModelCache *cache, struct varlena *raw, bool external, const MtlModelKey *key)
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
CacheLoad(ModelCache *cache, struct varlena *raw, bool external, bytea *model)
{
	MemoryContext old;

	cache->valid = false;
	MemoryContextReset(cache->context);
	old = MemoryContextSwitchTo(cache->context);
	MtlDecodeOrError((const uint8 *) VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model), &cache->trained);
	cache->predictor = mtl_predictor_create(&cache->trained);
	cache->recommender = NULL;
	cache->explainer = NULL;
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
ModelCache *
MtlCacheCreate(MemoryContext parent)
{
	ModelCache *cache = MemoryContextAllocZero(parent, sizeof(ModelCache));

	cache->context = AllocSetContextCreate(parent, "mtl model cache", ALLOCSET_DEFAULT_SIZES);
	return cache;
}

/* Decode model (an in-memory value) into the entry, replacing what it held. */
void
MtlCacheLoad(ModelCache *cache, bytea *model)
{
	CacheLoad(cache, NULL, false, model);
}

static CallSite *
SiteForCall(FunctionCallInfo fcinfo)
{
	CallSite *site = fcinfo->flinfo->fn_extra;

	if (site == NULL)
	{
		site = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CallSite));
		for (int i = 0; i < MTL_MODELS_PER_SITE; i++)
			site->entries[i] = MtlCacheCreate(fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = site;
	}
	return site;
}

/* The decoded model for argument model_arg, from the call site's cache when it holds that value. */
ModelCache *
MtlModelForCall(FunctionCallInfo fcinfo, int model_arg)
{
	CallSite *site = SiteForCall(fcinfo);
	ModelCache *cache;
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
MtlCacheRecommender(ModelCache *cache)
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

/* The cached model's explainer, built on first use. */
MtlExplainer *
MtlCacheExplainer(ModelCache *cache)
{
	if (cache->explainer == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(cache->context);

		MtlComputeBegin(0);
		cache->explainer = mtl_explainer_create(&cache->trained);
		MtlComputeEnd();
		MemoryContextSwitchTo(old);
	}
	return cache->explainer;
}

const MtlTrained *
MtlCacheModel(const ModelCache *cache)
{
	return &cache->trained;
}

const MtlModelKey *
MtlCacheKey(const ModelCache *cache)
{
	return &cache->key;
}

/*
 * An aggregate over rows that each bring a model needs one model for the
 * whole group: key is its first row's, cache this row's. verb starts the
 * hint ("Evaluate", "Explain").
 */
void
MtlCheckSameModel(const MtlModelKey *key, const ModelCache *cache, const char *aggregate,
				  const char *verb)
{
	if (memcmp(key, &cache->key, sizeof(MtlModelKey)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs the same model on every row it aggregates", aggregate),
				 errhint("%s each model in its own group, e.g. GROUP BY the model's name.", verb)));
}

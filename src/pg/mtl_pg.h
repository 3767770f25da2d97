/* Shared declarations of the PostgreSQL layer. */
#ifndef MTL_PG_H
#define MTL_PG_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "../core/format.h"
#include "../core/mem.h"
#include "../core/rows.h"

/* errors.c: the SQLSTATE of a core error, and reporting one as "what: detail" (what may be NULL) */
int			MtlErrorSqlState(const MtlError *e);
void		MtlReportError(const MtlError *e, const char *what) pg_attribute_noreturn();

/* config.c: parse and validate the config jsonb of mtl_train */
void		MtlParseConfig(Jsonb *config, MtlSpec *spec);
/* the config of mtl_update: old's spec with training keys changed and tasks added */
void		MtlParseUpdateConfig(Jsonb *config, const MtlSpec *old, MtlSpec *spec,
								 bool *freeze_shared);

/* features.c: read a features object into a training row or a predict row */
void		MtlAddFeatures(MtlRowStore *store, Jsonb *features, int side, const MtlSpec *spec,
						   MemoryContext store_context);
/*
 * one feature of a row: kind MTL_KIND_CAT (value: hash), MTL_KIND_NUM (value:
 * bits) or MTL_KIND_BAG (one value of a list, object of weights or text)
 */
void		MtlAddFeature(MtlRowStore *store, int side, int kind, const char *name, int len,
						  uint64 value, MemoryContext store_context);
/*
 * each non-null feature of an object, checked, in key order; position counts
 * keys (a list's values share their key's). spec (bag_size, text fields) may
 * be NULL: no text fields, bags up to MTL_MAX_BAG values.
 */
typedef void (*MtlFeatureVisit) (void *arg, int side, int kind, const char *name, int len,
								 uint64 value, int position);
void		MtlVisitFeatures(Jsonb *features, int side, const MtlSpec *spec,
							 MtlFeatureVisit visit, void *arg);
/*
 * text.c: the buckets of a text's first spec->bag_size words (in order of
 * appearance, as text search configuration spec->text_config finds them);
 * their count
 */
int			MtlTextBuckets(const char *text, int len, const MtlSpec *spec, uint32 *buckets);
/* whether config names this feature key a text, or a sequence */
bool		MtlIsTextField(const MtlSpec *spec, const char *name, int len);
bool		MtlIsSequenceField(const MtlSpec *spec, const char *name, int len);
/* the configuration's oid; errors when it does not exist */
Oid			MtlTextConfigOid(const char *name);
/* hints: MTL_MAX_FIELDS entries kept across rows (-1 at first), or NULL */
void		MtlSetRowFeatures(const MtlTrained *trained, Jsonb *features, int side,
							  int32 *slots, float *nums, int32 *hints);

/* train_agg.c: rows collected for training, and training on them */
typedef struct TrainState
{
	MtlSpec		spec;
	MtlRowStore *rows;
	int64		offered;		/* rows given, kept or down-sampled away */
} TrainState;
TrainState *MtlTrainCreate(MemoryContext context, Jsonb *config, bool weight_arg);
MtlRowStore *MtlTrainRowStore(const MtlSpec *spec, MemoryContext context);
void		MtlTrainAddRow(TrainState *state, const Datum *values, const bool *nulls,
						   int n_values, MemoryContext context);
bytea	   *MtlTrainFinish(TrainState *state, const MtlTrained *old, bool freeze_shared);

/* spill.c: a row store's chunks beyond budget bytes go to a BufFile living in context */
void		MtlRowsSpillToTempFile(MtlRowStore *rows, size_t budget, MemoryContext context);
uint64		MtlRowsSpilledBytes(const MtlRowStore *rows);
void		MtlRowsSpillClose(MtlRowStore *rows);

/* features.c: read the labels array of one row (with sample_weight, its weight last) */
void		MtlReadLabels(ArrayType *labels, const MtlSpec *spec, float *out);
/* a labels array as doubles (NaN: missing; a NaN given becomes infinite); their count */
int			MtlLabelValues(ArrayType *labels, double *y);
/* n labels as doubles (NaN: missing) checked against the tasks, into out */
void		MtlCheckLabels(const double *y, int n, const MtlSpec *spec, float *out);

/* model_cache.c: the decoded models of a call site (fn_extra) or a registry entry */
typedef struct ModelCache ModelCache;
ModelCache *MtlModelForCall(FunctionCallInfo fcinfo, int model_arg);
ModelCache *MtlCacheCreate(MemoryContext parent);
void		MtlCacheLoad(ModelCache *cache, bytea *model);
const MtlTrained *MtlCacheModel(const ModelCache *cache);
struct MtlRecommender *MtlCacheRecommender(ModelCache *cache);
struct MtlExplainer *MtlCacheExplainer(ModelCache *cache);
const MtlModelKey *MtlCacheKey(const ModelCache *cache);
void		MtlCheckSameModel(const MtlModelKey *key, const ModelCache *cache,
							  const char *aggregate, const char *verb);
/* GUC mtl.evaluate_max_memory_mb */
extern int	mtl_evaluate_max_memory_mb;

/* predict.c: building and scoring a row */
void		MtlBuildRow(ModelCache *cache, FunctionCallInfo fcinfo, int user_arg,
						int features_arg, int context_arg);
const double *MtlScoreRow(ModelCache *cache, FunctionCallInfo fcinfo, int user_arg,
						  int features_arg, int context_arg);
struct MtlDataset;
const double *MtlScoreChunkRow(ModelCache *cache, const struct MtlDataset *data,
							   const MtlRowRef *ref);

/* recommend.c: the top k items of the catalog for one user */
typedef struct MtlTopItems
{
	int			n;
	int			T;
	int64	   *item_ids;		/* [n], best first */
	double	   *score;			/* [n] objective */
	double	   *scores;			/* [n x T] task outputs */
} MtlTopItems;
void		MtlRecommendTop(ModelCache *cache, bool has_user, int64 user_id, int k,
							text *objective, ArrayType *exclude, Jsonb *context,
							Jsonb *user_features, MtlTopItems *out);

/* registry.c: the deployed version of a named model, checked once per statement */
ModelCache *MtlRegistryModel(FunctionCallInfo fcinfo, text *name);

/*
 * compute_mode.c: flush denormals (and set OpenBLAS threads > 0) while the core
 * computes; the caller's state returns at the outermost end or on abort
 */
void		MtlComputeInit(void);
void		MtlComputeBegin(int threads);
void		MtlComputeEnd(void);

/* mtl.c: model bytes decoded, and bytes as a bytea, or an error */
void		MtlDecodeOrError(const uint8 *data, size_t len, MtlTrained *trained);
/* len bytes as a new bytea, or an error naming what exceeds the 1 GB a bytea holds (hint: NULL or a way out) */
bytea	   *MtlToBytea(const void *data, size_t len, const char *what, const char *hint);

#endif

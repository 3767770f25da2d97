/* A decoded model and what scoring it keeps: see model_cache.c. */
#ifndef MTL_MODEL_CACHE_H
#define MTL_MODEL_CACHE_H

#include "mtl_pg.h"

#include "../core/predict.h"

/* the fields after predictor are the scoring path's scratch (predict.c) */
struct ModelCache
{
	bool		valid;
	bool		external;		/* key is the TOAST pointer */
	Oid			toastrelid;
	Oid			valueid;
	MtlModelKey key;
	MemoryContext context;		/* holds the decoded model */
	MtlTrained	trained;
	MtlPredictor *predictor;
	struct MtlRecommender *recommender;	/* built on first use by mtl_recommend */
	struct MtlExplainer *explainer; /* built on first use by mtl_explain */
	int32		hints[3][MTL_MAX_FIELDS];	/* field of each key position, per side */
	Datum		outputs[MTL_MAX_TASKS];
	double		scores[MTL_MAX_TASKS];
};

#endif

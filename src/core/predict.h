/*
 * Scoring rows with a trained model. A predictor owns the buffers of one
 * call site so that scoring a row allocates nothing.
 *
 * Why scoring is fast: the first layer is linear in the input, and the input
 * is [user part | item part | user*item | ...], so X @ W_in splits into a
 * user side's vector, an item side's vector and the E-wide product's. A
 * side's vector depends only on the id when its features come from the
 * model (ids alone), so it is kept in a per-side cache keyed by the id's
 * position; per row only the product slot (E x P) and the small towers are
 * left to compute.
 */
#ifndef MTL_PREDICT_H
#define MTL_PREDICT_H

#include "format.h"

/* a row whose side was given features: its vector is computed, not cached */
#define MTL_PREDICT_UNCACHED INT64_MIN
/* bytes a side's cache may hold */
#define MTL_PREDICT_CACHE_BYTES (8 * 1024 * 1024)

typedef struct MtlSideCache
{
	int64_t		n_entries;
	int64_t    *tags;			/* key held by each entry (MTL_PREDICT_UNCACHED: none) */
	float	   *vecs;			/* [n_entries x P] */
	int			n_cat;			/* this side's categorical slots ... */
	int		   *cat_slots;
	int			n_num;			/* ... and numeric columns */
	int		   *num_cols;
} MtlSideCache;

typedef struct MtlPredictor
{
	const MtlTrained *trained;
	MtlWork    *work;
	int32_t    *slots;			/* one row being built */
	float	   *nums;
	/* per side: id position (-1: unknown or anonymous) when the row's side
	 * holds that id's stored features, else MTL_PREDICT_UNCACHED */
	int64_t		key[2];
	MtlSideCache side[2];
	float	   *scratch;		/* [P] a side's vector when not cached */
} MtlPredictor;

MtlPredictor *mtl_predictor_create(const MtlTrained *trained);
void		mtl_predictor_free(MtlPredictor *p);

/* Start a row from ids (positions from mtl_schema_find_id, -1: none). */
void		mtl_predictor_row_from_ids(MtlPredictor *p, int64_t user_pos, int64_t item_pos);

/*
 * Score the row in p->slots / p->nums: one output per task into out.
 * Resets p->key to uncached, so rows built by other means stay correct.
 */
void		mtl_predictor_run(MtlPredictor *p, double *out);

#endif

/*
 * Scoring rows with a trained model. A predictor owns the buffers of one
 * call site so that scoring a row allocates nothing.
 *
 * Why scoring is fast: the first layer is linear in the input, and the input
 * is [user part | item part | user*item | ...], so X @ W_in splits into a
 * user side's vector, an item side's vector and the E-wide product's. A
 * side's vector depends only on the side's inputs (id slot, categorical
 * slots, numbers), so for rows with a known id it is memoised in the cache
 * entry of that id, keyed by those inputs (compared exactly); per row only
 * the product slot (E x P) and the small towers are left to compute when the
 * same users and items come back, with or without features passed. Rows
 * without an id add their side up from per-value projections (row_proj),
 * and so do context fields, which belong to the row.
 *
 * single_task keeps a copy of the input per task, and W_in is zero outside
 * each task's block, so a side's vector is the sum over the copies.
 */
#ifndef MTL_PREDICT_H
#define MTL_PREDICT_H

#include "format.h"

/* bytes a side's cache may hold (per predictor: one model at one call site) */
#define MTL_PREDICT_CACHE_BYTES (8 * 1024 * 1024)
/* bytes the projections of categorical embedding rows may hold (per predictor) */
#define MTL_PREDICT_ROW_BYTES (16 * 1024 * 1024)

typedef struct MtlSideCache
{
	int			n_cat;			/* this side's embedded fields ... */
	int		   *cat_slots;
	int			n_num;			/* ... and numeric columns */
	int		   *num_cols;
	int			sig_len;		/* inputs of a side: id slot, field slots, num and weight bits */
	int			all_fit;		/* every id of the side has an entry of its own */
	int64_t		row0;			/* first embedding row of this side's ids */
	int64_t		n_entries;		/* by the id's position */
	uint32_t   *sigs;			/* [n_entries x sig_len] inputs each entry holds */
	uint8_t    *filled;			/* [n_entries] */
	float	   *vecs;			/* [n_entries x P] */
} MtlSideCache;

typedef struct MtlPredictor
{
	const MtlTrained *trained;
	MtlWork    *work;
	int32_t    *slots;			/* one row being built */
	float	   *nums;
	MtlSideCache side[3];		/* user, item, context (context: fields only, never cached) */
	uint32_t   *sig;			/* the row's inputs of one side */
	float	   *scratch;		/* [P] a side's vector when not cached (no id) */
	/*
	 * Each categorical embedding row's product with its field's block of
	 * W_in (E x P), filled on first use: a side vector missing from the side
	 * cache then costs P adds per field instead of E x P multiply-adds.
	 * NULL when they would not fit in MTL_PREDICT_ROW_BYTES.
	 */
	int64_t		cat_row0;		/* first categorical embedding row */
	float	   *row_proj;		/* [categorical rows x P] */
	int16_t    *row_field;		/* field + 1 whose block filled the row; 0: not yet */
	/* the terms of one row's projection (see ProjectFused) */
	float	   *coef;
	const float **coef_rows;
	const float **plain_rows;
	float	   *pools;			/* [3 x 2E] each side's sum and sum of squares */
	float	   *cross;			/* [E] the row's cross slot */
	float	   *din;			/* [2E + 2K] a history's attention-pooled vector, the candidate's key, scratch */
	float	   *din_sum;		/* [E] the row's attention-pooled histories summed */
	/*
	 * DIN (copy 0): W1's Wh + Wd, and per item position (direct-mapped) the
	 * history item's key k, vector h and k (Wh + Wd), keyed by its group of
	 * rows: a history item then costs one K x A product per scored row, not two.
	 */
	float	   *din_whd;		/* [K x A], then Wv - Wd [K x A] */
	float	   *din_wvd;
	int64_t		din_entries;
	int32_t    *din_keys;		/* [entries x group], -1: empty */
	float	   *din_vals;		/* [entries x (K + E + A)] */
	float	   *din_zv;			/* [A] */
	const float **din_h;		/* [history] each history item's cached entry */
	float	   *din_hv;			/* [history x K] k * q */
	float	   *din_zs;			/* [history x A] the units */
	float	   *din_a;			/* [history] the weights */
} MtlPredictor;

MtlPredictor *mtl_predictor_create(const MtlTrained *trained);
void		mtl_predictor_free(MtlPredictor *p);

/* Start a row from ids (positions from mtl_schema_find_id, -1: none). */
void		mtl_predictor_row_from_ids(MtlPredictor *p, int64_t user_pos, int64_t item_pos);

/*
 * Attention-pooled sequence field f of the row in p->slots against its item
 * (copy c): out [2E + 2K], the vector in the first E (then the key and scratch).
 */
void		mtl_predictor_din(const MtlPredictor *p, int c, int f, float *out);

/*
 * The cross slot of the row in p->slots for input copy c, into p->cross;
 * din_sum ([E] or NULL): the row's attention-pooled histories of copy c, summed.
 */
void		mtl_predictor_cross(MtlPredictor *p, int c, const float *din_sum);

/* One side's share of the first layer (X @ W_in) for the row in p->slots / p->nums. */
void		mtl_predictor_side_vector(const MtlPredictor *p, int side, float *vec);

/* Score the row in p->slots / p->nums: one output per task into out. */
void		mtl_predictor_run(MtlPredictor *p, double *out);

#endif

/*
 * Catalog-wide scoring: every item a model knows, for one user, in batches
 * through sgemm instead of one row at a time.
 *
 * The first layer splits as in predict.h: b_in + user side + context side +
 * item side + cross @ W_in[cross rows]. The item sides and the items' pools
 * of embeddings (model.h) are computed once per recommender ([items x P],
 * [copies x items x 2E]); per user, the constant part is one vector and the
 * cross term one sgemm of [items x E] by [E x P] per input copy; the rest of
 * the model runs on batches of items through the same forward pass as
 * training.
 */
#ifndef MTL_RECOMMEND_H
#define MTL_RECOMMEND_H

#include "predict.h"

#define MTL_RECOMMEND_BATCH 1024

typedef struct MtlRecommender
{
	const MtlTrained *trained;
	MtlPredictor *predictor;	/* builds rows and side vectors */
	int64_t		n_items;
	float	   *item_side;		/* [n_items x P] */
	float	   *base;			/* [P] b_in + user side + context side */
	float	   *prod;			/* [batch x E] the cross slots of one copy */
	float	   *item_pool;		/* [copies x n_items x 2E] each item's sum and sum of squares */
	float	   *row_pool;		/* [copies x 3 x 2E] the user's and context's pools (item: unused) */
	MtlWork    *work;
	/* attention-pooled histories (NULL without): see ProjectHistory */
	float	   *din_h,			/* [history x E] each history item's rows summed, then [history x K] its key */
			   *din_a,			/* [batch x history] */
			   *din_z,			/* [batch x A] */
			   *din_cv,			/* [batch x A] */
			   *din_pooled,		/* [batch x E] */
			   *din_sum,		/* [batch x E] the batch's pooled histories summed, for the cross */
			   *din_w,			/* [3 x K x A + A] Wv - Wd, Wh + Wd, diag(h) Wp, b1 + h (Wh + Wd) */
			   *item_vec;		/* [copies x n_items x K] each item's key as a candidate */
	void		(*interrupt) (void *arg);	/* called per batch when set; may not return */
	void	   *arg;
} MtlRecommender;

MtlRecommender *mtl_recommender_create(const MtlTrained *trained);
void		mtl_recommender_free(MtlRecommender *r);

/*
 * Score every known item (item positions 0 .. n_items-1, in the schema's id
 * order) for the user at user_pos (-1: anonymous) with the user's stored
 * features, unless user_features_set: then the predictor's row (slots, nums)
 * already holds the user side to use. With context_set the predictor's row
 * holds the context (scenario, device...) to score in, which also picks the
 * scenario's towers; otherwise the context is missing and the towers are
 * the shared ones. out: [n_items x n_tasks] outputs.
 */
void		mtl_recommender_score(MtlRecommender *r, int64_t user_pos, int user_features_set,
								  int context_set, double *out);

#endif

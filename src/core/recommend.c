#include "recommend.h"

#include <cblas.h>
#include <string.h>

#include "layers.h"
#include "mem.h"

/* Each item's side of the first layer and its pools, with its stored features. */
static void
ItemSides(MtlRecommender *r)
{
	const MtlTrained *t = r->trained;
	const MtlLayout *L = &t->model.layout;
	int			P = L->P;
	int			E = L->E;

	for (int64_t i = 0; i < r->n_items; i++)
	{
		mtl_schema_row_from_ids(&t->schema, L, -1, i, r->predictor->slots, r->predictor->nums);
		mtl_predictor_side_vector(r->predictor, MTL_SIDE_ITEM, r->item_side + i * P);
		for (int c = 0; c < L->n_copies && L->A > 0; c++)
			mtl_model_item_key(&t->model, t->model.params, c, r->predictor->slots,
							   r->item_vec + ((size_t) c * r->n_items + i) * L->K);
		for (int c = 0; c < L->n_copies; c++)
		{
			float	   *pool = r->item_pool + ((size_t) c * r->n_items + i) * 2 * E;

			mtl_model_pool_slots(&t->model, t->model.params, c, r->predictor->slots,
								 r->predictor->nums, MTL_SIDE_ITEM, pool, pool + E);
		}
	}
}

/* The user's and the context's pools of the row in the predictor, per copy. */
static void
RowPools(MtlRecommender *r)
{
	const MtlModel *m = &r->trained->model;
	int			E = m->layout.E;

	for (int c = 0; c < m->layout.n_copies; c++)
		for (int side = 0; side < MTL_N_SIDES; side += 2)
		{
			float	   *pool = r->row_pool + ((size_t) c * MTL_N_SIDES + side) * 2 * E;

			mtl_model_pool_slots(m, m->params, c, r->predictor->slots, r->predictor->nums, side,
								 pool, pool + E);
		}
}

MtlRecommender *
mtl_recommender_create(const MtlTrained *trained)
{
	MtlRecommender *r = mtl_alloc(sizeof(MtlRecommender));
	const MtlLayout *L = &trained->model.layout;

	r->trained = trained;
	r->predictor = mtl_predictor_create(trained);
	r->n_items = trained->schema.ids[MTL_SIDE_ITEM].n;
	r->item_side = mtl_alloc(sizeof(float) * (r->n_items * L->P + 1));
	r->base = mtl_alloc(sizeof(float) * L->P);
	r->prod = mtl_alloc(sizeof(float) * MTL_RECOMMEND_BATCH * L->E);
	r->item_pool = mtl_alloc(sizeof(float) * ((size_t) L->n_copies * r->n_items * 2 * L->E + 1));
	r->row_pool = mtl_alloc(sizeof(float) * (size_t) L->n_copies * MTL_N_SIDES * 2 * L->E);
	r->work = mtl_work_create(&trained->model, MTL_RECOMMEND_BATCH);
	mtl_work_freeze_scenarios(r->work, &trained->model, trained->model.params);
	if (L->A > 0)
	{
		int			n = MTL_MAX_BAG;

		r->din_h = mtl_alloc(sizeof(float) * n * (L->K + L->E));
		r->din_a = mtl_alloc(sizeof(float) * MTL_RECOMMEND_BATCH * n);
		r->din_z = mtl_alloc(sizeof(float) * MTL_RECOMMEND_BATCH * L->A);
		r->din_cv = mtl_alloc(sizeof(float) * MTL_RECOMMEND_BATCH * L->A);
		r->din_pooled = mtl_alloc(sizeof(float) * MTL_RECOMMEND_BATCH * L->E);
		r->din_sum = mtl_alloc(sizeof(float) * MTL_RECOMMEND_BATCH * L->E);
		r->din_w = mtl_alloc(sizeof(float) * (3 * L->K * L->A + L->A));
		r->item_vec = mtl_alloc(sizeof(float) * ((size_t) L->n_copies * r->n_items * L->K + 1));
	}
	ItemSides(r);
	return r;
}

void
mtl_recommender_free(MtlRecommender *r)
{
	if (r == NULL)
		return;
	mtl_work_free(r->work, &r->trained->model);
	mtl_predictor_free(r->predictor);
	mtl_free(r->din_h);
	mtl_free(r->din_a);
	mtl_free(r->din_z);
	mtl_free(r->din_cv);
	mtl_free(r->din_pooled);
	mtl_free(r->din_sum);
	mtl_free(r->din_w);
	mtl_free(r->item_vec);
	mtl_free(r->item_side);
	mtl_free(r->base);
	mtl_free(r->prod);
	mtl_free(r->item_pool);
	mtl_free(r->row_pool);
	mtl_free(r);
}

/* Copy the context fields of one row (slots, nums) into another. */
static void
CopyContext(const MtlSchema *schema, const MtlLayout *L, const int32_t *from_slots,
			const float *from_nums, int32_t *slots, float *nums)
{
	for (int f = 0; f < schema->n_fields; f++)
	{
		const MtlFeature *feat = &schema->fields[f];
		int			s0;

		if (feat->side != MTL_SIDE_CONTEXT)
			continue;
		if (feat->kind == MTL_KIND_NUM)
		{
			nums[feat->col] = from_nums[feat->col];
			continue;
		}
		s0 = L->cat_slot[feat->index];
		memcpy(slots + s0, from_slots + s0, sizeof(int32_t) * feat->width);
		if (mtl_kind_is_multi(feat->kind))
			memcpy(nums + feat->col, from_nums + feat->col, sizeof(float) * feat->width);
	}
}

/*
 * base = b_in + the user's side + the context's side (missing unless
 * context_set); returns the row's scenario for the towers.
 */
static int32_t
UserBase(MtlRecommender *r, int64_t user_pos, int user_features_set, int context_set)
{
	const MtlTrained *t = r->trained;
	const MtlLayout *L = &t->model.layout;
	MtlPredictor *p = r->predictor;
	float	   *side = mtl_alloc(sizeof(float) * L->P);
	int32_t    *slots = mtl_alloc(sizeof(int32_t) * L->n_slots);
	float	   *nums = mtl_alloc(sizeof(float) * (L->n_cols + 1));
	int32_t		scenario;

	memcpy(slots, p->slots, sizeof(int32_t) * L->n_slots);
	memcpy(nums, p->nums, sizeof(float) * L->n_cols);
	if (!user_features_set)
		mtl_schema_row_from_ids(&t->schema, L, user_pos, -1, p->slots, p->nums);
	else
		p->slots[0] = user_pos >= 0 ? (int32_t) user_pos : -1;
	if (context_set)
		CopyContext(&t->schema, L, slots, nums, p->slots, p->nums);
	else
		mtl_schema_clear_side(&t->schema, L, MTL_SIDE_CONTEXT, p->slots, p->nums);
	memcpy(r->base, t->model.params + L->b_in, sizeof(float) * L->P);
	mtl_predictor_side_vector(p, MTL_SIDE_USER, side);
	mtl_add(r->base, side, L->P);
	mtl_predictor_side_vector(p, MTL_SIDE_CONTEXT, side);
	mtl_add(r->base, side, L->P);
	scenario = mtl_model_row_scenario(&t->model, p->slots);
	RowPools(r);
	mtl_free(side);
	mtl_free(slots);
	mtl_free(nums);
	return scenario;
}

/*
 * proj rows of items [from, from + B) += each attention-pooled history of the
 * user (copy c, field f) against every item, in batched kernels. With
 * W1's blocks Wh, Wv, Wp, Wd (rows of k, q, k * q, k - q), history item j's
 * units for item i are
 *   z_ij = (b1 + k_j (Wh + Wd)) + q_i (Wv - Wd) + q_i (diag(k_j) Wp),
 * so per history item: one [B x K] @ [K x A] product; then the weights
 * a [B x n] = act(z) w2 + b2, the pooled vectors a @ H [B x E] (H: each
 * history item's rows summed), and their share of the first layer, pooled @
 * W_in's rows of the field; the pooled vectors also join r->din_sum, for the
 * cross.
 */
static void
ProjectHistory(MtlRecommender *r, int c, int f, int64_t from, int B)
{
	const MtlModel *m = &r->trained->model;
	const MtlLayout *L = &m->layout;
	int			E = L->E,
				K = L->K,
				A = L->A;
	const int32_t *slot = r->predictor->slots + L->cat_slot[f];
	const float *att = m->params + L->att0 + (size_t) c * L->att_len;
	const float *b1 = att + (size_t) 4 * K * A,
			   *w2 = b1 + A;
	const float *Q = r->item_vec + ((size_t) c * r->n_items + from) * K;
	const float *W = m->params + L->W_in + (size_t) (c * L->D + 3 * E + f * E) * L->P;
	float	   *H = r->din_h,
			   *keys = H + (size_t) MTL_MAX_BAG * E,
			   *a = r->din_a,
			   *z = r->din_z,
			   *pooled = r->din_pooled,
			   *wvd = r->din_w,
			   *whd = wvd + K * A,
			   *M = whd + K * A,
			   *base = M + K * A;
	int			n = 0;

	if (slot[0] == (int32_t) L->cat_row0[f])
	{
		/* no history: its missing row, the same for every item */
		const float *missing = m->params + (size_t) MTL_COPY_ROW(L, slot[0], c) * E;

		for (int b = 0; b < B; b++)
			memcpy(pooled + (size_t) b * E, missing, sizeof(float) * E);
	}
	else
	{
		for (int k = 0; k < L->cat_slots[f]; k += L->seq_group)
			if (mtl_model_history_item(L, m->params, c, slot + k, keys + (size_t) n * K,
									   H + (size_t) n * E))
				n++;
		for (int i = 0; i < K * A; i++)
		{
			wvd[i] = att[K * A + i] - att[3 * K * A + i];
			whd[i] = att[i] + att[3 * K * A + i];
		}
		/* z = q (Wv - Wd) for every item of the batch, then each history item's terms */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, A, K, 1.0f, Q, K, wvd, A,
					0.0f, r->din_cv, A);
		for (int j = 0; j < n; j++)
		{
			const float *kj = keys + (size_t) j * K;

			memcpy(base, b1, sizeof(float) * A);
			for (int e = 0; e < K; e++)
			{
				mtl_axpy(base, kj[e], whd + (size_t) e * A, A);
				for (int u = 0; u < A; u++)
					M[e * A + u] = kj[e] * att[(size_t) (2 * K + e) * A + u];
			}
			memcpy(z, r->din_cv, sizeof(float) * B * A);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, A, K, 1.0f, Q, K, M, A,
						1.0f, z, A);
			for (int b = 0; b < B; b++)
			{
				const float *zb = z + (size_t) b * A;
				float		w = w2[A];

				for (int u = 0; u < A; u++)
				{
					float		act = zb[u] + base[u];

					w += w2[u] * MTL_ATTENTION_ACT(act);
				}
				a[(size_t) b * n + j] = w;
			}
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, E, n, 1.0f, a, n, H, E,
					0.0f, pooled, E);
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, L->P, E, 1.0f, pooled, E, W, L->P,
				1.0f, r->work->proj[0], L->P);
	mtl_add(r->din_sum, pooled, B * E);
}

/* proj rows of items [from, from + B): base + item side + cross @ W_in[cross rows] per copy */
static void
ProjectItems(MtlRecommender *r, int32_t user_row, int64_t from, int B)
{
	const MtlModel *m = &r->trained->model;
	const MtlLayout *L = &m->layout;
	int			E = L->E;
	float	   *proj = r->work->proj[0];

	for (int b = 0; b < B; b++)
	{
		float	   *row = proj + (size_t) b * L->P;

		memcpy(row, r->item_side + (from + b) * L->P, sizeof(float) * L->P);
		mtl_add(row, r->base, L->P);
	}
	for (int c = 0; c < L->n_copies; c++)
	{
		const float *row_pool = r->row_pool + (size_t) c * MTL_N_SIDES * 2 * E;
		const float *sum[MTL_N_SIDES] = {row_pool, NULL, row_pool + 4 * E};
		const float *sq[MTL_N_SIDES] = {row_pool + E, NULL, row_pool + 5 * E};

		/* the histories first: their pooled vectors join the user's side of the cross */
		if (L->A > 0)
			memset(r->din_sum, 0, sizeof(float) * B * E);
		for (int f = 0; f < m->shape.n_cat && L->A > 0; f++)
			if (L->cat_din[f])
				ProjectHistory(r, c, f, from, B);
		/* ids: no user id, no product */
		if (user_row < 0 && m->spec.interaction == MTL_INTERACTION_IDS)
			continue;
		for (int b = 0; b < B; b++)
		{
			const float *item = r->item_pool + ((size_t) c * r->n_items + from + b) * 2 * E;

			sum[MTL_SIDE_ITEM] = item;
			sq[MTL_SIDE_ITEM] = item + E;
			mtl_model_cross(m, sum, sq, L->A > 0 ? r->din_sum + (size_t) b * E : NULL,
							r->prod + (size_t) b * E);
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, L->P, E, 1.0f,
					r->prod, E, m->params + L->W_in + (size_t) (c * L->D + 2 * E) * L->P,
					L->P, 1.0f, proj, L->P);
	}
}

void
mtl_recommender_score(MtlRecommender *r, int64_t user_pos, int user_features_set,
					  int context_set, double *out)
{
	const MtlModel *m = &r->trained->model;
	int			T = m->spec.n_tasks;
	int32_t		user_row = user_pos >= 0 ? (int32_t) user_pos : -1;
	int32_t		scenario = UserBase(r, user_pos, user_features_set, context_set);

	for (int b = 0; b < MTL_RECOMMEND_BATCH; b++)
		r->work->scenario[b] = scenario;
	for (int64_t from = 0; from < r->n_items; from += MTL_RECOMMEND_BATCH)
	{
		int			B = (int) (r->n_items - from < MTL_RECOMMEND_BATCH ? r->n_items - from
							   : MTL_RECOMMEND_BATCH);

		if (r->interrupt != NULL)
			r->interrupt(r->arg);
		ProjectItems(r, user_row, from, B);
		mtl_model_forward_projected(m, r->work, m->params, B);
		for (int t = 0; t < T; t++)
		{
			const float *logit = mtl_work_logit(r->work, t);

			for (int b = 0; b < B; b++)
				out[(from + b) * T + t] = mtl_task_output(&m->spec.tasks[t], logit[b]);
		}
	}
}

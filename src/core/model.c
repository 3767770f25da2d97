/*
 * Forward and backward passes of the models in model.h, in the plain style of
 * llm.c: each part a forward and a backward function over batch buffers.
 */
#include "model.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

#include "grouped.h"
#include "layers.h"
#include "loss.h"
#include "mem.h"
#include "rng.h"
#include "rows.h"

static int
TowerWidth(const MtlSpec *spec, int l)
{
	return l < spec->n_tower_layers ? spec->tower_units[l] : 1;
}

int32_t
mtl_model_row_scenario(const MtlModel *model, const int32_t *slots)
{
	int			f = model->shape.scenario_cat;
	int32_t		row;

	if (f < 0)
		return 0;
	row = slots[model->layout.cat_slot[f]];
	return row < 0 ? 0 : (int32_t) (row - model->layout.cat_row0[f]);
}

/*
 * Whether embedded field f enters side's pool. An attention-pooled history
 * is the user's, wherever it was given, and enters only a pool taken from an
 * input row (with_din): it depends on the candidate, so the scoring paths
 * cache the user's pool without it and add it per row (the extra of
 * mtl_model_cross).
 */
static int
PoolsField(const MtlModel *model, int f, int side, int with_din)
{
	if (model->spec.interaction == MTL_INTERACTION_IDS)
		return 0;
	if (model->layout.cat_din[f])
		return with_din && side == MTL_SIDE_USER;
	return model->shape.cat_side[f] == side;
}

static void
PoolAdd(float *sum, float *sq, const float *v, int E, int fm)
{
	for (int i = 0; i < E; i++)
		sum[i] += v[i];
	if (fm)
		for (int i = 0; i < E; i++)
			sq[i] += v[i] * v[i];
}

/* The attention inputs [k, q, k * q, k - q] of one history item ([K] each). */
static void
AttentionInput(int K, const float *k, const float *q, float *in)
{
	for (int i = 0; i < K; i++)
	{
		in[i] = k[i];
		in[K + i] = q[i];
		in[2 * K + i] = k[i] * q[i];
		in[3 * K + i] = k[i] - q[i];
	}
}

/* a_j of one history item from its inputs; s [A]: the hidden units. */
static float
AttentionWeight(const MtlLayout *L, const float *att, const float *in, float *s)
{
	int			K = L->K,
				A = L->A;
	const float *b1 = att + (size_t) 4 * K * A,
			   *w2 = b1 + A;
	float		a = w2[A];

	memcpy(s, b1, sizeof(float) * A);
	for (int k = 0; k < 4 * K; k++)
		mtl_axpy(s, in[k], att + (size_t) k * A, A);
	for (int u = 0; u < A; u++)
	{
		s[u] = MTL_ATTENTION_ACT(s[u]);
		a += w2[u] * s[u];
	}
	return a;
}

/* Whether a sequence's slots hold no history (its missing row in the first slot). */
static int
HistoryMissing(const MtlLayout *L, const int32_t *slot, int f)
{
	return slot[0] == (int32_t) L->cat_row0[f];
}

int
mtl_model_history_item(const MtlLayout *L, const float *params, int c, const int32_t *group,
					   float *key, float *h)
{
	int			E = L->E;

	if (group[0] < 0)
		return 0;
	memset(h, 0, sizeof(float) * E);
	for (int g = 0; g < L->seq_group; g++)
	{
		float	   *part = key + (size_t) g * E;

		if (group[g] < 0)
		{
			memset(part, 0, sizeof(float) * E);
			continue;
		}
		memcpy(part, params + (size_t) MTL_COPY_ROW(L, group[g], c) * E, sizeof(float) * E);
		mtl_add(h, part, E);
	}
	return 1;
}

void
mtl_model_item_key(const MtlModel *model, const float *params, int c, const int32_t *slots,
				   float *q)
{
	const MtlLayout *L = &model->layout;

	memset(q, 0, sizeof(float) * L->K);
	if (slots[1] >= 0)
		memcpy(q, params + (size_t) MTL_COPY_ROW(L, slots[1], c) * L->E, sizeof(float) * L->E);
	for (int g = 0; g < L->n_item_cats; g++)
	{
		int32_t		row = slots[L->cat_slot[L->item_cats[g]]];

		if (row >= 0)
			memcpy(q + (size_t) (1 + g) * L->E, params + (size_t) MTL_COPY_ROW(L, row, c) * L->E,
				   sizeof(float) * L->E);
	}
}

/* The same from an input row x (copy's D-wide input). */
static void
ItemKeyOfRow(const MtlLayout *L, const float *x, float *q)
{
	memcpy(q, x + L->E, sizeof(float) * L->E);
	for (int g = 0; g < L->n_item_cats; g++)
		memcpy(q + (size_t) (1 + g) * L->E, x + 3 * L->E + L->item_cats[g] * L->E,
			   sizeof(float) * L->E);
}

void
mtl_model_din_vector(const MtlModel *model, const float *params, int c, const int32_t *slots,
					 const float *q, int f, float *out, float *scratch)
{
	const MtlLayout *L = &model->layout;
	const int32_t *slot = slots + L->cat_slot[f];
	const float *att = params + L->att0 + (size_t) c * L->att_len;
	int			K = L->K,
				A = L->A;
	const float *Wh = att,
			   *Wv = att + (size_t) K * A,
			   *Wp = att + (size_t) 2 * K * A,
			   *Wd = att + (size_t) 3 * K * A,
			   *b1 = att + (size_t) 4 * K * A,
			   *w2 = b1 + A;
	float	   *key = scratch,
			   *h = key + K;
	float		zv[MTL_MAX_ATTENTION],
				z[MTL_MAX_ATTENTION],
				whd_stack[4096];
	float	   *whd;

	memset(out, 0, sizeof(float) * L->E);
	if (HistoryMissing(L, slot, f))
	{
		memcpy(out, params + (size_t) MTL_COPY_ROW(L, slot[0], c) * L->E, sizeof(float) * L->E);
		return;
	}
	/*
	 * W1 [k, q, k * q, k - q] = k (Wh + Wd) + q (Wv - Wd) + (k * q) Wp: the
	 * candidate's part once, then two K x A products per history item
	 */
	whd = K * A <= 4096 ? whd_stack : mtl_alloc(sizeof(float) * K * A);
	for (int i = 0; i < K * A; i++)
		whd[i] = Wh[i] + Wd[i];
	memcpy(zv, b1, sizeof(float) * A);
	for (int e = 0; e < K; e++)
	{
		mtl_axpy(zv, q[e], Wv + (size_t) e * A, A);
		mtl_axpy(zv, -q[e], Wd + (size_t) e * A, A);
	}
	for (int k = 0; k < L->cat_slots[f]; k += L->seq_group)
		if (mtl_model_history_item(L, params, c, slot + k, key, h))
			mtl_axpy(out, mtl_din_weight(zv, key, q, whd, Wp, w2, w2[A], MTL_ATTENTION_SLOPE, K, A, z),
					 h, L->E);
	if (whd != whd_stack)
		mtl_free(whd);
}

/*
 * Backward of mtl_model_din_vector for one row of copy c: g, the gradient of
 * its output, into the history's rows of table (copy c's embedding
 * gradients), the attention block's gradient datt, and dq (+=).
 * scratch: [10 K + E + 2 A] floats.
 */
static void
DinBackward(const MtlModel *model, const float *params, int c, const int32_t *slots,
			const float *q, int f, const float *g, float *table, float *datt, float *dq,
			float *scratch)
{
	const MtlLayout *L = &model->layout;
	const int32_t *slot = slots + L->cat_slot[f];
	const float *att = params + L->att0 + (size_t) c * L->att_len;
	int			E = L->E,
				K = L->K,
				A = L->A;
	const float *w2 = att + (size_t) 4 * K * A + A;
	float	   *db1 = datt + (size_t) 4 * K * A,
			   *dw2 = db1 + A;
	float	   *in = scratch,
			   *s = in + 4 * K,
			   *dz = s + A,
			   *din = dz + A,
			   *key = din + 4 * K,
			   *dkey = key + K,
			   *h = dkey + K;

	if (HistoryMissing(L, slot, f))
	{
		mtl_add(table + (size_t) slot[0] * E, g, E);
		return;
	}
	for (int k = 0; k < L->cat_slots[f]; k += L->seq_group)
	{
		float		a,
					da = 0.0f;

		if (!mtl_model_history_item(L, params, c, slot + k, key, h))
			continue;
		AttentionInput(K, key, q, in);
		a = AttentionWeight(L, att, in, s);
		for (int i = 0; i < E; i++)
			da += g[i] * h[i];
		datt[L->att_len - 1] += da;
		for (int u = 0; u < A; u++)
		{
			dw2[u] += da * s[u];
			dz[u] = da * w2[u] * (s[u] > 0.0f ? 1.0f : MTL_ATTENTION_SLOPE);
			db1[u] += dz[u];
		}
		for (int j = 0; j < 4 * K; j++)
		{
			const float *w = att + (size_t) j * A;
			float		sum = 0.0f;

			for (int u = 0; u < A; u++)
				sum += w[u] * dz[u];
			din[j] = sum;
			mtl_axpy(datt + (size_t) j * A, in[j], dz, A);
		}
		for (int i = 0; i < K; i++)
		{
			dkey[i] = din[i] + din[2 * K + i] * q[i] + din[3 * K + i];
			dq[i] += din[K + i] + din[2 * K + i] * key[i] - din[3 * K + i];
		}
		/* each row of the group: its part of the key, and a_j g through the sum h */
		for (int j = 0; j < L->seq_group; j++)
			if (slot[k + j] >= 0)
			{
				float	   *row = table + (size_t) slot[k + j] * E;

				mtl_add(row, dkey + (size_t) j * E, E);
				mtl_axpy(row, a, g, E);
			}
	}
}

void
mtl_model_field_vector(const MtlModel *model, const float *params, int c, const int32_t *slots,
					   const float *nums, int f, float *out)
{
	const MtlLayout *L = &model->layout;
	const int32_t *s = slots + L->cat_slot[f];
	int			E = L->E;

	memset(out, 0, sizeof(float) * E);
	for (int k = 0; k < L->cat_slots[f]; k++)
		if (s[k] >= 0)
			mtl_axpy(out, L->cat_wcol[f] < 0 ? 1.0f : nums[L->cat_wcol[f] + k],
					 params + (size_t) MTL_COPY_ROW(L, s[k], c) * E, E);
}

/*
 * Side's pool over one row's embeddings: from its input row x (copy's D-wide
 * input, absent slots zero) when x is set, else from params' rows of copy c
 * named by slots (and nums, for bags).
 */
static void
Pool(const MtlModel *model, const float *x, const float *params, int c, const int32_t *slots,
	 const float *nums, int side, float *sum, float *sq)
{
	const MtlLayout *L = &model->layout;
	int			E = L->E;
	int			fm = model->spec.interaction == MTL_INTERACTION_FM;
	float		v[MTL_MAX_EMBEDDING];

	memset(sum, 0, sizeof(float) * E);
	if (fm)
		memset(sq, 0, sizeof(float) * E);
	if (side < 2)
	{
		if (x != NULL)
			PoolAdd(sum, sq, x + side * E, E, fm);
		else if (slots[side] >= 0)
			PoolAdd(sum, sq, params + (size_t) MTL_COPY_ROW(L, slots[side], c) * E, E, fm);
	}
	for (int f = 0; f < model->shape.n_cat; f++)
	{
		if (!PoolsField(model, f, side, x != NULL))
			continue;
		if (x != NULL)
			PoolAdd(sum, sq, x + 3 * E + f * E, E, fm);
		else
		{
			mtl_model_field_vector(model, params, c, slots, nums, f, v);
			PoolAdd(sum, sq, v, E, fm);
		}
	}
}

void
mtl_model_pool(const MtlModel *model, const float *x, int side, float *sum, float *sq)
{
	Pool(model, x, NULL, 0, NULL, NULL, side, sum, sq);
}

void
mtl_model_pool_slots(const MtlModel *model, const float *params, int c, const int32_t *slots,
					 const float *nums, int side, float *sum, float *sq)
{
	Pool(model, NULL, params, c, slots, nums, side, sum, sq);
}

void
mtl_model_cross(const MtlModel *model, const float *const *sum, const float *const *sq,
				const float *extra, float *out)
{
	int			E = model->layout.E;

	if (model->spec.interaction == MTL_INTERACTION_IDS)
	{
		for (int i = 0; i < E; i++)
			out[i] = sum[MTL_SIDE_USER][i] * sum[MTL_SIDE_ITEM][i];
		return;
	}
	for (int i = 0; i < E; i++)
	{
		float		d = extra != NULL ? extra[i] : 0.0f;

		if (model->spec.interaction == MTL_INTERACTION_POOLED)
			out[i] = (sum[MTL_SIDE_USER][i] + d) * sum[MTL_SIDE_ITEM][i];
		else
		{
			float		s = sum[0][i] + sum[1][i] + sum[2][i] + d;

			out[i] = 0.5f * (s * s - (sq[0][i] + sq[1][i] + sq[2][i] + d * d));
		}
	}
}

void
mtl_model_cross_of_row(const MtlModel *model, float *x, float *pools)
{
	int			E = model->layout.E;
	const float *sum[MTL_N_SIDES],
			   *sq[MTL_N_SIDES];

	for (int side = 0; side < MTL_N_SIDES; side++)
	{
		float	   *s = pools + (size_t) side * 2 * E;

		mtl_model_pool(model, x, side, s, s + E);
		sum[side] = s;
		sq[side] = s + E;
	}
	mtl_model_cross(model, sum, sq, NULL, x + 2 * E);
}

void
mtl_model_assemble(const MtlModel *model, MtlWork *work, const float *params,
				   const int32_t *slots, const float *nums, int B)
{
	const MtlLayout *L = &model->layout;
	int			E = L->E;
	int			S = L->n_slots;
	int			n_num = model->shape.n_num;
	int			num0 = L->D - n_num;
	float	   *pools = mtl_alloc(sizeof(float) * 2 * MTL_N_SIDES * E);
	float	   *q = L->A > 0 ? mtl_alloc(sizeof(float) * (2 * L->K + E)) : NULL;

	for (int c = 0; c < L->n_copies; c++)
	{
		const float *table = params + (size_t) (c * L->emb_rows) * E;
		float	   *X = work->X + (size_t) c * L->D;

		mtl_embedding_forward(X, L->Xw, table, slots, S, B, E);
		mtl_embedding_forward(X + E, L->Xw, table, slots + 1, S, B, E);
		for (int f = 0; f < model->shape.n_cat; f++)
			if (L->cat_wcol[f] < 0)
				mtl_embedding_forward(X + 3 * E + f * E, L->Xw, table, slots + L->cat_slot[f], S,
									  B, E);
			else if (!L->cat_din[f])
				mtl_bag_forward(X + 3 * E + f * E, L->Xw, table, slots + L->cat_slot[f], S,
								nums + L->cat_wcol[f], L->n_cols, L->cat_slots[f], B, E);
		for (int r = 0; r < B; r++)
		{
			float	   *x = X + (size_t) r * L->Xw;

			/* histories against the candidate: its id and categorical embeddings, in x already */
			if (L->A > 0)
				ItemKeyOfRow(L, x, q);
			for (int f = 0; f < model->shape.n_cat && L->A > 0; f++)
				if (L->cat_din[f])
					mtl_model_din_vector(model, params, c, slots + (size_t) r * S, q, f,
										 x + 3 * E + f * E, q + L->K);

			mtl_model_cross_of_row(model, x, pools);
			if (n_num > 0)
				memcpy(x + num0, nums + (size_t) r * L->n_cols, sizeof(float) * n_num);
		}
	}
	mtl_free(pools);
	mtl_free(q);
	for (int r = 0; r < B; r++)
		work->scenario[r] = mtl_model_row_scenario(model, slots + (size_t) r * S);
	mtl_grouped_plan(model, work, slots, B);
}

float *
mtl_work_logit(MtlWork *work, int task)
{
	int			l;

	for (l = MTL_MAX_LAYERS; l >= 0; l--)
		if (work->tower_act[task][l] != NULL)
			break;
	return work->tower_act[task][l];
}

/* Output of expert e of level k (its last layer), read with stride *ld. */
static float *
ExpertOutput(const MtlLayout *L, float *const *act, float *proj, int k, int e, int *ld)
{
	if (L->n_expert_layers == 1)
	{
		*ld = L->levels[k].P;
		return proj + L->levels[k].col[e];
	}
	*ld = L->H;
	return act[L->n_expert_layers - 1];
}

/* Inverted dropout: draw a mask (0 or 1/(1-p)) or reuse it, and apply it. */
static void
Dropout(MtlWork *w, float p, float *x, int ld, float *mask, int B, int n)
{
	if (w->dropout_mode == MTL_DROPOUT_OFF || mask == NULL)
		return;
	if (w->dropout_mode == MTL_DROPOUT_DRAW)
	{
		MtlRng		rng;
		float		keep = 1.0f / (1.0f - p);

		mtl_rng_seed(&rng, w->dropout_state);
		for (size_t i = 0; i < (size_t) B * n; i++)
			mask[i] = mtl_rng_uniform(&rng) < p ? 0.0f : keep;
		w->dropout_state = mtl_rng_next(&rng);
	}
	mtl_scale_by(x, ld, mask, B, n);
}

/* Level 0's projection: one sgemm, or one per owner's copy of the input. */
static void
ProjectInput(const MtlModel *model, MtlWork *w, const float *p, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlLevel *lv = &L->levels[0];

	if (mtl_grouped_active(w, B))
	{
		mtl_grouped_forward(model, w, p, B);
		return;
	}
	if (L->n_copies == 1)
	{
		mtl_dense_forward(w->proj[0], L->P, w->X, L->Xw, p + L->W_in, p + L->b_in, B, L->D, L->P);
		return;
	}
	for (int o = 0; o < model->spec.n_tasks; o++)
		mtl_dense_forward_ldw(w->proj[0] + lv->own_col0[o], L->P, w->X + (size_t) o * L->D, L->Xw,
							  p + L->W_in + (size_t) o * L->D * L->P + lv->own_col0[o], L->P,
							  p + L->b_in + lv->own_col0[o], B, L->D, lv->own_cols[o]);
}

/* Level k > 0's projection: each owner's columns from its stream of level k-1. */
static void
ProjectStreams(const MtlModel *model, MtlWork *w, const float *p, int k, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlLevel *lv = &L->levels[k];

	for (int o = 0; o <= model->spec.n_tasks; o++)
		if (lv->own_cols[o] > 0)
			mtl_dense_forward(w->proj[k] + lv->own_col0[o], lv->P, w->mix[k - 1][o], L->H,
							  p + lv->in_W[o], p + lv->in_b[o], B, L->H, lv->own_cols[o]);
}

/* The experts of level k after their first layer's pre-activation in proj[k]. */
static void
ExpertsForward(const MtlModel *model, MtlWork *w, const float *p, int k, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlLevel *lv = &L->levels[k];

	for (int e = 0; e < lv->n_experts; e++)
	{
		int			ld;
		float	   *out;

		mtl_relu_forward(w->proj[k] + lv->col[e], lv->P, B, L->H1);
		for (int l = 1; l < L->n_expert_layers; l++)
		{
			const float *in = l == 1 ? w->proj[k] + lv->col[e] : w->expert_act[k][e][l - 1];
			int			ld_in = l == 1 ? lv->P : L->expert_units[l - 1];

			mtl_dense_forward(w->expert_act[k][e][l], L->expert_units[l], in, ld_in,
							  p + lv->expert_W[e][l], p + lv->expert_b[e][l],
							  B, L->expert_units[l - 1], L->expert_units[l]);
			mtl_relu_forward(w->expert_act[k][e][l], L->expert_units[l], B, L->expert_units[l]);
		}
		out = ExpertOutput(L, w->expert_act[k][e], w->proj[k], k, e, &ld);
		Dropout(w, model->spec.dropout, out, ld, w->expert_mask[k][e], B, L->H);
	}
}

/* Each owner's output: its gate's softmax-weighted sum of its experts. */
static void
MixForward(const MtlModel *model, MtlWork *w, int k, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlLevel *lv = &L->levels[k];
	int			H = L->H;

	for (int o = 0; o <= model->spec.n_tasks; o++)
	{
		int			n = lv->gate_n[o];
		float	   *mix = w->mix[k][o];

		if (n == 0)
			continue;
		if (lv->gate_col[o] >= 0)
			mtl_softmax_forward(w->gate[k][o], w->proj[k] + lv->gate_col[o], lv->P, B, n);
		else
			for (int r = 0; r < B; r++)
				w->gate[k][o][r] = 1.0f;
		memset(mix, 0, sizeof(float) * B * H);
		for (int j = 0; j < n; j++)
		{
			int			ld;
			const float *out = ExpertOutput(L, w->expert_act[k][lv->gate_expert[o][j]], w->proj[k],
											k, lv->gate_expert[o][j], &ld);

			for (int r = 0; r < B; r++)
				mtl_axpy(mix + (size_t) r * H, w->gate[k][o][(size_t) r * n + j],
						 out + (size_t) r * ld, H);
		}
	}
}

/*
 * The weights and bias a row of scenario s uses in one tower layer: the
 * shared ones for s = 0, else W * W_s and b + b_s (STAR) in work's buffers.
 */
static void
TowerParams(const MtlModel *model, MtlWork *w, const float *p, int t, int l, int s,
			const float **W, const float **b)
{
	const MtlLayout *L = &model->layout;
	int			in = l > 0 ? TowerWidth(&model->spec, l - 1) : L->H;
	int			out = TowerWidth(&model->spec, l);
	size_t		block = L->scenario0 + (size_t) (s - 1) * L->tower_len - L->tower0;

	*W = p + L->tower_W[t][l];
	*b = p + L->tower_b[t][l];
	if (s <= 0 || s > L->n_scenarios)
		return;
	if (w->star_frozen != NULL)
	{
		const float *eff = w->star_frozen + (size_t) (s - 1) * L->tower_len - L->tower0;

		*W = eff + L->tower_W[t][l];
		*b = eff + L->tower_b[t][l];
		return;
	}
	for (int i = 0; i < in * out; i++)
		w->star_W[i] = (*W)[i] * p[block + L->tower_W[t][l] + i];
	for (int i = 0; i < out; i++)
		w->star_b[i] = (*b)[i] + p[block + L->tower_b[t][l] + i];
	*W = w->star_W;
	*b = w->star_b;
}

void
mtl_work_freeze_scenarios(MtlWork *w, const MtlModel *model, const float *params)
{
	const MtlLayout *L = &model->layout;
	float	   *frozen;

	mtl_free(w->star_frozen);
	w->star_frozen = NULL;
	if (L->n_scenarios == 0)
		return;
	frozen = mtl_alloc(sizeof(float) * L->n_scenarios * L->tower_len);
	for (int s = 1; s <= L->n_scenarios; s++)
	{
		float	   *eff = frozen + (size_t) (s - 1) * L->tower_len - L->tower0;

		for (int t = 0; t < model->spec.n_tasks; t++)
			for (int l = 0; l <= model->spec.n_tower_layers; l++)
			{
				const float *W,
						   *b;
				int			in = l > 0 ? TowerWidth(&model->spec, l - 1) : L->H;
				int			out = TowerWidth(&model->spec, l);

				TowerParams(model, w, params, t, l, s, &W, &b);
				memcpy(eff + L->tower_W[t][l], W, sizeof(float) * in * out);
				memcpy(eff + L->tower_b[t][l], b, sizeof(float) * out);
			}
	}
	w->star_frozen = frozen;
}

/* Length of the run of rows from r0 with the same scenario. */
static int
ScenarioRun(const MtlWork *w, int r0, int B)
{
	int			r = r0 + 1;

	while (r < B && w->scenario[r] == w->scenario[r0])
		r++;
	return r - r0;
}

static void
TowersForward(const MtlModel *model, MtlWork *w, const float *p, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlSpec *spec = &model->spec;
	int			last = L->n_levels - 1;

	for (int t = 0; t < spec->n_tasks; t++)
	{
		const float *in = w->mix[last][t];
		int			width = L->H;

		for (int l = 0; l <= spec->n_tower_layers; l++)
		{
			int			out = TowerWidth(spec, l);

			for (int r0 = 0, n; r0 < B; r0 += n)
			{
				const float *W,
						   *b;

				n = L->n_scenarios > 0 ? ScenarioRun(w, r0, B) : B - r0;
				TowerParams(model, w, p, t, l, L->n_scenarios > 0 ? w->scenario[r0] : 0, &W, &b);
				mtl_dense_forward(w->tower_act[t][l] + (size_t) r0 * out, out,
								  in + (size_t) r0 * width, width, W, b, n, width, out);
			}
			if (l < spec->n_tower_layers)
			{
				mtl_relu_forward(w->tower_act[t][l], out, B, out);
				Dropout(w, spec->dropout, w->tower_act[t][l], out, w->tower_mask[t][l], B, out);
			}
			in = w->tower_act[t][l];
			width = out;
		}
	}
}

void
mtl_model_forward(const MtlModel *model, MtlWork *work, const float *params, int B)
{
	ProjectInput(model, work, params, B);
	mtl_model_forward_projected(model, work, params, B);
}

void
mtl_model_forward_projected(const MtlModel *model, MtlWork *work, const float *params, int B)
{
	for (int k = 0; k < model->layout.n_levels; k++)
	{
		if (k > 0)
			ProjectStreams(model, work, params, k, B);
		ExpertsForward(model, work, params, k, B);
		MixForward(model, work, k, B);
	}
	TowersForward(model, work, params, B);
}

/*
 * A parameter's gradient in g, or NULL when g is NULL: the backward passes
 * then compute input gradients only (mtl_model_backward's grads = NULL).
 */
static inline float *
GradAt(float *g, size_t offset)
{
	return g != NULL ? g + offset : NULL;
}

/* dW += dW_eff * W_s, dW_s += dW_eff * W, db += db_eff, db_s += db_eff */
static void
StarBackward(const MtlModel *model, MtlWork *w, const float *p, float *g, int t, int l, int s)
{
	const MtlLayout *L = &model->layout;
	int			in = l > 0 ? TowerWidth(&model->spec, l - 1) : L->H;
	int			out = TowerWidth(&model->spec, l);
	size_t		block = L->scenario0 + (size_t) (s - 1) * L->tower_len - L->tower0;
	size_t		W = L->tower_W[t][l],
				b = L->tower_b[t][l];

	for (int i = 0; i < in * out; i++)
	{
		g[W + i] += w->star_dW[i] * p[block + W + i];
		g[block + W + i] += w->star_dW[i] * p[W + i];
	}
	for (int i = 0; i < out; i++)
	{
		g[b + i] += w->star_db[i];
		g[block + b + i] += w->star_db[i];
	}
}

/* One tower layer's backward over the rows of each scenario run. */
static void
TowerLayerBackward(const MtlModel *model, MtlWork *w, const float *p, float *g, int t, int l,
				   const float *dout, const float *in, float *din, int B)
{
	const MtlLayout *L = &model->layout;
	int			in_w = l > 0 ? TowerWidth(&model->spec, l - 1) : L->H;
	int			out = TowerWidth(&model->spec, l);

	for (int r0 = 0, n; r0 < B; r0 += n)
	{
		int			s = L->n_scenarios > 0 ? w->scenario[r0] : 0;
		const float *W,
				   *b;
		int			star;

		n = L->n_scenarios > 0 ? ScenarioRun(w, r0, B) : B - r0;
		TowerParams(model, w, p, t, l, s, &W, &b);
		star = W == w->star_W && g != NULL;
		if (star)
		{
			memset(w->star_dW, 0, sizeof(float) * in_w * out);
			memset(w->star_db, 0, sizeof(float) * out);
		}
		mtl_dense_backward(din + (size_t) r0 * in_w, in_w,
						   star ? w->star_dW : GradAt(g, L->tower_W[t][l]),
						   star ? w->star_db : GradAt(g, L->tower_b[t][l]),
						   dout + (size_t) r0 * out, out, in + (size_t) r0 * in_w, in_w,
						   W, n, in_w, out);
		if (star)
			StarBackward(model, w, p, g, t, l, s);
	}
}

void
mtl_model_backward_towers(const MtlModel *model, MtlWork *w, const float *p, float *g,
						  float *const *dlogit, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlSpec *spec = &model->spec;
	int			last = L->n_levels - 1;

	for (int t = 0; t < spec->n_tasks; t++)
	{
		const float *dout = dlogit[t];

		for (int l = spec->n_tower_layers; l >= 0; l--)
		{
			const float *in = l > 0 ? w->tower_act[t][l - 1] : w->mix[last][t];
			float	   *din = l > 0 ? w->dtower_act[t][l - 1] : w->dmix[last][t];
			int			in_w = l > 0 ? TowerWidth(spec, l - 1) : L->H;

			TowerLayerBackward(model, w, p, g, t, l, dout, in, din, B);
			if (l > 0)
			{
				if (w->dropout_mode != MTL_DROPOUT_OFF && w->tower_mask[t][l - 1] != NULL)
					mtl_scale_by(din, in_w, w->tower_mask[t][l - 1], B, in_w);
				mtl_relu_backward(din, in_w, in, in_w, B, in_w);
			}
			dout = din;
		}
	}
}

/*
 * dgate[r * n + j] = dmix row r . expert output row r, for the B rows. Four
 * rows at a time: four sums in flight instead of one chain of additions,
 * each still summed in order (the same bits as one row at a time).
 */
static void
GateDots(const float *dmix, int H, const float *out, int ld, int B, float *dgate, int n, int j)
{
	int			r = 0;

	for (; r + 4 <= B; r += 4)
	{
		const float *m0 = dmix + (size_t) r * H,
				   *m1 = m0 + H,
				   *m2 = m1 + H,
				   *m3 = m2 + H;
		const float *x0 = out + (size_t) r * ld,
				   *x1 = x0 + ld,
				   *x2 = x1 + ld,
				   *x3 = x2 + ld;
		float		s0 = 0.0f,
					s1 = 0.0f,
					s2 = 0.0f,
					s3 = 0.0f;

		for (int i = 0; i < H; i++)
		{
			s0 += m0[i] * x0[i];
			s1 += m1[i] * x1[i];
			s2 += m2[i] * x2[i];
			s3 += m3[i] * x3[i];
		}
		dgate[(size_t) r * n + j] = s0;
		dgate[(size_t) (r + 1) * n + j] = s1;
		dgate[(size_t) (r + 2) * n + j] = s2;
		dgate[(size_t) (r + 3) * n + j] = s3;
	}
	for (; r < B; r++)
	{
		const float *m = dmix + (size_t) r * H;
		const float *x = out + (size_t) r * ld;
		float		s = 0.0f;

		for (int i = 0; i < H; i++)
			s += m[i] * x[i];
		dgate[(size_t) r * n + j] = s;
	}
}

/* From each owner's dmix into its experts' outputs (in dproj or dexpert_act) and gates. */
static void
MixBackward(const MtlModel *model, MtlWork *w, int k, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlLevel *lv = &L->levels[k];
	int			H = L->H;

	memset(w->dproj[k], 0, sizeof(float) * B * lv->P);
	if (L->n_expert_layers > 1)
		for (int e = 0; e < lv->n_experts; e++)
			memset(w->dexpert_act[k][e][L->n_expert_layers - 1], 0, sizeof(float) * B * H);
	for (int o = 0; o <= model->spec.n_tasks; o++)
	{
		int			n = lv->gate_n[o];
		const float *dmix = w->dmix[k][o];
		const float *gate = w->gate[k][o];
		float	   *dgate = w->dgate[k][o];

		for (int j = 0; j < n; j++)
		{
			int			e = lv->gate_expert[o][j];
			int			ld;
			const float *out = ExpertOutput(L, w->expert_act[k][e], w->proj[k], k, e, &ld);
			float	   *dout = ExpertOutput(L, w->dexpert_act[k][e], w->dproj[k], k, e, &ld);

			for (int r = 0; r < B; r++)
			{
				float		gv = gate[(size_t) r * n + j];
				const float *dm = dmix + (size_t) r * H;
				float	   *d = dout + (size_t) r * ld;

				for (int i = 0; i < H; i++)
					d[i] += gv * dm[i];
			}
			/* a gate's gradient, where there is a gate */
			if (lv->gate_col[o] >= 0)
				GateDots(dmix, H, out, ld, B, dgate, n, j);
		}
		if (lv->gate_col[o] >= 0)
			mtl_softmax_backward(w->dproj[k] + lv->gate_col[o], lv->P, gate, dgate, B, n);
	}
}

/* From the experts' output gradients to their first layers' pre-activations in dproj. */
static void
ExpertsBackward(const MtlModel *model, MtlWork *w, const float *p, float *g, int k, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlLevel *lv = &L->levels[k];

	for (int e = 0; e < lv->n_experts; e++)
	{
		int			ld;
		float	   *dout = ExpertOutput(L, w->dexpert_act[k][e], w->dproj[k], k, e, &ld);

		if (w->dropout_mode != MTL_DROPOUT_OFF && w->expert_mask[k][e] != NULL)
			mtl_scale_by(dout, ld, w->expert_mask[k][e], B, L->H);
		for (int l = L->n_expert_layers - 1; l >= 1; l--)
		{
			int			in_w = L->expert_units[l - 1];
			int			out_w = L->expert_units[l];
			const float *in = l == 1 ? w->proj[k] + lv->col[e] : w->expert_act[k][e][l - 1];
			float	   *din = l == 1 ? w->dproj[k] + lv->col[e] : w->dexpert_act[k][e][l - 1];
			int			ld_in = l == 1 ? lv->P : in_w;

			mtl_relu_backward(w->dexpert_act[k][e][l], out_w, w->expert_act[k][e][l], out_w, B, out_w);
			mtl_dense_backward(din, ld_in, GradAt(g, lv->expert_W[e][l]), GradAt(g, lv->expert_b[e][l]),
							   w->dexpert_act[k][e][l], out_w, in, ld_in,
							   p + lv->expert_W[e][l], B, in_w, out_w);
		}
		mtl_relu_backward(w->dproj[k] + lv->col[e], lv->P, w->proj[k] + lv->col[e], lv->P,
						  B, L->H1);
	}
}

/* From dproj[k] (k > 0) into the owners' projections and the streams of level k-1. */
static void
StreamsBackward(const MtlModel *model, MtlWork *w, const float *p, float *g, int k, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlLevel *lv = &L->levels[k];

	for (int o = 0; o <= model->spec.n_tasks; o++)
	{
		if (L->levels[k - 1].gate_n[o] == 0)
			continue;
		if (lv->own_cols[o] == 0)
		{
			memset(w->dmix[k - 1][o], 0, sizeof(float) * B * L->H);
			continue;
		}
		mtl_dense_backward(w->dmix[k - 1][o], L->H, GradAt(g, lv->in_W[o]), GradAt(g, lv->in_b[o]),
						   w->dproj[k] + lv->own_col0[o], lv->P, w->mix[k - 1][o], L->H,
						   p + lv->in_W[o], B, L->H, lv->own_cols[o]);
	}
}

/* From dproj[0] into W_in, b_in and dX. */
static void
InputBackward(const MtlModel *model, MtlWork *w, const float *p, float *g, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlLevel *lv = &L->levels[0];

	if (g != NULL && mtl_grouped_active(w, B))
	{
		mtl_grouped_backward(model, w, p, g, B);
		return;
	}
	if (L->n_copies == 1)
	{
		mtl_dense_backward(w->dX, L->Xw, GradAt(g, L->W_in), GradAt(g, L->b_in), w->dproj[0], L->P,
						   w->X, L->Xw, p + L->W_in, B, L->D, L->P);
		return;
	}
	for (int o = 0; o < model->spec.n_tasks; o++)
	{
		size_t		W = L->W_in + (size_t) o * L->D * L->P + lv->own_col0[o];

		mtl_dense_backward_ldw(w->dX + (size_t) o * L->D, L->Xw, GradAt(g, W),
							   GradAt(g, L->b_in + lv->own_col0[o]),
							   w->dproj[0] + lv->own_col0[o], L->P, w->X + (size_t) o * L->D, L->Xw,
							   p + W, L->P, B, L->D, lv->own_cols[o]);
	}
}

void
mtl_model_backward_shared(const MtlModel *model, MtlWork *work, const float *params,
						  float *grads, int B)
{
	for (int k = model->layout.n_levels - 1; k >= 0; k--)
	{
		MixBackward(model, work, k, B);
		ExpertsBackward(model, work, params, grads, k, B);
		if (k > 0)
			StreamsBackward(model, work, params, grads, k, B);
	}
	InputBackward(model, work, params, grads, B);
}

void
mtl_model_backward(const MtlModel *model, MtlWork *work, const float *params,
				   float *grads, float *const *dlogit, int B)
{
	mtl_model_backward_towers(model, work, params, grads, dlogit, B);
	mtl_model_backward_shared(model, work, params, grads, B);
}

/* Scatter a field's input gradient g into its rows of one row's slots (a bag's weighted). */
static void
FieldScatter(const MtlLayout *L, int f, const int32_t *s, const float *nums, const float *g,
			 float *table)
{
	int			E = L->E;
	const int32_t *slot = s + L->cat_slot[f];

	for (int k = 0; k < L->cat_slots[f]; k++)
		if (slot[k] >= 0)
			mtl_axpy(table + (size_t) slot[k] * E,
					 L->cat_wcol[f] < 0 ? 1.0f : nums[L->cat_wcol[f] + k], g, E);
}

/* Each side's sum and sum of squares over input row x, into pools [6 x E]; the sum of all at 6E. */
static void
CrossPools(const MtlModel *model, const float *x, float *pools)
{
	int			E = model->layout.E;

	for (int side = 0; side < MTL_N_SIDES; side++)
		mtl_model_pool(model, x, side, pools + (size_t) side * 2 * E, pools + (size_t) side * 2 * E + E);
	for (int i = 0; i < E; i++)
		pools[6 * E + i] = pools[i] + pools[2 * E + i] + pools[4 * E + i];
}

/*
 * The cross slot's gradient d sent to input k of row x (k: the user id, the
 * item id, then embedded field k - 2): ids and pooled send d * V to each
 * embedding of the user's pool and d * U to each of the item's; fm sends
 * d * (S - v_k) to each embedding v_k, S the sum of all. Returns 0 when k
 * does not enter the cross. pools: from CrossPools.
 */
static int
CrossGrad(const MtlModel *model, const float *x, const float *d, const float *pools, int k,
		  float *g)
{
	const MtlLayout *L = &model->layout;
	int			E = L->E;
	int			din = k >= 2 && L->cat_din[k - 2];
	int			side = k < 2 ? k : din ? MTL_SIDE_USER : model->shape.cat_side[k - 2];
	const float *v = k < 2 ? x + k * E : x + 3 * E + (k - 2) * E;
	const float *other;

	if (k >= 2 && !PoolsField(model, k - 2, side, 1))
		return 0;
	if (model->spec.interaction == MTL_INTERACTION_FM)
	{
		for (int i = 0; i < E; i++)
			g[i] = d[i] * (pools[6 * E + i] - v[i]);
		return 1;
	}
	if (side == MTL_SIDE_CONTEXT)
		return 0;
	other = pools + (side == MTL_SIDE_USER ? 2 * E : 0);
	for (int i = 0; i < E; i++)
		g[i] = d[i] * other[i];
	return 1;
}

/*
 * The cross slot's gradient into the embedding rows of one input row x (its
 * gradient dx, slots s and nums of copy table). A bag's rows get its share
 * times their weights; an attention-pooled history's share goes to its slot
 * of dx, for HistoryBackward. pools: [8 x E] scratch.
 */
static void
CrossBackward(const MtlModel *model, const float *x, float *dx, const int32_t *s,
			  const float *nums, float *table, float *pools)
{
	const MtlLayout *L = &model->layout;
	int			E = L->E;
	float	   *g = pools + 7 * E;

	CrossPools(model, x, pools);
	for (int k = 0; k < 2 + model->shape.n_cat; k++)
	{
		if ((k < 2 && s[k] < 0) || !CrossGrad(model, x, dx + 2 * E, pools, k, g))
			continue;
		if (k < 2)
			mtl_add(table + (size_t) s[k] * E, g, E);
		else if (L->cat_din[k - 2])
			mtl_add(dx + 3 * E + (k - 2) * E, g, E);
		else
			FieldScatter(L, k - 2, s, nums, g, table);
	}
}

void
mtl_model_cross_input_grad(const MtlModel *model, const float *x, float *dx, float *pools)
{
	int			E = model->layout.E;
	float	   *g = pools + 7 * E;

	CrossPools(model, x, pools);
	for (int k = 0; k < 2 + model->shape.n_cat; k++)
		if (CrossGrad(model, x, dx + 2 * E, pools, k, g))
			mtl_add(k < 2 ? dx + k * E : dx + 3 * E + (k - 2) * E, g, E);
}

/*
 * The attention-pooled histories' gradients (in their slots of dx) into
 * their rows of table, the attention block's gradient datt, and the
 * candidate's key: its id's and categorical values' slots of dx.
 * scratch: [12 K + E + 2 A] floats.
 */
static void
HistoryBackward(const MtlModel *model, const float *params, int c, const int32_t *slots,
				const float *x, float *dx, float *table, float *datt, float *scratch)
{
	const MtlLayout *L = &model->layout;
	int			E = L->E;
	float	   *q = scratch,
			   *dq = q + L->K;

	ItemKeyOfRow(L, x, q);
	memset(dq, 0, sizeof(float) * L->K);
	for (int f = 0; f < model->shape.n_cat; f++)
		if (L->cat_din[f])
			DinBackward(model, params, c, slots, q, f, dx + 3 * E + f * E, table, datt, dq,
						dq + L->K);
	mtl_add(dx + E, dq, E);
	for (int g = 0; g < L->n_item_cats; g++)
		mtl_add(dx + 3 * E + L->item_cats[g] * E, dq + (size_t) (1 + g) * E, E);
}

void
mtl_model_backward_embeddings(const MtlModel *model, MtlWork *work, const float *params,
							  float *grads, const int32_t *slots, const float *nums, int B)
{
	const MtlLayout *L = &model->layout;
	int			E = L->E;
	int			S = L->n_slots;
	float	   *pools = mtl_alloc(sizeof(float) * 8 * E);
	float	   *scratch = mtl_alloc(sizeof(float) * (12 * L->K + E + 2 * L->A + 1));

	for (int c = 0; c < L->n_copies; c++)
	{
		float	   *table = grads + (size_t) (c * L->emb_rows) * E;
		float	   *dX = work->dX + (size_t) c * L->D;
		const float *X = work->X + (size_t) c * L->D;

		/* the cross first: an attention-pooled history's share joins its slot of dX */
		for (int r = 0; r < B; r++)
		{
			const float *x = X + (size_t) r * L->Xw;
			float	   *dx = dX + (size_t) r * L->Xw;

			/* the user's and item's gradient rows, first touched here */
			for (int k = 0; k < 2 && r + MTL_ROWS_AHEAD < B; k++)
				if (slots[(size_t) (r + MTL_ROWS_AHEAD) * S + k] >= 0)
					mtl_prefetch_row(table + (size_t) slots[(size_t) (r + MTL_ROWS_AHEAD) * S + k] * E, E, 1);
			CrossBackward(model, x, dx, slots + (size_t) r * S, nums + (size_t) r * L->n_cols,
						  table, pools);
			if (L->A > 0)
				HistoryBackward(model, params, c, slots + (size_t) r * S, x, dx, table,
								grads + L->att0 + (size_t) c * L->att_len, scratch);
		}
		mtl_embedding_backward(table, dX, L->Xw, slots, S, B, E);
		mtl_embedding_backward(table, dX + E, L->Xw, slots + 1, S, B, E);
		for (int f = 0; f < model->shape.n_cat; f++)
			if (L->cat_wcol[f] < 0)
			{
				if (!mtl_grouped_no_dx(model, work, f, B))
					mtl_embedding_backward(table, dX + 3 * E + f * E, L->Xw,
										   slots + L->cat_slot[f], S, B, E);
			}
			else if (!L->cat_din[f])
				mtl_bag_backward(table, dX + 3 * E + f * E, L->Xw, slots + L->cat_slot[f], S,
								 nums + L->cat_wcol[f], L->n_cols, L->cat_slots[f], B, E);
	}
	mtl_free(pools);
	mtl_free(scratch);
}

int
mtl_model_last_shared_layer(const MtlModel *model, MtlParamBlock *blocks, int max)
{
	const MtlLayout *L = &model->layout;
	int			k = L->n_levels - 1;
	const MtlLevel *lv = &L->levels[k];
	int			T = model->spec.n_tasks;
	int			last = L->n_expert_layers - 1;
	int			n = 0;

	for (int e = 0; e < lv->n_experts && n < max; e++)
	{
		MtlParamBlock *b = &blocks[n];

		if (lv->owner[e] != T)
			continue;
		if (last > 0)
		{
			b->offset = lv->expert_W[e][last];
			b->rows = L->expert_units[last - 1];
			b->cols = b->ld = L->H;
		}
		else if (k == 0)
		{
			b->offset = L->W_in + lv->col[e];
			b->rows = L->D;
			b->cols = L->H1;
			b->ld = L->P;
		}
		else
		{
			b->offset = lv->in_W[T] + (lv->col[e] - lv->own_col0[T]);
			b->rows = L->H;
			b->cols = L->H1;
			b->ld = lv->own_cols[T];
		}
		n++;
	}
	return n;
}

/* The input of expert e's last layer at level k, its width and stride. */
static const float *
LastLayerInput(const MtlLayout *L, const MtlWork *w, int k, int e, int *width, int *ld)
{
	int			last = L->n_expert_layers - 1;
	int			T_shared = L->levels[k].owner[e];

	if (last > 0)
	{
		*width = L->expert_units[last - 1];
		if (last == 1)
		{
			*ld = L->levels[k].P;
			return w->proj[k] + L->levels[k].col[e];
		}
		*ld = *width;
		return w->expert_act[k][e][last - 1];
	}
	if (k == 0)
	{
		*width = L->D;
		*ld = L->Xw;
		return w->X;
	}
	*width = *ld = L->H;
	return w->mix[k - 1][T_shared];
}

void
mtl_model_shared_grad_norms(const MtlModel *model, MtlWork *w, int B, double *norm)
{
	const MtlLayout *L = &model->layout;
	int			k = L->n_levels - 1;
	const MtlLevel *lv = &L->levels[k];
	int			T = model->spec.n_tasks;
	int			H = L->H;
	int			widest = L->D > L->H ? L->D : L->H;
	float	   *dpre,
			   *dW;

	for (int l = 0; l < L->n_expert_layers; l++)
		widest = L->expert_units[l] > widest ? L->expert_units[l] : widest;
	dpre = mtl_alloc(sizeof(float) * (size_t) B * H);
	dW = mtl_alloc(sizeof(float) * (size_t) widest * H);
	for (int t = 0; t < T; t++)
	{
		int			n = lv->gate_n[t];
		double		sum = 0.0;

		for (int j = 0; j < n; j++)
		{
			int			e = lv->gate_expert[t][j];
			int			ld_out,
						width,
						ld_in;
			const float *out = ExpertOutput(L, w->expert_act[k][e], w->proj[k], k, e, &ld_out);
			const float *in = LastLayerInput(L, w, k, e, &width, &ld_in);
			const float *mask = w->dropout_mode != MTL_DROPOUT_OFF ? w->expert_mask[k][e] : NULL;

			if (lv->owner[e] != T)
				continue;
			for (int r = 0; r < B; r++)
				for (int i = 0; i < H; i++)
				{
					size_t		at = (size_t) r * H + i;
					float		d = w->gate[k][t][(size_t) r * n + j] * w->dmix[k][t][at];

					if (mask != NULL)
						d *= mask[at];
					dpre[at] = out[(size_t) r * ld_out + i] > 0.0f ? d : 0.0f;
				}
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, width, H, B,
						1.0f, in, ld_in, dpre, H, 0.0f, dW, H);
			for (size_t i = 0; i < (size_t) width * H; i++)
				sum += (double) dW[i] * dW[i];
		}
		norm[t] = sqrt(sum);
	}
	mtl_free(dpre);
	mtl_free(dW);
}

double
mtl_task_output(const MtlTask *task, float logit)
{
	if (task->type == MTL_TASK_BINARY)
		return mtl_sigmoid(task->negative_rate > 0.0f && task->negative_rate < 1.0f ?
						   logit + logf(task->negative_rate) : logit);
	return (double) task->target_mean + (double) task->target_std * logit;
}

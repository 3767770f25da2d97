#include "predict.h"

#include <string.h>

#include <cblas.h>

#include "layers.h"
#include "mem.h"

static void
SideCacheInit(MtlSideCache *c, const MtlTrained *trained, int side)
{
	const MtlSchema *schema = &trained->schema;
	int64_t		P = trained->model.layout.P;
	int64_t		want = side == MTL_SIDE_CONTEXT ? 0 : schema->ids[side].n;
	int64_t		fit;

	c->cat_slots = mtl_alloc(sizeof(int) * (schema->n_cat + 1));
	c->num_cols = mtl_alloc(sizeof(int) * (schema->n_num + 1));
	c->n_cat = c->n_num = 0;
	/* a history pooled by attention depends on the candidate: added per row, never cached */
	for (int f = 0; f < schema->n_cat; f++)
		if (schema->fields[schema->cat_field[f]].side == side && !trained->model.layout.cat_din[f])
			c->cat_slots[c->n_cat++] = f;
	for (int f = 0; f < schema->n_num; f++)
		if (schema->fields[schema->num_field[f]].side == side)
			c->num_cols[c->n_num++] = f;
	c->sig_len = 1 + c->n_num;
	for (int k = 0; k < c->n_cat; k++)
		c->sig_len += trained->model.layout.cat_slots[c->cat_slots[k]] *
			(trained->model.layout.cat_wcol[c->cat_slots[k]] >= 0 ? 2 : 1);
	/* a row with a known id takes the entry of the id's position: no collisions while the ids fit */
	fit = MTL_PREDICT_CACHE_BYTES / ((P + c->sig_len) * (int64_t) sizeof(float) + 1);
	/*
	 * One input copy: a side whose ids do not all fit is projected term by
	 * term with the rest of the row (ProjectFused), where a thrashing cache
	 * would cost more than it saves; keep no cache for it.
	 */
	c->all_fit = want <= fit;
	if (trained->model.layout.n_copies == 1 && !c->all_fit)
		want = 0;
	c->n_entries = want < fit ? want : fit;
	if (c->n_entries < 1)
		c->n_entries = 1;
	c->row0 = side == MTL_SIDE_ITEM ? trained->model.layout.item_row0 : 0;
	/* read only where filled says so */
	c->sigs = mtl_alloc_uninit(sizeof(uint32_t) * c->n_entries * c->sig_len);
	c->filled = mtl_alloc(c->n_entries);
	memset(c->filled, 0, c->n_entries);
	c->vecs = mtl_alloc_uninit(sizeof(float) * c->n_entries * P);
}

static void
SideCacheFree(MtlSideCache *c)
{
	mtl_free(c->sigs);
	mtl_free(c->filled);
	mtl_free(c->vecs);
	mtl_free(c->cat_slots);
	mtl_free(c->num_cols);
}

static void
RowProjectionsInit(MtlPredictor *p)
{
	const MtlLayout *L = &p->trained->model.layout;
	int64_t		rows;

	p->row_proj = NULL;
	p->row_field = NULL;
	if (p->trained->model.shape.n_cat == 0)
		return;
	p->cat_row0 = L->cat_row0[0];
	rows = L->emb_rows - p->cat_row0;
	if ((double) rows * L->P * sizeof(float) > MTL_PREDICT_ROW_BYTES)
		return;
	/* read only where row_field says so */
	p->row_proj = mtl_alloc_uninit(sizeof(float) * rows * L->P);
	p->row_field = mtl_alloc(sizeof(int16_t) * rows);
}

static void
DinCacheInit(MtlPredictor *p)
{
	const MtlModel *m = &p->trained->model;
	const MtlLayout *L = &m->layout;
	int64_t		fit;
	const float *att = m->params + L->att0;

	p->din_entries = 0;
	if (L->A == 0)
		return;
	fit = MTL_PREDICT_CACHE_BYTES / ((int64_t) sizeof(float) * (L->K + L->E + L->A + L->seq_group));
	p->din_entries = m->shape.n_items < fit ? m->shape.n_items : fit;
	if (p->din_entries < 1)
		p->din_entries = 1;
	p->din_keys = mtl_alloc(sizeof(int32_t) * p->din_entries * L->seq_group);
	for (int64_t i = 0; i < p->din_entries * L->seq_group; i++)
		p->din_keys[i] = -1;
	/* read only where din_keys match */
	p->din_vals = mtl_alloc_uninit(sizeof(float) * p->din_entries * (L->K + L->E + L->A));
	p->din_whd = mtl_alloc(sizeof(float) * 2 * L->K * L->A);
	p->din_wvd = p->din_whd + L->K * L->A;
	for (int i = 0; i < L->K * L->A; i++)
	{
		p->din_whd[i] = att[i] + att[3 * L->K * L->A + i];
		p->din_wvd[i] = att[L->K * L->A + i] - att[3 * L->K * L->A + i];
	}
	p->din_zv = mtl_alloc(sizeof(float) * L->A);
	p->din_h = mtl_alloc(sizeof(float *) * MTL_MAX_BAG);
	p->din_hv = mtl_alloc(sizeof(float) * MTL_MAX_BAG * L->K);
	p->din_zs = mtl_alloc(sizeof(float) * MTL_MAX_BAG * L->A);
	p->din_a = mtl_alloc(sizeof(float) * MTL_MAX_BAG);
}

MtlPredictor *
mtl_predictor_create(const MtlTrained *trained)
{
	MtlPredictor *p = mtl_alloc(sizeof(MtlPredictor));
	int			longest = 0;

	p->trained = trained;
	p->work = mtl_work_create(&trained->model, 1);
	mtl_work_freeze_scenarios(p->work, &trained->model, trained->model.params);
	p->slots = mtl_alloc(sizeof(int32_t) * trained->model.layout.n_slots);
	p->nums = mtl_alloc(sizeof(float) * (trained->model.layout.n_cols + 1));
	for (int side = 0; side < 3; side++)
	{
		SideCacheInit(&p->side[side], trained, side);
		if (p->side[side].sig_len > longest)
			longest = p->side[side].sig_len;
	}
	p->sig = mtl_alloc(sizeof(uint32_t) * longest);
	p->scratch = mtl_alloc(sizeof(float) * trained->model.layout.P);
	RowProjectionsInit(p);
	DinCacheInit(p);
	{
		const MtlLayout *L = &trained->model.layout;
		int			terms = 3 * L->E + L->n_slots * L->E + trained->model.shape.n_num + 1;

		p->coef = mtl_alloc(sizeof(float) * terms);
		p->coef_rows = mtl_alloc(sizeof(float *) * terms);
		p->plain_rows = mtl_alloc(sizeof(float *) * (trained->model.shape.n_cat + 3));
		p->pools = mtl_alloc(sizeof(float) * 6 * L->E);
		p->cross = mtl_alloc(sizeof(float) * L->E);
		p->din = mtl_alloc(sizeof(float) * (2 * L->E + 2 * L->K));
		p->din_sum = mtl_alloc(sizeof(float) * L->E);
	}
	return p;
}

void
mtl_predictor_free(MtlPredictor *p)
{
	if (p == NULL)
		return;
	mtl_work_free(p->work, &p->trained->model);
	for (int side = 0; side < 3; side++)
		SideCacheFree(&p->side[side]);
	mtl_free(p->sig);
	mtl_free(p->scratch);
	mtl_free(p->row_proj);
	mtl_free(p->row_field);
	mtl_free(p->coef);
	mtl_free(p->coef_rows);
	mtl_free(p->plain_rows);
	mtl_free(p->pools);
	mtl_free(p->cross);
	mtl_free(p->din);
	mtl_free(p->din_sum);
	mtl_free(p->din_whd);
	mtl_free(p->din_keys);
	mtl_free(p->din_vals);
	mtl_free(p->din_zv);
	mtl_free(p->din_h);
	mtl_free(p->din_hv);
	mtl_free(p->din_zs);
	mtl_free(p->din_a);
	mtl_free(p->slots);
	mtl_free(p->nums);
	mtl_free(p);
}

void
mtl_predictor_row_from_ids(MtlPredictor *p, int64_t user_pos, int64_t item_pos)
{
	const MtlTrained *t = p->trained;

	mtl_schema_row_from_ids(&t->schema, &t->model.layout, user_pos, item_pos, p->slots, p->nums);
}

/* vec += emb[row] @ W_in[x0 .. x0+E), over every copy of the input */
static void
AddEmbedding(float *vec, const MtlModel *m, int32_t row, int x0)
{
	const MtlLayout *L = &m->layout;

	for (int c = 0; c < L->n_copies; c++)
	{
		const float *emb = m->params + (size_t) MTL_COPY_ROW(L, row, c) * L->E;
		const float *W = m->params + L->W_in + (size_t) (c * L->D + x0) * L->P;

		for (int k = 0; k < L->E; k++)
			mtl_axpy(vec, emb[k], W + (size_t) k * L->P, L->P);
	}
}

/* vec += value * W_in[x] over every copy */
static void
AddNumber(float *vec, const MtlModel *m, float value, int x)
{
	const MtlLayout *L = &m->layout;

	for (int c = 0; c < L->n_copies; c++)
		mtl_axpy(vec, value, m->params + L->W_in + (size_t) (c * L->D + x) * L->P, L->P);
}

/* A categorical row's embedding @ its field's block of W_in, from the row cache (NULL: not cached). */
static const float *
RowProjection(const MtlPredictor *p, int32_t row, int field)
{
	const MtlModel *m = &p->trained->model;
	const MtlLayout *L = &m->layout;
	float	   *proj;

	if (p->row_proj == NULL || row < p->cat_row0)
		return NULL;
	proj = p->row_proj + (size_t) (row - p->cat_row0) * L->P;
	if (p->row_field[row - p->cat_row0] != field + 1)
	{
		memset(proj, 0, sizeof(float) * L->P);
		AddEmbedding(proj, m, row, 3 * L->E + field * L->E);
		p->row_field[row - p->cat_row0] = (int16_t) (field + 1);
	}
	return proj;
}

/* vec += weight * categorical row's embedding @ its field's block of W_in */
static void
AddCategorical(const MtlPredictor *p, float *vec, int32_t row, int field, float weight)
{
	const MtlLayout *L = &p->trained->model.layout;
	const float *proj = RowProjection(p, row, field);

	if (proj != NULL)
		mtl_axpy(vec, weight, proj, L->P);
	else if (weight == 1.0f)
		AddEmbedding(vec, &p->trained->model, row, 3 * L->E + field * L->E);
	else
	{
		float		scaled[MTL_MAX_EMBEDDING];

		for (int k = 0; k < L->E; k++)
			scaled[k] = weight * p->trained->model.params[(size_t) row * L->E + k];
		for (int k = 0; k < L->E; k++)
			mtl_axpy(vec, scaled[k], p->trained->model.params + L->W_in +
					 (size_t) (3 * L->E + field * L->E + k) * L->P, L->P);
	}
}

/* Slots of embedded field f that hold a row in the predictor's row. */
static int
FilledSlots(const MtlPredictor *p, int f)
{
	const MtlLayout *L = &p->trained->model.layout;
	const int32_t *s = p->slots + L->cat_slot[f];
	int			n = 0;

	for (int j = 0; j < L->cat_slots[f]; j++)
		n += s[j] >= 0;
	return n;
}

/* Weight of slot k of embedded field f in the predictor's row (1: categorical). */
static float
SlotWeight(const MtlPredictor *p, int f, int k)
{
	int			wcol = p->trained->model.layout.cat_wcol[f];

	return wcol < 0 ? 1.0f : p->nums[wcol + k];
}

/* The side's share of X @ W_in: its id embedding, categorical fields, numbers. */
void
mtl_predictor_side_vector(const MtlPredictor *p, int side, float *vec)
{
	const MtlModel *m = &p->trained->model;
	const MtlLayout *L = &m->layout;
	const MtlSideCache *c = &p->side[side];
	int			num0 = L->D - m->shape.n_num;

	memset(vec, 0, sizeof(float) * L->P);
	if (side != MTL_SIDE_CONTEXT && p->slots[side] >= 0)
		AddEmbedding(vec, m, p->slots[side], side * L->E);
	for (int k = 0; k < c->n_cat; k++)
	{
		int			f = c->cat_slots[k];
		const int32_t *s = p->slots + L->cat_slot[f];

		for (int j = 0; j < L->cat_slots[f]; j++)
			if (s[j] >= 0)
				AddCategorical(p, vec, s[j], f, SlotWeight(p, f, j));
	}
	for (int k = 0; k < c->n_num; k++)
	{
		int			col = c->num_cols[k];

		AddNumber(vec, m, p->nums[col], num0 + col);
	}
}

/* The side's inputs as one key: id slot, categorical slots, numbers' bits. */
static void
SideSignature(const MtlPredictor *p, int side, uint32_t *sig)
{
	const MtlSideCache *c = &p->side[side];
	const MtlLayout *L = &p->trained->model.layout;
	int			n = 0;

	sig[n++] = (uint32_t) p->slots[side];
	for (int k = 0; k < c->n_cat; k++)
	{
		int			f = c->cat_slots[k];

		for (int j = 0; j < L->cat_slots[f]; j++)
			sig[n++] = (uint32_t) p->slots[L->cat_slot[f] + j];
		if (L->cat_wcol[f] >= 0)
		{
			memcpy(&sig[n], &p->nums[L->cat_wcol[f]], sizeof(uint32_t) * L->cat_slots[f]);
			n += L->cat_slots[f];
		}
	}
	for (int k = 0; k < c->n_num; k++)
		memcpy(&sig[n++], &p->nums[c->num_cols[k]], sizeof(uint32_t));
}

static const float *
CachedSideVector(MtlPredictor *p, int side)
{
	MtlSideCache *c = &p->side[side];
	size_t		sig_bytes = sizeof(uint32_t) * c->sig_len;
	int64_t		entry;
	uint32_t   *held;
	float	   *vec;

	if (p->slots[side] < 0)
	{
		/*
		 * No id: rows with features only rarely repeat, and with the
		 * categorical rows' projections cached a side costs about as much to
		 * add up as to look up.
		 */
		mtl_predictor_side_vector(p, side, p->scratch);
		return p->scratch;
	}
	SideSignature(p, side, p->sig);
	entry = (p->slots[side] - c->row0) % c->n_entries;
	held = c->sigs + entry * c->sig_len;
	vec = c->vecs + entry * p->trained->model.layout.P;
	if (!c->filled[entry] || memcmp(held, p->sig, sig_bytes) != 0)
	{
		mtl_predictor_side_vector(p, side, vec);
		memcpy(held, p->sig, sig_bytes);
		c->filled[entry] = 1;
	}
	return vec;
}

void
mtl_predictor_cross(MtlPredictor *p, int c, const float *din_sum)
{
	const MtlModel *m = &p->trained->model;
	int			E = m->layout.E;
	const float *sum[MTL_N_SIDES],
			   *sq[MTL_N_SIDES];

	for (int side = 0; side < MTL_N_SIDES; side++)
	{
		float	   *s = p->pools + (size_t) side * 2 * E;

		mtl_model_pool_slots(m, m->params, c, p->slots, p->nums, side, s, s + E);
		sum[side] = s;
		sq[side] = s + E;
	}
	mtl_model_cross(m, sum, sq, din_sum, p->cross);
}

/* A history item's k, h and k (Wh + Wd), from the cache or computed into it. */
static const float *
DinItem(const MtlPredictor *p, const int32_t *group)
{
	const MtlModel *m = &p->trained->model;
	const MtlLayout *L = &m->layout;
	int64_t		entry = (group[0] - L->item_row0) % p->din_entries;
	int32_t    *key = p->din_keys + entry * L->seq_group;
	float	   *k = p->din_vals + entry * (L->K + L->E + L->A),
			   *h = k + L->K,
			   *kw = h + L->E;
	int			same = 1;

	for (int g = 0; g < L->seq_group; g++)
		same &= key[g] == group[g];
	if (same)
		return k;
	mtl_model_history_item(L, m->params, 0, group, k, h);
	memset(kw, 0, sizeof(float) * L->A);
	for (int e = 0; e < L->K; e++)
		mtl_axpy(kw, k[e], p->din_whd + (size_t) e * L->A, L->A);
	memcpy(key, group, sizeof(int32_t) * L->seq_group);
	return k;
}

void
mtl_predictor_din(const MtlPredictor *p, int c, int f, float *out)
{
	const MtlModel *m = &p->trained->model;
	const MtlLayout *L = &m->layout;
	const int32_t *slot = p->slots + L->cat_slot[f];
	const float *att = m->params + L->att0;
	int			E = L->E,
				K = L->K,
				A = L->A,
				n = 0;
	float	   *q = out + E;

	mtl_model_item_key(m, m->params, c, p->slots, q);
	if (c > 0 || slot[0] == (int32_t) L->cat_row0[f])
	{
		mtl_model_din_vector(m, m->params, c, p->slots, q, f, out, q + K);
		return;
	}
	/* the candidate's part: b1 + q (Wv - Wd) */
	memcpy(p->din_zv, att + (size_t) 4 * K * A, sizeof(float) * A);
	cblas_sgemv(CblasRowMajor, CblasTrans, K, A, 1.0f, p->din_wvd, A, q, 1, 1.0f, p->din_zv, 1);
	/* every history item's units at once: Z = zv + k Whd (cached) + (k * q) Wp */
	memset(out, 0, sizeof(float) * E);
	for (int j = 0; j < L->cat_slots[f]; j += L->seq_group)
		if (slot[j] >= 0)
			p->din_h[n++] = DinItem(p, slot + j);
	if (n == 0)
		return;
	mtl_din_units(n, p->din_h, K, K + E, q, p->din_zv, A, p->din_hv, p->din_zs);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, A, K, 1.0f, p->din_hv, K,
				att + (size_t) 2 * K * A, A, 1.0f, p->din_zs, A);
	mtl_din_weights(n, A, p->din_zs, att + (size_t) 4 * K * A + A, att[4 * K * A + 2 * A],
					MTL_ATTENTION_SLOPE, p->din_a);
	for (int j = 0; j < n; j++)
		mtl_axpy(out, p->din_a[j], p->din_h[j] + K, E);
}

/* Add W_in's rows x0 .. x0+E scaled by weight * emb to the fused list. */
static int
ListEmbedding(const MtlPredictor *p, int n, const float *emb, float weight, int x0)
{
	const MtlLayout *L = &p->trained->model.layout;
	const float *W = p->trained->model.params + L->W_in;

	for (int k = 0; k < L->E; k++)
	{
		p->coef[n] = weight * emb[k];
		p->coef_rows[n++] = W + (size_t) (x0 + k) * L->P;
	}
	return n;
}

/*
 * work->proj = b_in + every input's share of X @ W_in in one pass: the id
 * embeddings' and their product's rows of W_in scaled, each categorical
 * value's cached projection, each number's row scaled. Nothing is kept per
 * id, so the cost of a row does not depend on how many users and items the
 * model knows (only on the cache misses of their embedding rows).
 */
static void
ProjectFused(MtlPredictor *p)
{
	const MtlModel *m = &p->trained->model;
	const MtlLayout *L = &m->layout;
	const float *u = p->slots[0] >= 0 ? m->params + (size_t) p->slots[0] * L->E : NULL;
	const float *i = p->slots[1] >= 0 ? m->params + (size_t) p->slots[1] * L->E : NULL;
	int			num0 = L->D - m->shape.n_num;
	int			n = 0,
				n_plain = 0;

	for (int side = 0; side < MTL_N_SIDES; side++)
	{
		const MtlSideCache *c = &p->side[side];
		const float *emb = side == 0 ? u : side == 1 ? i : NULL;

		/* a known id of a side whose ids all fit: its memoised vector */
		if (emb != NULL && c->all_fit)
		{
			p->plain_rows[n_plain++] = CachedSideVector(p, side);
			continue;
		}
		if (emb != NULL)
			n = ListEmbedding(p, n, emb, 1.0f, side * L->E);
		for (int k = 0; k < c->n_cat; k++)
		{
			int			f = c->cat_slots[k];

			/* a long list: its weighted sum in E, then one product with its rows of W_in */
			if (FilledSlots(p, f) > L->E)
			{
				mtl_model_field_vector(m, m->params, 0, p->slots, p->nums, f, p->din);
				n = ListEmbedding(p, n, p->din, 1.0f, 3 * L->E + f * L->E);
				continue;
			}
			for (int j = 0; j < L->cat_slots[f]; j++)
			{
				int32_t		row = p->slots[L->cat_slot[f] + j];
				float		w = SlotWeight(p, f, j);
				const float *proj;

				if (row < 0)
					continue;
				proj = RowProjection(p, row, f);
				if (proj != NULL && L->cat_wcol[f] < 0)
					p->plain_rows[n_plain++] = proj;
				else if (proj != NULL)
				{
					p->coef[n] = w;
					p->coef_rows[n++] = proj;
				}
				else
					n = ListEmbedding(p, n, m->params + (size_t) row * L->E, w,
									  3 * L->E + f * L->E);
			}
		}
		for (int k = 0; k < c->n_num; k++)
		{
			p->coef[n] = p->nums[c->num_cols[k]];
			p->coef_rows[n++] = m->params + L->W_in + (size_t) (num0 + c->num_cols[k]) * L->P;
		}
	}
	if (L->A > 0)
		memset(p->din_sum, 0, sizeof(float) * L->E);
	for (int f = 0; f < m->shape.n_cat && L->A > 0; f++)
		if (L->cat_din[f])
		{
			mtl_predictor_din(p, 0, f, p->din);
			n = ListEmbedding(p, n, p->din, 1.0f, 3 * L->E + f * L->E);
			mtl_add(p->din_sum, p->din, L->E);
		}
	if ((u != NULL && i != NULL) || m->spec.interaction != MTL_INTERACTION_IDS)
	{
		mtl_predictor_cross(p, 0, L->A > 0 ? p->din_sum : NULL);
		for (int k = 0; k < L->E; k++)
		{
			p->coef[n] = p->cross[k];
			p->coef_rows[n++] = m->params + L->W_in + (size_t) (2 * L->E + k) * L->P;
		}
	}
	mtl_sum_rows(p->work->proj[0], m->params + L->b_in, p->coef, p->coef_rows, n,
				 p->plain_rows, n_plain, L->P);
	p->work->scenario[0] = mtl_model_row_scenario(m, p->slots);
}

/* work->proj = b_in + user side + item side + cross @ W_in[cross rows] */
static void
Project(MtlPredictor *p)
{
	const MtlModel *m = &p->trained->model;
	const MtlLayout *L = &m->layout;
	float	   *proj = p->work->proj[0];

	memcpy(proj, m->params + L->b_in, sizeof(float) * L->P);
	for (int side = 0; side < 2; side++)
		mtl_add(proj, CachedSideVector(p, side), L->P);
	if (p->side[MTL_SIDE_CONTEXT].sig_len > 1)
	{
		mtl_predictor_side_vector(p, MTL_SIDE_CONTEXT, p->scratch);
		mtl_add(proj, p->scratch, L->P);
	}
	for (int c = 0; c < L->n_copies; c++)
	{
		const float *W = m->params + L->W_in + (size_t) c * L->D * L->P;

		if (L->A > 0)
			memset(p->din_sum, 0, sizeof(float) * L->E);
		for (int f = 0; f < m->shape.n_cat && L->A > 0; f++)
			if (L->cat_din[f])
			{
				mtl_predictor_din(p, c, f, p->din);
				for (int k = 0; k < L->E; k++)
					mtl_axpy(proj, p->din[k], W + (size_t) (3 * L->E + f * L->E + k) * L->P, L->P);
				mtl_add(p->din_sum, p->din, L->E);
			}
		if ((p->slots[0] >= 0 && p->slots[1] >= 0) || m->spec.interaction != MTL_INTERACTION_IDS)
		{
			mtl_predictor_cross(p, c, L->A > 0 ? p->din_sum : NULL);
			for (int k = 0; k < L->E; k++)
				mtl_axpy(proj, p->cross[k], W + (size_t) (2 * L->E + k) * L->P, L->P);
		}
	}
	p->work->scenario[0] = mtl_model_row_scenario(m, p->slots);
}

void
mtl_predictor_run(MtlPredictor *p, double *out)
{
	const MtlModel *model = &p->trained->model;

	if (model->layout.n_copies == 1)
		ProjectFused(p);
	else
		Project(p);
	mtl_model_forward_projected(model, p->work, model->params, 1);
	for (int t = 0; t < model->spec.n_tasks; t++)
		out[t] = mtl_task_output(&model->spec.tasks[t], mtl_work_logit(p->work, t)[0]);
}

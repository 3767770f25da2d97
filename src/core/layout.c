/*
 * Where every tensor of a model lives, its initial values, and the work
 * buffers of a batch (see model.h for the structure).
 */
#include "model.h"

#include <math.h>
#include <string.h>

#include "grouped.h"
#include "mem.h"
#include "rng.h"
#include "rows.h"

/* Far more than any model we can train in memory; stops size overflow. */
#define MTL_MAX_PARAMS ((size_t) 1 << 36)

const char *
mtl_model_type_name(MtlModelType type)
{
	switch (type)
	{
		case MTL_MODEL_SHARED_BOTTOM:
			return "shared_bottom";
		case MTL_MODEL_MMOE:
			return "mmoe";
		case MTL_MODEL_PLE:
			return "ple";
		case MTL_MODEL_SINGLE_TASK:
			return "single_task";
		case MTL_MODEL_ESMM:
			return "esmm";
	}
	return "unknown";
}

const char *
mtl_interaction_name(MtlInteraction interaction)
{
	switch (interaction)
	{
		case MTL_INTERACTION_IDS:
			return "ids";
		case MTL_INTERACTION_POOLED:
			return "pooled";
		case MTL_INTERACTION_FM:
			return "fm";
	}
	return "unknown";
}

const char *
mtl_task_type_name(MtlTaskType type)
{
	return type == MTL_TASK_BINARY ? "binary" : "regression";
}

/*
 * Experts and outputs of one level: K experts per task, S shared; task t's
 * output mixes its own and the shared ones, the shared output (when asked)
 * mixes all. Columns are laid out owner by owner: experts, then gate logits.
 */
static const MtlError *
BuildLevel(MtlLevel *lv, int T, int K, int S, int shared_output, int H1)
{
	int			n = T * K + S;
	int			col = 0;

	if (n < 1 || n > MTL_MAX_EXPERTS)
		MTL_FAIL(MTL_E_SHAPE, "number of experts out of range");
	for (int e = 0; e < n; e++)
		lv->owner[e] = e < T * K ? e / K : T;
	lv->n_experts = n;
	for (int o = 0; o <= T; o++)
	{
		int			g = 0;

		lv->gate_n[o] = 0;
		if (o < T || shared_output)
			for (int e = 0; e < n; e++)
				if (lv->owner[e] == o || lv->owner[e] == T || o == T)
					lv->gate_expert[o][g++] = e;
		lv->gate_n[o] = g;
		lv->own_col0[o] = col;
		for (int e = 0; e < n; e++)
			if (lv->owner[e] == o)
			{
				lv->col[e] = col;
				col += H1;
			}
		lv->gate_col[o] = g > 1 ? col : -1;
		if (g > 1)
			col += g;
		lv->own_cols[o] = col - lv->own_col0[o];
	}
	lv->P = col;
	return NULL;
}

/* Experts per task and shared, per level, and their widths, by model type. */
static const MtlError *
BuildLevels(MtlLayout *L, const MtlSpec *spec)
{
	int			T = spec->n_tasks;
	int			K = 0,
				S = 0;
	const MtlError *why;

	L->n_levels = 1;
	L->n_copies = 1;
	switch (spec->model)
	{
		case MTL_MODEL_SHARED_BOTTOM:
			S = 1;
			break;
		case MTL_MODEL_MMOE:
			S = spec->n_experts;
			break;
		case MTL_MODEL_PLE:
			K = spec->task_experts;
			S = spec->shared_experts;
			L->n_levels = spec->n_levels;
			break;
		case MTL_MODEL_SINGLE_TASK:
			L->n_copies = T;
			K = 1;
			break;
		case MTL_MODEL_ESMM:
			K = 1;
			break;
		default:
			MTL_FAIL(MTL_E_SHAPE, "unknown model type");
	}
	if (spec->model == MTL_MODEL_MMOE || spec->model == MTL_MODEL_PLE)
	{
		L->n_expert_layers = spec->n_expert_layers;
		L->expert_units = spec->expert_units;
	}
	else
	{
		L->n_expert_layers = spec->n_bottom_layers;
		L->expert_units = spec->bottom_units;
	}
	if (L->n_levels < 1 || L->n_levels > MTL_MAX_LEVELS || K < 0 || S < 0)
		MTL_FAIL(MTL_E_SHAPE, "number of levels or experts out of range");
	if (L->n_expert_layers < 1 || L->n_expert_layers > MTL_MAX_LAYERS)
		MTL_FAIL(MTL_E_SHAPE, "number of layers out of range");
	for (int l = 0; l < L->n_expert_layers; l++)
		if (L->expert_units[l] < 1)
			MTL_FAIL(MTL_E_SHAPE, "layer width out of range");
	L->H1 = L->expert_units[0];
	L->H = L->expert_units[L->n_expert_layers - 1];
	for (int k = 0; k < L->n_levels; k++)
	{
		int			shared_output = S > 0 && k < L->n_levels - 1;

		why = BuildLevel(&L->levels[k], T, K, S, shared_output, L->H1);
		if (why != NULL)
			return why;
	}
	L->P = L->levels[0].P;
	return NULL;
}

static int
HasDin(const MtlLayout *L, const MtlShape *shape)
{
	for (int f = 0; f < shape->n_cat; f++)
		if (L->cat_din[f])
			return 1;
	return 0;
}

/* Each embedded field's slots in a row, and a bag's weights after the numbers. */
static const MtlError *
PlaceSlots(MtlLayout *L, const MtlShape *shape)
{
	L->cat_slot = mtl_alloc(sizeof(int) * (shape->n_cat + 1));
	L->cat_slots = mtl_alloc(sizeof(int) * (shape->n_cat + 1));
	L->cat_wcol = mtl_alloc(sizeof(int) * (shape->n_cat + 1));
	L->cat_din = mtl_alloc(shape->n_cat + 1);
	L->item_cats = mtl_alloc(sizeof(int) * (shape->n_cat + 1));
	L->n_item_cats = 0;
	for (int f = 0; f < shape->n_cat; f++)
		if (shape->cat_side[f] == MTL_SIDE_ITEM && (shape->cat_width == NULL || shape->cat_width[f] == 0))
			L->item_cats[L->n_item_cats++] = f;
	L->seq_group = 1 + L->n_item_cats;
	L->n_slots = 2;
	L->n_cols = shape->n_num;
	for (int f = 0; f < shape->n_cat; f++)
	{
		int			width = shape->cat_width != NULL ? shape->cat_width[f] : 0;

		if (width < 0 || width > MTL_MAX_BAG)
			MTL_FAIL(MTL_E_SHAPE, "invalid bag width");
		L->cat_slot[f] = L->n_slots;
		L->cat_slots[f] = width > 0 ? width : 1;
		L->cat_wcol[f] = width > 0 ? L->n_cols : -1;
		L->cat_din[f] = shape->cat_seq != NULL && shape->cat_seq[f] == MTL_POOL_DIN;
		if (shape->cat_seq != NULL && shape->cat_seq[f] &&
			(width < 1 || width % L->seq_group != 0 || shape->cat_side[f] == MTL_SIDE_ITEM))
			MTL_FAIL(MTL_E_SHAPE, "invalid sequence field");
		L->n_slots += L->cat_slots[f];
		L->n_cols += width;
	}
	return NULL;
}

/* Embedding rows: users, items, then each categorical field (one copy). */
static const MtlError *
PlaceEmbeddings(MtlLayout *L, const MtlShape *shape)
{
	int64_t		row;

	L->item_row0 = shape->n_users;
	row = shape->n_users + shape->n_items;
	L->cat_row0 = mtl_alloc(sizeof(int64_t) * (shape->n_cat + 1));
	for (int f = 0; f < shape->n_cat; f++)
	{
		if (shape->cat_rows[f] < 1)
			MTL_FAIL(MTL_E_SHAPE, "invalid vocabulary size");
		L->cat_row0[f] = row;
		row += shape->cat_rows[f];
	}
	L->emb_rows = row;
	if (row * L->n_copies >= INT32_MAX)
		MTL_FAIL(MTL_E_LIMIT, "too many embedding rows");
	if ((size_t) (row * L->n_copies) > MTL_MAX_PARAMS / (size_t) L->E)
		MTL_FAIL(MTL_E_LIMIT, "too many parameters");
	return NULL;
}

static size_t
PlaceExpertLayers(MtlLayout *L, MtlLevel *lv, size_t pos)
{
	for (int e = 0; e < lv->n_experts; e++)
		for (int l = 1; l < L->n_expert_layers; l++)
		{
			lv->expert_W[e][l] = pos;
			pos += (size_t) L->expert_units[l - 1] * L->expert_units[l];
			lv->expert_b[e][l] = pos;
			pos += L->expert_units[l];
		}
	return pos;
}

static int
TowerWidth(const MtlSpec *spec, int l)
{
	return l < spec->n_tower_layers ? spec->tower_units[l] : 1;
}

static size_t
PlaceTowers(MtlLayout *L, const MtlSpec *spec, size_t pos)
{
	L->tower0 = pos;
	for (int t = 0; t < spec->n_tasks; t++)
	{
		int			in = L->H;

		for (int l = 0; l <= spec->n_tower_layers; l++)
		{
			int			out = TowerWidth(spec, l);

			L->tower_W[t][l] = pos;
			pos += (size_t) in * out;
			L->tower_b[t][l] = pos;
			pos += out;
			in = out;
		}
	}
	L->tower_len = pos - L->tower0;
	return pos;
}

/* A conditional task's parents are other binary tasks, without a cycle. */
static const MtlError *
CheckGiven(const MtlSpec *spec)
{
	for (int t = 0; t < spec->n_tasks; t++)
	{
		int			at = t;

		for (int steps = 0; spec->tasks[at].given >= 0; steps++)
		{
			int			parent = spec->tasks[at].given;

			if (steps >= spec->n_tasks || parent >= spec->n_tasks || parent == at ||
				spec->tasks[at].type != MTL_TASK_BINARY ||
				spec->tasks[parent].type != MTL_TASK_BINARY)
				MTL_FAIL(MTL_E_SHAPE, "invalid conditional task");
			at = parent;
		}
	}
	return NULL;
}

const MtlError *
mtl_layout_build(MtlLayout *L, const MtlSpec *spec, const MtlShape *shape)
{
	int			T = spec->n_tasks;
	size_t		pos;
	const MtlError *why;

	memset(L, 0, sizeof(*L));
	if (T < 1 || T > MTL_MAX_TASKS)
		MTL_FAIL(MTL_E_SHAPE, "number of tasks out of range");
	if (spec->embedding_dim < 1 || shape->n_cat < 0 || shape->n_num < 0 ||
		shape->n_users < 0 || shape->n_items < 0)
		MTL_FAIL(MTL_E_SHAPE, "invalid input sizes");
	if (spec->n_tower_layers < 0 || spec->n_tower_layers > MTL_MAX_LAYERS)
		MTL_FAIL(MTL_E_SHAPE, "number of layers out of range");
	for (int l = 0; l < spec->n_tower_layers; l++)
		if (spec->tower_units[l] < 1)
			MTL_FAIL(MTL_E_SHAPE, "layer width out of range");
	if (shape->scenario_cat < -1 || shape->scenario_cat >= shape->n_cat)
		MTL_FAIL(MTL_E_SHAPE, "invalid scenario field");
	why = CheckGiven(spec);
	if (why != NULL)
		return why;
	why = BuildLevels(L, spec);
	if (why != NULL)
		return why;
	L->E = spec->embedding_dim;
	why = PlaceSlots(L, shape);
	if (why != NULL)
		return why;
	L->D = 3 * L->E + shape->n_cat * L->E + shape->n_num;
	L->Xw = L->n_copies * L->D;
	why = PlaceEmbeddings(L, shape);
	if (why != NULL)
		return why;

	pos = (size_t) (L->emb_rows * L->n_copies) * L->E;
	L->W_in = pos;
	pos += (size_t) L->Xw * L->P;
	L->b_in = pos;
	pos += L->P;
	for (int k = 0; k < L->n_levels; k++)
	{
		MtlLevel   *lv = &L->levels[k];

		if (k > 0)
			for (int o = 0; o <= T; o++)
			{
				lv->in_W[o] = pos;
				pos += (size_t) L->H * lv->own_cols[o];
				lv->in_b[o] = pos;
				pos += lv->own_cols[o];
			}
		pos = PlaceExpertLayers(L, lv, pos);
	}
	pos = PlaceTowers(L, spec, pos);
	L->n_scenarios = shape->scenario_cat >= 0 ? (int) shape->cat_rows[shape->scenario_cat] - 1 : 0;
	L->scenario0 = pos;
	if (L->n_scenarios > 0 && (size_t) L->n_scenarios > MTL_MAX_PARAMS / L->tower_len)
		MTL_FAIL(MTL_E_LIMIT, "too many parameters");
	pos += (size_t) L->n_scenarios * L->tower_len;
	L->A = 0;
	for (int f = 0; f < shape->n_cat; f++)
		if (L->cat_din[f])
			L->A = spec->attention_units;
	if (L->A < 0 || L->A > MTL_MAX_ATTENTION || (L->A == 0 && HasDin(L, shape)))
		MTL_FAIL(MTL_E_SHAPE, "invalid attention units");
	L->att0 = pos;
	L->K = L->seq_group * L->E;
	L->att_len = L->A > 0 ? (size_t) 4 * L->K * L->A + 2 * L->A + 1 : 0;
	pos += L->att_len * L->n_copies;
	L->loss_s = pos;
	if (spec->loss_weighting == MTL_WEIGHTING_UNCERTAINTY)
		pos += T;
	if (pos > MTL_MAX_PARAMS)
		MTL_FAIL(MTL_E_LIMIT, "too many parameters");
	L->n_params = pos;
	L->n_dense = pos - (size_t) (L->emb_rows * L->n_copies) * L->E;
	return NULL;
}

void
mtl_layout_free(MtlLayout *layout)
{
	mtl_free(layout->cat_row0);
	mtl_free(layout->cat_slot);
	mtl_free(layout->cat_slots);
	mtl_free(layout->cat_wcol);
	mtl_free(layout->cat_din);
	mtl_free(layout->item_cats);
	layout->cat_din = NULL;
	layout->item_cats = NULL;
	layout->cat_row0 = NULL;
	layout->cat_slot = layout->cat_slots = layout->cat_wcol = NULL;
}

static void
FillNormal(float *p, size_t n, float std, MtlRng *rng)
{
	for (size_t i = 0; i < n; i++)
		p[i] = std * mtl_rng_normal(rng);
}

/*
 * Initialise a projection [rows x P] (ld P) of the owners that read it:
 * expert columns He-scaled for the input width, gate columns small.
 */
static void
InitProjection(float *W, int rows, int fan_in, const MtlLevel *lv, int owner, int ld,
			   MtlRng *rng)
{
	int			expert_cols = lv->own_cols[owner] - (lv->gate_col[owner] >= 0 ? lv->gate_n[owner] : 0);

	for (int d = 0; d < rows; d++)
	{
		float	   *row = W + (size_t) d * ld;

		FillNormal(row, expert_cols, sqrtf(2.0f / fan_in), rng);
		FillNormal(row + expert_cols, lv->own_cols[owner] - expert_cols, 0.01f, rng);
	}
}

/* He initialisation for ReLU layers, small gates, zero biases, neutral scenarios. */
void
mtl_model_init(MtlModel *model)
{
	const MtlLayout *L = &model->layout;
	const MtlSpec *spec = &model->spec;
	int			T = spec->n_tasks;
	float	   *p;
	MtlRng		rng;

	mtl_rng_seed(&rng, spec->seed);
	model->params = p = mtl_alloc(sizeof(float) * L->n_params);
	memset(p, 0, sizeof(float) * L->n_params);
	FillNormal(p, (size_t) (L->emb_rows * L->n_copies) * L->E, 0.05f, &rng);
	/* level 0: each owner's columns from its copy's rows (the rest stay 0) */
	for (int o = 0; o <= T; o++)
	{
		const MtlLevel *lv = &L->levels[0];
		int			copy = L->n_copies > 1 ? o : 0;

		if (lv->own_cols[o] == 0)
			continue;
		InitProjection(p + L->W_in + (size_t) copy * L->D * L->P + lv->own_col0[o],
					   L->D, L->D, lv, o, L->P, &rng);
	}
	for (int k = 0; k < L->n_levels; k++)
	{
		const MtlLevel *lv = &L->levels[k];

		if (k > 0)
			for (int o = 0; o <= T; o++)
				InitProjection(p + lv->in_W[o], L->H, L->H, lv, o, lv->own_cols[o], &rng);
		for (int e = 0; e < lv->n_experts; e++)
			for (int l = 1; l < L->n_expert_layers; l++)
				FillNormal(p + lv->expert_W[e][l],
						   (size_t) L->expert_units[l - 1] * L->expert_units[l],
						   sqrtf(2.0f / L->expert_units[l - 1]), &rng);
	}
	for (int t = 0; t < T; t++)
	{
		int			in = L->H;

		for (int l = 0; l <= spec->n_tower_layers; l++)
		{
			int			last = l == spec->n_tower_layers;
			int			out = TowerWidth(spec, l);

			FillNormal(p + L->tower_W[t][l], (size_t) in * out,
					   sqrtf((last ? 1.0f : 2.0f) / in), &rng);
			in = out;
		}
	}
	/*
	 * attention: its units see [k, q, k * q, k - q]; w2 starts small and b2
	 * at 1, so a history starts as its sum: a mean's small signal left the
	 * attention too little to learn from before the ids overfit (on the rich
	 * demo shop, 2x the lift of a session's category over a mean start)
	 */
	for (int c = 0; c < L->n_copies && L->A > 0; c++)
	{
		float	   *att = p + L->att0 + (size_t) c * L->att_len;

		FillNormal(att, (size_t) 4 * L->K * L->A, sqrtf(1.0f / (4 * L->K)), &rng);
		FillNormal(att + (size_t) 4 * L->K * L->A + L->A, L->A, 0.1f / sqrtf((float) L->A), &rng);
		att[L->att_len - 1] = 1.0f;
	}
	/* scenario blocks: weights multiply by 1, biases add 0 */
	for (int s = 0; s < L->n_scenarios; s++)
		for (int t = 0; t < T; t++)
		{
			size_t		block = L->scenario0 + (size_t) s * L->tower_len - L->tower0;
			int			in = L->H;

			for (int l = 0; l <= spec->n_tower_layers; l++)
			{
				float	   *W = p + block + L->tower_W[t][l];

				for (size_t i = 0; i < (size_t) in * TowerWidth(spec, l); i++)
					W[i] = 1.0f;
				in = TowerWidth(spec, l);
			}
		}
}

void
mtl_model_free(MtlModel *model)
{
	mtl_free(model->params);
	model->params = NULL;
	mtl_layout_free(&model->layout);
	mtl_free(model->shape.cat_rows);
	model->shape.cat_rows = NULL;
	mtl_free(model->shape.cat_side);
	mtl_free(model->shape.cat_width);
	mtl_free(model->shape.cat_seq);
	model->shape.cat_seq = NULL;
	model->shape.cat_side = NULL;
	model->shape.cat_width = NULL;
}

static float *
Buffer(size_t rows, size_t width)
{
	return mtl_alloc(sizeof(float) * (rows * width + 1));
}

static void
CreateLevel(MtlWork *w, const MtlLayout *L, const MtlSpec *spec, int k, size_t B)
{
	const MtlLevel *lv = &L->levels[k];

	w->proj[k] = Buffer(B, lv->P);
	w->dproj[k] = Buffer(B, lv->P);
	for (int e = 0; e < lv->n_experts; e++)
	{
		for (int l = 1; l < L->n_expert_layers; l++)
		{
			w->expert_act[k][e][l] = Buffer(B, L->expert_units[l]);
			w->dexpert_act[k][e][l] = Buffer(B, L->expert_units[l]);
		}
		if (spec->dropout > 0)
			w->expert_mask[k][e] = Buffer(B, L->H);
	}
	for (int o = 0; o <= spec->n_tasks; o++)
	{
		if (lv->gate_n[o] == 0)
			continue;
		w->gate[k][o] = Buffer(B, lv->gate_n[o]);
		w->dgate[k][o] = Buffer(B, lv->gate_n[o]);
		w->mix[k][o] = Buffer(B, L->H);
		w->dmix[k][o] = Buffer(B, L->H);
	}
}

MtlWork *
mtl_work_create(const MtlModel *model, int max_batch)
{
	const MtlLayout *L = &model->layout;
	const MtlSpec *spec = &model->spec;
	size_t		B = max_batch;
	size_t		widest = 1;
	MtlWork    *w = mtl_alloc(sizeof(MtlWork));

	memset(w, 0, sizeof(*w));
	w->max_batch = max_batch;
	w->X = Buffer(B, L->Xw);
	w->dX = Buffer(B, L->Xw);
	w->scenario = mtl_alloc(sizeof(int32_t) * B);
	memset(w->scenario, 0, sizeof(int32_t) * B);
	for (int k = 0; k < L->n_levels; k++)
		CreateLevel(w, L, spec, k, B);
	for (int t = 0; t < spec->n_tasks; t++)
	{
		int			in = L->H;

		for (int l = 0; l <= spec->n_tower_layers; l++)
		{
			w->tower_act[t][l] = Buffer(B, TowerWidth(spec, l));
			w->dtower_act[t][l] = Buffer(B, TowerWidth(spec, l));
			if (spec->dropout > 0 && l < spec->n_tower_layers)
				w->tower_mask[t][l] = Buffer(B, TowerWidth(spec, l));
			if ((size_t) in * TowerWidth(spec, l) > widest)
				widest = (size_t) in * TowerWidth(spec, l);
			in = TowerWidth(spec, l);
		}
	}
	if (L->n_scenarios > 0)
	{
		w->star_W = Buffer(widest, 1);
		w->star_dW = Buffer(widest, 1);
		w->star_b = Buffer(widest, 1);
		w->star_db = Buffer(widest, 1);
	}
	w->dropout_state = spec->seed ^ 0x9E3779B97F4A7C15ULL;
	return w;
}

void
mtl_work_free(MtlWork *w, const MtlModel *model)
{
	if (w == NULL)
		return;
	mtl_free(w->star_frozen);
	mtl_grouped_free(w);
	mtl_free(w->X);
	mtl_free(w->dX);
	mtl_free(w->scenario);
	for (int k = 0; k < MTL_MAX_LEVELS; k++)
	{
		mtl_free(w->proj[k]);
		mtl_free(w->dproj[k]);
		for (int e = 0; e < MTL_MAX_EXPERTS; e++)
		{
			for (int l = 0; l < MTL_MAX_LAYERS; l++)
			{
				mtl_free(w->expert_act[k][e][l]);
				mtl_free(w->dexpert_act[k][e][l]);
			}
			mtl_free(w->expert_mask[k][e]);
		}
		for (int o = 0; o < MTL_MAX_OWNERS; o++)
		{
			mtl_free(w->gate[k][o]);
			mtl_free(w->dgate[k][o]);
			mtl_free(w->mix[k][o]);
			mtl_free(w->dmix[k][o]);
		}
	}
	for (int t = 0; t < MTL_MAX_TASKS; t++)
		for (int l = 0; l <= MTL_MAX_LAYERS; l++)
		{
			mtl_free(w->tower_act[t][l]);
			mtl_free(w->dtower_act[t][l]);
			if (l < MTL_MAX_LAYERS)
				mtl_free(w->tower_mask[t][l]);
		}
	mtl_free(w->star_W);
	mtl_free(w->star_dW);
	mtl_free(w->star_b);
	mtl_free(w->star_db);
	mtl_free(w);
	(void) model;
}

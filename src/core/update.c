#include "update.h"

#include <string.h>

#include "dataset.h"
#include "fit.h"
#include "format.h"
#include "mem.h"

void
mtl_update_rows(const MtlSchema *old, MtlRowStore *store)
{
	MtlFieldDef *defs = mtl_alloc(sizeof(MtlFieldDef) * (old->n_fields + 1));
	int		   *map = mtl_alloc(sizeof(int) * (store->n_fields + 1));

	for (int f = 0; f < old->n_fields; f++)
	{
		defs[f].side = old->fields[f].side;
		defs[f].kind = old->fields[f].kind;
		defs[f].name = old->fields[f].name;
	}
	for (int f = 0; f < store->n_fields; f++)
		map[f] = mtl_schema_find_field(old, store->fields[f].side, store->fields[f].kind,
									   store->fields[f].name, strlen(store->fields[f].name));
	mtl_rows_remap_fields(store, defs, old->n_fields, map);
	mtl_free(map);
	mtl_free(defs);
}

/* Embedding row old_row of old (every copy) into new_row of out; old_row < 0: zeros. */
static void
CopyRow(const MtlTrained *old, int64_t old_row, MtlTrained *out, int64_t new_row)
{
	const MtlLayout *a = &old->model.layout,
			   *b = &out->model.layout;

	for (int c = 0; c < b->n_copies; c++)
	{
		float	   *to = out->model.params + (size_t) MTL_COPY_ROW(b, new_row, c) * b->E;

		if (old_row < 0)
			memset(to, 0, sizeof(float) * b->E);
		else
			memcpy(to, old->model.params + (size_t) MTL_COPY_ROW(a, old_row, c) * a->E,
				   sizeof(float) * a->E);
	}
}

static void
CopyEmbeddings(const MtlTrained *old, MtlTrained *out)
{
	const MtlSchema *s0 = &old->schema,
			   *s1 = &out->schema;
	const MtlLayout *a = &old->model.layout,
			   *b = &out->model.layout;

	/* new ids start at zero: what an id the old model never saw contributed */
	for (int64_t q = 0; q < s1->ids[MTL_SIDE_USER].n; q++)
		CopyRow(old, -1, out, q);
	for (int64_t q = 0; q < s1->ids[MTL_SIDE_ITEM].n; q++)
		CopyRow(old, -1, out, b->item_row0 + q);
	for (int64_t p = 0; p < s0->ids[MTL_SIDE_USER].n; p++)
		CopyRow(old, p, out, mtl_schema_find_id(s1, MTL_SIDE_USER, s0->ids[MTL_SIDE_USER].ids[p]));
	for (int64_t p = 0; p < s0->ids[MTL_SIDE_ITEM].n; p++)
		CopyRow(old, a->item_row0 + p, out,
				b->item_row0 + mtl_schema_find_id(s1, MTL_SIDE_ITEM, s0->ids[MTL_SIDE_ITEM].ids[p]));
	for (int c = 0; c < s0->n_cat; c++)
	{
		int			f = s0->cat_field[c];

		/* new values start as the field's row for unseen values */
		for (int64_t li = 0; li <= s1->fields[f].n_values; li++)
			CopyRow(old, a->cat_row0[c], out, b->cat_row0[c] + li);
		for (int64_t li = 1; li <= s0->fields[f].n_values; li++)
			CopyRow(old, a->cat_row0[c] + li, out,
					b->cat_row0[c] + mtl_schema_cat_index(s1, f, s0->fields[f].values[li - 1]));
	}
}

/* Task experts keep their number; shared ones move past the new tasks' experts. */
static int
MapExpert(int e, int T0, int T1, int K)
{
	return e < T0 * K ? e : e + (T1 - T0) * K;
}

static int
MapOwner(int o, int T0, int T1)
{
	return o < T0 ? o : T1;
}

/* Experts per task at a level (each task owns as many as task 0). */
static int
TaskExperts(const MtlLevel *lv)
{
	int			K = 0;

	for (int e = 0; e < lv->n_experts; e++)
		K += lv->owner[e] == 0;
	return K;
}

/* For each projection column of level a, its column in level b (-1: none). */
static void
MapColumns(const MtlLevel *a, const MtlLevel *b, int T0, int T1, int H1, int *map)
{
	int			K = TaskExperts(a);

	for (int c = 0; c < a->P; c++)
		map[c] = -1;
	for (int e = 0; e < a->n_experts; e++)
		for (int h = 0; h < H1; h++)
			map[a->col[e] + h] = b->col[MapExpert(e, T0, T1, K)] + h;
	for (int o = 0; o <= T0; o++)
	{
		int			o2 = MapOwner(o, T0, T1);

		if (a->gate_col[o] < 0 || b->gate_col[o2] < 0)
			continue;
		for (int j = 0; j < a->gate_n[o]; j++)
		{
			int			e2 = MapExpert(a->gate_expert[o][j], T0, T1, K);

			for (int j2 = 0; j2 < b->gate_n[o2]; j2++)
				if (b->gate_expert[o2][j2] == e2)
					map[a->gate_col[o] + j] = b->gate_col[o2] + j2;
		}
	}
}

/* One level's projection (W_in for level 0, per-owner inputs above) and its expert layers. */
static void
CopyLevel(const MtlTrained *old, MtlTrained *out, int k, const int *map)
{
	const MtlLayout *A = &old->model.layout,
			   *B = &out->model.layout;
	const MtlLevel *a = &A->levels[k],
			   *b = &B->levels[k];
	const float *src = old->model.params;
	float	   *dst = out->model.params;
	int			T0 = old->model.spec.n_tasks,
				T1 = out->model.spec.n_tasks;
	int			K = TaskExperts(a);

	if (k == 0)
		for (int c = 0; c < a->P; c++)
		{
			if (map[c] < 0)
				continue;
			for (int r = 0; r < A->Xw; r++)
				dst[B->W_in + (size_t) r * b->P + map[c]] = src[A->W_in + (size_t) r * a->P + c];
			dst[B->b_in + map[c]] = src[A->b_in + c];
		}
	else
		for (int o = 0; o <= T0; o++)
		{
			int			o2 = MapOwner(o, T0, T1);

			for (int c = 0; c < a->own_cols[o]; c++)
			{
				int			m = map[a->own_col0[o] + c];

				if (m < 0)
					continue;
				m -= b->own_col0[o2];
				for (int r = 0; r < A->H; r++)
					dst[b->in_W[o2] + (size_t) r * b->own_cols[o2] + m] =
						src[a->in_W[o] + (size_t) r * a->own_cols[o] + c];
				dst[b->in_b[o2] + m] = src[a->in_b[o] + c];
			}
		}
	for (int e = 0; e < a->n_experts; e++)
	{
		int			e2 = MapExpert(e, T0, T1, K);

		for (int l = 1; l < A->n_expert_layers; l++)
		{
			size_t		w = (size_t) A->expert_units[l - 1] * A->expert_units[l];

			memcpy(dst + b->expert_W[e2][l], src + a->expert_W[e][l], sizeof(float) * w);
			memcpy(dst + b->expert_b[e2][l], src + a->expert_b[e][l], sizeof(float) * A->expert_units[l]);
		}
	}
}

/* Parameters of task t's tower: from its first weight to the next task's. */
static size_t
TowerLength(const MtlLayout *L, int t, int T)
{
	size_t		end = t + 1 < T ? L->tower_W[t + 1][0] : L->tower0 + L->tower_len;

	return end - L->tower_W[t][0];
}

/* Old tasks' towers, their scenario parts (scenarios re-indexed) and uncertainty terms. */
static void
CopyTowers(const MtlTrained *old, MtlTrained *out)
{
	const MtlLayout *A = &old->model.layout,
			   *B = &out->model.layout;
	const float *src = old->model.params;
	float	   *dst = out->model.params;
	int			T0 = old->model.spec.n_tasks;
	int			scen = old->model.shape.scenario_cat;

	for (int t = 0; t < T0; t++)
	{
		size_t		len = TowerLength(A, t, T0);

		memcpy(dst + B->tower_W[t][0], src + A->tower_W[t][0], sizeof(float) * len);
		for (int s = 1; s <= A->n_scenarios; s++)
		{
			int			f = old->schema.cat_field[scen];
			int32_t		s2 = mtl_schema_cat_index(&out->schema, f, old->schema.fields[f].values[s - 1]);

			memcpy(dst + B->scenario0 + (size_t) (s2 - 1) * B->tower_len + (B->tower_W[t][0] - B->tower0),
				   src + A->scenario0 + (size_t) (s - 1) * A->tower_len + (A->tower_W[t][0] - A->tower0),
				   sizeof(float) * len);
		}
		if (old->model.spec.loss_weighting == MTL_WEIGHTING_UNCERTAINTY)
			dst[B->loss_s + t] = src[A->loss_s + t];
	}
}

void
mtl_update_copy_params(const MtlTrained *old, MtlTrained *out)
{
	const MtlLayout *A = &old->model.layout;
	int		   *map;

	CopyEmbeddings(old, out);
	for (int k = 0; k < A->n_levels; k++)
	{
		map = mtl_alloc(sizeof(int) * (A->levels[k].P + 1));
		MapColumns(&A->levels[k], &out->model.layout.levels[k], old->model.spec.n_tasks,
				   out->model.spec.n_tasks, A->H1, map);
		CopyLevel(old, out, k, map);
		mtl_free(map);
	}
	CopyTowers(old, out);
}

const MtlError *
mtl_update_fit(const MtlTrained *old, const MtlSpec *spec, MtlRowStore *store,
			   int freeze_shared, const MtlTrainCallbacks *cb, double memory_limit,
			   double *needed, MtlTrained *out)
{
	MtlModel   *model = &out->model;
	MtlDataset	data;
	MtlContinue cont;
	static const MtlError memory = {MTL_E_MEMORY, "more memory than the limit"};
	const MtlError *why = NULL;
	int			T = spec->n_tasks;
	double		start = mtl_now_seconds();
	double		encode_start;

	memset(out, 0, sizeof(*out));
	if (T > old->model.spec.n_tasks && old->model.layout.n_copies > 1)
		MTL_FAIL(MTL_E_UNSUPPORTED, "a single_task model cannot take new tasks (each task has its own copy of the inputs)");
	model->spec = *spec;
	mtl_rows_seal(store);
	mtl_update_rows(&old->schema, store);
	mtl_schema_extend(&out->schema, &old->schema, store);
	why = mtl_schema_shape(&out->schema, spec->scenario, spec->sequence_pooling, &model->shape);
	if (why == NULL)
		why = mtl_layout_build(&model->layout, &model->spec, &model->shape);
	if (why == NULL)
	{
		*needed = mtl_fit_memory_bytes(spec, store, &out->schema, &model->layout);
		if (memory_limit > 0 && *needed > memory_limit)
			why = &memory;
	}
	if (why != NULL)
	{
		mtl_trained_free(out);
		return why;
	}
	mtl_model_init(model);
	mtl_update_copy_params(old, out);

	encode_start = mtl_now_seconds();
	mtl_dataset_build(&data, &out->schema, &model->layout, store);
	cont.first_new_task = old->model.spec.n_tasks;
	cont.train_from = freeze_shared ? model->layout.tower0 : 0;
	out->summary.phase_seconds[MTL_PHASE_VOCABULARY] = encode_start - start;
	out->summary.phase_seconds[MTL_PHASE_ENCODE_ROWS] = mtl_now_seconds() - encode_start;
	mtl_train_continue(model, &data, cb, &out->summary, &cont);
	out->summary.seconds = mtl_now_seconds() - start;
	mtl_dataset_free(&data);
	return NULL;
}

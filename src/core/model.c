#include "model.h"

#include <math.h>
#include <string.h>

#include "layers.h"
#include "loss.h"
#include "mem.h"
#include "rng.h"

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
	}
	return "unknown";
}

const char *
mtl_task_type_name(MtlTaskType type)
{
	return type == MTL_TASK_BINARY ? "binary" : "regression";
}

const char *
mtl_layout_build(MtlLayout *layout, const MtlSpec *spec, const MtlShape *shape)
{
	const int  *units;
	int			T = spec->n_tasks;
	size_t		pos;
	int64_t		row;

	memset(layout, 0, sizeof(*layout));
	if (T < 1 || T > MTL_MAX_TASKS)
		return "number of tasks out of range";
	if (spec->embedding_dim < 1 || shape->n_cat < 0 || shape->n_num < 0 ||
		shape->n_users < 0 || shape->n_items < 0)
		return "invalid input sizes";
	layout->E = spec->embedding_dim;
	layout->n_slots = 2 + shape->n_cat;
	layout->D = 3 * layout->E + shape->n_cat * layout->E + shape->n_num;
	if (spec->model == MTL_MODEL_SHARED_BOTTOM)
	{
		layout->n_experts = 1;
		layout->gated = 0;
		layout->n_expert_layers = spec->n_bottom_layers;
		units = spec->bottom_units;
	}
	else if (spec->model == MTL_MODEL_MMOE)
	{
		layout->n_experts = spec->n_experts;
		layout->gated = 1;
		layout->n_expert_layers = spec->n_expert_layers;
		units = spec->expert_units;
	}
	else
		return "unknown model type";
	if (layout->n_experts < 1 || layout->n_experts > MTL_MAX_EXPERTS)
		return "number of experts out of range";
	if (layout->n_expert_layers < 1 || layout->n_expert_layers > MTL_MAX_LAYERS ||
		spec->n_tower_layers < 0 || spec->n_tower_layers > MTL_MAX_LAYERS)
		return "number of layers out of range";
	for (int l = 0; l < layout->n_expert_layers; l++)
		if (units[l] < 1)
			return "layer width out of range";
	for (int l = 0; l < spec->n_tower_layers; l++)
		if (spec->tower_units[l] < 1)
			return "layer width out of range";
	layout->expert_units = units;
	layout->H1 = units[0];
	layout->H = units[layout->n_expert_layers - 1];
	layout->P = layout->n_experts * layout->H1 + (layout->gated ? T * layout->n_experts : 0);

	/* embedding rows: users, items, then each categorical field */
	layout->item_row0 = shape->n_users;
	row = shape->n_users + shape->n_items;
	layout->cat_row0 = mtl_alloc(sizeof(int64_t) * (shape->n_cat + 1));
	for (int f = 0; f < shape->n_cat; f++)
	{
		if (shape->cat_rows[f] < 1)
			return "invalid vocabulary size";
		layout->cat_row0[f] = row;
		row += shape->cat_rows[f];
	}
	layout->emb_rows = row;
	if (row >= INT32_MAX)
		return "too many embedding rows";
	if ((size_t) row > MTL_MAX_PARAMS / (size_t) layout->E)
		return "too many parameters";

	pos = (size_t) row * layout->E;
	layout->W_in = pos;
	pos += (size_t) layout->D * layout->P;
	layout->b_in = pos;
	pos += layout->P;
	for (int e = 0; e < layout->n_experts; e++)
		for (int l = 1; l < layout->n_expert_layers; l++)
		{
			layout->expert_W[e][l] = pos;
			pos += (size_t) units[l - 1] * units[l];
			layout->expert_b[e][l] = pos;
			pos += units[l];
		}
	for (int t = 0; t < T; t++)
	{
		int			in = layout->H;

		for (int l = 0; l <= spec->n_tower_layers; l++)
		{
			int			out = l < spec->n_tower_layers ? spec->tower_units[l] : 1;

			layout->tower_W[t][l] = pos;
			pos += (size_t) in * out;
			layout->tower_b[t][l] = pos;
			pos += out;
			in = out;
		}
	}
	if (pos > MTL_MAX_PARAMS)
		return "too many parameters";
	layout->n_params = pos;
	layout->n_dense = pos - (size_t) row * layout->E;
	return NULL;
}

void
mtl_layout_free(MtlLayout *layout)
{
	mtl_free(layout->cat_row0);
	layout->cat_row0 = NULL;
}

static void
FillNormal(float *p, size_t n, float std, MtlRng *rng)
{
	for (size_t i = 0; i < n; i++)
		p[i] = std * mtl_rng_normal(rng);
}

/* He initialisation for ReLU layers, small gates, zero biases. */
void
mtl_model_init(MtlModel *model)
{
	const MtlLayout *L = &model->layout;
	const MtlSpec *spec = &model->spec;
	float	   *p;
	MtlRng		rng;
	int			expert_cols = L->n_experts * L->H1;

	mtl_rng_seed(&rng, spec->seed);
	model->params = p = mtl_alloc(sizeof(float) * L->n_params);
	FillNormal(p, (size_t) L->emb_rows * L->E, 0.05f, &rng);
	for (int d = 0; d < L->D; d++)
	{
		float	   *row = p + L->W_in + (size_t) d * L->P;

		FillNormal(row, expert_cols, sqrtf(2.0f / L->D), &rng);
		FillNormal(row + expert_cols, L->P - expert_cols, 0.01f, &rng);
	}
	for (int e = 0; e < L->n_experts; e++)
		for (int l = 1; l < L->n_expert_layers; l++)
			FillNormal(p + L->expert_W[e][l],
					   (size_t) L->expert_units[l - 1] * L->expert_units[l],
					   sqrtf(2.0f / L->expert_units[l - 1]), &rng);
	for (int t = 0; t < spec->n_tasks; t++)
	{
		int			in = L->H;

		for (int l = 0; l <= spec->n_tower_layers; l++)
		{
			int			last = l == spec->n_tower_layers;
			int			out = last ? 1 : spec->tower_units[l];

			FillNormal(p + L->tower_W[t][l], (size_t) in * out,
					   sqrtf((last ? 1.0f : 2.0f) / in), &rng);
			in = out;
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
}

static int
TowerWidth(const MtlSpec *spec, int l)
{
	return l < spec->n_tower_layers ? spec->tower_units[l] : 1;
}

MtlWork *
mtl_work_create(const MtlModel *model, int max_batch)
{
	const MtlLayout *L = &model->layout;
	const MtlSpec *spec = &model->spec;
	int			T = spec->n_tasks;
	size_t		B = max_batch;
	MtlWork    *w = mtl_alloc(sizeof(MtlWork));

	w->max_batch = max_batch;
	w->X = mtl_alloc(sizeof(float) * B * L->D);
	w->dX = mtl_alloc(sizeof(float) * B * L->D);
	w->proj = mtl_alloc(sizeof(float) * B * L->P);
	w->dproj = mtl_alloc(sizeof(float) * B * L->P);
	for (int e = 0; e < L->n_experts; e++)
		for (int l = 1; l < L->n_expert_layers; l++)
		{
			w->expert_act[e][l] = mtl_alloc(sizeof(float) * B * L->expert_units[l]);
			w->dexpert_act[e][l] = mtl_alloc(sizeof(float) * B * L->expert_units[l]);
		}
	w->gate = mtl_alloc(sizeof(float) * B * T * L->n_experts);
	w->dgate = mtl_alloc(sizeof(float) * B * T * L->n_experts);
	w->mix = mtl_alloc(sizeof(float) * B * T * L->H);
	w->dmix = mtl_alloc(sizeof(float) * B * T * L->H);
	for (int t = 0; t < T; t++)
		for (int l = 0; l <= spec->n_tower_layers; l++)
		{
			w->tower_act[t][l] = mtl_alloc(sizeof(float) * B * TowerWidth(spec, l));
			w->dtower_act[t][l] = mtl_alloc(sizeof(float) * B * TowerWidth(spec, l));
		}
	return w;
}

void
mtl_work_free(MtlWork *w, const MtlModel *model)
{
	const MtlLayout *L = &model->layout;

	if (w == NULL)
		return;
	mtl_free(w->X);
	mtl_free(w->dX);
	mtl_free(w->proj);
	mtl_free(w->dproj);
	for (int e = 0; e < L->n_experts; e++)
		for (int l = 1; l < L->n_expert_layers; l++)
		{
			mtl_free(w->expert_act[e][l]);
			mtl_free(w->dexpert_act[e][l]);
		}
	mtl_free(w->gate);
	mtl_free(w->dgate);
	mtl_free(w->mix);
	mtl_free(w->dmix);
	for (int t = 0; t < model->spec.n_tasks; t++)
		for (int l = 0; l <= model->spec.n_tower_layers; l++)
		{
			mtl_free(w->tower_act[t][l]);
			mtl_free(w->dtower_act[t][l]);
		}
	mtl_free(w);
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

	mtl_embedding_forward(work->X, L->D, params, slots, S, B, E);
	mtl_embedding_forward(work->X + E, L->D, params, slots + 1, S, B, E);
	for (int f = 0; f < S - 2; f++)
		mtl_embedding_forward(work->X + 3 * E + f * E, L->D, params, slots + 2 + f, S, B, E);
	for (int r = 0; r < B; r++)
	{
		float	   *x = work->X + (size_t) r * L->D;

		for (int i = 0; i < E; i++)
			x[2 * E + i] = x[i] * x[E + i];
		if (n_num > 0)
			memcpy(x + num0, nums + (size_t) r * n_num, sizeof(float) * n_num);
	}
}

/* Output of expert e: its last layer, read with stride *ld. */
static float *
ExpertOutput(const MtlLayout *L, float *const *act_or_dact, float *proj, int e, int *ld)
{
	if (L->n_expert_layers == 1)
	{
		*ld = L->P;
		return proj + (size_t) e * L->H1;
	}
	*ld = L->H;
	return act_or_dact[L->n_expert_layers - 1];
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

/* Everything of the experts after the first layer's pre-activation in w->proj. */
static void
ExpertsForward(const MtlLayout *L, MtlWork *w, const float *p, int B)
{
	mtl_relu_forward(w->proj, L->P, B, L->n_experts * L->H1);
	for (int e = 0; e < L->n_experts; e++)
		for (int l = 1; l < L->n_expert_layers; l++)
		{
			const float *in = l == 1 ? w->proj + (size_t) e * L->H1 : w->expert_act[e][l - 1];
			int			ld_in = l == 1 ? L->P : L->expert_units[l - 1];

			mtl_dense_forward(w->expert_act[e][l], L->expert_units[l], in, ld_in,
							  p + L->expert_W[e][l], p + L->expert_b[e][l],
							  B, L->expert_units[l - 1], L->expert_units[l]);
			mtl_relu_forward(w->expert_act[e][l], L->expert_units[l], B, L->expert_units[l]);
		}
}

/* mix_t = sum_e gate_t[e] * expert_e; with one ungated expert, a copy. */
static void
MixForward(const MtlLayout *L, MtlWork *w, int T, int B)
{
	int			n_e = L->n_experts;
	int			H = L->H;

	if (L->gated)
		for (int t = 0; t < T; t++)
			mtl_softmax_forward(w->gate + (size_t) t * B * n_e,
								w->proj + n_e * L->H1 + t * n_e, L->P, B, n_e);
	for (int t = 0; t < T; t++)
	{
		float	   *mix = w->mix + (size_t) t * B * H;
		const float *gate = w->gate + (size_t) t * B * n_e;

		memset(mix, 0, sizeof(float) * B * H);
		for (int e = 0; e < n_e; e++)
		{
			int			ld;
			const float *out = ExpertOutput(L, w->expert_act[e], w->proj, e, &ld);

			for (int r = 0; r < B; r++)
			{
				float		g = L->gated ? gate[(size_t) r * n_e + e] : 1.0f;
				const float *o = out + (size_t) r * ld;
				float	   *m = mix + (size_t) r * H;

				for (int i = 0; i < H; i++)
					m[i] += g * o[i];
			}
		}
	}
}

static void
TowersForward(const MtlModel *model, MtlWork *w, const float *p, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlSpec *spec = &model->spec;

	for (int t = 0; t < spec->n_tasks; t++)
	{
		const float *in = w->mix + (size_t) t * B * L->H;
		int			width = L->H;

		for (int l = 0; l <= spec->n_tower_layers; l++)
		{
			int			out = TowerWidth(spec, l);

			mtl_dense_forward(w->tower_act[t][l], out, in, width,
							  p + L->tower_W[t][l], p + L->tower_b[t][l], B, width, out);
			if (l < spec->n_tower_layers)
				mtl_relu_forward(w->tower_act[t][l], out, B, out);
			in = w->tower_act[t][l];
			width = out;
		}
	}
}

void
mtl_model_forward(const MtlModel *model, MtlWork *work, const float *params, int B)
{
	const MtlLayout *L = &model->layout;

	mtl_dense_forward(work->proj, L->P, work->X, L->D, params + L->W_in, params + L->b_in,
					  B, L->D, L->P);
	mtl_model_forward_projected(model, work, params, B);
}

void
mtl_model_forward_projected(const MtlModel *model, MtlWork *work, const float *params, int B)
{
	ExpertsForward(&model->layout, work, params, B);
	MixForward(&model->layout, work, model->spec.n_tasks, B);
	TowersForward(model, work, params, B);
}

static void
TowersBackward(const MtlModel *model, MtlWork *w, const float *p, float *g,
			   float *const *dlogit, int B)
{
	const MtlLayout *L = &model->layout;
	const MtlSpec *spec = &model->spec;

	for (int t = 0; t < spec->n_tasks; t++)
	{
		const float *dout = dlogit[t];

		for (int l = spec->n_tower_layers; l >= 0; l--)
		{
			int			out = TowerWidth(spec, l);
			int			in_width = l > 0 ? TowerWidth(spec, l - 1) : L->H;
			const float *in = l > 0 ? w->tower_act[t][l - 1] : w->mix + (size_t) t * B * L->H;
			float	   *din = l > 0 ? w->dtower_act[t][l - 1] : w->dmix + (size_t) t * B * L->H;

			mtl_dense_backward(din, in_width, g + L->tower_W[t][l], g + L->tower_b[t][l],
							   dout, out, in, in_width, p + L->tower_W[t][l], B, in_width, out);
			if (l > 0)
				mtl_relu_backward(din, in_width, in, in_width, B, in_width);
			dout = din;
		}
	}
}

/* From dmix into the expert outputs (in dproj or dexpert_act) and the gates. */
static void
MixBackward(const MtlLayout *L, MtlWork *w, int T, int B)
{
	int			n_e = L->n_experts;
	int			H = L->H;

	memset(w->dproj, 0, sizeof(float) * B * L->P);
	if (L->n_expert_layers > 1)
		for (int e = 0; e < n_e; e++)
			memset(w->dexpert_act[e][L->n_expert_layers - 1], 0, sizeof(float) * B * H);
	for (int t = 0; t < T; t++)
	{
		const float *dmix = w->dmix + (size_t) t * B * H;
		const float *gate = w->gate + (size_t) t * B * n_e;
		float	   *dgate = w->dgate + (size_t) t * B * n_e;

		for (int e = 0; e < n_e; e++)
		{
			int			ld;
			const float *out = ExpertOutput(L, w->expert_act[e], w->proj, e, &ld);
			float	   *dout = ExpertOutput(L, w->dexpert_act[e], w->dproj, e, &ld);

			for (int r = 0; r < B; r++)
			{
				float		gv = L->gated ? gate[(size_t) r * n_e + e] : 1.0f;
				const float *dm = dmix + (size_t) r * H;
				const float *o = out + (size_t) r * ld;
				float	   *d = dout + (size_t) r * ld;
				float		dot = 0.0f;

				for (int i = 0; i < H; i++)
				{
					d[i] += gv * dm[i];
					dot += dm[i] * o[i];
				}
				dgate[(size_t) r * n_e + e] = dot;
			}
		}
		if (L->gated)
			mtl_softmax_backward(w->dproj + n_e * L->H1 + t * n_e, L->P, gate, dgate, B, n_e);
	}
}

static void
ExpertsBackward(const MtlLayout *L, MtlWork *w, const float *p, float *g, int B)
{
	for (int e = 0; e < L->n_experts; e++)
		for (int l = L->n_expert_layers - 1; l >= 1; l--)
		{
			int			in_w = L->expert_units[l - 1];
			int			out_w = L->expert_units[l];
			const float *in = l == 1 ? w->proj + (size_t) e * L->H1 : w->expert_act[e][l - 1];
			float	   *din = l == 1 ? w->dproj + (size_t) e * L->H1 : w->dexpert_act[e][l - 1];
			int			ld_in = l == 1 ? L->P : in_w;

			mtl_relu_backward(w->dexpert_act[e][l], out_w, w->expert_act[e][l], out_w, B, out_w);
			mtl_dense_backward(din, ld_in, g + L->expert_W[e][l], g + L->expert_b[e][l],
							   w->dexpert_act[e][l], out_w, in, ld_in,
							   p + L->expert_W[e][l], B, in_w, out_w);
		}
	mtl_relu_backward(w->dproj, L->P, w->proj, L->P, B, L->n_experts * L->H1);
	mtl_dense_backward(w->dX, L->D, g + L->W_in, g + L->b_in, w->dproj, L->P,
					   w->X, L->D, p + L->W_in, B, L->D, L->P);
}

void
mtl_model_backward(const MtlModel *model, MtlWork *work, const float *params,
				   float *grads, float *const *dlogit, int B)
{
	TowersBackward(model, work, params, grads, dlogit, B);
	MixBackward(&model->layout, work, model->spec.n_tasks, B);
	ExpertsBackward(&model->layout, work, params, grads, B);
}

void
mtl_model_backward_embeddings(const MtlModel *model, MtlWork *work, float *grads,
							  const int32_t *slots, int B)
{
	const MtlLayout *L = &model->layout;
	int			E = L->E;
	int			S = L->n_slots;

	for (int r = 0; r < B; r++)
	{
		const int32_t *s = slots + (size_t) r * S;
		const float *dx = work->dX + (size_t) r * L->D;
		const float *x = work->X + (size_t) r * L->D;

		/* the product slot x[2E+i] = u[i] * v[i] sends dx*v to u and dx*u to v */
		if (s[0] >= 0)
		{
			float	   *gu = grads + (size_t) s[0] * E;

			for (int i = 0; i < E; i++)
				gu[i] += dx[i] + dx[2 * E + i] * x[E + i];
		}
		if (s[1] >= 0)
		{
			float	   *gv = grads + (size_t) s[1] * E;

			for (int i = 0; i < E; i++)
				gv[i] += dx[E + i] + dx[2 * E + i] * x[i];
		}
	}
	for (int f = 0; f < S - 2; f++)
		mtl_embedding_backward(grads, work->dX + 3 * E + f * E, L->D, slots + 2 + f, S, B, E);
}

double
mtl_task_output(const MtlTask *task, float logit)
{
	if (task->type == MTL_TASK_BINARY)
		return mtl_sigmoid(logit);
	return (double) task->target_mean + (double) task->target_std * logit;
}

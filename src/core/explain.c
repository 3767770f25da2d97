#include "explain.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "layers.h"
#include "mem.h"
#include "schema.h"

/* Which input each column of X belongs to (see explain.h). */
static void
MapColumns(MtlExplainer *e)
{
	const MtlModel *m = &e->trained->model;
	const MtlLayout *L = &m->layout;
	const MtlSchema *schema = &e->trained->schema;
	int			E = L->E;
	int			num0 = L->D - m->shape.n_num;

	for (int c = 0; c < L->n_copies; c++)
	{
		int		   *in = e->col_input + (size_t) c * L->D;

		for (int j = 0; j < E; j++)
		{
			in[j] = 0;
			in[E + j] = 1;
			in[2 * E + j] = -1;
		}
		for (int f = 0; f < m->shape.n_cat; f++)
			for (int j = 0; j < E; j++)
				in[3 * E + f * E + j] = 2 + schema->cat_field[f];
		for (int k = 0; k < m->shape.n_num; k++)
			in[num0 + k] = 2 + schema->num_field[k];
	}
}

/* Input row (B = 1) of the row in e->slots / e->nums at offset which (0 or 1) into x. */
static void
AssembleOne(MtlExplainer *e, int which, float *x)
{
	const MtlModel *m = &e->trained->model;
	const MtlLayout *L = &m->layout;

	mtl_model_assemble(m, e->work, m->params, e->slots + (size_t) which * L->n_slots,
					   e->nums + (size_t) which * (L->n_cols + 1), 1);
	memcpy(x, e->work->X, sizeof(float) * L->Xw);
}

MtlExplainer *
mtl_explainer_create(const MtlTrained *trained)
{
	const MtlModel *m = &trained->model;
	const MtlLayout *L = &m->layout;
	MtlExplainer *e = mtl_alloc(sizeof(MtlExplainer));

	e->trained = trained;
	e->work = mtl_work_create(m, MTL_EXPLAIN_BATCH);
	mtl_work_freeze_scenarios(e->work, m, m->params);
	e->n_inputs = 2 + trained->schema.n_fields;
	e->col_input = mtl_alloc(sizeof(int) * L->Xw);
	e->slots = mtl_alloc(sizeof(int32_t) * 2 * L->n_slots);
	e->nums = mtl_alloc(sizeof(float) * 2 * (L->n_cols + 1));
	e->xa = mtl_alloc(sizeof(float) * L->Xw);
	e->xb = mtl_alloc(sizeof(float) * L->Xw);
	e->grad = mtl_alloc(sizeof(float) * m->spec.n_tasks * L->Xw);
	e->dlogit = mtl_alloc(sizeof(float) * MTL_EXPLAIN_BATCH);
	e->zero = mtl_alloc(sizeof(float) * MTL_EXPLAIN_BATCH);
	e->pools = mtl_alloc(sizeof(float) * 8 * L->E);
	for (int r = 0; r < MTL_EXPLAIN_BATCH; r++)
		e->dlogit[r] = 1.0f;
	MapColumns(e);
	/* the baseline: the same anonymous row for every row explained */
	mtl_schema_row_from_ids(&trained->schema, L, -1, -1, e->slots + L->n_slots,
							e->nums + L->n_cols + 1);
	AssembleOne(e, 1, e->xb);
	return e;
}

void
mtl_explainer_free(MtlExplainer *e)
{
	if (e == NULL)
		return;
	mtl_work_free(e->work, &e->trained->model);
	mtl_free(e->col_input);
	mtl_free(e->slots);
	mtl_free(e->nums);
	mtl_free(e->xa);
	mtl_free(e->xb);
	mtl_free(e->grad);
	mtl_free(e->dlogit);
	mtl_free(e->zero);
	mtl_free(e->pools);
	mtl_free(e);
}

double
mtl_explain_tolerance(double delta)
{
	return 0.002 + 0.01 * fabs(delta);
}

/*
 * Forward the row, the anonymous row in the row's scenario and the anonymous
 * row in its own: the logits the attributions must explain, the tower
 * jump, and the row's gates.
 */
static void
Endpoints(MtlExplainer *e, int32_t scenario, MtlExplanation *out, double *jump)
{
	const MtlModel *m = &e->trained->model;
	const MtlLayout *L = &m->layout;
	MtlWork    *w = e->work;

	memcpy(w->X, e->xa, sizeof(float) * L->Xw);
	memcpy(w->X + L->Xw, e->xb, sizeof(float) * L->Xw);
	memcpy(w->X + 2 * (size_t) L->Xw, e->xb, sizeof(float) * L->Xw);
	w->scenario[0] = w->scenario[1] = scenario;
	w->scenario[2] = 0;
	mtl_model_forward(m, w, m->params, 3);
	for (int t = 0; t < m->spec.n_tasks; t++)
	{
		const float *logit = mtl_work_logit(w, t);

		out->logit[t] = logit[0];
		out->baseline_logit[t] = logit[2];
		jump[t] = (double) logit[1] - logit[2];
	}
	out->n_levels = L->n_levels;
	for (int k = 0; k < L->n_levels; k++)
		for (int t = 0; t < m->spec.n_tasks; t++)
		{
			int			n = L->levels[k].gate_n[t];

			out->gate_n[k][t] = n;
			if (n > 0)
				memcpy(out->gate[k][t], w->gate[k][t], sizeof(float) * n);
		}
}

/* Path points i0 .. i0 + n - 1 of steps into X, each with its cross slot. */
static void
PathPoints(MtlExplainer *e, int i0, int n, int steps, int32_t scenario)
{
	const MtlModel *m = &e->trained->model;
	const MtlLayout *L = &m->layout;
	MtlWork    *w = e->work;

	for (int r = 0; r < n; r++)
	{
		float		alpha = (float) ((i0 + r + 0.5) / steps);
		float	   *x = w->X + (size_t) r * L->Xw;

		for (int j = 0; j < L->Xw; j++)
			x[j] = e->xb[j] + alpha * (e->xa[j] - e->xb[j]);
		for (int c = 0; c < L->n_copies; c++)
			mtl_model_cross_of_row(m, x + (size_t) c * L->D, e->pools);
		w->scenario[r] = scenario;
	}
}

/* Add each task's input gradients at the n path points in X to e->grad. */
static void
PathGradients(MtlExplainer *e, int n)
{
	const MtlModel *m = &e->trained->model;
	const MtlLayout *L = &m->layout;
	MtlWork    *w = e->work;
	float	   *dlogit[MTL_MAX_TASKS];

	for (int t = 0; t < m->spec.n_tasks; t++)
	{
		float	   *g = e->grad + (size_t) t * L->Xw;

		for (int u = 0; u < m->spec.n_tasks; u++)
			dlogit[u] = u == t ? e->dlogit : e->zero;
		mtl_model_backward_towers(m, w, m->params, NULL, dlogit, n);
		mtl_model_backward_shared(m, w, m->params, NULL, n);
		for (int r = 0; r < n; r++)
		{
			const float *x = w->X + (size_t) r * L->Xw;
			float	   *dx = w->dX + (size_t) r * L->Xw;

			for (int c = 0; c < L->n_copies; c++)
				mtl_model_cross_input_grad(m, x + (size_t) c * L->D, dx + (size_t) c * L->D,
										   e->pools);
			mtl_add(g, dx, L->Xw);
		}
	}
}

/* Integrated gradients over `steps` midpoints into out->attribution. */
static void
Integrate(MtlExplainer *e, int steps, int32_t scenario, MtlExplanation *out)
{
	const MtlModel *m = &e->trained->model;
	const MtlLayout *L = &m->layout;
	int			T = m->spec.n_tasks;

	memset(e->grad, 0, sizeof(float) * T * L->Xw);
	for (int i0 = 0; i0 < steps; i0 += MTL_EXPLAIN_BATCH)
	{
		int			n = steps - i0 < MTL_EXPLAIN_BATCH ? steps - i0 : MTL_EXPLAIN_BATCH;

		PathPoints(e, i0, n, steps, scenario);
		mtl_model_forward(m, e->work, m->params, n);
		PathGradients(e, n);
	}
	memset(out->attribution, 0, sizeof(double) * T * e->n_inputs);
	for (int t = 0; t < T; t++)
	{
		const float *g = e->grad + (size_t) t * L->Xw;
		double	   *a = out->attribution + (size_t) t * e->n_inputs;

		for (int j = 0; j < L->Xw; j++)
			if (e->col_input[j] >= 0)
				a[e->col_input[j]] += (double) g[j] * ((double) e->xa[j] - e->xb[j]) / steps;
	}
}

/* Add the tower jump to the scenario's input and measure each task's error; the worst excess. */
static double
Complete(MtlExplainer *e, const double *jump, MtlExplanation *out)
{
	int			T = e->trained->model.spec.n_tasks;
	double		worst = 0.0;

	for (int t = 0; t < T; t++)
	{
		double	   *a = out->attribution + (size_t) t * e->n_inputs;
		double		delta = out->logit[t] - out->baseline_logit[t],
					sum = 0.0;

		if (out->scenario_input >= 0)
			a[out->scenario_input] += jump[t];
		for (int i = 0; i < e->n_inputs; i++)
			sum += a[i];
		out->error[t] = fabs(sum - delta);
		worst = fmax(worst, out->error[t] - mtl_explain_tolerance(delta));
	}
	return worst;
}

void
mtl_explain_row(MtlExplainer *e, const int32_t *slots, const float *nums, MtlExplanation *out)
{
	const MtlModel *m = &e->trained->model;
	const MtlLayout *L = &m->layout;
	int32_t		scenario = mtl_model_row_scenario(m, slots);
	double		jump[MTL_MAX_TASKS];

	memcpy(e->slots, slots, sizeof(int32_t) * L->n_slots);
	memcpy(e->nums, nums, sizeof(float) * L->n_cols);
	AssembleOne(e, 0, e->xa);
	out->scenario_input = m->shape.scenario_cat >= 0 && scenario > 0 ?
		2 + e->trained->schema.cat_field[m->shape.scenario_cat] : -1;
	Endpoints(e, scenario, out, jump);
	for (out->steps = MTL_EXPLAIN_STEPS;; out->steps *= 2)
	{
		Integrate(e, out->steps, scenario, out);
		if (Complete(e, jump, out) <= 0.0 || out->steps >= MTL_EXPLAIN_MAX_STEPS)
			break;
	}
}

void
mtl_explain_input_name(const MtlTrained *trained, int i, char *buf, size_t len)
{
	static const char *const side_name[] = {"user", "item", "context"};
	const MtlFeature *f;

	if (i < 2)
	{
		snprintf(buf, len, "%s", i == 0 ? "user_id" : "item_id");
		return;
	}
	f = &trained->schema.fields[i - 2];
	snprintf(buf, len, "%s.%s", side_name[f->side], f->name);
}

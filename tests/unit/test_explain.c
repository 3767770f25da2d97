/*
 * Integrated gradients (src/core/explain.c): the cross slot's input
 * gradient against finite differences, and on trained models of every
 * architecture, cross slot, scenario towers, tags and histories: each
 * task's attributions sum to its logit minus the anonymous row's (taken
 * independently from the plain forward pass), inputs equal to the anonymous
 * row's get nothing, and the gates are distributions.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "synthetic.h"
#include "../../src/core/explain.h"
#include "../../src/core/fit.h"
#include "../../src/core/mem.h"
#include "../../src/core/predict.h"
#include "../../src/core/rng.h"
#include "../../src/core/schema.h"

/* Logits of a row and of the anonymous row by the plain forward pass. */
static void
PlainLogits(const MtlTrained *m, MtlWork *work, const int32_t *slots, const float *nums,
			double *row, double *anonymous)
{
	const MtlLayout *L = &m->model.layout;
	int32_t		s2[2 * 128];
	float		n2[2 * 128];

	memcpy(s2, slots, sizeof(int32_t) * L->n_slots);
	memcpy(n2, nums, sizeof(float) * L->n_cols);
	mtl_schema_row_from_ids(&m->schema, L, -1, -1, s2 + L->n_slots, n2 + L->n_cols);
	mtl_model_assemble(&m->model, work, m->model.params, s2, n2, 2);
	mtl_model_forward(&m->model, work, m->model.params, 2);
	for (int t = 0; t < m->model.spec.n_tasks; t++)
	{
		row[t] = mtl_work_logit(work, t)[0];
		anonymous[t] = mtl_work_logit(work, t)[1];
	}
}

/* sum of w . cross(x) */
static double
CrossDot(const MtlModel *m, float *x, const float *w, float *pools)
{
	double		s = 0.0;

	mtl_model_cross_of_row(m, x, pools);
	for (int i = 0; i < m->layout.E; i++)
		s += (double) w[i] * x[2 * m->layout.E + i];
	return s;
}

/* mtl_model_cross_input_grad against central differences at a random input row. */
static void
CheckCrossGradient(const MtlTrained *t, const char *what)
{
	const MtlModel *m = &t->model;
	int			D = m->layout.D,
				E = m->layout.E;
	float	   *x = mtl_alloc(sizeof(float) * D),
			   *dx = mtl_alloc(sizeof(float) * D),
			   *w = mtl_alloc(sizeof(float) * E),
			   *pools = mtl_alloc(sizeof(float) * 8 * E);
	MtlRng		rng;
	double		worst = 0.0,
				h = 1e-2;
	int			moved = 0;

	mtl_rng_seed(&rng, 5);
	for (int j = 0; j < D; j++)
		x[j] = (float) (mtl_rng_uniform(&rng) * 2.0 - 1.0);
	for (int i = 0; i < E; i++)
		w[i] = (float) (mtl_rng_uniform(&rng) * 2.0 - 1.0);
	memset(dx, 0, sizeof(float) * D);
	memcpy(dx + 2 * E, w, sizeof(float) * E);
	mtl_model_cross_input_grad(m, x, dx, pools);
	for (int j = 0; j < D; j++)
	{
		float		keep = x[j];
		double		up,
					down,
					numeric;

		if (j >= 2 * E && j < 3 * E)
			continue;
		x[j] = keep + (float) h;
		up = CrossDot(m, x, w, pools);
		x[j] = keep - (float) h;
		down = CrossDot(m, x, w, pools);
		x[j] = keep;
		numeric = (up - down) / (2 * h);
		worst = fmax(worst, fabs(numeric - dx[j]) / fmax(1.0, fabs(numeric)));
		moved += fabs(numeric) > 1e-3;
	}
	CHECK(worst < 1e-3 && moved > 0, "%s: cross slot input gradient vs central differences (worst %g, %d inputs move it)",
		  what, worst, moved);
	mtl_free(x);
	mtl_free(dx);
	mtl_free(w);
	mtl_free(pools);
}

typedef struct Case
{
	MtlModelType type;
	MtlInteraction interaction;
	int			scenario;
	int			tags;
	int			history;
} Case;

static void
CheckCase(const Case *c)
{
	MtlSpec		spec;
	MtlTrained	m;
	double	   *truth,
				needed,
				worst = 0.0,
				worst_logit = 0.0,
				worst_gate = 0.0,
				unknown_user = 0.0;
	int			max_steps = 0;
	MtlRowStore *rows;
	MtlPredictor *p;
	MtlExplainer *e;
	MtlWork    *work;
	MtlExplanation out;
	char		what[160];

	synthetic_history = c->history;
	rows = c->tags ? synthetic_rows_tags(3000, 21, &truth, c->scenario) :
		c->scenario ? synthetic_rows_scenario(3000, 21, &truth) : synthetic_rows(3000, 21, &truth);
	synthetic_spec(&spec, c->type);
	spec.interaction = c->interaction;
	spec.epochs = 2;
	spec.n_tower_layers = 1;
	spec.tower_units[0] = 16;
	if (c->scenario)
		strcpy(spec.scenario, "scenario");
	mtl_fit(&spec, rows, NULL, 0, &needed, &m);
	snprintf(what, sizeof(what), "%s/%s%s%s%s", mtl_model_type_name(c->type),
			 mtl_interaction_name(c->interaction), c->scenario ? " scenarios" : "",
			 c->tags ? " tags" : "", c->history ? " history" : "");
	CheckCrossGradient(&m, what);
	p = mtl_predictor_create(&m);
	e = mtl_explainer_create(&m);
	work = mtl_work_create(&m.model, 2);
	out.attribution = mtl_alloc(sizeof(double) * spec.n_tasks * e->n_inputs);
	for (int64_t r = 0; r < 40; r++)
	{
		int64_t		user = r % 7 == 0 ? -1 : (r * 13) % m.schema.ids[MTL_SIDE_USER].n;
		int64_t		item = r % 5 == 0 ? -1 : (r * 29) % m.schema.ids[MTL_SIDE_ITEM].n;
		double		logit[MTL_MAX_TASKS],
					anonymous[MTL_MAX_TASKS];

		mtl_predictor_row_from_ids(p, user, item);
		if (c->scenario)
		{
			int			f = m.model.shape.scenario_cat;

			p->slots[m.model.layout.cat_slot[f]] = (int32_t) (m.model.layout.cat_row0[f] + r % 4);
		}
		mtl_explain_row(e, p->slots, p->nums, &out);
		PlainLogits(&m, work, p->slots, p->nums, logit, anonymous);
		max_steps = out.steps > max_steps ? out.steps : max_steps;
		for (int t = 0; t < spec.n_tasks; t++)
		{
			const double *a = out.attribution + (size_t) t * e->n_inputs;
			double		delta = logit[t] - anonymous[t],
						sum = 0.0;

			for (int i = 0; i < e->n_inputs; i++)
				sum += a[i];
			worst = fmax(worst, fabs(sum - delta) / mtl_explain_tolerance(delta));
			worst_logit = fmax(worst_logit, fabs(out.logit[t] - logit[t]) +
							   fabs(out.baseline_logit[t] - anonymous[t]));
			if (user < 0)
				unknown_user = fmax(unknown_user, fabs(a[0]));
			for (int k = 0; k < out.n_levels; k++)
			{
				double		g = 0.0;

				for (int j = 0; j < out.gate_n[k][t]; j++)
					g += out.gate[k][t][j];
				if (out.gate_n[k][t] > 0)
					worst_gate = fmax(worst_gate, fabs(g - 1.0));
			}
		}
	}
	CHECK(worst <= 1.0, "%s: attributions sum to the logit difference (worst error %.3g of the tolerance)",
		  what, worst);
	CHECK(worst_logit < 1e-4, "%s: explained logits are the forward pass's (off by %g)", what, worst_logit);
	CHECK(unknown_user == 0.0, "%s: an unknown user's id gets nothing (%g)", what, unknown_user);
	CHECK(worst_gate < 1e-5, "%s: gates sum to 1 (off by %g)", what, worst_gate);
	printf("  %s: attributions' sum vs logit difference, worst %.3f of the tolerance, up to %d steps\n",
		   what, worst, max_steps);
	mtl_free(out.attribution);
	mtl_work_free(work, &m.model);
	mtl_explainer_free(e);
	mtl_predictor_free(p);
	mtl_trained_free(&m);
	mtl_rows_free(rows);
	mtl_free(truth);
	synthetic_history = 0;
}

void
test_explain(void)
{
	static const Case cases[] = {
		{MTL_MODEL_SHARED_BOTTOM, MTL_INTERACTION_IDS, 0, 0, 0},
		{MTL_MODEL_MMOE, MTL_INTERACTION_IDS, 1, 0, 0},
		{MTL_MODEL_PLE, MTL_INTERACTION_POOLED, 1, 1, 0},
		{MTL_MODEL_SINGLE_TASK, MTL_INTERACTION_FM, 0, 1, 0},
		{MTL_MODEL_ESMM, MTL_INTERACTION_POOLED, 0, 0, 0},
		{MTL_MODEL_MMOE, MTL_INTERACTION_FM, 1, 1, 1},
		{MTL_MODEL_MMOE, MTL_INTERACTION_POOLED, 0, 1, 1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CheckCase(&cases[i]);
}

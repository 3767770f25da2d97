/*
 * Dynamic loss weights and clipping against hand-computed cases, and the
 * training-level effects of the controls: lr decay, clipping and each loss
 * weighting train a model that learns, with the weights mtl_info reports.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "synthetic.h"
#include "../../src/core/fit.h"
#include "../../src/core/format.h"
#include "../../src/core/mem.h"
#include "../../src/core/metrics.h"
#include "../../src/core/weighting.h"

static void
TestDwa(void)
{
	MtlWeighting wt;
	float		prev[2] = {0.5f, 1.0f},
				prev2[2] = {1.0f, 1.0f};
	/* r = (0.5, 1), T = 2, temperature 2: w = 2 e^{r/2} / (e^{0.25} + e^{0.5}) */
	double		e0 = exp(0.25),
				e1 = exp(0.5);

	mtl_weighting_init(&wt, 2);
	mtl_dwa_weights(&wt, prev, prev2, 2.0f);
	CHECK(fabs(wt.scale[0] - 2 * e0 / (e0 + e1)) < 1e-6 && fabs(wt.scale[1] - 2 * e1 / (e0 + e1)) < 1e-6,
		  "dwa weights %g %g, expected 0.8756 1.1244", wt.scale[0], wt.scale[1]);
}

static void
TestGradNorm(void)
{
	MtlWeighting wt;

	/*
	 * L0 = (1, 1), L = (0.5, 1): r = (2/3, 4/3); G = (1, 1) so the targets
	 * are (2/3)^1.5 = 0.544 and (4/3)^1.5 = 1.540. Task 0 is above its target
	 * and task 1 below: Adam's first step moves each by exactly lr, to 0.975
	 * and 1.025, which already sum to 2.
	 */
	mtl_weighting_init(&wt, 2);
	wt.initial_loss[0] = wt.initial_loss[1] = 1.0;
	wt.loss[0] = 0.5;
	wt.loss[1] = 1.0;
	wt.labelled[0] = wt.labelled[1] = 10;
	wt.norm[0] = wt.norm[1] = 1.0;
	mtl_gradnorm_step(&wt, 1.5f);
	CHECK(fabs(wt.scale[0] - 0.975) < 1e-6 && fabs(wt.scale[1] - 1.025) < 1e-6,
		  "gradnorm step gives %g %g, expected 0.975 1.025", wt.scale[0], wt.scale[1]);
	/* a task without labels in the batch sits the step out; one task alone: no step */
	wt.labelled[1] = 0;
	mtl_gradnorm_step(&wt, 1.5f);
	CHECK(fabs(wt.scale[0] - 0.975) < 1e-6 && wt.steps == 1, "one active task: no gradnorm step");
}

static void
TestClip(void)
{
	float		g[8] = {3, 0, 0, 0, 0, 0, 0, 4};	/* dense part [0, 1), row 3 of width 2 at 6..7 */
	int32_t		rows[1] = {3};
	double		norm = mtl_clip_gradients(g, 0, 1, rows, 1, 2, 1.0f);

	CHECK(fabs(norm - 5) < 1e-9 && fabs(g[0] - 0.6f) < 1e-6 && fabs(g[7] - 0.8f) < 1e-6,
		  "clip to norm 1: %g %g (norm was %g)", g[0], g[7], norm);
	norm = mtl_clip_gradients(g, 0, 1, rows, 1, 2, 2.0f);
	CHECK(fabs(g[0] - 0.6f) < 1e-6, "a norm under the limit is left alone");
}

/* Each control trains a model that still learns ctr on the synthetic rows. */
static void
TestControls(void)
{
	static const struct
	{
		const char *name;
		MtlLossWeighting weighting;
		float		lr_decay,
					clip,
					dropout;
	}			cases[] = {
		{"uncertainty", MTL_WEIGHTING_UNCERTAINTY, 1, 0, 0},
		{"gradnorm", MTL_WEIGHTING_GRADNORM, 1, 0, 0},
		{"dwa", MTL_WEIGHTING_DWA, 1, 0, 0},
		{"lr_decay, clip_norm, dropout", MTL_WEIGHTING_FIXED, 0.7f, 0.5f, 0.2f},
	};
	double	   *truth;
	MtlRowStore *rows = synthetic_rows(6000, 5, &truth);

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		MtlSpec		spec;
		MtlTrained	m;
		double		needed,
					sum = 0;

		synthetic_spec(&spec, MTL_MODEL_MMOE);
		spec.epochs = 4;
		spec.loss_weighting = cases[c].weighting;
		spec.lr_decay = cases[c].lr_decay;
		spec.clip_norm = cases[c].clip;
		spec.dropout = cases[c].dropout;
		CHECK(mtl_fit(&spec, rows, NULL, 0, &needed, &m) == NULL, "%s trains", cases[c].name);
		for (int t = 0; t < 2; t++)
			sum += m.summary.loss_weight[t];
		CHECK(m.summary.task_loss[3][0] < m.summary.task_loss[0][0],
			  "%s: ctr loss falls (%g -> %g)", cases[c].name, m.summary.task_loss[0][0],
			  m.summary.task_loss[3][0]);
		if (cases[c].weighting == MTL_WEIGHTING_GRADNORM || cases[c].weighting == MTL_WEIGHTING_DWA)
			CHECK(fabs(sum - 2) < 1e-4 && m.summary.loss_weight[0] != 1.0f,
				  "%s weights move and sum to the number of tasks (%g, %g)", cases[c].name,
				  m.summary.loss_weight[0], m.summary.loss_weight[1]);
		printf("  %s: task weights %.3f %.3f, ctr loss %.4f -> %.4f\n", cases[c].name,
			   m.summary.loss_weight[0], m.summary.loss_weight[1], m.summary.task_loss[0][0],
			   m.summary.task_loss[3][0]);
		mtl_trained_free(&m);
	}
	mtl_rows_free(rows);
	mtl_free(truth);
}

void
test_weighting(void)
{
	TestDwa();
	TestGradNorm();
	TestClip();
	TestControls();
}

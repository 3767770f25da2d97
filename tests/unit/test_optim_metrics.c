/* Adam against a hand-computed step; AUC against hand-computed cases. */
#include <math.h>

#include "check.h"
#include "../../src/core/adam.h"
#include "../../src/core/metrics.h"

static void
TestAdam(void)
{
	MtlAdam		adam;
	float		p[3] = {1.0f, -2.0f, 0.5f};
	float		g[3] = {0.5f, 0.1f, 0.0f};
	int32_t		rows[1] = {1};

	mtl_adam_init(&adam, 3, 0.1f, 0.01f);
	mtl_adam_begin(&adam);
	mtl_adam_update(&adam, p, g, 0, 1);
	/*
	 * Step 1: g' = 0.5 + 0.01 * 1 = 0.51, m = 0.051, v = 0.00026010;
	 * m_hat = 0.51, v_hat = 0.2601, step = 0.1 * 0.51 / (0.51 + 1e-8) = 0.1.
	 */
	CHECK(fabsf(p[0] - 0.9f) < 1e-6, "first Adam step moves by lr: %.7f", p[0]);
	CHECK(fabsf(adam.m[0] - 0.051f) < 1e-7 && fabsf(adam.v[0] - 0.0002601f) < 1e-8,
		  "moments m=%g v=%g", adam.m[0], adam.v[0]);
	mtl_adam_update_rows(&adam, p, g, rows, 1, 1);
	/* g' = 0.1 - 0.02 = 0.08 > 0: also moves by lr in the first step */
	CHECK(fabsf(p[1] - (-2.1f)) < 1e-6, "row update moves row 1: %.7f", p[1]);
	CHECK(p[2] == 0.5f, "an untouched row stays");
	mtl_adam_begin(&adam);
	g[0] = -0.5f;
	mtl_adam_update(&adam, p, g, 0, 1);
	{
		/* second step by hand, in double */
		double		g2 = -0.5 + 0.01 * 0.9;
		double		m = 0.9 * 0.051 + 0.1 * g2;
		double		v = 0.999 * 0.0002601 + 0.001 * g2 * g2;
		double		step = 0.1 / (1 - 0.81) * m / (sqrt(v) / sqrt(1 - 0.998001) + 1e-8);

		CHECK(fabs(p[0] - (0.9 - step)) < 1e-5, "second Adam step %.7f vs %.7f", p[0], 0.9 - step);
	}
	mtl_adam_free(&adam);
}

static void
TestAuc(void)
{
	double		s1[4] = {0.1, 0.4, 0.35, 0.8};
	double		y1[4] = {0, 0, 1, 1};
	double		s2[4] = {0.5, 0.5, 0.5, 0.5};
	double		s3[6] = {0.2, 0.2, 0.9, 0.1, 0.7, 0.3};
	double		y3[6] = {1, 0, 1, 0, NAN, 0};
	double		y4[3] = {1, 1, 1};

	/* pairs (pos, neg): (0.35 > 0.1) (0.35 < 0.4) (0.8 > 0.1) (0.8 > 0.4) -> 3/4 */
	CHECK(fabs(mtl_auc(s1, y1, 4) - 0.75) < 1e-12, "sklearn's example gives 0.75");
	CHECK(fabs(mtl_auc(s2, y1, 4) - 0.5) < 1e-12, "all ties give 0.5");
	/*
	 * Labelled: pos {0.2, 0.9}, neg {0.2, 0.1, 0.3}. Pairs: 0.2 vs 0.2 tie (0.5),
	 * 0.2 > 0.1 (1), 0.2 < 0.3 (0), 0.9 beats all three (3): 4.5 / 6.
	 */
	CHECK(fabs(mtl_auc(s3, y3, 6) - 0.75) < 1e-12, "ties and a missing label: %g", mtl_auc(s3, y3, 6));
	CHECK(isnan(mtl_auc(s1, y4, 3)), "one class gives NaN");
	{
		double		rev[4] = {0.8, 0.35, 0.4, 0.1};

		CHECK(fabs(mtl_auc(rev, y1, 4) - 0.25) < 1e-12, "reversed scores give 1 - AUC");
	}
}

void
test_optim_metrics(void)
{
	TestAdam();
	TestAuc();
}

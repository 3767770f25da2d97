/* Joint evaluation metrics against hand-computed cases. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "../../src/core/evaluate.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-6)

/* NDCG@k, recall@k and MRR per user, with ties at their expected value; calibration bins and ECE. */
static void
TestRankingAndCalibration(void)
{
	/* user 1: 0.9+ 0.8- 0.3+ 0.2-; user 2: 0.6+ 0.4-; user 3: no positive (left out) */
	double		score[] = {0.9, 0.8, 0.3, 0.2, 0.6, 0.4, 0.7},
				label[] = {1, 0, 1, 0, 1, 0, 0};
	int64_t		user[] = {1, 1, 1, 1, 2, 2, 3};
	uint8_t		has_user[] = {1, 1, 1, 1, 1, 1, 1};
	/* one user, three tied at the top (one positive), then a positive */
	double		tied[] = {0.5, 0.5, 0.5, 0.1},
				tied_label[] = {0, 1, 0, 1};
	int64_t		one[] = {7, 7, 7, 7};
	MtlEvalOptions opt = {.n_k = 2, .k = {10, 1}};
	MtlTaskMetrics m;
	double		ndcg1 = 1.5 / (1.0 + 1.0 / log2(3.0));
	double		tied_ndcg = ((1.0 + 1.0 / log2(3.0) + 0.5) / 3.0 + 1.0 / log2(5.0)) / (1.0 + 1.0 / log2(3.0));

	mtl_binary_metrics(score, label, user, has_user, 7, &opt, &m);
	CHECK(m.ranking_users == 2, "users without a positive left out: %lld", (long long) m.ranking_users);
	CHECK(NEAR(m.ndcg[0], (ndcg1 + 1.0) / 2) && NEAR(m.recall[0], 1.0) && NEAR(m.mrr, 1.0),
		  "NDCG@10 %g, recall@10 %g, MRR %g", m.ndcg[0], m.recall[0], m.mrr);
	CHECK(NEAR(m.ndcg[1], 1.0) && NEAR(m.recall[1], 0.75), "NDCG@1 %g, recall@1 %g", m.ndcg[1],
		  m.recall[1]);
	CHECK(NEAR(m.mean_predicted, 3.9 / 7) && NEAR(m.observed, 3.0 / 7), "calibration means %g %g",
		  m.mean_predicted, m.observed);
	CHECK(NEAR(m.ece, (0.1 + 0.8 + 0.7 + 0.2 + 0.4 + 0.4 + 0.7) / 7) && m.bins[9].count == 1 &&
		  m.bins[0].count == 0 && isnan(m.bins[0].mean_predicted) && NEAR(m.bins[3].observed, 1.0),
		  "ECE %g over 10 bins", m.ece);

	opt.k[1] = 2;
	mtl_binary_metrics(tied, tied_label, one, has_user, 4, &opt, &m);
	CHECK(NEAR(m.ndcg[0], tied_ndcg) && NEAR(m.recall[1], 1.0 / 3),
		  "ties: NDCG@10 %g (expect %g), recall@2 %g", m.ndcg[0], tied_ndcg, m.recall[1]);
	CHECK(NEAR(m.mrr, (1.0 + 0.5 + 1.0 / 3) / 3), "ties: expected reciprocal rank %g", m.mrr);
}

void
test_evaluate(void)
{
	TestRankingAndCalibration();
	/* users 1 and 2; user 1: AUC 3/4 over 4 rows, user 2: AUC 1 over 2 rows */
	double		score[] = {0.9, 0.8, 0.3, 0.2, 0.6, 0.4};
	double		label[] = {1, 0, 1, 0, 1, 0};
	int64_t		user[] = {1, 1, 1, 1, 2, 2};
	uint8_t		has_user[] = {1, 1, 1, 1, 1, 1};
	double		logloss = -(log(0.9) + log(0.2) + log(0.3) + log(0.8) + log(0.6) + log(0.6)) / 6;
	double		value[] = {3, 5},
				target[] = {4, 4};
	MtlTaskMetrics m[2];
	MtlTask		tasks[2];

	mtl_binary_metrics(score, label, user, has_user, 6, NULL, &m[0]);
	CHECK(m[0].count == 6 && NEAR(m[0].auc, 6.0 / 9), "AUC 6/9: %g", m[0].auc);
	CHECK(NEAR(m[0].gauc, (4 * 0.75 + 2 * 1.0) / 6) && m[0].gauc_users == 2,
		  "GAUC weighted by rows: %g over %lld users", m[0].gauc, (long long) m[0].gauc_users);
	CHECK(NEAR(m[0].logloss, logloss), "logloss %g vs %g", m[0].logloss, logloss);
	CHECK(NEAR(m[0].accuracy, 4.0 / 6) && NEAR(m[0].f1, 4.0 / 6),
		  "accuracy and F1 at 0.5: %g %g", m[0].accuracy, m[0].f1);

	/* anonymous rows count everywhere but in GAUC */
	has_user[4] = has_user[5] = 0;
	mtl_binary_metrics(score, label, user, has_user, 6, NULL, &m[0]);
	CHECK(NEAR(m[0].gauc, 0.75) && m[0].gauc_users == 1 && NEAR(m[0].auc, 6.0 / 9),
		  "anonymous rows left out of GAUC only: %g", m[0].gauc);

	/* one class only: AUC and GAUC undefined, the rest defined */
	{
		double		ones[] = {1, 1, 1};

		mtl_binary_metrics(score, ones, user, has_user, 3, NULL, &m[1]);
		CHECK(isnan(m[1].auc) && isnan(m[1].gauc) && m[1].gauc_users == 0 &&
			  NEAR(m[1].accuracy, 2.0 / 3), "one class: AUC undefined, accuracy %g", m[1].accuracy);
	}

	mtl_regression_metrics(value, target, 2, &m[1]);
	CHECK(NEAR(m[1].rmse, 1.0) && NEAR(m[1].mae, 1.0) && m[1].count == 2, "RMSE and MAE 1");

	memset(tasks, 0, sizeof(tasks));
	tasks[0].type = MTL_TASK_BINARY;
	tasks[0].weight = 1;
	tasks[1].type = MTL_TASK_REGRESSION;
	tasks[1].weight = 1;
	mtl_binary_metrics(score, label, user, has_user, 6, NULL, &m[0]);
	CHECK(NEAR(mtl_fused_score(m, tasks, 2), (6.0 / 9 + 0.5) / 2), "fused: mean of AUC and 1/(1+RMSE)");
	tasks[0].weight = 2;
	CHECK(NEAR(mtl_fused_score(m, tasks, 2), (2 * 6.0 / 9 + 0.5) / 3), "fused: task-weighted");
	m[0].auc = NAN;
	CHECK(NEAR(mtl_fused_score(m, tasks, 2), 0.5), "fused: tasks without a score left out");
}

/*
 * Joint evaluation of a multi-task model: per-task metrics over labelled
 * rows and one fused score.
 */
#ifndef MTL_EVALUATE_H
#define MTL_EVALUATE_H

#include <stdint.h>

#include "model.h"

#define MTL_EVAL_MAX_K 8			/* cut-offs of the ranking metrics */
#define MTL_CALIBRATION_BINS 10

typedef struct MtlEvalOptions
{
	int			n_k;
	int			k[MTL_EVAL_MAX_K];	/* NDCG@k and recall@k for each */
} MtlEvalOptions;

/* Reliability: equal-width bins of the predicted probability. */
typedef struct MtlCalibrationBin
{
	int64_t		count;
	double		mean_predicted; /* NaN when empty */
	double		observed;
} MtlCalibrationBin;

typedef struct MtlTaskMetrics
{
	int64_t		count;			/* rows with this task's label */
	/* binary tasks (NaN when undefined) */
	double		auc;
	double		gauc;			/* per-user AUC, weighted by the user's rows */
	int64_t		gauc_users;		/* users with both classes */
	double		logloss;
	double		accuracy;		/* at 0.5 */
	double		f1;				/* at 0.5 */
	/*
	 * ranking, per user (rows with a user; users with at least one positive),
	 * the rows ordered by score, ties counted at their expected value in a
	 * random order; means over those users
	 */
	int64_t		ranking_users;
	double		ndcg[MTL_EVAL_MAX_K];
	double		recall[MTL_EVAL_MAX_K];
	double		mrr;
	/* calibration: means over the rows, and the expected calibration error */
	double		mean_predicted;
	double		observed;
	double		ece;
	MtlCalibrationBin bins[MTL_CALIBRATION_BINS];
	/* regression tasks */
	double		rmse;
	double		mae;
} MtlTaskMetrics;

/* NDCG and recall at 10. */
void		mtl_eval_options_default(MtlEvalOptions *opt);

/*
 * score: probabilities; label: 0 or 1; user[i] groups rows for GAUC and the
 * ranking metrics, and rows with has_user[i] == 0 (anonymous) are left out
 * of those only. opt: the ranking cut-offs (NULL: the defaults).
 */
void		mtl_binary_metrics(const double *score, const double *label, const int64_t *user,
							   const uint8_t *has_user, int64_t n, const MtlEvalOptions *opt,
							   MtlTaskMetrics *m);
void		mtl_regression_metrics(const double *value, const double *label, int64_t n,
								   MtlTaskMetrics *m);

/*
 * sum_t weight_t * s_t / sum_t weight_t over the tasks whose s_t is defined,
 * with s_t = AUC for a binary task and 1 / (1 + RMSE) for a regression task.
 * NaN when no task has one.
 */
double		mtl_fused_score(const MtlTaskMetrics *m, const MtlTask *tasks, int n_tasks);

#endif

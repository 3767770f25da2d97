/*
 * Joint evaluation of a multi-task model: per-task metrics over labelled
 * rows and one fused score.
 */
#ifndef MTL_EVALUATE_H
#define MTL_EVALUATE_H

#include <stdint.h>

#include "model.h"

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
	/* regression tasks */
	double		rmse;
	double		mae;
} MtlTaskMetrics;

/*
 * score: probabilities; label: 0 or 1; user[i] groups rows for GAUC, and
 * rows with has_user[i] == 0 (anonymous) are left out of GAUC only.
 */
void		mtl_binary_metrics(const double *score, const double *label, const int64_t *user,
							   const uint8_t *has_user, int64_t n, MtlTaskMetrics *m);
void		mtl_regression_metrics(const double *value, const double *label, int64_t n,
								   MtlTaskMetrics *m);

/*
 * sum_t weight_t * s_t / sum_t weight_t over the tasks whose s_t is defined,
 * with s_t = AUC for a binary task and 1 / (1 + RMSE) for a regression task.
 * NaN when no task has one.
 */
double		mtl_fused_score(const MtlTaskMetrics *m, const MtlTask *tasks, int n_tasks);

#endif

#include "evaluate.h"

#include <math.h>
#include <stdlib.h>

#include "mem.h"
#include "metrics.h"

typedef struct UserRow
{
	int64_t		user;
	int64_t		row;
} UserRow;

static int
CompareUserRow(const void *a, const void *b)
{
	const UserRow *x = a,
			   *y = b;

	if (x->user != y->user)
		return x->user < y->user ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

/* Group AUC: each user's AUC (users with both classes), weighted by their rows. */
static void
GroupAuc(const double *score, const double *label, const int64_t *user,
		 const uint8_t *has_user, int64_t n, MtlTaskMetrics *m)
{
	UserRow    *rows = mtl_alloc(sizeof(UserRow) * (n + 1));
	double	   *s = mtl_alloc(sizeof(double) * (n + 1));
	double	   *l = mtl_alloc(sizeof(double) * (n + 1));
	int64_t		k = 0;
	double		sum = 0.0,
				weight = 0.0;

	for (int64_t i = 0; i < n; i++)
		if (has_user[i])
		{
			rows[k].user = user[i];
			rows[k].row = i;
			k++;
		}
	qsort(rows, k, sizeof(UserRow), CompareUserRow);
	m->gauc_users = 0;
	for (int64_t i = 0; i < k;)
	{
		int64_t		j = i;
		double		auc;

		while (j < k && rows[j].user == rows[i].user)
		{
			s[j - i] = score[rows[j].row];
			l[j - i] = label[rows[j].row];
			j++;
		}
		auc = mtl_auc(s, l, j - i);
		if (!isnan(auc))
		{
			sum += (j - i) * auc;
			weight += j - i;
			m->gauc_users++;
		}
		i = j;
	}
	m->gauc = weight > 0 ? sum / weight : NAN;
	mtl_free(rows);
	mtl_free(s);
	mtl_free(l);
}

void
mtl_binary_metrics(const double *score, const double *label, const int64_t *user,
				   const uint8_t *has_user, int64_t n, MtlTaskMetrics *m)
{
	double		loss = 0.0;
	int64_t		correct = 0,
				tp = 0,
				fp = 0,
				fn = 0;

	m->count = n;
	m->rmse = m->mae = NAN;
	m->auc = mtl_auc(score, label, n);
	for (int64_t i = 0; i < n; i++)
	{
		double		p = fmin(fmax(score[i], 1e-15), 1.0 - 1e-15);
		int			y = label[i] > 0.5;
		int			predicted = score[i] >= 0.5;

		loss -= y ? log(p) : log1p(-p);
		correct += predicted == y;
		tp += predicted && y;
		fp += predicted && !y;
		fn += !predicted && y;
	}
	m->logloss = n > 0 ? loss / n : NAN;
	m->accuracy = n > 0 ? (double) correct / n : NAN;
	m->f1 = tp + fp + fn > 0 ? 2.0 * tp / (2.0 * tp + fp + fn) : NAN;
	GroupAuc(score, label, user, has_user, n, m);
}

void
mtl_regression_metrics(const double *value, const double *label, int64_t n, MtlTaskMetrics *m)
{
	double		se = 0.0,
				ae = 0.0;

	m->count = n;
	m->auc = m->gauc = m->logloss = m->accuracy = m->f1 = NAN;
	m->gauc_users = 0;
	for (int64_t i = 0; i < n; i++)
	{
		double		e = value[i] - label[i];

		se += e * e;
		ae += fabs(e);
	}
	m->rmse = n > 0 ? sqrt(se / n) : NAN;
	m->mae = n > 0 ? ae / n : NAN;
}

double
mtl_fused_score(const MtlTaskMetrics *m, const MtlTask *tasks, int n_tasks)
{
	double		sum = 0.0,
				weight = 0.0;

	for (int t = 0; t < n_tasks; t++)
	{
		double		s = tasks[t].type == MTL_TASK_BINARY ? m[t].auc : 1.0 / (1.0 + m[t].rmse);

		if (isnan(s))
			continue;
		sum += tasks[t].weight * s;
		weight += tasks[t].weight;
	}
	return weight > 0 ? sum / weight : NAN;
}

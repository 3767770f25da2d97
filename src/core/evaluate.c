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

typedef struct Scored
{
	double		score;
	double		label;
} Scored;

/* By score, highest first. */
static int
CompareScored(const void *a, const void *b)
{
	const Scored *x = a,
			   *y = b;

	return x->score > y->score ? -1 : x->score < y->score;
}

void
mtl_eval_options_default(MtlEvalOptions *opt)
{
	opt->n_k = 1;
	opt->k[0] = 10;
}

/*
 * E[1 / rank of the first positive] when a tie group starting at rank
 * first (1-based) holds m rows, g of them positive, in a random order.
 */
static double
ExpectedReciprocalRank(int64_t first, int64_t m, int64_t g)
{
	double		none_yet = 1.0,
				sum = 0.0;

	for (int64_t j = 0; j <= m - g; j++)
	{
		sum += none_yet * (double) g / (double) (m - j) / (double) (first + j);
		none_yet *= (double) (m - g - j) / (double) (m - j);
	}
	return sum;
}

/*
 * One user's rows (sorted by score, highest first): add its NDCG@k,
 * recall@k and reciprocal rank to the sums; 0 when it has no positive.
 */
static int
RankUser(Scored *r, int64_t n, const MtlEvalOptions *opt, double *ndcg, double *recall,
		 double *mrr)
{
	int64_t		positives = 0;
	double		dcg[MTL_EVAL_MAX_K] = {0},
				hits[MTL_EVAL_MAX_K] = {0};
	int			found = 0;

	for (int64_t i = 0; i < n; i++)
		positives += r[i].label > 0.5;
	if (positives == 0)
		return 0;
	for (int64_t a = 0; a < n;)
	{
		int64_t		b = a,
					g = 0;
		double		rel;

		while (b < n && r[b].score == r[a].score)
			g += r[b++].label > 0.5;
		rel = (double) g / (double) (b - a);	/* each tied row's expected gain */
		for (int64_t i = a; i < b; i++)
			for (int c = 0; c < opt->n_k; c++)
				if (i < opt->k[c])
				{
					dcg[c] += rel / log2((double) i + 2.0);
					hits[c] += rel;
				}
		if (g > 0 && !found)
		{
			*mrr += ExpectedReciprocalRank(a + 1, b - a, g);
			found = 1;
		}
		a = b;
	}
	for (int c = 0; c < opt->n_k; c++)
	{
		double		ideal = 0.0;

		for (int64_t i = 0; i < positives && i < opt->k[c]; i++)
			ideal += 1.0 / log2((double) i + 2.0);
		ndcg[c] += dcg[c] / ideal;
		recall[c] += hits[c] / (double) positives;
	}
	return 1;
}

/*
 * Per user (rows with a user): group AUC, each user's AUC (users with both
 * classes) weighted by their rows, and the ranking metrics.
 */
static void
PerUser(const double *score, const double *label, const int64_t *user,
		const uint8_t *has_user, int64_t n, const MtlEvalOptions *opt, MtlTaskMetrics *m)
{
	UserRow    *rows = mtl_alloc(sizeof(UserRow) * (n + 1));
	double	   *s = mtl_alloc(sizeof(double) * (n + 1));
	double	   *l = mtl_alloc(sizeof(double) * (n + 1));
	Scored	   *ranked = mtl_alloc(sizeof(Scored) * (n + 1));
	int64_t		k = 0;
	double		sum = 0.0,
				weight = 0.0;
	double		ndcg[MTL_EVAL_MAX_K] = {0},
				recall[MTL_EVAL_MAX_K] = {0},
				mrr = 0.0;

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
		for (int64_t r = 0; r < j - i; r++)
		{
			ranked[r].score = s[r];
			ranked[r].label = l[r];
		}
		qsort(ranked, j - i, sizeof(Scored), CompareScored);
		m->ranking_users += RankUser(ranked, j - i, opt, ndcg, recall, &mrr);
		i = j;
	}
	m->gauc = weight > 0 ? sum / weight : NAN;
	for (int c = 0; c < MTL_EVAL_MAX_K; c++)
	{
		m->ndcg[c] = c < opt->n_k && m->ranking_users > 0 ? ndcg[c] / m->ranking_users : NAN;
		m->recall[c] = c < opt->n_k && m->ranking_users > 0 ? recall[c] / m->ranking_users : NAN;
	}
	m->mrr = m->ranking_users > 0 ? mrr / m->ranking_users : NAN;
	mtl_free(rows);
	mtl_free(s);
	mtl_free(l);
	mtl_free(ranked);
}

/* Means, equal-width bins of the predicted probability, and the expected calibration error. */
static void
Calibration(const double *score, const double *label, int64_t n, MtlTaskMetrics *m)
{
	double		predicted[MTL_CALIBRATION_BINS] = {0},
				observed[MTL_CALIBRATION_BINS] = {0},
				all_predicted = 0.0,
				all_observed = 0.0,
				ece = 0.0;

	for (int b = 0; b < MTL_CALIBRATION_BINS; b++)
		m->bins[b].count = 0;
	for (int64_t i = 0; i < n; i++)
	{
		double		p = fmin(fmax(score[i], 0.0), 1.0);
		int			b = (int) (p * MTL_CALIBRATION_BINS);

		if (b >= MTL_CALIBRATION_BINS)
			b = MTL_CALIBRATION_BINS - 1;
		m->bins[b].count++;
		predicted[b] += score[i];
		observed[b] += label[i] > 0.5;
		all_predicted += score[i];
		all_observed += label[i] > 0.5;
	}
	for (int b = 0; b < MTL_CALIBRATION_BINS; b++)
	{
		int64_t		c = m->bins[b].count;

		m->bins[b].mean_predicted = c > 0 ? predicted[b] / c : NAN;
		m->bins[b].observed = c > 0 ? observed[b] / c : NAN;
		if (c > 0)
			ece += (double) c / n * fabs(m->bins[b].mean_predicted - m->bins[b].observed);
	}
	m->mean_predicted = n > 0 ? all_predicted / n : NAN;
	m->observed = n > 0 ? all_observed / n : NAN;
	m->ece = n > 0 ? ece : NAN;
}

void
mtl_binary_metrics(const double *score, const double *label, const int64_t *user,
				   const uint8_t *has_user, int64_t n, const MtlEvalOptions *opt,
				   MtlTaskMetrics *m)
{
	MtlEvalOptions defaults;

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
	if (opt == NULL)
	{
		mtl_eval_options_default(&defaults);
		opt = &defaults;
	}
	m->ranking_users = 0;
	PerUser(score, label, user, has_user, n, opt, m);
	Calibration(score, label, n, m);
}

void
mtl_regression_metrics(const double *value, const double *label, int64_t n, MtlTaskMetrics *m)
{
	double		se = 0.0,
				ae = 0.0;

	m->count = n;
	m->auc = m->gauc = m->logloss = m->accuracy = m->f1 = NAN;
	m->mrr = m->mean_predicted = m->observed = m->ece = NAN;
	m->gauc_users = m->ranking_users = 0;
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

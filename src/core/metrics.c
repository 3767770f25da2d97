#include "metrics.h"

#include <math.h>
#include <stdlib.h>

#include "mem.h"

typedef struct ScoredLabel
{
	double		score;
	double		label;
} ScoredLabel;

static int
CompareScore(const void *a, const void *b)
{
	double		x = ((const ScoredLabel *) a)->score;
	double		y = ((const ScoredLabel *) b)->score;

	return x < y ? -1 : x > y;
}

double
mtl_auc(const double *score, const double *label, int64_t n)
{
	ScoredLabel *v = mtl_alloc(sizeof(ScoredLabel) * (n + 1));
	int64_t		m = 0;
	double		pos = 0,
				rank_sum = 0;

	for (int64_t i = 0; i < n; i++)
		if (!isnan(label[i]))
		{
			v[m].score = score[i];
			v[m].label = label[i] > 0.5 ? 1.0 : 0.0;
			pos += v[m].label;
			m++;
		}
	qsort(v, m, sizeof(ScoredLabel), CompareScore);
	for (int64_t i = 0; i < m;)
	{
		int64_t		j = i;
		double		group_pos = 0;

		while (j < m && v[j].score == v[i].score)
			group_pos += v[j++].label;
		/* ranks i+1 .. j share their average */
		rank_sum += group_pos * (i + 1 + j) / 2.0;
		i = j;
	}
	mtl_free(v);
	if (pos == 0 || pos == m)
		return NAN;
	return (rank_sum - pos * (pos + 1) / 2.0) / (pos * (m - pos));
}

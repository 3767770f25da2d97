#include "split.h"

#include <string.h>

#include "adam.h"
#include "grouped.h"
#include "layers.h"
#include "mem.h"
#include "threads.h"

int			mtl_split_min_rows = 32;
int			mtl_split_rows_always = 0;

struct MtlSplit
{
	const MtlModel *model;
	int			threads;
	MtlWork    *work[MTL_MAX_THREADS];	/* [0]: the caller's */
	float	   *grads[MTL_MAX_THREADS]; /* [0]: the caller's, per call; others zero between calls */
	/* the batch of the call running */
	const float *params;
	const int32_t *slots;
	const float *nums;
	const float *labels;
	int			B;
	int			parts;
	MtlLossOptions opt[MTL_MAX_THREADS];
	double		task_loss[MTL_MAX_THREADS][MTL_MAX_TASKS];
	int64_t		labelled[MTL_MAX_THREADS][MTL_MAX_TASKS];
	double		total[MTL_MAX_THREADS];
	size_t		reduce_from;	/* first parameter summed by slices */
	/* the Adam step running */
	MtlAdam    *adam;
	float	   *adam_params;
	size_t		adam_from,
				adam_to;
};

MtlSplit *
mtl_split_create(const MtlModel *model, MtlWork *work, int max_batch, int threads)
{
	MtlSplit   *s;

	if (threads > MTL_MAX_THREADS)
		threads = MTL_MAX_THREADS;
	if (threads < 2 || model->spec.loss_weighting == MTL_WEIGHTING_GRADNORM)
		return NULL;
	s = mtl_alloc(sizeof(MtlSplit));
	s->model = model;
	s->threads = threads;
	s->work[0] = work;
	for (int k = 1; k < threads; k++)
	{
		/* a part's rows need no more than this */
		s->work[k] = mtl_work_create(model, max_batch / 2 + 1);
		mtl_grouped_enable(model, s->work[k]);
		s->work[k]->dropout_state = work->dropout_state ^ (0x9E3779B97F4A7C15ULL * (uint64_t) k);
		s->grads[k] = mtl_alloc(sizeof(float) * model->layout.n_params);
	}
	return s;
}

void
mtl_split_free(MtlSplit *s)
{
	if (s == NULL)
		return;
	for (int k = 1; k < s->threads; k++)
	{
		mtl_work_free(s->work[k], s->model);
		mtl_free(s->grads[k]);
	}
	mtl_free(s);
}

static int
PartStart(const MtlSplit *s, int k)
{
	return (int) ((int64_t) s->B * k / s->parts);
}

static void
RunPart(void *arg, int k)
{
	MtlSplit   *s = arg;
	const MtlLayout *L = &s->model->layout;
	size_t		T = mtl_label_columns(&s->model->spec);
	size_t		from = PartStart(s, k);

	s->total[k] = mtl_batch_loss(s->model, s->work[k], s->params, s->grads[0] ? s->grads[k] : NULL,
								 s->slots + from * L->n_slots, s->nums + from * L->n_cols,
								 s->labels + from * T, PartStart(s, k + 1) - (int) from, &s->opt[k]);
}

/* y[from, to) += x[from, to), then x zero there */
static void
Move(float *y, float *x, size_t from, size_t to)
{
	for (size_t i = from; i < to; i += 1 << 20)
	{
		int			n = to - i < (1 << 20) ? (int) (to - i) : 1 << 20;

		mtl_add(y + i, x + i, n);
		memset(x + i, 0, sizeof(float) * n);
	}
}

/* Thread k's slice of [from, to), cut at multiples of 16 floats. */
static void
Slice(size_t from, size_t to, int k, int n, size_t *lo, size_t *hi)
{
	size_t		len = to - from;

	*lo = from + (len * k / n & ~(size_t) 15);
	*hi = k + 1 == n ? to : from + (len * (k + 1) / n & ~(size_t) 15);
}

/* Thread k adds its slice of every later part's block into the caller's gradient. */
static void
ReducePart(void *arg, int k)
{
	MtlSplit   *s = arg;
	size_t		lo,
				hi;

	Slice(s->reduce_from, s->model->layout.n_params, k, s->parts, &lo, &hi);
	for (int j = 1; j < s->parts; j++)
		Move(s->grads[0], s->grads[j], lo, hi);
}

/* Part k's embedding rows into the caller's gradient, by its slots. */
static void
AddRows(MtlSplit *s, int k)
{
	const MtlLayout *L = &s->model->layout;
	int			S = L->n_slots;

	for (size_t i = (size_t) PartStart(s, k) * S; i < (size_t) PartStart(s, k + 1) * S; i++)
		for (int c = 0; c < L->n_copies && s->slots[i] >= 0; c++)
		{
			/* a row met twice moves zeros the second time */
			size_t		at = (size_t) MTL_COPY_ROW(L, s->slots[i], c) * L->E;

			Move(s->grads[0], s->grads[k], at, at + L->E);
		}
}

/*
 * The parts' gradients into the caller's: dense parameters by slices over the
 * threads, and the embedding block too when it is smaller than the rows a
 * part's slots name; else those rows one by one.
 */
static void
Reduce(MtlSplit *s)
{
	const MtlLayout *L = &s->model->layout;
	size_t		dense0 = (size_t) (L->emb_rows * L->n_copies) * L->E;
	size_t		named = (size_t) (s->B / s->parts + 1) * L->n_slots * L->n_copies * L->E;

	s->reduce_from = dense0 <= named && !mtl_split_rows_always ? 0 : dense0;
	mtl_run_parts(s->parts, ReducePart, s);
	for (int k = 1; k < s->parts && s->reduce_from > 0; k++)
		AddRows(s, k);
}

/* Thread k's slice of an Adam step over [adam_from, adam_to), its gradient then zero. */
static void
AdamPart(void *arg, int k)
{
	MtlSplit   *s = arg;
	size_t		lo,
				hi;

	Slice(s->adam_from, s->adam_to, k, s->threads, &lo, &hi);
	mtl_adam_update(s->adam, s->adam_params, s->grads[0], lo, hi);
	memset(s->grads[0] + lo, 0, sizeof(float) * (hi - lo));
}

void
mtl_split_adam_update(MtlSplit *s, MtlAdam *adam, float *params, float *grads, size_t from,
					  size_t to)
{
	s->adam = adam;
	s->adam_params = params;
	s->grads[0] = grads;
	s->adam_from = from;
	s->adam_to = to;
	mtl_run_parts(s->threads, AdamPart, s);
}

double
mtl_split_batch_loss(MtlSplit *s, const float *params, float *grads, const int32_t *slots,
					 const float *nums, const float *labels, int B, MtlLossOptions *opt)
{
	int			T = s->model->spec.n_tasks;
	double		total = 0.0;

	s->parts = B / mtl_split_min_rows < s->threads ? B / mtl_split_min_rows : s->threads;
	if (s->parts < 2)
		return mtl_batch_loss(s->model, s->work[0], params, grads, slots, nums, labels, B, opt);
	s->params = params;
	s->slots = slots;
	s->nums = nums;
	s->labels = labels;
	s->B = B;
	s->grads[0] = grads;
	for (int k = 1; k < s->parts; k++)
		s->work[k]->dropout_mode = s->work[0]->dropout_mode;
	for (int k = 0; k < s->parts; k++)
	{
		MtlLossOptions o = {opt != NULL ? opt->task_scale : NULL, s->task_loss[k], s->labelled[k],
		NULL, B, k > 0};

		s->opt[k] = o;
	}
	mtl_run_parts(s->parts, RunPart, s);
	for (int k = 0; k < s->parts; k++)
		total += s->total[k];
	for (int t = 0; t < T && opt != NULL; t++)
	{
		double		loss = 0.0;
		int64_t		labelled = 0;

		for (int k = 0; k < s->parts; k++)
		{
			loss += s->task_loss[k][t];
			labelled += s->labelled[k][t];
		}
		if (opt->task_loss != NULL)
			opt->task_loss[t] = loss;
		if (opt->task_labelled != NULL)
			opt->task_labelled[t] = labelled;
	}
	if (grads != NULL)
		Reduce(s);
	return total;
}

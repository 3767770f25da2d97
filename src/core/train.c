#include "train.h"
#include "split.h"
#include "threads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adam.h"
#include "dataset.h"
#include "evaluate.h"
#include "grouped.h"
#include "loss.h"
#include "mem.h"
#include "rng.h"
#include "weighting.h"

const char *const mtl_phase_names[MTL_N_PHASES] = {
	"collect", "vocabulary", "encode_rows", "epochs", "validation", "measure", "encode_model"
};

double
mtl_now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Uncertainty weighting's c exp(-s_t) (1 under other weightings). */
static double
UncertaintyFactor(const MtlModel *model, const float *params, int t)
{
	if (model->spec.loss_weighting != MTL_WEIGHTING_UNCERTAINTY)
		return 1.0;
	return (model->spec.tasks[t].type == MTL_TASK_BINARY ? 1.0 : 0.5) *
		exp(-params[model->layout.loss_s + t]);
}

/* Loss term multiplier per task: weight, dynamic scale, uncertainty's factor. */
static double
TaskScale(const MtlModel *model, const float *params, const MtlLossOptions *opt, int t)
{
	double		scale = model->spec.tasks[t].weight * UncertaintyFactor(model, params, t);

	if (opt != NULL && opt->task_scale != NULL)
		scale *= opt->task_scale[t];
	return scale;
}

/*
 * Task t's summed loss over its labelled rows (each times its weight with
 * sample_weight); gradient of scale * it into dlogit. labels: [B x label columns].
 */
static double
TaskLoss(const MtlModel *model, MtlWork *work, float *const *dlogit, const float *labels,
		 int t, int B, float scale, int64_t *labelled)
{
	const MtlSpec *spec = &model->spec;
	const MtlTask *task = &spec->tasks[t];
	int			T = mtl_label_columns(spec);
	const float *w = spec->sample_weight ? labels + spec->n_tasks : NULL;
	const float *z[MTL_MAX_TASKS];
	const float *y[MTL_MAX_TASKS];
	float	   *dz[MTL_MAX_TASKS];
	int			chain = 0;

	if (task->type == MTL_TASK_REGRESSION)
	{
		float	   *tmp = work->dtower_act[t][spec->n_tower_layers];
		double		sum = mtl_squared_error(tmp, mtl_work_logit(work, t), 1, labels + t, T, w, B, scale);

		for (int r = 0; r < B; r++)
			*labelled += !isnan(labels[(size_t) r * T + t]);
		return sum;
	}
	for (int at = t; at >= 0; at = spec->tasks[at].given)
	{
		z[chain] = mtl_work_logit(work, at);
		y[chain] = labels + at;
		dz[chain] = dlogit[at];
		chain++;
	}
	return mtl_bce_chain(dz, z, 1, y, T, w, chain, B, scale, task->pos_weight, labelled);
}

double
mtl_batch_loss(const MtlModel *model, MtlWork *work, const float *params,
			   float *grads, const int32_t *slots, const float *nums,
			   const float *labels, int B, MtlLossOptions *opt)
{
	const MtlSpec *spec = &model->spec;
	int			T = spec->n_tasks;
	int			N = opt != NULL && opt->norm_rows > 0 ? opt->norm_rows : B;
	int			first = opt == NULL || !opt->later_part;
	float	   *dlogit[MTL_MAX_TASKS];
	double		total = 0.0;

	mtl_model_assemble(model, work, params, slots, nums, B);
	mtl_model_forward(model, work, params, B);
	/* the gradient buffer of the logit is free: tower backward reads it first */
	for (int t = 0; t < T; t++)
	{
		dlogit[t] = work->dtower_act[t][spec->n_tower_layers];
		memset(dlogit[t], 0, sizeof(float) * B);
	}
	for (int t = 0; t < T; t++)
	{
		double		scale = TaskScale(model, params, opt, t);
		int64_t		labelled = 0;
		double		sum = TaskLoss(model, work, dlogit, labels, t, B, (float) (scale / N), &labelled);

		total += scale * sum / N;
		if (spec->loss_weighting == MTL_WEIGHTING_UNCERTAINTY)
		{
			/* d/ds of c exp(-s) w L + s/2 */
			total += first ? 0.5 * params[model->layout.loss_s + t] : 0.0;
			if (grads != NULL)
				grads[model->layout.loss_s + t] += (float) ((first ? 0.5 : 0.0) - scale * sum / N);
		}
		if (opt != NULL && opt->task_loss != NULL)
			opt->task_loss[t] = sum / N;
		if (opt != NULL && opt->task_labelled != NULL)
			opt->task_labelled[t] = labelled;
	}
	if (grads != NULL)
	{
		mtl_model_backward_towers(model, work, params, grads, dlogit, B);
		if (opt != NULL && opt->shared_norm != NULL)
			mtl_model_shared_grad_norms(model, work, B, opt->shared_norm);
		mtl_model_backward_shared(model, work, params, grads, B);
		mtl_model_backward_embeddings(model, work, params, grads, slots, nums, B);
	}
	return total;
}

void
mtl_label_stats_add(MtlLabelStats *st, const MtlSpec *spec, const float *y)
{
	for (int t = 0; t < spec->n_tasks; t++)
	{
		int			given_holds = 1;

		for (int at = spec->tasks[t].given; at >= 0; at = spec->tasks[at].given)
			given_holds &= y[at] == 1.0f;
		if (isnan(y[t]) || !given_holds)
			continue;
		st->sum[t] += y[t];
		st->sum2[t] += (double) y[t] * y[t];
		st->count[t]++;
	}
}

void
mtl_label_stats_merge(MtlLabelStats *a, const MtlLabelStats *b)
{
	for (int t = 0; t < MTL_MAX_TASKS; t++)
	{
		a->count[t] += b->count[t];
		a->sum[t] += b->sum[t];
		a->sum2[t] += b->sum2[t];
	}
}

void
mtl_label_stats_apply(MtlModel *model, const MtlLabelStats *st, int first_new)
{
	MtlSpec    *spec = &model->spec;

	for (int t = first_new; t < spec->n_tasks; t++)
	{
		MtlTask    *task = &spec->tasks[t];
		int64_t		n = st->count[t];

		task->target_mean = 0.0f;
		task->target_std = 1.0f;
		if (task->type == MTL_TASK_REGRESSION && n > 0)
		{
			double		mean = st->sum[t] / n;
			double		std = sqrt(fmax(st->sum2[t] / n - mean * mean, 0.0));

			task->target_mean = (float) mean;
			task->target_std = std > 1e-6 ? (float) std : 1.0f;
		}
		/* a binary label's sum is its positives */
		if (task->type == MTL_TASK_BINARY && st->sum[t] > 0 && st->sum[t] < n)
			model->params[model->layout.tower_b[t][spec->n_tower_layers]] =
				(float) log(st->sum[t] / (n - st->sum[t]));
	}
}

/*
 * One pass over every row's labels: regression targets' mean and std (new
 * tasks; old ones keep what they were trained with, as a continued model's
 * towers expect them), and each new binary task's base rate among the rows
 * where its parents hold, to start its output bias at the log-odds.
 */
static void
LabelStatistics(MtlModel *model, MtlDataset *data, int first_new)
{
	const MtlRowStore *store = data->store;
	MtlLabelStats st;
	void	   *buffer = mtl_alloc(mtl_rows_chunk_bytes(store));

	memset(&st, 0, sizeof(st));
	for (int64_t c = 0; c < store->n_chunks; c++)
	{
		const uint8_t *rows;
		int			n = mtl_rows_chunk(store, c, buffer, &rows);

		for (int k = 0; k < n; k++)
			mtl_label_stats_add(&st, &model->spec, mtl_chunk_labels(store, rows, k));
	}
	mtl_free(buffer);
	mtl_label_stats_apply(model, &st, first_new);
	for (int t = 0; t < model->spec.n_tasks; t++)
		if (model->spec.tasks[t].type == MTL_TASK_REGRESSION)
		{
			data->label_mean[t] = model->spec.tasks[t].target_mean;
			data->label_std[t] = model->spec.tasks[t].target_std;
		}
}

typedef struct BatchBuffers
{
	int32_t    *slots;
	float	   *nums;
	float	   *labels;
	int32_t    *scratch_slots;	/* the batch before its scenario sort */
	float	   *scratch_nums;
	float	   *scratch_labels;
	int32_t    *touched;		/* distinct embedding rows of the batch */
	int64_t    *stamp;			/* per embedding row: last step that used it */
	int32_t    *gap;			/* per touched row: steps since it was last used */
	int64_t    *sort;			/* [batch] scenario sort keys */
} BatchBuffers;

static int
CompareKeys(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return x < y ? -1 : x > y;
}

void
mtl_scenario_order(const MtlModel *model, int64_t *keys, int T, const int32_t *slots,
				   const float *nums, const float *labels, int B, int32_t *to_slots,
				   float *to_nums, float *to_labels)
{
	int			S = model->layout.n_slots;
	int			n_num = model->layout.n_cols;

	for (int r = 0; r < B; r++)
		keys[r] = ((int64_t) mtl_model_row_scenario(model, slots + (size_t) r * S) << 32) | r;
	qsort(keys, B, sizeof(int64_t), CompareKeys);
	for (int r = 0; r < B; r++)
	{
		int			from = (int) (keys[r] & 0xFFFFFFFF);

		memcpy(to_slots + (size_t) r * S, slots + (size_t) from * S, sizeof(int32_t) * S);
		memcpy(to_nums + (size_t) r * n_num, nums + (size_t) from * n_num, sizeof(float) * n_num);
		memcpy(to_labels + (size_t) r * T, labels + (size_t) from * T, sizeof(float) * T);
	}
}

/* The batch in the scratch buffers into buf, ordered by scenario. */
static void
ScenarioSort(const MtlModel *model, BatchBuffers *buf, int B)
{
	mtl_scenario_order(model, buf->sort, mtl_label_columns(&model->spec), buf->scratch_slots,
					   buf->scratch_nums, buf->scratch_labels, B, buf->slots, buf->nums,
					   buf->labels);
}

#define GATHER_AHEAD 16
#define GATHER_PART_ROWS 64

typedef struct Gather
{
	const MtlModel *model;
	const MtlDataset *data;
	const MtlRowRef *const *refs;
	const float *const *labels;
	int			B;
	int			parts;
	int32_t    *slots;
	float	   *nums;
	float	   *lab;
} Gather;

/* Thread k's rows of a batch into the buffers (rows are read-only: any thread may). */
static void
ExpandPart(void *arg, int k)
{
	const Gather *g = arg;
	int			S = g->model->layout.n_slots;
	int			n_num = g->model->layout.n_cols;
	int			T = mtl_label_columns(&g->model->spec);
	int			from = (int) ((int64_t) g->B * k / g->parts),
				to = (int) ((int64_t) g->B * (k + 1) / g->parts);

	for (int r = from; r < to; r++)
	{
		/* rows are scattered over the store: fetch a few ahead, then their feature sets */
		if (r + GATHER_AHEAD < to)
		{
			__builtin_prefetch(g->refs[r + GATHER_AHEAD]);
			__builtin_prefetch(g->labels[r + GATHER_AHEAD]);
		}
		if (r + GATHER_AHEAD / 2 < to)
			mtl_dataset_prefetch_index(g->data, g->refs[r + GATHER_AHEAD / 2]);
		if (r + GATHER_AHEAD / 4 < to)
			mtl_dataset_prefetch(g->data, g->refs[r + GATHER_AHEAD / 4]);
		mtl_dataset_expand(g->data, g->refs[r], g->labels[r], g->slots + (size_t) r * S,
						   g->nums + (size_t) r * n_num, g->lab + (size_t) r * T);
	}
}

/*
 * Expand a batch's rows into the buffers (over the training threads),
 * dropping id embeddings with probability drop, ordered by scenario so that
 * each scenario's tower weights are built once per batch and its rows go
 * through one sgemm.
 */
static void
GatherBatch(const MtlModel *model, const MtlDataset *data, const MtlRowRef *const *refs,
			const float *const *labels, int B, BatchBuffers *buf, MtlRng *rng, double drop)
{
	int			S = model->layout.n_slots;
	int			sorted = model->layout.n_scenarios > 0;
	int			threads = model->spec.threads;
	int			parts = B / GATHER_PART_ROWS < threads ? B / GATHER_PART_ROWS : threads;
	Gather		g = {model, data, refs, labels, B, parts > 1 ? parts : 1,
		sorted ? buf->scratch_slots : buf->slots,
		sorted ? buf->scratch_nums : buf->nums,
	sorted ? buf->scratch_labels : buf->labels};

	mtl_run_parts(g.parts, ExpandPart, &g);
	/* the draws in row order, whatever the threads */
	for (int r = 0; r < B && drop > 0.0; r++)
	{
		if (mtl_rng_uniform(rng) < drop)
			g.slots[(size_t) r * S] = -1;
		if (mtl_rng_uniform(rng) < drop)
			g.slots[(size_t) r * S + 1] = -1;
	}
	if (sorted)
		ScenarioSort(model, buf, B);
}

/*
 * Where rows come from, batch by batch.
 *
 * Up to MTL_SHUFFLE_ALL_CHUNKS chunks in memory: one seeded shuffle of all
 * rows puts the held-out rows at its tail, and each epoch shuffles the
 * training rows.
 * More, or rows spilled to a file ("streamed"): a row is held out by a seeded
 * hash of its number; each epoch visits the chunks in a shuffled order,
 * MTL_STREAM_CHUNKS at a time, and shuffles the rows of those chunks before
 * cutting batches. A spilled file is then read chunk by chunk, and rows in
 * memory are gathered from a window of 16 chunks (7 MB with two tasks)
 * instead of from anywhere in hundreds of MB: on 20M rows a whole shuffle
 * cost a cache and TLB miss per row, about a fifth of the epoch.
 */
#define PART_TRAIN 0
#define PART_VALIDATION 1

typedef struct RowSource
{
	const MtlDataset *data;
	int			streamed;
	int64_t		n_train;
	int64_t		n_val;
	int			stop;			/* set: the batch loops end early */
	/* in memory */
	int64_t    *order;			/* [0, n_train) training, then validation */
	int			borrowed_order; /* a view's: owned by the source it reads */
	/* streamed */
	double		val_fraction;
	uint64_t	val_seed;
	int64_t    *chunk_order;
	uint8_t    *chunk_buffer;	/* MTL_STREAM_CHUNKS chunks read from the file */
	const MtlRowRef **group_refs;	/* rows of the chunks being visited */
	const float **group_labels;
	int64_t    *group_order;
	/* a batch */
	const MtlRowRef **refs;
	const float **labels;
} RowSource;

typedef void (*BatchFn) (void *ctx, const MtlRowRef *const *refs, const float *const *labels, int B);

static int
HeldOut(const RowSource *src, int64_t row)
{
	uint64_t	h = mtl_hash64(&row, sizeof(row), src->val_seed);

	return (double) (h >> 11) * (1.0 / 9007199254740992.0) < src->val_fraction;
}

static void
SourceCreate(RowSource *src, const MtlDataset *data, const MtlSpec *spec, int batch, MtlRng *rng)
{
	const MtlRowStore *store = data->store;
	int64_t		n = store->n_rows;

	memset(src, 0, sizeof(*src));
	src->data = data;
	src->streamed = store->n_spilled > 0 || store->n_chunks > MTL_SHUFFLE_ALL_CHUNKS;
	src->refs = mtl_alloc(sizeof(MtlRowRef *) * batch);
	src->labels = mtl_alloc(sizeof(float *) * batch);
	if (!src->streamed)
	{
		int64_t		n_val = (int64_t) (n * (double) spec->validation_fraction);

		src->n_val = n_val >= n ? n - 1 : n_val;	/* at least one row trains */
		src->n_train = n - src->n_val;
		src->order = mtl_alloc(sizeof(int64_t) * n);
		for (int64_t i = 0; i < n; i++)
			src->order[i] = i;
		if (src->n_val > 0)
			mtl_rng_shuffle(rng, src->order, n);
		return;
	}
	src->val_fraction = spec->validation_fraction;
	src->val_seed = spec->seed ^ 0x48454C444F5554ULL;
	for (int64_t r = 0; r < n; r++)
		src->n_val += HeldOut(src, r);
	if (src->n_val == n)
		src->val_fraction = 0.0, src->n_val = 0;	/* nothing would train */
	src->n_train = n - src->n_val;
	src->chunk_order = mtl_alloc(sizeof(int64_t) * (store->n_chunks + 1));
	src->chunk_buffer = mtl_alloc(mtl_rows_chunk_bytes(store) * MTL_STREAM_CHUNKS);
	src->group_refs = mtl_alloc(sizeof(MtlRowRef *) * MTL_CHUNK_ROWS * MTL_STREAM_CHUNKS);
	src->group_labels = mtl_alloc(sizeof(float *) * MTL_CHUNK_ROWS * MTL_STREAM_CHUNKS);
	src->group_order = mtl_alloc(sizeof(int64_t) * MTL_CHUNK_ROWS * MTL_STREAM_CHUNKS);
}

/*
 * A second reader of src's rows with buffers of its own, so validation can
 * run between two training batches of a pass (streamed: while a group of
 * chunks is being trained on). It reads src's split and order.
 */
static void
SourceView(RowSource *view, const RowSource *src, int batch)
{
	const MtlRowStore *store = src->data->store;

	*view = *src;
	view->stop = 0;
	view->borrowed_order = 1;
	view->refs = mtl_alloc(sizeof(MtlRowRef *) * batch);
	view->labels = mtl_alloc(sizeof(float *) * batch);
	if (!src->streamed)
		return;
	view->chunk_order = mtl_alloc(sizeof(int64_t) * (store->n_chunks + 1));
	view->chunk_buffer = mtl_alloc(mtl_rows_chunk_bytes(store) * MTL_STREAM_CHUNKS);
	view->group_refs = mtl_alloc(sizeof(MtlRowRef *) * MTL_CHUNK_ROWS * MTL_STREAM_CHUNKS);
	view->group_labels = mtl_alloc(sizeof(float *) * MTL_CHUNK_ROWS * MTL_STREAM_CHUNKS);
	view->group_order = mtl_alloc(sizeof(int64_t) * MTL_CHUNK_ROWS * MTL_STREAM_CHUNKS);
}

static void
SourceFree(RowSource *src)
{
	mtl_free(src->refs);
	mtl_free(src->labels);
	if (!src->borrowed_order)
		mtl_free(src->order);
	mtl_free(src->chunk_order);
	mtl_free(src->chunk_buffer);
	mtl_free(src->group_refs);
	mtl_free(src->group_labels);
	mtl_free(src->group_order);
}

/* In memory: rows order[from, from + n) in batches. */
static void
MemoryBatches(RowSource *src, const int64_t *rows, int64_t n, int batch, BatchFn fn, void *ctx)
{
	const MtlRowStore *store = src->data->store;

	for (int64_t from = 0; from < n && !src->stop; from += batch)
	{
		int			B = (int) (n - from < batch ? n - from : batch);

		for (int r = 0; r < B; r++)
		{
			src->refs[r] = mtl_rows_ref(store, rows[from + r]);
			src->labels[r] = mtl_rows_labels(store, rows[from + r]);
		}
		fn(ctx, src->refs, src->labels, B);
	}
}

/* Streamed: the part's rows of chunks chunk_order[from, to), read and optionally shuffled. */
static int64_t
LoadGroup(RowSource *src, int64_t from, int64_t to, int part, int shuffle, MtlRng *rng)
{
	const MtlRowStore *store = src->data->store;
	size_t		chunk_bytes = mtl_rows_chunk_bytes(store);
	int64_t		n = 0;

	for (int64_t g = from; g < to; g++)
	{
		int64_t		c = src->chunk_order[g];
		const uint8_t *rows;
		int			n_rows = mtl_rows_chunk(store, c, src->chunk_buffer + (g - from) * chunk_bytes,
											&rows);

		for (int k = 0; k < n_rows; k++)
			if (HeldOut(src, c * MTL_CHUNK_ROWS + k) == part)
			{
				src->group_refs[n] = mtl_chunk_ref(store, rows, k);
				src->group_labels[n] = mtl_chunk_labels(store, rows, k);
				src->group_order[n] = n;
				n++;
			}
	}
	if (shuffle)
		mtl_rng_shuffle(rng, src->group_order, n);
	return n;
}

static void
StreamBatches(RowSource *src, int part, int shuffle, MtlRng *rng, int batch, int64_t limit,
			  BatchFn fn, void *ctx)
{
	const MtlRowStore *store = src->data->store;
	int64_t		done = 0;

	for (int64_t c = 0; c < store->n_chunks; c++)
		src->chunk_order[c] = c;
	if (shuffle)
		mtl_rng_shuffle(rng, src->chunk_order, store->n_chunks);
	for (int64_t g = 0; g < store->n_chunks && done < limit && !src->stop; g += MTL_STREAM_CHUNKS)
	{
		int64_t		to = g + MTL_STREAM_CHUNKS < store->n_chunks ? g + MTL_STREAM_CHUNKS : store->n_chunks;
		int64_t		n = LoadGroup(src, g, to, part, shuffle, rng);

		if (n > limit - done)
			n = limit - done;
		for (int64_t from = 0; from < n && !src->stop; from += batch)
		{
			int			B = (int) (n - from < batch ? n - from : batch);

			for (int r = 0; r < B; r++)
			{
				src->refs[r] = src->group_refs[src->group_order[from + r]];
				src->labels[r] = src->group_labels[src->group_order[from + r]];
			}
			fn(ctx, src->refs, src->labels, B);
		}
		done += n;
	}
}

/* Up to limit rows of a part in batches; the training part reshuffled when shuffle is set. */
static void
ForBatches(RowSource *src, int part, int shuffle, MtlRng *rng, int batch, int64_t limit,
		   BatchFn fn, void *ctx)
{
	if (src->streamed)
	{
		StreamBatches(src, part, shuffle, rng, batch, limit, fn, ctx);
		return;
	}
	if (part == PART_TRAIN)
	{
		if (shuffle)
			mtl_rng_shuffle(rng, src->order, src->n_train);
		MemoryBatches(src, src->order, src->n_train < limit ? src->n_train : limit, batch, fn, ctx);
	}
	else
		MemoryBatches(src, src->order + src->n_train, src->n_val < limit ? src->n_val : limit,
					  batch, fn, ctx);
}

/* The embedding rows (of every copy) a batch used, once each. */
static int
CollectTouchedRows(const MtlModel *model, BatchBuffers *buf, int B, int64_t step)
{
	const MtlLayout *L = &model->layout;
	int			n = 0;

	for (size_t i = 0; i < (size_t) B * L->n_slots; i++)
		for (int c = 0; c < L->n_copies; c++)
		{
			int32_t		row = buf->slots[i];

			if (row < 0)
				continue;
			row = (int32_t) MTL_COPY_ROW(L, row, c);
			if (buf->stamp[row] != step)
			{
				int64_t		gap = step - buf->stamp[row];

				buf->gap[n] = gap > INT32_MAX ? INT32_MAX : (int32_t) gap;
				buf->stamp[row] = step;
				buf->touched[n++] = row;
			}
		}
	return n;
}

size_t		mtl_dense_step_max_embeddings = 262144;

/*
 * A lazy step skips the rows a batch did not use, and with them the
 * embedding penalty those steps would have added (dense steps add it to every
 * row every step, which is what shrinks rarely seen ids). A used row takes
 * the penalty of the steps it missed at once: gap times.
 */
static void
SkippedPenalty(const MtlAdam *adam, const float *params, float *grads, const BatchBuffers *buf,
			   int n_touched, int E)
{
	if (adam->l2_embeddings <= 0.0f)
		return;
	for (int k = 0; k < n_touched; k++)
	{
		size_t		at = (size_t) buf->touched[k] * E;
		float		extra = adam->l2_embeddings * (float) (buf->gap[k] - 1);

		if (extra > 0.0f)
			for (int i = 0; i < E; i++)
				grads[at + i] += extra * params[at + i];
	}
}

/* A batch's loss (and gradient into grads) over the split's threads, or on this one. */
static double
BatchLoss(const MtlModel *model, MtlWork *work, MtlSplit *split, float *grads,
		  const BatchBuffers *buf, int B, MtlLossOptions *opt)
{
	if (split != NULL)
		return mtl_split_batch_loss(split, model->params, grads, buf->slots, buf->nums,
									buf->labels, B, opt);
	return mtl_batch_loss(model, work, model->params, grads, buf->slots, buf->nums, buf->labels,
						  B, opt);
}

/* Adam's step over [from, to), grads zero there afterwards. */
static void
DenseStep(MtlSplit *split, MtlAdam *adam, float *params, float *grads, size_t from, size_t to)
{
	if (split != NULL)
	{
		mtl_split_adam_update(split, adam, params, grads, from, to);
		return;
	}
	mtl_adam_update(adam, params, grads, from, to);
	memset(grads + from, 0, sizeof(float) * (to - from));
}

static void
TrainStep(MtlModel *model, MtlWork *work, MtlSplit *split, MtlAdam *adam, float *grads,
		  BatchBuffers *buf, int B, MtlWeighting *wt)
{
	const MtlLayout *L = &model->layout;
	const MtlSpec *spec = &model->spec;
	size_t		dense0 = (size_t) (L->emb_rows * L->n_copies) * L->E;
	int			lazy = adam->lazy_rows || dense0 > mtl_dense_step_max_embeddings;
	int			n_touched = 0;
	MtlLossOptions opt = {wt->scale, wt->loss, wt->labelled, NULL, 0, 0};

	if (spec->loss_weighting == MTL_WEIGHTING_GRADNORM)
		opt.shared_norm = wt->norm;
	work->dropout_mode = MTL_DROPOUT_DRAW;
	BatchLoss(model, work, split, grads, buf, B, &opt);
	work->dropout_mode = MTL_DROPOUT_OFF;
	if (spec->loss_weighting == MTL_WEIGHTING_GRADNORM)
		mtl_gradnorm_step(wt, spec->gradnorm_alpha);
	mtl_adam_begin(adam);
	if (lazy)
		n_touched = CollectTouchedRows(model, buf, B, adam->t);
	if (spec->clip_norm > 0)
		mtl_clip_gradients(grads, lazy ? dense0 : 0, L->n_params, buf->touched, n_touched, L->E,
						   spec->clip_norm);
	if (adam->from > 0)
	{
		/* frozen below adam->from (never inside the embeddings): step the rest, clear all */
		mtl_adam_update(adam, model->params, grads, adam->from, L->n_params);
		if (lazy)
			for (int k = 0; k < n_touched; k++)
				memset(grads + (size_t) buf->touched[k] * L->E, 0, sizeof(float) * L->E);
		else
			memset(grads, 0, sizeof(float) * dense0);
		memset(grads + dense0, 0, sizeof(float) * L->n_dense);
		return;
	}
	if (!lazy)
	{
		/* every row steps, as torch.optim.Adam: momentum keeps moving rows a batch missed */
		DenseStep(split, adam, model->params, grads, 0, L->n_params);
		return;
	}
	/* large catalogs: only the rows the batch used (lazy Adam), so a step stays cheap */
	DenseStep(split, adam, model->params, grads, dense0, L->n_params);
	SkippedPenalty(adam, model->params, grads, buf, n_touched, L->E);
	mtl_adam_update_rows(adam, model->params, grads, buf->touched, n_touched, L->E);
	for (int k = 0; k < n_touched; k++)
		memset(grads + (size_t) buf->touched[k] * L->E, 0, sizeof(float) * L->E);
}

/* The fixed-weight sum of task losses: what epochs are compared by. */
static double
FixedLoss(const MtlSpec *spec, const double *task_loss)
{
	double		total = 0.0;

	for (int t = 0; t < spec->n_tasks; t++)
		total += spec->tasks[t].weight * task_loss[t];
	return total;
}

/* What the passes over batches share. */
typedef struct Pass
{
	MtlModel   *model;
	MtlWork    *work;
	MtlSplit   *split;			/* threads > 1: each batch's rows over threads; else NULL */
	const MtlDataset *data;
	BatchBuffers *buf;
	MtlRng	   *rng;
	/* training */
	MtlAdam    *adam;
	float	   *grads;
	MtlWeighting *wt;
	const MtlTrainCallbacks *cb;
	double		drop;
	double		loss;			/* summed over rows */
	double		task_sum[MTL_MAX_TASKS];
	int64_t		rows;
	/* gates */
	double		gate_sums[MTL_MAX_LEVELS][MTL_MAX_OWNERS][MTL_MAX_EXPERTS];
	int			batch;
	/* validation while training (Validate) */
	struct EarlyStop *early;
	RowSource  *train_src;		/* the source whose loops a stop ends */
	RowSource  *val_src;		/* a view for checks inside an epoch; NULL: at epoch ends only */
	int64_t		since_check;	/* training rows since the last check */
	/* held-out metrics */
	int64_t		n_val;
	double	   *score;			/* [tasks x n_val] */
	double	   *label;
	double	   *weight;			/* each row's weight (sample_weight), else NULL */
	int64_t		count[MTL_MAX_TASKS];
} Pass;

/*
 * Early stopping: the validation loss is measured at each epoch's end and,
 * with validate_every, every that many training rows inside an epoch; the
 * best parameters are kept, and training stops after patience checks
 * without a lower loss.
 */
typedef struct EarlyStop
{
	double		best_loss;
	double		last_loss;
	int			since_best;
	int			best_epoch;		/* the epoch the best check fell in (1-based), 0: none */
	int			epoch;			/* the epoch being trained (1-based) */
	float	   *best;			/* the parameters at the best check */
	int			done;			/* patience ran out */
} EarlyStop;

static double ValidationLoss(Pass *p, RowSource *src, int batch);

static double
Validate(Pass *p, RowSource *src)
{
	EarlyStop  *es = p->early;
	Pass		v = *p;			/* its own sums: a check may fall inside a training pass */
	double		loss = ValidationLoss(&v, src, p->batch);
	int			patience = p->model->spec.patience;

	p->since_check = 0;
	es->last_loss = loss;
	if (loss < es->best_loss)
	{
		es->best_loss = loss;
		es->best_epoch = es->epoch;
		memcpy(es->best, p->model->params, sizeof(float) * p->model->layout.n_params);
		es->since_best = 0;
	}
	else
		es->since_best++;
	if (patience > 0 && es->since_best >= patience)
	{
		es->done = 1;
		p->train_src->stop = 1;
	}
	return loss;
}

static void
TrainBatch(void *ctx, const MtlRowRef *const *refs, const float *const *labels, int B)
{
	Pass	   *p = ctx;

	if (p->cb && p->cb->interrupt)
		p->cb->interrupt(p->cb->arg);
	GatherBatch(p->model, p->data, refs, labels, B, p->buf, p->rng, p->drop);
	TrainStep(p->model, p->work, p->split, p->adam, p->grads, p->buf, B, p->wt);
	p->loss += B * FixedLoss(&p->model->spec, p->wt->loss);
	for (int t = 0; t < p->model->spec.n_tasks; t++)
		p->task_sum[t] += B * p->wt->loss[t];
	p->rows += B;
	p->since_check += B;
	if (p->val_src != NULL && p->since_check >= p->model->spec.validate_every)
	{
		double		loss = Validate(p, p->val_src);

		if (p->cb && p->cb->check_done)
			p->cb->check_done(p->cb->arg, p->early->epoch, p->rows, loss, p->early->since_best == 0);
	}
}

static void
ValidationBatch(void *ctx, const MtlRowRef *const *refs, const float *const *labels, int B)
{
	Pass	   *p = ctx;
	double		task_loss[MTL_MAX_TASKS];
	MtlLossOptions opt = {NULL, task_loss, NULL, NULL, 0, 0};

	if (p->cb && p->cb->interrupt)
		p->cb->interrupt(p->cb->arg);
	GatherBatch(p->model, p->data, refs, labels, B, p->buf, p->rng, 0.0);
	BatchLoss(p->model, p->work, p->split, NULL, p->buf, B, &opt);
	p->loss += B * FixedLoss(&p->model->spec, task_loss);
	p->rows += B;
}

/* Mean fixed-weight loss over the held-out rows, in batches, without dropout. */
static double
ValidationLoss(Pass *p, RowSource *src, int batch)
{
	p->loss = 0.0;
	p->rows = 0;
	ForBatches(src, PART_VALIDATION, 0, p->rng, batch, INT64_MAX, ValidationBatch, p);
	return p->rows > 0 ? p->loss / p->rows : NAN;
}

/* A batch's forward pass with the current parameters, no dropout. */
static void
ForwardBatch(Pass *p, const MtlRowRef *const *refs, const float *const *labels, int B)
{
	if (p->cb && p->cb->interrupt)
		p->cb->interrupt(p->cb->arg);
	GatherBatch(p->model, p->data, refs, labels, B, p->buf, p->rng, 0.0);
	mtl_model_assemble(p->model, p->work, p->model->params, p->buf->slots, p->buf->nums, B);
	mtl_model_forward(p->model, p->work, p->model->params, B);
}

static void
GateBatch(void *ctx, const MtlRowRef *const *refs, const float *const *labels, int B)
{
	Pass	   *p = ctx;
	const MtlLayout *L = &p->model->layout;

	ForwardBatch(p, refs, labels, B);
	for (int k = 0; k < L->n_levels; k++)
		for (int o = 0; o <= p->model->spec.n_tasks; o++)
			for (int r = 0; r < B; r++)
				for (int j = 0; j < L->levels[k].gate_n[o]; j++)
					p->gate_sums[k][o][j] += p->work->gate[k][o][(size_t) r * L->levels[k].gate_n[o] + j];
	p->rows += B;
}

/*
 * Mean gate weights over up to GATE_ROWS training rows with the final
 * parameters: how much each task's output leans on each expert.
 */
#define GATE_ROWS 20000

static void
MeasureGates(Pass *p, RowSource *src, int batch, MtlTrainSummary *summary)
{
	const MtlLayout *L = &p->model->layout;

	memset(p->gate_sums, 0, sizeof(p->gate_sums));
	p->rows = 0;
	ForBatches(src, PART_TRAIN, 0, p->rng, batch, GATE_ROWS, GateBatch, p);
	summary->gate_rows = p->rows;
	for (int k = 0; k < L->n_levels; k++)
		for (int o = 0; o <= p->model->spec.n_tasks; o++)
			for (int j = 0; j < L->levels[k].gate_n[o]; j++)
				summary->gate_use[k][o][j] = p->rows > 0 ? (float) (p->gate_sums[k][o][j] / p->rows) : 0.0f;
}

/* One task's held-out outputs and labels (label units) into its metrics. */
static void
HoldoutTask(const MtlTask *task, const double *score, const double *label, int64_t n,
			MtlHoldout *h)
{
	MtlTaskMetrics m;
	uint8_t    *anonymous = mtl_alloc(n + 1);

	memset(anonymous, 0, n + 1);
	if (task->type == MTL_TASK_REGRESSION)
		mtl_regression_metrics(score, label, n, &m);
	else
		mtl_binary_metrics(score, label, NULL, anonymous, n, NULL, &m);
	h->rows = n;
	h->auc = task->type == MTL_TASK_REGRESSION ? NAN : m.auc;
	h->logloss = task->type == MTL_TASK_REGRESSION ? NAN : m.logloss;
	h->rmse = task->type == MTL_TASK_REGRESSION ? m.rmse : NAN;
	h->mae = task->type == MTL_TASK_REGRESSION ? m.mae : NAN;
	mtl_free(anonymous);
}

static void
HoldoutBatch(void *ctx, const MtlRowRef *const *refs, const float *const *labels, int B)
{
	Pass	   *p = ctx;
	int			T = p->model->spec.n_tasks;
	int			C = mtl_label_columns(&p->model->spec);

	ForwardBatch(p, refs, labels, B);
	for (int t = 0; t < T; t++)
	{
		const MtlTask *task = &p->model->spec.tasks[t];
		const float *logit = mtl_work_logit(p->work, t);

		for (int r = 0; r < B; r++)
		{
			float		y = p->buf->labels[(size_t) r * C + t];

			if (isnan(y) || p->count[t] >= p->n_val)
				continue;
			/* a binary task's logit: MeasureHoldout calibrates it first */
			p->score[t * p->n_val + p->count[t]] = task->type == MTL_TASK_BINARY ?
				(double) logit[r] : mtl_task_output(task, logit[r]);
			p->label[t * p->n_val + p->count[t]] = task->type == MTL_TASK_REGRESSION ?
				(double) y * task->target_std + task->target_mean : y;
			if (p->weight != NULL)
				p->weight[t * p->n_val + p->count[t]] = p->buf->labels[(size_t) r * C + T];
			p->count[t]++;
		}
	}
}

/* Training rows the intercepts are also calibrated on, besides the held-out ones. */
#define MTL_CALIBRATION_ROWS 262144

/*
 * A binary task's intercept: the shift d of its output bias after which the
 * mean probability of the held-out rows and of up to MTL_CALIBRATION_ROWS
 * training rows is their observed rate (Newton on
 * sum w sigmoid(z + d + ln rate) = sum w y). Training ends wherever its last
 * noisy steps left the bias; this makes the probabilities honest on average.
 * With negative_rate, a kept negative stands for 1 / rate of them (w), so the
 * scores, which add ln(rate), are honest on all the rows; with sample
 * weights (weight, NULL: none) a row stands for its weight of them, as in
 * training. z: the rows' logits, shifted too. No shift with one class.
 */
static void
CalibrateIntercept(MtlModel *model, int t, double *z, const double *y, const double *weight,
				   int64_t n)
{
	float		rate = model->spec.tasks[t].negative_rate;
	double		offset = rate > 0.0f && rate < 1.0f ? log(rate) : 0.0,
				negative_weight = rate > 0.0f && rate < 1.0f ? 1.0 / rate : 1.0,
				positives = 0.0,
				negatives = 0.0,
				d = 0.0;

	for (int64_t i = 0; i < n; i++)
	{
		double		w = weight != NULL ? weight[i] : 1.0;

		positives += y[i] > 0.5 ? w : 0.0;
		negatives += y[i] <= 0.5 ? w : 0.0;
	}
	if (positives <= 0.0 || negatives <= 0.0)
		return;
	for (int it = 0; it < 100; it++)
	{
		double		f = -positives,
					g = 0.0,
					step;

		for (int64_t i = 0; i < n; i++)
		{
			double		q = 1.0 / (1.0 + exp(-(z[i] + d + offset))),
						w = (y[i] > 0.5 ? 1.0 : negative_weight) * (weight != NULL ? weight[i] : 1.0);

			f += w * q;
			g += w * q * (1.0 - q);
		}
		if (!(g > 0.0))
			return;
		step = fmax(-1.0, fmin(1.0, f / g));
		d -= step;
		if (fabs(step) < 1e-9)
			break;
	}
	if (!isfinite(d))
		return;
	model->params[model->layout.tower_b[t][model->spec.n_tower_layers]] += (float) d;
	for (int64_t i = 0; i < n; i++)
		z[i] += (float) d;
}

/*
 * Each task's metrics on the held-out rows with the kept parameters, so a
 * model (and a registry version) says how well it does on rows it did not
 * train on; binary tasks' intercepts calibrated on them first.
 */
static void
MeasureHoldout(Pass *p, RowSource *src, int batch, MtlTrainSummary *summary)
{
	int			T = p->model->spec.n_tasks;
	int64_t		n = src->n_val;
	int64_t		train = src->n_train < MTL_CALIBRATION_ROWS ? src->n_train : MTL_CALIBRATION_ROWS;
	int64_t		stride = n + train;
	int64_t		held[MTL_MAX_TASKS];

	/* each task's held-out rows first, then training rows for the intercepts */
	p->n_val = stride;
	p->score = mtl_alloc(sizeof(double) * (stride * T + 1));
	p->label = mtl_alloc(sizeof(double) * (stride * T + 1));
	p->weight = p->model->spec.sample_weight ? mtl_alloc(sizeof(double) * (stride * T + 1)) : NULL;
	memset(p->count, 0, sizeof(p->count));
	ForBatches(src, PART_VALIDATION, 0, p->rng, batch, INT64_MAX, HoldoutBatch, p);
	memcpy(held, p->count, sizeof(held));
	ForBatches(src, PART_TRAIN, 0, p->rng, batch, train, HoldoutBatch, p);
	for (int t = 0; t < T; t++)
	{
		const MtlTask *task = &p->model->spec.tasks[t];
		double	   *score = p->score + t * stride;

		if (task->type != MTL_TASK_BINARY)
			continue;
		CalibrateIntercept(p->model, t, score, p->label + t * stride,
						   p->weight != NULL ? p->weight + t * stride : NULL, p->count[t]);
		for (int64_t i = 0; i < held[t]; i++)
			score[i] = mtl_task_output(task, (float) score[i]);
	}
	for (int t = 0; t < T; t++)
		HoldoutTask(&p->model->spec.tasks[t], p->score + t * stride, p->label + t * stride, held[t],
					&summary->holdout[t]);
	mtl_free(p->score);
	mtl_free(p->label);
	mtl_free(p->weight);
	p->weight = NULL;
}

static void
BuffersCreate(BatchBuffers *buf, const MtlModel *model, int batch)
{
	const MtlLayout *L = &model->layout;

	buf->slots = mtl_alloc(sizeof(int32_t) * batch * L->n_slots);
	buf->nums = mtl_alloc(sizeof(float) * batch * (model->layout.n_cols + 1));
	buf->labels = mtl_alloc(sizeof(float) * batch * mtl_label_columns(&model->spec));
	buf->scratch_slots = mtl_alloc(sizeof(int32_t) * batch * L->n_slots);
	buf->scratch_nums = mtl_alloc(sizeof(float) * batch * (model->layout.n_cols + 1));
	buf->scratch_labels = mtl_alloc(sizeof(float) * batch * mtl_label_columns(&model->spec));
	buf->touched = mtl_alloc(sizeof(int32_t) * batch * L->n_slots * L->n_copies);
	buf->gap = mtl_alloc(sizeof(int32_t) * batch * L->n_slots * L->n_copies);
	buf->stamp = mtl_alloc(sizeof(int64_t) * (L->emb_rows * L->n_copies + 1));
	buf->sort = mtl_alloc(sizeof(int64_t) * batch);
}

static void
BuffersFree(BatchBuffers *buf)
{
	mtl_free(buf->slots);
	mtl_free(buf->nums);
	mtl_free(buf->labels);
	mtl_free(buf->scratch_slots);
	mtl_free(buf->scratch_nums);
	mtl_free(buf->scratch_labels);
	mtl_free(buf->touched);
	mtl_free(buf->gap);
	mtl_free(buf->stamp);
	mtl_free(buf->sort);
}

/* The final dynamic weight of each task, as mtl_info reports it. */
static void
FinalWeights(const MtlModel *model, const MtlWeighting *wt, MtlTrainSummary *summary)
{
	for (int t = 0; t < model->spec.n_tasks; t++)
		summary->loss_weight[t] = (float) (wt->scale[t] * UncertaintyFactor(model, model->params, t));
}

void
mtl_train(MtlModel *model, MtlDataset *data, const MtlTrainCallbacks *cb,
		  MtlTrainSummary *summary)
{
	mtl_train_continue(model, data, cb, summary, NULL);
}

void
mtl_train_continue(MtlModel *model, MtlDataset *data, const MtlTrainCallbacks *cb,
				   MtlTrainSummary *summary, const MtlContinue *cont)
{
	MtlSpec    *spec = &model->spec;
	const MtlLayout *L = &model->layout;
	int			T = spec->n_tasks;
	int			batch = spec->batch_size;
	int64_t		n,
				n_val;
	double		start = mtl_now_seconds();
	double		measure_start;
	EarlyStop	early = {INFINITY, NAN, 0, 0, 0, NULL, 0};
	RowSource	view;
	MtlRng		rng;
	MtlAdam		adam;
	BatchBuffers buf;
	MtlWeighting wt;
	RowSource	src;
	Pass		pass;

	if (cont == NULL)
		mtl_model_init(model);
	LabelStatistics(model, data, cont ? cont->first_new_task : 0);
	/* a separate stream from the initialisation's, from the same seed */
	mtl_rng_seed(&rng, spec->seed ^ 0x5DEECE66DULL);
	SourceCreate(&src, data, spec, batch, &rng);
	n = src.n_train;
	n_val = src.n_val;
	if (batch > n)
		batch = (int) n;
	mtl_weighting_init(&wt, T);
	memset(&pass, 0, sizeof(pass));
	pass.model = model;
	pass.data = data;
	pass.buf = &buf;
	pass.rng = &rng;
	pass.adam = &adam;
	pass.wt = &wt;
	pass.cb = cb;
	pass.drop = spec->id_dropout;
	pass.work = mtl_work_create(model, batch);
	mtl_grouped_enable(model, pass.work);
	pass.split = mtl_split_create(model, pass.work, batch, spec->threads);
	pass.grads = mtl_alloc(sizeof(float) * L->n_params);
	pass.batch = batch;
	pass.early = &early;
	pass.train_src = &src;
	mtl_adam_init(&adam, L->n_params, spec->learning_rate, spec->l2);
	/* embedding_l2 is per epoch: spread over its steps, it weighs the same against an id's rows at any size */
	mtl_adam_embedding_l2(&adam, (size_t) (L->emb_rows * L->n_copies) * L->E,
						  (float) (spec->embedding_l2 * batch / (double) n));
	adam.from = cont ? cont->train_from : 0;
	BuffersCreate(&buf, model, batch);
	if (n_val > 0)
		early.best = mtl_alloc(sizeof(float) * L->n_params);
	if (n_val > 0 && spec->validate_every > 0 && spec->validate_every < n)
	{
		SourceView(&view, &src, batch);
		pass.val_src = &view;
	}

	summary->rows = n;
	summary->validation_rows = n_val;
	summary->epochs = 0;
	summary->best_epoch = 0;
	summary->phase_seconds[MTL_PHASE_EPOCHS] = 0.0;
	summary->phase_seconds[MTL_PHASE_VALIDATION] = 0.0;
	for (int epoch = 0; epoch < spec->epochs; epoch++)
	{
		double		val_loss = NAN;
		double		epoch_start = mtl_now_seconds();
		int64_t		rows;
		MtlEpochReport report;

		adam.lr = spec->learning_rate * powf(spec->lr_decay, (float) epoch);
		if (spec->loss_weighting == MTL_WEIGHTING_DWA && epoch >= 2)
			mtl_dwa_weights(&wt, summary->task_loss[epoch - 1], summary->task_loss[epoch - 2],
							spec->dwa_temperature);
		pass.loss = 0.0;
		pass.rows = 0;
		memset(pass.task_sum, 0, sizeof(pass.task_sum));
		early.epoch = epoch + 1;
		ForBatches(&src, PART_TRAIN, 1, &rng, batch, INT64_MAX, TrainBatch, &pass);
		/* a check inside the epoch may have stopped it early */
		rows = pass.rows > 0 ? pass.rows : 1;
		summary->epoch_loss[epoch] = pass.loss / rows;
		for (int t = 0; t < T; t++)
			summary->task_loss[epoch][t] = (float) (pass.task_sum[t] / rows);
		summary->epochs = epoch + 1;
		report.train_seconds = mtl_now_seconds() - epoch_start;
		report.loss = pass.loss / rows;
		summary->phase_seconds[MTL_PHASE_EPOCHS] += report.train_seconds;
		if (n_val > 0)
			summary->validation_loss[epoch] = val_loss =
				early.done || pass.since_check == 0 ? early.last_loss : Validate(&pass, &src);
		report.val_seconds = mtl_now_seconds() - epoch_start - report.train_seconds;
		summary->phase_seconds[MTL_PHASE_VALIDATION] += report.val_seconds;
		report.epoch = epoch + 1;
		report.val_loss = val_loss;
		report.rows = pass.rows;
		if (cb && cb->epoch_done)
			cb->epoch_done(cb->arg, &report);
		if (early.done)
			break;
	}
	src.stop = 0;				/* the measurements below read every row again */
	summary->best_epoch = early.best_epoch;
	if (early.best != NULL && early.best_epoch > 0)
		memcpy(model->params, early.best, sizeof(float) * L->n_params);
	FinalWeights(model, &wt, summary);
	measure_start = mtl_now_seconds();
	MeasureGates(&pass, &src, batch, summary);
	memset(summary->holdout, 0, sizeof(summary->holdout));
	if (n_val > 0)
		MeasureHoldout(&pass, &src, batch, summary);
	summary->phase_seconds[MTL_PHASE_MEASURE] = mtl_now_seconds() - measure_start;
	summary->seconds = mtl_now_seconds() - start;

	mtl_free(early.best);
	if (pass.val_src != NULL)
		SourceFree(&view);
	SourceFree(&src);
	BuffersFree(&buf);
	mtl_adam_free(&adam);
	mtl_free(pass.grads);
	mtl_split_free(pass.split);
	mtl_work_free(pass.work, model);
}

/*
 * A stepper: the optimizer and buffers of a training loop, for callers that
 * bring their own batches (a round of data-parallel training, round.h).
 */
struct MtlStepper
{
	MtlModel   *model;
	MtlWork    *work;
	MtlAdam		adam;
	float	   *grads;
	BatchBuffers buf;
	MtlWeighting wt;
	MtlRng		rng;
	int			max_batch;
};

MtlStepper *
mtl_stepper_create(MtlModel *model, int max_batch, uint64_t seed)
{
	MtlStepper *s = mtl_alloc(sizeof(MtlStepper));

	s->model = model;
	s->max_batch = max_batch;
	s->work = mtl_work_create(model, max_batch);
	mtl_grouped_enable(model, s->work);
	s->grads = mtl_alloc(sizeof(float) * model->layout.n_params);
	mtl_adam_init(&s->adam, model->layout.n_params, model->spec.learning_rate, model->spec.l2);
	mtl_adam_embedding_l2(&s->adam, (size_t) (model->layout.emb_rows * model->layout.n_copies) * model->layout.E,
						  0.0f);
	BuffersCreate(&s->buf, model, max_batch);
	mtl_weighting_init(&s->wt, model->spec.n_tasks);
	mtl_rng_seed(&s->rng, seed);
	s->work->dropout_state = seed ^ 0x9E3779B97F4A7C15ULL;
	return s;
}

void
mtl_stepper_set_lr(MtlStepper *s, float lr)
{
	s->adam.lr = lr;
}

void
mtl_stepper_set_embedding_l2(MtlStepper *s, float per_step)
{
	s->adam.l2_embeddings = per_step;
}

void
mtl_stepper_lazy_rows(MtlStepper *s)
{
	s->adam.lazy_rows = 1;
}

double
mtl_stepper_step(MtlStepper *s, const int32_t *slots, const float *nums, const float *labels, int B)
{
	const MtlModel *model = s->model;
	int			S = model->layout.n_slots;
	int			n_num = model->layout.n_cols;
	int			T = mtl_label_columns(&model->spec);
	double		drop = model->spec.id_dropout;

	memcpy(s->buf.scratch_slots, slots, sizeof(int32_t) * S * B);
	memcpy(s->buf.scratch_nums, nums, sizeof(float) * n_num * B);
	memcpy(s->buf.scratch_labels, labels, sizeof(float) * T * B);
	if (drop > 0.0)
		for (int r = 0; r < B; r++)
		{
			if (mtl_rng_uniform(&s->rng) < drop)
				s->buf.scratch_slots[(size_t) r * S] = -1;
			if (mtl_rng_uniform(&s->rng) < drop)
				s->buf.scratch_slots[(size_t) r * S + 1] = -1;
		}
	ScenarioSort(model, &s->buf, B);
	TrainStep(s->model, s->work, NULL, &s->adam, s->grads, &s->buf, B, &s->wt);
	return FixedLoss(&model->spec, s->wt.loss);
}

double
mtl_batch_fixed_loss(const MtlModel *model, MtlWork *work, const float *params,
					 const int32_t *slots, const float *nums, const float *labels, int B)
{
	double		task_loss[MTL_MAX_TASKS];
	MtlLossOptions opt = {NULL, task_loss, NULL, NULL, 0, 0};

	mtl_batch_loss(model, work, params, NULL, slots, nums, labels, B, &opt);
	return FixedLoss(&model->spec, task_loss);
}

void
mtl_stepper_free(MtlStepper *s)
{
	if (s == NULL)
		return;
	BuffersFree(&s->buf);
	mtl_adam_free(&s->adam);
	mtl_free(s->grads);
	mtl_work_free(s->work, s->model);
	mtl_free(s);
}

#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adam.h"
#include "evaluate.h"
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

/* Task t's summed loss over its labelled rows; gradient of scale * it into dlogit. */
static double
TaskLoss(const MtlModel *model, MtlWork *work, float *const *dlogit, const float *labels,
		 int t, int B, float scale, int64_t *labelled)
{
	const MtlSpec *spec = &model->spec;
	const MtlTask *task = &spec->tasks[t];
	int			T = spec->n_tasks;
	const float *z[MTL_MAX_TASKS];
	const float *y[MTL_MAX_TASKS];
	float	   *dz[MTL_MAX_TASKS];
	int			chain = 0;

	if (task->type == MTL_TASK_REGRESSION)
	{
		float	   *tmp = work->dtower_act[t][spec->n_tower_layers];
		double		sum = mtl_squared_error(tmp, mtl_work_logit(work, t), 1, labels + t, T, B, scale);

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
	return mtl_bce_chain(dz, z, 1, y, T, chain, B, scale, task->pos_weight, labelled);
}

double
mtl_batch_loss(const MtlModel *model, MtlWork *work, const float *params,
			   float *grads, const int32_t *slots, const float *nums,
			   const float *labels, int B, MtlLossOptions *opt)
{
	const MtlSpec *spec = &model->spec;
	int			T = spec->n_tasks;
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
		double		sum = TaskLoss(model, work, dlogit, labels, t, B, (float) (scale / B), &labelled);

		total += scale * sum / B;
		if (spec->loss_weighting == MTL_WEIGHTING_UNCERTAINTY)
		{
			/* d/ds of c exp(-s) w L + s/2 */
			total += 0.5 * params[model->layout.loss_s + t];
			if (grads != NULL)
				grads[model->layout.loss_s + t] += (float) (0.5 - scale * sum / B);
		}
		if (opt != NULL && opt->task_loss != NULL)
			opt->task_loss[t] = sum / B;
		if (opt != NULL && opt->task_labelled != NULL)
			opt->task_labelled[t] = labelled;
	}
	if (grads != NULL)
	{
		mtl_model_backward_towers(model, work, params, grads, dlogit, B);
		if (opt != NULL && opt->shared_norm != NULL)
			mtl_model_shared_grad_norms(model, work, B, opt->shared_norm);
		mtl_model_backward_shared(model, work, params, grads, B);
		mtl_model_backward_embeddings(model, work, grads, slots, B);
	}
	return total;
}

/*
 * Standardise regression labels; remember mean and std to undo it at
 * predict. Tasks before first_new keep the mean and std they were trained
 * with (a continued model's towers expect them).
 */
static void
StandardiseTargets(MtlSpec *spec, MtlDataset *data, int first_new)
{
	int			T = spec->n_tasks;

	for (int t = 0; t < T; t++)
	{
		MtlTask    *task = &spec->tasks[t];
		double		sum = 0.0,
					sum2 = 0.0;
		int64_t		n = 0;
		double		mean,
					std;

		if (t < first_new)
		{
			if (task->type == MTL_TASK_REGRESSION)
				for (int64_t r = 0; r < data->n_rows; r++)
				{
					float	   *y = &data->labels[r * T + t];

					if (!isnan(*y))
						*y = (*y - task->target_mean) / task->target_std;
				}
			continue;
		}
		task->target_mean = 0.0f;
		task->target_std = 1.0f;
		if (task->type != MTL_TASK_REGRESSION)
			continue;
		for (int64_t r = 0; r < data->n_rows; r++)
		{
			float		y = data->labels[r * T + t];

			if (isnan(y))
				continue;
			sum += y;
			sum2 += (double) y * y;
			n++;
		}
		if (n == 0)
			continue;
		mean = sum / n;
		std = sqrt(fmax(sum2 / n - mean * mean, 0.0));
		if (!(std > 1e-6))
			std = 1.0;
		task->target_mean = (float) mean;
		task->target_std = (float) std;
		for (int64_t r = 0; r < data->n_rows; r++)
		{
			float	   *y = &data->labels[r * T + t];

			if (!isnan(*y))
				*y = (float) ((*y - mean) / std);
		}
	}
}

/* Start each new binary tower at the log-odds of its base rate: faster start. */
static void
InitOutputBiases(MtlModel *model, const MtlDataset *data, int first_new)
{
	int			T = model->spec.n_tasks;

	for (int t = first_new; t < T; t++)
	{
		double		pos = 0.0;
		int64_t		n = 0;
		float	   *bias = model->params + model->layout.tower_b[t][model->spec.n_tower_layers];

		if (model->spec.tasks[t].type != MTL_TASK_BINARY)
			continue;
		for (int64_t r = 0; r < data->n_rows; r++)
		{
			float		y = data->labels[r * T + t];
			int			given_holds = 1;

			/* a conditional task starts at its rate among rows where its parents hold */
			for (int at = model->spec.tasks[t].given; at >= 0; at = model->spec.tasks[at].given)
				given_holds &= data->labels[r * T + at] == 1.0f;
			if (!isnan(y) && given_holds)
			{
				pos += y;
				n++;
			}
		}
		if (n > 0 && pos > 0 && pos < n)
			*bias = (float) log(pos / (n - pos));
	}
}

typedef struct BatchBuffers
{
	int32_t    *slots;
	float	   *nums;
	float	   *labels;
	int32_t    *touched;		/* distinct embedding rows of the batch */
	int64_t    *stamp;			/* per embedding row: last step that used it */
	int64_t    *sort;			/* [2 x batch] scenario sort keys */
} BatchBuffers;

static int
CompareKeys(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return x < y ? -1 : x > y;
}

/*
 * Order a batch's rows by scenario, so that each scenario's tower weights are
 * built once per batch and its rows go through one sgemm.
 */
static void
SortByScenario(const MtlModel *model, const MtlDataset *data, int64_t *order, int B,
			   int64_t *keys)
{
	int			S = model->layout.n_slots;

	if (model->layout.n_scenarios == 0)
		return;
	for (int r = 0; r < B; r++)
		keys[r] = ((int64_t) mtl_model_row_scenario(model, data->slots + order[r] * S) << 32) | r;
	qsort(keys, B, sizeof(int64_t), CompareKeys);
	for (int r = 0; r < B; r++)
		keys[B + r] = order[keys[r] & 0xFFFFFFFF];
	memcpy(order, keys + B, sizeof(int64_t) * B);
}

/* Copy the rows of a batch, dropping id embeddings with probability drop. */
static void
GatherBatch(const MtlModel *model, const MtlDataset *data, int64_t *order,
			int B, BatchBuffers *buf, MtlRng *rng, double drop)
{
	int			S = model->layout.n_slots;
	int			n_num = model->shape.n_num;
	int			T = model->spec.n_tasks;

	SortByScenario(model, data, order, B, buf->sort);
	for (int r = 0; r < B; r++)
	{
		int64_t		row = order[r];
		int32_t    *s = buf->slots + (size_t) r * S;

		memcpy(s, data->slots + row * S, sizeof(int32_t) * S);
		if (drop > 0.0)
		{
			if (mtl_rng_uniform(rng) < drop)
				s[0] = -1;
			if (mtl_rng_uniform(rng) < drop)
				s[1] = -1;
		}
		if (n_num > 0)
			memcpy(buf->nums + (size_t) r * n_num, data->nums + row * n_num,
				   sizeof(float) * n_num);
		memcpy(buf->labels + (size_t) r * T, data->labels + row * T, sizeof(float) * T);
	}
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
				buf->stamp[row] = step;
				buf->touched[n++] = row;
			}
		}
	return n;
}

size_t		mtl_dense_step_max_embeddings = 262144;

static void
TrainStep(MtlModel *model, MtlWork *work, MtlAdam *adam, float *grads,
		  BatchBuffers *buf, int B, MtlWeighting *wt)
{
	const MtlLayout *L = &model->layout;
	const MtlSpec *spec = &model->spec;
	size_t		dense0 = (size_t) (L->emb_rows * L->n_copies) * L->E;
	int			lazy = dense0 > mtl_dense_step_max_embeddings;
	int			n_touched = 0;
	MtlLossOptions opt = {wt->scale, wt->loss, wt->labelled, NULL};

	if (spec->loss_weighting == MTL_WEIGHTING_GRADNORM)
		opt.shared_norm = wt->norm;
	work->dropout_mode = MTL_DROPOUT_DRAW;
	mtl_batch_loss(model, work, model->params, grads, buf->slots, buf->nums, buf->labels, B, &opt);
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
		mtl_adam_update(adam, model->params, grads, 0, L->n_params);
		memset(grads, 0, sizeof(float) * L->n_params);
		return;
	}
	/* large catalogs: only the rows the batch used (lazy Adam), so a step stays cheap */
	mtl_adam_update(adam, model->params, grads, dense0, L->n_params);
	mtl_adam_update_rows(adam, model->params, grads, buf->touched, n_touched, L->E);
	memset(grads + dense0, 0, sizeof(float) * L->n_dense);
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

/* Mean fixed-weight loss over the held-out rows, in batches, without dropout. */
static double
ValidationLoss(MtlModel *model, MtlWork *work, const MtlDataset *data, int64_t *rows,
			   int64_t n, int batch, BatchBuffers *buf, MtlRng *rng)
{
	double		total = 0.0;
	double		task_loss[MTL_MAX_TASKS];
	MtlLossOptions opt = {NULL, task_loss, NULL, NULL};

	for (int64_t from = 0; from < n; from += batch)
	{
		int			B = (int) (n - from < batch ? n - from : batch);

		GatherBatch(model, data, rows + from, B, buf, rng, 0.0);
		mtl_batch_loss(model, work, model->params, NULL, buf->slots, buf->nums, buf->labels, B, &opt);
		total += B * FixedLoss(&model->spec, task_loss);
	}
	return total / n;
}

/*
 * Mean gate weights over up to GATE_ROWS training rows with the final
 * parameters: how much each task's output leans on each expert.
 */
#define GATE_ROWS 20000

static void
MeasureGates(MtlModel *model, MtlWork *work, const MtlDataset *data, int64_t *rows, int64_t n,
			 int batch, BatchBuffers *buf, MtlRng *rng, MtlTrainSummary *summary)
{
	const MtlLayout *L = &model->layout;
	double		sums[MTL_MAX_LEVELS][MTL_MAX_OWNERS][MTL_MAX_EXPERTS] = {{{0}}};

	n = n < GATE_ROWS ? n : GATE_ROWS;
	for (int64_t from = 0; from < n; from += batch)
	{
		int			B = (int) (n - from < batch ? n - from : batch);

		GatherBatch(model, data, rows + from, B, buf, rng, 0.0);
		mtl_model_assemble(model, work, model->params, buf->slots, buf->nums, B);
		mtl_model_forward(model, work, model->params, B);
		for (int k = 0; k < L->n_levels; k++)
			for (int o = 0; o <= model->spec.n_tasks; o++)
				for (int r = 0; r < B; r++)
					for (int j = 0; j < L->levels[k].gate_n[o]; j++)
						sums[k][o][j] += work->gate[k][o][(size_t) r * L->levels[k].gate_n[o] + j];
	}
	summary->gate_rows = n;
	for (int k = 0; k < L->n_levels; k++)
		for (int o = 0; o <= model->spec.n_tasks; o++)
			for (int j = 0; j < L->levels[k].gate_n[o]; j++)
				summary->gate_use[k][o][j] = n > 0 ? (float) (sums[k][o][j] / n) : 0.0f;
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
		mtl_binary_metrics(score, label, NULL, anonymous, n, &m);
	h->rows = n;
	h->auc = task->type == MTL_TASK_REGRESSION ? NAN : m.auc;
	h->logloss = task->type == MTL_TASK_REGRESSION ? NAN : m.logloss;
	h->rmse = task->type == MTL_TASK_REGRESSION ? m.rmse : NAN;
	h->mae = task->type == MTL_TASK_REGRESSION ? m.mae : NAN;
	mtl_free(anonymous);
}

/*
 * Each task's metrics on the held-out rows with the kept parameters, so a
 * model (and a registry version) says how well it does on rows it did not
 * train on.
 */
static void
MeasureHoldout(MtlModel *model, MtlWork *work, const MtlDataset *data, int64_t *rows, int64_t n,
			   int batch, BatchBuffers *buf, MtlRng *rng, MtlTrainSummary *summary)
{
	int			T = model->spec.n_tasks;
	double	   *score = mtl_alloc(sizeof(double) * (n * T + 1));
	double	   *label = mtl_alloc(sizeof(double) * (n * T + 1));
	int64_t		count[MTL_MAX_TASKS] = {0};

	for (int64_t from = 0; from < n; from += batch)
	{
		int			B = (int) (n - from < batch ? n - from : batch);

		GatherBatch(model, data, rows + from, B, buf, rng, 0.0);
		mtl_model_assemble(model, work, model->params, buf->slots, buf->nums, B);
		mtl_model_forward(model, work, model->params, B);
		for (int t = 0; t < T; t++)
		{
			const MtlTask *task = &model->spec.tasks[t];
			const float *logit = mtl_work_logit(work, t);

			for (int r = 0; r < B; r++)
			{
				float		y = buf->labels[(size_t) r * T + t];

				if (isnan(y))
					continue;
				score[t * n + count[t]] = mtl_task_output(task, logit[r]);
				label[t * n + count[t]] = task->type == MTL_TASK_REGRESSION ?
					(double) y * task->target_std + task->target_mean : y;
				count[t]++;
			}
		}
	}
	for (int t = 0; t < T; t++)
		HoldoutTask(&model->spec.tasks[t], score + t * n, label + t * n, count[t],
					&summary->holdout[t]);
	mtl_free(score);
	mtl_free(label);
}

/* Rows held out for validation: a seeded share, at least one row left to train. */
static int64_t
ValidationRows(const MtlSpec *spec, int64_t n)
{
	int64_t		n_val = (int64_t) (n * (double) spec->validation_fraction);

	return n_val >= n ? n - 1 : n_val;
}

static void
BuffersCreate(BatchBuffers *buf, const MtlModel *model, int batch)
{
	const MtlLayout *L = &model->layout;

	buf->slots = mtl_alloc(sizeof(int32_t) * batch * L->n_slots);
	buf->nums = mtl_alloc(sizeof(float) * batch * (model->shape.n_num + 1));
	buf->labels = mtl_alloc(sizeof(float) * batch * model->spec.n_tasks);
	buf->touched = mtl_alloc(sizeof(int32_t) * batch * L->n_slots * L->n_copies);
	buf->stamp = mtl_alloc(sizeof(int64_t) * (L->emb_rows * L->n_copies + 1));
	buf->sort = mtl_alloc(sizeof(int64_t) * 2 * batch);
}

static void
BuffersFree(BatchBuffers *buf)
{
	mtl_free(buf->slots);
	mtl_free(buf->nums);
	mtl_free(buf->labels);
	mtl_free(buf->touched);
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
	int64_t		n_val = ValidationRows(spec, data->n_rows);
	int64_t		n = data->n_rows - n_val;	/* training rows: order[0 .. n) */
	double		start = mtl_now_seconds();
	double		measure_start;
	double		best_loss = INFINITY;
	int			since_best = 0;
	MtlRng		rng;
	MtlAdam		adam;
	BatchBuffers buf;
	MtlWeighting wt;
	MtlWork    *work;
	float	   *grads;
	float	   *best = NULL;
	int64_t    *order;

	StandardiseTargets(spec, data, cont ? cont->first_new_task : 0);
	if (cont == NULL)
		mtl_model_init(model);
	InitOutputBiases(model, data, cont ? cont->first_new_task : 0);
	if (batch > n)
		batch = (int) n;
	mtl_weighting_init(&wt, T);
	work = mtl_work_create(model, batch);
	grads = mtl_alloc(sizeof(float) * L->n_params);
	mtl_adam_init(&adam, L->n_params, spec->learning_rate, spec->l2);
	adam.from = cont ? cont->train_from : 0;
	BuffersCreate(&buf, model, batch);
	order = mtl_alloc(sizeof(int64_t) * data->n_rows);
	for (int64_t i = 0; i < data->n_rows; i++)
		order[i] = i;
	/* a separate stream from the initialisation's, from the same seed */
	mtl_rng_seed(&rng, spec->seed ^ 0x5DEECE66DULL);
	if (n_val > 0)
	{
		/* the held-out rows are the tail of one seeded shuffle */
		mtl_rng_shuffle(&rng, order, data->n_rows);
		best = mtl_alloc(sizeof(float) * L->n_params);
	}

	summary->rows = n;
	summary->validation_rows = n_val;
	summary->epochs = 0;
	summary->best_epoch = 0;
	summary->phase_seconds[MTL_PHASE_EPOCHS] = 0.0;
	summary->phase_seconds[MTL_PHASE_VALIDATION] = 0.0;
	for (int epoch = 0; epoch < spec->epochs; epoch++)
	{
		double		loss = 0.0;
		double		task_sum[MTL_MAX_TASKS] = {0};
		double		val_loss = NAN;
		double		epoch_start = mtl_now_seconds();
		MtlEpochReport report;

		adam.lr = spec->learning_rate * powf(spec->lr_decay, (float) epoch);
		if (spec->loss_weighting == MTL_WEIGHTING_DWA && epoch >= 2)
			mtl_dwa_weights(&wt, summary->task_loss[epoch - 1], summary->task_loss[epoch - 2],
							spec->dwa_temperature);
		mtl_rng_shuffle(&rng, order, n);
		for (int64_t from = 0; from < n; from += batch)
		{
			int			B = (int) (n - from < batch ? n - from : batch);

			if (cb && cb->interrupt)
				cb->interrupt(cb->arg);
			GatherBatch(model, data, order + from, B, &buf, &rng, spec->id_dropout);
			TrainStep(model, work, &adam, grads, &buf, B, &wt);
			loss += B * FixedLoss(spec, wt.loss);
			for (int t = 0; t < T; t++)
				task_sum[t] += B * wt.loss[t];
		}
		summary->epoch_loss[epoch] = loss / n;
		for (int t = 0; t < T; t++)
			summary->task_loss[epoch][t] = (float) (task_sum[t] / n);
		summary->epochs = epoch + 1;
		report.train_seconds = mtl_now_seconds() - epoch_start;
		summary->phase_seconds[MTL_PHASE_EPOCHS] += report.train_seconds;
		if (n_val > 0)
		{
			val_loss = ValidationLoss(model, work, data, order + n, n_val, batch, &buf, &rng);
			summary->validation_loss[epoch] = val_loss;
			if (val_loss < best_loss)
			{
				best_loss = val_loss;
				summary->best_epoch = epoch + 1;
				memcpy(best, model->params, sizeof(float) * L->n_params);
				since_best = 0;
			}
			else
				since_best++;
		}
		report.val_seconds = mtl_now_seconds() - epoch_start - report.train_seconds;
		summary->phase_seconds[MTL_PHASE_VALIDATION] += report.val_seconds;
		report.epoch = epoch + 1;
		report.loss = loss / n;
		report.val_loss = val_loss;
		report.rows = n;
		if (cb && cb->epoch_done)
			cb->epoch_done(cb->arg, &report);
		if (spec->patience > 0 && since_best >= spec->patience)
			break;
	}
	if (best != NULL && summary->best_epoch > 0)
		memcpy(model->params, best, sizeof(float) * L->n_params);
	FinalWeights(model, &wt, summary);
	measure_start = mtl_now_seconds();
	MeasureGates(model, work, data, order, n, batch, &buf, &rng, summary);
	memset(summary->holdout, 0, sizeof(summary->holdout));
	if (n_val > 0)
		MeasureHoldout(model, work, data, order + n, n_val, batch, &buf, &rng, summary);
	summary->phase_seconds[MTL_PHASE_MEASURE] = mtl_now_seconds() - measure_start;
	summary->seconds = mtl_now_seconds() - start;

	mtl_free(best);
	mtl_free(order);
	BuffersFree(&buf);
	mtl_adam_free(&adam);
	mtl_free(grads);
	mtl_work_free(work, model);
}

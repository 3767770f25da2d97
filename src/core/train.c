#include "train.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "adam.h"
#include "loss.h"
#include "mem.h"
#include "rng.h"

static double
NowSeconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double
mtl_batch_loss(const MtlModel *model, MtlWork *work, const float *params,
			   float *grads, const int32_t *slots, const float *nums,
			   const float *labels, int B)
{
	const MtlSpec *spec = &model->spec;
	int			T = spec->n_tasks;
	float	   *dlogit[MTL_MAX_TASKS];
	double		total = 0.0;

	mtl_model_assemble(model, work, params, slots, nums, B);
	mtl_model_forward(model, work, params, B);
	for (int t = 0; t < T; t++)
	{
		const MtlTask *task = &spec->tasks[t];
		float		scale = task->weight / B;
		double		sum;

		/* the gradient buffer of the logit is free: tower backward reads it first */
		dlogit[t] = work->dtower_act[t][spec->n_tower_layers];
		if (task->type == MTL_TASK_BINARY)
			sum = mtl_bce_logits(dlogit[t], mtl_work_logit(work, t), 1, labels + t, T, B, scale);
		else
			sum = mtl_squared_error(dlogit[t], mtl_work_logit(work, t), 1, labels + t, T, B, scale);
		total += task->weight * sum / B;
	}
	if (grads != NULL)
	{
		mtl_model_backward(model, work, params, grads, dlogit, B);
		mtl_model_backward_embeddings(model, work, grads, slots, B);
	}
	return total;
}

/* Standardise regression labels; remember mean and std to undo it at predict. */
static void
StandardiseTargets(MtlSpec *spec, MtlDataset *data)
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

/* Start each binary tower at the log-odds of its base rate: faster start. */
static void
InitOutputBiases(MtlModel *model, const MtlDataset *data)
{
	int			T = model->spec.n_tasks;

	for (int t = 0; t < T; t++)
	{
		double		pos = 0.0;
		int64_t		n = 0;
		float	   *bias = model->params + model->layout.tower_b[t][model->spec.n_tower_layers];

		if (model->spec.tasks[t].type != MTL_TASK_BINARY)
			continue;
		for (int64_t r = 0; r < data->n_rows; r++)
		{
			float		y = data->labels[r * T + t];

			if (!isnan(y))
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
} BatchBuffers;

/* Copy the rows of a batch, dropping id embeddings with probability drop. */
static void
GatherBatch(const MtlModel *model, const MtlDataset *data, const int64_t *order,
			int B, BatchBuffers *buf, MtlRng *rng, double drop)
{
	int			S = model->layout.n_slots;
	int			n_num = model->shape.n_num;
	int			T = model->spec.n_tasks;

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

static int
CollectTouchedRows(const MtlModel *model, BatchBuffers *buf, int B, int64_t step)
{
	int			S = model->layout.n_slots;
	int			n = 0;

	for (size_t i = 0; i < (size_t) B * S; i++)
	{
		int32_t		row = buf->slots[i];

		if (row >= 0 && buf->stamp[row] != step)
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
		  BatchBuffers *buf, int B, double *loss)
{
	const MtlLayout *L = &model->layout;
	size_t		dense0 = (size_t) L->emb_rows * L->E;
	int			n_touched;

	*loss += B * mtl_batch_loss(model, work, model->params, grads,
								buf->slots, buf->nums, buf->labels, B);
	mtl_adam_begin(adam);
	if (dense0 <= mtl_dense_step_max_embeddings)
	{
		/* every row steps, as torch.optim.Adam: momentum keeps moving rows a batch missed */
		mtl_adam_update(adam, model->params, grads, 0, L->n_params);
		memset(grads, 0, sizeof(float) * L->n_params);
		return;
	}
	/* large catalogs: only the rows the batch used (lazy Adam), so a step stays cheap */
	n_touched = CollectTouchedRows(model, buf, B, adam->t);
	mtl_adam_update(adam, model->params, grads, dense0, L->n_params);
	mtl_adam_update_rows(adam, model->params, grads, buf->touched, n_touched, L->E);
	memset(grads + dense0, 0, sizeof(float) * L->n_dense);
	for (int k = 0; k < n_touched; k++)
		memset(grads + (size_t) buf->touched[k] * L->E, 0, sizeof(float) * L->E);
}

/* Mean loss over the held-out rows, in batches, without dropout. */
static double
ValidationLoss(MtlModel *model, MtlWork *work, const MtlDataset *data, const int64_t *rows,
			   int64_t n, int batch, BatchBuffers *buf, MtlRng *rng)
{
	double		total = 0.0;

	for (int64_t from = 0; from < n; from += batch)
	{
		int			B = (int) (n - from < batch ? n - from : batch);

		GatherBatch(model, data, rows + from, B, buf, rng, 0.0);
		total += B * mtl_batch_loss(model, work, model->params, NULL,
									buf->slots, buf->nums, buf->labels, B);
	}
	return total / n;
}

/* Rows held out for validation: a seeded share, at least one row left to train. */
static int64_t
ValidationRows(const MtlSpec *spec, int64_t n)
{
	int64_t		n_val = (int64_t) (n * (double) spec->validation_fraction);

	return n_val >= n ? n - 1 : n_val;
}

void
mtl_train(MtlModel *model, MtlDataset *data, const MtlTrainCallbacks *cb,
		  MtlTrainSummary *summary)
{
	MtlSpec    *spec = &model->spec;
	const MtlLayout *L = &model->layout;
	int			batch = spec->batch_size;
	int64_t		n_val = ValidationRows(spec, data->n_rows);
	int64_t		n = data->n_rows - n_val;	/* training rows: order[0 .. n) */
	double		start = NowSeconds();
	double		best_loss = INFINITY;
	int			since_best = 0;
	MtlRng		rng;
	MtlAdam		adam;
	BatchBuffers buf;
	MtlWork    *work;
	float	   *grads;
	float	   *best = NULL;
	int64_t    *order;

	StandardiseTargets(spec, data);
	mtl_model_init(model);
	InitOutputBiases(model, data);
	if (batch > n)
		batch = (int) n;
	work = mtl_work_create(model, batch);
	grads = mtl_alloc(sizeof(float) * L->n_params);
	mtl_adam_init(&adam, L->n_params, spec->learning_rate, spec->l2);
	buf.slots = mtl_alloc(sizeof(int32_t) * batch * L->n_slots);
	buf.nums = mtl_alloc(sizeof(float) * batch * (model->shape.n_num + 1));
	buf.labels = mtl_alloc(sizeof(float) * batch * spec->n_tasks);
	buf.touched = mtl_alloc(sizeof(int32_t) * batch * L->n_slots);
	buf.stamp = mtl_alloc(sizeof(int64_t) * (L->emb_rows + 1));
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
	for (int epoch = 0; epoch < spec->epochs; epoch++)
	{
		double		loss = 0.0;
		double		val_loss = NAN;
		double		epoch_start = NowSeconds();

		mtl_rng_shuffle(&rng, order, n);
		for (int64_t from = 0; from < n; from += batch)
		{
			int			B = (int) (n - from < batch ? n - from : batch);

			if (cb && cb->interrupt)
				cb->interrupt(cb->arg);
			GatherBatch(model, data, order + from, B, &buf, &rng, spec->id_dropout);
			TrainStep(model, work, &adam, grads, &buf, B, &loss);
		}
		summary->epoch_loss[epoch] = loss / n;
		summary->epochs = epoch + 1;
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
		if (cb && cb->epoch_done)
			cb->epoch_done(cb->arg, epoch + 1, loss / n, val_loss, NowSeconds() - epoch_start);
		if (spec->patience > 0 && since_best >= spec->patience)
			break;
	}
	if (best != NULL && summary->best_epoch > 0)
		memcpy(model->params, best, sizeof(float) * L->n_params);
	/* wall-clock time would make equal trainings give unequal bytes */
	summary->seconds = spec->record_seconds ? NowSeconds() - start : NAN;

	mtl_free(best);
	mtl_free(order);
	mtl_free(buf.stamp);
	mtl_free(buf.touched);
	mtl_free(buf.labels);
	mtl_free(buf.nums);
	mtl_free(buf.slots);
	mtl_adam_free(&adam);
	mtl_free(grads);
	mtl_work_free(work, model);
}

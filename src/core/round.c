#include "round.h"

#include <math.h>
#include <string.h>

#include "grouped.h"
#include "mem.h"
#include "rng.h"

#define ROUND_MAGIC 0x52544C4DU	/* "MTLR" little-endian */

static int	AllFinite(const float *v, size_t n);

/* ---- held-out scores ---- */

static void
ScoresStart(MtlRoundScores *sc, const MtlSpec *spec)
{
	memset(sc, 0, sizeof(*sc));
	sc->n_tasks = spec->n_tasks;
	for (int t = 0; t < spec->n_tasks; t++)
		sc->type[t] = (uint8_t) spec->tasks[t].type;
}

static void
ScoresAppend(MtlRoundScores *sc, int t, const float *score, const float *label, int64_t n)
{
	/* a task with no rows yet has no arrays to add nothing to */
	if (n == 0)
		return;
	if (sc->n[t] + n > sc->cap[t])
	{
		int64_t		cap = sc->cap[t] ? sc->cap[t] : 1024;

		while (cap < sc->n[t] + n)
			cap *= 2;
		sc->score[t] = mtl_realloc(sc->score[t], sizeof(float) * cap);
		sc->label[t] = mtl_realloc(sc->label[t], sizeof(float) * cap);
		sc->cap[t] = cap;
	}
	memcpy(sc->score[t] + sc->n[t], score, sizeof(float) * n);
	memcpy(sc->label[t] + sc->n[t], label, sizeof(float) * n);
	sc->n[t] += n;
}

static void
ScoresFree(MtlRoundScores *sc)
{
	/* every task: a read that failed part way leaves n_tasks unset */
	for (int t = 0; t < MTL_MAX_TASKS; t++)
	{
		mtl_free(sc->score[t]);
		mtl_free(sc->label[t]);
	}
	memset(sc, 0, sizeof(*sc));
}

static void
ScoresWrite(MtlWriter *w, const MtlRoundScores *sc)
{
	mtl_put_u8(w, (uint8_t) sc->n_tasks);
	for (int t = 0; t < sc->n_tasks; t++)
	{
		mtl_put_u8(w, sc->type[t]);
		mtl_put_u64(w, (uint64_t) sc->n[t]);
		mtl_put_f32_array(w, sc->score[t], (size_t) sc->n[t]);
		mtl_put_f32_array(w, sc->label[t], (size_t) sc->n[t]);
	}
}

static void
ScoresRead(MtlReader *r, MtlRoundScores *sc, int64_t val_rows)
{
	int			n_tasks = mtl_get_u8(r);

	memset(sc, 0, sizeof(*sc));
	if (!r->failed && n_tasks > MTL_MAX_TASKS)
		mtl_reader_fail(r, "round state has too many tasks with scores");
	for (int t = 0; t < n_tasks && !r->failed; t++)
	{
		uint8_t		type = mtl_get_u8(r);
		uint64_t	n = mtl_get_u64(r);

		if (r->failed)
			break;
		if (type > MTL_TASK_REGRESSION || n > (uint64_t) val_rows)
		{
			mtl_reader_fail(r, "round state has bad held-out scores");
			break;
		}
		/* both arrays' bytes must be there before they are allocated */
		if (!mtl_reader_has(r, (size_t) 8 * n))
			break;
		sc->type[t] = type;
		ScoresAppend(sc, t, (const float *) (r->data + r->pos), (const float *) (r->data + r->pos + 4 * n),
					 (int64_t) n);
		r->pos += (size_t) 8 * n;
		if (!AllFinite(sc->score[t], n) || !AllFinite(sc->label[t], n))
			mtl_reader_fail(r, "round state holds a held-out score or label that is not finite");
	}
	if (!r->failed)
		sc->n_tasks = n_tasks;
}

static size_t
EmbFloats(const MtlLayout *L)
{
	return (size_t) (L->emb_rows * L->n_copies) * L->E;
}

double
mtl_round_position(const MtlSpec *spec, int has_user, int64_t user_id, int has_item, int64_t item_id)
{
	int64_t		key[2] = {has_user ? user_id : INT64_MIN, has_item ? item_id : INT64_MIN};
	uint64_t	h = mtl_hash64(key, sizeof(key), spec->seed ^ 0x726F756E64ULL);

	return (double) (h >> 11) * (1.0 / 9007199254740992.0);
}

int
mtl_round_slice_at(const MtlSpec *spec, double row_fraction, double u)
{
	double		val = spec->validation_fraction;
	int64_t		slices,
				slice;

	if (u < val)
		return -1;
	/* the rest of [val, 1) in slices of row_fraction of it */
	slices = (int64_t) ceil(1.0 / row_fraction - 1e-9);
	slice = (int64_t) ((u - val) / (1.0 - val) * slices);
	return (int) (slice >= slices ? slices - 1 : slice);
}

int
mtl_round_part_at(const MtlSpec *spec, const MtlRoundOptions *opt, double u)
{
	int			slice;

	if (u < spec->validation_fraction)
		return opt->skip_validation ? MTL_ROUND_SKIP : MTL_ROUND_VALIDATION;
	if (opt->row_fraction <= 0.0)
		return MTL_ROUND_SKIP;
	slice = mtl_round_slice_at(spec, opt->row_fraction, u);
	return slice == (opt->round - 1) % (int) ceil(1.0 / opt->row_fraction - 1e-9) ?
		MTL_ROUND_TRAIN : MTL_ROUND_SKIP;
}

int
mtl_round_part(const MtlSpec *spec, const MtlRoundOptions *opt, int has_user,
			   int64_t user_id, int has_item, int64_t item_id)
{
	return mtl_round_part_at(spec, opt, mtl_round_position(spec, has_user, user_id, has_item, item_id));
}

MtlRound *
mtl_round_create(const MtlTrained *start, uint64_t key, const MtlRoundOptions *opt)
{
	MtlRound   *r = mtl_alloc(sizeof(MtlRound));
	const MtlLayout *L = &start->model.layout;
	int			S = L->n_slots;
	int			n_num = start->model.layout.n_cols;
	int			T = start->model.spec.n_tasks;

	r->start = start;
	r->start_key = key;
	r->opt = *opt;
	r->model = start->model;
	r->model.params = mtl_alloc(sizeof(float) * L->n_params);
	memcpy(r->model.params, start->model.params, sizeof(float) * L->n_params);
	r->batch = opt->batch_size > 0 ? opt->batch_size : start->model.spec.batch_size;
	/* small share batches still shuffle over thousands of rows */
	r->window = r->batch * MTL_ROUND_WINDOW_BATCHES;
	if (r->window < MTL_ROUND_WINDOW_MIN_ROWS)
		r->window = (MTL_ROUND_WINDOW_MIN_ROWS + r->batch - 1) / r->batch * r->batch;
	r->stepper = mtl_stepper_create(&r->model, r->batch,
									start->model.spec.seed ^ (0xA5A5A5A5ULL * (uint64_t) opt->round));
	mtl_stepper_set_lr(r->stepper, opt->learning_rate);
	/* per step as in mtl_train: shares of b = batch / shares rows see rows / shares each */
	mtl_stepper_set_embedding_l2(r->stepper, opt->train_rows > 0 ?
								 (float) (start->model.spec.embedding_l2 * start->model.spec.batch_size /
										  opt->train_rows) : 0.0f);
	/* only the rows a batch used step: see round.h */
	mtl_stepper_lazy_rows(r->stepper);
	r->val_work = mtl_work_create(&start->model, r->batch);
	/* held-out rows take the first layer by value too: it is most of a forward pass */
	mtl_grouped_enable(&start->model, r->val_work);
	r->train_slots = mtl_alloc(sizeof(int32_t) * r->window * S);
	r->train_nums = mtl_alloc(sizeof(float) * (r->window * n_num + 1));
	r->train_labels = mtl_alloc(sizeof(float) * r->window * T);
	r->order = mtl_alloc(sizeof(int32_t) * r->window);
	r->step_slots = mtl_alloc(sizeof(int32_t) * r->batch * S);
	r->step_nums = mtl_alloc(sizeof(float) * (r->batch * n_num + 1));
	r->step_labels = mtl_alloc(sizeof(float) * r->batch * T);
	r->val_slots = mtl_alloc(sizeof(int32_t) * r->batch * S);
	r->val_nums = mtl_alloc(sizeof(float) * (r->batch * n_num + 1));
	r->val_labels = mtl_alloc(sizeof(float) * r->batch * T);
	r->val_sort = mtl_alloc(sizeof(int64_t) * r->batch);
	r->counts = mtl_alloc(sizeof(float) * (L->emb_rows + 1));
	r->shuffle = start->model.spec.seed ^ (0x5DEECE66DULL * (uint64_t) opt->round);
	if (opt->metrics)
	{
		ScoresStart(&r->scores, &start->model.spec);
		r->keep = mtl_alloc(sizeof(float) * 2 * r->batch);
	}
	return r;
}

void
mtl_round_free(MtlRound *r)
{
	if (r == NULL)
		return;
	mtl_stepper_free(r->stepper);
	mtl_work_free(r->val_work, &r->start->model);
	mtl_free(r->model.params);
	mtl_free(r->train_slots);
	mtl_free(r->train_nums);
	mtl_free(r->train_labels);
	mtl_free(r->order);
	mtl_free(r->step_slots);
	mtl_free(r->step_nums);
	mtl_free(r->step_labels);
	mtl_free(r->val_slots);
	mtl_free(r->val_nums);
	mtl_free(r->val_labels);
	mtl_free(r->val_sort);
	mtl_free(r->counts);
	ScoresFree(&r->scores);
	mtl_free(r->keep);
	mtl_free(r);
}

void
mtl_round_row(MtlRound *r, int part, int32_t **slots, float **nums, float **labels)
{
	int			S = r->model.layout.n_slots;
	int			n_num = r->model.layout.n_cols;
	int			T = r->model.spec.n_tasks;
	int			k = part == MTL_ROUND_TRAIN ? r->n_train : r->n_val;

	*slots = (part == MTL_ROUND_TRAIN ? r->train_slots : r->val_slots) + (size_t) k * S;
	*nums = (part == MTL_ROUND_TRAIN ? r->train_nums : r->val_nums) + (size_t) k * n_num;
	*labels = (part == MTL_ROUND_TRAIN ? r->train_labels : r->val_labels) + (size_t) k * T;
}

/* Regression labels as training learns them: standardised. */
static void
Standardise(const MtlModel *model, float *labels, int n)
{
	int			T = model->spec.n_tasks;

	for (int t = 0; t < T; t++)
	{
		const MtlTask *task = &model->spec.tasks[t];

		if (task->type != MTL_TASK_REGRESSION)
			continue;
		for (int k = 0; k < n; k++)
		{
			float	   *y = labels + (size_t) k * T + t;

			if (!isnan(*y))
				*y = (*y - task->target_mean) / task->target_std;
		}
	}
}

/* The outputs and labels (in task units) of the batch just measured, per task. */
static void
KeepScores(MtlRound *r)
{
	const MtlModel *start = &r->start->model;
	int			T = start->spec.n_tasks;

	for (int t = 0; t < r->scores.n_tasks; t++)
	{
		const MtlTask *task = &start->spec.tasks[t];
		const float *logit = mtl_work_logit(r->val_work, t);
		float	   *score = r->keep;
		float	   *label = r->keep + r->n_val;
		int64_t		n = 0;

		for (int k = 0; k < r->n_val; k++)
		{
			float		y = r->step_labels[(size_t) k * T + t];

			if (isnan(y))
				continue;
			score[n] = (float) mtl_task_output(task, logit[k]);
			label[n] = task->type == MTL_TASK_REGRESSION ? y * task->target_std + task->target_mean : y;
			n++;
		}
		ScoresAppend(&r->scores, t, score, label, n);
	}
}

static void
MeasureWaiting(MtlRound *r)
{
	const MtlModel *start = &r->start->model;

	if (r->n_val == 0)
		return;
	Standardise(start, r->val_labels, r->n_val);
	/* in scenario order, as training's batches: each run builds its tower weights once */
	mtl_scenario_order(start, r->val_sort, start->spec.n_tasks, r->val_slots, r->val_nums,
					   r->val_labels, r->n_val, r->step_slots, r->step_nums, r->step_labels);
	r->stats.val_loss += r->n_val *
		mtl_batch_fixed_loss(start, r->val_work, start->params, r->step_slots, r->step_nums,
							 r->step_labels, r->n_val);
	r->stats.val_rows += r->n_val;
	KeepScores(r);
	r->n_val = 0;
}

/* Train the window's rows in a seeded shuffled order, in batches. */
static void
TrainWaiting(MtlRound *r)
{
	const MtlLayout *L = &r->model.layout;
	int			S = L->n_slots;
	int			n_num = r->model.layout.n_cols;
	int			T = r->model.spec.n_tasks;
	MtlRng		rng;
	int			n = r->n_train;

	if (n == 0)
		return;
	mtl_rng_seed(&rng, r->shuffle);
	r->shuffle = mtl_rng_next(&rng);
	for (int k = 0; k < n; k++)
		r->order[k] = k;
	for (int k = n - 1; k > 0; k--)
	{
		int			j = (int) mtl_rng_below(&rng, (uint64_t) k + 1);
		int32_t		tmp = r->order[k];

		r->order[k] = r->order[j];
		r->order[j] = tmp;
	}
	Standardise(&r->model, r->train_labels, n);
	for (int b0 = 0; b0 < n; b0 += r->batch)
	{
		int			B = n - b0 < r->batch ? n - b0 : r->batch;

		for (int k = 0; k < B; k++)
		{
			int			from = r->order[b0 + k];
			const int32_t *slots = r->train_slots + (size_t) from * S;

			memcpy(r->step_slots + (size_t) k * S, slots, sizeof(int32_t) * S);
			memcpy(r->step_nums + (size_t) k * n_num, r->train_nums + (size_t) from * n_num,
				   sizeof(float) * n_num);
			memcpy(r->step_labels + (size_t) k * T, r->train_labels + (size_t) from * T,
				   sizeof(float) * T);
			for (int s = 0; s < S; s++)
				if (slots[s] >= 0 && slots[s] < L->emb_rows)
					r->counts[slots[s]] += 1.0f;
		}
		r->stats.loss += B * mtl_stepper_step(r->stepper, r->step_slots, r->step_nums,
											  r->step_labels, B);
		r->stats.rows += B;
	}
	r->n_train = 0;
}

void
mtl_round_commit(MtlRound *r, int part)
{
	if (part == MTL_ROUND_TRAIN)
	{
		if (++r->n_train == r->window)
			TrainWaiting(r);
	}
	else if (part == MTL_ROUND_VALIDATION)
	{
		if (++r->n_val == r->batch)
			MeasureWaiting(r);
	}
}

void
mtl_round_flush(MtlRound *r)
{
	TrainWaiting(r);
	MeasureWaiting(r);
}

static void
WriteHeader(MtlWriter *w, uint64_t key, int round, int E, int copies, int64_t emb_rows,
			uint64_t n_params, const MtlRoundStats *st, int has_dense)
{
	mtl_put_u32(w, ROUND_MAGIC);
	mtl_put_u32(w, MTL_ROUND_FORMAT);
	mtl_put_u64(w, key);
	mtl_put_u32(w, (uint32_t) round);
	mtl_put_u32(w, (uint32_t) E);
	mtl_put_u32(w, (uint32_t) copies);
	mtl_put_u64(w, (uint64_t) emb_rows);
	mtl_put_u64(w, n_params);
	mtl_put_u64(w, (uint64_t) st->rows);
	mtl_put_f64(w, st->loss);
	mtl_put_u64(w, (uint64_t) st->val_rows);
	mtl_put_f64(w, st->val_loss);
	mtl_put_u64(w, (uint64_t) st->shares);
	mtl_put_u8(w, (uint8_t) has_dense);
}

/* The embedding rows with a count, each as its row of every copy. */
static void
WriteTouched(MtlWriter *w, const float *params, const float *counts, int64_t emb_rows, int E,
			 int copies)
{
	int64_t		n = 0;

	for (int64_t k = 0; k < emb_rows; k++)
		n += counts[k] > 0.0f;
	mtl_put_u64(w, (uint64_t) n);
	for (int64_t k = 0; k < emb_rows; k++)
	{
		if (counts[k] <= 0.0f)
			continue;
		mtl_put_u64(w, (uint64_t) k);
		mtl_put_f32(w, counts[k]);
		for (int c = 0; c < copies; c++)
			mtl_put_f32_array(w, params + (size_t) (k + c * emb_rows) * E, E);
	}
}

static void
WriteTrailer(MtlWriter *w)
{
	mtl_put_u32(w, mtl_crc32c(0, w->data, w->len));
}

void
mtl_round_write(MtlWriter *w, const MtlRound *r)
{
	const MtlLayout *L = &r->model.layout;
	size_t		dense0 = EmbFloats(L);
	int			has_dense = r->stats.rows > 0;

	MtlRoundStats st = r->stats;
	float	   *change = mtl_alloc(sizeof(float) * L->n_params);

	for (size_t i = 0; i < (size_t) L->n_params; i++)
		change[i] = r->model.params[i] - r->start->model.params[i];
	st.shares = st.rows > 0;
	WriteHeader(w, r->start_key, r->opt.round, L->E, L->n_copies, L->emb_rows, L->n_params,
				&st, has_dense);
	if (has_dense)
		mtl_put_f32_array(w, change + dense0, L->n_params - dense0);
	WriteTouched(w, change, r->counts, L->emb_rows, L->E, L->n_copies);
	ScoresWrite(w, &r->scores);
	WriteTrailer(w);
	mtl_free(change);
}

void
mtl_round_sum_write(MtlWriter *w, const MtlRoundSum *sum)
{
	size_t		dense0 = (size_t) (sum->emb_rows * sum->copies) * sum->E;

	WriteHeader(w, sum->start_key, sum->round, sum->E, sum->copies, sum->emb_rows,
				sum->n_params, &sum->stats, sum->has_dense);
	if (sum->has_dense)
		mtl_put_f32_array(w, sum->params + dense0, sum->n_params - dense0);
	WriteTouched(w, sum->params, sum->counts, sum->emb_rows, sum->E, sum->copies);
	ScoresWrite(w, &sum->scores);
	WriteTrailer(w);
}

static int
AllFinite(const float *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return 0;
	return 1;
}

/* The header's sizes, checked against each other and against what remains. */
static int
ReadHeader(MtlReader *r, MtlRoundSum *sum)
{
	uint64_t	rows,
				val_rows;

	if (mtl_get_u32(r) != ROUND_MAGIC)
		mtl_reader_fail(r, "not an mtl round state (bad magic)");
	if (!r->failed && mtl_get_u32(r) != MTL_ROUND_FORMAT)
		mtl_reader_fail(r, "unknown round state version");
	sum->start_key = mtl_get_u64(r);
	sum->round = (int) mtl_get_u32(r);
	sum->E = (int) mtl_get_u32(r);
	sum->copies = (int) mtl_get_u32(r);
	sum->emb_rows = (int64_t) mtl_get_u64(r);
	sum->n_params = mtl_get_u64(r);
	rows = mtl_get_u64(r);
	sum->stats.loss = mtl_get_f64(r);
	val_rows = mtl_get_u64(r);
	sum->stats.val_loss = mtl_get_f64(r);
	sum->stats.shares = (int64_t) mtl_get_u64(r);
	sum->has_dense = mtl_get_u8(r);
	if (r->failed)
		return 0;
	if (sum->round < 1 || sum->E < 1 || sum->E > 4096 || sum->copies < 1 ||
		sum->copies > MTL_MAX_TASKS || sum->emb_rows < 0 || sum->emb_rows > (INT64_C(1) << 32) ||
		sum->has_dense > 1 || sum->stats.shares < 0 || sum->stats.shares > (INT64_C(1) << 40) ||
		rows > (UINT64_C(1) << 48) || val_rows > (UINT64_C(1) << 48) ||
		!isfinite(sum->stats.loss) || !isfinite(sum->stats.val_loss))
	{
		mtl_reader_fail(r, "round state has impossible sizes");
		return 0;
	}
	/* parameters: at least the embeddings, at most what a 1 GB value could carry */
	if ((uint64_t) (sum->emb_rows * sum->copies) * (uint64_t) sum->E > sum->n_params ||
		sum->n_params > (UINT64_C(1) << 28))
	{
		mtl_reader_fail(r, "round state has impossible sizes");
		return 0;
	}
	sum->stats.rows = (int64_t) rows;
	sum->stats.val_rows = (int64_t) val_rows;
	return 1;
}

MtlRoundSum *
mtl_round_sum_read(MtlReader *r, int check_crc)
{
	MtlRoundSum *sum = mtl_alloc(sizeof(MtlRoundSum));
	size_t		dense0;
	uint64_t	n_touched;
	int64_t		last = -1;

	/* the trailer first: a damaged state fails before any size is believed */
	if (r->len - r->pos < 4 ||
		(check_crc && mtl_crc32c(0, r->data + r->pos, r->len - r->pos - 4) !=
		(uint32_t) (r->data[r->len - 4] | (r->data[r->len - 3] << 8) |
					(r->data[r->len - 2] << 16) | ((uint32_t) r->data[r->len - 1] << 24))))
	{
		mtl_reader_fail(r, "round state is damaged (checksum mismatch)");
		mtl_free(sum);
		return NULL;
	}
	r->len -= 4;
	if (!ReadHeader(r, sum))
		goto fail;
	dense0 = (size_t) (sum->emb_rows * sum->copies) * sum->E;
	/* check the arrays' sizes against the bytes left before allocating them */
	if (sum->has_dense && !mtl_reader_has(r, 4 * (sum->n_params - dense0)))
		goto fail;
	sum->params = mtl_alloc(sizeof(float) * (sum->n_params + 1));
	sum->counts = mtl_alloc(sizeof(float) * (sum->emb_rows + 1));
	if (sum->has_dense)
	{
		memcpy(sum->params + dense0, r->data + r->pos, 4 * (sum->n_params - dense0));
		r->pos += 4 * (sum->n_params - dense0);
		if (!AllFinite(sum->params + dense0, sum->n_params - dense0))
			mtl_reader_fail(r, "round state holds a parameter that is not finite");
	}
	n_touched = mtl_get_u64(r);
	if (!r->failed && n_touched > (uint64_t) sum->emb_rows)
		mtl_reader_fail(r, "round state lists more embedding rows than the model has");
	for (uint64_t i = 0; i < n_touched && !r->failed; i++)
	{
		int64_t		k = (int64_t) mtl_get_u64(r);
		float		count = mtl_get_f32(r);

		if (r->failed)
			break;
		if (k <= last || k >= sum->emb_rows || !(count > 0.0f) || !isfinite(count))
		{
			mtl_reader_fail(r, "round state has a bad embedding row entry");
			break;
		}
		if (!mtl_reader_has(r, (size_t) 4 * sum->E * sum->copies))
			break;
		for (int c = 0; c < sum->copies; c++)
		{
			float	   *dst = sum->params + (size_t) (k + c * sum->emb_rows) * sum->E;

			memcpy(dst, r->data + r->pos, (size_t) 4 * sum->E);
			r->pos += (size_t) 4 * sum->E;
			if (!AllFinite(dst, sum->E))
				mtl_reader_fail(r, "round state holds a parameter that is not finite");
		}
		sum->counts[k] = count;
		last = k;
	}
	if (!r->failed)
		ScoresRead(r, &sum->scores, sum->stats.val_rows);
	if (!r->failed && r->pos != r->len)
		mtl_reader_fail(r, "round state has trailing bytes");
	if (!r->failed)
		return sum;
fail:
	mtl_round_sum_free(sum);
	return NULL;
}

void
mtl_round_sum_free(MtlRoundSum *sum)
{
	if (sum == NULL)
		return;
	mtl_free(sum->params);
	mtl_free(sum->counts);
	ScoresFree(&sum->scores);
	mtl_free(sum);
}

/* a += w_b / (w_a + w_b) * (b - a) over n floats */
static void
Blend(float *a, const float *b, size_t n, double w_a, double w_b)
{
	float		f = (float) (w_b / (w_a + w_b));

	for (size_t i = 0; i < n; i++)
		a[i] += f * (b[i] - a[i]);
}

static void
Add(float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		a[i] += b[i];
}

const MtlError *
mtl_round_sum_merge(MtlRoundSum *sum, const MtlRoundSum *o)
{
	size_t		dense0 = (size_t) (sum->emb_rows * sum->copies) * sum->E;

	if (o->start_key != sum->start_key)
		MTL_FAIL(MTL_E_MISMATCH, "the round states start from different models");
	if (o->round != sum->round)
		MTL_FAIL(MTL_E_MISMATCH, "the round states belong to different rounds");
	if (o->E != sum->E || o->copies != sum->copies || o->emb_rows != sum->emb_rows ||
		o->n_params != sum->n_params)
		MTL_FAIL(MTL_E_MISMATCH, "the round states have different shapes");
	if (o->scores.n_tasks != sum->scores.n_tasks ||
		memcmp(o->scores.type, sum->scores.type, sum->scores.n_tasks) != 0)
		MTL_FAIL(MTL_E_MISMATCH, "the round states kept different held-out scores");
	for (int t = 0; t < o->scores.n_tasks; t++)
		ScoresAppend(&sum->scores, t, o->scores.score[t], o->scores.label[t], o->scores.n[t]);
	if (o->has_dense)
	{
		if (!sum->has_dense)
			memcpy(sum->params + dense0, o->params + dense0, sizeof(float) * (sum->n_params - dense0));
		else
			Blend(sum->params + dense0, o->params + dense0, sum->n_params - dense0,
				  (double) sum->stats.rows, (double) o->stats.rows);
		sum->has_dense = 1;
	}
	/* a row a share did not use changed by 0 there: rows still weigh */
	for (int64_t k = 0; k < sum->emb_rows; k++)
	{
		if (o->counts[k] <= 0.0f && sum->counts[k] <= 0.0f)
			continue;
		if (sum->stats.rows + o->stats.rows > 0)
			for (int c = 0; c < sum->copies; c++)
			{
				size_t		at = (size_t) (k + c * sum->emb_rows) * sum->E;

				Blend(sum->params + at, o->params + at, sum->E, (double) sum->stats.rows,
					  (double) o->stats.rows);
			}
		sum->counts[k] += o->counts[k];
	}
	sum->stats.rows += o->stats.rows;
	sum->stats.loss += o->stats.loss;
	sum->stats.val_rows += o->stats.val_rows;
	sum->stats.val_loss += o->stats.val_loss;
	sum->stats.shares += o->stats.shares;
	return NULL;
}

size_t
mtl_round_apply(const MtlTrained *start, uint64_t key, const MtlRoundSum *sum,
				uint8_t **bytes, const MtlError **why)
{
	static const MtlError other_model = {MTL_E_MISMATCH, "the round state was trained from another model"};
	static const MtlError misfit = {MTL_E_MISMATCH, "the round state does not fit the model"};
	static const MtlError too_many = {MTL_E_LIMIT, "too many rounds"};
	const MtlLayout *L = &start->model.layout;
	size_t		dense0 = EmbFloats(L);
	MtlTrained	out = *start;
	MtlTrainSummary *s = &out.summary;
	int			r = sum->round;
	size_t		len;

	*why = NULL;
	if (sum->start_key != key)
		*why = &other_model;
	else if ((uint64_t) L->n_params != sum->n_params || L->E != sum->E ||
			 L->n_copies != sum->copies || L->emb_rows != sum->emb_rows)
		*why = &misfit;
	else if (r > MTL_MAX_EPOCHS)
		*why = &too_many;
	if (*why != NULL)
		return 0;
	out.model.params = mtl_alloc(sizeof(float) * L->n_params);
	memcpy(out.model.params, start->model.params, sizeof(float) * L->n_params);
	if (sum->has_dense)
		Add(out.model.params + dense0, sum->params + dense0, L->n_dense);
	for (int64_t k = 0; k < L->emb_rows; k++)
		if (sum->counts[k] > 0.0f)
			for (int c = 0; c < L->n_copies; c++)
			{
				size_t		at = (size_t) (k + c * L->emb_rows) * L->E;

				Add(out.model.params + at, sum->params + at, L->E);
			}
	for (int e = r - 1; e < MTL_MAX_EPOCHS; e++)
	{
		s->epoch_loss[e] = 0.0;
		s->validation_loss[e] = NAN;
	}
	s->epochs = r;
	s->epoch_loss[r - 1] = sum->stats.rows > 0 ? sum->stats.loss / sum->stats.rows : NAN;
	if (r >= 2)
		s->validation_loss[r - 2] = sum->stats.val_rows > 0 ? sum->stats.val_loss / sum->stats.val_rows : NAN;
	s->rows = sum->stats.rows;
	s->validation_rows = sum->stats.val_rows;
	s->best_epoch = 0;
	len = mtl_encode(&out, bytes);
	mtl_free(out.model.params);
	return len;
}

int
mtl_round_metrics(const MtlRoundSum *sum, int t, MtlTaskMetrics *m)
{
	const MtlRoundScores *sc = &sum->scores;
	int64_t		n;
	double	   *score,
			   *label;

	memset(m, 0, sizeof(*m));
	if (t < 0 || t >= sc->n_tasks)
		return 0;
	n = sc->n[t];
	score = mtl_alloc(sizeof(double) * (n + 1));
	label = mtl_alloc(sizeof(double) * (n + 1));
	for (int64_t k = 0; k < n; k++)
	{
		score[k] = sc->score[t][k];
		label[k] = sc->label[t][k];
	}
	if (sc->type[t] == MTL_TASK_BINARY)
	{
		int64_t    *user = mtl_alloc(sizeof(int64_t) * (n + 1));
		uint8_t    *has_user = mtl_alloc(n + 1);

		/* no users: the ranking metrics are left out */
		memset(user, 0, sizeof(int64_t) * (n + 1));
		memset(has_user, 0, n + 1);
		mtl_binary_metrics(score, label, user, has_user, n, NULL, m);
		mtl_free(user);
		mtl_free(has_user);
	}
	else
		mtl_regression_metrics(score, label, n, m);
	mtl_free(score);
	mtl_free(label);
	return 1;
}

/*
 * Mini-batch training of a model over an encoded data set.
 *
 * Rows are shuffled each epoch with the seeded RNG; a batch is assembled,
 * run forward and backward, and Adam steps the dense parameters and the
 * embedding rows the batch used. Same data and seed: same parameters.
 *
 * With validation_fraction > 0 a seeded random share of the rows is held
 * out; after each epoch their loss is measured (no id dropout), the
 * parameters of the best epoch so far are copied aside and restored at the
 * end, and patience > 0 stops training after that many epochs without a
 * better one. This costs one more copy of the parameters in memory. The
 * validation loss is always the fixed-weight sum of the task losses, so
 * epochs compare even while dynamic weights move.
 *
 * Controls: dropout (new masks each batch), the learning rate times lr_decay
 * after each epoch, the gradient's global norm clipped to clip_norm, and loss
 * weighting: fixed, uncertainty (learned log variances), GradNorm or DWA
 * (see weighting.h).
 */
#ifndef MTL_TRAIN_H
#define MTL_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct MtlDataset MtlDataset;	/* dataset.h */

/* What one epoch reports to the caller. */
typedef struct MtlEpochReport
{
	int			epoch;			/* 1-based */
	double		loss;			/* mean training loss */
	double		val_loss;		/* mean validation loss, NaN: none */
	double		train_seconds;	/* the epoch's training steps */
	double		val_seconds;	/* its validation pass */
	int64_t		rows;			/* rows trained on */
} MtlEpochReport;

typedef struct MtlTrainCallbacks
{
	/* called once per batch; may not return (a cancel inside PostgreSQL) */
	void		(*interrupt) (void *arg);
	void		(*epoch_done) (void *arg, const MtlEpochReport *report);
	/* a validation check inside epoch (validate_every), after rows of it; NULL: none */
	void		(*check_done) (void *arg, int epoch, int64_t rows, double val_loss, int best);
	void	   *arg;
} MtlTrainCallbacks;

/*
 * Where the wall time of a training goes. The core measures vocabulary to
 * measure; the caller adds collect (reading and parsing the rows) and
 * encode_model.
 */
typedef enum MtlPhase
{
	MTL_PHASE_COLLECT = 0,		/* rows read and parsed */
	MTL_PHASE_VOCABULARY,		/* vocabularies, statistics, id tables, layout */
	MTL_PHASE_ENCODE_ROWS,		/* rows turned into embedding rows and numbers */
	MTL_PHASE_EPOCHS,			/* training steps */
	MTL_PHASE_VALIDATION,		/* each epoch's validation loss */
	MTL_PHASE_MEASURE,			/* gate use and held-out metrics after training */
	MTL_PHASE_ENCODE_MODEL,		/* the model's bytes */
	MTL_N_PHASES
} MtlPhase;

extern const char *const mtl_phase_names[MTL_N_PHASES];

/* Monotonic wall-clock seconds. */
double		mtl_now_seconds(void);

#define MTL_MAX_EPOCHS 1024

/*
 * Embedding tables up to this many floats step whole every batch, as
 * PyTorch's Adam does (momentum keeps moving rows a batch missed); larger ones
 * step only the rows a batch used (lazy Adam), so a step stays cheap for big
 * catalogs. Stepping everything generalised better on the demo shop (ctr AUC
 * 0.654 vs 0.631 after 10 epochs); 262,144 floats cost about 0.1 ms a batch.
 * A variable so that tests can exercise both paths.
 */
extern size_t mtl_dense_step_max_embeddings;

/*
 * A task's quality on the held-out rows: AUC and log loss for a binary task
 * (a conditional task's p(task | parent) on the rows with its label), RMSE and
 * MAE in label units for a regression task; the others NaN.
 */
typedef struct MtlHoldout
{
	int64_t		rows;
	double		auc;
	double		logloss;
	double		rmse;
	double		mae;
} MtlHoldout;

typedef struct MtlTrainSummary
{
	int64_t		rows;			/* rows trained on */
	int64_t		validation_rows;	/* rows held out (0: no validation) */
	int			epochs;			/* epochs run (fewer than asked when stopped early) */
	int			best_epoch;		/* 1-based epoch whose parameters were kept; 0: the last */
	double		epoch_loss[MTL_MAX_EPOCHS];
	double		validation_loss[MTL_MAX_EPOCHS];
	float		task_loss[MTL_MAX_EPOCHS][MTL_MAX_TASKS];	/* each task's training loss */
	float		loss_weight[MTL_MAX_TASKS];	/* dynamic weight at the end (1: fixed) */
	double		seconds;		/* training's own time (vocabulary to measure) */
	double		phase_seconds[MTL_N_PHASES];
	/* mean gate weight each output put on each of its experts, over gate_rows rows */
	int64_t		gate_rows;
	float		gate_use[MTL_MAX_LEVELS][MTL_MAX_OWNERS][MTL_MAX_EXPERTS];
	/* each task on the held-out rows with the kept parameters (rows 0: none) */
	MtlHoldout	holdout[MTL_MAX_TASKS];
} MtlTrainSummary;

/*
 * Set regression targets' mean and std from the labels (the data set
 * standardises them as batches are gathered), initialise the parameters and
 * train.
 */
void		mtl_train(MtlModel *model, MtlDataset *data, const MtlTrainCallbacks *cb,
					  MtlTrainSummary *summary);

/* How training continues from trained parameters (mtl_update). */
typedef struct MtlContinue
{
	int			first_new_task;	/* tasks from here on are new: targets and output biases from the data */
	size_t		train_from;		/* parameters below this offset stay as they are (0: all train) */
} MtlContinue;

/*
 * Train from the parameters the model holds (no initialisation): old tasks'
 * regression targets keep their mean and std; cont NULL is mtl_train.
 */
void		mtl_train_continue(MtlModel *model, MtlDataset *data, const MtlTrainCallbacks *cb,
							   MtlTrainSummary *summary, const MtlContinue *cont);

/* What a batch's loss computation reports and takes beyond the gradient. */
typedef struct MtlLossOptions
{
	const float *task_scale;	/* dynamic weight per task (GradNorm, DWA); NULL: 1 */
	double	   *task_loss;		/* out: each task's loss (labelled sum / B), unweighted */
	int64_t    *task_labelled;	/* out: each task's labelled rows */
	double	   *shared_norm;	/* out: GradNorm's per-task norm (needs grads) */
	/* a part of a larger batch (core/split.h): its rows, 0: B */
	int			norm_rows;
	int			later_part;		/* not the first part: the batch's constant terms are the first's */
} MtlLossOptions;

/*
 * Objective of one batch and, when grads is not NULL, its gradient added into
 * grads. Each task's loss is summed over the rows that have its label and
 * divided by the batch's rows, times the task's weight: a task labelled on
 * few rows (cvr on clicks, rating on purchases) weighs in proportion to its
 * labels instead of each of its rows weighing as much as a whole batch of
 * another task's, which made the sparse tasks overfit the shared embeddings.
 * A conditional task's loss is its chain's (see mtl_bce_chain). With
 * uncertainty weighting task t's term is c exp(-s_t) weight_t L_t + s_t / 2,
 * c = 1 for binary and 1/2 for regression tasks (Kendall et al. 2018).
 * Used by training, validation and the gradient checks.
 */
double		mtl_batch_loss(const MtlModel *model, MtlWork *work, const float *params,
						   float *grads, const int32_t *slots, const float *nums,
						   const float *labels, int B, MtlLossOptions *options);

/*
 * Label statistics of rows: per task the count, sum and sum of squares of
 * its labels on the rows where its parents hold (for a binary task the sum
 * is its positives). Applying them sets regression targets' mean and std and
 * binary output biases at the base rate's log-odds, for tasks from first_new.
 */
typedef struct MtlLabelStats
{
	int64_t		count[MTL_MAX_TASKS];
	double		sum[MTL_MAX_TASKS];
	double		sum2[MTL_MAX_TASKS];
} MtlLabelStats;
void		mtl_label_stats_add(MtlLabelStats *st, const MtlSpec *spec, const float *labels);
void		mtl_label_stats_merge(MtlLabelStats *a, const MtlLabelStats *b);
void		mtl_label_stats_apply(MtlModel *model, const MtlLabelStats *st, int first_new);

/*
 * A stepper: Adam, dropout, id dropout and loss weighting of the training
 * loop for callers that bring their own batches of expanded rows (slots,
 * nums, labels with regression labels standardised), as a round of
 * data-parallel training does. mtl_stepper_step trains one batch of B <=
 * max_batch rows and returns its fixed-weight loss.
 */
typedef struct MtlStepper MtlStepper;
MtlStepper *mtl_stepper_create(MtlModel *model, int max_batch, uint64_t seed);
void		mtl_stepper_set_lr(MtlStepper *s, float lr);
/* The embedding rows' penalty per step (0 until set). */
void		mtl_stepper_set_embedding_l2(MtlStepper *s, float per_step);
/* Only the embedding rows a batch used step (lazy Adam), whatever the catalog's size. */
void		mtl_stepper_lazy_rows(MtlStepper *s);
double		mtl_stepper_step(MtlStepper *s, const int32_t *slots, const float *nums,
							 const float *labels, int B);
void		mtl_stepper_free(MtlStepper *s);

/*
 * B rows (slots, nums, T label columns) copied into to_*, ordered by
 * scenario, so that each scenario's run of rows builds its tower weights
 * once; keys: B sort keys of scratch.
 */
void		mtl_scenario_order(const MtlModel *model, int64_t *keys, int T, const int32_t *slots,
							   const float *nums, const float *labels, int B, int32_t *to_slots,
							   float *to_nums, float *to_labels);

/* The fixed-weight loss of a batch (no gradient, no dropout). */
double		mtl_batch_fixed_loss(const MtlModel *model, MtlWork *work, const float *params,
								 const int32_t *slots, const float *nums, const float *labels, int B);

#endif

/*
 * Data-parallel training in rounds: local SGD with model averaging, the same
 * scheme as federated averaging (FedAvg, McMahan et al., AISTATS 2017) and
 * MADlib's model-averaging IGD on Greenplum. Raw rows never leave the node
 * that holds them: what travels is a share's parameters.
 *
 * A round starts from a model whose schema (vocabularies, statistics) is
 * fixed. Every share (a parallel worker, a Citus shard) continues that model
 * on its own rows, in mini-batches, through the same kernels and optimizer as
 * mtl_train, with fresh Adam moments: nothing of the optimizer travels. Rows
 * are taken in arrival order, shuffled within a window of
 * MTL_ROUND_WINDOW_BATCHES batches.
 *
 * A share steps every batch_size rows (the model's, or the round's option):
 * averaging K shares that each took S steps of b rows moves the model about
 * as far as S steps of K b rows would, so a driver that knows K (the shares
 * of the last round) keeps K b near the model's batch size.
 *
 * Which rows train: a seeded hash of (user id, item id) holds a
 * validation_fraction of the pairs out for good, and splits the rest into
 * slices of row_fraction; round r trains slice (r - 1) mod slices, so every
 * training row is used once every 1 / row_fraction rounds. Every share
 * agrees on this without talking to the others. The held-out rows measure
 * the round's start model (the previous round's result).
 *
 * Merging two shares: every change, of dense parameters and of embedding
 * rows alike, is averaged weighted by the rows each share trained, a row a
 * share did not use counting as changed by 0 there (FedAvg's average). Each
 * share steps as often as one node would (its batch is batch_size / shares)
 * at the full rate, so the average moves about as far as one node.
 *
 * Weighting an embedding row by the updates each share gave it instead (so
 * that a user only one shard holds keeps that shard's whole change) was
 * measured and dropped: a share's users learn against its own drifting copy
 * of the dense layers, and kept whole they no longer fit the average. With
 * Citus's 32 shards of tests/cluster/citus.sh's shop it gave a held-out AUC
 * of 0.681 against 0.702 on one node, the row-weighted average 0.699; with
 * 2 shards both were within 0.003 of one node.
 *
 * Shares start Adam fresh and step only the embedding rows a batch used
 * (lazy Adam, as mtl_train does for large catalogs): a fresh Adam would
 * normalise the L2 term of every row the share has not used yet into a full
 * step toward zero, and a share's small batches take many steps, each of
 * which would otherwise pass over every row.
 *
 * What averaging costs: each share's Adam sees only its own rows and starts
 * fresh every round, and a share does not see the others' steps within a
 * round. Many small shares (a Citus table of 32 shards) need several times
 * the rounds and land a little below one node; a few large ones (one shard
 * per worker, or a parallel query's workers) match it. See the README's
 * "Scaling out".
 *
 * A share's flat form (the aggregate's partial state) holds the dense
 * parameters' changes, the embedding rows it touched with their counts and
 * changes, and counters:
 *   "MTLR", u32 version, u64 start model key, u32 round, u32 E, u32 copies,
 *   u64 embedding rows (one copy), u64 parameters, u64 rows, f64 loss,
 *   u64 validation rows, f64 validation loss, u64 shares, u8 has dense,
 *   [dense parameters], u64 touched rows, per row: u64 row, f32 count,
 *   copies x E floats; u8 tasks with held-out scores (0: none kept), per
 *   task: u8 type, u64 rows, their f32 outputs, their f32 labels; then u32
 *   CRC-32C of everything before.
 * Reading checks every count, index and value (finite) against the sizes.
 */
#ifndef MTL_ROUND_H
#define MTL_ROUND_H

#include <stdint.h>

#include "bytes.h"
#include "evaluate.h"
#include "format.h"
#include "train.h"

#define MTL_ROUND_FORMAT 3
#define MTL_ROUND_WINDOW_BATCHES 8
#define MTL_ROUND_WINDOW_MIN_ROWS 4096

typedef struct MtlRoundOptions
{
	int			round;			/* 1-based; also seeds shuffling and dropout */
	float		learning_rate;
	double		row_fraction;	/* share of training rows per round, (0, 1]; 0: measure only */
	int			batch_size;		/* rows per step of a share; 0: the model's */
	int			skip_validation;	/* held-out rows sit this round out (not measured) */
	double		train_rows;		/* rows of one epoch, to spread embedding_l2 over its steps (0: none) */
	int			metrics;		/* keep each held-out row's scores and labels (mtl_round_metrics) */
} MtlRoundOptions;

/*
 * The held-out rows' outputs (in task units) and labels of each task with a
 * label, when a round keeps them: what their metrics need.
 */
typedef struct MtlRoundScores
{
	int			n_tasks;		/* 0: not kept */
	uint8_t		type[MTL_MAX_TASKS];	/* MTL_TASK_BINARY or MTL_TASK_REGRESSION */
	int64_t		n[MTL_MAX_TASKS];
	int64_t		cap[MTL_MAX_TASKS];
	float	   *score[MTL_MAX_TASKS];
	float	   *label[MTL_MAX_TASKS];
} MtlRoundScores;

typedef struct MtlRoundStats
{
	int64_t		rows;			/* rows trained */
	double		loss;			/* fixed-weight training loss summed over them */
	int64_t		val_rows;		/* held-out rows measured */
	double		val_loss;		/* the start model's loss summed over them */
	int64_t		shares;			/* shares merged that trained rows */
} MtlRoundStats;

/* What a row is to a round. */
#define MTL_ROUND_SKIP 0
#define MTL_ROUND_TRAIN 1
#define MTL_ROUND_VALIDATION 2

/* One share in training. */
typedef struct MtlRound
{
	const MtlTrained *start;	/* not owned; outlives the round */
	uint64_t	start_key;
	MtlRoundOptions opt;
	MtlModel	model;			/* start's spec, shape and layout; params of its own */
	MtlStepper *stepper;
	MtlWork    *val_work;
	int			batch;
	int			window;			/* rows gathered before a shuffle */
	int			n_train;		/* rows waiting in the window */
	int32_t    *train_slots;
	float	   *train_nums;
	float	   *train_labels;
	int32_t    *order;
	int32_t    *step_slots;
	float	   *step_nums;
	float	   *step_labels;
	int			n_val;
	int32_t    *val_slots;
	float	   *val_nums;
	float	   *val_labels;
	int64_t    *val_sort;		/* [batch] scenario sort keys of held-out rows */
	float	   *counts;			/* [emb_rows] rows that used each embedding row (copy 0) */
	uint64_t	shuffle;
	MtlRoundStats stats;
	MtlRoundScores scores;
	float	   *keep;			/* [2 batch] a batch's outputs and labels, when kept */
} MtlRound;

/* Start a share of round opt->round from start (whose identity is key). */
MtlRound   *mtl_round_create(const MtlTrained *start, uint64_t key, const MtlRoundOptions *opt);
void		mtl_round_free(MtlRound *r);

/* What the row of these ids is to rounds of this model's seed and options. */
int			mtl_round_part(const MtlSpec *spec, const MtlRoundOptions *opt, int has_user,
						   int64_t user_id, int has_item, int64_t item_id);
/* The same in two steps: the row's place in [0, 1) (seeded hash of its ids), and its part. */
double		mtl_round_position(const MtlSpec *spec, int has_user, int64_t user_id, int has_item,
							   int64_t item_id);
int			mtl_round_part_at(const MtlSpec *spec, const MtlRoundOptions *opt, double u);
/*
 * The slice of [0, 1) minus the held-out part that position u falls in, for
 * rounds of row_fraction (> 0): round r trains slice (r - 1) mod
 * ceil(1 / row_fraction). -1 for a held-out row.
 */
int			mtl_round_slice_at(const MtlSpec *spec, double row_fraction, double u);

/*
 * The buffers for the next row of a part (TRAIN or VALIDATION): the caller
 * fills slots [n_slots], nums [n_num] and labels [n_tasks] (missing NaN,
 * regression in label units) and then calls mtl_round_commit.
 */
void		mtl_round_row(MtlRound *r, int part, int32_t **slots, float **nums, float **labels);
void		mtl_round_commit(MtlRound *r, int part);

/* Train and measure every row still waiting. */
void		mtl_round_flush(MtlRound *r);

/* A merge of shares: their changes averaged by rows, and counts, over the whole model. */
typedef struct MtlRoundSum
{
	uint64_t	start_key;
	int			round;
	int			E;
	int			copies;
	int64_t		emb_rows;
	uint64_t	n_params;
	int			has_dense;
	float	   *params;			/* [n_params] changes; meaningful for dense when has_dense, */
	float	   *counts;			/* for embedding row k when counts[k] > 0 */
	MtlRoundStats stats;
	MtlRoundScores scores;		/* the shares' held-out rows, one after another */
} MtlRoundSum;

/* Flat form of a share (after mtl_round_flush) or of a sum. */
void		mtl_round_write(MtlWriter *w, const MtlRound *r);
void		mtl_round_sum_write(MtlWriter *w, const MtlRoundSum *sum);

/*
 * Read a flat form into a new sum; NULL with r->failed set when the bytes are
 * not a valid share (truncated, damaged, lying counts, non-finite values).
 * check_crc = 0 only for fuzzing the parser behind the checksum.
 */
MtlRoundSum *mtl_round_sum_read(MtlReader *r, int check_crc);

/* Merge a share's flat form into sum; NULL or why not (another round or model). */
const MtlError *mtl_round_sum_merge(MtlRoundSum *sum, const MtlRoundSum *other);

void		mtl_round_sum_free(MtlRoundSum *sum);

/* Task t's metrics over the held-out rows a sum kept (opt.metrics); 0 when it kept none. */
int			mtl_round_metrics(const MtlRoundSum *sum, int t, MtlTaskMetrics *m);

/*
 * The round's result as model bytes (*bytes allocated, length returned):
 * start's parameters plus the merged changes (embedding rows no share used
 * keep start's), and the round in the training summary (epochs =
 * round, epoch_loss of the round; the validation loss measured in round r
 * belongs to round r - 1's model). 0 with *why set when the sum does not fit
 * start.
 */
size_t		mtl_round_apply(const MtlTrained *start, uint64_t key, const MtlRoundSum *sum,
							uint8_t **bytes, const MtlError **why);

#endif

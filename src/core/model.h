/*
 * Multi-task models over one input vector per row: shared-bottom, MMoE, PLE,
 * single-task and ESMM all as one structure of levels, experts and gates.
 *
 * Input of a row (width D):
 *   [ user id emb (E) | item id emb (E) | cross (E) | one E-wide embedding
 *     per categorical field | standardised numeric features ]
 * A bag field (tags, text tokens) is one embedded field whose E-wide input
 * is the weighted sum of its values' rows: it has several slots, and its
 * weights follow the numbers in a row's nums.
 * The cross slot gives the experts the user-item affinity directly, which an
 * MLP over concatenated embeddings learns poorly (config "interaction"):
 *   ids     u * v, the id embeddings' product;
 *   pooled  U * V, U the sum of the user's id and categorical embeddings, V
 *           the item's: a user seen a few times still meets the item through
 *           features learned from every user (two-tower style);
 *   fm      the factorisation machine's second-order term over every
 *           embedded field (ids, categorical fields of all sides):
 *           sum over pairs i < j of v_i * v_j = ((sum v)^2 - sum v^2) / 2,
 *           the "bi-interaction" vector of NFM (He and Chua, SIGIR 2017),
 *           whose sum is DeepFM's FM term (Guo et al., IJCAI 2017).
 * Each is a function of per-side sums (and sums of squares), so scoring keeps
 * the user and item sides separable.
 *
 * Every embedding table has width E and they are stacked into one region of
 * rows at the start of the parameter array, so a row of a batch names its
 * embeddings by global row number ("slots": user, item, then one per
 * categorical field; -1 means none). single_task shares nothing, not even
 * embeddings: it keeps one copy of the whole region per task (copy c's rows
 * follow copy c-1's), and task t's expert reads only copy t of the input.
 *
 * Levels. A level has experts (MLPs), each owned by a task or shared, and an
 * output per "owner": task t's output mixes its own and the shared experts by
 * a softmax gate (a constant 1 when it mixes one expert); in PLE a shared
 * output of every level but the last mixes all experts. Level 0 reads the
 * input; level k > 0's task t experts and gate read task t's output of level
 * k-1, its shared ones the shared output. Towers read the last level's task
 * outputs. The architectures are settings of this:
 *   shared_bottom  1 level, 1 shared expert (bottom_units)
 *   mmoe           1 level, n_experts shared experts, a gate per task
 *   ple            `levels` levels of task_experts per task + shared_experts
 *                  (Tang et al., RecSys 2020, CGC stacked as PLE)
 *   single_task    1 level, 1 expert per task (bottom_units), own embeddings
 *   esmm           the same with shared embeddings (Ma et al., SIGIR 2018)
 * Every expert first layer and every gate of level 0 reads the same input, so
 * they are one matrix W_in [D x P] and one sgemm (per copy for single_task).
 *
 * Scenarios (context key config.scenario, see "STAR" below): the scenario is
 * a categorical context field, so experts and gates see its embedding, and
 * every tower layer is STAR-style: weights W * W_s and bias b + b_s for the
 * row's scenario s (Sheng et al., "One Model to Serve All: Star Topology
 * Adaptive Recommender", CIKM 2021, section 3.2.1). W_s starts at 1 and b_s
 * at 0, so a scenario starts from the shared tower and learns only how it
 * differs; an unseen scenario (local index 0) uses the shared tower alone.
 * We chose STAR over scenario-specific gates because the towers are where
 * scenarios differ most in a shop (the same user-item affinity weighs more in
 * search than on ads), it multiplies parameters by the towers' size only,
 * and its fallback is exact.
 */
#ifndef MTL_MODEL_H
#define MTL_MODEL_H

#include <stdint.h>
#include <stddef.h>
#include "error.h"

#define MTL_MAX_TASKS 16
#define MTL_MAX_LABELS (MTL_MAX_TASKS + 1)	/* a row's labels and its weight */
#define MTL_MAX_EXPERTS 64		/* per level */
#define MTL_MAX_LEVELS 4
#define MTL_MAX_OWNERS (MTL_MAX_TASKS + 1)	/* tasks, then "shared" */
#define MTL_MAX_LAYERS 4
#define MTL_NAME_LEN 64
#define MTL_MAX_BAG 256			/* slots of a bag field */
#define MTL_MAX_EMBEDDING 256
#define MTL_MAX_ATTENTION 1024		/* attention units */
#define MTL_MAX_TEXT 16			/* text fields, and sequence fields */

typedef enum MtlTaskType
{
	MTL_TASK_BINARY = 0,
	MTL_TASK_REGRESSION = 1
} MtlTaskType;

typedef enum MtlModelType
{
	MTL_MODEL_SHARED_BOTTOM = 0,
	MTL_MODEL_MMOE = 1,
	MTL_MODEL_PLE = 2,
	MTL_MODEL_SINGLE_TASK = 3,
	MTL_MODEL_ESMM = 4
} MtlModelType;

#define MTL_MODEL_LAST MTL_MODEL_ESMM

typedef enum MtlLossWeighting
{
	MTL_WEIGHTING_FIXED = 0,
	MTL_WEIGHTING_UNCERTAINTY = 1,
	MTL_WEIGHTING_GRADNORM = 2,
	MTL_WEIGHTING_DWA = 3
} MtlLossWeighting;

#define MTL_WEIGHTING_LAST MTL_WEIGHTING_DWA

typedef enum MtlSequencePooling
{
	MTL_POOL_MEAN = 1,			/* the mean of the history's item embeddings */
	MTL_POOL_DIN = 2			/* target attention (DIN) against the candidate item */
} MtlSequencePooling;

typedef enum MtlInteraction
{
	MTL_INTERACTION_IDS = 0,
	MTL_INTERACTION_POOLED = 1,
	MTL_INTERACTION_FM = 2
} MtlInteraction;

#define MTL_INTERACTION_LAST MTL_INTERACTION_FM

typedef struct MtlTask
{
	char		name[MTL_NAME_LEN];
	MtlTaskType type;
	float		weight;
	float		pos_weight;		/* binary: weight of a positive label's loss */
	int			given;			/* conditional on this binary task (ESMM-style), -1: none */
	/* regression labels are learned standardised; these undo it */
	float		target_mean;
	float		target_std;
	/*
	 * binary: the share of its negative rows training keeps (1: all); a
	 * score adds ln(negative_rate) to the logit, so probabilities are those
	 * of all the rows (p' = p / (p + (1 - p) / rate))
	 */
	float		negative_rate;
} MtlTask;

/* Architecture and training settings: everything config can say. */
typedef struct MtlSpec
{
	int			n_tasks;
	MtlTask		tasks[MTL_MAX_TASKS];
	MtlModelType model;
	int			embedding_dim;
	int			n_experts;		/* mmoe */
	int			n_levels;		/* ple */
	int			shared_experts; /* ple */
	int			task_experts;	/* ple */
	int			n_expert_layers;	/* mmoe and ple experts */
	int			expert_units[MTL_MAX_LAYERS];
	int			n_bottom_layers;	/* shared_bottom's bottom, single_task's and esmm's per task */
	int			bottom_units[MTL_MAX_LAYERS];
	int			n_tower_layers;
	int			tower_units[MTL_MAX_LAYERS];
	char		scenario[MTL_NAME_LEN];	/* context key of the scenario, "" none */
	MtlInteraction interaction;	/* what the cross slot holds */
	int			bag_size;		/* slots of a bag field: most values of a list, words of a text */
	int			n_text;			/* fields whose strings are texts (tokenised into a bag) */
	char		text_fields[MTL_MAX_TEXT][MTL_NAME_LEN];
	int			text_buckets;	/* hashing trick: a text's words fall in this many buckets */
	char		text_config[MTL_NAME_LEN];	/* PostgreSQL text search configuration */
	int			n_seq;			/* fields whose values are histories of item ids */
	char		seq_fields[MTL_MAX_TEXT][MTL_NAME_LEN];
	int			sequence_length;	/* slots of a sequence field: its newest ids */
	MtlSequencePooling sequence_pooling;
	int			attention_units;	/* DIN's hidden layer */
	int			log_skewed;		/* log1p skewed non-negative numeric fields (see schema.h) */
	int			epochs;
	int			batch_size;
	float		learning_rate;
	float		lr_decay;		/* learning rate times this after each epoch */
	float		clip_norm;		/* global gradient norm limit, 0: none */
	float		l2;				/* dense parameters */
	float		embedding_l2;	/* embedding rows */
	float		dropout;		/* on expert outputs and tower hidden layers */
	float		id_dropout;
	MtlLossWeighting loss_weighting;
	float		gradnorm_alpha;
	float		dwa_temperature;
	float		validation_fraction;	/* rows held out to measure each epoch */
	int			patience;		/* stop after this many checks without a better one (0: never) */
	int			validate_every; /* training rows between checks inside an epoch (0: epoch ends only) */
	uint64_t	seed;
	int			threads;		/* training threads: each batch split by rows (split.h) */
	int			verbose;
	int			record_seconds;	/* keep training time in the model (bytes then vary) */
	/*
	 * A row's labels end with its weight (the rows are a training call's, so
	 * the model does not store it): each row's loss counts that many times.
	 */
	int			sample_weight;
	double		max_memory_mb;
	double		rows_memory_mb; /* collected rows kept in memory; beyond it they spill */
} MtlSpec;

/* Label columns of a training row: the tasks', then its weight with sample_weight. */
static inline int
mtl_label_columns(const MtlSpec *spec)
{
	return spec->n_tasks + (spec->sample_weight ? 1 : 0);
}

/* Sizes of the input side, fixed by the training data. */
typedef struct MtlShape
{
	int64_t		n_users;
	int64_t		n_items;
	int			n_cat;			/* embedded fields: categorical and bags */
	int			n_num;			/* numeric fields */
	int64_t    *cat_rows;		/* [n_cat] embedding rows per field (vocab + 1) */
	uint8_t    *cat_side;		/* [n_cat] side of each field: user, item, context */
	int		   *cat_width;		/* [n_cat] 0: categorical (one slot), k: bag of k slots; NULL: none */
	uint8_t    *cat_seq;		/* [n_cat] 0, or a sequence's MtlSequencePooling; NULL: none */
	int			scenario_cat;	/* categorical field holding the scenario, -1: none */
} MtlShape;

/* One level of experts and gated outputs (see the comment at the top). */
typedef struct MtlLevel
{
	int			n_experts;
	int			owner[MTL_MAX_EXPERTS];	/* task, or n_tasks: shared */
	int			col[MTL_MAX_EXPERTS];	/* first column of its first layer in proj */
	/* per owner: its columns in proj (experts' first layers, then gate logits) */
	int			own_col0[MTL_MAX_OWNERS];
	int			own_cols[MTL_MAX_OWNERS];
	/* per owner: the experts its output mixes (0: no output at this level) */
	int			gate_n[MTL_MAX_OWNERS];
	int			gate_expert[MTL_MAX_OWNERS][MTL_MAX_EXPERTS];
	int			gate_col[MTL_MAX_OWNERS];	/* first gate logit column, -1: one expert, no gate */
	int			P;				/* projection width */
	/* level > 0: per owner, projection of its input stream [H x own_cols] */
	size_t		in_W[MTL_MAX_OWNERS],
				in_b[MTL_MAX_OWNERS];
	size_t		expert_W[MTL_MAX_EXPERTS][MTL_MAX_LAYERS];	/* layers >= 1 */
	size_t		expert_b[MTL_MAX_EXPERTS][MTL_MAX_LAYERS];
} MtlLevel;

/* Where each tensor lives in the parameter array, and the widths. */
typedef struct MtlLayout
{
	int			E;
	int			D;				/* input width of one copy */
	int			n_copies;		/* embedding and input copies: n_tasks for single_task, else 1 */
	int			Xw;				/* n_copies * D */
	int			n_slots;		/* 2 + every embedded field's slots */
	int			n_cols;			/* a row's nums: n_num numbers, then bag weights */
	int		   *cat_slot;		/* [n_cat] each field's first slot in a row */
	int		   *cat_slots;		/* [n_cat] its slots: 1, or a bag's width */
	int		   *cat_wcol;		/* [n_cat] a bag's first weight in nums, -1: categorical */
	uint8_t    *cat_din;		/* [n_cat] pooled by target attention (no weights read) */
	/*
	 * A history item's group of slots: its id, then the item's categorical
	 * fields (those of side item and one slot). Attention sees a history item
	 * and the candidate as their group's embeddings side by side (the key,
	 * K = seq_group x E wide), so it can match field with field; the pooled
	 * output sums each history item's group.
	 */
	int			seq_group;		/* 1 + n_item_cats */
	int			K;				/* seq_group * E */
	int			n_item_cats;
	int		   *item_cats;		/* [n_item_cats] their field numbers */
	int			A;				/* attention units (0: no DIN field) */
	size_t		att0;			/* copy c's attention block at att0 + c * att_len: */
	size_t		att_len;		/* W1 [4K x A], b1 [A], w2 [A], b2 [1] */
	int			n_levels;
	MtlLevel	levels[MTL_MAX_LEVELS];
	int			n_expert_layers;
	const int  *expert_units;
	int			H1;				/* expert first-layer width */
	int			H;				/* expert output width */
	int			P;				/* level 0's projection width */
	int64_t		emb_rows;		/* embedding rows of one copy */
	int64_t		item_row0;		/* first item row */
	int64_t    *cat_row0;		/* [n_cat] first row of each field */
	size_t		W_in,			/* [Xw x P] */
				b_in;
	size_t		tower_W[MTL_MAX_TASKS][MTL_MAX_LAYERS + 1];
	size_t		tower_b[MTL_MAX_TASKS][MTL_MAX_LAYERS + 1];
	size_t		tower0,			/* all towers' parameters: [tower0, tower0 + tower_len) */
				tower_len;
	int			n_scenarios;	/* scenario-specific tower blocks, for local indices 1.. */
	size_t		scenario0;		/* block of scenario s at scenario0 + (s-1) * tower_len */
	size_t		loss_s;			/* uncertainty weighting: log variance per task */
	size_t		n_dense;		/* parameters after the embeddings */
	size_t		n_params;
} MtlLayout;

typedef struct MtlModel
{
	MtlSpec		spec;
	MtlShape	shape;
	MtlLayout	layout;
	float	   *params;			/* [n_params] */
} MtlModel;

typedef enum MtlDropoutMode
{
	MTL_DROPOUT_OFF = 0,		/* scoring, validation */
	MTL_DROPOUT_DRAW = 1,		/* training: new masks from work->rng */
	MTL_DROPOUT_REUSE = 2		/* the masks of the last draw (gradient checks) */
} MtlDropoutMode;

/* Activations and their gradients for batches of up to max_batch rows. */
typedef struct MtlWork
{
	int			max_batch;
	float	   *X,
			   *dX;				/* [B x Xw] */
	int32_t    *scenario;		/* [B] local scenario index of each row, 0: none */
	float	   *proj[MTL_MAX_LEVELS],
			   *dproj[MTL_MAX_LEVELS];	/* [B x P of the level] */
	float	   *expert_act[MTL_MAX_LEVELS][MTL_MAX_EXPERTS][MTL_MAX_LAYERS];	/* layers >= 1 */
	float	   *dexpert_act[MTL_MAX_LEVELS][MTL_MAX_EXPERTS][MTL_MAX_LAYERS];
	float	   *gate[MTL_MAX_LEVELS][MTL_MAX_OWNERS],
			   *dgate[MTL_MAX_LEVELS][MTL_MAX_OWNERS];	/* [B x gate_n] */
	float	   *mix[MTL_MAX_LEVELS][MTL_MAX_OWNERS],
			   *dmix[MTL_MAX_LEVELS][MTL_MAX_OWNERS];	/* [B x H] */
	float	   *tower_act[MTL_MAX_TASKS][MTL_MAX_LAYERS + 1];	/* last: logit */
	float	   *dtower_act[MTL_MAX_TASKS][MTL_MAX_LAYERS + 1];
	/* dropout: scale 0 or 1/(1-p) per unit of each expert output and tower hidden layer */
	MtlDropoutMode dropout_mode;
	uint64_t	dropout_state;
	float	   *expert_mask[MTL_MAX_LEVELS][MTL_MAX_EXPERTS];
	float	   *tower_mask[MTL_MAX_TASKS][MTL_MAX_LAYERS];
	/* STAR towers: one scenario's effective weights and their gradient */
	float	   *star_W,
			   *star_dW,
			   *star_b,
			   *star_db;
	/*
	 * Scoring: every scenario's effective tower weights and biases, computed
	 * once (mtl_work_freeze_scenarios) for fixed params; laid out like the
	 * tower block, one block per scenario. NULL: computed per batch.
	 */
	float	   *star_frozen;
	/* training's first layer by value for fields of few values (grouped.h) */
	int			group_enabled;
	int			group_B;		/* the batch planned last; 0: none grouped */
	int			n_groups;
	int		   *group_field;	/* [n_cat] the batch's grouped fields, by column */
	int64_t    *group_off;		/* [n_cat] a field's first value row in group_q, -1: never */
	uint8_t    *group_on;		/* [n_cat] 1: the field goes by value in the batch planned */
	int32_t    *group_row;		/* [max_batch x n_cat] each row's value of grouped field g */
	float	   *group_q;		/* [values x P] products with W_in; backward: dproj by value */
	float	   *group_dt;		/* [values x E] */
	int32_t    *group_count;	/* [values] rows of the batch with the value */
	int32_t    *group_start;	/* [widest field's values + 1] a field's rows by value */
	int32_t    *group_order;	/* [max_batch] */
	const float **group_rows;	/* [max_batch] */
} MtlWork;

const char *mtl_model_type_name(MtlModelType type);
const char *mtl_interaction_name(MtlInteraction interaction);

/*
 * The cross slot from per-side pools: sum[s] and sq[s] ([E] each) are the
 * sum and sum of squares of side s's embeddings (user, item, context; sq is
 * read in fm mode only, and context only in fm mode). See mtl_model_pool.
 * extra ([E] or NULL) joins the user's side: the scoring paths' sum of a
 * row's attention-pooled histories, which their cached pools leave out.
 */
void		mtl_model_cross(const MtlModel *model, const float *const *sum, const float *const *sq,
							const float *extra, float *out);
/*
 * Side's pool of one input row x (copy c's D-wide input, embeddings already
 * in place): the embeddings of the side's slots that enter the cross slot.
 */
void		mtl_model_pool(const MtlModel *model, const float *x, int side, float *sum, float *sq);
/*
 * The same from params' embedding rows of copy c named by a row's slots (-1:
 * absent), with its nums for bag weights.
 */
void		mtl_model_pool_slots(const MtlModel *model, const float *params, int c,
								 const int32_t *slots, const float *nums, int side,
								 float *sum, float *sq);
/*
 * DIN (Zhou et al., KDD 2018): the E-wide input of sequence field f of one
 * row (its slots name the history items' groups of rows) against the
 * candidate's key q: sum over the history of a_j * h_j, h_j the sum of
 * history item j's group of rows, with
 * a_j = w2 . act(W1 [k_j, q, k_j * q, k_j - q] + b1) + b2 (no softmax, as
 * in the paper), k_j the group's rows side by side (K wide, as the paper's
 * goods, shop and category embeddings are concatenated), from copy c's rows
 * and attention block. act is a leaky ReLU (slope 0.1 below 0) in place of
 * the paper's PReLU: as cheap as ReLU when every candidate of a catalog is
 * scored, without dead units. A missing history is the field's missing row.
 * scratch: [K + E] floats.
 */
#define MTL_ATTENTION_SLOPE 0.1f
#define MTL_ATTENTION_ACT(z) ((z) > 0.0f ? (z) : MTL_ATTENTION_SLOPE * (z))
void		mtl_model_din_vector(const MtlModel *model, const float *params, int c,
								 const int32_t *slots, const float *q, int f, float *out,
								 float *scratch);
/*
 * The key ([K]) a candidate is seen as by attention: the item id's embedding,
 * then its categorical fields' (layout item_cats), of one row; absent: zeros.
 */
void		mtl_model_item_key(const MtlModel *model, const float *params, int c,
							   const int32_t *slots, float *q);
/*
 * History item group's key ([K]: its rows side by side, absent zeros) and
 * vector h ([E]: their sum) from params' rows of copy c; 0 when the group is empty.
 */
int			mtl_model_history_item(const MtlLayout *L, const float *params, int c,
								   const int32_t *group, float *key, float *h);
/*
 * One input row x's cross slot (x + 2E, copy's D-wide input) from its own
 * segments: ids, embedded fields (attention-pooled histories on the user's
 * side). pools: [6 x E] scratch.
 */
void		mtl_model_cross_of_row(const MtlModel *model, float *x, float *pools);
/*
 * The cross slot's gradient (dx + 2E) added to the gradients of the segments
 * of x it is computed from, as if they were free inputs (integrated
 * gradients). pools: [8 x E] scratch.
 */
void		mtl_model_cross_input_grad(const MtlModel *model, const float *x, float *dx,
									   float *pools);
/* Field f's E-wide input of one row from params' rows of copy c (a bag's weighted sum). */
void		mtl_model_field_vector(const MtlModel *model, const float *params, int c,
								   const int32_t *slots, const float *nums, int f, float *out);
const char *mtl_task_type_name(MtlTaskType type);

/* Fill layout from spec and shape; returns NULL or a reason it is impossible. */
const MtlError *mtl_layout_build(MtlLayout *layout, const MtlSpec *spec, const MtlShape *shape);
void		mtl_layout_free(MtlLayout *layout);

/* Allocate params and initialise them from spec.seed. */
void		mtl_model_init(MtlModel *model);
void		mtl_model_free(MtlModel *model);

MtlWork    *mtl_work_create(const MtlModel *model, int max_batch);
void		mtl_work_free(MtlWork *work, const MtlModel *model);
/* For scoring with params that no longer change: see star_frozen. */
void		mtl_work_freeze_scenarios(MtlWork *work, const MtlModel *model, const float *params);

/*
 * Build the input rows of a batch: slots [B x n_slots] global embedding rows
 * of copy 0 (-1: none), nums [B x n_cols] standardised numeric values and
 * bag weights. Also sets each row's scenario from its slot.
 */
void		mtl_model_assemble(const MtlModel *model, MtlWork *work, const float *params,
							   const int32_t *slots, const float *nums, int B);
/* A row's local scenario index from its slots (0: none or unseen). */
int32_t		mtl_model_row_scenario(const MtlModel *model, const int32_t *slots);
/* Copy c's global embedding row of a copy-0 row. */
#define MTL_COPY_ROW(layout, row, c) ((int64_t) (row) + (int64_t) (c) * (layout)->emb_rows)

/* Forward from work->X to logits (the work->tower_act last layer of each task). */
void		mtl_model_forward(const MtlModel *model, MtlWork *work, const float *params, int B);
float	   *mtl_work_logit(MtlWork *work, int task);
/*
 * The same from work->proj[0] = X @ W_in + b_in and work->scenario, for
 * callers that build them otherwise (scoring).
 */
void		mtl_model_forward_projected(const MtlModel *model, MtlWork *work,
										const float *params, int B);

/*
 * Backward from dlogit[t][B] into grads (dense part, +=; grads NULL: only
 * the input gradients, for the towers and shared halves) and work->dX; then
 * into the embedding rows named by slots (grads, +=). The dense part is two
 * halves so that GradNorm can measure between them: the towers (leaving the
 * gradient of each task's last-level output in work->dmix), then the rest.
 */
void		mtl_model_backward(const MtlModel *model, MtlWork *work, const float *params,
							   float *grads, float *const *dlogit, int B);
void		mtl_model_backward_towers(const MtlModel *model, MtlWork *work, const float *params,
									  float *grads, float *const *dlogit, int B);
void		mtl_model_backward_shared(const MtlModel *model, MtlWork *work, const float *params,
									  float *grads, int B);
void		mtl_model_backward_embeddings(const MtlModel *model, MtlWork *work,
										  const float *params, float *grads,
										  const int32_t *slots, const float *nums, int B);

/*
 * The last shared layer, where GradNorm measures: the weight matrices of the
 * last layer of the last level's shared experts (shared_bottom: the bottom's
 * last layer; mmoe: every expert's). Fills up to max blocks of the parameter
 * array ([rows x cols], ld apart) and returns how many (0: the model has no
 * shared layer: single_task, esmm, ple without shared experts).
 */
typedef struct MtlParamBlock
{
	size_t		offset;
	int			rows;
	int			cols;
	int			ld;
} MtlParamBlock;
int			mtl_model_last_shared_layer(const MtlModel *model, MtlParamBlock *blocks, int max);

/*
 * After mtl_model_backward_towers: norm[t] = || d(task t's weighted loss) /
 * d(last shared layer's weights) ||, one task at a time.
 */
void		mtl_model_shared_grad_norms(const MtlModel *model, MtlWork *work, int B, double *norm);

/* Turn a task's logit into its output: probability or regression value. */
double		mtl_task_output(const MtlTask *task, float logit);

#endif

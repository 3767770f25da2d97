/*
 * Multi-task models: shared-bottom and MMoE over one input vector per row.
 *
 * Input of a row (width D):
 *   [ user id emb (E) | item id emb (E) | user*item (E) | one E-wide embedding
 *     per categorical field | standardised numeric features ]
 * The product slot gives the towers the user-item affinity directly, which
 * an MLP over concatenated embeddings learns poorly.
 *
 * Every embedding table has width E and they are stacked into one region of
 * rows at the start of the parameter array, so a row of a batch names its
 * embeddings by global row number ("slots": user, item, then one per
 * categorical field; -1 means none). Parameters live in one float array.
 *
 * The first layer of every expert and every gate reads the same input, so
 * they are one matrix W_in [D x P] and one sgemm:
 *   P = n_experts * H1 (expert first layers) + n_tasks * n_experts (gate logits).
 * shared_bottom is one expert (the bottom MLP) and no gates.
 */
#ifndef MTL_MODEL_H
#define MTL_MODEL_H

#include <stdint.h>
#include <stddef.h>

#define MTL_MAX_TASKS 16
#define MTL_MAX_EXPERTS 32
#define MTL_MAX_LAYERS 4
#define MTL_NAME_LEN 64

typedef enum MtlTaskType
{
	MTL_TASK_BINARY = 0,
	MTL_TASK_REGRESSION = 1
} MtlTaskType;

typedef enum MtlModelType
{
	MTL_MODEL_SHARED_BOTTOM = 0,
	MTL_MODEL_MMOE = 1
} MtlModelType;

typedef struct MtlTask
{
	char		name[MTL_NAME_LEN];
	MtlTaskType type;
	float		weight;
	/* regression labels are learned standardised; these undo it */
	float		target_mean;
	float		target_std;
} MtlTask;

/* Architecture and training settings: everything config can say. */
typedef struct MtlSpec
{
	int			n_tasks;
	MtlTask		tasks[MTL_MAX_TASKS];
	MtlModelType model;
	int			embedding_dim;
	int			n_experts;		/* mmoe only */
	int			n_expert_layers;
	int			expert_units[MTL_MAX_LAYERS];
	int			n_bottom_layers;
	int			bottom_units[MTL_MAX_LAYERS];
	int			n_tower_layers;
	int			tower_units[MTL_MAX_LAYERS];
	int			epochs;
	int			batch_size;
	float		learning_rate;
	float		l2;
	float		id_dropout;
	float		validation_fraction;	/* rows held out to measure each epoch */
	int			patience;		/* stop after this many epochs without a better one (0: never) */
	uint64_t	seed;
	int			threads;
	int			verbose;
	int			record_seconds;	/* keep training time in the model (bytes then vary) */
	double		max_memory_mb;
} MtlSpec;

/* Sizes of the input side, fixed by the training data. */
typedef struct MtlShape
{
	int64_t		n_users;
	int64_t		n_items;
	int			n_cat;			/* categorical fields */
	int			n_num;			/* numeric fields */
	int64_t    *cat_rows;		/* [n_cat] embedding rows per field (vocab + 1) */
} MtlShape;

/* Where each tensor lives in the parameter array, and the widths. */
typedef struct MtlLayout
{
	int			E;
	int			D;				/* input width */
	int			n_slots;		/* 2 + n_cat */
	int			n_experts;		/* 1 for shared_bottom */
	int			gated;
	int			n_expert_layers;
	const int  *expert_units;
	int			H1;				/* expert first-layer width */
	int			H;				/* expert output width */
	int			P;				/* projection width */
	int64_t		emb_rows;		/* all embedding rows */
	int64_t		item_row0;		/* first item row */
	int64_t    *cat_row0;		/* [n_cat] first row of each field */
	size_t		W_in,
				b_in;
	size_t		expert_W[MTL_MAX_EXPERTS][MTL_MAX_LAYERS];	/* layers >= 1 */
	size_t		expert_b[MTL_MAX_EXPERTS][MTL_MAX_LAYERS];
	size_t		tower_W[MTL_MAX_TASKS][MTL_MAX_LAYERS + 1];
	size_t		tower_b[MTL_MAX_TASKS][MTL_MAX_LAYERS + 1];
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

/* Activations and their gradients for batches of up to max_batch rows. */
typedef struct MtlWork
{
	int			max_batch;
	float	   *X,
			   *dX;				/* [B x D] */
	float	   *proj,
			   *dproj;			/* [B x P] */
	float	   *expert_act[MTL_MAX_EXPERTS][MTL_MAX_LAYERS];	/* layers >= 1 */
	float	   *dexpert_act[MTL_MAX_EXPERTS][MTL_MAX_LAYERS];
	float	   *gate,
			   *dgate;			/* [T][B x n_experts] */
	float	   *mix,
			   *dmix;			/* [T][B x H] */
	float	   *tower_act[MTL_MAX_TASKS][MTL_MAX_LAYERS + 1];	/* last: logit */
	float	   *dtower_act[MTL_MAX_TASKS][MTL_MAX_LAYERS + 1];
} MtlWork;

const char *mtl_model_type_name(MtlModelType type);
const char *mtl_task_type_name(MtlTaskType type);

/* Fill layout from spec and shape; returns NULL or a reason it is impossible. */
const char *mtl_layout_build(MtlLayout *layout, const MtlSpec *spec, const MtlShape *shape);
void		mtl_layout_free(MtlLayout *layout);

/* Allocate params and initialise them from spec.seed. */
void		mtl_model_init(MtlModel *model);
void		mtl_model_free(MtlModel *model);

MtlWork    *mtl_work_create(const MtlModel *model, int max_batch);
void		mtl_work_free(MtlWork *work, const MtlModel *model);

/*
 * Build the input rows of a batch: slots [B x n_slots] global embedding rows
 * (-1: none), nums [B x n_num] standardised numeric values.
 */
void		mtl_model_assemble(const MtlModel *model, MtlWork *work, const float *params,
							   const int32_t *slots, const float *nums, int B);

/* Forward from work->X to logits; returns the logits [B x T] (ld = 1 per task). */
void		mtl_model_forward(const MtlModel *model, MtlWork *work, const float *params, int B);
float	   *mtl_work_logit(MtlWork *work, int task);
/* The same from work->proj = X @ W_in + b_in, for callers that build it otherwise. */
void		mtl_model_forward_projected(const MtlModel *model, MtlWork *work,
										const float *params, int B);

/*
 * Backward from dlogit[t][B] into grads (dense part, +=) and work->dX; then
 * into the embedding rows named by slots (grads, +=).
 */
void		mtl_model_backward(const MtlModel *model, MtlWork *work, const float *params,
							   float *grads, float *const *dlogit, int B);
void		mtl_model_backward_embeddings(const MtlModel *model, MtlWork *work, float *grads,
										  const int32_t *slots, int B);

/* Turn a task's logit into its output: probability or regression value. */
double		mtl_task_output(const MtlTask *task, float logit);

#endif

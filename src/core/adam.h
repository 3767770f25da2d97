/*
 * Adam with L2 (the gradient gets l2 * w added, as in torch.optim.Adam's
 * weight_decay). Dense parameters are stepped every batch; embedding rows only
 * when a batch uses them ("lazy" Adam), so a step costs the rows a batch
 * touches, not the whole vocabulary.
 */
#ifndef MTL_ADAM_H
#define MTL_ADAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct MtlAdam
{
	float		lr;
	float		beta1;
	float		beta2;
	float		eps;
	float		l2;				/* dense parameters */
	float		l2_embeddings;	/* embedding rows: params[0 .. dense0) */
	size_t		dense0;
	int64_t		t;				/* steps taken */
	size_t		from;			/* training steps only params[from ..] (0: all; see TrainStep) */
	/* step only the embedding rows a batch used, whatever the catalog's size */
	int			lazy_rows;
	float	   *m;				/* first moments, like params */
	float	   *v;				/* second moments */
	/* bias corrections of the current step */
	float		step_size;
	float		v_correction;
} MtlAdam;

void		mtl_adam_init(MtlAdam *adam, size_t n_params, float lr, float l2);
/* Embedding rows (params below dense0) take l2 instead of the dense one. */
void		mtl_adam_embedding_l2(MtlAdam *adam, size_t dense0, float l2);
void		mtl_adam_free(MtlAdam *adam);

/* Start a step: advance t and compute its bias corrections. */
void		mtl_adam_begin(MtlAdam *adam);

/* Update params[from, to) from grads. */
void		mtl_adam_update(MtlAdam *adam, float *params, const float *grads,
							size_t from, size_t to);

/* Update the E-wide rows listed in rows (global row numbers). */
void		mtl_adam_update_rows(MtlAdam *adam, float *params, const float *grads,
								 const int32_t *rows, int n_rows, int E);

#endif

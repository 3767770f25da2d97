/*
 * Dynamic loss weights and gradient clipping, apart from the training loop so
 * that their arithmetic is unit-tested on hand-computed cases.
 *
 * GradNorm (Chen et al., ICML 2018): after a step's task losses L_t and the
 * norms G_t of each weighted task loss's gradient on the last shared layer,
 * each weight w_t moves against d|G_t - target_t| / d w_t =
 * sign(G_t - target_t) * G_t / w_t, target_t = mean(G) * r_t^alpha with
 * r_t = (L_t / L_t(0)) / mean of the same over the tasks; the step is Adam's at
 * lr 0.025; the weights are then renormalised to sum to the number of tasks
 * (each at least 0.01). Tasks without labels in the batch sit the step out.
 *
 * DWA (Liu et al., CVPR 2019): w_t = T exp(r_t / temperature) / sum of the
 * same, r_t = L_t(epoch - 1) / L_t(epoch - 2), from the third epoch on.
 */
#ifndef MTL_WEIGHTING_H
#define MTL_WEIGHTING_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct MtlWeighting
{
	int			n_tasks;
	float		scale[MTL_MAX_TASKS];	/* the dynamic weights, 1 at first */
	/* filled per step by the loss: */
	double		loss[MTL_MAX_TASKS];
	int64_t		labelled[MTL_MAX_TASKS];
	double		norm[MTL_MAX_TASKS];
	/* GradNorm's state */
	double		initial_loss[MTL_MAX_TASKS];
	float		m[MTL_MAX_TASKS],
				v[MTL_MAX_TASKS];
	int64_t		steps;
} MtlWeighting;

#define MTL_GRADNORM_LR 0.025f

void		mtl_weighting_init(MtlWeighting *wt, int n_tasks);

/* One GradNorm update of wt->scale from wt->loss, wt->labelled and wt->norm. */
void		mtl_gradnorm_step(MtlWeighting *wt, float alpha);

/* DWA's weights from the last two epochs' task losses (prev: epoch - 1). */
void		mtl_dwa_weights(MtlWeighting *wt, const float *prev, const float *prev2,
							float temperature);

/*
 * Scale grads[from, to) and the E-wide rows listed in rows so that their
 * joint L2 norm is at most clip; returns the norm before clipping.
 */
double		mtl_clip_gradients(float *grads, size_t from, size_t to, const int32_t *rows,
							   int n_rows, int E, float clip);

#endif

/*
 * Per-task losses over a batch of logits, with missing labels (NaN) skipped.
 *
 * Binary: cross-entropy from the logit z, computed as max(z,0) - z*y +
 * log(1 + exp(-|z|)) so large |z| neither overflows nor loses precision.
 * Regression: squared error (z - y)^2.
 * Each returns the summed loss over labelled rows and writes the gradient of
 * (scale * summed loss) with respect to each logit into dz (0 for missing).
 * w (NULL: every row 1) holds each row's weight, ldy apart like the labels:
 * a row's loss and gradient count w times.
 */
#ifndef MTL_LOSS_H
#define MTL_LOSS_H

#include <stdint.h>

double		mtl_bce_logits(float *dz, const float *z, int ldz, const float *y, int ldy,
						   int B, float scale);
double		mtl_squared_error(float *dz, const float *z, int ldz, const float *y, int ldy,
							  const float *w, int B, float scale);
float		mtl_sigmoid(float z);

/*
 * Binary cross-entropy of a product of probabilities, ESMM-style: a task
 * given a parent is learned as q = p(task | parent) * p(parent) (* the
 * parent's parent ...) against the joint label, over every row. z[c] are the
 * logits of the chain (the task first, then its ancestors), y[c] their labels:
 * the joint label is 0 when any of them is 0, missing when none is 0 but one is
 * missing, else 1. A chain of one is plain cross-entropy. Positive rows weigh
 * pos_weight. The gradient of scale * loss is added into dz[c] (+=).
 */
double		mtl_bce_chain(float *const *dz, const float *const *z, int ldz,
						  const float *const *y, int ldy, const float *w, int chain, int B,
						  float scale, float pos_weight, int64_t *labelled);

#endif

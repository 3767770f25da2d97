/*
 * A batch's forward and backward passes split by rows over threads
 * (core/threads.h): part k of n takes rows [k B / n, (k + 1) B / n) with
 * activations and a gradient buffer of its own, its loss divided by the whole
 * batch's rows, so that the parts' sum is the batch's objective and gradient
 * (mtl_batch_loss). The parts' gradients are then added into the caller's in
 * part order: a seed and a thread count give the same model on every run;
 * another thread count sums the same floats in another order.
 *
 * Not for GradNorm, whose weights need the whole batch's shared gradient:
 * mtl_split_create returns NULL for it and for threads < 2.
 */
#ifndef MTL_SPLIT_H
#define MTL_SPLIT_H

#include "adam.h"
#include "model.h"
#include "train.h"

typedef struct MtlSplit MtlSplit;

/* fewer rows than this per part: a batch runs whole (tests lower it) */
extern int	mtl_split_min_rows;
/* set: the embedding block is always summed by the rows a part named */
extern int	mtl_split_rows_always;

/* work: the caller's own (part 0's); NULL when no split is needed. */
MtlSplit   *mtl_split_create(const MtlModel *model, MtlWork *work, int max_batch, int threads);
/* As mtl_batch_loss with the split's parts (grads NULL: forward only). */
double		mtl_split_batch_loss(MtlSplit *s, const float *params, float *grads,
								 const int32_t *slots, const float *nums, const float *labels,
								 int B, MtlLossOptions *opt);
/*
 * mtl_adam_update over [from, to) in slices over the threads, grads zero
 * there afterwards (an element's step reads only its own values).
 */
void		mtl_split_adam_update(MtlSplit *s, MtlAdam *adam, float *params, float *grads,
								  size_t from, size_t to);
void		mtl_split_free(MtlSplit *s);

#endif

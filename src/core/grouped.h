/*
 * The first layer of training by value for categorical fields with few
 * values. A field's block of the input is its value's embedding row, so its
 * share of X @ W_in is that row's product with the field's rows of W_in.
 * When a field has far fewer values than a batch has rows (census-like
 * data: dozens), the products of all its values (rows x E x P) cost much
 * less than the batch's (B x E x P): the forward pass adds each row's
 * product, and the backward pass sums dproj by value once, then forms the
 * field's W_in gradient and its embedding rows' gradients from those sums.
 * The result is the GEMM's up to the order of the additions.
 *
 * Only training asks for it (mtl_grouped_enable), with one input copy; the
 * fields' blocks of dX are left to the cross slot's share, and their rows'
 * gradients from the first layer go straight to the gradient table.
 */
#ifndef MTL_GROUPED_H
#define MTL_GROUPED_H

#include "model.h"

/* a field is grouped in a batch of B rows when its rows times this are at most B */
extern int	mtl_grouped_ratio;

/* Let work's batches group fields (buffers for fields that can be grouped). */
void		mtl_grouped_enable(const MtlModel *model, MtlWork *work);
void		mtl_grouped_free(MtlWork *work);
/* After a batch's X is assembled: which fields group, and each row's value of them. */
void		mtl_grouped_plan(const MtlModel *model, MtlWork *work, const int32_t *slots, int B);
/* Whether the batch of B rows just planned groups any field. */
int			mtl_grouped_active(const MtlWork *work, int B);
/*
 * 1: field f's block of dX is neither written nor read for this batch (it
 * went by value, and no attention key reads it): its rows take no scatter.
 */
int			mtl_grouped_no_dx(const MtlModel *model, const MtlWork *work, int f, int B);
/* proj[0] = X @ W_in + b_in, the grouped fields by value. */
void		mtl_grouped_forward(const MtlModel *model, MtlWork *work, const float *params, int B);
/* W_in, b_in and the grouped rows' gradients into grads; dX of the other columns, 0 in theirs. */
void		mtl_grouped_backward(const MtlModel *model, MtlWork *work, const float *params,
								 float *grads, int B);

#endif

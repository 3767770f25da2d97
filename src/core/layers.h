/*
 * Layers as forward/backward pairs over row-major float buffers.
 *
 * Shapes: B rows in a batch. A matrix "[B x n] (ld)" has B rows of n used
 * values, consecutive rows ld floats apart, so a layer can read or write a
 * column slice of a wider buffer. Backward functions accumulate parameter
 * gradients (+=) and overwrite input gradients (=).
 */
#ifndef MTL_LAYERS_H
#define MTL_LAYERS_H

#include <stdint.h>

/*
 * A kernel built twice: for AVX2 with FMA and for the x86-64 baseline; the
 * loader picks one for the machine.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MTL_KERNEL __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MTL_KERNEL
#endif

/* y += a * x over n floats (skipped when a is 0: ReLU outputs often are) */
void		mtl_axpy(float *restrict y, float a, const float *restrict x, int n);

/* y += x over n floats */
void		mtl_add(float *restrict y, const float *restrict x, int n);
/* y += a + b + c + d: one pass over y for four rows */
void		mtl_add4(float *restrict y, const float *restrict a, const float *restrict b,
					 const float *restrict c, const float *restrict d, int n);
/* y = b + sum_j a[j] * x[j] + sum_k z[k], all of n columns (one pass over y) */
void		mtl_sum_rows(float *restrict y, const float *restrict b, const float *restrict a,
						 const float *const *x, int n_scaled, const float *const *z, int n_plain,
						 int n);

/* out[B x n_out](ld_out) = in[B x n_in](ld_in) @ W[n_in x n_out] + b[n_out] */
void		mtl_dense_forward(float *out, int ld_out, const float *in, int ld_in,
							  const float *W, const float *b, int B, int n_in, int n_out);
/* The same with W's rows ld_w apart (a column block of a wider matrix). */
void		mtl_dense_forward_ldw(float *out, int ld_out, const float *in, int ld_in,
								  const float *W, int ld_w, const float *b,
								  int B, int n_in, int n_out);

/*
 * dW[n_in x n_out] += in^T @ dout; db[n_out] += column sums of dout;
 * din[B x n_in](ld_din) = dout @ W^T, skipped when din is NULL; dW and db
 * skipped when dW is NULL.
 */
void		mtl_dense_backward(float *din, int ld_din, float *dW, float *db,
							   const float *dout, int ld_dout, const float *in, int ld_in,
							   const float *W, int B, int n_in, int n_out);
/* The same with W and dW rows ld_w apart. */
void		mtl_dense_backward_ldw(float *din, int ld_din, float *dW, float *db,
								   const float *dout, int ld_dout, const float *in, int ld_in,
								   const float *W, int ld_w, int B, int n_in, int n_out);

/* x[B x n](ld) *= mask[B x n] (dense), in place: dropout forward and backward alike */
void		mtl_scale_by(float *x, int ld, const float *mask, int B, int n);

/* x[B x n](ld) = max(x, 0) in place */
void		mtl_relu_forward(float *x, int ld, int B, int n);

/* dx[B x n](ld_dx) *= (y > 0), where y is the forward output */
void		mtl_relu_backward(float *dx, int ld_dx, const float *y, int ld_y, int B, int n);

/* Row-wise softmax of [B x n](ld) logits into out[B x n] (dense, ld = n). */
void		mtl_softmax_forward(float *out, const float *logits, int ld, int B, int n);

/* dlogits[B x n](ld) = g * (dg - sum(g * dg)) row-wise; g, dg dense [B x n]. */
void		mtl_softmax_backward(float *dlogits, int ld, const float *g, const float *dg,
								 int B, int n);

/*
 * Start loading an E-float row that is needed a few rows from now: rows of
 * a large catalog's tables (parameters, gradients, Adam's moments) miss every
 * cache, and a miss in flight costs less than one waited for.
 */
#define MTL_ROWS_AHEAD 8
static inline void
mtl_prefetch_row(const float *row, int E, int for_write)
{
	const char *p = (const char *) row;

	/* each 64-byte line the row touches, aligned or not */
	for (int at = 0; at < E * (int) sizeof(float) + 63; at += 64)
	{
		const char *line = at < E * (int) sizeof(float) ? p + at : p + E * sizeof(float) - 1;

		if (for_write)
			__builtin_prefetch(line, 1, 3);
		else
			__builtin_prefetch(line, 0, 3);
	}
}

/*
 * Embedding lookup: out row r (ld) gets table[index[r]] (E floats), or zeros
 * when index[r] < 0 (no embedding, e.g. an anonymous user).
 */
void		mtl_embedding_forward(float *out, int ld, const float *table,
								  const int32_t *index, int index_stride, int B, int E);

/* dtable[index[r]] += dout row r, for rows with index[r] >= 0. */
void		mtl_embedding_backward(float *dtable, const float *dout, int ld,
								   const int32_t *index, int index_stride, int B, int E);

/*
 * Bags: out row r = sum over k < width of weight[r][k] * table[index[r][k]]
 * (index -1: empty), index and weight rows index_stride and weight_stride
 * apart.
 */
void		mtl_bag_forward(float *out, int ld, const float *table, const int32_t *index,
							int index_stride, const float *weight, int weight_stride, int width,
							int B, int E);
/* dtable[index[r][k]] += weight[r][k] * dout row r. */
void		mtl_bag_backward(float *dtable, const float *dout, int ld, const int32_t *index,
							 int index_stride, const float *weight, int weight_stride, int width,
							 int B, int E);

/*
 * DIN's weight of one history item h against candidate v: w2 . act(z) + b2,
 * z = zv + h Whd + (h * v) Wp (zv: b1 and the candidate's part; Whd, Wp:
 * [E x A]; act: leaky ReLU of the given slope); z [A] scratch.
 */
float		mtl_din_weight(const float *restrict zv, const float *restrict h,
						   const float *restrict v, const float *restrict Whd,
						   const float *restrict Wp, const float *restrict w2, float b2,
						   float slope, int E, int A, float *restrict z);
/*
 * DIN scoring, per history item j of n: kq_j = k_j * q ([K]) and
 * z_j = zv + entries[j][kw ..] ([A]), k_j = entries[j][0 .. K).
 */
void		mtl_din_units(int n, const float *const *entries, int K, int kw, const float *q,
						  const float *zv, int A, float *kq, float *z);
/* a_j = b2 + w2 . act(z_j) for n rows z_j ([A] each), act leaky with slope. */
void		mtl_din_weights(int n, int A, const float *z, const float *w2, float b2, float slope,
							float *a);

#endif

#include "layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Kernels for one row at a time (scoring) are MTL_KERNELs (layers.h). */

MTL_KERNEL void
mtl_axpy(float *restrict y, float a, const float *restrict x, int n)
{
	if (a == 0.0f)
		return;
	for (int i = 0; i < n; i++)
		y[i] += a * x[i];
}

MTL_KERNEL void
mtl_add(float *restrict y, const float *restrict x, int n)
{
	for (int i = 0; i < n; i++)
		y[i] += x[i];
}

MTL_KERNEL void
mtl_add4(float *restrict y, const float *restrict a, const float *restrict b,
		 const float *restrict c, const float *restrict d, int n)
{
	for (int i = 0; i < n; i++)
		y[i] += (a[i] + b[i]) + (c[i] + d[i]);
}

typedef float MtlVec8 __attribute__((vector_size(32), aligned(4)));

/*
 * out = b + in @ W for one row and NV * 8 outputs, the outputs held in
 * registers across the whole row (NV is a constant after inlining).
 */
static inline __attribute__((always_inline)) void
DenseRowBlocked(float *restrict out, const float *restrict in, const float *restrict W,
				const float *restrict b, int n_in, int NV)
{
	MtlVec8		acc[8];

	for (int j = 0; j < NV; j++)
		memcpy(&acc[j], b + 8 * j, sizeof(MtlVec8));
	for (int i = 0; i < n_in; i++)
	{
		float		a = in[i];
		const float *w = W + (size_t) i * NV * 8;

		if (a == 0.0f)
			continue;
		for (int j = 0; j < NV; j++)
		{
			MtlVec8		wj;

			memcpy(&wj, w + 8 * j, sizeof(MtlVec8));
			acc[j] += a * wj;
		}
	}
	for (int j = 0; j < NV; j++)
		memcpy(out + 8 * j, &acc[j], sizeof(MtlVec8));
}

/*
 * y = b + sum_j a[j] * x[j] + sum_k z[k] over n columns: many scaled rows
 * summed in registers a tile of 32 columns at a time, so each output is
 * stored once instead of once per row as repeated axpy calls would.
 */
MTL_KERNEL void
mtl_sum_rows(float *restrict y, const float *restrict b, const float *restrict a,
			 const float *const *x, int n_scaled, const float *const *z, int n_plain, int n)
{
	int			c = 0;

	for (; c + 32 <= n; c += 32)
	{
		/* MtlVec8 is declared with 4-byte alignment: these are unaligned loads */
		MtlVec8		acc0 = *(const MtlVec8 *) (b + c),
					acc1 = *(const MtlVec8 *) (b + c + 8),
					acc2 = *(const MtlVec8 *) (b + c + 16),
					acc3 = *(const MtlVec8 *) (b + c + 24);

		for (int j = 0; j < n_scaled; j++)
		{
			const float *r = x[j] + c;
			float		aj = a[j];

			acc0 += aj * *(const MtlVec8 *) r;
			acc1 += aj * *(const MtlVec8 *) (r + 8);
			acc2 += aj * *(const MtlVec8 *) (r + 16);
			acc3 += aj * *(const MtlVec8 *) (r + 24);
		}
		for (int k = 0; k < n_plain; k++)
		{
			const float *r = z[k] + c;

			acc0 += *(const MtlVec8 *) r;
			acc1 += *(const MtlVec8 *) (r + 8);
			acc2 += *(const MtlVec8 *) (r + 16);
			acc3 += *(const MtlVec8 *) (r + 24);
		}
		*(MtlVec8 *) (y + c) = acc0;
		*(MtlVec8 *) (y + c + 8) = acc1;
		*(MtlVec8 *) (y + c + 16) = acc2;
		*(MtlVec8 *) (y + c + 24) = acc3;
	}
	for (; c + 8 <= n; c += 8)
	{
		MtlVec8		acc = *(const MtlVec8 *) (b + c);

		for (int j = 0; j < n_scaled; j++)
			acc += a[j] * *(const MtlVec8 *) (x[j] + c);
		for (int k = 0; k < n_plain; k++)
			acc += *(const MtlVec8 *) (z[k] + c);
		*(MtlVec8 *) (y + c) = acc;
	}
	for (; c < n; c++)
	{
		float		sum = b[c];

		for (int j = 0; j < n_scaled; j++)
			sum += a[j] * x[j][c];
		for (int k = 0; k < n_plain; k++)
			sum += z[k][c];
		y[c] = sum;
	}
}

/* out = b + in @ W for one row; wide outputs by rows of W, narrow by columns */
MTL_KERNEL static void
DenseRow(float *restrict out, const float *restrict in, const float *restrict W,
		 const float *restrict b, int n_in, int n_out)
{
	switch (n_out)
	{
		case 16:
			DenseRowBlocked(out, in, W, b, n_in, 2);
			return;
		case 32:
			DenseRowBlocked(out, in, W, b, n_in, 4);
			return;
		case 64:
			DenseRowBlocked(out, in, W, b, n_in, 8);
			return;
		default:
			break;
	}
	if (n_out >= 8)
	{
		memcpy(out, b, sizeof(float) * n_out);
		for (int i = 0; i < n_in; i++)
		{
			float		a = in[i];
			const float *w = W + (size_t) i * n_out;

			if (a == 0.0f)
				continue;
			for (int j = 0; j < n_out; j++)
				out[j] += a * w[j];
		}
		return;
	}
	for (int j = 0; j < n_out; j++)
	{
		float		sum = 0.0f;

		for (int i = 0; i < n_in; i++)
			sum += in[i] * W[(size_t) i * n_out + j];
		out[j] = b[j] + sum;
	}
}

void
mtl_dense_forward_ldw(float *out, int ld_out, const float *in, int ld_in,
					  const float *W, int ld_w, const float *b, int B, int n_in, int n_out)
{
	if (B == 1 && ld_w == n_out)
	{
		/* one row (scoring): a plain loop beats sgemm's per-call set-up */
		DenseRow(out, in, W, b, n_in, n_out);
		return;
	}
	for (int r = 0; r < B; r++)
		memcpy(out + (size_t) r * ld_out, b, sizeof(float) * n_out);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n_out, n_in,
				1.0f, in, ld_in, W, ld_w, 1.0f, out, ld_out);
}

void
mtl_dense_forward(float *out, int ld_out, const float *in, int ld_in,
				  const float *W, const float *b, int B, int n_in, int n_out)
{
	mtl_dense_forward_ldw(out, ld_out, in, ld_in, W, n_out, b, B, n_in, n_out);
}

void
mtl_dense_backward_ldw(float *din, int ld_din, float *dW, float *db,
					   const float *dout, int ld_dout, const float *in, int ld_in,
					   const float *W, int ld_w, int B, int n_in, int n_out)
{
	if (dW != NULL)
	{
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_in, n_out, B,
					1.0f, in, ld_in, dout, ld_dout, 1.0f, dW, ld_w);
		for (int r = 0; r < B; r++)
		{
			const float *row = dout + (size_t) r * ld_dout;

			for (int o = 0; o < n_out; o++)
				db[o] += row[o];
		}
	}
	if (din != NULL)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n_in, n_out,
					1.0f, dout, ld_dout, W, ld_w, 0.0f, din, ld_din);
}

void
mtl_dense_backward(float *din, int ld_din, float *dW, float *db,
				   const float *dout, int ld_dout, const float *in, int ld_in,
				   const float *W, int B, int n_in, int n_out)
{
	mtl_dense_backward_ldw(din, ld_din, dW, db, dout, ld_dout, in, ld_in, W, n_out,
						   B, n_in, n_out);
}

void
mtl_scale_by(float *x, int ld, const float *mask, int B, int n)
{
	for (int r = 0; r < B; r++)
	{
		float	   *row = x + (size_t) r * ld;
		const float *m = mask + (size_t) r * n;

		for (int i = 0; i < n; i++)
			row[i] *= m[i];
	}
}

void
mtl_relu_forward(float *x, int ld, int B, int n)
{
	for (int r = 0; r < B; r++)
	{
		float	   *row = x + (size_t) r * ld;

		for (int i = 0; i < n; i++)
			row[i] = row[i] > 0.0f ? row[i] : 0.0f;
	}
}

void
mtl_relu_backward(float *dx, int ld_dx, const float *y, int ld_y, int B, int n)
{
	for (int r = 0; r < B; r++)
	{
		float	   *d = dx + (size_t) r * ld_dx;
		const float *o = y + (size_t) r * ld_y;

		for (int i = 0; i < n; i++)
			d[i] = o[i] > 0.0f ? d[i] : 0.0f;
	}
}

void
mtl_softmax_forward(float *out, const float *logits, int ld, int B, int n)
{
	for (int r = 0; r < B; r++)
	{
		const float *z = logits + (size_t) r * ld;
		float	   *g = out + (size_t) r * n;
		float		max = z[0];
		float		sum = 0.0f;

		for (int i = 1; i < n; i++)
			max = z[i] > max ? z[i] : max;
		for (int i = 0; i < n; i++)
		{
			g[i] = expf(z[i] - max);
			sum += g[i];
		}
		for (int i = 0; i < n; i++)
			g[i] /= sum;
	}
}

void
mtl_softmax_backward(float *dlogits, int ld, const float *g, const float *dg,
					 int B, int n)
{
	for (int r = 0; r < B; r++)
	{
		const float *gr = g + (size_t) r * n;
		const float *dgr = dg + (size_t) r * n;
		float	   *dz = dlogits + (size_t) r * ld;
		float		dot = 0.0f;

		for (int i = 0; i < n; i++)
			dot += gr[i] * dgr[i];
		for (int i = 0; i < n; i++)
			dz[i] = gr[i] * (dgr[i] - dot);
	}
}

void
mtl_embedding_forward(float *out, int ld, const float *table,
					  const int32_t *index, int index_stride, int B, int E)
{
	for (int r = 0; r < B; r++)
	{
		int32_t		k = index[(size_t) r * index_stride];
		float	   *o = out + (size_t) r * ld;

		if (r + MTL_ROWS_AHEAD < B && index[(size_t) (r + MTL_ROWS_AHEAD) * index_stride] >= 0)
			mtl_prefetch_row(table + (size_t) index[(size_t) (r + MTL_ROWS_AHEAD) * index_stride] * E, E, 0);
		if (k >= 0)
			memcpy(o, table + (size_t) k * E, sizeof(float) * E);
		else
			memset(o, 0, sizeof(float) * E);
	}
}

void
mtl_embedding_backward(float *dtable, const float *dout, int ld,
					   const int32_t *index, int index_stride, int B, int E)
{
	for (int r = 0; r < B; r++)
	{
		int32_t		k = index[(size_t) r * index_stride];
		const float *d = dout + (size_t) r * ld;
		float	   *t;

		if (r + MTL_ROWS_AHEAD < B && index[(size_t) (r + MTL_ROWS_AHEAD) * index_stride] >= 0)
			mtl_prefetch_row(dtable + (size_t) index[(size_t) (r + MTL_ROWS_AHEAD) * index_stride] * E, E, 1);
		if (k < 0)
			continue;
		t = dtable + (size_t) k * E;
		for (int i = 0; i < E; i++)
			t[i] += d[i];
	}
}

void
mtl_bag_forward(float *out, int ld, const float *table, const int32_t *index, int index_stride,
				const float *weight, int weight_stride, int width, int B, int E)
{
	for (int r = 0; r < B; r++)
	{
		const int32_t *k = index + (size_t) r * index_stride;
		const float *w = weight + (size_t) r * weight_stride;
		float	   *o = out + (size_t) r * ld;

		memset(o, 0, sizeof(float) * E);
		for (int j = 0; j < width; j++)
			if (k[j] >= 0)
				mtl_axpy(o, w[j], table + (size_t) k[j] * E, E);
	}
}

void
mtl_bag_backward(float *dtable, const float *dout, int ld, const int32_t *index, int index_stride,
				 const float *weight, int weight_stride, int width, int B, int E)
{
	for (int r = 0; r < B; r++)
	{
		const int32_t *k = index + (size_t) r * index_stride;
		const float *w = weight + (size_t) r * weight_stride;
		const float *d = dout + (size_t) r * ld;

		for (int j = 0; j < width; j++)
			if (k[j] >= 0)
				mtl_axpy(dtable + (size_t) k[j] * E, w[j], d, E);
	}
}

MTL_KERNEL float
mtl_din_weight(const float *restrict zv, const float *restrict h, const float *restrict v,
			   const float *restrict Whd, const float *restrict Wp, const float *restrict w2,
			   float b2, float slope, int E, int A, float *restrict z)
{
	float		a = b2;

	memcpy(z, zv, sizeof(float) * A);
	for (int e = 0; e < E; e++)
	{
		const float *wh = Whd + (size_t) e * A,
				   *wp = Wp + (size_t) e * A;
		float		he = h[e],
					hve = h[e] * v[e];

		for (int u = 0; u < A; u++)
			z[u] += he * wh[u] + hve * wp[u];
	}
	for (int u = 0; u < A; u++)
		a += w2[u] * (z[u] > 0.0f ? z[u] : slope * z[u]);
	return a;
}

MTL_KERNEL void
mtl_din_units(int n, const float *const *entries, int K, int kw, const float *restrict q,
			  const float *restrict zv, int A, float *restrict kq, float *restrict z)
{
	for (int j = 0; j < n; j++)
	{
		const float *restrict k = entries[j];
		const float *restrict w = k + kw;
		float	   *restrict kqj = kq + (size_t) j * K;
		float	   *restrict zj = z + (size_t) j * A;

		for (int e = 0; e < K; e++)
			kqj[e] = k[e] * q[e];
		for (int u = 0; u < A; u++)
			zj[u] = zv[u] + w[u];
	}
}

MTL_KERNEL void
mtl_din_weights(int n, int A, const float *restrict z, const float *restrict w2, float b2,
				float slope, float *restrict a)
{
	for (int j = 0; j < n; j++)
	{
		const float *restrict zj = z + (size_t) j * A;
		float		sum = 0.0f;

		for (int u = 0; u < A; u++)
		{
			float		x = zj[u];

			sum += w2[u] * (x > 0.0f ? x : slope * x);
		}
		a[j] = b2 + sum;
	}
}

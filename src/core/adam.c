#include "adam.h"

#include <math.h>

#include "layers.h"
#include "mem.h"

void
mtl_adam_init(MtlAdam *adam, size_t n_params, float lr, float l2)
{
	adam->lr = lr;
	adam->beta1 = 0.9f;
	adam->beta2 = 0.999f;
	adam->eps = 1e-8f;
	adam->l2 = l2;
	adam->l2_embeddings = l2;
	adam->dense0 = 0;
	adam->t = 0;
	adam->from = 0;
	adam->lazy_rows = 0;
	adam->m = mtl_alloc(sizeof(float) * n_params);
	adam->v = mtl_alloc(sizeof(float) * n_params);
}

void
mtl_adam_embedding_l2(MtlAdam *adam, size_t dense0, float l2)
{
	adam->dense0 = dense0;
	adam->l2_embeddings = l2;
}

void
mtl_adam_free(MtlAdam *adam)
{
	mtl_free(adam->m);
	mtl_free(adam->v);
	adam->m = adam->v = NULL;
}

void
mtl_adam_begin(MtlAdam *adam)
{
	adam->t++;
	adam->step_size = adam->lr / (1.0f - powf(adam->beta1, (float) adam->t));
	adam->v_correction = 1.0f / sqrtf(1.0f - powf(adam->beta2, (float) adam->t));
}

/*
 * Vectorised (an MTL_KERNEL; adam.c is built without math errno, so sqrtf is
 * one instruction, and without contracting to FMA, so every build computes
 * the same bits as the scalar loop).
 */
MTL_KERNEL static void
Update(MtlAdam *adam, float *params, const float *grads, size_t from, size_t to, float l2)
{
	float		b1 = adam->beta1,
				b2 = adam->beta2,
				eps = adam->eps;
	float		step = adam->step_size,
				vc = adam->v_correction;
	float	   *restrict m = adam->m,
			   *restrict v = adam->v;
	float	   *restrict p = params;

	for (size_t i = from; i < to; i++)
	{
		float		g = grads[i] + l2 * p[i];

		m[i] = b1 * m[i] + (1.0f - b1) * g;
		v[i] = b2 * v[i] + (1.0f - b2) * g * g;
		p[i] -= step * m[i] / (sqrtf(v[i]) * vc + eps);
	}
}

void
mtl_adam_update(MtlAdam *adam, float *params, const float *grads, size_t from, size_t to)
{
	size_t		split = adam->dense0 < from ? from : adam->dense0 > to ? to : adam->dense0;

	if (from < split)
		Update(adam, params, grads, from, split, adam->l2_embeddings);
	if (split < to)
		Update(adam, params, grads, split, to, adam->l2);
}

void
mtl_adam_update_rows(MtlAdam *adam, float *params, const float *grads,
					 const int32_t *rows, int n_rows, int E)
{
	for (int k = 0; k < n_rows; k++)
	{
		size_t		from = (size_t) rows[k] * E;

		if (k + MTL_ROWS_AHEAD < n_rows)
		{
			size_t		ahead = (size_t) rows[k + MTL_ROWS_AHEAD] * E;

			mtl_prefetch_row(params + ahead, E, 1);
			mtl_prefetch_row(grads + ahead, E, 0);
			mtl_prefetch_row(adam->m + ahead, E, 1);
			mtl_prefetch_row(adam->v + ahead, E, 1);
		}

		mtl_adam_update(adam, params, grads, from, from + E);
	}
}

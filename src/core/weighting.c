#include "weighting.h"

#include <math.h>
#include <string.h>

void
mtl_weighting_init(MtlWeighting *wt, int n_tasks)
{
	memset(wt, 0, sizeof(*wt));
	wt->n_tasks = n_tasks;
	for (int t = 0; t < n_tasks; t++)
		wt->scale[t] = 1.0f;
}

static int
Active(const MtlWeighting *wt, int t)
{
	return wt->labelled[t] > 0 && wt->loss[t] > 0;
}

void
mtl_gradnorm_step(MtlWeighting *wt, float alpha)
{
	int			T = wt->n_tasks;
	int			active = 0;
	double		mean_ratio = 0.0,
				mean_norm = 0.0,
				sum = 0.0;

	for (int t = 0; t < T; t++)
	{
		if (!Active(wt, t))
			continue;
		if (!(wt->initial_loss[t] > 0))
			wt->initial_loss[t] = wt->loss[t];
		mean_ratio += wt->loss[t] / wt->initial_loss[t];
		mean_norm += wt->norm[t];
		active++;
	}
	if (active < 2)
		return;
	mean_ratio /= active;
	mean_norm /= active;
	wt->steps++;
	for (int t = 0; t < T; t++)
	{
		double		target,
					g;
		float		m_hat,
					v_hat;

		if (!Active(wt, t))
			continue;
		target = mean_norm * pow(wt->loss[t] / wt->initial_loss[t] / mean_ratio, alpha);
		g = (wt->norm[t] > target ? 1.0 : -1.0) * wt->norm[t] / wt->scale[t];
		wt->m[t] = 0.9f * wt->m[t] + 0.1f * (float) g;
		wt->v[t] = 0.999f * wt->v[t] + 0.001f * (float) (g * g);
		m_hat = wt->m[t] / (1.0f - powf(0.9f, (float) wt->steps));
		v_hat = wt->v[t] / (1.0f - powf(0.999f, (float) wt->steps));
		wt->scale[t] -= MTL_GRADNORM_LR * m_hat / (sqrtf(v_hat) + 1e-8f);
		if (wt->scale[t] < 0.01f)
			wt->scale[t] = 0.01f;
	}
	for (int t = 0; t < T; t++)
		sum += wt->scale[t];
	for (int t = 0; t < T; t++)
		wt->scale[t] = (float) (wt->scale[t] * T / sum);
}

void
mtl_dwa_weights(MtlWeighting *wt, const float *prev, const float *prev2, float temperature)
{
	int			T = wt->n_tasks;
	double		e[MTL_MAX_TASKS],
				total = 0.0;

	for (int t = 0; t < T; t++)
	{
		double		ratio = prev2[t] > 0 ? (double) prev[t] / prev2[t] : 1.0;

		e[t] = exp(ratio / temperature);
		total += e[t];
	}
	for (int t = 0; t < T; t++)
		wt->scale[t] = (float) (T * e[t] / total);
}

double
mtl_clip_gradients(float *grads, size_t from, size_t to, const int32_t *rows, int n_rows, int E,
				   float clip)
{
	double		sum = 0.0,
				norm;
	float		factor;

	for (size_t i = from; i < to; i++)
		sum += (double) grads[i] * grads[i];
	for (int k = 0; k < n_rows; k++)
		for (int i = 0; i < E; i++)
			sum += (double) grads[(size_t) rows[k] * E + i] * grads[(size_t) rows[k] * E + i];
	norm = sqrt(sum);
	if (!(norm > clip))
		return norm;
	factor = (float) (clip / norm);
	for (size_t i = from; i < to; i++)
		grads[i] *= factor;
	for (int k = 0; k < n_rows; k++)
		for (int i = 0; i < E; i++)
			grads[(size_t) rows[k] * E + i] *= factor;
	return norm;
}

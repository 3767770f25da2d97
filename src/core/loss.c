#include "loss.h"

#include <math.h>
#include <stddef.h>

float
mtl_sigmoid(float z)
{
	if (z >= 0.0f)
		return 1.0f / (1.0f + expf(-z));
	else
	{
		float		e = expf(z);

		return e / (1.0f + e);
	}
}

double
mtl_bce_logits(float *dz, const float *z, int ldz, const float *y, int ldy,
			   int B, float scale)
{
	double		total = 0.0;

	for (int r = 0; r < B; r++)
	{
		float		zr = z[(size_t) r * ldz];
		float		yr = y[(size_t) r * ldy];

		if (isnan(yr))
		{
			dz[r] = 0.0f;
			continue;
		}
		total += fmax(zr, 0.0) - (double) zr * yr + log1p(exp(-fabs((double) zr)));
		dz[r] = scale * (mtl_sigmoid(zr) - yr);
	}
	return total;
}

double
mtl_squared_error(float *dz, const float *z, int ldz, const float *y, int ldy, const float *w,
				  int B, float scale)
{
	double		total = 0.0;

	for (int r = 0; r < B; r++)
	{
		float		zr = z[(size_t) r * ldz];
		float		yr = y[(size_t) r * ldy];
		float		wr;

		if (isnan(yr))
		{
			dz[r] = 0.0f;
			continue;
		}
		wr = w != NULL ? w[(size_t) r * ldy] : 1.0f;
		total += wr * ((double) zr - yr) * ((double) zr - yr);
		dz[r] = scale * wr * 2.0f * (zr - yr);
	}
	return total;
}

/* log(1 + exp(x)) without overflow */
static double
Softplus(double x)
{
	return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* Joint label of a chain's labels: 0 if any is 0, NaN if any is missing, else 1. */
static double
JointLabel(const float *const *y, int ldy, int chain, int r)
{
	double		joint = 1.0;

	for (int c = 0; c < chain; c++)
	{
		float		v = y[c][(size_t) r * ldy];

		if (v == 0.0f)
			return 0.0;
		if (isnan(v))
			joint = NAN;
		else if (!isnan(joint))
			joint *= v;
	}
	return joint;
}

double
mtl_bce_chain(float *const *dz, const float *const *z, int ldz,
			  const float *const *y, int ldy, const float *w, int chain, int B,
			  float scale, float pos_weight, int64_t *labelled)
{
	double		total = 0.0;

	for (int r = 0; r < B; r++)
	{
		double		yr = JointLabel(y, ldy, chain, r);
		double		wr = w != NULL ? w[(size_t) r * ldy] : 1.0;
		double		log_q = 0.0,
					log_1mq,
					g;

		if (isnan(yr))
			continue;
		(*labelled)++;
		for (int c = 0; c < chain; c++)
			log_q -= Softplus(-(double) z[c][(size_t) r * ldz]);
		if (chain == 1)
			log_1mq = -Softplus((double) z[0][(size_t) r * ldz]);
		else
			log_1mq = log(fmax(-expm1(log_q), 1e-15));
		total -= wr * (pos_weight * yr * log_q + (1.0 - yr) * log_1mq);
		/* d loss / d log q; d log q / d z_c = 1 - sigmoid(z_c) */
		for (int c = 0; c < chain; c++)
		{
			double		zc = z[c][(size_t) r * ldz];
			double		one_minus_p = 1.0 / (1.0 + exp(zc));

			if (chain == 1)
				/* (1 - y) q / (1 - q) * (1 - p) = (1 - y) p, exact at large |z| */
				g = -pos_weight * yr * one_minus_p + (1.0 - yr) / (1.0 + exp(-zc));
			else
				g = (-pos_weight * yr + (1.0 - yr) * exp(log_q - log_1mq)) * one_minus_p;
			dz[c][r] += (float) (scale * wr * g);
		}
	}
	return total;
}

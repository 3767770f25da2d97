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
mtl_squared_error(float *dz, const float *z, int ldz, const float *y, int ldy,
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
		total += ((double) zr - yr) * ((double) zr - yr);
		dz[r] = scale * 2.0f * (zr - yr);
	}
	return total;
}

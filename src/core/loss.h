/*
 * Per-task losses over a batch of logits, with missing labels (NaN) skipped.
 *
 * Binary: cross-entropy from the logit z, computed as max(z,0) - z*y +
 * log(1 + exp(-|z|)) so large |z| neither overflows nor loses precision.
 * Regression: squared error (z - y)^2.
 * Each returns the summed loss over labelled rows and writes the gradient of
 * (scale * summed loss) with respect to each logit into dz (0 for missing).
 */
#ifndef MTL_LOSS_H
#define MTL_LOSS_H

double		mtl_bce_logits(float *dz, const float *z, int ldz, const float *y, int ldy,
						   int B, float scale);
double		mtl_squared_error(float *dz, const float *z, int ldz, const float *y, int ldy,
							  int B, float scale);
float		mtl_sigmoid(float z);

#endif

/* Evaluation metrics over (score, label) pairs. */
#ifndef MTL_METRICS_H
#define MTL_METRICS_H

#include <stdint.h>

/*
 * Area under the ROC curve: the probability that a random positive scores
 * above a random negative, ties counting one half (average ranks). Rows with
 * NaN labels are skipped. Returns NaN when one class is absent.
 */
double		mtl_auc(const double *score, const double *label, int64_t n);

#endif

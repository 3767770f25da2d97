/*
 * Negative down-sampling: training keeps every row but a share of those whose
 * label of one binary task is 0 (MtlTask.negative_rate); scoring undoes it
 * (mtl_task_output adds ln(rate) to that task's logit).
 */
#ifndef MTL_SAMPLING_H
#define MTL_SAMPLING_H

#include <stdint.h>

#include "model.h"

/* The down-sampled task, or -1. */
int			mtl_sampled_task(const MtlSpec *spec);

/*
 * Whether training keeps a row: yes unless its label of the down-sampled task
 * is 0; then with probability negative_rate, by a hash of the row's ids,
 * labels and its number among the rows offered (row), seeded by the config's
 * seed: the same rows in the same order give the same sample.
 */
int			mtl_sampling_keeps(const MtlSpec *spec, int64_t row, int64_t user_id, int64_t item_id,
							   const float *labels);

#endif

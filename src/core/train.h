/*
 * Mini-batch training of a model over an encoded data set.
 *
 * Rows are shuffled each epoch with the seeded RNG; a batch is assembled,
 * run forward and backward, and Adam steps the dense parameters and the
 * embedding rows the batch used. Same data and seed: same parameters.
 */
#ifndef MTL_TRAIN_H
#define MTL_TRAIN_H

#include <stdint.h>

#include "model.h"

/* Rows encoded for the model (see model.h for slots). */
typedef struct MtlDataset
{
	int64_t		n_rows;
	int32_t    *slots;			/* [n_rows x n_slots] */
	float	   *nums;			/* [n_rows x n_num] */
	float	   *labels;			/* [n_rows x n_tasks], NaN = missing */
} MtlDataset;

typedef struct MtlTrainCallbacks
{
	/* called once per batch; may not return (a cancel inside PostgreSQL) */
	void		(*interrupt) (void *arg);
	/* called after each epoch with its mean training loss */
	void		(*epoch_done) (void *arg, int epoch, double loss, double seconds);
	void	   *arg;
} MtlTrainCallbacks;

typedef struct MtlTrainSummary
{
	int64_t		rows;
	int			epochs;
	double		epoch_loss[1024];
	double		seconds;
} MtlTrainSummary;

#define MTL_MAX_EPOCHS 1024

/*
 * Set regression targets' mean and std from the labels and standardise them in
 * place (the data set is consumed), initialise the parameters and train.
 */
void		mtl_train(MtlModel *model, MtlDataset *data, const MtlTrainCallbacks *cb,
					  MtlTrainSummary *summary);

/*
 * Loss of one batch (weighted sum of per-task mean losses) and, when grads is
 * not NULL, its gradient added into grads. Used by training and by the
 * gradient checks.
 */
double		mtl_batch_loss(const MtlModel *model, MtlWork *work, const float *params,
						   float *grads, const int32_t *slots, const float *nums,
						   const float *labels, int B);

#endif

/*
 * Scoring rows with a trained model. A predictor owns the buffers of one
 * call site so that scoring a row allocates nothing.
 */
#ifndef MTL_PREDICT_H
#define MTL_PREDICT_H

#include "format.h"

typedef struct MtlPredictor
{
	const MtlTrained *trained;
	MtlWork    *work;
	int32_t    *slots;			/* one row being built */
	float	   *nums;
} MtlPredictor;

MtlPredictor *mtl_predictor_create(const MtlTrained *trained);
void		mtl_predictor_free(MtlPredictor *p);

/* Score the row in p->slots / p->nums: one output per task into out. */
void		mtl_predictor_run(MtlPredictor *p, double *out);

#endif
